"""Sustained load (issue 6, section 3): 10,000 invocations whose function logs heavily (20
lines of 200 bytes each, subscribed through the log tail), against the binary under test.

Memory bound (the benchmarks issue targets < 2 MB idle for the static release build; this runs
the development or sanitizer build, so the bound is on growth, not size): the extension's RSS
after 10,000 invocations is within a bound of its RSS after 5,000, i.e. it stopped growing.
Plain build: 1 MiB (measured here: 11,096 KiB after 100, 11,240 after 1,000, 11,340 after
5,000 and after 10,000).  ASan+UBSan, its quarantine capped at 4 MiB for this test: 2 MiB (its
allocator fills caches and quarantine over the first thousands; measured 25,628 after 100,
33,064 after 1,000, 36,264 after 5,000, 36,296 after 10,000).  TSan's shadow memory is not
comparable: under LAMBDA_TRACER_TEST_QUICK=1 (TSan) the run is 1,000 invocations without the
memory bound."""
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
    def test_ten_thousand_invocations_with_heavy_logging(self):
        binary = harness.binary()
        tsan = "/tsan/" in binary
        asan = "/asan/" in binary
        total = 1000 if harness.quick() else 10000
        env = {"LAMBDA_TRACER_LOG_LEVEL": "info", "LAMBDA_TRACER_LOG_TAIL_LINES": "20"}
        if asan:
            env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                   ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64").lstrip(":")
        root = harness.make_root()
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

        if not tsan:
            growth = rss[total] - rss[total // 2]
            bound = 2048 if asan else 1024
            print("\nRSS (KiB) after 1,000: %d, after %d: %d, after %d: %d (bound on the second half: %d)"
                  % (rss[1000], total // 2, rss[total // 2], total, rss[total], bound))
            self.assertLessEqual(growth, bound, rss)


if __name__ == "__main__":
    unittest.main()
