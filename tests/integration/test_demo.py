"""./build.sh demo (tests/demo.py) as a user runs it: it passes its own
checks, explains what it prints (the legend, which build it ran, why the
first invocations hold the environment open) and writes the files it names."""
import os
import subprocess
import sys
import tempfile
import unittest

import harness

DEMO = os.path.join(harness.REPO, "tests", "demo.py")


@unittest.skipIf(harness.quick(), "one run is enough (the demo takes about 10 s)")
class Demo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.out = os.path.join(cls.tmp, "segments.jsonl")
        cls.run_ = subprocess.run([sys.executable, DEMO, "--binary", harness.binary(), "--build", "dev",
                                   "--out", cls.out, "--color", "never"],
                                  capture_output=True, text=True, timeout=300)
        cls.text = cls.run_.stdout

    def test_passes_its_own_checks(self):
        self.assertEqual(self.run_.returncode, 0, self.text[-3000:] + self.run_.stderr[-2000:])
        self.assertNotIn("FAILED", self.text)

    def test_says_which_build_and_how_to_read_it(self):
        head = self.text.split("\n#1 ", 1)[0]
        self.assertIn("development build", head)
        self.assertIn("./build.sh layer", head)
        for term in ("How to read it", "Initialization", "Runtime init", "Extension overhead", "in-progress"):
            self.assertIn(term, head)

    def test_explains_the_eager_export_where_it_appears(self):
        # The environment's first invocations are exported before /next (auto); the wait for
        # the platform's telemetry batch (25 ms buffering) shows as Extension overhead.
        first3 = self.text.split("\n#1 ", 1)[1].split("\n#4 ", 1)[0]
        self.assertRegex(first3, r"Extension overhead [0-9.]+ ms: the default flush policy \(auto\)")
        # the slow step is the 5th invocation of the first environment: background, no note
        slow = self.text.split("\n#5 slow", 1)[1].split("\n#6 ", 1)[0]
        self.assertNotIn("default flush policy", slow)

    def test_writes_the_files_it_names(self):
        with open(self.out) as f:
            lines = [l for l in f if l.strip()]
        self.assertGreaterEqual(len(lines), 8)
        html = os.path.join(self.tmp, "traces.html")
        self.assertTrue(os.path.getsize(html) > 1000)
        self.assertIn("traces.html", self.text)


if __name__ == "__main__":
    unittest.main()
