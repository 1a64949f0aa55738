// Splitting a command line into argv the way a POSIX shell splits words,
// without running a shell and without any expansion. Pure functions, no I/O.
//
// Rules:
//  * Unquoted blanks (space, tab, newline, CR) separate words; so a command
//    may continue on indented lines of the config file.
//  * '...' is literal. "..." is literal except that a backslash escapes
//    \ " $ ` and newline (a backslash-newline disappears); before any
//    other character the backslash stays.
//  * Outside quotes a backslash makes the next character literal; a
//    backslash-newline joins the lines. '' and "" make an empty word.
//  * Whatever a shell would treat specially is an error rather than a
//    silent difference from what the admin meant: the operators
//    | & ; < > ( ) and backquotes, parameter/command expansion ($name, $1,
//    $?, ${...}, $(...), also inside "..."), `$'` and `$"`, a `#` that
//    starts a word (a comment), a `~` that starts a word (home directory)
//    and `!` as the first word. Write them inside '...' (or escape them) to
//    pass them literally, or run the command through a shell.
//    A `$` that a shell keeps literal (at the end of a word, before `/`,
//    `.`, `=`, ...) is kept. Glob characters * ? [ are passed literally:
//    no pathname expansion happens.
// So for every text it accepts, the result is the argv /bin/sh would build.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace warden {

// `remedy` finishes messages about shell syntax ("'|' needs a shell: <remedy>").
inline constexpr std::string_view kShellRemedy = "quote it, or set shell = yes";

// Errors name the problem and where: "unterminated double quote (opened at
// character 12)", "'|' needs a shell: quote it, or set shell = yes",
// "trailing backslash", "empty command".
Expected<std::vector<std::string>> SplitWords(std::string_view text,
                                              std::string_view remedy = kShellRemedy);

// Quotes one word so that SplitWords (and sh) give it back unchanged; for
// messages and logs ("echo 'a b'").
std::string QuoteWord(std::string_view word);
std::string JoinWords(const std::vector<std::string>& words);

}  // namespace warden
