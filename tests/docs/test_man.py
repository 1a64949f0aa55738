"""docs: man pages render. The man pages in docs/man/ (plain roff, man(7)
macros) are checked for what a machine can check:

- `cmake --install` puts each where `man` finds it (share/man/manN);
- each renders with `man --warnings -l PAGE` (and with all of groff's
  warnings) and prints nothing on stderr, and its NAME line is one that
  whatis/apropos can read (lexgrog);
- warden.ini(5) against docs/configuration.md, read by test_docs.py's
  reader (whose own test proves those keys are read by the code): every
  `## [section]` there is an `.SS` here, every key of that section's key
  tables is a `.TP` tag of the section, every check and action type is a
  `.TP` tag whose entry names in bold every key and value of the type's
  row; the other way round, every `.TP` tag of a section is a key or a type
  of the reference (nothing stale); and every example validates with
  `wardenctl validate`, as the reference's samples do;
- wardenctl(8) against `wardenctl --help`: every command and fleet
  subcommand is a `.TP` tag of COMMANDS naming the options the usage gives
  it, every COMMANDS tag is a command of the usage, every option of the
  usage is in the page;
- wardend(8) against `wardend --help`: every option is a tag of OPTIONS.

Environment: WARDENCTL, WARDEND (the binaries; set by CTest),
WARDEN_BUILD_DIR (for cmake --install; that test is skipped without it),
WARDEN_SOURCE_DIR (default: two levels above this file).
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import test_docs
from test_docs import SOURCE, read

MAN_DIR = os.path.join(SOURCE, "docs", "man")
PAGES = ("wardend.8", "wardenctl.8", "warden.ini.5")
WARDENCTL = os.environ.get("WARDENCTL")
WARDEND = os.environ.get("WARDEND")
BUILD_DIR = os.environ.get("WARDEN_BUILD_DIR")

# Each line after .TP up to the next of these is the entry's body.
ENTRY_END = (".TP", ".SS", ".SH", ".PP", ".P", ".LP")
ALTERNATING = {"BR": "BR", "RB": "RB", "BI": "BI", "IB": "IB", "IR": "IR", "RI": "RI"}


def page(name):
    return read(os.path.join("docs", "man", name))


def macro_args(text):
    """The arguments of a macro line, as roff splits them ("" quotes)."""
    return [m.group(1) if m.group(1) is not None else m.group(2)
            for m in re.finditer(r'"((?:[^"]|"")*)"|(\S+)', text)]


def segments(line):
    """[(font, text)] of one roff line: its macro's fonts (.B, .BR, ...)
    and the \\fX escapes; text with the common escapes undone."""
    out = []

    def add(font, text):
        current = font
        for piece in re.split(r"(\\f(?:[BIRP]|\(..|\[[^\]]*\]))", text):
            m = re.match(r"\\f([BIRP])$", piece)
            if m:
                current = font if m.group(1) == "P" else m.group(1)
                continue
            if piece.startswith("\\f"):
                continue
            piece = (piece.replace("\\-", "-").replace("\\(en", "-").replace("\\&", "")
                     .replace("\\c", "").replace("\\e", "\\"))
            if piece:
                out.append((current, piece))

    m = re.match(r"^\.(B|I|BR|RB|BI|IB|IR|RI)(?:\s+(.*))?$", line)
    if m:
        args = macro_args(m.group(2) or "")
        if m.group(1) in ("B", "I"):
            add(m.group(1), " ".join(args))
        else:
            fonts = ALTERNATING[m.group(1)]
            for i, arg in enumerate(args):
                add(fonts[i % 2], arg)
    elif not line.startswith((".", "'")):
        add("R", line)
    return out


def bold_words(lines):
    words = set()
    for line in lines:
        for font, text in segments(line):
            if font == "B":
                words |= set(re.findall(r"[A-Za-z0-9_.{}@/*-]+", text))
    return words


def plain(lines):
    return "".join(text for line in lines for _font, text in segments(line))


def sections(name):
    """[(.SH title, .SS title or None, [lines])] of a page, in order."""
    out = []
    sh, ss, lines = None, None, []
    for line in page(name).splitlines():
        m = re.match(r'^\.(SH|SS)\s+"?(.*?)"?\s*$', line)
        if m:
            if sh is not None:
                out.append((sh, ss, lines))
            if m.group(1) == "SH":
                sh, ss = m.group(2), None
            else:
                ss = m.group(2)
            lines = []
        elif not line.startswith('.\\"'):
            lines.append(line)
    out.append((sh, ss, lines))
    return out


def entries(lines):
    """[(tag line, [tag line and body])] of the .TP entries in lines."""
    out = []
    for i, line in enumerate(lines):
        if line.split(" ")[0] == ".TP" and i + 1 < len(lines):
            end = i + 2
            while end < len(lines) and lines[end].split(" ")[0] not in ENTRY_END:
                end += 1
            out.append((lines[i + 1], lines[i + 1:end]))
    return out


def type_tables():
    """{`## ` heading: {type: set of backquoted words of its keys column}}
    from the `| type | keys | ... |` tables of docs/configuration.md."""
    types = {}
    heading = None
    in_table = False
    for line in read("docs/configuration.md").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        if line.startswith("| type | keys |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        if in_table and not line.startswith("|---"):
            cells = line.split("|")
            name = re.findall(r"`([a-z_]+)`", cells[1])
            if name:
                types.setdefault(heading, {})[name[0]] = set(
                    re.findall(r"`([a-z_]+)`", cells[2]))
    return types


def reference_sections():
    return [line[3:].strip() for line in read("docs/configuration.md").splitlines()
            if line.startswith("## [")]


def usage(binary):
    p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, "%s --help: exit %d\n%s" % (binary, p.returncode, p.stderr)
    return p.stdout


class RenderTest(unittest.TestCase):
    def man(self, args, path):
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
        return subprocess.run(["man"] + args + ["-l", path], capture_output=True, text=True,
                              timeout=60, env=env)

    def test_pages_render_without_warnings(self):
        self.assertTrue(shutil.which("man"), "man not found: scripts/setup installs man-db")
        for name in PAGES:
            path = os.path.join(MAN_DIR, name)
            # --warnings: groff's default set for man pages; =w: every warning.
            for warnings in ("--warnings", "--warnings=w"):
                with self.subTest(page=name, warnings=warnings):
                    p = self.man([warnings], path)
                    self.assertEqual((p.returncode, p.stderr), (0, ""),
                                     "man %s -l %s" % (warnings, path))
                    self.assertIn("NAME", p.stdout)

    def test_whatis_can_read_the_name_line(self):
        lexgrog = shutil.which("lexgrog")
        self.assertTrue(lexgrog, "lexgrog not found: scripts/setup installs man-db")
        for name in PAGES:
            with self.subTest(page=name):
                p = subprocess.run([lexgrog, os.path.join(MAN_DIR, name)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertIn(' - ', p.stdout)


@unittest.skipUnless(BUILD_DIR, "WARDEN_BUILD_DIR is not set")
class InstallTest(unittest.TestCase):
    def test_cmake_install_puts_them_where_man_finds_them(self):
        with tempfile.TemporaryDirectory(prefix="warden-man-") as prefix:
            subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], check=True,
                           capture_output=True, timeout=120)
            manpath = os.path.join(prefix, "share", "man")
            for name in PAGES:
                title, section = name.rsplit(".", 1)
                with self.subTest(page=name):
                    p = subprocess.run(["man", "--manpath=" + manpath, "-w", section, title],
                                       capture_output=True, text=True, timeout=30)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    installed = p.stdout.strip()
                    self.assertEqual(os.path.join(manpath, "man" + section, name), installed)
                    with open(installed) as f:
                        self.assertEqual(page(name), f.read())


class WardenIniTest(unittest.TestCase):
    def blocks(self):
        """{reference section: [lines]}: each `.SS [section]` of SECTIONS
        with the subsections up to the next `.SS [...]` (Check types)."""
        blocks, current = {}, None
        for sh, ss, lines in sections("warden.ini.5"):
            if sh != "SECTIONS" or ss is None:
                continue
            if ss.startswith("["):
                current = ss
                blocks[current] = []
            blocks[current] += lines
        return blocks

    def block_of(self, section):
        found = [title for title in self.blocks() if section in re.findall(r"\[[^\]]*\]", title)]
        self.assertEqual(len(found), 1, "warden.ini(5) has no .SS for %s" % section)
        return self.blocks()[found[0]]

    def test_every_section_is_a_subsection(self):
        listed = reference_sections()
        self.assertGreater(len(listed), 8, "hardly any sections in docs/configuration.md")
        titles = " ".join(self.blocks())
        missing = [s for s in listed if s not in titles]
        self.assertEqual(missing, [], "sections of docs/configuration.md that warden.ini(5) "
                         "has no .SS for")

    def test_every_key_is_a_tag_of_its_section(self):
        keys = test_docs.reference_keys()
        self.assertGreater(sum(len(k) for k in keys.values()), 50)
        for section, names in sorted(keys.items()):
            with self.subTest(section=section):
                tags = set()
                for tag, _entry in entries(self.block_of(section)):
                    tags |= bold_words([tag])
                self.assertEqual(sorted(names - tags), [], "keys of %s in "
                                 "docs/configuration.md that warden.ini(5) does not list"
                                 % section)

    def test_every_type_is_a_tag_naming_its_keys_and_values(self):
        types = type_tables()
        self.assertGreater(sum(len(t) for t in types.values()), 12)
        for section, by_type in sorted(types.items()):
            found = {}
            for tag, entry in entries(self.block_of(section)):
                for word in bold_words([tag]):
                    found.setdefault(word, bold_words(entry))
            for name, words in sorted(by_type.items()):
                with self.subTest(section=section, type=name):
                    self.assertIn(name, found, "type %s of %s is not a .TP tag" % (name, section))
                    self.assertEqual(sorted(words - found[name]), [],
                                     "keys and values of type %s not named in bold" % name)

    def test_every_tag_is_a_key_or_a_type_of_the_reference(self):
        keys = test_docs.reference_keys()
        types = type_tables()
        for section in reference_sections():
            with self.subTest(section=section):
                known = keys.get(section, set()) | set(types.get(section, {}))
                tags = set()
                for tag, _entry in entries(self.block_of(section)):
                    tags |= bold_words([tag])
                self.assertEqual(sorted(tags - known), [], "tags of %s in warden.ini(5) that "
                                 "docs/configuration.md does not list" % section)

    @unittest.skipUnless(WARDENCTL, "WARDENCTL is not set")
    def test_every_example_validates(self):
        seen = 0
        lines = page("warden.ini.5").splitlines()
        for i, line in enumerate(lines):
            if line.strip() != ".EX":
                continue
            end = lines.index(".EE", i)
            text = "\n".join(plain([l]) for l in lines[i + 1:end]) + "\n"
            if not text.lstrip().startswith("["):
                continue
            seen += 1
            with self.subTest(line=i + 2):
                # The docs test's check of an ini sample (stand-ins for the
                # secret files, [mutex] and [mysql] added when missing).
                test_docs.IniSamplesTest.validate(self, "docs/man/warden.ini.5", i + 2, text)
        self.assertGreater(seen, 1, "hardly any examples in warden.ini(5)")


@unittest.skipUnless(WARDENCTL, "WARDENCTL is not set")
class WardenctlTest(unittest.TestCase):
    def usage_entries(self):
        """[(command, subcommand or None, {options})] of `wardenctl --help`."""
        text = usage(WARDENCTL)
        block = text.split("\ncommands:\n", 1)[1].split("\noptions:\n", 1)[0]
        out = []
        for line in block.splitlines():
            m = re.match(r"^  ([a-z]\S*)(.*?)(?:\s{2,}.*)?$", line)
            if not m:
                continue
            command, rest = m.group(1), m.group(2)
            parts = [p.strip() for p in (command + rest).split(" | ")]
            if len(parts) == 1:
                out.append((command, None, set(re.findall(r"--?[a-z][a-z-]*", rest))))
                continue
            for i, part in enumerate(parts):   # fleet status | halt --reason TEXT | ...
                words = part.split()
                sub = words[1] if i == 0 else words[0]
                out.append((command, sub, set(re.findall(r"--?[a-z][a-z-]*", part))))
        self.assertGreater(len(out), 8, "hardly any commands in wardenctl --help:\n" + text)
        return out

    def command_tags(self):
        """{tag text: {options}} of the COMMANDS section of wardenctl(8)."""
        tags = {}
        for sh, _ss, lines in sections("wardenctl.8"):
            if sh == "COMMANDS":
                for tag, _entry in entries(lines):
                    text = plain([tag])
                    tags[text] = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", text))
        return tags

    def test_every_command_of_the_usage_is_described_with_its_options(self):
        tags = self.command_tags()
        for command, sub, options in self.usage_entries():
            name = command if sub is None else "%s %s" % (command, sub)
            with self.subTest(command=name):
                found = [t for t in tags if t == name or t.startswith(name + " ")]
                self.assertTrue(found, "wardenctl(8) has no COMMANDS entry for %s" % name)
                self.assertEqual(sorted(options - tags[found[0]]), [],
                                 "options of %s missing from its entry" % name)

    def test_every_described_command_is_in_the_usage(self):
        commands = {c for c, _s, _o in self.usage_entries()}
        stale = [t for t in self.command_tags() if t.split()[0] not in commands]
        self.assertEqual(stale, [], "COMMANDS entries of wardenctl(8) that wardenctl --help "
                         "does not list")

    def test_every_option_of_the_usage_is_in_the_page(self):
        options = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", usage(WARDENCTL)))
        self.assertIn("-c", options)
        text = plain(page("wardenctl.8").splitlines())
        missing = sorted(o for o in options
                         if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), text))
        self.assertEqual(missing, [], "options of wardenctl --help not in wardenctl(8)")


@unittest.skipUnless(WARDEND, "WARDEND is not set")
class WardendTest(unittest.TestCase):
    def test_every_option_of_the_usage_is_a_tag(self):
        options = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", usage(WARDEND)))
        self.assertTrue({"-c", "--version"} <= options, options)
        tags = set()
        for sh, _ss, lines in sections("wardend.8"):
            if sh == "OPTIONS":
                for tag, _entry in entries(lines):
                    tags |= set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", plain([tag])))
        self.assertEqual(sorted(options - tags), [], "options of wardend --help not in the "
                         "OPTIONS of wardend(8)")


if __name__ == "__main__":
    unittest.main()
