// type = webhook: POSTs a JSON body to a URL. Informs and changes nothing
// (ActionType::informs): a paused host, a halted queue or a held mutex does
// not hold it back; running, cooldown, budget and dry_run apply.
//
//   url = https://hooks.example.com/warden    required, http:// or https://
//   body = {"text": "{check} is {state} on {host}"}
//                  JSON (may continue on indented lines); the placeholders
//                  {check} {state} {value} {threshold} {host} {action} are
//                  replaced by their values JSON-escaped (without quotes:
//                  the template writes them inside a string). Must be JSON
//                  once expanded; checked when the config is loaded.
//                  Default: an object of every placeholder by name.
//   headers = X-Team: dba       one "Name: value" per line
//   token_file = /etc/warden/hook.token
//                  private (mode 0600 or stricter), its first line sent as
//                  "Authorization: Bearer TOKEN"; read at each run (checked
//                  when the config is loaded too)
//
// Content-Type is application/json unless headers set it.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "actions/action.h"

namespace warden {

extern const ActionType kWebhookActionType;

// `text` with each {name} of `values` replaced by the value as the inside
// of a JSON string ("a\"b" for a"b); an unknown {word} is an error.
Expected<std::string> ExpandJsonPlaceholders(std::string_view text,
                                             const std::map<std::string, std::string>& values);

}  // namespace warden
