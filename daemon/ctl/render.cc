#include "daemon/ctl/render.h"

#include <cstdio>
#include <ctime>

#include "daemon/ctl/exit_codes.h"

namespace warden::ctl {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

// "2026-11-25T17:02:44.854Z" -> "17:02:44" when today, else the date too.
std::string ShortTime(const std::string& t) {
  if (t.size() < 19) return t.empty() ? "-" : t;
  return t.substr(0, 10) + " " + t.substr(11, 8);
}

std::string Cut(std::string s, size_t n) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\t') ch = ' ';
  }
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

std::string Seconds(const json& ms) {
  if (!ms.is_number()) return "?";
  long long total = ms.get<long long>() / 1000;
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", total / 3600, total / 60 % 60, total % 60);
  } else if (total >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%llds", total);
  }
  return buf;
}

void PrintJobs(const json& jobs) {
  const json& run = jobs.value("running", json());
  if (run.is_object()) {
    std::printf("job       %s %s: step %s/%s %s", Str(run, "job").c_str(),
                Str(run, "phase").c_str(), Str(run, "step_index").c_str(),
                Str(run, "steps").c_str(), Str(run, "step").c_str());
    if (run.contains("step_elapsed_ms")) {
      std::printf(" for %s", Seconds(run["step_elapsed_ms"]).c_str());
    }
    std::printf(" (job %s of %s)\n", Seconds(run.value("elapsed_ms", json())).c_str(),
                Str(run, "timeout").c_str());
    if (run.contains("rollback_of")) {
      std::printf("          ROLLBACK of %s\n", Str(run, "rollback_of").c_str());
    }
    if (run.contains("terminating")) {
      std::printf("          TERMINATING: %s\n", Str(run, "terminating").c_str());
    }
    if (run.contains("paused")) {
      std::printf("          PAUSED %s (%s): %s\n", Seconds(run["paused"].value("for_ms", json())).c_str(),
                  Str(run["paused"], "reason").c_str(), Str(run["paused"], "detail").c_str());
    }
    if (!Str(run, "waiting_for").empty()) {
      std::printf("          waiting for: %s\n", Str(run, "waiting_for").c_str());
    }
    if (run.contains("slot")) {
      const json& sl = run["slot"];
      if (Str(sl, "state") == "held") {
        std::printf("slot      %s: held (%s)\n", Str(sl, "group").c_str(), Str(sl, "key").c_str());
      } else {
        std::printf("slot      %s: WAITING (%s)\n", Str(sl, "group").c_str(),
                    Str(sl, "waiting_for").c_str());
      }
      for (const auto& h : sl.value("holders", json::array())) {
        if (Str(h, "key") == Str(sl, "key")) continue;
        std::printf("          held by %s (%s since %s)\n", Str(h, "host").c_str(),
                    Str(h, "job").c_str(), Str(h, "since").c_str());
      }
    }
  } else {
    std::printf("job       none running\n");
  }
  const json& halt = jobs.value("halt", json());
  if (halt.is_object() && halt.value("rollback", json()).is_object()) {
    // The failure is the halt's reason (the halt line); this is the other result.
    const json& rb = halt["rollback"];
    const std::string result = Str(rb, "result");
    std::printf("rollback  %s: %s%s\n", Str(rb, "job").c_str(),
                result == "ok" ? "ok" : result == "running" ? "running" : ("FAILED (" + result + ")").c_str(),
                Str(rb, "error").empty() ? "" : (": " + Str(rb, "error")).c_str());
  }
  if (halt.is_object() && halt.value("slot_kept", json()).is_string()) {
    std::printf("slot      KEPT by the halted job: %s (wardenctl resume releases it)\n",
                Str(halt, "slot_kept").c_str());
  }
  std::string queue;
  for (const auto& q : jobs.value("queue", json::array())) {
    queue += (queue.empty() ? "" : ", ") + Str(q, "job") + " (" + Str(q, "trigger") + ")";
  }
  std::printf("queue     %s\n", queue.empty() ? "empty" : queue.c_str());
  for (const auto& sc : jobs.value("schedules", json::array())) {
    std::printf("schedule  %s: %s, next %s\n", Str(sc, "job").c_str(), Str(sc, "schedule").c_str(),
                ShortTime(Str(sc, "next")).c_str());
  }
}

// [fleet] groups: the rollout this host runs its part of, else its
// membership; a problem with etcd or the record after it.
void PrintRollout(const json& ro) {
  if (!ro.is_object()) return;
  std::string groups;
  for (const auto& g : ro.value("groups", json::array())) {
    groups += (groups.empty() ? "" : ", ") + (g.is_string() ? g.get<std::string>() : g.dump());
  }
  const json& cur = ro.value("current", json());
  if (cur.is_object()) {
    std::string where = "waiting to start";
    if (cur.value("step", 0) > 0) {
      where = "step " + Str(cur, "step") + "/" + Str(cur, "steps") + " " + Str(cur, "step_name");
    }
    std::printf("rollout   %s: %s here, %s (since %s)\n", Str(cur, "id").c_str(),
                Str(cur, "job").c_str(), where.c_str(), ShortTime(Str(cur, "since")).c_str());
  } else {
    std::printf("rollout   none here; %s of %s, order %s\n",
                ro.value("member", false) ? "member" : "NOT YET A MEMBER", groups.c_str(),
                Str(ro, "order").c_str());
  }
  if (!Str(ro, "error").empty()) std::printf("          last problem: %s\n", Str(ro, "error").c_str());
}

void PrintStatus(const json& s) {
  std::printf("host      %s  (wardend %s, pid %s, since %s)\n", Str(s, "host").c_str(),
              Str(s, "version").c_str(), Str(s, "pid").c_str(),
              ShortTime(Str(s, "started")).c_str());
  std::printf("config    %s  (digest %s)\n", Str(s, "config").c_str(),
              Str(s, "config_digest").c_str());
  // One line per pause in force; one without an expiry says so loudly:
  // a forgotten pause is a host silently unprotected.
  const json& pauses = s.value("pauses", json::array());
  if (pauses.empty()) std::printf("pause     no\n");
  for (const auto& p : pauses) {
    std::string scope = Str(p, "scope") == "host" ? "" : Str(p, "scope") + " " + Str(p, "name") + " ";
    if (p.value("window", json()).is_string()) scope = "(maintenance " + Str(p, "window") + ") " + scope;
    std::string until = p.value("no_expiry", false) ? "NO EXPIRY"
                                                    : "until " + ShortTime(Str(p, "until")) + " UTC";
    std::printf("pause     %sPAUSED: %s  (by %s, since %s, %s)\n", scope.c_str(),
                Str(p, "reason").c_str(), Str(p, "by").c_str(),
                ShortTime(Str(p, "since")).c_str(), until.c_str());
  }
  for (const auto& w : s.value("maintenance", json::array())) {
    if (w.value("open", false)) {
      std::printf("window    %s (%s): OPEN until %s UTC: %s\n", Str(w, "name").c_str(),
                  Str(w, "scope").c_str(), ShortTime(Str(w, "until")).c_str(),
                  Str(w, "reason").c_str());
    } else {
      std::printf("window    %s (%s): next %s UTC, for %s\n", Str(w, "name").c_str(),
                  Str(w, "scope").c_str(), ShortTime(Str(w, "next")).c_str(),
                  Str(w, "for").c_str());
    }
  }
  for (const auto& c : s.value("checks", json::array())) {
    const json& off = c.value("disabled", json());
    if (!off.is_object()) continue;
    std::string until = off.value("no_expiry", false) ? "NO EXPIRY"
                                                      : "until " + ShortTime(Str(off, "until")) + " UTC";
    std::printf("disabled  check %s: %s  (by %s, since %s, %s)\n", Str(c, "name").c_str(),
                Str(off, "reason").c_str(), Str(off, "by").c_str(),
                ShortTime(Str(off, "since")).c_str(), until.c_str());
  }
  const json& halt = s.value("halt", json::object());
  std::printf("halt      %s\n", halt.value("halted", false)
                                    ? ("HALTED: " + Str(halt, "reason")).c_str()
                                    : "no");
  const json& mutex = s.value("mutex", json::object());
  std::string age = Str(mutex, "age_ms");
  std::printf("mutex     %s: %s%s\n", Str(mutex, "state").c_str(), Str(mutex, "reason").c_str(),
              age.empty() ? "" : ("  (answered " + age + " ms ago)").c_str());
  const json& events = s.value("events", json::object());
  std::printf("events    last seq %s  (%s)\n", Str(events, "last_seq").c_str(),
              Str(events, "file").c_str());
  if (events.contains("file_error") && events["file_error"].is_string()) {
    std::printf("          CANNOT WRITE since %s: %s; %s events held in memory, %s dropped\n",
                Str(events, "file_error_since").c_str(), Str(events, "file_error").c_str(),
                Str(events, "held").c_str(), Str(events, "dropped").c_str());
  }
  if (s.contains("state_save_error")) {
    std::printf("state     CANNOT SAVE since %s: %s\n", Str(s, "state_save_error_since").c_str(),
                Str(s, "state_save_error").c_str());
  }
  if (const json& jobs = s.value("jobs", json::object()); jobs.contains("journal_error")) {
    std::printf("journal   CANNOT WRITE since %s: %s (no job step starts meanwhile)\n",
                Str(jobs, "journal_error_since").c_str(), Str(jobs, "journal_error").c_str());
  }
  if (events.contains("fluentd")) {
    const json& f = events["fluentd"];
    auto when = [](const json& ms) -> std::string {
      if (!ms.is_number()) return "never";
      std::time_t t = static_cast<std::time_t>(ms.get<long long>() / 1000);
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
      return buf;
    };
    std::printf("fluentd   %s, backlog %s events (%s bytes), last ack %s%s\n",
                f.value("connected", false) ? "connected" : "NOT CONNECTED",
                Str(f, "backlog_events").c_str(), Str(f, "backlog_bytes").c_str(),
                when(f.value("last_ack_ms", json())).c_str(),
                Str(f, "last_error").empty() ? ""
                                              : ("; last error: " + Str(f, "last_error")).c_str());
  }
  PrintJobs(s.value("jobs", json::object()));
  PrintRollout(s.value("rollout", json()));
  if (s.contains("state_error")) std::printf("STATE     %s\n", Str(s, "state_error").c_str());
  if (s.contains("control_error")) std::printf("CONTROL   %s\n", Str(s, "control_error").c_str());
  std::printf("\n%-20s %-14s %-8s %-12s %-20s %-20s %s\n", "CHECK", "TYPE", "STATE", "VALUE",
              "SINCE", "LAST RUN", "ERROR OR DETAIL");
  for (const auto& c : s.value("checks", json::array())) {
    std::printf("%-20s %-14s %-8s %-12s %-20s %-20s %s\n", Cut(Str(c, "name"), 20).c_str(),
                Str(c, "type").c_str(), Str(c, "state").c_str(),
                Cut(Str(c, "value") + Str(c, "unit"), 12).c_str(),
                ShortTime(Str(c, "since")).c_str(),
                ShortTime(Str(c, "last_run")).c_str(),
                Cut(Str(c, "last_error").empty() ? Str(c, "detail") : Str(c, "last_error"), 60)
                    .c_str());
  }
  const json& actions = s.value("actions", json::array());
  if (!actions.empty()) {
    std::printf("\n%-20s %-12s %-8s %-20s %s\n", "ACTION", "TYPE", "RUNNING", "LAST END",
                "BUDGET");
    for (const auto& a : actions) {
      std::string budget = "-";
      if (a.contains("budget")) {
        const json& b = a["budget"];
        budget = Str(b, "used") + " of " + Str(b, "count") + " per " + Str(b, "window");
      }
      std::printf("%-20s %-12s %-8s %-20s %s\n", Cut(Str(a, "name"), 20).c_str(),
                  Str(a, "type").c_str(), a.value("running", false) ? "yes" : "no",
                  ShortTime(Str(a, "last_end")).c_str(), budget.c_str());
    }
  }
}

int Refused(const json& reply) {
  std::fprintf(stderr, "wardenctl: %s\n", Str(reply, "error").c_str());
  return kExitNo;
}

void PrintFinish(const json& e) {
  std::printf("%s %s: %s in %s ms", Str(e, "action").c_str(), Str(e, "type").c_str(),
              Str(e, "result").c_str(), Str(e, "duration_ms").c_str());
  if (e.contains("exit_code")) std::printf(", exit %s", Str(e, "exit_code").c_str());
  if (e.contains("signal")) std::printf(", signal %s", Str(e, "signal").c_str());
  std::printf("\n");
  if (e.contains("error")) std::printf("error: %s\n", Str(e, "error").c_str());
  if (e.contains("stdout_tail")) std::printf("--- stdout\n%s\n", Str(e, "stdout_tail").c_str());
  if (e.contains("stderr_tail")) std::printf("--- stderr\n%s\n", Str(e, "stderr_tail").c_str());
}

int PrintJobRun(const json& r, bool dry_run) {
  const bool ok = r.value("ok", false);
  if (dry_run) {
    std::printf("job %s (timeout %s), defined at %s\n", Str(r, "job").c_str(),
                Str(r, "timeout").c_str(), Str(r, "defined_at").c_str());
    if (r.contains("schedule")) {
      std::printf("schedule %s, next %s\n", Str(r, "schedule").c_str(), Str(r, "next").c_str());
    }
    if (r.value("running", false)) std::printf("running now\n");
    if (r.value("queued", false)) std::printf("queued now\n");
    std::printf("would run, stopping at the first failure:\n");
    for (const auto& st : r.value("steps", json::array())) {
      std::printf("  %s. %-20s %-10s", Str(st, "index").c_str(), Str(st, "step").c_str(),
                  Str(st, "type").c_str());
      if (Str(st, "kind") == "wait") {
        std::string checks;
        for (const auto& c : st.value("checks", json::array())) {
          checks += (checks.empty() ? "" : ", ") + c.get<std::string>();
        }
        std::printf(" %s ok for %s, within %s", checks.c_str(), Str(st, "for").c_str(),
                    Str(st, "timeout").c_str());
      } else {
        std::printf(" timeout %s%s", Str(st, "timeout").c_str(),
                    st.value("dry_run", false) ? ", dry_run = yes (not run)" : "");
      }
      std::printf("\n");
    }
    const json& g = r.value("guard", json::object());
    if (g.value("allowed", false)) {
      std::printf("guard: allowed now\n");
      return kExitOk;
    }
    std::printf("guard: would wait before the first step (%s): %s\n", Str(g, "reason").c_str(),
                Str(g, "detail").c_str());
    return kExitNo;
  }
  if (r.contains("event")) {   // --wait: the job's last event
    const json& e = r["event"];
    std::printf("job %s: %s in %s ms", Str(e, "job").c_str(), Str(e, "result").c_str(),
                Str(e, "duration_ms").c_str());
    if (!ok) {
      std::printf(", at step %s/%s (%s)", Str(e, "step_index").c_str(), Str(e, "steps").c_str(),
                  Str(e, "step").c_str());
    }
    std::printf("\n");
    if (!ok) {
      std::printf("error: %s\n", Str(e, "error").c_str());
      if (e.contains("stderr_tail")) {
        std::printf("--- stderr\n%s\n", Str(e, "stderr_tail").c_str());
      }
      std::printf("the queue is halted: look at the host, then wardenctl resume\n");
    }
    return ok ? kExitOk : kExitNo;
  }
  if (!ok) return Refused(r);
  std::printf("queued %s at position %s\n", Str(r, "job").c_str(), Str(r, "position").c_str());
  if (r.contains("halted")) {
    std::printf("note: the queue is HALTED (%s); it runs after wardenctl resume\n",
                Str(r, "halted").c_str());
  }
  return kExitOk;
}

// The exit code of a reply, as the text rendering below decides it: 1
// for a refusal, a check not ok, a dry run the guard would block.
int ExitCodeOf(const std::string& cmd, const json& r, bool dry_run) {
  if (!r.value("ok", false)) return kExitNo;
  if (cmd == "check" && !r.contains("group") && r.value("result", "") != "ok") return kExitNo;
  if (cmd == "run" && dry_run && !r.value("guard", json::object()).value("allowed", false)) {
    return kExitNo;
  }
  return kExitOk;
}

}  // namespace

void PrintJson(json out, bool pretty) {
  out["schema"] = kJsonSchema;
  std::string text = out.dump(pretty ? 2 : -1, ' ', false, json::error_handler_t::replace);
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

int Fail(int code, const std::string& message, bool as_json) {
  if (as_json) {
    PrintJson({{"ok", false}, {"error", message}});
  } else {
    std::fprintf(stderr, "wardenctl: %s\n", message.c_str());
  }
  return code;
}

bool RenderFollowed(const json& line, bool first, bool as_json, int& exit_code) {
  const bool last = line.contains("end") && line.value("ok", true) == false;   // no event has "end"
  if (last || (first && !line.value("ok", false))) {
    // The request refused, or the stream's last line: wardend stopping
    // (3, like a daemon gone), or this follower fell behind (1).
    exit_code = line.value("end", "") == "stopping" ? kExitUnreachable : kExitNo;
    if (as_json) {
      PrintJson(line, false);
    } else {
      std::fprintf(stderr, "wardenctl: %s\n", Str(line, "error").c_str());
    }
    return false;
  }
  if (first) return true;   // {"ok": true, "following": true}
  if (as_json) {
    PrintJson({{"ok", true}, {"event", line}}, false);
  } else {
    std::printf("%s\n", line.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    std::fflush(stdout);
  }
  return true;
}

void PrintStatusText(const json& status) { PrintStatus(status); }

int RenderReply(const std::string& cmd, const json& r, bool as_json, bool dry_run) {
  const bool ok = r.value("ok", false);
  if (as_json) {
    PrintJson(r);
    return ExitCodeOf(cmd, r, dry_run);
  }

  if (cmd == "status") {
    if (!ok) return Refused(r);
    PrintStatus(r);
    return kExitOk;
  }
  if (cmd == "events") {
    if (!ok) return Refused(r);
    for (const auto& e : r.value("events", json::array())) std::printf("%s\n", e.dump().c_str());
    return kExitOk;
  }
  if (cmd == "check" && r.contains("group")) {
    if (!r.contains("results")) return Refused(r);
    for (const auto& one : r["results"]) {
      std::printf("%s (%s): %s", Str(one, "check").c_str(), Str(one, "type").c_str(),
                  Str(one, "result").c_str());
      if (!Str(one, "value").empty()) std::printf("  value %s", Str(one, "value").c_str());
      std::printf("  (state now %s)\n", Str(one, "state").c_str());
      if (!Str(one, "error").empty()) std::printf("  error: %s\n", Str(one, "error").c_str());
    }
    for (const auto& name : r.value("disabled", json::array())) {
      std::printf("%s: disabled, not run\n", name.get<std::string>().c_str());
    }
    return ok ? kExitOk : kExitNo;
  }
  if (cmd == "check") {
    if (!ok) return Refused(r);
    std::string result = Str(r, "result");
    std::printf("%s (%s): %s", Str(r, "check").c_str(), Str(r, "type").c_str(), result.c_str());
    if (!Str(r, "value").empty()) {
      std::printf("  value %s%s", Str(r, "value").c_str(), Str(r, "unit").c_str());
    }
    if (r.contains("warn")) std::printf("  warn %s", Str(r, "warn").c_str());
    if (r.contains("crit")) std::printf("  crit %s", Str(r, "crit").c_str());
    std::printf("  (state now %s)\n", Str(r, "state").c_str());
    if (!Str(r, "detail").empty()) std::printf("%s\n", Str(r, "detail").c_str());
    if (!Str(r, "error").empty()) std::printf("error: %s\n", Str(r, "error").c_str());
    return result == "ok" ? kExitOk : kExitNo;
  }
  if (cmd == "run" && (r.contains("job") || (r.contains("event") && r["event"].contains("job") &&
                                              !r["event"].contains("action")))) {
    return PrintJobRun(r, dry_run);
  }
  if (cmd == "run") {
    if (dry_run) {
      if (!ok) return Refused(r);
      const json& g = r.value("guard", json::object());
      std::printf("would run %s (%s, timeout %s%s%s), defined at %s\n", Str(r, "action").c_str(),
                  Str(r, "type").c_str(), Str(r, "timeout").c_str(),
                  r.contains("cooldown") ? (", cooldown " + Str(r, "cooldown")).c_str() : "",
                  r.contains("budget") ? (", budget " + Str(r, "budget")).c_str() : "",
                  Str(r, "defined_at").c_str());
      if (g.value("allowed", false)) {
        std::printf("guard: allowed now%s\n",
                    Str(g, "detail").empty() ? "" : (" (" + Str(g, "detail") + ")").c_str());
        return kExitOk;
      }
      std::printf("guard: would be blocked (%s): %s\n", Str(g, "reason").c_str(),
                  Str(g, "detail").c_str());
      return kExitNo;
    }
    if (r.contains("event") && r["event"].value("event", "") == "action.finish") {
      PrintFinish(r["event"]);
      return ok ? kExitOk : kExitNo;
    }
    if (!ok) return Refused(r);
    const json& e = r.value("event", json::object());
    std::printf("started %s (%s), event #%s\n", Str(e, "action").c_str(), Str(e, "type").c_str(),
                Str(e, "seq").c_str());
    return kExitOk;
  }
  if (cmd == "pause") {
    if (!ok) return Refused(r);
    std::string scope = Str(r, "scope") == "host" ? "host" : Str(r, "scope") + " " + Str(r, "name");
    std::printf("paused (%s, %s): %s\n", scope.c_str(),
                r.value("no_expiry", false) ? "no expiry" : ("until " + ShortTime(Str(r, "until")) + " UTC").c_str(),
                Str(r, "reason").c_str());
    if (r.value("capped", false)) {
      std::fprintf(stderr, "wardenctl: note: capped by [daemon] max_pause = %s\n",
                   Str(r, "max_pause").c_str());
    }
    if (r.value("no_expiry", false)) {
      std::fprintf(stderr, "wardenctl: warning: this pause has no expiry; end it with wardenctl unpause\n");
    }
    if (!r.value("persisted", true)) {
      std::fprintf(stderr, "wardenctl: warning: wardend could not persist the pause\n");
    }
    return kExitOk;
  }
  if (cmd == "unpause") {
    if (!ok) return Refused(r);
    if (!r.value("was_paused", false)) std::printf("was not paused\n");
    for (const auto& p : r.value("ended", json::array())) {
      std::printf("unpaused %s\n", Str(p, "scope") == "host"
                                       ? "host"
                                       : (Str(p, "scope") + " " + Str(p, "name")).c_str());
    }
    return kExitOk;
  }
  if (cmd == "disable") {
    if (!ok) return Refused(r);
    std::printf("disabled check %s (%s): %s\n", Str(r, "check").c_str(),
                r.value("no_expiry", false) ? "no expiry" : ("until " + ShortTime(Str(r, "until")) + " UTC").c_str(),
                Str(r, "reason").c_str());
    if (r.value("capped", false)) {
      std::fprintf(stderr, "wardenctl: note: capped by [daemon] max_pause = %s\n",
                   Str(r, "max_pause").c_str());
    }
    if (r.value("no_expiry", false)) {
      std::fprintf(stderr, "wardenctl: warning: no expiry; run it again with wardenctl enable %s\n",
                   Str(r, "check").c_str());
    }
    if (!r.value("persisted", true)) {
      std::fprintf(stderr, "wardenctl: warning: wardend could not persist it\n");
    }
    return kExitOk;
  }
  if (cmd == "enable") {
    if (!ok) return Refused(r);
    std::printf(r.value("was_disabled", false) ? "enabled check %s (pending)\n"
                                               : "check %s was not disabled\n",
                Str(r, "check").c_str());
    return kExitOk;
  }
  if (cmd == "abort") {
    if (!ok) return Refused(r);
    const json& actions = r.value("actions", json::array());
    if (!r.value("job", json()).is_string() && actions.empty()) {
      std::printf("nothing was running\n");
      return kExitOk;
    }
    if (r["job"].is_string()) {
      std::printf("job %s: terminating (it ends job.terminated; the queue halts)\n",
                  Str(r, "job").c_str());
    }
    for (const auto& a : actions) {
      if (a.is_string()) {
        std::printf("action %s: SIGTERM sent (SIGKILL after %s), or KILL QUERY\n",
                    a.get<std::string>().c_str(), Str(r, "kill_grace").c_str());
      }
    }
    return kExitOk;
  }
  if (cmd == "resume") {
    if (!ok) return Refused(r);
    if (r.value("was_halted", false)) {
      std::printf("resumed: the queue was halted: %s\n", Str(r, "reason").c_str());
    } else {
      std::printf("was not halted\n");
    }
    std::printf("%s job(s) queued\n", Str(r, "queued").c_str());
    return kExitOk;
  }
  if (cmd == "reload") {
    if (!ok) {
      for (const auto& e : r.value("errors", json::array())) {
        std::printf("%s\n", e.get<std::string>().c_str());
      }
      return Refused(r);
    }
    std::printf("reloaded: config %s -> %s, %s checks (%s kept their state), %s actions\n",
                Str(r, "prev_config_digest").c_str(), Str(r, "config_digest").c_str(),
                Str(r, "checks").c_str(), Str(r, "checks_kept").c_str(),
                Str(r, "actions").c_str());
    for (const auto& w : r.value("restart_needed", json::array())) {
      std::printf("note: changes to %s take effect after a restart\n",
                  w.get<std::string>().c_str());
    }
    return kExitOk;
  }
  return ok ? kExitOk : Refused(r);
}

}  // namespace warden::ctl
