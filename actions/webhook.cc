#include "actions/webhook.h"

#include <cctype>

#include "actions/http_post.h"
#include "actions/notify.h"
#include "daemon/base/secret_file.h"
#include "daemon/base/units.h"

namespace warden {

Expected<std::string> ExpandJsonPlaceholders(std::string_view text,
                                             const std::map<std::string, std::string>& values) {
  std::map<std::string, std::string> escaped;
  for (const auto& [k, v] : values) {
    std::string quoted =
        nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    escaped[k] = quoted.substr(1, quoted.size() - 2);
  }
  return ExpandPlaceholders(text, escaped);
}

namespace {

std::map<std::string, std::string> Values(const Trigger& t, const std::string& action,
                                          const std::string& host) {
  auto v = NotifyValues(t, action, host);
  v["threshold"] = t.threshold;
  return v;
}

class WebhookAction final : public Action {
 public:
  WebhookAction(std::string url, std::string body, std::vector<std::string> headers,
                std::string token_file)
      : url_(std::move(url)),
        body_(std::move(body)),
        headers_(std::move(headers)),
        token_file_(std::move(token_file)) {}

  void Run(Runtime& rt, const ActionCommon& common, const Trigger& trigger, Done done) override {
    HttpRequest req;
    req.url = url_;
    req.headers = headers_;
    std::vector<std::string> secrets;
    if (!token_file_.empty()) {
      auto token = ReadPrivateSecret(token_file_);
      if (!token) {
        ActionOutcome out;
        out.error = "token_file: " + token.error();
        done(std::move(out));
        return;
      }
      req.headers.push_back("Authorization: Bearer " + *token);
      secrets.push_back(*token);
    }
    auto body = ExpandJsonPlaceholders(body_, Values(trigger, common.name, rt.host));
    req.body = body ? *body : body_;   // validated at load: cannot fail
    PostWithRetry(rt, std::move(req), common.timeout, std::move(secrets), std::move(done));
  }

 private:
  const std::string url_;
  const std::string body_;
  const std::vector<std::string> headers_;
  const std::string token_file_;
};

constexpr OptionSpec kOptions[] = {
    opt::Text("url", "where to POST (http:// or https://)").Required(),
    opt::MultiLine("body", "JSON with placeholders, replaced JSON-escaped")
        .DefaultNote("every placeholder by name"),
    opt::MultiLine("headers", "one \"Name: value\" per line"),
    opt::Text("token_file", "a private file: its first line is sent as a Bearer token"),
};

constexpr const char* kDefaultBody =
    R"({"check": "{check}", "state": "{state}", "value": "{value}", )"
    R"("threshold": "{threshold}", "host": "{host}", "action": "{action}"})";

constexpr const char* kExample = R"ini([action chat_dba]
type    = webhook
url     = http://127.0.0.1:8080/hooks/warden
body    = {"text": "{check} is {state} on {host} (value {value}, threshold {threshold})"}
headers = X-Team: dba
timeout = 10s
)ini";

bool IsHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

std::unique_ptr<Action> MakeWebhook(OptionReader& opts, const ActionCommon& /*common*/) {
  const size_t errors_before = opts.diag().errors().size();
  std::string url;
  if (auto u = opts.Text("url")) {
    if (Status bad = CheckHttpUrl(*u); !bad.ok()) {
      opts.Error(*opts.Find("url"), "url: " + bad.message());
    } else {
      url = *u;
    }
  }
  std::string body = kDefaultBody;
  if (auto text = opts.MultiLineText("body"); text && opts.Find("body")) {
    body = *text;
    // Expanded with awkward values, it must be JSON: a placeholder outside
    // a string, or a broken template, shows now.
    Trigger probe{"check", "a\"b\\c", "crit", "1\n2"};
    probe.threshold = "> 1";
    auto expanded = ExpandJsonPlaceholders(body, Values(probe, "x", "h"));
    if (!expanded) {
      opts.Error(*opts.Find("body"), "body: " + expanded.error());
    } else if (!nlohmann::json::accept(*expanded)) {
      opts.Error(*opts.Find("body"),
                 "body: not JSON once its placeholders are replaced (each placeholder goes "
                 "inside a JSON string: \"{value}\")");
    }
  }
  std::vector<std::string> headers;
  bool content_type = false;
  if (auto text = opts.MultiLineText("headers")) {
    const ConfigEntry& entry = *opts.Find("headers");
    size_t start = 0;
    while (start <= text->size()) {
      size_t nl = text->find('\n', start);
      std::string line(Trim(std::string_view(*text).substr(
          start, nl == std::string::npos ? std::string::npos : nl - start)));
      start = nl == std::string::npos ? text->size() + 1 : nl + 1;
      if (line.empty()) continue;
      size_t colon = line.find(':');
      std::string name(Trim(std::string_view(line).substr(0, colon)));
      if (colon == std::string::npos || !IsHeaderName(name)) {
        opts.Error(entry, "headers: '" + line + "' is not \"Name: value\" (one per line)");
        continue;
      }
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "authorization") {
        opts.Error(entry, "headers: a token goes in token_file = PATH (a private file), not in "
                          "the configuration");
        continue;
      }
      if (lower == "content-type") content_type = true;
      headers.push_back(name + ": " + std::string(Trim(std::string_view(line).substr(colon + 1))));
    }
  }
  if (!content_type) headers.insert(headers.begin(), "Content-Type: application/json");
  std::string token_file;
  if (auto t = opts.Text("token_file")) {
    const ConfigEntry& entry = *opts.Find("token_file");
    if (t->empty() || (*t)[0] != '/') {
      opts.Error(entry, "token_file: '" + *t + "' is not an absolute path");
    } else if (Status s = CheckSecretFilePrivate(*t);
               !s.ok() && s.code() != StatusCode::kRefused) {
      // Checked again at each run; a file this user may not even look at
      // (wardenctl validate run by someone else) is left to that.
      opts.Error(entry, "token_file: " + s.message());
    } else {
      token_file = *t;
    }
  }
  if (opts.diag().errors().size() != errors_before) return nullptr;
  return std::make_unique<WebhookAction>(std::move(url), std::move(body), std::move(headers),
                                         std::move(token_file));
}

}  // namespace

const ActionType kWebhookActionType = {
    "webhook", "POSTs a JSON body (placeholders JSON-escaped) to a URL; informs only",
    /*guarded=*/true, /*uses_mysql=*/false, kOptions, kExample, &MakeWebhook,
    /*informs=*/true, /*resolves=*/false};

}  // namespace warden
