"""docs: references hold. The documentation (README.md and docs/*.md) is
checked against the code, for what a machine can check:

- every key in the key tables of docs/configuration.md is asked for by the
  code (a string literal in daemon/, checks/ or actions/);
- every event named in docs/events.md (its `### \`family.what\`` headings)
  is emitted by the code (an `Emit("family.what"` in daemon/, checks/ or
  actions/), and every event the code emits is named there; every field
  named in its tables appears as a string literal in that code;
- every ```ini block validates with the real `wardenctl validate` (below);
- `wardenctl help check` and `help action` list the types of the
  reference's type tables, `help check TYPE` names every key and value of
  the type's row, and its example validates (the unit tests hold each
  type's option table to the same row, word for word);
- every relative link resolves (the file, and the heading of an #anchor),
  and every `docs/NAME.md` named anywhere in the repository exists;
- no file of the repository refers to files outside it (the old contract,
  a shared directory beside the checkout), and the docs carry no issue
  numbers.

INI samples. A block is written to a private temporary file and validated
as a whole. Two things are added when the block does not have them, so that
a sample can show one section: `[mutex] mode = off` when it has no
`[mutex]`, and a default `[mysql]` (socket and user) when it has no
`[mysql]`. An empty conf.d/ sits beside the sample, as it does in an
installed /etc/warden/ (`include = conf.d/*.ini`). Keys whose files `wardenctl validate` reads (password_file,
token_file, ssl_ca, ssl_capath, ssl_cert, ssl_key, cert_file, key_file,
defaults_file) are pointed at private stand-ins made by the test. A block
that must not be validated (an excerpt, a sample of an error) is preceded
by the line

    <!-- docs-test: skip: WHY -->

where WHY says why; a skip without a reason fails.

Environment: WARDENCTL (the binary; the ini samples are skipped without
it), WARDEN_SOURCE_DIR (default: two levels above this file).
"""

import os
import re
import stat
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("WARDEN_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
WARDENCTL = os.environ.get("WARDENCTL")
THIS_FILE = os.path.relpath(os.path.abspath(__file__), SOURCE)

CODE_DIRS = ("daemon", "checks", "actions")
SKIP_MARK = re.compile(r"^<!--\s*docs-test:\s*skip\s*(?::\s*(.*?))?\s*-->\s*$")
# Built in pieces, so that this file does not name what it looks for.
OUTSIDE = [re.compile(p) for p in (
    r"\.\./" + "shared",
    r"\b" + "shared/" + r"[A-Z]",
    r"\b" + "DESIGN" + r"\b",
    r"\b" + "TOOLCHAIN" + r"\.md\b",
    r"\b" + "STYLE" + r"\.md\b",
)]
ISSUE = re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE)
FILE_KEYS = ("password_file", "token_file", "ssl_ca", "ssl_cert", "ssl_key", "cert_file",
             "key_file", "defaults_file")


def read(rel):
    with open(os.path.join(SOURCE, rel), encoding="utf-8") as f:
        return f.read()


def doc_files():
    docs = sorted("docs/" + n for n in os.listdir(os.path.join(SOURCE, "docs"))
                  if n.endswith(".md"))
    return ["README.md"] + docs


def code_files():
    for top in CODE_DIRS:
        for root, _dirs, names in os.walk(os.path.join(SOURCE, top)):
            for n in sorted(names):
                if n.endswith((".cc", ".h")):
                    yield os.path.relpath(os.path.join(root, n), SOURCE)


def repo_files():
    """The repository's files: git's list when there is one, else a walk."""
    try:
        out = subprocess.run(["git", "-C", SOURCE, "ls-files", "-z"], check=True,
                             capture_output=True).stdout.decode()
        return [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(SOURCE):
            dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
            files += [os.path.relpath(os.path.join(root, n), SOURCE) for n in names]
        return files


def text_of(rel):
    try:
        with open(os.path.join(SOURCE, rel), "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data.decode("utf-8", "replace")


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*]{1,2}", "", heading.strip())
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(rel):
    found = set()
    counts = {}
    in_fence = False
    for line in read(rel).splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if in_fence:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        s = slug(m.group(1))
        n = counts.get(s, 0)
        counts[s] = n + 1
        found.add(s if n == 0 else "%s-%d" % (s, n))
    return found


def ini_blocks(rel):
    """(line number, text, skip reason or None) of every ```ini block."""
    lines = read(rel).splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```ini":
            start = i + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            skip = None
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0:
                m = SKIP_MARK.match(lines[j].strip())
                if m:
                    skip = m.group(1) or ""
            blocks.append((start, "\n".join(lines[start:end]) + "\n", skip))
            i = end
        i += 1
    return blocks


class EventsTest(unittest.TestCase):
    def setUp(self):
        self.code = {f: read(f) for f in code_files()}

    def emitted(self):
        names = {}
        for f, text in self.code.items():
            for m in re.finditer(r'\bEmit\(\s*"([a-z_]+\.[a-z_]+)"', text):
                names.setdefault(m.group(1), f)
        return names

    def documented(self):
        """{event: [field, ...]} from docs/events.md."""
        events = {}
        current = None
        for line in read("docs/events.md").splitlines():
            m = re.match(r"^#{2,4}\s+`([a-z_]+\.[a-z_]+)`\s*$", line)
            if m:
                current = m.group(1)
                self.assertNotIn(current, events, "%s is listed twice" % current)
                events[current] = []
                continue
            if line.startswith("#"):
                current = None
            if line.startswith("|") and current is not None:
                first = line.split("|")[1]
                events[current] += re.findall(r"`([a-z_]+)`", first)
        return events

    def test_every_emitted_event_is_listed_and_every_listed_event_emitted(self):
        emitted = self.emitted()
        documented = self.documented()
        self.assertGreater(len(emitted), 10, "no Emit(\"…\") found: has the code moved?")
        missing = sorted(set(emitted) - set(documented))
        extra = sorted(set(documented) - set(emitted))
        self.assertEqual(missing, [], "emitted but not in docs/events.md: " +
                         ", ".join("%s (%s)" % (e, emitted[e]) for e in missing))
        self.assertEqual(extra, [], "in docs/events.md but emitted nowhere: " + ", ".join(extra))

    def test_every_listed_field_is_written_by_the_code(self):
        code = "\n".join(self.code.values())
        unknown = set()
        for event, fields in self.documented().items():
            for field in fields:
                if '"%s"' % field not in code:
                    unknown.add("%s.%s" % (event, field))
        self.assertEqual(sorted(unknown), [], "fields listed in docs/events.md that no code "
                         "writes")


def reference_keys():
    """{heading: set of keys}: the first column of every `| key | default |
    meaning |` table of docs/configuration.md, by the `## ` heading it is
    under (`[daemon]`, `[check NAME]`, ...). Also read by test_man.py, so
    that warden.ini(5) names the same keys."""
    keys = {}
    heading = None
    in_key_table = False
    for line in read("docs/configuration.md").splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        if line.startswith("| key |"):
            in_key_table = True
            continue
        if not line.startswith("|"):
            in_key_table = False
        if in_key_table:
            keys.setdefault(heading, set()).update(
                re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return keys


class KeysTest(unittest.TestCase):
    def test_every_key_in_the_configuration_reference_is_read_by_the_code(self):
        """The first column of every `| key | default | meaning |` table of
        docs/configuration.md names keys the config code asks for."""
        code = "\n".join(read(f) for f in code_files())
        keys = set().union(*reference_keys().values())
        self.assertGreater(len(keys), 50, "hardly any keys found in docs/configuration.md")
        unknown = sorted(k for k in keys if '"%s"' % k not in code)
        self.assertEqual(unknown, [], "keys in docs/configuration.md that no code reads")


@unittest.skipUnless(WARDENCTL, "WARDENCTL is not set")
class IniSamplesTest(unittest.TestCase):
    def validate(self, rel, line, text):
        with tempfile.TemporaryDirectory() as tmp:
            counter = [0]

            def stand_in(key, value):
                counter[0] += 1
                path = os.path.join(tmp, "%s-%d" % (key, counter[0]))
                if key == "defaults_file":
                    group = re.search(r"^\s*defaults_group\s*=\s*(\S+)", text, re.M)
                    body = "[client]\nuser = warden\n"
                    if group and group.group(1) != "client":
                        body += "[%s]\nuser = warden\n" % group.group(1)
                else:
                    body = "stand-in for %s\n" % value
                with open(path, "w") as f:
                    f.write(body)
                os.chmod(path, 0o600)
                return path

            def replace(m):
                return "%s%s%s%s" % (m.group(1), m.group(2), m.group(3),
                                     stand_in(m.group(2), m.group(4)))

            config = re.sub(r"^(\s*)(%s)(\s*=\s*)([^\s;]+)" % "|".join(FILE_KEYS), replace,
                            text, flags=re.M)

            def capath(m):
                d = os.path.join(tmp, "capath")
                os.makedirs(d, exist_ok=True)
                return m.group(1) + d
            config = re.sub(r"^(\s*ssl_capath\s*=\s*)[^\s;]+", capath, config, flags=re.M)
            if not re.search(r"^\s*\[mutex\]", config, re.M):
                config += "\n[mutex]\nmode = off\n"
            if not re.search(r"^\s*\[mysql\]", config, re.M):
                config += "\n[mysql]\nsocket = /run/mysqld/mysqld.sock\nuser = warden\n"
            os.mkdir(os.path.join(tmp, "conf.d"))   # as installed: include = conf.d/*.ini
            path = os.path.join(tmp, "sample.ini")
            with open(path, "w") as f:
                f.write(config)
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
            p = subprocess.run([WARDENCTL, "-c", path, "validate"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, "%s:%d: the ini sample does not validate:\n%s%s"
                             "\n--- as validated:\n%s" % (rel, line, p.stdout, p.stderr, config))

    def test_every_ini_sample_validates(self):
        seen = 0
        for rel in doc_files():
            for line, text, skip in ini_blocks(rel):
                with self.subTest(sample="%s:%d" % (rel, line)):
                    if skip is not None:
                        self.assertTrue(skip.strip(), "%s:%d: a skipped sample must say why "
                                        "(<!-- docs-test: skip: WHY -->)" % (rel, line))
                        continue
                    seen += 1
                    self.validate(rel, line, text)
        self.assertGreater(seen, 5, "hardly any ini samples found")


def type_rows(heading):
    """{type: set of backquoted words of its keys column} of the `| type |
    keys |` table under the `## ` heading `heading` of docs/configuration.md."""
    rows, current, in_table = {}, None, False
    for line in read("docs/configuration.md").splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
        if line.startswith("| type | keys |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
        m = re.match(r"^\| `([a-z_]+)` \|([^|]*)\|", line)
        if in_table and current == heading and m:
            rows[m.group(1)] = set(re.findall(r"`([a-z_]+)`", m.group(2)))
    return rows


@unittest.skipUnless(WARDENCTL, "WARDENCTL is not set")
class HelpTest(unittest.TestCase):
    def help(self, *args):
        return subprocess.run([WARDENCTL, "help"] + list(args), capture_output=True, text=True,
                              timeout=30)

    def test_help_describes_every_type_of_the_reference(self):
        for kind in ("check", "action"):
            rows = type_rows("[%s NAME]" % kind)
            self.assertGreater(len(rows), 4, "hardly any %s types in docs/configuration.md" % kind)
            p = self.help(kind)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(sorted(re.findall(r"^  ([a-z_]+) ", p.stdout, re.M)), sorted(rows))
            for name, words in sorted(rows.items()):
                with self.subTest(kind=kind, type=name):
                    p = self.help(kind, name)
                    self.assertEqual((p.returncode, p.stderr), (0, ""))
                    keys, _, example = p.stdout.partition("\nexample:\n")
                    keys = keys.split("\nand those of every ")[0]
                    missing = sorted(w for w in words if not re.search(r"\b%s\b" % w, keys))
                    self.assertEqual(missing, [], "keys and values of the reference's row that "
                                     "wardenctl help %s %s does not name" % (kind, name))
                    self.assertTrue(example.startswith("[%s " % kind), p.stdout)
                    IniSamplesTest.validate(self, "wardenctl help %s %s" % (kind, name), 1,
                                            example)
        p = self.help("check", "nonesuch")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no check type 'nonesuch'", p.stderr)


class ReferencesTest(unittest.TestCase):
    def test_relative_links_resolve(self):
        problems = []
        for rel in doc_files():
            base = os.path.dirname(rel)
            text = re.sub(r"```.*?```", "", read(rel), flags=re.S)
            for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", text):
                target = m.group(1)
                if re.match(r"^[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(base, path)) if path else rel
                if not os.path.exists(os.path.join(SOURCE, dest)):
                    problems.append("%s: link to %s: no such file" % (rel, target))
                elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                    problems.append("%s: link to %s: no such heading in %s" % (rel, target, dest))
        self.assertEqual(problems, [])

    def test_every_named_doc_exists(self):
        problems = []
        for rel in repo_files():
            if rel == THIS_FILE:
                continue
            text = text_of(rel)
            if text is None:
                continue
            for m in re.finditer(r"\bdocs/([A-Za-z0-9_.-]+\.md)\b", text):
                name = "docs/" + m.group(1)
                if not os.path.exists(os.path.join(SOURCE, name)):
                    problems.append("%s names %s, which does not exist" % (rel, name))
        self.assertEqual(sorted(set(problems)), [])

    def test_nothing_refers_outside_the_repository(self):
        problems = []
        for rel in repo_files():
            if rel == THIS_FILE:
                continue
            text = text_of(rel)
            if text is None:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if any(p.search(line) for p in OUTSIDE):
                    problems.append("%s:%d: %s" % (rel, n, line.strip()))
        self.assertEqual(problems, [])

    def test_no_issue_numbers_in_the_docs(self):
        problems = []
        for rel in doc_files():
            for n, line in enumerate(read(rel).splitlines(), 1):
                if ISSUE.search(line):
                    problems.append("%s:%d: %s" % (rel, n, line.strip()))
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main()
