// The HTTP mutex answer (daemon/io/mutex_client.h, InterpretMutexResponse).
// Input: a flags byte (bit 0: the transfer completed, bit 1: a file://
// URL), a byte choosing the HTTP status, then the body (or, when the
// transfer failed, the transport's error text).
//
// Fail-closed: the answer is clear only for a completed 200 (or a read
// file) whose body is a JSON object with "held": false; every other answer
// is held, with a bounded reason free of control characters.
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/io/mutex_client.h"
#include "tests/fuzz/fuzz.h"

using namespace warden;

namespace {

constexpr long kStatuses[] = {200, 0, 503, 404, 301, 500, 204, 429};

void CheckReason(const MutexAnswer& a, std::string_view input) {
  FUZZ_CHECK(!a.reason.empty(), input);
  FUZZ_CHECK(a.reason.size() <= 256 + 3, "reason over 256 bytes: " + a.reason);
  for (char ch : a.reason) {
    auto c = static_cast<unsigned char>(ch);
    FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control character in reason: " + a.reason);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  std::uint8_t flags = in.Byte();
  long status = kStatuses[in.Byte() % (sizeof kStatuses / sizeof kStatuses[0])];
  std::string_view rest = in.Rest();

  HttpResponse r;
  r.ok = (flags & 1) != 0;
  const bool is_file = (flags & 2) != 0;
  if (r.ok) {
    r.http_status = status;
    r.body = std::string(rest);
  } else {
    // HttpClient's contract: a failed transfer always says why.
    r.error = rest.empty() ? std::string("connection closed without an answer") : std::string(rest);
  }
  MutexAnswer a = InterpretMutexResponse(r, is_file);

  // The only clear answer, decided here independently.
  bool clear = false;
  if (r.ok && (status == 200 || (is_file && status == 0))) {
    auto doc = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    clear = doc.is_object() && doc.contains("held") && doc["held"].is_boolean() &&
            !doc["held"].get<bool>();
  }
  FUZZ_CHECK(a.held == !clear, std::string(clear ? "clear answer held: " : "held answer clear: ") +
                                   std::string(rest));
  if (!a.held) FUZZ_CHECK(a.reason == "clear", a.reason);
  // Terminate only as part of a held answer, and only for "terminate": true.
  bool terminate = false;
  if (!clear && r.ok && (status == 200 || (is_file && status == 0))) {
    auto doc = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    terminate = doc.is_object() && doc.contains("held") && doc["held"] == true &&
                doc.contains("terminate") && doc["terminate"] == true;
  }
  FUZZ_CHECK(a.terminate == terminate, std::string(rest));
  CheckReason(a, rest);
  return 0;
}
