#include "daemon/ctl/top.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/ctl/control_client.h"
#include "daemon/ctl/exit_codes.h"
#include "daemon/ctl/render.h"

namespace warden::ctl {
namespace {

volatile sig_atomic_t g_stop = 0;     // SIGINT, SIGTERM, SIGHUP: leave
volatile sig_atomic_t g_resized = 0;  // SIGWINCH: draw now, at the new size

void OnStop(int) { g_stop = 1; }
void OnResize(int) { g_resized = 1; }

// What `print` writes to `fd` (1 or 2), instead of to the terminal: the
// descriptor points at a memory file meanwhile. The printing code stays the
// one `status` uses.
std::string Capture(int fd, const std::function<void()>& print) {
  std::FILE* stream = fd == 1 ? stdout : stderr;
  std::fflush(stream);
  const int mem = ::memfd_create("wardenctl-top", MFD_CLOEXEC);
  const int saved = ::dup(fd);
  if (mem < 0 || saved < 0 || ::dup2(mem, fd) < 0) {
    if (mem >= 0) ::close(mem);
    if (saved >= 0) ::close(saved);
    print();
    return "";
  }
  print();
  std::fflush(stream);
  ::dup2(saved, fd);
  ::close(saved);
  std::string text;
  char buf[65536];
  off_t at = 0;
  for (;;) {
    ssize_t n = ::pread(mem, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
  }
  ::close(mem);
  return text;
}

// At most `cols` columns of a line (a byte per column: status is ASCII but
// for names and reasons, which are cut on a character boundary).
std::string Fit(const std::string& line, size_t cols) {
  size_t n = 0, i = 0;
  while (i < line.size() && n < cols) {
    ++i;
    while (i < line.size() && (static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) ++i;
    ++n;
  }
  return line.substr(0, i);
}

void Write(const std::string& s) {
  const char* p = s.data();
  size_t left = s.size();
  while (left > 0) {
    ssize_t n = ::write(1, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// The terminal as it was, and the screen: restored by the destructor on
// every way out.
class Screen {
 public:
  bool Enter() {
    if (::tcgetattr(0, &saved_) != 0) return false;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);   // keys one by one, unseen;
    raw.c_cc[VMIN] = 0;                                       // ISIG stays: Ctrl-C is SIGINT
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(0, TCSAFLUSH, &raw) != 0) return false;
    entered_ = true;
    Write("\033[?1049h\033[?25l");   // the alternate screen, no cursor
    return true;
  }
  ~Screen() {
    if (!entered_) return;
    Write("\033[?25h\033[?1049l");   // the cursor, the screen as it was
    ::tcsetattr(0, TCSAFLUSH, &saved_);
  }

 private:
  termios saved_{};
  bool entered_ = false;
};

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// One frame: a title line in reverse video, then the body's lines, each
// cut to the width and followed by erase-to-end-of-line; the rest of the
// screen erased. Drawn over the last frame, so nothing flickers.
std::string Frame(const std::string& title, const std::string& body) {
  winsize ws{};
  size_t rows = 24, cols = 80;
  if (::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
    rows = ws.ws_row;
    cols = ws.ws_col;
  }
  std::string out = "\033[H\033[7m" + Fit(title, cols) + "\033[K\033[0m";
  size_t shown = 1, start = 0;
  while (start < body.size() && shown < rows) {
    size_t nl = body.find('\n', start);
    if (nl == std::string::npos) nl = body.size();
    out += "\r\n" + Fit(body.substr(start, nl - start), cols) + "\033[K";
    ++shown;
    start = nl + 1;
  }
  out += "\033[J";
  return out;
}

}  // namespace

int Top(const std::string& socket_path, const nlohmann::json& request) {
  if (!::isatty(0) || !::isatty(1)) {
    std::fprintf(stderr, "wardenctl: top needs a terminal (use status, or status --json, "
                         "in a script)\n");
    return kExitUsage;
  }
  nlohmann::json ask = request;
  ask["cmd"] = "status";
  std::string unreachable;
  auto reply = Ask(socket_path, ask, 10'000, unreachable);
  if (!reply) return Fail(kExitUnreachable, unreachable, false);
  if (!reply->value("ok", false)) return RenderReply("status", *reply, false, false);

  struct sigaction sa{};
  sa.sa_handler = OnStop;   // no SA_RESTART: poll returns at once
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  sa.sa_handler = OnResize;
  ::sigaction(SIGWINCH, &sa, nullptr);

  Screen screen;
  if (!screen.Enter()) {
    std::fprintf(stderr, "wardenctl: top: cannot set up the terminal: %s\n", std::strerror(errno));
    return kExitNo;
  }
  const std::string group = ask.value("group", std::string());
  std::string body = Capture(1, [&] { PrintStatusText(*reply); });
  std::string state = "";
  for (;;) {
    const std::string title = "wardenctl top  " + reply->value("host", std::string()) +
                              (group.empty() ? "" : "  group " + group) + "  " + UtcNow() +
                              " UTC" + state + "  (q quits)";
    Write(Frame(title, body));
    // Keys until the next second; q (or Q) leaves, any other is ignored.
    const auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    bool redraw = false;
    while (!g_stop && !redraw) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            next - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) break;
      pollfd pfd{0, POLLIN, 0};
      const int r = ::poll(&pfd, 1, static_cast<int>(left));
      if (g_resized) {
        g_resized = 0;
        redraw = true;
      }
      if (r <= 0) continue;
      char keys[64];
      const ssize_t n = ::read(0, keys, sizeof keys);
      if (n == 0) g_stop = 1;   // the terminal is gone
      for (ssize_t i = 0; i < n; ++i) {
        if (keys[i] == 'q' || keys[i] == 'Q') g_stop = 1;
      }
    }
    if (g_stop) break;
    if (redraw) continue;   // the same status at the new size
    std::string error;
    std::optional<nlohmann::json> next_reply = Ask(socket_path, ask, 5'000, error);
    if (next_reply && next_reply->value("ok", false)) {
      reply = std::move(next_reply);
      body = Capture(1, [&] { PrintStatusText(*reply); });
      state = "";
    } else {
      // The last status stays on screen, marked stale, with why.
      std::string why = next_reply ? next_reply->value("error", std::string()) : error;
      while (!why.empty() && why.back() == '\n') why.pop_back();
      state = "  NOT ANSWERING: " + why;
    }
  }
  return kExitOk;
}

}  // namespace warden::ctl
