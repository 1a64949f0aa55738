// wardenctl top: the status (what `wardenctl status` prints) redrawn in
// place every second, until `q` (or Ctrl-C), for an operator on an SSH
// session. Plain ANSI/VT100 sequences, no curses: the alternate screen,
// the cursor home, erase to the end of each line and of the screen; the
// text is cut to the terminal's rows and columns (TIOCGWINSZ, again on
// SIGWINCH). The terminal's settings (termios) and screen are put back on
// every way out: `q`, Ctrl-C, SIGTERM, SIGHUP, an error.
//
// Needs a terminal on stdin and stdout (else a usage error: use `status`).
// The first request must be answered (else exit 3 like every command);
// later failures are shown in the frame and the next second tries again.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace warden::ctl {

// `request`: the parsed `top` request; its members (--group) go with the
// status request. Returns the exit code.
int Top(const std::string& socket_path, const nlohmann::json& request);

}  // namespace warden::ctl
