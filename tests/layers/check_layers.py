#!/usr/bin/env python3
"""The modules' one direction of dependency, checked on the sources.

Every source file belongs to one module (by its folder); a file may
include headers of its own module and of modules below it, never of a
module above it or of a module beside it. The order is the one in
docs/architecture.md and in the top-level CMakeLists.txt:

    base -> io -> checks, actions -> config -> engine -> jobs -> control
         -> daemon (the composition root), ctl (wardenctl)

Exits 1 naming each include that goes the wrong way (file:line), or any
source file in a folder that is no module.
"""
import os
import re
import sys

# module: (level, folder). Modules on the same level may not include each
# other.
MODULES = {
    "base": (0, "daemon/base"),
    "io": (1, "daemon/io"),
    "checks": (2, "checks"),
    "actions": (2, "actions"),
    "config": (3, "daemon/config"),
    "engine": (4, "daemon/engine"),
    "jobs": (5, "daemon/jobs"),
    "control": (6, "daemon/control"),
    "daemon": (7, "daemon"),
    "ctl": (7, "daemon/ctl"),
}
SOURCE_DIRS = ("daemon", "checks", "actions")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(path):
    """The module a repository-relative path belongs to, or None."""
    folder = os.path.dirname(path)
    for name, (_, mod_folder) in MODULES.items():
        if folder == mod_folder:
            return name
    return None


def check(root):
    problems = []
    for top in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".h", ".cc", ".h.in")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, f), root)
                mine = module_of(path)
                if mine is None:
                    problems.append(f"{path}: in no module (add its folder to "
                                    f"tests/layers/check_layers.py and docs/architecture.md)")
                    continue
                level = MODULES[mine][0]
                with open(os.path.join(root, path), encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        theirs = module_of(target)
                        if theirs is None or theirs == mine:
                            continue   # generated (version.h) or its own module
                        if MODULES[theirs][0] >= level:
                            problems.append(
                                f"{path}:{n}: {mine} includes {target} from {theirs}, "
                                f"which is {'beside' if MODULES[theirs][0] == level else 'above'} it")
    return problems


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    problems = check(os.path.abspath(root))
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) against the layers", file=sys.stderr)
        return 1
    print("every include goes down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
