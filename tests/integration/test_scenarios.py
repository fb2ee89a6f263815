"""Scenarios beyond test_traces.py (issue 3): a failed Init and its
suppressed retry, SnapStart restore (with the X-Ray API exporter signing with
container credentials), provisioned concurrency, unsampled and header-less
invocations traced on request, and Lambda Managed Instances.

Every exported tree is checked against the emulator's own records (names,
parentage, ids, times within 1.1 ms, flags, causes, annotations) and every
document goes through AWS's X-Ray schema (harness.validate_xray).

Known extension bugs are kept as @unittest.expectedFailure tests, each with
a comment naming the bug; when one is fixed the test reports an unexpected
success and the decorator must go.  Where a bug shows only on some delivery
timings, the test tells the paths apart, skips with "KNOWN BUG: ..." on the
runs that take the buggy one and asserts fully on the others.
"""
import json
import math
import os
import re
import shutil
import time
import unittest
import urllib.request
import uuid

import harness
from common import sinks

SAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
UNSAMPLED = "Root=1-5759e989-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad9;Sampled=0"
UNSAMPLED_NO_PARENT = "Root=1-5759e989-bd862e3fe1be46a994272795;Sampled=0;Lineage=a87bd80c:1|68fd508a:5"

# Record times are milliseconds; the tracer copies them, so 1 ms plus float noise.
TOL = 0.0011
# Containment and order between values taken from *different* records: the
# emulator stamps a record when it emits it (after draining process output,
# up to 20 ms at the end of Init), so they disagree by a few ms.
CROSS_TOL = 0.005
ID_RE = re.compile(r"^[0-9a-f]{16}$")
TRACE_ID_RE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
EXT = harness.EXT_NAME
TSAN_BIN = os.path.join(harness.REPO, "build", "tsan", "lambda-tracer")


# --- helpers ------------------------------------------------------------------

def t(rec):
    """A record's `time` in epoch seconds."""
    return harness.iso_to_s(rec["time"])


def span(rec, name):
    """(start_s, end_s) of a named span of a record, or None."""
    for s in (rec or {}).get("record", {}).get("spans", []):
        if s["name"] == name:
            start = harness.iso_to_s(s["start"])
            return start, start + s["durationMs"] / 1000
    return None


def iso(ts):
    """Epoch seconds as a telemetry `time` (ISO 8601, milliseconds, Z)."""
    ms = int(round(ts * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def per_process(lines):
    """The extension's output split per process: each one ends with its
    `INFO shutdown reason=` summary line."""
    chunks, cur = [], []
    for line in lines:
        cur.append(line)
        if "INFO shutdown reason=" in line:
            chunks.append(cur)
            cur = []
    if cur:
        chunks.append(cur)
    return chunks


def finals(docs):
    """{request_id: [final (not in-progress) segment documents]}"""
    out = {}
    for rid, versions in harness.by_request(docs).items():
        out[rid] = [d for d in versions if not d.get("in_progress")]
    return out


def top(doc):
    """{name: subsegment} of the direct children (names must be unique)."""
    subs = doc.get("subsegments", [])
    names = [s["name"] for s in subs]
    assert len(names) == len(set(names)), names
    return {s["name"]: s for s in subs}


def init_records(emu, phase):
    """(initStart, initRuntimeDone, initReport) records of each Init of a phase, in order."""
    out = []
    for kind in ("platform.initStart", "platform.initRuntimeDone", "platform.initReport"):
        out.append([r for r in emu.records(kind) if r["record"].get("phase") == phase])
    return list(zip(*out))


def start_scenario(cls, binary=None, **kwargs):
    cls.root = harness.make_root(binary)
    cls.emu = harness.new_emulator(cls.root, **kwargs)


def close_scenario(cls):
    emu = getattr(cls, "emu", None)
    if emu is not None:
        emu.close()
    sink = getattr(cls, "sink", None)
    if sink is not None:
        sink.close()
    if getattr(cls, "root", None):
        shutil.rmtree(cls.root, ignore_errors=True)


class Scenario(unittest.TestCase):
    """Shared assertions.  Subclasses set cls.emu, cls.lines, cls.docs."""
    BINARY = None  # None: harness.binary() (LAMBDA_TRACER_BIN)

    @classmethod
    def setUpClass(cls):
        cls.emu = cls.sink = cls.root = None  # never a base class's, for the TSan subclasses
        try:
            cls.scenario()
        except BaseException:
            close_scenario(cls)
            raise
        cls.lines = harness.output_lines(cls.emu)
        cls.docs = harness.documents(cls.lines)
        cls.finals = finals(cls.docs)

    @classmethod
    def tearDownClass(cls):
        close_scenario(cls)

    def final(self, rid, docs=None):
        got = (finals(docs) if docs is not None else self.finals).get(rid, [])
        self.assertEqual(len(got), 1, f"final segments for {rid}: {got}")
        return got[0]

    def rec(self, rtype, rid):
        r = harness.record(self.emu, rtype, rid)
        self.assertIsNotNone(r, f"no {rtype} for {rid}")
        return r

    def assert_ids(self, doc):
        self.assertRegex(doc["id"], ID_RE)
        self.assertRegex(doc["trace_id"], TRACE_ID_RE)
        seen = {doc["id"]}

        def walk(node):
            for s in node.get("subsegments", []):
                self.assertRegex(s["id"], ID_RE, s["name"])
                self.assertNotIn(s["id"], seen, s["name"])
                seen.add(s["id"])
                self.assertLessEqual(s["start_time"], s["end_time"], s["name"])
                walk(s)
        walk(doc)

    def assert_no_failure_flags(self, doc):
        for flag in ("fault", "error", "throttle", "cause"):
            self.assertNotIn(flag, doc)

    def assert_span_is(self, node, interval, what):
        self.assertIsNotNone(interval, what)
        self.assertAlmostEqual(node["start_time"], interval[0], delta=TOL, msg=what)
        self.assertAlmostEqual(node["end_time"], interval[1], delta=TOL, msg=what)

    def assert_segment_window(self, doc, rid, start=None):
        """start = platform.start (or `start`); end = start + report durationMs,
        which is also the annotation duration_ms.  A cold start's segment
        starts with the Init or restore the caller waited for (README "Read
        your traces"): then start is that subsegment's start, and the end is
        still platform.start + durationMs."""
        report = self.rec("platform.report", rid)
        dur = report["record"]["metrics"]["durationMs"] / 1000
        self.assertAlmostEqual(doc["annotations"]["duration_ms"] / 1000, dur, delta=1e-6)
        if start is not None:
            self.assertAlmostEqual(doc["start_time"], start, delta=TOL)
            self.assertAlmostEqual(doc["end_time"] - doc["start_time"], dur, delta=TOL)
            return
        begun = t(self.rec("platform.start", rid))
        waited = [s["start_time"] for n, s in top(doc).items() if n in ("Initialization", "Restore")]
        self.assertAlmostEqual(doc["start_time"], min([begun] + waited), delta=TOL)
        self.assertAlmostEqual(doc["end_time"], begun + dur, delta=TOL)

    def init_doc(self, rid):
        """The segment of its own an Init run long before `rid` became."""
        got = [d for d in self.docs if d.get("annotations", {}).get("init_for_request_id") == rid]
        self.assertEqual(len(got), 1, got)
        self.assertNotIn("request_id", got[0].get("aws", {}))
        return got[0]

    def assert_invoke_phases(self, doc, rid):
        """Invocation, Response and Overhead (with its two children) against
        platform.start, runtimeDone's spans and the report's extensionOverhead."""
        subs = top(doc)
        start = t(self.rec("platform.start", rid))
        done = self.rec("platform.runtimeDone", rid)
        report = self.rec("platform.report", rid)
        self.assert_span_is(subs["Invocation"], (start, span(done, "responseLatency")[1]), "Invocation")
        self.assertEqual(subs["Invocation"].get("subsegments", []), [])
        self.assert_span_is(subs["Response"], span(done, "responseDuration"), "Response")
        over = subs["Overhead"]
        kids = top(over)
        self.assertEqual(set(kids), {"Runtime overhead", "Extension overhead"})
        self.assert_span_is(kids["Runtime overhead"], span(done, "runtimeOverhead"), "Runtime overhead")
        # extensionOverhead's end, unless containment clamped it to the segment's end
        # (platform.start + the report's duration: stamps a few milliseconds apart)
        eo = span(report, "extensionOverhead")
        self.assert_span_is(kids["Extension overhead"], (eo[0], min(eo[1], doc["end_time"])), "Extension overhead")
        self.assertAlmostEqual(over["start_time"], kids["Runtime overhead"]["start_time"], delta=1e-6)
        self.assertAlmostEqual(over["end_time"], kids["Extension overhead"]["end_time"], delta=1e-6)
        self.assertLessEqual(over["end_time"], doc["end_time"] + CROSS_TOL)

    def assert_initialization(self, doc, init_start, init_runtime_done, init_report):
        """The Initialization subsegment and its two children, from one Init's records."""
        init = top(doc)["Initialization"]
        self.assertAlmostEqual(init["start_time"], t(init_start), delta=TOL)
        self.assertAlmostEqual(init["end_time"] - init["start_time"],
                               init_report["record"]["metrics"]["durationMs"] / 1000, delta=TOL)
        kids = top(init)
        self.assertEqual(set(kids), {"Extension init: lambda-tracer", "Runtime init"})
        own, runtime = kids["Extension init: lambda-tracer"], kids["Runtime init"]
        self.assertAlmostEqual(own["start_time"], init["start_time"], delta=1e-6)
        # initRuntimeDone's time, unless containment clamped it to the Initialization's end
        # (initStart + initReport's duration: two records stamped to the millisecond apart)
        self.assertAlmostEqual(runtime["end_time"], min(t(init_runtime_done), init["end_time"]), delta=TOL)
        self.assertAlmostEqual(runtime["end_time"], t(init_runtime_done), delta=CROSS_TOL)
        for c in (own, runtime):
            self.assertGreaterEqual(c["start_time"], init["start_time"] - CROSS_TOL)
            self.assertLessEqual(c["end_time"], init["end_time"] + CROSS_TOL)
        return init

    def assert_failed_init_segment(self, d, init_start, init_report, error_type):
        """A failed Init as its own segment (README "How failures are told
        apart"): a new trace, fault, cause "Init failed (<errorType>)", one
        Initialization subsegment over the Init, no request id.  With
        init_report None (the Init's closing records never reached the
        process) only what SHUTDOWN can tell is checked."""
        self.assert_ids(d)
        self.assertNotIn("in_progress", d)
        self.assertNotIn("parent_id", d)
        self.assertNotIn("request_id", d["aws"])
        self.assertEqual((d["name"], d["origin"]), ("demo-fn", "AWS::Lambda::Function"))
        self.assertAlmostEqual(int(d["trace_id"][2:10], 16), d["start_time"], delta=1)
        self.assertAlmostEqual(d["start_time"], t(init_start), delta=TOL)
        self.assertIs(d["fault"], True)
        self.assertNotIn("error", d)
        exc, = d["cause"]["exceptions"]
        self.assertRegex(exc["id"], ID_RE)
        self.assertEqual([s["name"] for s in d["subsegments"]], ["Initialization"])
        self.assert_span_is(d["subsegments"][0], (d["start_time"], d["end_time"]), "Initialization")
        self.assertEqual(d["subsegments"][0].get("subsegments", []), [])
        self.assertIs(d["annotations"]["init_failed"], True)
        self.assertIs(d["annotations"]["cold_start"], True)
        self.assertEqual(d["annotations"]["init_type"], "on-demand")
        if init_report is None:
            return
        self.assertAlmostEqual(d["end_time"] - d["start_time"], init_report["record"]["metrics"]["durationMs"] / 1000,
                               delta=TOL)
        self.assertEqual((exc["type"], exc["message"]), (error_type, f"Init failed ({error_type})"))
        ann = dict(d["annotations"])
        # a failed Init is billed too: its duration rounded up to the millisecond, priced
        self.assertEqual(ann.pop("billed_ms"), math.ceil(init_report["record"]["metrics"]["durationMs"]))
        self.assertGreater(ann.pop("cost_usd"), 0)
        self.assertEqual(ann, {"init_failed": True, "init_type": "on-demand", "status": "error",
                               "error_type": error_type, "cold_start": True, "sampled_by": "outcome"})

    def assert_failed_init_exported(self, lines, init_start, init_report, error_type):
        """The one process that ran a failed Init exported it as its own segment.

        The emulator flushes the Init's closing records and answers SHUTDOWN
        at the same moment (Lambda too: reference section 2.10), so they may
        reach the process only during its shutdown: it waits for them (or,
        if they never come, exports what initStart and SHUTDOWN tell)."""
        docs = [d for d in harness.documents(lines) if "request_id" not in d["aws"]]
        seen = [m.group(1) for m in (harness.TELEMETRY_RE.search(l) for l in lines) if m]
        # records carried over from an earlier process come before its own initStart
        own = seen[seen.index("platform.initStart"):] if "platform.initStart" in seen else []
        reached = "platform.initReport" in own
        self.assertEqual(len(docs), 1, docs)
        self.assert_failed_init_segment(docs[0], init_start, init_report if reached else None, error_type)
        return docs[0]

    def assert_valid(self, docs):
        self.assertTrue(docs)
        verdict = harness.validate_xray(docs)
        self.assertEqual(verdict["invalid"], 0, verdict["problems"])
        self.assertEqual(verdict["documents"], len(docs))

    def assert_clean_exits(self, shutdown_results):
        self.assertEqual(harness.sanitizer_reports(self.lines), [])
        for sd in shutdown_results:
            ext = sd.extensions[EXT]
            self.assertEqual((ext.exit_code, ext.killed), (0, False), sd)


# --- 1. Init failure ------------------------------------------------------------

class _InitFailure(Scenario):
    """Init fails; the knob is removed, so the suppressed retry inside the
    next invoke succeeds.  Two extension processes: the one that saw the
    failed Init (reset with SHUTDOWN failure) and the one of the retry."""
    ENV = {}
    ERROR_TYPE = None

    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY, env=dict(cls.ENV))
        cls.init = cls.emu.start()
        for k in cls.ENV:
            del cls.emu.customer_env[k]
        cls.inv = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.sd = cls.emu.shutdown()

    def setUp(self):
        self.procs = per_process(self.lines)

    def test_init_failed_then_the_invoke_retried_it(self):
        self.assertEqual((self.init.status, self.init.error_type, self.init.phase),
                         ("error", self.ERROR_TYPE, "init"))
        self.assertEqual(self.init.shutdown.reason, "failure")
        self.assertEqual((self.inv.status, self.inv.init.phase, self.inv.init.status),
                         ("success", "invoke", "success"))
        self.assertEqual(len(self.procs), 2)

    def test_the_failed_process_saw_the_failure_and_exited_cleanly(self):
        seen = harness.telemetry_seen(self.procs[0])
        self.assertEqual(seen[0][0], "platform.initStart")
        closing = [x for x in seen if x[0] in ("platform.initRuntimeDone", "platform.initReport")]
        # both closing records, or neither when SHUTDOWN beat their delivery
        self.assertIn(closing, ([], [("platform.initRuntimeDone", "-", "error", self.ERROR_TYPE),
                                     ("platform.initReport", "-", "error", self.ERROR_TYPE)]))
        self.assertEqual([s[0] for s in harness.shutdowns(self.procs[0])], ["failure"])
        self.assertEqual([s[0] for s in harness.shutdowns(self.procs[1])], ["spindown"])
        self.assert_clean_exits([self.init.shutdown, self.sd])

    def test_no_invocation_is_invented_for_the_failed_init(self):
        docs = harness.documents(self.procs[0])
        self.assertEqual(harness.by_request(docs), {})

    def test_the_failed_init_is_its_own_fault_segment(self):
        (start, _, report), = init_records(self.emu, "init")
        d = self.assert_failed_init_exported(self.procs[0], start, report, self.ERROR_TYPE)
        self.assertIn("segments=1 ", harness.shutdowns(self.procs[0])[0][1])
        # a trace of its own, not the one of the invocation that followed
        self.assertNotEqual(d["trace_id"], self.final(self.inv.request_id)["trace_id"])

    def test_the_successful_retry_exports_the_invocation_and_no_duplicate(self):
        docs = harness.documents(self.procs[1])
        invocations = [d for d in docs if "request_id" in d["aws"]]
        self.assertEqual({d["aws"]["request_id"] for d in invocations}, {self.inv.request_id})
        for d in invocations:
            self.assertNotIn("init_failed", d["annotations"])
        if any("request_id" not in d["aws"] for d in harness.documents(self.procs[0])):
            # the failed Init was exported by its own process: not again here
            self.assertEqual(len(invocations), len(docs), docs)

    def test_the_next_invocation_is_the_cold_start_including_the_retried_init(self):
        d = self.final(self.inv.request_id, harness.documents(self.procs[1]))
        (failed_start, _, failed_report), = init_records(self.emu, "init")
        (start, runtime_done, report), = init_records(self.emu, "invoke")
        self.assert_ids(d)
        self.assert_no_failure_flags(d)
        a = d["annotations"]
        self.assertIs(a["cold_start"], True)
        self.assertEqual((a["init_type"], a["status"]), ("on-demand", "success"))
        # the caller waited for the retried Init: the segment starts with it
        # and lasts the report's durationMs (which includes that Init)
        self.assert_segment_window(d, self.inv.request_id, start=t(start))
        self.assertEqual(set(top(d)), {"Initialization", "Invocation", "Response", "Overhead"})
        init = self.assert_initialization(d, start, runtime_done, report)
        # the retried Init, not the failed one
        self.assertGreater(init["start_time"],
                           t(failed_start) + failed_report["record"]["metrics"]["durationMs"] / 1000 - TOL)
        self.assertLessEqual(init["end_time"], d["end_time"] + CROSS_TOL)
        self.assertGreaterEqual(top(d)["Invocation"]["start_time"], init["end_time"] - CROSS_TOL)
        self.assert_invoke_phases(d, self.inv.request_id)
        # a suppressed Init is inside the invocation: there is no gap to state
        self.assertNotIn("init_to_invoke_gap_ms", d.get("metadata", {}).get("lambda_tracer", {}))

    def test_documents_are_valid(self):
        self.assert_valid(self.docs)


class InitErrorTest(_InitFailure):
    """The runtime reports /runtime/init/error."""
    ENV = {"DEMO_INIT_FAIL": "1", "DEMO_INIT_ERROR_TYPE": "Runtime.ScenarioInitError"}
    ERROR_TYPE = "Runtime.ScenarioInitError"


class InitCrashTest(_InitFailure):
    """The runtime exits during Init without reporting."""
    ENV = {"DEMO_INIT_CRASH": "7"}
    ERROR_TYPE = "Runtime.ExitError"


class InitCrashRetryAlsoFailsTest(Scenario):
    """Init crashes, the suppressed retry inside invoke X crashes too (X fails
    with Runtime.ExitError), then the knob is removed and invoke Y succeeds
    after a successful suppressed Init.  Three extension processes.  X's
    platform.start/report are emitted after the second process was reset, so
    they reach the third one (the one of Y's Init), and how they interleave
    with its own records depends on delivery timing.  Paths, told apart from
    the order the third process logged things:

      usual      X's records, then the process's own initStart, then Y's INVOKE
      y_first    a refused delivery was retried late: Y's INVOKE comes before X's records
      carried    the second process got no telemetry at all: X's retry Init
                 records come first, then X's, then the process's own
    """

    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY, env={"DEMO_INIT_CRASH": "7"})
        cls.init = cls.emu.start()
        cls.x = cls.emu.invoke(payload=b'{"action":"fast"}')
        del cls.emu.customer_env["DEMO_INIT_CRASH"]
        cls.y = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.sd = cls.emu.shutdown()

    def path(self):
        lines = per_process(self.lines)[2]

        def at(text):
            return next(i for i, l in enumerate(lines) if text in l)
        x_at = at(f"type=platform.start request_id={self.x.request_id}")
        if at(f"event INVOKE request_id={self.y.request_id}") < x_at:
            return "y_first"
        if at("type=platform.initStart") < x_at:
            return "carried"
        return "usual"

    def test_scenario(self):
        self.assertEqual((self.init.status, self.init.error_type), ("error", "Runtime.ExitError"))
        self.assertEqual((self.x.status, self.x.error_type, self.x.init.phase), ("error", "Runtime.ExitError", "invoke"))
        self.assertEqual((self.y.status, self.y.init.phase), ("success", "invoke"))
        self.assertEqual([s[0] for s in harness.shutdowns(self.lines)], ["failure", "failure", "spindown"])
        self.assert_clean_exits([self.init.shutdown, self.x.shutdown, self.sd])

    def test_each_failed_init_is_its_own_segment(self):
        procs = per_process(self.lines)
        self.assertEqual(len(procs), 3)
        (start, _, report), = init_records(self.emu, "init")
        retry_start, _, retry_report = init_records(self.emu, "invoke")[0]
        self.assertEqual(retry_report["record"]["status"], "error")
        # the Init, then X's failed retry, which no invocation record reached
        # before that process was reset: exported at its SHUTDOWN
        for lines, (s_rec, r_rec) in ((procs[0], (start, report)), (procs[1], (retry_start, retry_report))):
            with self.subTest(phase=r_rec["record"]["phase"]):
                if not any("type=platform.initStart" in l for l in lines):
                    # (carried path) X's segment shows that Init instead
                    self.skipTest("this process received no telemetry at all")
                self.assert_failed_init_exported(lines, s_rec, r_rec, "Runtime.ExitError")

    def test_the_failed_invocation_gets_one_faulted_segment(self):
        d = self.final(self.x.request_id)
        self.assertIs(d["fault"], True)
        self.assertNotIn("error", d)
        self.assertEqual(d["cause"]["exceptions"][0]["type"], "Runtime.ExitError")
        self.assertEqual((d["annotations"]["status"], d["annotations"]["error_type"]), ("error", "Runtime.ExitError"))
        report = self.rec("platform.report", self.x.request_id)
        self.assertAlmostEqual(d["end_time"] - d["start_time"], report["record"]["metrics"]["durationMs"] / 1000,
                               delta=TOL)
        if self.path() == "carried":
            # KNOWN BUG, reproduced deterministically by
            # FailedRetryRecordsTest.test_the_tree_is_well_formed: the
            # Invocation subsegment ends before it starts.
            self.skipTest("KNOWN BUG: Invocation subsegment ends before it starts (carried path)")
        self.assert_ids(d)

    # X's records reach a process that never saw X's (failed) suppressed
    # Init.  Its report's durationMs includes that Init, so the segment must
    # not start at platform.start (it would end ~one Init duration after X's
    # own report, as it once did): it ends at its report and reaches back
    # before platform.start.  X's initStart itself is not known to this
    # process, so the exact start is not asserted.
    def test_the_failed_invocation_ends_by_its_report(self):
        if self.path() == "carried":
            self.skipTest("X's retry Init records reached this process too: covered elsewhere")
        d = self.final(self.x.request_id)
        report = self.rec("platform.report", self.x.request_id)
        self.assertLessEqual(d["end_time"], t(report) + CROSS_TOL)
        self.assertLess(d["start_time"], t(self.rec("platform.start", self.x.request_id)))

    # BUG (tracer.c get(): "the first invocation of this process took the
    # Init"): the stale records of X, delivered before this process's own
    # initStart, make X the process's cold invocation (cold_start true) and
    # Y, whose INVOKE this process did receive after its successful Init,
    # comes out with cold_start false, no Initialization subsegment, and a
    # start at platform.start instead of its suppressed initStart.
    def test_the_invocation_after_the_recovered_init_is_the_cold_start(self):
        if self.path() == "y_first":
            self.skipTest("X's records reached the process after Y's INVOKE: the bug needs them first")
        d = self.final(self.y.request_id)
        start, runtime_done, report = init_records(self.emu, "invoke")[-1]
        self.assertIs(d["annotations"]["cold_start"], True)
        self.assertEqual(set(top(d)), {"Initialization", "Invocation", "Response", "Overhead"})
        self.assert_initialization(d, start, runtime_done, report)
        self.assert_segment_window(d, self.y.request_id, start=t(start))

    def test_the_recovered_invocation_has_correct_phases(self):
        d = self.final(self.y.request_id)
        self.assert_ids(d)
        self.assert_no_failure_flags(d)
        self.assert_invoke_phases(d, self.y.request_id)

    def test_documents_are_valid(self):
        docs = self.docs
        if self.path() == "carried":  # see test_the_failed_invocation_gets_one_faulted_segment
            docs = [d for d in docs if d["aws"].get("request_id") != self.x.request_id]
        self.assert_valid(docs)


class FailedRetryRecordsTest(Scenario):
    """The records of a request whose suppressed Init failed, replayed into
    a live extension in Lambda's order (reference 2.10): initStart (phase
    invoke), initRuntimeDone and initReport with status error, then the
    request's platform.start (stamped after the Init, as the emulator does)
    and platform.report (status error, durationMs including the Init).  This
    is what a process gets when such records are carried over to it (see
    InitCrashRetryAlsoFailsTest's "carried" path), made deterministic."""
    INIT_MS = 100.0

    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY)
        cls.emu.start()
        cls.t0 = round(time.time() - 1.0, 3)
        cls.rid = str(uuid.uuid4())
        phase = {"initializationType": "on-demand", "phase": "invoke"}
        failed = {"status": "error", "errorType": "Runtime.ExitError"}
        t_init_end = cls.t0 + cls.INIT_MS / 1000
        cls.sent = [
            {"time": iso(cls.t0), "type": "platform.initStart",
             "record": dict(phase, functionName="demo-fn", functionVersion="$LATEST")},
            {"time": iso(t_init_end), "type": "platform.initRuntimeDone", "record": dict(phase, **failed)},
            {"time": iso(t_init_end), "type": "platform.initReport",
             "record": dict(phase, metrics={"durationMs": cls.INIT_MS}, **failed)},
            {"time": iso(t_init_end + 0.001), "type": "platform.start",
             "record": {"requestId": cls.rid, "version": "$LATEST"}},
            {"time": iso(t_init_end + 0.001), "type": "platform.report",
             "record": dict(requestId=cls.rid, metrics={"durationMs": cls.INIT_MS + 0.9, "billedDurationMs": 101,
                                                        "memorySizeMB": 128, "maxMemoryUsedMB": 38}, **failed)},
        ]
        status, _ = cls.emu.send_raw_telemetry(EXT, json.dumps(cls.sent).encode())
        assert status == 200, status
        cls.sd = cls.emu.shutdown()

    def test_one_faulted_segment_over_the_init_and_the_request(self):
        d = self.final(self.rid)
        self.assertIs(d["fault"], True)
        self.assertEqual(d["cause"]["exceptions"][0]["type"], "Runtime.ExitError")
        self.assertEqual((d["annotations"]["status"], d["annotations"]["cold_start"]), ("error", True))
        # the caller waited for the failed Init: the segment starts with it
        self.assertAlmostEqual(d["start_time"], self.t0, delta=TOL)
        self.assertAlmostEqual(d["end_time"] - d["start_time"], (self.INIT_MS + 0.9) / 1000, delta=TOL)
        init = top(d)["Initialization"]
        self.assertIs(init.get("fault"), True)
        self.assert_span_is(init, (self.t0, self.t0 + self.INIT_MS / 1000), "Initialization")
        # shown by the invocation that waited for it: no separate Init segment
        self.assertEqual([x for x in self.docs if "request_id" not in x["aws"]], [])
        self.assert_clean_exits([self.sd])

    # BUG (tracer.c build()/add_init_spans()): the Invocation subsegment runs
    # from platform.start to the segment's end (initStart + durationMs), which
    # here is 0.1 ms earlier: it ends before it starts and the document fails
    # AWS's schema ("end_time before start_time").  And "Extension init:
    # lambda-tracer" is put under an Init this process did not run (it ends at
    # this process's own first /next, about a second after that Init ended).
    def test_the_tree_is_well_formed(self):
        d = self.final(self.rid)

        def walk(node):
            for sub in node.get("subsegments", []):
                self.assertLessEqual(sub["start_time"], sub["end_time"], sub["name"])
                self.assertGreaterEqual(sub["start_time"], node["start_time"] - CROSS_TOL, sub["name"])
                self.assertLessEqual(sub["end_time"], node["end_time"] + CROSS_TOL, sub["name"])
                walk(sub)
        walk(d)
        self.assert_valid(self.docs)


# --- 2. SnapStart --------------------------------------------------------------

class SnapStartTest(Scenario):
    """init_type snap-start: Init, snapshot, then Restore at the first
    invoke.  No AWS_* keys in the environment: the X-Ray API exporter must
    sign with what AWS_CONTAINER_CREDENTIALS_FULL_URI serves."""

    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY, init_type="snap-start", env={"DEMO_RESTORE_MS": "60"})
        cls.ext_env = cls.emu.extension_environment()
        req = urllib.request.Request(cls.ext_env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                                     headers={"Authorization": cls.ext_env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
        with urllib.request.urlopen(req, timeout=5) as resp:
            cls.creds = json.load(resp)
        cls.own_credential_calls = len([c for c in cls.emu.api_log if c["api"] == "credentials"])
        cls.sink = sinks.XRayApiSink(region=cls.ext_env["AWS_REGION"], access_key=cls.creds["AccessKeyId"],
                                     secret=cls.creds["SecretAccessKey"], token=cls.creds["Token"])
        cls.emu.customer_env.update({"LAMBDA_TRACER_EXPORTERS": "xray,stdout",
                                     "LAMBDA_TRACER_XRAY_ENDPOINT": cls.sink.endpoint})
        cls.init = cls.emu.start()
        cls.a = cls.emu.invoke(payload=b'{"action":"fast"}', trace_header=SAMPLED)
        cls.b = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.sd = cls.emu.shutdown()
        cls.api_log = list(cls.emu.api_log)

    def test_scenario(self):
        self.assertEqual((self.init.status, self.init.init_type), ("success", "snap-start"))
        self.assertEqual(self.a.restore["status"], "success")
        self.assertIsNone(self.b.restore)
        self.assertNotIn("AWS_ACCESS_KEY_ID", self.ext_env)
        self.assert_clean_exits([self.sd])

    def test_credentials_came_from_the_container_endpoint_after_restore(self):
        calls = [c for c in self.api_log if c["api"] == "credentials"][self.own_credential_calls:]
        self.assertTrue(calls)
        restore_ms = t(self.emu.records("platform.restoreStart")[0]) * 1000
        for c in calls:
            self.assertEqual((c["method"], c["path"], c["status"]), ("GET", "/2021-04-23/credentials", 200))
            # fetched after the restore, so no credentials live in the snapshot
            self.assertGreaterEqual(c["t_epoch_ms"], restore_ms - 1)

    def test_signed_documents_arrive(self):
        self.assertEqual(self.sink.bad_signatures, [])
        self.assertTrue(self.sink.requests)
        for req in self.sink.requests:
            self.assertEqual((req["path"], req["status"]), ("/TraceSegments", 200))
            self.assertIn(f"Credential={self.creds['AccessKeyId']}/", req["headers"]["authorization"])
        got = finals(self.sink.documents)
        self.assertEqual(set(got), {self.a.request_id, self.b.request_id})
        for rid, docs in got.items():
            self.assertEqual(len(docs), 1, rid)
            # the same tree as the stdout exporter printed
            self.assertEqual(docs[0], self.final(rid))
        self.assert_valid(self.sink.documents)

    def test_first_invocation_has_the_restore(self):
        d = self.final(self.a.request_id)
        self.assert_ids(d)
        self.assert_no_failure_flags(d)
        self.assertEqual(d["trace_id"], "1-5759e988-bd862e3fe1be46a994272793")
        self.assertEqual(d["parent_id"], "53995c3f42cd8ad8")
        a = d["annotations"]
        self.assertIs(a["cold_start"], True)
        self.assertEqual((a["init_type"], a["status"]), ("snap-start", "success"))
        self.assert_segment_window(d, self.a.request_id)
        # the Init this process ran before the snapshot is a segment of its
        # own in the first invocation's trace; the restore, which the caller
        # waited for, starts the invocation's segment
        self.assertEqual(set(top(d)), {"Restore", "Invocation", "Response", "Overhead"})
        (start, runtime_done, report), = init_records(self.emu, "init")
        i = self.init_doc(self.a.request_id)
        self.assertEqual((i["trace_id"], i.get("parent_id")), (d["trace_id"], d["parent_id"]))
        self.assert_initialization(i, start, runtime_done, report)
        restore = top(d)["Restore"]
        self.assertAlmostEqual(d["start_time"], restore["start_time"], delta=1e-6)
        rs, = self.emu.records("platform.restoreStart")
        rr, = self.emu.records("platform.restoreReport")
        self.assert_span_is(restore, (t(rs), t(rs) + rr["record"]["metrics"]["durationMs"] / 1000), "Restore")
        self.assertGreater(restore["end_time"] - restore["start_time"], 0.055)  # the 60 ms after-restore hook
        self.assertEqual(restore.get("subsegments", []), [])
        self.assertGreaterEqual(restore["start_time"], top(i)["Initialization"]["end_time"] - CROSS_TOL)
        self.assertLessEqual(restore["end_time"], top(d)["Invocation"]["start_time"] + CROSS_TOL)
        self.assert_invoke_phases(d, self.a.request_id)

    def test_second_invocation_has_no_restore(self):
        d = self.final(self.b.request_id)
        self.assert_ids(d)
        self.assert_no_failure_flags(d)
        self.assertNotIn("parent_id", d)
        self.assertIs(d["annotations"]["cold_start"], False)
        self.assertEqual(d["annotations"]["init_type"], "snap-start")
        self.assertEqual(set(top(d)), {"Invocation", "Response", "Overhead"})
        self.assert_segment_window(d, self.b.request_id)
        self.assert_invoke_phases(d, self.b.request_id)

    def test_documents_are_valid(self):
        self.assert_valid(self.docs)


# --- 3. Provisioned concurrency ---------------------------------------------------

class ProvisionedConcurrencyTest(Scenario):
    GAP_S = 1.5

    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY, init_type="provisioned-concurrency")
        cls.init = cls.emu.start()
        time.sleep(cls.GAP_S)
        cls.a = cls.emu.invoke(payload=b'{"action":"slow","ms":50}', trace_header=SAMPLED)
        cls.b = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.sd = cls.emu.shutdown()

    def test_scenario(self):
        self.assertEqual((self.init.status, self.init.init_type), ("success", "provisioned-concurrency"))
        self.assertEqual((self.a.status, self.b.status), ("success", "success"))
        self.assert_clean_exits([self.sd])

    def test_the_invocation_is_not_stretched_to_the_init(self):
        d = self.final(self.a.request_id)
        self.assert_ids(d)
        self.assert_no_failure_flags(d)
        self.assertEqual((d["trace_id"], d["parent_id"]),
                         ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"))
        self.assert_segment_window(d, self.a.request_id)
        self.assertLess(d["end_time"] - d["start_time"], 0.5)
        a = d["annotations"]
        self.assertIs(a["cold_start"], True)
        self.assertEqual((a["init_type"], a["status"]), ("provisioned-concurrency", "success"))
        # the Init ran long before: not a child starting before its parent
        self.assertEqual(set(top(d)), {"Invocation", "Response", "Overhead"})
        self.assert_invoke_phases(d, self.a.request_id)
        self.assertGreater(top(d)["Invocation"]["end_time"] - top(d)["Invocation"]["start_time"], 0.045)

    def test_initialization_keeps_its_real_earlier_times(self):
        # a segment of its own in the invocation's trace, a sibling of it
        d = self.final(self.a.request_id)
        i = self.init_doc(self.a.request_id)
        self.assertEqual((i["trace_id"], i.get("parent_id")), (d["trace_id"], d["parent_id"]))
        self.assertNotEqual(i["id"], d["id"])
        self.assertEqual(i["annotations"]["init_type"], "provisioned-concurrency")
        (start, runtime_done, report), = init_records(self.emu, "init")
        init = self.assert_initialization(i, start, runtime_done, report)
        self.assertAlmostEqual(i["start_time"], init["start_time"], delta=1e-6)
        self.assertAlmostEqual(i["end_time"], init["end_time"], delta=1e-6)
        self.assertLess(init["end_time"], d["start_time"] - (self.GAP_S - 0.1))
        self.assert_valid([i])

    def test_the_gap_is_stated_in_metadata(self):
        d = self.final(self.a.request_id)
        (start, _, report), = init_records(self.emu, "init")
        expected_ms = (t(self.rec("platform.start", self.a.request_id))
                       - t(start) - report["record"]["metrics"]["durationMs"] / 1000) * 1000
        gap = d["metadata"]["lambda_tracer"]["init_to_invoke_gap_ms"]
        self.assertIsInstance(gap, int)
        self.assertAlmostEqual(gap, expected_ms, delta=1.5)
        self.assertGreaterEqual(gap, self.GAP_S * 1000 - 10)

    def test_the_next_invocation_is_warm(self):
        d = self.final(self.b.request_id)
        self.assert_ids(d)
        self.assertIs(d["annotations"]["cold_start"], False)
        self.assertEqual(d["annotations"]["init_type"], "provisioned-concurrency")
        self.assertEqual(set(top(d)), {"Invocation", "Response", "Overhead"})
        self.assertNotIn("init_to_invoke_gap_ms", d.get("metadata", {}).get("lambda_tracer", {}))
        self.assert_segment_window(d, self.b.request_id)
        self.assert_invoke_phases(d, self.b.request_id)

    def test_documents_are_valid(self):
        self.assert_valid(self.docs)


# --- 4. No header, Sampled=0 traced on request --------------------------------------

class TraceUnsampledTest(Scenario):
    """The deprecated LAMBDA_TRACER_TRACE_UNSAMPLED=true (LAMBDA_TRACER_SAMPLING=all), with no
    sampling override from the harness, and an emulator that invents no header (so "no header"
    is really none)."""
    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY, env={"LAMBDA_TRACER_TRACE_UNSAMPLED": "true"}, lambda_default=True,
                       quirks={"generate_trace_header": False})
        cls.emu.start()
        cls.none = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.zero = cls.emu.invoke(payload=b'{"action":"fast"}', trace_header=UNSAMPLED)
        cls.zero_no_parent = cls.emu.invoke(payload=b'{"action":"fast"}', trace_header=UNSAMPLED_NO_PARENT)
        cls.sd = cls.emu.shutdown()

    def test_every_invocation_is_traced_once(self):
        ids = set()
        for r in (self.none, self.zero, self.zero_no_parent):
            d = self.final(r.request_id)
            self.assert_ids(d)
            self.assert_no_failure_flags(d)
            self.assert_segment_window(d, r.request_id)
            self.assert_invoke_phases(d, r.request_id)
            ids.add(d["id"])
        self.assertEqual(len(ids), 3)
        summary = harness.shutdowns(self.lines)
        self.assertEqual(len(summary), 1)
        self.assertIn("segments=3 ", summary[0][1])
        self.assertIn("dropped=0 ", summary[0][1])
        self.assertEqual([self.final(r.request_id)["annotations"]["sampled_by"]
                          for r in (self.none, self.zero, self.zero_no_parent)], ["cold_start", "all", "all"])
        self.assert_clean_exits([self.sd])

    def test_no_header_starts_a_new_trace(self):
        d = self.final(self.none.request_id)
        self.assertNotIn("parent_id", d)
        self.assertAlmostEqual(int(d["trace_id"][2:10], 16), d["start_time"], delta=2)
        self.assertIs(d["annotations"]["cold_start"], True)
        others = {self.final(r.request_id)["trace_id"] for r in (self.zero, self.zero_no_parent)}
        self.assertNotIn(d["trace_id"], others)

    def test_sampled_zero_joins_the_given_root_as_a_root_segment(self):
        # the header's Parent names a segment nobody sends (Sampled=0): kept as metadata
        d = self.final(self.zero.request_id)
        self.assertEqual(d["trace_id"], "1-5759e989-bd862e3fe1be46a994272794")
        self.assertNotIn("parent_id", d)
        self.assertEqual(d["metadata"]["lambda_tracer"]["upstream_parent_id"], "53995c3f42cd8ad9")
        self.assertIs(d["annotations"]["cold_start"], False)

    def test_sampled_zero_without_parent_joins_the_root_as_a_root_segment(self):
        d = self.final(self.zero_no_parent.request_id)
        self.assertEqual(d["trace_id"], "1-5759e989-bd862e3fe1be46a994272795")
        self.assertNotIn("parent_id", d)

    def test_documents_are_valid(self):
        self.assert_valid(self.docs)


# --- 5. Lambda Managed Instances -------------------------------------------------

class ManagedInstancesTest(Scenario):
    """max_concurrency 4; 8 invocations (fast and 300 ms), then a handled
    error, a timeout and a fast one.  No INVOKE: every segment comes from
    platform.start and platform.report alone."""
    SLOW_MS = 300

    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY, managed_instances=True, max_concurrency=4, timeout_s=1)
        cls.init = cls.emu.start()
        payloads = [b'{"action":"fast"}', b'{"action":"slow","ms":%d}' % cls.SLOW_MS] * 4
        headers = [SAMPLED if i == 3 else None for i in range(8)]
        cls.batch = cls.emu.invoke_many(payloads, trace_header=headers)
        cls.fast = [r for i, r in enumerate(cls.batch) if i % 2 == 0]
        cls.slow = [r for i, r in enumerate(cls.batch) if i % 2 == 1]
        cls.sampled = cls.batch[3]
        cls.err, cls.timeout, cls.after = cls.emu.invoke_many(
            [b'{"action":"error","type":"Function.MyError","message":"boom"}',
             b'{"action":"sleep","ms":1500}', b'{"action":"fast"}'])
        cls.sd = cls.emu.shutdown()
        cls.api_log = list(cls.emu.api_log)
        cls.all = cls.batch + [cls.err, cls.timeout, cls.after]

    def test_scenario(self):
        self.assertEqual(self.init.init_type, "lambda-managed-instances")
        self.assertEqual([r.status for r in self.batch], ["success"] * 8)
        self.assertEqual((self.err.status, self.timeout.status, self.after.status), ("error", "timeout", "success"))
        self.assert_clean_exits([self.sd])
        self.assertEqual(len(harness.shutdowns(self.lines)), 1)

    def test_invocations_really_overlapped(self):
        spans_ = [(t(self.rec("platform.start", r.request_id)), t(self.rec("platform.report", r.request_id)))
                  for r in self.batch]
        peak = max(sum(1 for s, e in spans_ if s <= t0 < e) for t0, _ in spans_)
        self.assertEqual(peak, 4)

    def test_registers_for_shutdown_only(self):
        mine = [c for c in self.api_log if c.get("who") == EXT]
        registers = [c for c in mine if c["path"] == "/2020-01-01/extension/register"]
        self.assertEqual([c["status"] for c in registers], [200])
        nexts = [c for c in mine if c["path"] == "/2020-01-01/extension/event/next"]
        self.assertEqual([(c["status"], c.get("event")) for c in nexts], [(200, "SHUTDOWN")])
        ext_records = [r["record"] for r in self.emu.records("platform.extension") if r["record"]["name"] == EXT]
        self.assertEqual([r["events"] for r in ext_records], [["SHUTDOWN"]])
        subs = [c for c in self.api_log if c["api"] == "telemetry" and c["method"] == "PUT"]
        self.assertEqual([(c["status"], c["body"]["schemaVersion"]) for c in subs], [(200, "2025-01-29")])

    def test_every_request_has_exactly_one_final_segment(self):
        for r in self.all:
            self.final(r.request_id)
        self.assertEqual(set(self.finals), {r.request_id for r in self.all})
        ids = [d["id"] for docs in self.finals.values() for d in docs]
        self.assertEqual(len(ids), len(set(ids)))
        # 11 invocations and the Init's own segment
        self.assertIn("segments=12 ", harness.shutdowns(self.lines)[0][1])

    def test_segments_are_built_from_start_and_report(self):
        for r in self.batch + [self.err, self.after]:
            d = self.final(r.request_id)
            self.assert_ids(d)
            self.assertEqual(d["annotations"]["init_type"], "lambda-managed-instances")
            self.assert_segment_window(d, r.request_id)
            report = self.rec("platform.report", r.request_id)
            subs = top(d)
            # managed instances initialize ahead of traffic: the Init is a
            # segment of its own, never a child of an invocation
            expected = {"Invocation", "Response"}
            self.assertEqual(set(subs), expected, r.request_id)
            start = t(self.rec("platform.start", r.request_id))
            self.assert_span_is(subs["Invocation"], (start, span(report, "responseLatency")[1]), "Invocation")
            self.assert_span_is(subs["Response"], span(report, "responseDuration"), "Response")
            self.assertEqual(subs["Invocation"].get("subsegments", []), [])
            self.assertEqual(subs["Response"].get("subsegments", []), [])

    def test_fast_and_slow(self):
        for r in self.batch:
            d = self.final(r.request_id)
            self.assert_no_failure_flags(d)
            self.assertEqual(d["annotations"]["status"], "success")
            inv = top(d)["Invocation"]
            if r in self.slow:
                self.assertGreater(inv["end_time"] - inv["start_time"], (self.SLOW_MS - 5) / 1000)
            else:
                self.assertLess(inv["end_time"] - inv["start_time"], (self.SLOW_MS - 50) / 1000)

    def test_exactly_one_cold_start_with_the_initialization(self):
        cold = [rid for rid, docs in self.finals.items() if docs[0]["annotations"]["cold_start"]]
        self.assertEqual(len(cold), 1)
        # the first platform.start the platform emitted (and so delivered): concurrent starts
        # can share a millisecond, so their times cannot order them
        ids = {r.request_id for r in self.all}
        first_rid = next(r["record"]["requestId"] for r in self.emu.records("platform.start")
                         if r["record"].get("requestId") in ids)
        first = next(r for r in self.all if r.request_id == first_rid)
        self.assertEqual(cold, [first.request_id])
        (start, runtime_done, report), = init_records(self.emu, "init")
        # the Init ran ahead of traffic: a segment of its own in the cold
        # invocation's trace
        i = self.init_doc(first.request_id)
        self.assertEqual(i["trace_id"], self.final(first.request_id)["trace_id"])
        self.assert_initialization(i, start, runtime_done, report)

    def test_the_sampled_header_is_joined(self):
        d = self.final(self.sampled.request_id)
        self.assertEqual((d["trace_id"], d["parent_id"]),
                         ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"))
        others = [self.final(r.request_id) for r in self.all if r is not self.sampled]
        self.assertNotIn(d["trace_id"], {o["trace_id"] for o in others})
        for o in others:
            self.assertNotIn("parent_id", o)

    def test_handled_error(self):
        d = self.final(self.err.request_id)
        self.assertIs(d["error"], True)
        self.assertNotIn("fault", d)
        exc = d["cause"]["exceptions"][0]
        self.assertEqual(exc["type"], "Function.MyError")
        self.assertRegex(exc["id"], ID_RE)
        self.assertEqual((d["annotations"]["status"], d["annotations"]["error_type"]), ("error", "Function.MyError"))

    def test_timeout(self):
        d = self.final(self.timeout.request_id)
        self.assert_ids(d)
        self.assertIs(d.get("fault"), True, d)
        self.assertNotIn("error", d)
        exc = d["cause"]["exceptions"][0]
        self.assertEqual(exc["type"], "Sandbox.Timedout")
        self.assertTrue(exc["message"].startswith("Task timed out"), exc)
        self.assertEqual((d["annotations"]["status"], d["annotations"]["error_type"]), ("timeout", "Sandbox.Timedout"))
        self.assert_segment_window(d, self.timeout.request_id)
        self.assertAlmostEqual(d["end_time"] - d["start_time"], 1.0, delta=TOL)
        # the report has no spans: the Invocation runs to the end
        self.assertEqual(set(top(d)), {"Invocation"})
        self.assert_span_is(top(d)["Invocation"], (d["start_time"], d["end_time"]), "Invocation")

    def test_documents_are_valid(self):
        self.assert_valid(self.docs)


class ManagedInstancesLateReportTest(Scenario):
    """Managed Instances: the last invocation's records reach the extension
    200 ms after SHUTDOWN (the order the service also shows).  With no INVOKE
    events, only platform.start tells the extension that a report is owed;
    it must wait for it, not close the invocation as unfinished."""

    @classmethod
    def scenario(cls):
        start_scenario(cls, cls.BINARY, managed_instances=True, max_concurrency=2,
                       quirks={"shutdown_telemetry_delay_ms": 200},
                       env={"LAMBDA_TRACER_BUFFER_TIMEOUT_MS": "300"})
        cls.init = cls.emu.start()
        # 600 ms: platform.start is delivered during the invocation (timeoutMs 300), the
        # report is still buffered when the shutdown starts and is held past SHUTDOWN.
        cls.inv = cls.emu.invoke(b'{"action":"slow","ms":600}')
        cls.sd = cls.emu.shutdown()

    def test_the_report_came_after_shutdown(self):
        self.assertEqual(self.inv.status, "success")
        self.assert_clean_exits([self.sd])
        order = [ln for ln in self.lines if "event SHUTDOWN" in ln or
                 ("type=platform.report" in ln and self.inv.request_id in ln)]
        self.assertEqual(len(order), 2, order)
        self.assertIn("event SHUTDOWN", order[0])

    def test_the_segment_is_closed_by_its_report(self):
        d = self.final(self.inv.request_id)
        self.assertEqual(d["annotations"]["status"], "success", d)
        self.assertNotIn("closed_by_shutdown", d.get("metadata", {}).get("lambda_tracer", {}))
        self.assertEqual(set(top(d)), {"Invocation", "Response"})

    def test_documents_are_valid(self):
        self.assert_valid(self.docs)


# --- 7. The same runs under the TSan binary ------------------------------------------

def _tsan_usable():
    current = os.environ.get("LAMBDA_TRACER_BIN") or os.path.join(harness.REPO, "build", "dev", "lambda-tracer")
    return os.path.exists(TSAN_BIN) and os.path.realpath(current) != os.path.realpath(TSAN_BIN)


_SKIP_TSAN = "needs build/tsan/lambda-tracer (make SANITIZE=thread extension); already the binary under test"


@unittest.skipUnless(_tsan_usable(), _SKIP_TSAN)
class SnapStartTsanTest(SnapStartTest):
    BINARY = TSAN_BIN


@unittest.skipUnless(_tsan_usable(), _SKIP_TSAN)
class ProvisionedConcurrencyTsanTest(ProvisionedConcurrencyTest):
    BINARY = TSAN_BIN
    GAP_S = 0.5


@unittest.skipUnless(_tsan_usable(), _SKIP_TSAN)
class ManagedInstancesTsanTest(ManagedInstancesTest):
    BINARY = TSAN_BIN


del _InitFailure  # a base only: not collected as a test class itself

if __name__ == "__main__":
    unittest.main()
