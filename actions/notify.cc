#include "actions/notify.h"

namespace warden {

namespace {

bool IsPlaceholderChar(char c) { return (c >= 'a' && c <= 'z') || c == '_'; }

}  // namespace

Expected<std::string> ExpandPlaceholders(std::string_view text,
                                         const std::map<std::string, std::string>& values) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '{') {
      size_t j = i + 1;
      while (j < text.size() && IsPlaceholderChar(text[j])) ++j;
      if (j > i + 1 && j < text.size() && text[j] == '}') {
        std::string name(text.substr(i + 1, j - i - 1));
        auto it = values.find(name);
        if (it == values.end()) {
          std::string known;
          for (const auto& [k, v] : values) known += (known.empty() ? "{" : " {") + k + "}";
          return Status::Error("unknown placeholder {" + name + "} (known: " + known + ")");
        }
        out += it->second;
        i = j + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

std::map<std::string, std::string> NotifyValues(const Trigger& trigger, const std::string& action,
                                                const std::string& host) {
  return {{"check", trigger.name},
          {"state", trigger.state},
          {"value", trigger.value},
          {"host", host},
          {"action", action}};
}

namespace {

class NotifyAction final : public Action {
 public:
  NotifyAction(std::string severity, std::string message)
      : severity_(std::move(severity)), message_(std::move(message)) {}

  void Run(Runtime& rt, const ActionCommon& common, const Trigger& trigger, Done done) override {
    ActionOutcome out;
    auto message = ExpandPlaceholders(message_, NotifyValues(trigger, common.name, rt.host));
    out.ok = message.ok();  // validated at load time; cannot fail here
    out.extra["severity"] = severity_;
    out.extra["message"] = message.ok() ? *message : message_;
    if (!message.ok()) out.error = message.error();
    done(std::move(out));
  }

 private:
  const std::string severity_;
  const std::string message_;
};

constexpr const char* kSeverities[] = {"info", "warning", "critical"};
constexpr OptionSpec kOptions[] = {
    opt::Choice("severity", kSeverities, "the event's severity").Default("warning"),
    opt::MultiLine("message", "the text of the event").Required(),
};

constexpr const char* kExample = R"([action tell_dba]
type     = notify
severity = critical
message  = {check} is {state} on {host} (value {value})
)";

std::unique_ptr<Action> MakeNotify(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  std::string severity = opts.GetChoice("severity").value_or("");
  std::string message;
  if (auto text = opts.MultiLineText("message")) {
    message = *text;
    auto check = ExpandPlaceholders(message, NotifyValues(Trigger{}, "", ""));
    if (!check) opts.Error(*opts.Find("message"), "message: " + check.error());
  }
  if (opts.diag().errors().size() != errors_before) return nullptr;
  return std::make_unique<NotifyAction>(std::move(severity), std::move(message));
}

}  // namespace

const ActionType kNotifyActionType = {
    "notify", "records an event with a severity and a message; changes nothing",
    /*guarded=*/false, /*uses_mysql=*/false, kOptions, kExample, &MakeNotify};

}  // namespace warden
