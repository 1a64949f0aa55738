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

std::unique_ptr<Action> MakeNotify(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  std::string severity = "warning";
  if (opts.Has("severity")) {
    severity = opts.GetChoice("severity", {"info", "warning", "critical"}).value_or("");
  } else {
    opts.Find("severity");
  }
  std::string message;
  if (!opts.Has("message")) {
    (void)opts.Required("message", "the text of the event");
  } else if (auto text = opts.MultiLineText("message")) {
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
    /*guarded=*/false, /*uses_mysql=*/false, &MakeNotify};

}  // namespace warden
