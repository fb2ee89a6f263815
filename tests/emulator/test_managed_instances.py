"""Managed Instances mode, concurrent invocations and the async invoke API.

Run from the repository root with the rest of the suite:
    python3 -m unittest discover -s tests/emulator -p 'test_*.py'
"""
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lambda_emulator  # noqa: E402
from test_emulator import BOOT, FAST, PY, TRACE, Box, err_type, wait_for  # noqa: E402

# an extension as Managed Instances allow it: SHUTDOWN only, schema 2025-01-29
MI_PROBE = {"PROBE_EVENTS": "SHUTDOWN", "PROBE_SUBSCRIBE": "1", "PROBE_SCHEMA": "2025-01-29"}


def slow(ms):
    return json.dumps({"action": "slow", "ms": ms}).encode()


def recs(emu, rtype, rid=None):
    return [r["record"] for r in emu.records(rtype) if rid is None or r["record"].get("requestId") == rid]


def max_in_flight(emu):
    """Largest number of invocations between their platform.start and platform.report."""
    cur = best = 0
    for r in emu.records():
        if r["type"] == "platform.start":
            cur += 1
            best = max(best, cur)
        elif r["type"] == "platform.report":
            cur -= 1
    return best


class ManagedInstancesTests(unittest.TestCase):
    def test_concurrent_invocations_records_and_no_invoke_events(self):
        box = Box(self, probes={"p": dict(MI_PROBE, PROBE_DUMP_ENV="1")}, managed_instances=True,
                  max_concurrency=3, timeout_s=3)
        init = box.emu.start()
        self.assertEqual((init.status, init.init_type), ("success", "lambda-managed-instances"))
        # environment: the MI init type for everyone, the concurrency for the runtime
        env = box.log("p", "start")[0]["env"]
        self.assertEqual(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "lambda-managed-instances")
        self.assertEqual(box.emu.runtime_environment()["AWS_LAMBDA_MAX_CONCURRENCY"], "3")
        for t in ("platform.initStart", "platform.initRuntimeDone", "platform.initReport"):
            self.assertEqual(recs(box.emu, t)[0]["initializationType"], "lambda-managed-instances")
        self.assertEqual(recs(box.emu, "platform.extension")[0]["events"], ["SHUTDOWN"])
        self.assertEqual(box.emu.subscribers()["p"]["schemaVersion"], "2025-01-29")

        # four invocations, three slots: three run at once, the fourth waits for a slot
        payloads = [slow(400), slow(400), b'{"action":"error","type":"Function.Boom"}', slow(400)]
        t0 = time.monotonic()
        rs = box.emu.invoke_many(payloads, trace_header=[TRACE, None, None, None], timeout=10)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 1.5)                          # not 4 x 400 ms one after another
        self.assertEqual([r.status for r in rs], ["success", "success", "error", "success"])
        self.assertEqual(rs[2].error_type, "Function.Boom")
        self.assertEqual(json.loads(rs[0].response)["ms"], 400)
        self.assertEqual(max_in_flight(box.emu), 3)
        # the runtime polled /invocation/next on several connections at once: three invokes were
        # handed out before the first 400 ms one answered (the failing one answers at once, and
        # the four requests race to the emulator, so it may be handed out first or second)
        first_slow_answer = min(e["t_req_ns"] for e in box.emu.api_log
                                if e["api"] == "runtime" and e["path"].endswith("/response"))
        handed = [e for e in box.emu.api_log if e.get("event") == "INVOKE" and e["who"] == "runtime"
                  and e["t_mono_ns"] < first_slow_answer]
        self.assertGreaterEqual(len(handed), 3, box.emu.api_log)

        # records: start + report per request id, no runtimeDone, MI report shape
        self.assertEqual(recs(box.emu, "platform.runtimeDone"), [])
        for r in rs:
            st = recs(box.emu, "platform.start", r.request_id)
            rep = recs(box.emu, "platform.report", r.request_id)
            self.assertEqual(len(st), 1)
            self.assertEqual(len(rep), 1)
            rep = rep[0]
            self.assertEqual(set(rep["metrics"]), {"durationMs"})
            self.assertEqual(rep["metrics"]["durationMs"], r.duration_ms)
            self.assertEqual([s["name"] for s in rep["spans"]], ["responseLatency", "responseDuration"])
            self.assertEqual(rep["status"], r.status)
            if r.status == "success":
                self.assertGreaterEqual(rep["metrics"]["durationMs"], 400)
                self.assertLess(rep["metrics"]["durationMs"], 400 + 300)
                self.assertGreaterEqual(rep["spans"][0]["durationMs"], 395)
        self.assertEqual(recs(box.emu, "platform.report", rs[2].request_id)[0]["errorType"], "Function.Boom")
        traced = recs(box.emu, "platform.start", rs[0].request_id)[0]
        self.assertEqual(traced["tracing"]["value"], TRACE)
        self.assertEqual(recs(box.emu, "platform.report", rs[0].request_id)[0]["tracing"], traced["tracing"])
        self.assertEqual(set(recs(box.emu, "platform.start", rs[1].request_id)[0]), {"requestId", "version"})
        # the subscriber gets interleaved records it can correlate by requestId
        self.assertTrue(wait_for(lambda: len(box.telemetry("p", "platform.report")) == 4, 5))
        got = {x["record"]["requestId"] for x in box.telemetry("p", "platform.report")}
        self.assertEqual(got, {r.request_id for r in rs})
        # no INVOKE for extensions, no freeze; /event/next blocks until SHUTDOWN
        self.assertEqual(box.events("p"), [])
        self.assertFalse([e for e in box.emu.process_log if e["event"] == "freeze"])
        sd = box.emu.shutdown()
        self.assertEqual([e["eventType"] for e in box.events("p")], ["SHUTDOWN"])
        self.assertEqual(box.events("p")[0]["shutdownReason"], "spindown")
        self.assertEqual(sd.extensions["p"].exit_code, 0)

    def test_invoke_registration_is_refused(self):
        box = Box(self, probes={"both": {}}, managed_instances=True)
        r = box.emu.start()
        reg = box.log("both", "register")[0]
        self.assertEqual((reg["status"], err_type(reg["body"])), (403, "Extension.InvalidEventType"))
        self.assertEqual(r.status, "error")               # the probe exits: Init fails as on Lambda
        box2 = Box(self, probes={"sd": {"PROBE_EVENTS": "SHUTDOWN"}, "none": {"PROBE_EVENTS": ""}},
                   managed_instances=True)
        self.assertEqual(box2.emu.start().status, "success")
        self.assertEqual([box2.log(n, "register")[0]["status"] for n in ("sd", "none")], [200, 200])

    def test_schema_2025_01_29_is_mandatory(self):
        box = Box(self, probes={"old": dict(MI_PROBE, PROBE_SCHEMA="2022-12-13"), "new": MI_PROBE},
                  managed_instances=True, quirks={"telemetry_schema_versions": ["2022-12-13", "2025-01-29"]})
        self.assertEqual(box.emu.start().status, "success")
        old = box.log("old", "subscribe")[0]
        self.assertEqual((old["status"], err_type(old["body"])), (400, "ValidationError"))
        self.assertIn("2025-01-29", json.loads(old["body"])["errorMessage"])
        self.assertEqual(box.log("new", "subscribe")[0]["status"], 200)
        self.assertEqual(sorted(box.emu.subscribers()), ["new"])

    def test_timeout_fails_only_that_request(self):
        box = Box(self, probes={"p": MI_PROBE}, managed_instances=True, max_concurrency=2, timeout_s=1)
        box.emu.start()
        pids = (box.emu.runtime_pid(), box.emu.extension_pids())
        late, quick = box.emu.invoke_many([b'{"action":"sleep","ms":1400}', FAST], timeout=10)
        self.assertEqual((quick.status, late.status, late.error_type), ("success", "timeout", "Sandbox.Timedout"))
        self.assertEqual(late.duration_ms, 1000.0)
        rep = recs(box.emu, "platform.report", late.request_id)[0]
        self.assertEqual((rep["status"], rep["errorType"], rep["metrics"]), ("timeout", "Sandbox.Timedout",
                                                                              {"durationMs": 1000.0}))
        self.assertIsNone(late.shutdown)
        # no reset: same processes, no SHUTDOWN; the late answer is refused
        self.assertEqual((box.emu.runtime_pid(), box.emu.extension_pids()), pids)
        self.assertEqual(box.events("p"), [])
        self.assertTrue(wait_for(lambda: [e for e in box.emu.api_log
                                          if e["path"].endswith("/%s/response" % late.request_id)], 3))
        answer = [e for e in box.emu.api_log if e["path"].endswith("/%s/response" % late.request_id)][0]
        self.assertEqual((answer["status"], answer["error_type"]), (400, "InvalidRequestID"))
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        # the errorType is a quirk (real non-MI captures have none)
        e = lambda_emulator.Emulator(root=box.root, runtime=[PY, BOOT], managed_instances=True,
                                     quirks={"timeout_error_type": None})
        self.addCleanup(e.close)
        self.assertIsNone(e.quirks["timeout_error_type"])

    def test_crash_fails_every_request_in_flight_and_resets(self):
        box = Box(self, probes={"p": dict(MI_PROBE, PROBE_SHUTDOWN_DELAY_MS="200")}, managed_instances=True,
                  max_concurrency=3, timeout_s=3)
        box.emu.start()
        old_rt = box.emu.runtime_pid()
        a = box.emu.invoke_async(slow(1500))
        b = box.emu.invoke_async(slow(1500))
        self.assertTrue(wait_for(lambda: len(recs(box.emu, "platform.start")) == 2, 3))
        time.sleep(0.1)
        c = box.emu.invoke(b'{"action":"crash","code":7}')
        ra, rb = a.result(10), b.result(10)
        for r in (ra, rb, c):
            self.assertEqual((r.status, r.error_type), ("error", "Runtime.ExitError"))
            self.assertIsNotNone(r.shutdown)
            self.assertEqual(r.shutdown.reason, "failure")
            rep = recs(box.emu, "platform.report", r.request_id)
            self.assertEqual(len(rep), 1)
            self.assertEqual((rep[0]["status"], rep[0]["errorType"]), ("error", "Runtime.ExitError"))
            self.assertEqual(set(rep[0]["metrics"]), {"durationMs"})
        self.assertEqual(c.exit_code, 7)
        self.assertLess(ra.duration_ms, 1500)
        self.assertEqual([e["shutdownReason"] for e in box.events("p")], ["failure"])
        # the extension saw the reports of the failed requests before it exited
        got = {x["record"]["requestId"] for x in box.telemetry("p", "platform.report")}
        self.assertEqual(got, {ra.request_id, rb.request_id, c.request_id})
        # the next invocation re-initialises (suppressed init, phase invoke)
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        self.assertEqual(r.init.phase, "invoke")
        self.assertNotEqual(box.emu.runtime_pid(), old_rt)

    def test_shutdown_waits_for_requests_in_flight(self):
        box = Box(self, probes={"p": MI_PROBE}, managed_instances=True)
        box.emu.start()
        h = box.emu.invoke_async(slow(300))
        self.assertTrue(wait_for(lambda: recs(box.emu, "platform.start"), 3))
        sd = box.emu.shutdown()
        r = h.result(5)
        self.assertEqual(r.status, "success")
        self.assertEqual(box.events("p")[0]["shutdownReason"], "spindown")
        t_report = [e for e in box.emu.emitted if e["type"] == "platform.report"]
        self.assertTrue(t_report)
        self.assertEqual(sd.extensions["p"].exit_code, 0)

    def test_init_failure_report_shape(self):
        box = Box(self, managed_instances=True, env={"DEMO_INIT_FAIL": "1"})
        self.assertEqual(box.emu.start().status, "error")
        r = box.emu.invoke(FAST)
        self.assertEqual((r.status, r.error_type, r.init.phase), ("error", "Runtime.DemoInitError", "invoke"))
        rep = recs(box.emu, "platform.report", r.request_id)[0]
        self.assertEqual(set(rep["metrics"]), {"durationMs"})

    def test_constructor_checks(self):
        d = self.id()
        with self.assertRaises(ValueError):
            lambda_emulator.Emulator(root="/nonexistent-%s" % d, runtime=[PY, BOOT], max_concurrency=2)
        with self.assertRaises(ValueError):
            lambda_emulator.Emulator(root="/nonexistent", runtime=[PY, BOOT], managed_instances=True,
                                     init_type="snap-start")
        with self.assertRaises(ValueError):
            lambda_emulator.Emulator(root="/nonexistent", runtime=[PY, BOOT], managed_instances=True,
                                     max_concurrency=0)
        e = lambda_emulator.Emulator(root="/nonexistent", runtime=[PY, BOOT], init_type="lambda-managed-instances")
        self.addCleanup(e.close)
        self.assertTrue(e.managed_instances)
        self.assertEqual((e.max_concurrency, e.freeze), (2, False))


class CliTests(unittest.TestCase):
    def test_cli_runs_managed_instances_invokes_concurrently(self):
        import shutil
        import subprocess
        import tempfile
        d = tempfile.mkdtemp(prefix="lambda-emu-mi-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "root", "opt", "extensions"))
        records = os.path.join(d, "records.jsonl")
        proc = subprocess.run([PY, os.path.join(HERE, "lambda_emulator.py"), "run", "--root", os.path.join(d, "root"),
                               "--runtime", "%s %s" % (PY, BOOT), "--init-type", "lambda-managed-instances",
                               "--max-concurrency", "2", "--invoke", '{"action":"slow","ms":300}',
                               "--invoke", '{"action":"slow","ms":300}', "--records", records],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("type=lambda-managed-instances", proc.stdout)
        self.assertEqual(proc.stdout.count(": success duration="), 2)
        with open(records) as f:
            types = [json.loads(line)["type"] for line in f]
        starts_then_reports = [t for t in types if t in ("platform.start", "platform.report")]
        self.assertEqual(starts_then_reports, ["platform.start"] * 2 + ["platform.report"] * 2)


class AsyncInvokeTests(unittest.TestCase):
    def test_invoke_async_without_managed_instances_runs_one_at_a_time(self):
        box = Box(self, probes={"p": {}})
        box.emu.start()
        h1 = box.emu.invoke_async(slow(250), request_id="req-one")
        self.assertEqual(h1.request_id, "req-one")
        with self.assertRaises(TimeoutError):
            h1.result(0.01)
        self.assertFalse(h1.done())
        h2 = box.emu.invoke_async(slow(250))
        r1, r2 = h1.result(5), h2.result(5)
        self.assertTrue(h1.done())
        self.assertEqual((r1.status, r2.status, r1.request_id), ("success", "success", "req-one"))
        self.assertEqual(max_in_flight(box.emu), 1)
        self.assertEqual(len(recs(box.emu, "platform.runtimeDone")), 2)
        rs = box.emu.invoke_many([FAST, FAST])
        self.assertEqual([r.status for r in rs], ["success", "success"])
        self.assertEqual(len(box.events("p")), 4)


if __name__ == "__main__":
    unittest.main()
