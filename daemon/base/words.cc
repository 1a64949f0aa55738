#include "daemon/base/words.h"

#include <cctype>

namespace warden {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsOperator(char c) {
  return c == '|' || c == '&' || c == ';' || c == '<' || c == '>' || c == '(' || c == ')' ||
         c == '`';
}

class Splitter {
 public:
  Splitter(std::string_view text, std::string_view remedy) : text_(text), remedy_(remedy) {}

  Expected<std::vector<std::string>> Run() {
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (IsBlank(c)) {
        EndWord();
        ++i_;
      } else if (c == '\\') {
        if (i_ + 1 >= text_.size()) return Fail("trailing backslash (nothing left to escape)");
        if (text_[i_ + 1] != '\n') {
          Add(text_[i_ + 1]);
          quoted_ = true;
        }
        i_ += 2;  // backslash-newline: the lines join, no word starts
      } else if (c == '\'') {
        size_t close = text_.find('\'', i_ + 1);
        if (close == std::string_view::npos) {
          return Fail("unterminated single quote (opened at character " + Pos(i_) + ")");
        }
        StartWord();
        cur_.append(text_.substr(i_ + 1, close - i_ - 1));
        i_ = close + 1;
      } else if (c == '"') {
        if (Status s = DoubleQuoted(); !s.ok()) return s.failure();
      } else if (c == '$') {
        if (Status s = Dollar(false); !s.ok()) return s.failure();
        Add('$');
        ++i_;
      } else if (IsOperator(c)) {
        size_t end = i_ + 1;
        if (c != '(' && c != ')' && c != '`') {
          while (end < text_.size() && IsOperator(text_[end]) && text_[end] != '(' &&
                 text_[end] != ')' && text_[end] != '`') {
            ++end;
          }
        }
        return NeedsShell(text_.substr(i_, end - i_), "");
      } else if (c == '#' && !in_word_) {
        return NeedsShell("#", " (it starts a comment)");
      } else if (c == '~' && !in_word_) {
        return NeedsShell("~", " (at the start of a word it names a home directory)");
      } else {
        Add(c);
        ++i_;
      }
    }
    EndWord();
    if (words_.empty()) return Fail("empty command");
    if (words_.front() == "!" && !first_quoted_) {
      return NeedsShell("!", " (it negates the exit status)");
    }
    return std::move(words_);
  }

 private:
  Status DoubleQuoted() {
    size_t open = i_;
    StartWord();
    ++i_;
    for (;;) {
      if (i_ >= text_.size()) {
        return Status::Invalid("unterminated double quote (opened at character " + Pos(open) + ")");
      }
      char c = text_[i_];
      if (c == '"') {
        ++i_;
        return Status::Ok();
      }
      if (c == '\\' && i_ + 1 < text_.size()) {
        char n = text_[i_ + 1];
        if (n == '\\' || n == '"' || n == '$' || n == '`') {
          cur_ += n;
          i_ += 2;
        } else if (n == '\n') {
          i_ += 2;
        } else {
          cur_ += '\\';
          ++i_;
        }
        continue;
      }
      if (c == '`') return NeedsShell("`", " (command substitution)");
      if (c == '$') {
        if (Status s = Dollar(true); !s.ok()) return s;
      }
      cur_ += c;
      ++i_;
    }
  }

  // At a '$': an error when a shell would expand what follows.
  Status Dollar(bool in_double_quotes) {
    if (i_ + 1 >= text_.size()) return Status::Ok();
    char n = text_[i_ + 1];
    if (n == '(') return NeedsShell("$(", " (command substitution)");
    if (n == '{') return NeedsShell("${", " (parameter expansion)");
    if (IsNameStart(n)) {
      size_t end = i_ + 1;
      while (end < text_.size() && IsNameChar(text_[end])) ++end;
      return NeedsShell(text_.substr(i_, end - i_), " (variable expansion)");
    }
    if (std::isdigit(static_cast<unsigned char>(n)) || n == '@' || n == '*' || n == '#' ||
        n == '?' || n == '-' || n == '$' || n == '!') {
      return NeedsShell(text_.substr(i_, 2), " (special parameter)");
    }
    if (!in_double_quotes && (n == '\'' || n == '"')) {
      return NeedsShell(text_.substr(i_, 2), " (shell quoting)");
    }
    return Status::Ok();
  }

  Failure NeedsShell(std::string_view what, std::string_view why) {
    return Status::Invalid("'" + std::string(what) + "' needs a shell" + std::string(why) + ": " +
                         std::string(remedy_));
  }
  static Failure Fail(std::string message) { return Status::Invalid(std::move(message)); }
  static std::string Pos(size_t i) { return std::to_string(i + 1); }

  void StartWord() {
    in_word_ = true;
    quoted_ = true;
  }
  void Add(char c) {
    in_word_ = true;
    cur_ += c;
  }
  void EndWord() {
    if (!in_word_) return;
    if (words_.empty()) first_quoted_ = quoted_;
    words_.push_back(std::move(cur_));
    cur_.clear();
    in_word_ = false;
    quoted_ = false;
  }

  std::string_view text_;
  std::string_view remedy_;
  size_t i_ = 0;
  std::string cur_;
  bool in_word_ = false;
  bool quoted_ = false;  // the current word used a quote or an escape
  bool first_quoted_ = false;
  std::vector<std::string> words_;
};

}  // namespace

Expected<std::vector<std::string>> SplitWords(std::string_view text, std::string_view remedy) {
  return Splitter(text, remedy).Run();
}

std::string QuoteWord(std::string_view word) {
  bool safe = !word.empty();
  for (char c : word) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("_@%+=:,./-").find(c) == std::string_view::npos) {
      safe = false;
      break;
    }
  }
  if (safe) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

std::string JoinWords(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += QuoteWord(w);
  }
  return out;
}

}  // namespace warden
