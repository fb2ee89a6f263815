"""Issue 14 points 3-5: what each invocation cost (billed_ms, cost_usd, recomputed here from the
report's billedDurationMs and memorySizeMB), CloudWatch EMF metrics on the extension's stdout
(every document checked by emf_validator), tenant isolation and durable functions."""
import copy
import math
import os
import shutil
import subprocess
import tempfile
import unittest

import emf_validator
import harness

X86_GB_S = 0.0000166667
ARM_GB_S = 0.0000133334
REQUEST = 0.0000002
TENANT = "BlueTenant"


def built_price():
    """The table's price for the architecture the binary runs on."""
    return ARM_GB_S if os.uname().machine in ("aarch64", "arm64") else X86_GB_S


def duration_usd(price, billed_ms, memory_mb):
    # The same operations in the same order as cost.c: exact equality holds.
    return price * (billed_ms / 1000.0 * (memory_mb / 1024.0))


def final_segments(docs):
    out = {}
    for rid, versions in harness.by_request(docs).items():
        finals = [d for d in versions if not d.get("in_progress")]
        if finals:
            out[rid] = finals[-1]
    return out


class ValidatorTest(unittest.TestCase):
    """The validator is strict: each rule is broken once and must be caught."""
    GOOD = {"_aws": {"Timestamp": 1764680000000, "CloudWatchMetrics": [
        {"Namespace": "LambdaTracer", "Dimensions": [["FunctionName", "Version"]],
         "Metrics": [{"Name": "Duration", "Unit": "Milliseconds"}, {"Name": "ColdStart", "Unit": "Count"}]}]},
        "FunctionName": "fn", "Version": "$LATEST", "Duration": [1.5, 2], "ColdStart": 1}

    def bad(self, mutate):
        d = copy.deepcopy(self.GOOD)
        mutate(d)
        with self.assertRaises(emf_validator.EmfError):
            emf_validator.validate(d)

    def test_good_document_passes(self):
        emf_validator.validate(copy.deepcopy(self.GOOD))

    def test_each_rule(self):
        aws = lambda d: d["_aws"]  # noqa: E731
        dire = lambda d: d["_aws"]["CloudWatchMetrics"][0]  # noqa: E731
        self.bad(lambda d: d.pop("_aws"))
        self.bad(lambda d: aws(d).pop("Timestamp"))
        self.bad(lambda d: aws(d).update(Timestamp=1764680000.5))       # not an integer
        self.bad(lambda d: aws(d).update(Timestamp=1764680000))         # seconds, not ms
        self.bad(lambda d: aws(d).update(Timestamp="1764680000000"))
        self.bad(lambda d: aws(d).update(CloudWatchMetrics=[]))
        self.bad(lambda d: aws(d).update(Extra=1))
        self.bad(lambda d: dire(d).pop("Namespace"))
        self.bad(lambda d: dire(d).update(Namespace=""))
        self.bad(lambda d: dire(d).update(Namespace="AWS/Lambda"))
        self.bad(lambda d: dire(d).update(Dimensions=["FunctionName"]))  # not an array of arrays
        self.bad(lambda d: dire(d).update(Dimensions=[["D%d" % i for i in range(31)]]))
        self.bad(lambda d: dire(d).update(Dimensions=[["Missing"]]))
        self.bad(lambda d: d.update(Version=1))                           # dimension value not a string
        self.bad(lambda d: d.update(Version=""))
        self.bad(lambda d: dire(d).update(Metrics=[{"Name": "M%d" % i} for i in range(101)]))
        self.bad(lambda d: dire(d)["Metrics"][0].update(Unit="Millis"))
        self.bad(lambda d: dire(d)["Metrics"][0].update(StorageResolution=5))
        self.bad(lambda d: dire(d)["Metrics"][0].pop("Name"))
        self.bad(lambda d: dire(d)["Metrics"].append({"Name": "Duration"}))
        self.bad(lambda d: d.pop("Duration"))                             # metric not a member
        self.bad(lambda d: d.update(Duration=list(range(101))))
        self.bad(lambda d: d.update(Duration=[]))
        self.bad(lambda d: d.update(Duration="5"))
        self.bad(lambda d: d.update(Duration=[1, "2"]))
        self.bad(lambda d: d.update(ColdStart=True))
        self.bad(lambda d: d.update(ColdStart=float("nan")))
        with self.assertRaises(emf_validator.EmfError):
            emf_validator.validate("{not json")

    def test_validator_checks_every_unit_test_document(self):
        """Every document emf.c's unit tests render passes (test_emf with EMF_TEST_DUMP)."""
        exe = os.path.join(os.path.dirname(harness.binary()), "unit", "test_emf")
        if not os.path.exists(exe):
            exe = os.path.join(harness.REPO, "build", "dev", "unit", "test_emf")
        if not os.path.exists(exe):
            self.skipTest("test_emf not built")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "docs.jsonl")
            env = dict(os.environ, EMF_TEST_DUMP=path)
            p = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            with open(path) as f:
                lines = f.read().splitlines()
        self.assertGreaterEqual(len(lines), 10)
        for line in lines:
            emf_validator.validate(line)


class MetricsScenarioTest(unittest.TestCase):
    """One environment with a tenant, a durable runtime and Init billed; metrics on."""

    @classmethod
    def setUpClass(cls):
        cls.root = harness.make_root()
        cls.emu = harness.new_emulator(
            cls.root, timeout_s=2, memory_mb=256, tenant_id=TENANT, bill_init=True,
            runtime_version="python:3.13.DurableFunction.v1",
            env={"LAMBDA_TRACER_METRICS": "true", "DEMO_INIT_MS": "40"})
        e = cls.emu
        e.start()
        cls.results = [
            e.invoke(payload=b'{"action":"fast"}'),
            e.invoke(payload=b'{"action":"slow","ms":60}'),
            e.invoke(payload=b'{"action":"error","type":"Function.MyError","message":"boom"}'),
            e.invoke(payload=b'{"action":"sleep","ms":10000}'),   # timeout: reset, new Init
            e.invoke(payload=b'{"action":"fast"}'),
            e.invoke(payload=b'{"action":"crash","code":3}'),     # crash: reset, new Init
            e.invoke(payload=b'{"action":"fast"}'),
        ]
        cls.sd = e.shutdown(reason="spindown")
        cls.lines = harness.output_lines(e)
        cls.emf = emf_validator.emf_lines(cls.lines)
        cls.docs = [d for d in harness.documents(cls.lines) if "_aws" not in d]
        cls.segs = final_segments(cls.docs)

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def report(self, rid):
        return harness.record(self.emu, "platform.report", rid)["record"]

    def total(self, name):
        return sum(sum(v) if isinstance(v, list) else v for d in self.emf for v in [d.get(name, 0)])

    def test_no_sanitizer_reports(self):
        self.assertEqual(harness.sanitizer_reports(self.lines), [])

    def test_every_invocation_has_a_final_segment(self):
        for r in self.results:
            self.assertIn(r.request_id, self.segs, r.status)

    def test_cost_recomputed_from_the_report(self):
        price = built_price()
        cpu_known = 0
        for r in self.results:
            rep = self.report(r.request_id)["metrics"]
            seg = self.segs[r.request_id]
            a = seg["annotations"]
            billed, mem = rep["billedDurationMs"], rep["memorySizeMB"]
            self.assertEqual(a["billed_ms"], billed)
            self.assertEqual(a["cost_usd"], duration_usd(price, billed, mem) + REQUEST, r.status)
            md = seg["metadata"]["lambda_tracer"]
            self.assertEqual(md["cost_gb_s"], billed / 1000.0 * (mem / 1024.0))
            init_ms = md["cost_init_billed_ms"]
            if "initDurationMs" in rep:
                # Init billed since 2025-08-01: the report's billed holds both, each rounded up.
                self.assertEqual(init_ms, math.ceil(rep["initDurationMs"]))
                self.assertEqual(billed, math.ceil(rep["durationMs"]) + init_ms)
                self.assertGreater(init_ms, 40)
            else:
                self.assertEqual(init_ms, 0)
            self.assertEqual(md["cost_init_usd"], duration_usd(price, init_ms, mem))
            self.assertEqual(md["cost_invoke_usd"], duration_usd(price, billed - init_ms, mem) + REQUEST)
            self.assertLessEqual(md["cost_tracer_billed_ms"], md["cost_after_response_billed_ms"])
            self.assertLessEqual(md["cost_after_response_billed_ms"], billed - init_ms)
            self.assertEqual(md["cost_tracer_usd"], duration_usd(price, md["cost_tracer_billed_ms"], mem))
            self.assertEqual(md["cost_price_gb_s_usd"], price)
            # Our own CPU is known when our release of the invocation was handled before its
            # report (a crash's report may come first; under load, rarely, another's too)
            if "tracer_cpu_ms" in md:
                self.assertGreaterEqual(md["tracer_cpu_ms"], 0)
                cpu_known += 1
        self.assertGreater(cpu_known, 0)

    def test_emf_documents_are_valid_and_few(self):
        self.assertTrue(self.emf, "no EMF document on stdout")
        # Aggregated: never one document per invocation (3 processes here: each writes its
        # first complete invocation at once and the rest at SHUTDOWN).
        self.assertLess(len(self.emf), len(self.results))
        for d in self.emf:
            self.assertEqual(d["FunctionName"], "demo-fn")
            self.assertEqual(d["Version"], "$LATEST")
            self.assertEqual(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "LambdaTracer")

    def test_counts_match_the_invocations_run(self):
        self.assertEqual(self.total("Invocations"), len(self.results))
        # start() ran the first Init; the timeout and the crash each reset the environment.
        colds = 1 + sum(1 for r in self.results if r.init_phase_ran)
        self.assertEqual(colds, 3)
        self.assertEqual(sum(1 for r in self.results if self.segs[r.request_id]["annotations"]["cold_start"]),
                         colds)
        self.assertEqual(self.total("ColdStart"), colds)
        self.assertEqual(self.total("Timeouts"), 1)
        self.assertEqual(self.total("Crashes"), 1)
        self.assertEqual(self.total("Errors"), 1)
        self.assertEqual(self.total("OutOfMemory"), 0)
        self.assertEqual(self.total("TelemetryDropped"), 0)
        self.assertEqual(sum(len(d.get("InitDuration", [])) for d in self.emf), colds)
        self.assertEqual(sum(len(d.get("Duration", [])) for d in self.emf), len(self.results))
        billed = sorted(self.report(r.request_id)["metrics"]["billedDurationMs"] for r in self.results)
        self.assertEqual(sorted(v for d in self.emf for v in d.get("BilledDuration", [])), billed)
        used = sorted(100.0 * self.report(r.request_id)["metrics"]["maxMemoryUsedMB"] / 256
                      for r in self.results)
        self.assertEqual(sorted(v for d in self.emf for v in d.get("MemoryUsedPercent", [])), used)
        costs = sum(self.segs[r.request_id]["annotations"]["cost_usd"] for r in self.results)
        self.assertAlmostEqual(self.total("EstimatedCostUSD"), costs, delta=costs * 1e-12)
        self.assertGreaterEqual(self.total("TracerCpuTime"), 0)

    def test_tenant_on_segments_and_cold_starts_per_tenant(self):
        for r in self.results:
            self.assertEqual(self.segs[r.request_id]["annotations"]["tenant_id"], TENANT)
        with_cold = [d for d in self.emf if d.get("ColdStart", 0) > 0]
        self.assertTrue(with_cold)
        for d in with_cold:
            self.assertEqual(d["TenantId"], TENANT)
            second = d["_aws"]["CloudWatchMetrics"][1]
            self.assertEqual(second["Dimensions"], [["FunctionName", "TenantId"]])
            self.assertEqual([m["Name"] for m in second["Metrics"]], ["ColdStart"])
        # the tenant is never a dimension of the other metrics
        for d in self.emf:
            self.assertEqual(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"], [["FunctionName", "Version"]])

    def test_durable_function_marked(self):
        for r in self.results:
            self.assertIs(self.segs[r.request_id]["annotations"]["durable_function"], True)


class InitFailureMetricsTest(unittest.TestCase):
    """Init fails (the runtime reports /runtime/init/error); the suppressed
    retry inside the next invoke succeeds.  The failed Init is counted as
    InitFailures with its duration, once, and is not an invocation."""

    @classmethod
    def setUpClass(cls):
        cls.root = harness.make_root()
        knobs = {"DEMO_INIT_FAIL": "1", "DEMO_INIT_ERROR_TYPE": "Runtime.MetricsInitError"}
        cls.emu = harness.new_emulator(cls.root, env=dict(knobs, LAMBDA_TRACER_METRICS="true"))
        cls.init = cls.emu.start()
        for k in knobs:
            del cls.emu.customer_env[k]
        cls.inv = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.emu.shutdown(reason="spindown")
        cls.lines = harness.output_lines(cls.emu)
        cls.emf = emf_validator.emf_lines(cls.lines)

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def total(self, name):
        return sum(sum(v) if isinstance(v, list) else v for d in self.emf for v in [d.get(name, 0)])

    def test_the_failed_init_is_counted_once_with_its_duration(self):
        self.assertEqual((self.init.status, self.inv.status), ("error", "success"))
        self.assertEqual(harness.sanitizer_reports(self.lines), [])
        for d in self.emf:
            emf_validator.validate(d)
        self.assertEqual(self.total("InitFailures"), 1)
        failed = [v for d in self.emf for v in d.get("FailedInitDuration", [])]
        reports = [r for r in self.emu.records("platform.initReport") if r["record"].get("status") != "success"]
        self.assertEqual(len(reports), 1)
        self.assertEqual(len(failed), 1)
        self.assertAlmostEqual(failed[0], reports[0]["record"]["metrics"]["durationMs"], delta=0.01)
        # the failed Init is no invocation; the retried one is a cold start that did not fail
        self.assertEqual(self.total("Invocations"), 1)
        self.assertEqual(self.total("ColdStart"), 1)
        self.assertEqual(self.total("Errors"), 0)


class DefaultsTest(unittest.TestCase):
    """Metrics are off by default; a price setting is taken, a bad one warned about and ignored;
    no tenant and no durable runtime: no such annotations."""

    def run_one(self, env):
        root = harness.make_root()
        emu = harness.new_emulator(root, memory_mb=512, env=env)
        try:
            emu.start()
            r = emu.invoke(payload=b'{"action":"fast"}')
            emu.shutdown(reason="spindown")
            lines = harness.output_lines(emu)
            rep = harness.record(emu, "platform.report", r.request_id)["record"]["metrics"]
        finally:
            emu.close()
            shutil.rmtree(root, ignore_errors=True)
        segs = final_segments(harness.documents(lines))
        return lines, segs[r.request_id], rep

    def test_price_setting_and_metrics_off(self):
        lines, seg, rep = self.run_one({"LAMBDA_TRACER_PRICE_GB_S": "0.00002",
                                        "LAMBDA_TRACER_PRICE_REQUEST": "0.0000004"})
        self.assertFalse([l for l in lines if '"_aws"' in l])
        a = seg["annotations"]
        self.assertEqual(a["cost_usd"], duration_usd(0.00002, rep["billedDurationMs"], 512) + 0.0000004)
        self.assertNotIn("tenant_id", a)
        self.assertNotIn("durable_function", a)

    def test_bad_price_setting_warns_and_keeps_the_table(self):
        lines, seg, rep = self.run_one({"LAMBDA_TRACER_PRICE_GB_S": "0.0001$",
                                        "LAMBDA_TRACER_METRICS": "no"})
        self.assertTrue([l for l in lines if "LAMBDA_TRACER_PRICE_GB_S" in l])
        self.assertEqual(seg["annotations"]["cost_usd"],
                         duration_usd(built_price(), rep["billedDurationMs"], 512) + REQUEST)
        self.assertFalse([l for l in lines if '"_aws"' in l])


if __name__ == "__main__":
    unittest.main()
