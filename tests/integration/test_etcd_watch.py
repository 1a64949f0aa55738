"""The etcd mutex over a watch, end to end: wardend against a real etcd
started by the test, with `[mutex] poll = 30s` so that only the watch can
explain a fast reaction. A halt written with `wardenctl fleet halt` or
straight to etcd reaches the watching daemon in seconds; a watch whose
connection goes silent (a TCP proxy that stops forwarding without closing)
leaves the host held within poll + timeout; a watch whose connection is
closed falls back to polling and is re-established."""

import os
import select
import socket
import threading
import time
import unittest

from harness import Etcd, Wardend, base_config, etcd_mutex, match

CONFIG = base_config("itest-watch", workers=None, level="debug",
                     mutex=etcd_mutex(timeout="{timeout}", cache="0", poll="{poll}")) + """
[action fix]
type = exec
command = true
"""


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of one upstream port, in threads.
    .blackhole(): stops forwarding in both directions and connects nothing
    upstream, keeping every connection open (a black-holed network path);
    .forward(): forwards again (what was held back flows); .close_all():
    closes every connection now (new ones are forwarded); .freeze_watches():
    stops forwarding on the connections that carry a watch (POST
    /v3/watch) only, the others go on."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.passing = threading.Event()
        self.passing.set()
        self.pairs = []
        self.watches = set()   # pairs whose request was a watch
        self.frozen = False    # freeze_watches() in force
        self.accepted = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        with self.lock:
            self.accepted += 1
        self.passing.wait()  # a black hole connects nothing upstream
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            client.close()
            return
        pair = (client, up)
        with self.lock:
            self.pairs.append(pair)
        try:
            while not self.stopped:
                if not self.passing.is_set() or (self.frozen and pair in self.watches):
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select([client, up], [], [], 0.1)
                for s in ready:
                    # Checked again: the state may have changed during select.
                    if not self.passing.is_set() or (self.frozen and pair in self.watches):
                        break
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is client and b"POST /v3/watch" in data:
                        with self.lock:
                            self.watches.add(pair)
                    (up if s is client else client).sendall(data)
        except OSError:
            pass
        finally:
            for s in pair:
                try:
                    s.close()
                except OSError:
                    pass
            with self.lock:
                if pair in self.pairs:
                    self.pairs.remove(pair)
                self.watches.discard(pair)

    def blackhole(self):
        self.passing.clear()

    def forward(self):
        self.passing.set()

    def freeze_watches(self):
        self.frozen = True

    def close_all(self):
        with self.lock:
            pairs = list(self.pairs)
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped = True
        self.passing.set()
        self.listener.close()
        self.close_all()


def watch_status(wd):
    return wd.status()["mutex"]["watch"]


def wait_watch(wd, test, timeout=30, **fields):
    deadline = time.monotonic() + timeout
    while True:
        w = watch_status(wd)
        if all(w.get(k) == v if not callable(v) else v(w.get(k)) for k, v in fields.items()):
            return w
        if time.monotonic() > deadline:
            test.fail("mutex watch never %s: %s\n%s" % (fields, w, wd.log()[-3000:]))
        time.sleep(0.1)


@unittest.skipUnless(os.access(Etcd.BINARY, os.X_OK), "etcd-server is not installed")
class EtcdWatch(unittest.TestCase):
    def start(self, wd, endpoint, poll="30s", timeout="1s"):
        wd.start(CONFIG.format(endpoint=endpoint, poll=poll, timeout=timeout, **wd.paths))
        first = wd.wait_event("mutex.state", timeout=60)[0]
        self.assertEqual((first["held"], first["reason"]), (False, "clear"))
        return wait_watch(wd, self, up=True)

    def test_a_halt_reaches_a_watching_host_in_seconds(self):
        with Etcd() as etcd, Wardend() as wd:
            etcd.put("/warden/armed", "yes")
            w = self.start(wd, etcd.endpoint)
            self.assertEqual(w["endpoint"], etcd.endpoint)
            self.assertIsNone(w["last_error"])
            self.assertIn("mutex watch up on " + etcd.endpoint, wd.log())

            # wardenctl fleet halt: the next poll is 24 s or more away.
            n = wd.mark()
            t0 = time.monotonic()
            p = wd.ctl("fleet", "halt", "--reason", "INC-1 freeze")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            held = wd.wait_event("mutex.state", held=True, since=n, timeout=20)[0]
            took = time.monotonic() - t0
            self.assertEqual(held["reason"], "INC-1 freeze")
            self.assertLess(took, 10, "a halt took %.1f s with poll = 30s" % took)
            run = wd.ctl("run", "fix", "--wait")
            self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
            self.assertIn("blocked (mutex)", run.stderr)

            # Cleared straight in etcd: just as fast.
            n = wd.mark()
            t0 = time.monotonic()
            self.assertEqual(etcd.delete("/warden/mutex"), 1)
            wd.wait_event("mutex.state", held=False, since=n, timeout=20)
            self.assertLess(time.monotonic() - t0, 10)
            run = wd.ctl("run", "fix", "--wait")
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)

            # Keys beside the mutex do not change the state; the watch saw
            # the two changes, and no poll but the first was needed.
            etcd.put("/warden/slots/g/0", "{}")
            w = watch_status(wd)
            self.assertEqual(w["events"], 2)
            self.assertEqual(w["started"], 1)
            states = match(wd.events(), "mutex.state")
            self.assertEqual([s["held"] for s in states], [False, True, False])

    def test_a_silent_watch_leaves_the_host_held_within_poll_plus_timeout(self):
        with Etcd() as etcd, Wardend() as wd:
            etcd.put("/warden/armed", "yes")
            proxy = Proxy(etcd.client_port)
            try:
                self.start(wd, proxy.endpoint, poll="3s", timeout="1s")
                n = wd.mark()
                proxy.blackhole()
                t0 = time.monotonic()
                held = wd.wait_event("mutex.state", held=True, since=n, timeout=30)[0]
                took = time.monotonic() - t0
                # poll (3 s, jittered below) + timeout (1 s), and a margin
                # for a busy machine.
                self.assertLess(took, 3 + 1 + 3, "held only after %.1f s" % took)
                self.assertIn("timed out", held["reason"])
                run = wd.ctl("run", "fix", "--wait")
                self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
                self.assertFalse(watch_status(wd)["up"])

                # A halt written meanwhile is there once the path is back.
                etcd.put("/warden/mutex", "written in the dark")
                n = wd.mark()
                proxy.forward()
                again = wd.wait_event("mutex.state", since=n, timeout=30,
                                      reason="written in the dark")[0]
                self.assertTrue(again["held"])
                w = wait_watch(wd, self, up=True, started=lambda s: s >= 2)
                n = wd.mark()
                etcd.delete("/warden/mutex")
                wd.wait_event("mutex.state", held=False, since=n, timeout=20)
            finally:
                proxy.stop()

    def test_a_watch_that_misses_a_change_the_poll_saw_is_replaced(self):
        with Etcd() as etcd, Wardend() as wd:
            etcd.put("/warden/armed", "yes")
            proxy = Proxy(etcd.client_port)
            try:
                self.start(wd, proxy.endpoint, poll="2s", timeout="1s")
                # Only the watch's connection goes silent; polls go on.
                proxy.freeze_watches()
                n = wd.mark()
                t0 = time.monotonic()
                etcd.put("/warden/mutex", "seen by the poll")
                held = wd.wait_event("mutex.state", held=True, since=n, timeout=20)[0]
                self.assertEqual(held["reason"], "seen by the poll")
                self.assertLess(time.monotonic() - t0, 2 + 1 + 3)
                # The next poll finds the watch still behind: replaced.
                wd.wait_for(lambda _: "mutex watch down (missed a change for a poll interval"
                            in wd.log(), timeout=20)
                proxy.frozen = False
                wait_watch(wd, self, timeout=30, up=True, started=lambda s: s >= 2)
                n = wd.mark()
                etcd.delete("/warden/mutex")
                wd.wait_event("mutex.state", held=False, since=n, timeout=20)
            finally:
                proxy.stop()

    def test_a_closed_watch_falls_back_and_is_reestablished(self):
        with Etcd() as etcd, Wardend() as wd:
            etcd.put("/warden/armed", "yes")
            proxy = Proxy(etcd.client_port)
            try:
                self.start(wd, proxy.endpoint)
                proxy.close_all()
                # Down (and said so), then up again on a poll's revision:
                # the backoff starts at 1 s, far below the 30 s poll.
                t0 = time.monotonic()
                wd.wait_for(lambda _: "mutex watch down" in wd.log(), timeout=20)
                w = wait_watch(wd, self, timeout=20, up=True, started=2)
                self.assertLess(time.monotonic() - t0, 15)
                self.assertTrue(w["last_error"].startswith("etcd watch " + proxy.endpoint + ": "),
                                w)
                states = match(wd.events(), "mutex.state")
                self.assertEqual([s["held"] for s in states], [False])

                # And it works: a halt arrives through the new watch.
                n = wd.mark()
                t0 = time.monotonic()
                etcd.put("/warden/mutex", "after the break")
                wd.wait_event("mutex.state", held=True, since=n, timeout=20)
                self.assertLess(time.monotonic() - t0, 10)
            finally:
                proxy.stop()


if __name__ == "__main__":
    unittest.main()
