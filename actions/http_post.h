// What the actions that post to an HTTP peer share (alertmanager,
// webhook): the URL and header checks of their factories, and one POST
// retried with backoff within the action's timeout, its outcome reporting
// the peer's answer.
//
// Retried: a transfer that failed (refused, reset, timed out) and the
// answers 408, 429 and 5xx, after 250 ms, then twice as long each time (at
// most 5 s), while the timeout leaves time for it. Each attempt may take a
// third of the timeout (at least 1 s, at most what is left). Not retried:
// any other answer (a 2xx is success; a 3xx or 4xx is the peer's final
// word). The peer may see a request more than once (a reply lost on the
// way): both peers take the same alert or event again without harm.
//
// The outcome's extra: http_status (the last answer's status, 0 for none),
// attempts, answer (the start of the last answer's body: at most 300 bytes
// of printable ASCII, the rest as '?', secrets cut).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "actions/action.h"
#include "daemon/io/http_client.h"

namespace warden {

// http:// or https:// with a host: ok, or why not (invalid).
Status CheckHttpUrl(std::string_view url);

// Posts `request` (its timeout is set per attempt) within `timeout`;
// `secrets` are cut from what the outcome reports. Loop thread; `done`
// runs once on the loop, never inside this call.
void PostWithRetry(Runtime& rt, HttpRequest request, Duration timeout,
                   std::vector<std::string> secrets, Action::Done done);

// The peer's answer as the outcome shows it (see above).
std::string ShowAnswer(std::string_view body, const std::vector<std::string>& secrets);

}  // namespace warden
