// type = haproxy: puts one server of an HAProxy backend in a state through
// HAProxy's runtime API (its stats socket), and checks that it took.
//
//   socket = /run/haproxy/admin.sock   the stats socket (an absolute path), or
//   address = 127.0.0.1:9999           a `stats socket ipv4@...` (HOST:PORT,
//                                      [IPv6]:PORT); exactly one of the two
//   backend = mysql                    letters, digits and _ - . :
//   server = db1                       the same
//   state = drain                      ready, drain or maint
//   drain_wait = 60s                   optional, drain and maint only: then
//                                      wait until the server has no sessions
//
// A run, one runtime-API exchange (connect, one command, read to EOF) at a
// time on the worker pool, lane "haproxy:<socket or address>":
//   1. `show servers state BE`: the backend and the server must exist;
//   2. `set server BE/SRV state X`: HAProxy answers an empty line on
//      success; any text is its refusal ("Permission denied" from a socket at
//      `level user`, "No such server."), quoted in the error;
//   3. `show servers state BE` again: srv_admin_state must have the forced
//      bit of X (0x01 maint, 0x08 drain; neither for ready);
//   4. with drain_wait: `show stat BE_ID 4 SRV_ID` right away and then every
//      500 ms (an ev_timer on the loop between polls) until scur is 0; still
//      sessions when drain_wait has passed fails the action with their count.
// Each exchange is bounded by the action's `timeout` (connect, send and the
// whole answer); drain_wait bounds the wait on its own, so a run lasts at
// most about drain_wait plus a few timeouts. Errors name the socket path or
// address, e.g. "haproxy: cannot connect to /run/haproxy/admin.sock: No such
// file or directory".
//
// action.finish extra: backend, server, state (the one asked for; for a run
// triggered by a check the event's `state` is the check's, which wins),
// admin_state (srv_admin_state read back, when it was read), and with
// drain_wait: sessions (when the wait began), sessions_left, waited_ms.
#pragma once

#include "actions/action.h"

namespace warden {

extern const ActionType kHaproxyActionType;

}  // namespace warden
