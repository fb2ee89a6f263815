"""Smoke check of the benchmarks (part of ./build.sh test; about 30 s).

Runs bench.py --quick (tiny counts) against the development build, the floor
and the load generator built by `make -f Makefile -f bench/bench.mk
bench-programs`, and checks that every figure comes out measured; and that a
figure that cannot be measured fails the run without writing results.  The
numbers themselves are not judged here: a benchmark is not a timed test.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEV = os.path.join(REPO, "build", "dev")
TRACER = os.environ.get("LAMBDA_TRACER_BIN") or os.path.join(DEV, "lambda-tracer")
FLOOR = os.path.join(DEV, "bench", "floor")
LOADGEN = os.path.join(DEV, "bench", "loadgen")

sys.path.insert(0, HERE)
import bench as BENCH  # noqa: E402


def bench(out, *extra):
    argv = [sys.executable, os.path.join(HERE, "bench.py"), "--tracer", TRACER, "--floor", FLOOR,
            "--loadgen", LOADGEN, "--out", out, "--quick", "--binary-kind", "dev build (smoke check)"]
    return subprocess.run(argv + list(extra), capture_output=True, text=True, timeout=120)


def numbers(node, path=""):
    """Every leaf of a results tree, as (path, value)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from numbers(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from numbers(v, f"{path}/{i}")
    else:
        yield path, node


class QuickBenchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for p in (TRACER, FLOOR, LOADGEN):
            if not os.path.exists(p):
                # ./build.sh test builds them and sets this: a skip there would hide a break
                if os.environ.get("LAMBDA_TRACER_REQUIRE_ALL") == "1":
                    raise RuntimeError(f"{p} is not built")
                raise unittest.SkipTest(f"{p} is not built")
        cls.tmp = tempfile.TemporaryDirectory()
        # a layer-shaped zip of the binary under test, for figure 6
        cls.zip = os.path.join(cls.tmp.name, "layer.zip")
        with zipfile.ZipFile(cls.zip, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(TRACER, "extensions/lambda-tracer")
        cls.out = os.path.join(cls.tmp.name, "out")
        cls.run_ = bench(cls.out, "--size", f"x86_64:{TRACER}:{cls.zip}")
        cls.results = None
        if cls.run_.returncode == 0:
            with open(os.path.join(cls.out, "results.json")) as f:
                cls.results = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_run_succeeds_and_writes_both_files(self):
        self.assertEqual(self.run_.returncode, 0, self.run_.stderr[-3000:])
        self.assertTrue(os.path.exists(os.path.join(self.out, "results.md")))

    def test_all_nine_figures_are_there(self):
        self.assertIsNotNone(self.results, self.run_.stderr[-3000:])
        self.assertEqual(sorted(k.split("_")[0] for k in self.results["figures"]),
                         ["1", "2", "3", "4", "5", "6", "7", "8", "9"])

    def test_every_leaf_is_a_finite_number_or_a_label(self):
        self.assertIsNotNone(self.results)
        leaves = list(numbers(self.results["figures"]))
        self.assertGreater(len(leaves), 100)
        for path, v in leaves:
            if isinstance(v, bool):
                continue
            if isinstance(v, str):
                self.assertTrue(path.endswith(("/binary", "/zip")), path)
                continue
            self.assertIsInstance(v, (int, float), path)
            self.assertTrue(math.isfinite(v), path)
            if "_delta" not in path:  # a difference of two runs may be negative
                self.assertGreaterEqual(v, 0, path)

    def test_references_are_beside_the_tracer(self):
        f = self.results["figures"]
        for label in ("none", "floor", "tracer"):
            self.assertIn(label, f["1_cold_start"])
        for label in ("none", "floor", "background", "auto", "eager"):
            self.assertIn(label, f["2_added_time"])
        self.assertEqual(set(f["7_cpu"]), {"floor", "tracer"})
        self.assertIn("floor", f["4_ingest"])
        self.assertIn("floor", f["5_shutdown"])

    def test_measurements_are_real(self):
        f = self.results["figures"]
        # the extension and the floor did run and use memory and CPU
        self.assertGreater(f["3_memory"]["tracer"]["idle_rss"]["median"], 0)
        self.assertGreater(f["3_memory"]["floor"]["idle_rss"]["median"], 0)
        self.assertGreater(f["4_ingest"]["tracer"]["cpu_us_per_record"]["median"], 0)
        self.assertGreater(f["7_cpu"]["tracer"]["cpu_per_invocation_us"]["median"], 0)
        # each slow invocation got the sampler's 8 snapshots, and they cost something
        f8 = f["8_snapshot"]
        self.assertEqual(f8["snapshots"], 8 * f8["slow_invocations"])
        self.assertGreater(f8["us_per_snapshot"], 0)
        # every pending segment of the shutdown runs reached the sink
        for label, v in f["5_shutdown"].items():
            if isinstance(v, dict) and "segments_expected" in v:
                self.assertEqual(v["segments_delivered_min"], v["segments_expected"], label)
        # the counting pass saw the references as they are built: the floor has one thread and
        # no listener, the floor + listener two; each makes fewer calls than with its listener
        c = f["9_counts"]
        self.assertEqual(c["init"]["floor"]["threads"], 1)
        self.assertEqual(c["init"]["floor_listener"]["threads"], 2)
        self.assertGreaterEqual(c["init"]["tracer"]["threads"], 1)
        sc = c["syscalls"]
        self.assertLess(sc["floor"]["before_first_next"], sc["floor_listener"]["before_first_next"])
        self.assertIn("execve", sc["tracer"]["before_first_next_by_call"])
        self.assertEqual(sum(sc["tracer"]["before_first_next_by_call"].values()), sc["tracer"]["before_first_next"])
        for label in ("floor", "floor_listener", "tracer", "tracer_exporting_nothing"):
            self.assertGreater(sc[label]["per_warm_invocation"], 0, label)
        sd = c["shutdown_slow_sink"]
        self.assertEqual(sd["segments_delivered"], sd["segments_expected"])
        self.assertGreater(sd["requests_after_shutdown"], 0)
        self.assertGreater(c["https_memory"]["system_bundle"]["idle_rss"]["median"], 0)
        # eager export waits for runtimeDone: it must hold invocations longer than background
        self.assertGreater(f["2_added_time"]["eager"]["held_open_ms"]["median"],
                           f["2_added_time"]["background"]["held_open_ms"]["median"])

    def test_goals_are_judged(self):
        goals = self.results["goals"]
        self.assertEqual({g["figure"] for g in goals}, {"1", "2", "3", "4", "5", "6"})
        for g in goals:
            self.assertIsInstance(g["goal"], str)
            self.assertTrue(g["goal"])
            self.assertIsInstance(g["met"], bool)
            for key in ("measured", "target"):
                self.assertIsInstance(g[key], (int, float), g)
                self.assertNotIsInstance(g[key], bool, g)
                self.assertTrue(math.isfinite(g[key]), g)
            # met is the comparison of measured with target, nothing else
            self.assertEqual(g["met"], BENCH.COMPARE[g["op"]](g["measured"], g["target"]), g)
        self.assertEqual({g["figure"] for g in self.results["goals_issue5"]}, {"1", "2", "3", "4", "5", "6"})

    def test_every_goal_of_issue_12_is_there(self):
        texts = " / ".join(g["goal"] for g in self.results["goals"])
        for part in ("system calls before the first", "threads when the first", "Init CPU",
                     "system calls per warm invocation", "wake-ups", "CPU per warm invocation", "held open",
                     "CPU while idle", "records/s per core", "segments delivered", "SHUTDOWN to exit",
                     "export CPU per PutTraceSegments request", "idle RSS after the first HTTPS export",
                     "peak RSS under a telemetry flood", "x86_64 layer zip"):
            self.assertIn(part, texts)

    def test_goals_follow_the_figures_they_are_judged_from(self):
        """Recomputed from edited figures, a goal's verdict flips: it is computed, not written."""
        r = json.loads(json.dumps(self.results))
        sc = r["figures"]["9_counts"]["syscalls"]["tracer"]
        for calls, met in ((BENCH.GOAL12_INIT_SYSCALLS, True), (BENCH.GOAL12_INIT_SYSCALLS + 1, False), (0, True)):
            sc["before_first_next"] = calls
            g = [g for g in BENCH.goals(r) if g["goal"].startswith("system calls before the first")][0]
            self.assertEqual((g["measured"], g["met"]), (calls, met))
        sd = r["figures"]["9_counts"]["shutdown_slow_sink"]
        sd["segments_delivered"] = sd["segments_expected"] - 1
        g = [g for g in BENCH.goals(r) if g["goal"].endswith("segments delivered")][0]
        self.assertFalse(g["met"])
        sd["segments_delivered"] = "301"  # not a number: the goal cannot be judged
        with self.assertRaises(BENCH.BenchError):
            BENCH.goals(r)

    def test_goals_table_prints_every_goal(self):
        before = os.path.join(self.tmp.name, "before.json")
        with open(before, "w") as f:
            json.dump({"goals": self.results["goals"][:2]}, f)
        p = subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--goals-table", "--results",
                            os.path.join(self.out, "results.json"), "--before", before],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [l for l in p.stdout.splitlines() if l.startswith("| ") and not l.startswith(("| #", "| ---"))]
        self.assertEqual(len(rows), len(self.results["goals"]))
        self.assertIn("| before |", p.stdout)
        for row, g in zip(rows, self.results["goals"]):
            self.assertIn(g["goal"], row)
            self.assertTrue(row.endswith("| yes |") if g["met"] else row.endswith("| **no** |"), row)
        # the counts of the first two goals are in the before column, the rest are not
        self.assertNotIn("| — |", "\n".join(rows[:2]))
        self.assertIn("| — |", rows[2])

    def test_a_figure_that_cannot_be_measured_fails_the_run(self):
        out = os.path.join(self.tmp.name, "missing")
        p = bench(out, "--size", f"x86_64:{TRACER}:{self.tmp.name}/no-such.zip")
        self.assertEqual(p.returncode, 1)
        self.assertIn("FAILED, a figure could not be measured", p.stderr)
        self.assertIn("no-such.zip", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "results.json")))


if __name__ == "__main__":
    unittest.main()
