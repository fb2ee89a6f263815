"""The Extensions API loop survives what the API can send (issue 10, point 6): an answer cut
off mid-body, an oversized INVOKE, runs of non-JSON 200s and of errors.  In each case the
extension exits 0 at SHUTDOWN, the invocations are still traced, the number of calls and of
log lines stays bounded and the CPU is not spun."""
import os
import shutil
import time
import unittest

import harness
from test_faults import Checks, final_segments

NEXT = "/2020-01-01/extension/event/next"
# EXTAPI_NEXT_BACKOFF_MIN_MS doubling up to _MAX_MS: the first seven gaps of a run
BACKOFF_GAPS_MS = [10, 20, 40, 80, 160, 250, 250]


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Env:
    """One environment with the given next_faults, never frozen (a frozen sandbox would
    hide a spinning loop)."""

    def __init__(self, tc, faults=None):
        root = harness.make_root()
        tc.addCleanup(shutil.rmtree, root, True)
        self.emu = harness.new_emulator(root, faults={"next_faults": faults or []}, freeze=False)
        tc.addCleanup(self.emu.close)
        self.init = self.emu.start()
        self.pid = self.init.extension_pids[harness.EXT_NAME]

    def ours(self, fault=None):
        return [c for c in list(self.emu.api_log)
                if c.get("who") == harness.EXT_NAME and c.get("path") == NEXT
                and (fault is None or c.get("fault") == fault)]

    def invokes_received(self, request_id):
        return sum(1 for c in self.ours() if c.get("event") == "INVOKE" and c.get("request_id") == request_id
                   and c.get("fault") is None)

    def finish(self):
        self.sd = self.emu.shutdown()
        self.lines = harness.output_lines(self.emu)


class ExtApiFaultTest(unittest.TestCase, Checks):
    def assert_traced(self, env, results):
        finals = final_segments(env.lines)
        for r in results:
            self.assertEqual(r.status, "success")
            self.assertEqual(len(finals.get(r.request_id, [])), 1, (r.request_id, sorted(finals)))

    def warns(self, env):
        """WARN / ERROR lines about the Extensions API (a slow machine may add others, e.g.
        about eager export, which are not what these tests look at)."""
        return [l for l in env.lines if (" WARN " in l or " ERROR " in l) and "/event/next" in l]

    def test_event_cut_off_mid_body_is_asked_for_again(self):
        env = Env(self, [{"truncate": True}])
        r1 = env.emu.invoke(payload=b'{"action":"fast"}')
        r2 = env.emu.invoke(payload=b'{"action":"fast"}')
        env.finish()
        self.assert_clean_exit(env.sd, env.lines)
        self.assertEqual(len(env.ours("truncate")), 1)
        # the cut INVOKE was asked for again and got whole: one INVOKE each, both traced
        self.assertEqual((env.invokes_received(r1.request_id), env.invokes_received(r2.request_id)), (1, 1))
        self.assert_traced(env, [r1, r2])
        self.assertEqual(self.warns(env), [])

    def test_truncated_shutdown_is_asked_for_again_and_exits_0(self):
        env = Env(self)
        r1 = env.emu.invoke(payload=b'{"action":"fast"}')
        env.emu.faults["next_faults"] = [{"truncate": True}]
        env.finish()
        self.assert_clean_exit(env.sd, env.lines)
        self.assertEqual([c["event"] for c in env.ours("truncate")], ["SHUTDOWN"])
        self.assertTrue(env.sd.extensions[harness.EXT_NAME].shutdown_delivered)
        self.assert_traced(env, [r1])

    def test_100_kb_invoke_is_read(self):
        env = Env(self, [{"oversize_bytes": 100 * 1024}])
        r1 = env.emu.invoke(payload=b'{"action":"fast"}', trace_header="Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
        r2 = env.emu.invoke(payload=b'{"action":"fast"}')
        env.finish()
        self.assert_clean_exit(env.sd, env.lines)
        self.assertEqual(len(env.ours("oversize")), 1)
        self.assert_traced(env, [r1, r2])
        # read, not skipped: its trace header was used
        self.assertEqual(final_segments(env.lines)[r1.request_id][0]["trace_id"], "1-5759e988-bd862e3fe1be46a994272793")
        self.assertEqual(self.warns(env), [])

    def test_invoke_over_the_cap_is_skipped_with_one_line(self):
        env = Env(self, [{"oversize_bytes": 600 * 1024}])
        r1 = env.emu.invoke(payload=b'{"action":"fast"}')
        r2 = env.emu.invoke(payload=b'{"action":"fast"}')
        env.finish()
        self.assert_clean_exit(env.sd, env.lines)
        skipped = [l for l in self.warns(env) if "over 524288 bytes" in l]
        self.assertEqual(len(skipped), 1, self.warns(env))
        self.assertEqual(len(self.warns(env)), 1, self.warns(env))
        # the next event was read normally and both invocations are traced (the skipped one
        # from its telemetry)
        self.assertEqual(env.invokes_received(r2.request_id), 1)
        self.assert_traced(env, [r1, r2])

    def storm(self, fault, marker):
        """Invoke once, then make every /event/next call fail (`fault`) from the one after the
        second INVOKE on; returns (env, results, the failed calls, CPU seconds used, span s)
        once 8 calls failed, after the fault was lifted and a third invocation ran."""
        env = Env(self)
        r1 = env.emu.invoke(payload=b'{"action":"fast"}')
        env.emu.faults["next_faults"] = [dict(fault)]
        cpu0, t0 = cpu_s(env.pid), time.monotonic()
        r2 = env.emu.invoke(payload=b'{"action":"fast"}')
        harness.wait_for(lambda: len(env.ours(marker)) >= 8, 20, "8 failed /event/next calls")
        cpu1, t1 = cpu_s(env.pid), time.monotonic()
        failed = env.ours(marker)
        env.emu.faults["next_faults"] = []
        r3 = env.emu.invoke(payload=b'{"action":"fast"}')
        env.finish()
        span_s = (failed[7]["t_mono_ns"] - failed[0]["t_mono_ns"]) / 1e9
        # CPU over the window it was measured in (a loaded machine stretches the window, not
        # the CPU time)
        return env, [r1, r2, r3], failed, (cpu1 - cpu0) / (t1 - t0), span_s

    def assert_storm_weathered(self, env, results, failed, cpu_share, span_s, needle):
        self.assert_clean_exit(env.sd, env.lines)
        # paced: the 8 calls are at least the backoff apart (today: ~1 ms for all of them)
        self.assertGreaterEqual(span_s, sum(BACKOFF_GAPS_MS) / 1000.0, span_s)
        # and the CPU was not spun meanwhile (each call costs well under a millisecond)
        self.assertLess(cpu_share, 0.25, (cpu_share, span_s))
        # one line when the run started, one when it ended; none per call
        self.assertEqual(len([l for l in self.warns(env) if needle in l]), 1, self.warns(env))
        self.assertEqual(len(self.warns(env)), 1, self.warns(env))
        self.assertEqual(len([l for l in env.lines if "brought an event again" in l]), 1)
        # never exited: the third INVOKE reached the same process, every invocation traced
        self.assertEqual(env.invokes_received(results[2].request_id), 1)
        self.assert_traced(env, results)

    def test_run_of_non_json_200s_backs_off_and_logs_once(self):
        env, results, failed, cpu_share, span_s = self.storm({"garbage": 10 ** 6}, "garbage")
        self.assert_storm_weathered(env, results, failed, cpu_share, span_s, "not an event")

    def test_next_answering_500_after_init_never_exits(self):
        env, results, failed, cpu_share, span_s = self.storm({"status": 500, "count": 10 ** 6}, "status")
        self.assert_storm_weathered(env, results, failed, cpu_share, span_s, "/event/next failed")

    def test_next_answering_403_after_init_never_exits(self):
        body = '{"errorType":"Extension.InvalidExtensionState","errorMessage":"no"}'
        env, results, failed, cpu_share, span_s = self.storm({"status": 403, "count": 10 ** 6, "body": body},
                                                       "status")
        self.assert_storm_weathered(env, results, failed, cpu_share, span_s, "Extension.InvalidExtensionState")

    def test_non_json_200s_during_init_back_off_and_log_once(self):
        env = Env(self, [{"garbage": 8}])
        self.assertEqual(env.init.status, "success")
        r1 = env.emu.invoke(payload=b'{"action":"fast"}')
        env.finish()
        self.assert_clean_exit(env.sd, env.lines)
        failed = env.ours("garbage")
        self.assertEqual(len(failed), 8)
        span_s = (failed[7]["t_mono_ns"] - failed[0]["t_mono_ns"]) / 1e9
        self.assertGreaterEqual(span_s, sum(BACKOFF_GAPS_MS) / 1000.0)
        self.assertEqual(len(self.warns(env)), 1, self.warns(env))
        self.assert_traced(env, [r1])


if __name__ == "__main__":
    unittest.main()
