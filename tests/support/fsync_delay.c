// A slow disk for tests/integration/test_slow_disk.py, as an LD_PRELOAD
// library: fsync(2) and fdatasync(2) sleep WARDEN_FSYNC_DELAY_MS
// milliseconds, then call the real function (dlsym RTLD_NEXT). wardend calls
// no other syncing function (no sync_file_range, syncfs, msync, O_SYNC or
// O_DSYNC in daemon/, checks/, actions/); one added there must be wrapped
// here too, or the test's "no sync in the window" verdict would catch only
// the case where every sync moved.
//
// Why not strace -e inject=fsync:delay_enter (what the test used before):
// under ptrace every stop of a traced thread waits for the strace process
// to be scheduled, so on a busy 2-core machine the loop stalled 150-570 ms
// for reasons that were strace's, not wardend's. Here the delay is in the
// calling thread and nothing else is stopped, ever.
//
// Environment (read once, when the library is loaded):
//   WARDEN_FSYNC_DELAY_MS  the delay (default 0: calls are only logged)
//   WARDEN_FSYNC_LOG       a file to which one line per call is appended,
//                          before the delay: "<tid> <epoch s.us> <call>
//                          <fd> <thread name>", tid as gettid(2) (the main
//                          thread's is the pid), the time as CLOCK_REALTIME
//                          at entry. One write(2) per line on an O_APPEND
//                          descriptor: lines of concurrent threads and of
//                          child processes (which inherit LD_PRELOAD) never
//                          interleave.
//
// It must load into any process wardend starts as well (the exec actions'
// /bin/sh inherit LD_PRELOAD), so it is built without the sanitizers, links
// nothing but libc, and never fails a call of its own: a log that cannot be
// written is skipped, the sync still happens.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // RTLD_NEXT, gettid
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

typedef int (*SyncFn)(int);

static SyncFn real_fsync;
static SyncFn real_fdatasync;
static long delay_ms;
static int log_fd = -1;

// dlsym's void* as a function pointer (POSIX guarantees it converts; ISO C
// has no cast for it).
static SyncFn lookup(const char* name) {
  void* p = dlsym(RTLD_NEXT, name);
  SyncFn fn;
  memcpy(&fn, &p, sizeof fn);
  return fn;
}

// Runs when the library is loaded, before any thread of the program exists:
// the globals above are written here only and read-only afterwards.
__attribute__((constructor)) static void fsync_delay_init(void) {
  real_fsync = lookup("fsync");
  real_fdatasync = lookup("fdatasync");
  const char* ms = getenv("WARDEN_FSYNC_DELAY_MS");
  if (ms != NULL && *ms != '\0') {
    char* end = NULL;
    long v = strtol(ms, &end, 10);
    if (*end == '\0' && v > 0) delay_ms = v;
  }
  const char* log = getenv("WARDEN_FSYNC_LOG");
  if (log != NULL && *log != '\0') {
    log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  }
}

static void record(const char* call, int fd) {
  if (log_fd < 0) return;
  int saved = errno;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char name[17] = "";
  prctl(PR_GET_NAME, name, 0, 0, 0);
  char line[128];
  int n = snprintf(line, sizeof line, "%ld %lld.%06ld %s %d %s\n", (long)gettid(),
                   (long long)now.tv_sec, now.tv_nsec / 1000, call, fd, name);
  if (n > 0 && (size_t)n < sizeof line) {
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;
  }
  errno = saved;
}

// Sleeps the whole delay, signals or not (as a disk would).
static void delay(void) {
  if (delay_ms <= 0) return;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += delay_ms / 1000;
  until.tv_nsec += (delay_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec += 1;
    until.tv_nsec -= 1000000000L;
  }
  int saved = errno;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
  }
  errno = saved;
}

static int delayed(const char* call, SyncFn real, int fd) {
  record(call, fd);
  delay();
  // Resolved here when a constructor of another library synced before ours
  // ran (not kept: the globals stay written by the constructor only).
  if (real == NULL) real = lookup(call);
  if (real == NULL) {
    errno = ENOSYS;
    return -1;
  }
  return real(fd);
}

int fsync(int fd) { return delayed("fsync", real_fsync, fd); }

int fdatasync(int fd) { return delayed("fdatasync", real_fdatasync, fd); }
