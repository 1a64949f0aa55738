#include "actions/service.h"

#include <cctype>

#include "actions/exec.h"
#include "daemon/base/words.h"
#include "daemon/io/process.h"

namespace warden {
namespace {

constexpr const char* kDefaultServiceCommand = "systemctl";

void ReplaceAll(std::string& s, std::string_view what, std::string_view with) {
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size())) {
    s.replace(pos, what.size(), with);
  }
}

bool ValidServiceName(std::string_view name) {
  if (name.empty() || name.front() == '-') return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view(":_.@\\-").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

class ServiceAction final : public Action {
 public:
  ServiceAction(std::string name, std::string op) : name_(std::move(name)), op_(std::move(op)) {}

  void Run(Runtime& rt, const ActionCommon& common, const Trigger& trigger, Done done) override {
    ActionOutcome out;
    if (!rt.processes) {
      out.error = "internal error: no process runner in this runtime";
      done(std::move(out));
      return;
    }
    const std::string command =
        rt.service_command.empty() ? std::string(kDefaultServiceCommand) : rt.service_command;
    auto argv = ServiceArgv(command, op_, name_);
    if (!argv) {
      out.error = argv.error();
      done(std::move(out));
      return;
    }
    ProcessSpec spec;
    spec.argv = std::move(*argv);
    spec.env = TriggerEnvironment(common, trigger);
    spec.timeout = common.timeout;
    spec.capture_limit = kActionCaptureLimit;
    process_.Spawn(*rt.processes, std::move(spec),
                   [service = name_, op = op_, done = std::move(done)](ProcessResult r) {
                     ActionOutcome o = ProcessOutcome(r);
                     o.extra["service"] = service;
                     o.extra["op"] = op;
                     done(std::move(o));
                   });
  }

  bool Terminate(Runtime& rt, Duration kill_grace) override {
    return process_.Terminate(rt.processes, kill_grace);
  }

 private:
  RunningProcess process_;
  const std::string name_;
  const std::string op_;
};

constexpr const char* kOps[] = {"start", "stop", "restart", "reload"};
constexpr OptionSpec kOptions[] = {
    opt::Text("name", "the service to act on, e.g. mariadb").Required(),
    opt::Choice("op", kOps, "start, stop, restart or reload").Required(),
};

constexpr const char* kExample = R"([action restart_mariadb]
type     = service
name     = mariadb
op       = restart
timeout  = 5m
cooldown = 30m
budget   = 2 per 1d
)";

std::unique_ptr<Action> MakeService(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  std::string name = opts.Text("name").value_or("");
  if (!name.empty() && !ValidServiceName(name)) {
    opts.Error(*opts.Find("name"), "name: '" + name +
                                       "' is not a service name (letters, digits and : _ . @ \\ "
                                       "-, not starting with '-')");
  }
  std::optional<std::string> op = opts.GetChoice("op");
  if (opts.diag().errors().size() != errors_before || name.empty() || !op) return nullptr;
  return std::make_unique<ServiceAction>(std::move(name), std::move(*op));
}

}  // namespace

Expected<std::vector<std::string>> ServiceArgv(const std::string& service_command,
                                               const std::string& op, const std::string& name) {
  auto words = SplitWords(service_command, "quote it");
  if (!words) return Status::Error("service_command: " + words.error());
  bool placeholders = false;
  for (const auto& w : *words) {
    if (w.find("{op}") != std::string::npos || w.find("{name}") != std::string::npos) {
      placeholders = true;
    }
  }
  if (!placeholders) {
    words->push_back(op);
    words->push_back(name);
    return words;
  }
  for (auto& w : *words) {
    ReplaceAll(w, "{op}", op);
    ReplaceAll(w, "{name}", name);
  }
  return words;
}

const ActionType kServiceActionType = {
    "service", "starts, stops, restarts or reloads a system service (systemctl by default)",
    /*guarded=*/true, /*uses_mysql=*/false, kOptions, kExample, &MakeService};

}  // namespace warden
