#include "checks/program.h"

#include <cctype>

#include "daemon/base/words.h"
#include "daemon/io/process.h"

namespace warden {

std::optional<std::string> FirstNumber(std::string_view text) {
  auto digit = [&](size_t i) {
    return i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]));
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (i > 0) {
      unsigned char before = static_cast<unsigned char>(text[i - 1]);
      // Inside a word ("db-17", "v1.2", "x_3"): not a number of its own.
      if (std::isalnum(before) || before == '_' || before == '.' || before == '-' ||
          before == '+') {
        continue;
      }
    }
    size_t j = i;
    if (text[j] == '-' || text[j] == '+') ++j;
    if (!digit(j)) continue;
    while (digit(j)) ++j;
    if (j + 1 < text.size() && text[j] == '.' && digit(j + 1)) {
      ++j;
      while (digit(j)) ++j;
    }
    std::string number(text.substr(i, j - i));
    if (number[0] == '+') number.erase(0, 1);
    if (ParseNumber(number)) return number;
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> ReadCommand(OptionReader& opts) {
  auto text = opts.MultiLineText("command");
  if (!text) return std::nullopt;
  auto words =
      SplitWords(*text, "quote it; program checks run no shell (use command = sh -c '...')");
  if (!words) {
    opts.Error(*opts.Find("command"), "command: " + words.error());
    return std::nullopt;
  }
  if (words->empty()) return std::nullopt;
  return std::move(*words);
}

void RunCheckProgram(Runtime& rt, const std::vector<std::string>& argv, Duration timeout,
                     size_t capture, ProgramExited exited, Check::Done done) {
  if (!rt.processes) {
    done(Measurement::Error("internal error: no process runner in this runtime"));
    return;
  }
  ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = timeout;
  spec.kill_grace = std::min(spec.kill_grace, std::max(timeout, Duration(1000)));
  spec.capture_limit = capture;
  rt.processes->Spawn(std::move(spec), [program = argv[0], exited = std::move(exited),
                                        done = std::move(done)](ProcessResult r) {
    if (!r.started) {
      // The runner's error names the program already ("command not found: x").
      done(Measurement::Error(r.error.find(program) != std::string::npos
                                  ? r.error
                                  : "cannot run " + program + ": " + r.error));
    } else if (r.timed_out || r.signal != 0) {
      done(Measurement::Error(program + ": " + r.Describe()));
    } else {
      done(exited(r));
    }
  });
}

namespace {

// The last line of stderr, short, for an error message.
std::string StderrHint(const std::string& tail) {
  std::string_view t = Trim(tail);
  if (t.empty()) return {};
  auto nl = t.rfind('\n');
  if (nl != std::string_view::npos) t = Trim(t.substr(nl + 1));
  if (t.size() > 300) t = t.substr(t.size() - 300);
  return ": " + std::string(t);
}

class ProgramCheck final : public Check {
 public:
  ProgramCheck(std::vector<std::string> argv, bool stdout_value, Duration timeout)
      : argv_(std::move(argv)), stdout_value_(stdout_value), timeout_(timeout) {}

  void Run(Runtime& rt, Done done) override {
    RunCheckProgram(
        rt, argv_, timeout_, ProcessSpec{}.capture_limit,
        [program = argv_[0], stdout_value = stdout_value_](const ProcessResult& r) {
          if (!stdout_value) return Measurement::Number(r.exit_code);
          if (r.exit_code != 0) {
            return Measurement::Error(program + ": " + r.Describe() + StderrHint(r.stderr_tail));
          }
          if (auto n = FirstNumber(r.stdout_head)) return Measurement::Number(*ParseNumber(*n));
          std::string shown(Trim(r.stdout_head).substr(0, 80));
          return Measurement::Error(
              program + " printed no number" +
              (shown.empty() ? std::string(" (no output)") : ": '" + shown + "'"));
        },
        std::move(done));
  }

 private:
  const std::vector<std::string> argv_;
  const bool stdout_value_;
  const Duration timeout_;
};

constexpr const char* kValues[] = {"exit", "stdout"};
constexpr OptionSpec kOptions[] = {
    opt::MultiLine("command", "the program and its arguments").Required(),
    opt::Choice("value", kValues, "the exit status, or the first number the program prints")
        .Default("exit"),
};

constexpr const char* kExample = R"([check raid_ok]
type    = program
command = /usr/local/bin/raid-status --quiet
value   = exit
crit    = != 0
)";

std::unique_ptr<Check> Make(OptionReader& opts, const CheckCommon& common) {
  auto argv = ReadCommand(opts);
  auto value = opts.GetChoice("value");
  const bool stdout_value = value && *value == "stdout";
  if (!argv || !value) return nullptr;
  return std::make_unique<ProgramCheck>(std::move(*argv), stdout_value, common.timeout);
}

}  // namespace

const CheckType kProgramCheckType = {
    "program", "exit status of a command, or the first number it prints (value = stdout)", false,
    kOptions, kExample, &Make};

}  // namespace warden
