// The assembly: reads the INI files, hands each section to its loader (one
// file pair per section kind, daemon/config/<kind>_config.h), then checks
// what sections say about each other (names, references, depends cycles).
// A new section kind is a new file pair and one line in Loader::Load.
#include "daemon/config/config.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "daemon/config/action_config.h"
#include "daemon/config/check_config.h"
#include "daemon/config/control_config.h"
#include "daemon/config/daemon_config.h"
#include "daemon/config/fleet_config.h"
#include "daemon/config/fluentd_config.h"
#include "daemon/config/job_config.h"
#include "daemon/config/log_config.h"
#include "daemon/config/metrics_config.h"
#include "daemon/config/mutex_config.h"
#include "daemon/config/mysql_config.h"
#include "daemon/config/section_common.h"
#include "daemon/config/maintenance_config.h"
#include "daemon/config/wait_config.h"

namespace warden {
namespace {

class Loader {
 public:
  Loader(const LoadOptions& options, Diagnostics& diag) : options_(options), diag_(diag) {}

  std::shared_ptr<const Config> Load(const std::string& path) {
    auto config = std::make_shared<Config>();
    config->path = path;
    IniOptions ini;
    ini.check_ownership = options_.check_ownership;
    ini.follow_includes = options_.follow_includes;
    std::vector<RawSection> sections = ReadIniFiles(path, ini, diag_);
    Digest all;
    for (const auto& s : sections) all.Add(SectionDigest(s));
    config->digest = all.Hex();

    Config& c = *config;
    // [daemon] first: its interval is the default `every` of checks.
    for (const auto& s : sections) {
      if (s.kind != "daemon") continue;
      NoName(s, diag_);
      LoadDaemonSection(s, c.daemon, diag_);
    }
    bool have_mutex = false;
    for (const auto& s : sections) {
      if (s.kind == "daemon") continue;
      if (s.kind == "log") {
        NoName(s, diag_);
        LoadLogSection(s, c.log, diag_);
      } else if (s.kind == "control") {
        NoName(s, diag_);
        LoadControlSection(s, c.control, diag_);
      } else if (s.kind == "mysql") {
        LoadMysqlSection(s, options_, c.mysql, c.secrets, diag_);
      } else if (s.kind == "mutex") {
        have_mutex = true;
        NoName(s, diag_);
        LoadMutexSection(s, options_, c.mutex, c.secrets, diag_);
      } else if (s.kind == "check") {
        LoadCheckSection(s, c.daemon.interval, c.checks, connection_refs_, diag_);
      } else if (s.kind == "action") {
        LoadActionSection(s, c.actions, connection_refs_, diag_);
      } else if (s.kind == "fluentd") {
        NoName(s, diag_);
        LoadFluentdSection(s, c.fluentd, diag_);
      } else if (s.kind == "job") {
        LoadJobSection(s, c.jobs, diag_);
      } else if (s.kind == "wait") {
        LoadWaitSection(s, c.waits, diag_);
      } else if (s.kind == "maintenance") {
        LoadMaintenanceSection(s, c.maintenance, diag_);
      } else if (s.kind == "fleet") {
        NoName(s, diag_);
        LoadFleetSection(s, options_, c.fleet, diag_);
      } else if (s.kind == "metrics") {
        NoName(s, diag_);
        LoadMetricsSection(s, c.metrics, diag_);
      } else {
        diag_.Error(s.where, "unknown section " + s.title() +
                                 " (known: daemon, log, control, mysql, mutex, fluentd, check, "
                                 "action, wait, job, fleet, metrics, maintenance)");
      }
    }
    if (!have_mutex && !sections.empty()) {
      diag_.Error(path + ": no [mutex] section: set url=…, backend=etcd or mode=off "
                         "(automation without a kill switch must be a decision)");
    }
    c.IndexChecks();
    CrossCheck(c);
    if (!diag_.ok()) return nullptr;
    return config;
  }

 private:
  // Actions, waits and jobs share one namespace: a check's on_crit and a
  // job's steps name them without saying which kind.
  void CrossCheckJobs(Config& c) {
    std::map<std::string, std::pair<std::string, Location>> names;
    auto claim = [&](const std::string& name, const std::string& kind, const Location& where) {
      auto [it, fresh] = names.emplace(name, std::make_pair(kind, where));
      if (!fresh) {
        diag_.Error(where, "[" + kind + " " + name + "] has the name of [" + it->second.first +
                               " " + name + "] (" + it->second.second.str() +
                               "): actions, waits and jobs share one namespace");
      }
    };
    for (const auto& a : c.actions) claim(a.common.name, "action", a.where);
    for (const auto& w : c.waits) claim(w.name, "wait", w.where);
    for (const auto& j : c.jobs) claim(j.name, "job", j.where);
    for (const auto& w : c.waits) {
      for (const auto& n : w.checks) {
        if (!c.FindCheck(n)) {
          diag_.Error(w.where, "[wait " + w.name + "] checks names '" + n +
                                   "', which is not a check");
        }
      }
    }
    for (const auto& j : c.jobs) {
      if (!j.slot.empty() && !c.fleet.enabled) {
        diag_.Error(j.where, "[job " + j.name + "] slot = " + j.slot +
                                 " needs a [fleet] section (the etcd endpoints that hold the "
                                 "slots)");
      }
      if (!j.on_fail.empty()) {
        if (j.on_fail == j.name) {
          diag_.Error(j.on_fail_where, "[job " + j.name + "] on_fail names the job itself");
        } else if (const JobConfig* rb = c.FindJob(j.on_fail)) {
          if (!rb->slot.empty()) {
            diag_.Error(j.on_fail_where, "[job " + j.name + "] on_fail = " + j.on_fail +
                                             ": a rollback job takes no fleet slot (" +
                                             rb->where.str() + " has slot = " + rb->slot + ")");
          }
        } else {
          diag_.Error(j.on_fail_where, "[job " + j.name + "] on_fail names '" + j.on_fail + "'" +
                                           (c.FindAction(j.on_fail) || c.FindWait(j.on_fail)
                                                ? ", which is not a job (a rollback is a job)"
                                                : ", which is not a job"));
        }
      }
      for (const auto& n : j.steps) {
        if (c.FindJob(n)) {
          diag_.Error(j.where, "[job " + j.name + "] step '" + n +
                                   "' is a job; a job's steps are actions and waits");
        } else if (!c.FindAction(n) && !c.FindWait(n)) {
          diag_.Error(j.where, "[job " + j.name + "] step '" + n +
                                   "' is neither an action nor a wait");
        }
      }
    }
  }

  // on_fail chains must end: A -> B -> A would roll back forever.
  void CheckRollbackCycles(const Config& c) {
    std::set<std::string> reported;
    for (const auto& start : c.jobs) {
      std::vector<std::string> path{start.name};
      const JobConfig* j = &start;
      while (!j->on_fail.empty() && j->on_fail != j->name) {
        const JobConfig* next = c.FindJob(j->on_fail);
        if (!next) break;
        auto seen = std::find(path.begin(), path.end(), next->name);
        if (seen != path.end()) {
          if (seen == path.begin() && !reported.count(start.name)) {
            std::string cycle;
            for (auto it = seen; it != path.end(); ++it) cycle += *it + " -> ";
            cycle += next->name;
            for (auto it = seen; it != path.end(); ++it) reported.insert(*it);
            diag_.Error(start.on_fail_where, "[job " + start.name + "] on_fail makes a cycle (" +
                                                 cycle + "): a rollback must not roll back to "
                                                 "what failed");
          }
          break;
        }
        path.push_back(next->name);
        j = next;
      }
    }
  }

  void CrossCheck(Config& c) {
    CrossCheckJobs(c);
    CheckRollbackCycles(c);
    for (const auto& m : c.maintenance) {
      if (m.scope_kind == "group" && !c.HasGroup(m.scope_name)) {
        diag_.Error(m.where, "[maintenance " + m.name + "] scope: no check, action or job is in "
                                 "group '" + m.scope_name + "'");
      } else if (m.scope_kind == "action" && !c.FindAction(m.scope_name) &&
                 !c.FindJob(m.scope_name)) {
        diag_.Error(m.where, "[maintenance " + m.name + "] scope: '" + m.scope_name +
                                 "' is neither an action nor a job");
      }
    }
    for (const auto& ref : connection_refs_) {
      if (!c.mysql.count(ref.name)) {
        if (ref.name.empty()) {
          diag_.Error(ref.where, ref.owner + " uses the default MySQL connection, but there is "
                                              "no [mysql] section (or set connection = NAME)");
        } else {
          diag_.Error(ref.where, ref.owner + ": connection '" + ref.name +
                                     "' names no [mysql " + ref.name + "] section");
        }
      }
    }
    std::map<std::string, const CheckConfig*> checks;
    for (const auto& cc : c.checks) checks[cc.common.name] = &cc;
    for (const auto& cc : c.checks) {
      for (const auto& d : cc.depends) {
        if (!checks.count(d)) {
          diag_.Error(cc.where, "[check " + cc.common.name + "] depends on '" + d +
                                    "', which is not a check");
        } else if (d == cc.common.name) {
          diag_.Error(cc.where, "[check " + cc.common.name + "] depends on itself");
        }
      }
      auto refs = [&](const std::vector<std::string>& names, const char* key) {
        for (const auto& n : names) {
          if (!c.FindAction(n) && !c.FindJob(n)) {
            diag_.Error(cc.where, "[check " + cc.common.name + "] " + key + " names '" + n +
                                      (c.FindWait(n) ? "', a wait: waits are steps of jobs"
                                                     : "', which is neither an action nor a job"));
          }
        }
      };
      refs(cc.on_warn, "on_warn");
      refs(cc.on_crit, "on_crit");
      refs(cc.on_error, "on_error");
      refs(cc.on_recover, "on_recover");
    }
    // depends cycles: depth-first search with colours.
    std::map<std::string, int> colour;  // 0 white, 1 grey, 2 black
    std::set<std::string> reported;
    std::function<void(const CheckConfig*, std::vector<std::string>&)> visit =
        [&](const CheckConfig* cc, std::vector<std::string>& path) {
          colour[cc->common.name] = 1;
          path.push_back(cc->common.name);
          for (const auto& d : cc->depends) {
            auto it = checks.find(d);
            if (it == checks.end() || d == cc->common.name) continue;
            if (colour[d] == 1) {
              std::string cycle;
              bool in = false;
              for (const auto& p : path) {
                if (p == d) in = true;
                if (in) cycle += p + " -> ";
              }
              cycle += d;
              if (reported.insert(d).second) {
                diag_.Error(it->second->where, "depends cycle: " + cycle);
              }
            } else if (colour[d] == 0) {
              visit(it->second, path);
            }
          }
          path.pop_back();
          colour[cc->common.name] = 2;
        };
    for (const auto& cc : c.checks) {
      if (colour[cc.common.name] == 0) {
        std::vector<std::string> path;
        visit(&cc, path);
      }
    }
    if (c.daemon.host_id.empty()) {
      char buf[256] = {};
      if (::gethostname(buf, sizeof buf - 1) == 0) c.daemon.host_id = buf;
      if (c.daemon.host_id.empty()) c.daemon.host_id = "localhost";
    }
  }

  const LoadOptions& options_;
  Diagnostics& diag_;
  std::vector<ConnectionRef> connection_refs_;   // from checks and actions
};

}  // namespace

void Config::IndexChecks() {
  check_index.clear();
  check_index.reserve(checks.size());
  for (size_t i = 0; i < checks.size(); ++i) check_index.try_emplace(checks[i].common.name, i);
}

const CheckConfig* Config::FindCheck(const std::string& name) const {
  // The status page looks every check up by name: at 1,000 checks the
  // walk below was half of its cost.
  if (auto it = check_index.find(name);
      it != check_index.end() && it->second < checks.size() && checks[it->second].common.name == name) {
    return &checks[it->second];
  }
  for (const auto& c : checks) {
    if (c.common.name == name) return &c;
  }
  return nullptr;
}

const ActionConfig* Config::FindAction(const std::string& name) const {
  for (const auto& a : actions) {
    if (a.common.name == name) return &a;
  }
  return nullptr;
}

const WaitConfig* Config::FindWait(const std::string& name) const {
  for (const auto& w : waits) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

bool Config::HasGroup(const std::string& group) const {
  auto in = [&group](const std::vector<std::string>& groups) {
    return std::find(groups.begin(), groups.end(), group) != groups.end();
  };
  for (const auto& c : checks) {
    if (in(c.groups)) return true;
  }
  for (const auto& a : actions) {
    if (in(a.groups)) return true;
  }
  for (const auto& j : jobs) {
    if (in(j.groups)) return true;
  }
  return false;
}

const JobConfig* Config::FindJob(const std::string& name) const {
  for (const auto& j : jobs) {
    if (j.name == name) return &j;
  }
  return nullptr;
}

std::string Config::EventsPath() const {
  return log.events.empty() ? daemon.state_dir + "/events.jsonl" : log.events;
}

std::shared_ptr<const Config> LoadConfig(const std::string& path, const LoadOptions& options,
                                         Diagnostics& diag) {
  Loader loader(options, diag);
  return loader.Load(path);
}

}  // namespace warden
