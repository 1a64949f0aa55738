// JobRunner: the journal, <state_dir>/jobs.json: what is written before and
// after each step, and what Start() makes of a job it finds there.
#include "daemon/jobs/job_runner.h"

#include <ev.h>

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>

#include "daemon/base/atomic_file.h"
#include "daemon/engine/events.h"
#include "daemon/engine/executor.h"
#include "daemon/engine/guard.h"
#include "daemon/engine/scheduler.h"
#include "daemon/engine/state.h"
#include "daemon/io/fleet.h"
#include "daemon/jobs/job_runner_internal.h"

namespace warden {

using nlohmann::json;
using job_internal::StepLabel;

namespace {

constexpr int kJournalFormat = 1;

}  // namespace

json JobRunner::JournalJson() const {
  json j = {{"format", kJournalFormat}};
  json queue = json::array();
  for (const auto& e : queue_) {
    queue.push_back({{"job", e.job},
                     {"trigger", e.trigger},
                     {"trigger_name", e.trigger_name},
                     {"queued_ms", e.queued_ms}});
  }
  j["queue"] = std::move(queue);
  auto slot_json = [](const Slot& s) -> json {
    if (s.key.empty()) return nullptr;
    return {{"group", s.group}, {"key", s.key}, {"value", s.value}};
  };
  j["halt"] = halt_ ? json{{"reason", halt_->reason},
                           {"job", halt_->job},
                           {"step", halt_->step},
                           {"since_ms", halt_->since_ms},
                           {"slot", slot_json(halt_->slot)}}
                    : json(nullptr);
  if (halt_ && !halt_->rollback.empty()) {
    j["halt"]["rollback"] = {{"job", halt_->rollback},
                             {"result", halt_->rollback_result},
                             {"error", halt_->rollback_error}};
  }
  json releases = json::array();
  for (const auto& r : releases_) releases.push_back(slot_json(r));
  j["releases"] = std::move(releases);
  if (run_) {
    json steps = json::array();
    for (const auto& s : run_->steps) {
      steps.push_back({{"step", s.step},
                       {"started_ms", s.started_ms},
                       {"ended_ms", s.ended_ms},
                       {"result", s.result}});
    }
    j["running"] = {{"job", run_->job->name},
                    {"trigger", run_->entry.trigger},
                    {"trigger_name", run_->entry.trigger_name},
                    {"started_ms", run_->started_ms},
                    {"step_count", run_->job->steps.size()},
                    {"slot", slot_json(run_->slot)},
                    {"steps", std::move(steps)}};
    if (!run_->rollback_of.empty()) j["running"]["rollback_of"] = run_->rollback_of;
  } else {
    j["running"] = nullptr;
  }
  return j;
}

void JobRunner::Save(std::function<void(const warden::Status&)> done) {
  // Strings from outside (a trigger's name, a step's error) may hold bytes
  // that are not UTF-8: replaced, never thrown on.
  std::string text = JournalJson().dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  std::weak_ptr<bool> alive = alive_;
  writer_->Post(
      "journal",
      [path = path_, text = std::move(text)] { return WriteFileAtomically(path, text, 0600, 0750); },
      [this, alive, done = std::move(done)](const warden::Status& s) {
        if (alive.expired()) return;
        Saved(s);
        if (done) done(s);
      });
}

void JobRunner::Saved(const warden::Status& s) {
  if (!s.ok()) {
    if (journal_error_.empty()) {
      journal_error_since_ms_ = time_.WallMs();
      spdlog::error("cannot write the job journal {}: {} (no job step starts until it is written)",
                    path_, s.message());
    }
    journal_error_ = s.message();
  } else if (!journal_error_.empty()) {
    spdlog::warn("the job journal {} is written again after {} s", path_,
                 (time_.WallMs() - journal_error_since_ms_) / 1000);
    journal_error_.clear();
    journal_error_since_ms_ = 0;
  }
}

Status JobRunner::Start(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  std::string problem;
  struct stat st {};
  const bool exists = ::stat(path_.c_str(), &st) == 0;
  Expected<std::string> text = exists ? ReadSmallFile(path_, 16 << 20) : Expected<std::string>("");
  if (!text) problem = text.error();
  json running;
  if (exists && text) {
    json j = json::parse(*text, nullptr, false);
    auto bad = [&](const std::string& why) {
      if (problem.empty()) problem = path_ + ": " + why;
    };
    if (j.is_discarded() || !j.is_object()) {
      bad("not JSON");
    } else if (j.value("format", 0) != kJournalFormat) {
      bad("unknown format " + j.value("format", json()).dump());
    } else {
      try {
        for (const auto& e : j.at("queue")) {
          queue_.push_back(Entry{e.at("job").get<std::string>(), e.at("trigger").get<std::string>(),
                                 e.at("trigger_name").get<std::string>(),
                                 e.at("queued_ms").get<std::int64_t>()});
        }
        auto slot_from = [](const json& v) {
          Slot s;
          if (v.is_object()) {
            s.group = v.at("group").get<std::string>();
            s.key = v.at("key").get<std::string>();
            s.value = v.at("value").get<std::string>();
          }
          return s;
        };
        if (const json& h = j.at("halt"); !h.is_null()) {
          halt_ = Halt{h.at("reason").get<std::string>(), h.at("job").get<std::string>(),
                       h.at("step").get<std::string>(), h.at("since_ms").get<std::int64_t>(),
                       slot_from(h.value("slot", json())), "", "", ""};
          if (const json& rb = h.value("rollback", json()); rb.is_object()) {
            halt_->rollback = rb.at("job").get<std::string>();
            halt_->rollback_result = rb.at("result").get<std::string>();
            halt_->rollback_error = rb.at("error").get<std::string>();
          }
        }
        for (const auto& r : j.value("releases", json::array())) {
          releases_.push_back(slot_from(r));
        }
        running = j.at("running");
        if (!running.is_null()) {
          (void)running.at("job").get<std::string>();
          (void)running.at("steps").size();
        }
      } catch (const json::exception& e) {
        queue_.clear();
        halt_.reset();
        running = nullptr;
        bad(std::string("malformed: ") + e.what());
      }
    }
  }
  if (!problem.empty()) {
    std::string aside = path_ + ".corrupt-" + std::to_string(time_.WallMs());
    if (::rename(path_.c_str(), aside.c_str()) == 0) problem += "; set aside as " + aside;
    spdlog::error("job journal unusable: {}", problem);
    // What ran before is unknown: nothing starts until an operator looked.
    SetHalt(Halt{"the job journal was unusable (" + problem +
                     "); check the host, then wardenctl resume",
                 "", "", time_.WallMs(), Slot{}, "", "", ""});
  }
  struct PendingRollback {
    std::string job, step, error;
  };
  std::optional<PendingRollback> rollback;
  if (!running.is_null() && running.is_object() && running.contains("rollback_of")) {
    // A rollback cut short: what it undid and what it did are both
    // unknown. Reported, never run again nor followed by another.
    const std::string job = running.value("job", "");
    const json& steps = running["steps"];
    const std::string step =
        steps.is_array() && !steps.empty() ? steps.back().value("step", "") : std::string();
    const std::string detail =
        step.empty() ? "wardend stopped before its first step"
                     : "wardend stopped during or after " + step + "; it was not run again";
    json f = {{"job", job},
              {"rollback_of", running.value("rollback_of", "")},
              {"step", step},
              {"result", "interrupted"},
              {"error", detail}};
    if (!halt_) {
      halt_ = Halt{"rollback job " + job + " was interrupted: " + detail, job, step,
                   time_.WallMs(), Slot{}, "", "", ""};
    }
    halt_->rollback = job;
    halt_->rollback_result = "interrupted";
    halt_->rollback_error = detail;
    events_.Emit("job.rollback.fail", f);
    spdlog::error("ROLLBACK job {} was interrupted: {}", job, detail);
  } else if (!running.is_null() && running.is_object() &&
      (!running["steps"].is_array() || running["steps"].empty())) {
    // Stopped before its first step (waiting for the guard or a slot):
    // nothing ran, so it simply goes back to the front of the queue. A
    // slot it took is found again by its next acquire (held by this host).
    const std::string job = running.value("job", "");
    spdlog::warn("job {} had not started its first step when wardend stopped: queued again",
                 job);
    queue_.push_front(Entry{job, running.value("trigger", "ctl"),
                            running.value("trigger_name", ""), time_.WallMs()});
  } else if (!running.is_null() && running.is_object()) {
    // Cut short by a crash or a kill: report it, halt, run nothing again.
    const std::string job = running.value("job", "");
    const json& steps = running["steps"];
    const json& last = steps.back();
    const std::string step = last.value("step", "");
    const size_t index = steps.size();
    std::string detail;
    if (last.value("ended_ms", std::int64_t{0}) == 0) {
      detail = "wardend stopped while " + step + " was in flight (started " +
               Rfc3339FromMs(last.value("started_ms", std::int64_t{0})) +
               "); it was not run again";
    } else {
      detail = "wardend stopped after " + step + " ended (" + last.value("result", "") +
               ") and before the next step started";
    }
    size_t count = running.value("step_count", size_t{0});
    json f = {{"job", job},
              {"step", step},
              {"step_index", index},
              {"steps", count},
              {"result", "interrupted"},
              {"error", detail},
              {"started", Rfc3339FromMs(running.value("started_ms", std::int64_t{0}))}};
    Slot slot;
    if (const json& sj = running.value("slot", json()); sj.is_object()) {
      slot = Slot{sj.value("group", ""), sj.value("key", ""), sj.value("value", "")};
      f["slot"] = slot.group;   // kept until wardenctl resume
    }
    events_.Emit("job.interrupted", f);
    spdlog::error("job {} was interrupted: {}", job, detail);
    SetHalt(Halt{"job " + job + " was interrupted at " + StepLabel(index - 1, count, step) +
                     ": " + detail + "; check the host, then wardenctl resume",
                 job, step, time_.WallMs(), slot, "", "", ""});
    rollback = PendingRollback{job, step, detail};
  }
  if (halt_) guard_.SetHalted(true, halt_->reason);
  Save();
  ReleaseSlots();   // left over from before a restart
  ArmSchedules();
  if (rollback) StartRollback(rollback->job, rollback->step, rollback->error, "interrupted");
  Pump();
  if (!problem.empty()) return Status::Invalid(problem);
  return Status::Ok();
}

void JobRunner::SetHalt(Halt h) {
  halt_ = std::move(h);
  guard_.SetHalted(true, halt_->reason);
}

}  // namespace warden
