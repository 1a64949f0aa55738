#include "daemon/engine/guard.h"

#include "daemon/io/mutex_client.h"

namespace warden {

namespace {
// "19m57s left": rounded up to seconds, in hours, minutes and seconds, for
// whoever reads why an action waits.
std::string Left(std::chrono::steady_clock::duration d) {
  auto ms = std::chrono::duration_cast<Duration>(d);
  if (ms.count() < 0) ms = Duration(0);
  long long s = (ms.count() + 999) / 1000;
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "m";
  if (s % 60 != 0 || s == 0) out += std::to_string(s % 60) + "s";
  return out + " left";
}
}  // namespace

void Guard::SetPaused(bool paused, std::string reason) {
  PauseScope host;
  if (!paused) {
    pauses_.Remove(host);
    return;
  }
  Pause p;
  p.scope = host;
  p.reason = std::move(reason);
  p.at_ms = time_->WallMs();
  pauses_.Set(std::move(p));
}

const Pause* Guard::host_pause() const {
  const Pause* p = pauses_.Find(PauseScope{});
  if (!p || (p->until_ms != 0 && p->until_ms <= time_->WallMs())) return nullptr;
  return p;
}

std::optional<GuardDecision> Guard::Switches(const std::string& action,
                                             const std::string& check, bool past_halt) {
  static const std::vector<std::string> kNone;
  auto g = groups_.find(action);
  const auto now = time_->WallMs();
  if (on_expired_) {
    std::vector<Pause> gone = pauses_.TakeExpired(now);
    if (!gone.empty()) on_expired_(std::move(gone));
  }
  // A job's steps are asked for as "job:NAME" (daemon/jobs): its pause
  // (--action NAME) names the job. Actions and jobs share one namespace.
  const std::string name = action.rfind("job:", 0) == 0 ? action.substr(4) : action;
  if (const Pause* p = pauses_.Blocking(name, g != groups_.end() ? g->second : kNone, check, now)) {
    return GuardDecision{false, "paused", DescribeBlock(*p, now)};
  }
  if (halted_ && !past_halt) return GuardDecision{false, "halted", "queue halted: " + halt_reason_};
  return std::nullopt;
}

void Guard::Consult(const ActionCommon& action, std::function<void(GuardDecision)> done,
                    const std::string& check, bool past_halt) {
  if (auto no = Switches(action.name, check, past_halt)) {
    done(std::move(*no));
    return;
  }
  if (!mutex_) {
    done(Local(action));
    return;
  }
  ActionCommon copy = action;
  mutex_->Query([this, copy, check, past_halt, done = std::move(done)](MutexAnswer answer) {
    if (answer.held) {
      done({false, "mutex", "mutex held: " + answer.reason});
      return;
    }
    // Re-check the host switches: they may have changed while we waited.
    if (auto no = Switches(copy.name, check, past_halt)) {
      done(std::move(*no));
      return;
    }
    done(Local(copy));
  });
}

GuardDecision Guard::Local(const ActionCommon& action) {
  auto now = time_->Now();
  History& h = history_[action.name];
  if (h.running) return {false, "running", "a previous run of " + action.name + " is still in flight"};
  if (action.cooldown && h.last_end && now - *h.last_end < *action.cooldown) {
    return {false, "cooldown",
            "cooldown " + FormatDuration(*action.cooldown) + ": " + Left(*h.last_end + *action.cooldown - now)};
  }
  if (action.budget) {
    while (!h.starts.empty() && now - h.starts.front() >= action.budget->window) h.starts.pop_front();
    if (static_cast<int>(h.starts.size()) >= action.budget->count) {
      return {false, "budget",
              "budget " + std::to_string(action.budget->count) + " per " +
                  FormatDuration(action.budget->window) + " spent: next place in " +
                  Left(h.starts.front() + action.budget->window - now)};
    }
  }
  if (action.dry_run) return {false, "dry_run", "dry_run = yes: would run " + action.name};
  return {true, "", ""};
}

void Guard::RecordStart(const ActionCommon& action, Clock::time_point now) {
  History& h = history_[action.name];
  h.running = true;
  if (action.budget) {
    // Only what the window can still count is kept: bounded memory.
    while (!h.starts.empty() && now - h.starts.front() >= action.budget->window) h.starts.pop_front();
    h.starts.push_back(now);
  }
}

void Guard::RecordEnd(const std::string& action, Clock::time_point now) {
  History& h = history_[action];
  h.running = false;
  h.last_end = now;
}

bool Guard::Running(const std::string& action) const {
  auto it = history_.find(action);
  return it != history_.end() && it->second.running;
}

}  // namespace warden
