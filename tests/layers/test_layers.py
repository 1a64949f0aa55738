"""The real tree keeps the layers; the checker catches each way to break them."""
import os
import tempfile
import unittest

import check_layers

ROOT = os.environ.get("WARDEN_SOURCE_DIR",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class LayersTest(unittest.TestCase):
    def tree(self, files):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        for path, text in files.items():
            full = os.path.join(d.name, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        return d.name

    def test_the_sources_include_only_downwards(self):
        self.assertEqual(check_layers.check(ROOT), [])

    def test_an_include_from_above_is_named_with_file_and_line(self):
        root = self.tree({
            "daemon/base/units.h": '#pragma once\n#include "daemon/engine/state.h"\n',
            "daemon/engine/state.h": '#pragma once\n#include "daemon/base/units.h"\n',
        })
        self.assertEqual(check_layers.check(root), [
            "daemon/base/units.h:2: base includes daemon/engine/state.h from engine, "
            "which is above it"])

    def test_modules_beside_each_other_stay_apart(self):
        root = self.tree({"checks/disk.cc": '#include "actions/exec.h"\n',
                          "actions/exec.h": "#pragma once\n"})
        problems = check_layers.check(root)
        self.assertEqual(len(problems), 1)
        self.assertIn("checks/disk.cc:1: checks includes actions/exec.h from actions, "
                      "which is beside it", problems[0])

    def test_a_file_in_no_module_is_reported(self):
        root = self.tree({"daemon/util/trim.h": "#pragma once\n"})
        self.assertEqual(len(check_layers.check(root)), 1)
        self.assertIn("daemon/util/trim.h: in no module", check_layers.check(root)[0])

    def test_the_composition_root_may_include_every_module(self):
        root = self.tree({"daemon/daemon.cc": '#include "daemon/control/control.h"\n'
                                              '#include "daemon/base/status.h"\n'})
        self.assertEqual(check_layers.check(root), [])


if __name__ == "__main__":
    unittest.main()
