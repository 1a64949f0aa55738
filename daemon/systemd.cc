#include "daemon/systemd.h"

#include <ev.h>

#include <array>
#include <map>

namespace warden {
namespace {

using nlohmann::json;

// The fields that say most, first; the rest follow in the object's order.
constexpr std::array kFirst = {"action", "check", "job",   "step",   "prev_state", "state",
                               "result", "value", "threshold", "reason", "detail", "error"};
// Every event has these; WARDEN_* and the journal's own fields carry them.
constexpr std::array kCommon = {"host", "event", "seq", "time", "version"};

template <std::size_t N>
bool In(const std::array<const char*, N>& names, const std::string& key) {
  for (const char* n : names) {
    if (key == n) return true;
  }
  return false;
}

// key=value, the value as is when it is one plain word, else as JSON.
void AppendPair(std::string& out, const std::string& key, const json& v) {
  if (v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty())) return;
  out += ' ';
  out += key;
  out += '=';
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    bool plain = true;
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (u <= ' ' || c == '"' || c == '=' || c == '\\' || u == 0x7f) {
        plain = false;
        break;
      }
    }
    if (plain) {
      out += s;
      return;
    }
  }
  out += v.dump(-1, ' ', false, json::error_handler_t::replace);
}

JournalPriority PriorityOfEvent(const std::string& name, const json& e) {
  const std::string state = e.value("state", "");
  const std::string result = e.value("result", "");
  if (name == "events.dropped" || name == "job.fail" || name == "job.interrupted" ||
      name == "job.terminated" || name == "job.rollback.fail" ||
      (name == "daemon.reload" && result == "fail")) {
    return JournalPriority::kErr;
  }
  if ((name == "check.state" && (state == "crit" || state == "error")) ||
      (name == "action.finish" && result != "ok") || name == "action.blocked" ||
      name == "daemon.terminate" || name == "job.rollback.start" ||
      name == "job.rollback.finish") {
    return JournalPriority::kWarning;
  }
  if ((name == "check.state" && state == "warn") ||
      (name == "mutex.state" && e.value("held", false)) || name == "daemon.start" ||
      name == "daemon.stop" || name == "daemon.reload") {
    return JournalPriority::kNotice;
  }
  return JournalPriority::kInfo;
}

}  // namespace

JournalEntry EventJournalEntry(const json& e) {
  JournalEntry out;
  const std::string name = e.value("event", "");
  std::string seq;
  if (auto it = e.find("seq"); it != e.end()) seq = it->dump();
  out.priority = PriorityOfEvent(name, e);
  out.message = name + " #" + seq + ":";
  for (const char* key : kFirst) {
    if (auto it = e.find(key); it != e.end()) AppendPair(out.message, key, *it);
  }
  for (const auto& [key, v] : e.items()) {
    if (!In(kFirst, key) && !In(kCommon, key)) AppendPair(out.message, key, v);
  }
  out.fields.push_back({"WARDEN_EVENT", name});
  out.fields.push_back({"WARDEN_SEQ", seq});
  for (auto [key, field] : {std::pair{"check", "WARDEN_CHECK"}, std::pair{"action", "WARDEN_ACTION"},
                            std::pair{"job", "WARDEN_JOB"}}) {
    if (auto it = e.find(key); it != e.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      out.fields.push_back({field, it->get<std::string>()});
    }
  }
  return out;
}

std::string StatusLine(const StatusFacts& f) {
  static constexpr std::array kOrder = {"ok", "warn", "crit", "error", "pending", "skipped"};
  std::map<std::string, int> counts;
  for (const auto& s : f.check_states) ++counts[s];
  std::string line;
  auto add = [&line](const std::string& part) {
    if (!line.empty()) line += ", ";
    line += part;
  };
  for (const char* state : kOrder) {
    if (auto it = counts.find(state); it != counts.end()) {
      add(std::to_string(it->second) + " " + state);
      counts.erase(it);
    }
  }
  for (const auto& [state, n] : counts) add(std::to_string(n) + " " + state);
  if (line.empty()) line = "no checks";
  line += "; mutex " + (f.mutex.empty() ? std::string("unknown") : f.mutex);
  const json& jobs = f.jobs;
  std::size_t queued = 0;
  if (auto q = jobs.find("queue"); q != jobs.end() && q->is_array()) queued = q->size();
  const auto halt = jobs.find("halt");
  const auto running = jobs.find("running");
  if (halt != jobs.end() && halt->is_object()) {
    // The job and step, not the reason: one short line whatever the error.
    line += "; queue halted";
    const std::string job = halt->value("job", std::string());
    const std::string step = halt->value("step", std::string());
    if (!job.empty()) line += " (job " + job + (step.empty() ? "" : " at " + step) + ")";
  } else if (running != jobs.end() && running->is_object()) {
    line += "; job " + running->value("job", std::string("?")) + " at " +
            std::to_string(running->value("step_index", 0)) + "/" +
            std::to_string(running->value("steps", 0)) + " (" + running->value("step", std::string()) + ")";
    if (queued > 0) line += ", " + std::to_string(queued) + " queued";
  } else if (queued > 0) {
    line += "; " + std::to_string(queued) + " queued";
  } else {
    line += "; queue idle";
  }
  if (f.paused) line += "; paused";
  return line;
}

StatusNotifier::StatusNotifier(struct ev_loop* loop, Compute compute, Send send)
    : loop_(loop), compute_(std::move(compute)), send_(std::move(send)),
      timer_(std::make_unique<ev_timer>()) {
  ev_timer_init(timer_.get(), &StatusNotifier::OnTimer, 0, 0);
  timer_->data = this;
}

StatusNotifier::~StatusNotifier() { ev_timer_stop(loop_, timer_.get()); }

void StatusNotifier::Poke() {
  if (stopped_ || ev_is_active(timer_.get())) return;
  const double wait = std::max(0.0, last_sent_ + kMinInterval - ev_now(loop_));
  ev_timer_set(timer_.get(), wait, 0);
  ev_timer_start(loop_, timer_.get());
}

void StatusNotifier::Update() {
  if (stopped_) return;
  ev_timer_stop(loop_, timer_.get());
  last_sent_ = ev_now(loop_);
  std::string line = compute_();
  if (line == last_) return;
  last_ = std::move(line);
  send_(last_);
}

void StatusNotifier::Stop() {
  stopped_ = true;
  ev_timer_stop(loop_, timer_.get());
}

void StatusNotifier::OnTimer(struct ev_loop*, ev_timer* w, int) {
  static_cast<StatusNotifier*>(w->data)->Update();
}

}  // namespace warden
