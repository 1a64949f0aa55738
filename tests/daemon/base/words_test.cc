#include "daemon/base/words.h"

#include <catch2/catch.hpp>

using warden::SplitWords;
using Words = std::vector<std::string>;

namespace {

Words Split(std::string_view text) {
  auto w = SplitWords(text);
  INFO("text: " << text << " error: " << (w.ok() ? "" : w.error()));
  REQUIRE(w.ok());
  return *w;
}

std::string SplitError(std::string_view text) {
  auto w = SplitWords(text);
  INFO("text: " << text);
  REQUIRE_FALSE(w.ok());
  return w.error();
}

}  // namespace

TEST_CASE("SplitWords splits on blanks", "[words]") {
  CHECK(Split("ls") == Words{"ls"});
  CHECK(Split("  ls   -l\t/tmp  ") == Words{"ls", "-l", "/tmp"});
  CHECK(Split("mysqladmin\n  -uroot\n  flush-logs") == Words{"mysqladmin", "-uroot", "flush-logs"});
  CHECK(Split("a\r\nb") == Words{"a", "b"});
}

TEST_CASE("SplitWords single quotes are literal", "[words]") {
  CHECK(Split("echo 'a b'") == Words{"echo", "a b"});
  CHECK(Split("echo 'a|b;c&d$(x)`y` $HOME \\n \"q\"'") ==
        Words{"echo", "a|b;c&d$(x)`y` $HOME \\n \"q\""});
  CHECK(Split("echo 'multi\nline'") == Words{"echo", "multi\nline"});
  CHECK(Split("echo pre'mid'post") == Words{"echo", "premidpost"});
  CHECK(Split("echo '' x") == Words{"echo", "", "x"});
  CHECK(Split("echo 'it'\\''s'") == Words{"echo", "it's"});
}

TEST_CASE("SplitWords double quotes escape only \\ \" $ ` and newline", "[words]") {
  CHECK(Split(R"(echo "a b")") == Words{"echo", "a b"});
  CHECK(Split(R"(echo "a \"quoted\" word")") == Words{"echo", "a \"quoted\" word"});
  CHECK(Split(R"(echo "back\\slash")") == Words{"echo", "back\\slash"});
  CHECK(Split(R"(echo "\$HOME")") == Words{"echo", "$HOME"});
  CHECK(Split(R"(echo "\`x\`")") == Words{"echo", "`x`"});
  CHECK(Split(R"(echo "\n\t\a")") == Words{"echo", "\\n\\t\\a"});
  CHECK(Split("echo \"one\\\ntwo\"") == Words{"echo", "onetwo"});
  CHECK(Split("echo \"keep\nnewline\"") == Words{"echo", "keep\nnewline"});
  CHECK(Split(R"(echo "" "")") == Words{"echo", "", ""});
  CHECK(Split(R"~(echo "a|b;c&d<e>f(g)")~") == Words{"echo", "a|b;c&d<e>f(g)"});
  CHECK(Split(R"(echo "'single' inside")") == Words{"echo", "'single' inside"});
  CHECK(Split(R"(echo "cost: 5$")") == Words{"echo", "cost: 5$"});
  CHECK(Split(R"(echo "$")") == Words{"echo", "$"});
  CHECK(Split(R"(x"a"'b'c)") == Words{"xabc"});
}

TEST_CASE("SplitWords backslash outside quotes", "[words]") {
  CHECK(Split(R"(echo a\ b)") == Words{"echo", "a b"});
  CHECK(Split(R"(echo \|\;\&\<\>\(\)\`\$\#\~)") == Words{"echo", "|;&<>()`$#~"});
  CHECK(Split(R"(echo \\)") == Words{"echo", "\\"});
  CHECK(Split(R"(echo \')") == Words{"echo", "'"});
  CHECK(Split(R"(echo \a)") == Words{"echo", "a"});
  CHECK(Split("echo one\\\ntwo") == Words{"echo", "onetwo"});  // continuation
  CHECK(Split("echo one \\\n two") == Words{"echo", "one", "two"});
  CHECK(Split("\\\necho") == Words{"echo"});
  CHECK(Split(R"(echo \$HOME)") == Words{"echo", "$HOME"});
}

TEST_CASE("SplitWords keeps a $ that a shell keeps", "[words]") {
  CHECK(Split("echo $") == Words{"echo", "$"});
  CHECK(Split("echo a$") == Words{"echo", "a$"});
  CHECK(Split("echo $/x $. a$=b $%") == Words{"echo", "$/x", "$.", "a$=b", "$%"});
  CHECK(Split("grep -E 'foo$' /var/log/x") == Words{"grep", "-E", "foo$", "/var/log/x"});
}

TEST_CASE("SplitWords passes glob characters and mid-word # ~ literally", "[words]") {
  CHECK(Split("ls /tmp/*.log a?c [ab]") == Words{"ls", "/tmp/*.log", "a?c", "[ab]"});
  CHECK(Split("curl http://x/a#frag a~b") == Words{"curl", "http://x/a#frag", "a~b"});
  CHECK(Split("'~/bin/x' '#' \\~ \\#") == Words{"~/bin/x", "#", "~", "#"});
  CHECK(Split("env A=1 B=\"2 3\"") == Words{"env", "A=1", "B=2 3"});
  CHECK(Split("'!' x") == Words{"!", "x"});
  CHECK(Split("echo !") == Words{"echo", "!"});
  CHECK(Split("{ x }") == Words{"{", "x", "}"});
}

TEST_CASE("SplitWords rejects shell operators", "[words]") {
  CHECK(SplitError("ls | wc -l") == "'|' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("a || b") == "'||' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("a && b") == "'&&' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("sleep 5 &") == "'&' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("a; b") == "';' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("cat < /etc/x") == "'<' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("echo x > /tmp/y") == "'>' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("echo x >>/tmp/y") == "'>>' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("cmd 2>&1") == "'>&' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("(cd /tmp)") == "'(' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("a)") == "')' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("echo `date`") == "'`' needs a shell: quote it, or set shell = yes");
  CHECK(SplitError("echo \"`date`\"") ==
        "'`' needs a shell (command substitution): quote it, or set shell = yes");
}

TEST_CASE("SplitWords rejects expansions", "[words]") {
  CHECK(SplitError("echo $(date)") ==
        "'$(' needs a shell (command substitution): quote it, or set shell = yes");
  CHECK(SplitError("echo ${HOME}") ==
        "'${' needs a shell (parameter expansion): quote it, or set shell = yes");
  CHECK(SplitError("echo $HOME") ==
        "'$HOME' needs a shell (variable expansion): quote it, or set shell = yes");
  CHECK(SplitError("echo a$b") ==
        "'$b' needs a shell (variable expansion): quote it, or set shell = yes");
  CHECK(SplitError("echo \"$HOME\"") ==
        "'$HOME' needs a shell (variable expansion): quote it, or set shell = yes");
  CHECK(SplitError("echo \"$(date)\"") ==
        "'$(' needs a shell (command substitution): quote it, or set shell = yes");
  CHECK(SplitError("echo $1") ==
        "'$1' needs a shell (special parameter): quote it, or set shell = yes");
  CHECK(SplitError("echo $?") ==
        "'$?' needs a shell (special parameter): quote it, or set shell = yes");
  CHECK(SplitError("echo $$") ==
        "'$$' needs a shell (special parameter): quote it, or set shell = yes");
  CHECK(SplitError("echo $'a\\n'") ==
        "'$'' needs a shell (shell quoting): quote it, or set shell = yes");
  CHECK(SplitError("echo ~/x") ==
        "'~' needs a shell (at the start of a word it names a home directory): quote it, or set "
        "shell = yes");
  CHECK(SplitError("echo a #comment") ==
        "'#' needs a shell (it starts a comment): quote it, or set shell = yes");
  CHECK(SplitError("! false") ==
        "'!' needs a shell (it negates the exit status): quote it, or set shell = yes");
}

TEST_CASE("SplitWords reports unterminated quotes and trailing backslash", "[words]") {
  CHECK(SplitError("echo 'abc") == "unterminated single quote (opened at character 6)");
  CHECK(SplitError("echo \"abc") == "unterminated double quote (opened at character 6)");
  CHECK(SplitError("echo \"abc\\\"") == "unterminated double quote (opened at character 6)");
  CHECK(SplitError("echo \"a\\") == "unterminated double quote (opened at character 6)");
  CHECK(SplitError("echo abc\\") == "trailing backslash (nothing left to escape)");
}

TEST_CASE("SplitWords reports an empty command", "[words]") {
  CHECK(SplitError("") == "empty command");
  CHECK(SplitError("   \n\t ") == "empty command");
  CHECK(SplitError("\\\n") == "empty command");
}

TEST_CASE("SplitWords uses the caller's remedy", "[words]") {
  auto w = SplitWords("a|b", "quote it");
  REQUIRE_FALSE(w.ok());
  CHECK(w.error() == "'|' needs a shell: quote it");
}

TEST_CASE("QuoteWord round-trips through SplitWords", "[words]") {
  Words words = {"plain", "a b",   "it's",        "",          "$HOME", "~x", "#c",
                 "|",     "\"q\"", "back\\slash", "new\nline", "!"};
  auto back = SplitWords(warden::JoinWords(words));
  REQUIRE(back.ok());
  CHECK(*back == words);
  CHECK(warden::QuoteWord("/usr/bin/x") == "/usr/bin/x");
  CHECK(warden::QuoteWord("a b") == "'a b'");
}
