#include "actions/exec.h"

#include <cctype>

#include "daemon/base/words.h"

namespace warden {

ActionOutcome ProcessOutcome(const ProcessResult& result) {
  ActionOutcome out;
  out.ok = result.success();
  out.exit_code = result.exit_code;
  out.signal = result.signal;
  if (!out.ok) out.error = result.Describe();
  out.stdout_tail = result.stdout_tail;
  out.stderr_tail = result.stderr_tail;
  if (result.timed_out && !result.terminated) out.extra["timed_out"] = true;
  if (result.terminated) out.extra["terminated"] = true;
  return out;
}

void RunningProcess::Spawn(ProcessRunner& runner, ProcessSpec spec, ProcessRunner::Done done) {
  // The id is cleared by the completion, which may come (a spawn failure)
  // only after Spawn returned: it is set first.
  auto id = id_;
  *id = runner.Spawn(std::move(spec), [id, done = std::move(done)](ProcessResult r) {
    *id = 0;
    done(std::move(r));
  });
}

bool RunningProcess::Terminate(ProcessRunner* runner, Duration kill_grace) {
  if (!runner || *id_ == 0) return false;
  return runner->Terminate(*id_, kill_grace);
}

std::vector<std::string> TriggerEnvironment(const ActionCommon& common, const Trigger& trigger) {
  return {
      "WARDEN_ACTION=" + common.name,        "WARDEN_TRIGGER=" + trigger.kind,
      "WARDEN_TRIGGER_NAME=" + trigger.name, "WARDEN_STATE=" + trigger.state,
      "WARDEN_VALUE=" + trigger.value,
  };
}

namespace {

bool IsEnvName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

class ExecAction final : public Action {
 public:
  ExecAction(std::vector<std::string> argv, std::vector<std::string> env)
      : argv_(std::move(argv)), env_(std::move(env)) {}

  void Run(Runtime& rt, const ActionCommon& common, const Trigger& trigger, Done done) override {
    if (!rt.processes) {
      ActionOutcome out;
      out.error = "internal error: no process runner in this runtime";
      done(std::move(out));
      return;
    }
    ProcessSpec spec;
    spec.argv = argv_;
    spec.env = TriggerEnvironment(common, trigger);
    spec.env.insert(spec.env.end(), env_.begin(), env_.end());
    spec.timeout = common.timeout;
    spec.capture_limit = kActionCaptureLimit;
    process_.Spawn(*rt.processes, std::move(spec),
                   [done = std::move(done)](ProcessResult r) { done(ProcessOutcome(r)); });
  }

  bool Terminate(Runtime& rt, Duration kill_grace) override {
    return process_.Terminate(rt.processes, kill_grace);
  }

 private:
  RunningProcess process_;
  const std::vector<std::string> argv_;
  const std::vector<std::string> env_;
};

constexpr OptionSpec kOptions[] = {
    opt::MultiLine("command", "the program and its arguments").Required(),
    opt::Bool("shell", "yes: run the command with /bin/sh -c instead of splitting it into words")
        .Default("no"),
    opt::MultiLine("env", "NAME=VALUE words added to the environment of the command"),
};

constexpr const char* kExample = R"([action page_oncall]
type    = exec
command = /usr/local/bin/page --team dba "replication broken"
timeout = 30s
env     = PAGER_PROFILE=db
)";

std::unique_ptr<Action> MakeExec(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  bool shell = opts.GetBool("shell").value_or(false);

  std::vector<std::string> argv;
  if (auto text = opts.MultiLineText("command")) {
    const ConfigEntry& entry = *opts.Find("command");
    if (shell) {
      argv = {"/bin/sh", "-c", *text};
    } else if (auto words = SplitWords(*text)) {
      argv = std::move(*words);
      size_t eq = argv[0].find('=');
      if (eq != std::string::npos && IsEnvName(std::string_view(argv[0]).substr(0, eq))) {
        opts.Error(entry, "command: '" + argv[0] +
                              "' would set an environment variable in a shell: use env = " +
                              QuoteWord(argv[0]) + ", or set shell = yes");
      }
    } else {
      opts.Error(entry, "command: " + words.error());
    }
  }

  std::vector<std::string> env;
  if (auto text = opts.MultiLineText("env")) {
    const ConfigEntry& entry = *opts.Find("env");
    if (auto words = SplitWords(*text, "quote it")) {
      for (auto& w : *words) {
        size_t eq = w.find('=');
        if (eq == std::string::npos) {
          opts.Error(entry, "env: '" + w + "' is not NAME=VALUE");
        } else if (!IsEnvName(std::string_view(w).substr(0, eq))) {
          opts.Error(entry, "env: '" + w.substr(0, eq) +
                                "' is not a variable name (letters, digits and _, not starting "
                                "with a digit)");
        } else {
          env.push_back(std::move(w));
        }
      }
    } else {
      opts.Error(entry, "env: " + words.error());
    }
  }

  if (opts.diag().errors().size() != errors_before) return nullptr;
  return std::make_unique<ExecAction>(std::move(argv), std::move(env));
}

}  // namespace

const ActionType kExecActionType = {
    "exec", "runs a command (argv split like a shell, no shell unless shell = yes)",
    /*guarded=*/true, /*uses_mysql=*/false, kOptions, kExample, &MakeExec};

}  // namespace warden
