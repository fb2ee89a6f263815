"""Sustained load (issue 6, section 3): 10,000 invocations whose function logs heavily (20
lines of 200 bytes each, subscribed through the log tail), against the binary under test.

Memory bound (the benchmarks issue targets < 2 MB idle for the static release build; this runs
the development build, so the bound is on growth, not size): the extension's RSS after 10,000
invocations is within 512 KiB of its RSS after 5,000, i.e. it stopped growing (measured here,
with two CPU-bound loops beside it: 11,488 KiB after 1,000, 11,540 after 5,000, 11,676 after
10,000).  Always on the plain build (build/dev), whichever binary is under test: under ASan the
RSS also counts its shadow memory and quarantine, which move with fragmentation and load
(800 KiB up and down between samples 500 invocations apart; 3.1 MiB of growth in the second
half in one loaded run, 0.9 MiB in the next), so there it measured the machine, not the
extension; leaks there are LeakSanitizer's.  The sanitizer runs keep the 10,000 invocations for
what they check.  Under LAMBDA_TRACER_TEST_QUICK=1 (TSan) the run is 1,000 invocations and the
memory test is left to the full pass."""
import os
import shutil
import statistics
import unittest

import harness
from test_faults import BACKGROUND_MS, EAGER_MS, Checks, final_segments

LOG_PAYLOAD = b'{"action":"log","lines":20,"bytes":200}'


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class SustainedLoadTest(unittest.TestCase, Checks):
    def run_load(self, binary, total, env):
        """total invocations against binary; returns (held ms each, RSS at 1,000, half and
        total, the output lines, the request ids)."""
        root = harness.make_root(extension_binary=binary)
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root, env=env)
        self.addCleanup(emu.close)
        emu.start()
        pid = emu.extension_pids()[harness.EXT_NAME]
        held = []
        rss = {}
        rids = set()
        for i in range(1, total + 1):
            r = emu.invoke(payload=LOG_PAYLOAD)
            self.assertEqual(r.status, "success", r)
            rids.add(r.request_id)
            held.append(harness.extension_overhead_ms(r))
            # only this invocation's records: keep the test's own memory flat
            r.records = None
            if i in (1000, total // 2, total):
                rss[i] = rss_kb(pid)
            if i % 500 == 0:
                emu.emitted.clear()
                emu.delivered.clear()
                del emu.api_log[:]
        self.assertEqual(emu.extension_pids()[harness.EXT_NAME], pid)  # never restarted
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        self.assert_clean_exit(sd, lines)
        return held, rss, lines, rids

    def test_ten_thousand_invocations_with_heavy_logging(self):
        binary = harness.binary()
        total = 1000 if harness.quick() else 10000
        env = {"LAMBDA_TRACER_LOG_LEVEL": "info", "LAMBDA_TRACER_LOG_TAIL_LINES": "20"}
        held, rss, lines, rids = self.run_load(binary, total, env)

        # no invocation held: the first three are eager (default policy), the rest background
        self.assertLessEqual(max(held[:3]), EAGER_MS)
        rest = sorted(held[3:])
        self.assertLessEqual(rest[int(len(rest) * 0.99)], BACKGROUND_MS, statistics.mean(rest))
        self.assertLessEqual(rest[-1], EAGER_MS)

        # nothing lost, or counted: one final segment per invocation, drops in the summary
        s = harness.summary(lines)
        finals = {rid: len(docs) for rid, docs in final_segments(lines).items() if docs}
        lost = rids - set(finals)
        self.assertEqual(s["invokes"], total)
        # a bound that forces a drop counts it: the queue's, the platform's, and the invocation
        # table's (64 open invocations: on a starved machine the pipeline can fall that far
        # behind INVOKE, and the oldest announced one then yields its slot, counted)
        if s["queue_dropped"] == 0 and s["platform_dropped_records"] == 0 and s["evicted_invocations"] == 0:
            self.assertEqual(lost, set(), s)
        else:
            self.assertLessEqual(len(lost), s["unreported"] + s["closed_by_shutdown"] + s["evicted_invocations"],
                                 s)
        self.assertEqual([n for n in finals.values() if n != 1], [])

    @unittest.skipIf(harness.quick(), "the full pass measures memory")
    def test_memory_stops_growing(self):
        plain = os.path.join(harness.REPO, "build", "dev", "lambda-tracer")
        if not os.path.exists(plain):
            raise RuntimeError(f"{plain} is missing: run ./build.sh build (or make) first")
        total = 10000
        env = {"LAMBDA_TRACER_LOG_LEVEL": "info", "LAMBDA_TRACER_LOG_TAIL_LINES": "20"}
        _, rss, _, _ = self.run_load(plain, total, env)
        growth = rss[total] - rss[total // 2]
        bound = 512
        print("\nRSS (KiB, build/dev) after 1,000: %d, after %d: %d, after %d: %d (bound on the second half: %d)"
              % (rss[1000], total // 2, rss[total // 2], total, rss[total], bound))
        self.assertLessEqual(growth, bound, rss)


if __name__ == "__main__":
    unittest.main()
