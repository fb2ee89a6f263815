"""Traces (issue 3): the exported X-Ray documents for every scenario,
checked against what the emulator really did."""
import re
import shutil
import unittest

import harness

HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
UNSAMPLED = "Root=1-5759e989-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad9;Sampled=0"


class TraceScenarioTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = harness.make_root()
        cls.emu = harness.new_emulator(cls.root, timeout_s=2, memory_mb=128)
        e = cls.emu
        e.start()
        cls.cold = e.invoke(payload=b'{"action":"fast"}', trace_header=HEADER)
        cls.warm = e.invoke(payload=b'{"action":"slow","ms":120}')
        cls.unsampled = e.invoke(payload=b'{"action":"fast"}', trace_header=UNSAMPLED)
        cls.fnerr = e.invoke(payload=b'{"action":"error","type":"Function.MyError","message":"boom"}')
        cls.timeout = e.invoke(payload=b'{"action":"sleep","ms":10000}')
        cls.reinit = e.invoke(payload=b'{"action":"fast"}')
        cls.crash = e.invoke(payload=b'{"action":"crash","code":3}')
        cls.oom = e.invoke(payload=b'{"action":"oom","mb":400}')
        cls.last = e.invoke(payload=b'{"action":"fast"}')
        cls.sd = e.shutdown(reason="spindown")
        cls.lines = harness.output_lines(e)
        cls.docs = harness.documents(cls.lines)
        cls.segs = harness.by_request(cls.docs)

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def final(self, result):
        versions = self.segs.get(result.request_id)
        self.assertTrue(versions, f"no segment for {result.request_id}")
        last = versions[-1]
        self.assertNotIn("in_progress", last)
        return last

    def assert_times_match_platform(self, result, doc):
        """Ends at platform.start + the report's duration (also the annotation
        duration_ms); starts there too, or with the on-demand Init the
        caller waited for (README "Read your traces")."""
        start = harness.iso_to_s(harness.record(self.emu, "platform.start", result.request_id)["time"])
        report = harness.record(self.emu, "platform.report", result.request_id)
        dur = report["record"]["metrics"]["durationMs"] / 1000
        self.assertAlmostEqual(doc["annotations"]["duration_ms"] / 1000, dur, delta=1e-6)
        init = {s["name"]: s for s in doc.get("subsegments", [])}.get("Initialization")
        if init is not None:
            start = min(start, init["start_time"])
            self.assertAlmostEqual(doc["start_time"], init["start_time"], delta=1e-6)
        self.assertAlmostEqual(doc["start_time"], start, delta=0.0011)
        self.assertAlmostEqual(doc["end_time"], harness.iso_to_s(
            harness.record(self.emu, "platform.start", result.request_id)["time"]) + dur, delta=0.0011)

    def test_every_traced_invocation_has_exactly_one_final_segment(self):
        for r in (self.cold, self.warm, self.fnerr, self.timeout, self.reinit, self.crash, self.oom,
                  self.last):
            finals = [d for d in self.segs.get(r.request_id, []) if not d.get("in_progress")]
            self.assertEqual(len(finals), 1, r.request_id)
        ids = [d["id"] for v in self.segs.values() for d in v if not d.get("in_progress")]
        self.assertEqual(len(ids), len(set(ids)))

    def test_cold_start_joins_the_callers_trace(self):
        d = self.final(self.cold)
        self.assertEqual(d["trace_id"], "1-5759e988-bd862e3fe1be46a994272793")
        self.assertEqual(d["parent_id"], "53995c3f42cd8ad8")
        self.assertEqual(d["name"], "demo-fn")
        self.assertEqual(d["origin"], "AWS::Lambda::Function")
        self.assertRegex(d["id"], r"^[0-9a-f]{16}$")
        self.assertEqual(d["aws"]["request_id"], self.cold.request_id)
        self.assertTrue(d["aws"]["function_arn"].endswith(":function:demo-fn"))
        a = d["annotations"]
        self.assertIs(a["cold_start"], True)
        self.assertEqual(a["init_type"], "on-demand")
        self.assertEqual(a["status"], "success")
        self.assertEqual(a["memory_size_mb"], 128)
        report = harness.record(self.emu, "platform.report", self.cold.request_id)["record"]
        self.assertEqual(a["billed_duration_ms"], report["metrics"]["billedDurationMs"])
        self.assertEqual(a["max_memory_used_mb"], report["metrics"]["maxMemoryUsedMB"])
        self.assertNotIn("fault", d)
        self.assertNotIn("error", d)
        self.assert_times_match_platform(self.cold, d)

    def test_cold_start_initialization_breakdown(self):
        d = self.final(self.cold)
        subs = harness.subsegment_names(d)
        init = subs["Initialization"]
        init_start = self.emu.records("platform.initStart")[0]
        init_report = self.emu.records("platform.initReport")[0]
        self.assertAlmostEqual(init["start_time"], harness.iso_to_s(init_start["time"]), delta=0.0011)
        self.assertAlmostEqual(init["end_time"] - init["start_time"],
                               init_report["record"]["metrics"]["durationMs"] / 1000, delta=0.0011)
        children = {s["name"]: s for s in init.get("subsegments", [])}
        own = children["Extension init: lambda-tracer"]
        runtime = children["Runtime init"]
        # bounds from different records (initRuntimeDone's time vs initStart +
        # initReport's duration) are stamped separately: allow 5 ms between them
        for c in (own, runtime):
            self.assertGreaterEqual(c["start_time"], init["start_time"] - 0.001)
            self.assertLessEqual(c["end_time"], init["end_time"] + 0.005)
        # Lambda starts the runtime once every extension registered: after our own init
        # began, and before Init ended.  Usually inside our own init too, but our subscribe
        # and first /event/next follow our registration within a few milliseconds, and a
        # loaded platform may start the runtime's process after them.
        self.assertGreaterEqual(runtime["start_time"], own["start_time"])
        self.assertLessEqual(runtime["start_time"], init["end_time"])
        # the caller waited for this on-demand Init: the segment starts with it,
        # and the Invocation does not start before Init ended
        self.assertAlmostEqual(d["start_time"], init["start_time"], delta=1e-6)
        self.assertGreaterEqual(subs["Invocation"]["start_time"], init["end_time"] - 0.005)

    def test_invocation_phases(self):
        d = self.final(self.warm)
        subs = harness.subsegment_names(d)
        self.assertNotIn("Initialization", subs)
        self.assertIs(d["annotations"]["cold_start"], False)
        done = harness.record(self.emu, "platform.runtimeDone", self.warm.request_id)["record"]
        spans = {s["name"]: s for s in done["spans"]}
        inv = subs["Invocation"]
        # platform.start to the end of responseLatency (the runtime starts its response):
        # each bound from its own record (both stamped to the millisecond); the platform
        # may start the latency span later than platform.start (it thaws the sandbox
        # between them), so the durations are not compared
        start = harness.record(self.emu, "platform.start", self.warm.request_id)
        self.assertAlmostEqual(inv["start_time"], harness.iso_to_s(start["time"]), delta=0.0011)
        lat = spans["responseLatency"]
        self.assertAlmostEqual(inv["end_time"], harness.iso_to_s(lat["start"]) + lat["durationMs"] / 1000,
                               delta=0.0011)
        self.assertGreater(inv["end_time"] - inv["start_time"], 0.115)  # the 120 ms handler
        self.assertIn("Response", subs)
        over = subs["Overhead"]
        self.assertEqual({s["name"] for s in over["subsegments"]}, {"Runtime overhead", "Extension overhead"})
        # two platform times, each truncated to the millisecond: 2 ms apart at worst
        self.assertLessEqual(over["end_time"], d["end_time"] + 0.0025)
        self.assert_times_match_platform(self.warm, d)

    def test_no_header_starts_a_new_trace(self):
        d = self.final(self.warm)
        self.assertRegex(d["trace_id"], r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
        self.assertNotIn("parent_id", d)
        self.assertAlmostEqual(int(d["trace_id"][2:10], 16), d["start_time"], delta=2)
        self.assertNotEqual(d["trace_id"], self.final(self.last)["trace_id"])

    def test_sampled_zero_is_traced_when_asked(self):
        # the harness asks for LAMBDA_TRACER_SAMPLING=all (test_sampling covers the default)
        d = self.final(self.unsampled)
        self.assertEqual(d["annotations"]["sampled_by"], "all")
        self.assertEqual(d["trace_id"], "1-5759e989-bd862e3fe1be46a994272794")
        self.assertNotIn("parent_id", d)
        for s in harness.shutdowns(self.lines):
            self.assertIn("dropped=0 ", s[1])

    def test_function_error(self):
        d = self.final(self.fnerr)
        self.assertIs(d["error"], True)
        self.assertNotIn("fault", d)
        exc = d["cause"]["exceptions"][0]
        self.assertEqual(exc["type"], "Function.MyError")
        self.assertRegex(exc["id"], r"^[0-9a-f]{16}$")
        self.assertEqual(d["annotations"]["status"], "error")
        self.assertEqual(d["annotations"]["error_type"], "Function.MyError")

    def test_timeout_in_progress_then_final_under_same_id(self):
        versions = self.segs[self.timeout.request_id]
        self.assertEqual(len(versions), 2, versions)
        early, final = versions
        self.assertIs(early["in_progress"], True)
        self.assertNotIn("end_time", early)
        self.assertIs(early["annotations"]["timing_out"], True)
        self.assertEqual((early["id"], early["trace_id"]), (final["id"], final["trace_id"]))
        self.assertIs(final["fault"], True)
        exc = final["cause"]["exceptions"][0]
        self.assertEqual(exc["type"], "Sandbox.Timedout")
        # the platform's text, then what the function was doing (timeout forensics)
        platform_text, _, sentence = exc["message"].partition(": ")
        self.assertEqual(platform_text, "Task timed out after 2.00 seconds")
        self.assertEqual(sentence, final["metadata"]["lambda_tracer"]["diagnosis"])
        self.assertEqual(final["annotations"]["status"], "timeout")
        self.assertAlmostEqual(final["end_time"] - final["start_time"], 2.0, delta=0.05)

    def test_reinit_after_timeout_is_a_cold_start_including_the_init(self):
        d = self.final(self.reinit)
        self.assertIs(d["annotations"]["cold_start"], True)
        starts = [r for r in self.emu.records("platform.initStart") if r["record"].get("phase") == "invoke"]
        self.assertTrue(starts)
        self.assertAlmostEqual(d["start_time"], harness.iso_to_s(starts[0]["time"]), delta=0.0011)
        self.assertIn("Initialization", harness.subsegment_names(d))

    def test_crash(self):
        d = self.final(self.crash)
        self.assertIs(d["fault"], True)
        self.assertEqual(d["cause"]["exceptions"][0]["type"], "Runtime.ExitError")
        self.assertEqual(d["annotations"]["error_type"], "Runtime.ExitError")

    def test_out_of_memory(self):
        self.assertEqual(self.oom.error_type, "Runtime.OutOfMemory")
        d = self.final(self.oom)
        self.assertIs(d["fault"], True)
        exc = d["cause"]["exceptions"][0]
        self.assertEqual(exc["type"], "Runtime.OutOfMemory")
        self.assertRegex(exc["message"], r"^Out of memory")

    def test_documents_are_valid_against_the_xray_schema(self):
        self.assertGreater(len(self.docs), 9)
        verdict = harness.validate_xray(self.docs)
        self.assertEqual(verdict["invalid"], 0, verdict["problems"])
        self.assertEqual(verdict["documents"], len(self.docs))

    def test_everything_exported_and_counted(self):
        export_lines = [l for l in self.lines if "INFO export " in l]
        self.assertEqual(len(export_lines), 4)  # one per extension process
        for l in export_lines:
            self.assertIn("dropped_full=0", l)
            self.assertIn("stdout_failed=0", l)
            self.assertNotIn("dropped_encode=1", l)
        self.assertEqual(harness.sanitizer_reports(self.lines), [])


if __name__ == "__main__":
    unittest.main()


class LogTailTest(unittest.TestCase):
    """Opt-in: the function's last log lines ride on a failed invocation's cause."""

    def test_crash_carries_its_last_lines_and_success_does_not(self):
        root = harness.make_root()
        emu = harness.new_emulator(root, env={"LAMBDA_TRACER_LOG_TAIL_LINES": "3",
                                              "LAMBDA_TRACER_LOG_LEVEL": "info"})
        try:
            emu.start()
            sub = emu.subscribers()[harness.EXT_NAME]
            ok = emu.invoke(payload=b'{"action":"log","lines":5,"bytes":40}')
            bad = emu.invoke(payload=b'{"action":"crash","code":9}')
            emu.shutdown()
            lines = harness.output_lines(emu)
            runtime_lines = emu.output("runtime")
        finally:
            emu.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(sub["types"], ["function", "platform"])
        segs = harness.by_request(harness.documents(lines))
        self.assertNotIn("cause", segs[ok.request_id][-1])
        message = segs[bad.request_id][-1]["cause"]["exceptions"][0]["message"]
        head, _, tail = message.partition("\nLast function log lines:\n")
        # the platform's sentence, then (timeout forensics) the memory trend of the environment
        self.assertEqual(head.split("; ")[0], "The runtime exited before completing the invocation")
        self.assertNotIn("\n", head)
        # the tail is the crash invocation's own lines, as the runtime printed them
        crash_lines = [l for l in runtime_lines if bad.request_id in l]
        self.assertTrue(crash_lines)
        self.assertEqual(tail.splitlines(), crash_lines[-3:])
        self.assertEqual(harness.validate_xray([segs[bad.request_id][-1]])["invalid"], 0)
