#include "actions/alertmanager.h"

#include <cctype>
#include <map>

#include "actions/http_post.h"
#include "actions/notify.h"
#include "daemon/base/wall_time.h"
#include "daemon/base/words.h"

namespace warden {

bool IsLabelName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string AlertsUrl(std::string_view url) {
  std::string u(url);
  if (u.ends_with("/api/v2/alerts")) return u;
  while (u.ends_with("/")) u.pop_back();
  return u + "/api/v2/alerts";
}

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Every placeholder of the annotations; the labels take the first three.
std::map<std::string, std::string> Values(const Trigger& t, const std::string& action,
                                          const std::string& host) {
  auto v = NotifyValues(t, action, host);
  v["threshold"] = t.threshold;
  return v;
}
std::map<std::string, std::string> LabelValues(const Trigger& t, const std::string& action,
                                               const std::string& host) {
  return {{"check", t.name}, {"host", host}, {"action", action}};
}

class AlertmanagerAction final : public Action {
 public:
  AlertmanagerAction(std::string url, Pairs labels, Pairs annotations)
      : url_(std::move(url)), labels_(std::move(labels)), annotations_(std::move(annotations)) {}

  void Run(Runtime& rt, const ActionCommon& common, const Trigger& trigger, Done done) override {
    // Validated at load: the expansions cannot fail here.
    nlohmann::json alert = nlohmann::json::object();
    auto lv = LabelValues(trigger, common.name, rt.host);
    auto av = Values(trigger, common.name, rt.host);
    for (const auto& [k, v] : labels_) alert["labels"][k] = ExpandPlaceholders(v, lv).value();
    alert["annotations"] = nlohmann::json::object();
    for (const auto& [k, v] : annotations_) {
      alert["annotations"][k] = ExpandPlaceholders(v, av).value();
    }
    const std::string now = Rfc3339FromMs(WallMsNow());
    const bool resolved = trigger.resolve || trigger.state == "ok";
    if (resolved) {
      alert["endsAt"] = now;
    } else {
      alert["startsAt"] = now;
    }
    HttpRequest req;
    req.url = url_;
    req.headers = {"Content-Type: application/json"};
    req.body = nlohmann::json::array({alert}).dump(-1, ' ', false,
                                                  nlohmann::json::error_handler_t::replace);
    nlohmann::json labels = alert["labels"];
    PostWithRetry(rt, std::move(req), common.timeout, {},
                  [done = std::move(done), resolved, labels](ActionOutcome out) {
                    out.extra["alert"] = resolved ? "resolved" : "firing";
                    out.extra["labels"] = labels;
                    done(std::move(out));
                  });
  }

 private:
  const std::string url_;
  const Pairs labels_;
  const Pairs annotations_;
};

constexpr OptionSpec kOptions[] = {
    opt::Text("url", "Alertmanager's base URL (http:// or https://)").Required(),
    opt::MultiLine("labels",
                   "NAME=VALUE words: the alert's labels (alertname = {check}, instance = {host} "
                   "unless set)"),
    opt::MultiLine("annotations", "NAME=VALUE words: the alert's annotations"),
};

constexpr const char* kExample = R"([action page_alertmanager]
type        = alertmanager
url         = http://127.0.0.1:9093
labels      = severity=critical team=dba
annotations = summary="{check} is {state} on {host}"
              description="value {value}, threshold {threshold}"
timeout     = 10s
)";

// NAME=VALUE words of `key`, each value's placeholders among `values`.
Pairs ReadPairs(OptionReader& opts, const char* key,
                const std::map<std::string, std::string>& values, const char* why) {
  Pairs out;
  auto text = opts.MultiLineText(key);
  if (!text) return out;
  const ConfigEntry& entry = *opts.Find(key);
  auto words = SplitWords(*text, "quote it");
  if (!words) {
    opts.Error(entry, std::string(key) + ": " + words.error());
    return out;
  }
  for (auto& w : *words) {
    size_t eq = w.find('=');
    std::string name = w.substr(0, eq);
    if (eq == std::string::npos) {
      opts.Error(entry, std::string(key) + ": '" + w + "' is not NAME=VALUE");
    } else if (!IsLabelName(name)) {
      opts.Error(entry, std::string(key) + ": '" + name +
                            "' is not a label name (letters, digits and _, not starting with a "
                            "digit)");
    } else if (std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.first == name; })) {
      opts.Error(entry, std::string(key) + ": " + name + " is set twice");
    } else if (auto x = ExpandPlaceholders(w.substr(eq + 1), values); !x) {
      opts.Error(entry, std::string(key) + ": " + name + ": " + x.error() + why);
    } else {
      out.emplace_back(std::move(name), w.substr(eq + 1));
    }
  }
  return out;
}

std::unique_ptr<Action> MakeAlertmanager(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  std::string url;
  if (auto u = opts.Text("url")) {
    if (Status bad = CheckHttpUrl(*u); !bad.ok()) {
      opts.Error(*opts.Find("url"), "url: " + bad.message());
    } else {
      url = AlertsUrl(*u);
    }
  }
  Pairs labels = ReadPairs(opts, "labels", LabelValues(Trigger{}, "", ""),
                           " (labels name the alert: they must read the same when it fires and "
                           "when it resolves; put the state and the value in annotations)");
  Pairs annotations = ReadPairs(opts, "annotations", Values(Trigger{}, "", ""), "");
  auto has = [&](const char* name) {
    return std::any_of(labels.begin(), labels.end(), [&](const auto& p) { return p.first == name; });
  };
  if (!has("instance")) labels.insert(labels.begin(), {"instance", "{host}"});
  if (!has("alertname")) labels.insert(labels.begin(), {"alertname", "{check}"});
  if (opts.diag().errors().size() != errors_before) return nullptr;
  return std::make_unique<AlertmanagerAction>(std::move(url), std::move(labels),
                                              std::move(annotations));
}

}  // namespace

const ActionType kAlertmanagerActionType = {
    "alertmanager",
    "posts an alert to Alertmanager (v2 API), resolved when the check recovers; informs only",
    /*guarded=*/true, /*uses_mysql=*/false, kOptions, kExample, &MakeAlertmanager,
    /*informs=*/true, /*resolves=*/true};

}  // namespace warden
