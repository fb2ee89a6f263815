"""./build.sh demo (tests/demo.py) as a user runs it: it passes its own
checks, explains what it prints (the legend, which build it ran, why the
first invocations hold the environment open) and writes the files it names."""
import os
import re
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

    def summary_rows(self):
        """(label, mark, cold) of each row of the Summary table (fixed columns)."""
        block = self.text.split("\nSummary\n", 1)[1].split("\n  (i.p.", 1)[0]
        rows = []
        for line in block.splitlines()[1:]:
            rows.append((line[5:19].strip(), line[57:65].strip(), line[66:70].strip()))
        return rows

    def test_cost_per_phase(self):
        block = self.text.split("\nCost per phase", 1)[1].split("\n\n", 1)[0]
        rows = {}
        for line in block.splitlines():
            m = re.match(r"^\s+(\d+) (.{14}) +([\d.]+) \[(\d+)\] +([\d.]+) +([\d.]+) \[(\d+)\] +"
                         r"([\d.]+) \[(\d+)\] +([\d.]+)$", line)
            if m:
                rows[int(m.group(1))] = (m.group(2).strip(), [float(m.group(i)) for i in (3, 5, 6, 8, 10)],
                                         [int(m.group(i)) for i in (4, 7, 9)])
        self.assertGreaterEqual(len(rows), 5, block)
        label, (init, invoke, after, ours, total), (init_ms, after_ms, ours_ms) = rows[1]
        self.assertEqual(label, "cold start")
        # the cold start's Init is billed (since 2025-08-01) and priced
        self.assertGreater(init_ms, 0)
        self.assertGreater(init, 0)
        for n, (label, (init, invoke, after, ours, total), (init_ms, after_ms, ours_ms)) in rows.items():
            # the total is Init + invocation; the after-response part is inside the invocation,
            # ours inside that
            self.assertAlmostEqual(total, init + invoke, delta=2e-9, msg=label)
            self.assertLessEqual(after, invoke, label)
            self.assertLessEqual(ours_ms, after_ms, label)
            self.assertLessEqual(ours, after + 1e-9, label)

    def test_metrics_summary_matches_the_steps(self):
        block = self.text.split("\nMetrics (", 1)[1].split("\n\n", 1)[0]
        counts = dict((k, float(v)) for k, v in re.findall(r"(\w+) ([\d.]+)(?:,|$)", block.splitlines()[1]))
        rows = self.summary_rows()
        # every invocation is counted, the sampled-out one too
        self.assertEqual(counts["Invocations"], len(rows))
        self.assertEqual(counts["ColdStart"], sum(1 for r in rows if r[2] == "yes"))
        self.assertEqual(counts["Timeouts"], sum(1 for r in rows if r[1] == "TIMEOUT"))
        self.assertEqual(counts["OutOfMemory"], sum(1 for r in rows if r[1] == "OOM"))
        self.assertEqual(counts["Crashes"], sum(1 for r in rows if r[1] == "CRASH"))
        self.assertGreater(counts["EstimatedCostUSD"], 0)
        self.assertRegex(block, r"\n  Duration: %d values, mean [\d.]+ ms, max [\d.]+ ms" % len(rows))
        self.assertRegex(block, r"\n  InitDuration: %d values" % counts["ColdStart"])

    def test_writes_the_files_it_names(self):
        with open(self.out) as f:
            lines = [l for l in f if l.strip()]
        self.assertGreaterEqual(len(lines), 8)
        # segments only: the metrics documents are not traces
        self.assertFalse([l for l in lines if '"_aws"' in l])
        html = os.path.join(self.tmp, "traces.html")
        self.assertTrue(os.path.getsize(html) > 1000)
        self.assertIn("traces.html", self.text)


if __name__ == "__main__":
    unittest.main()
