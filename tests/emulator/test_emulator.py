"""The emulator's own test suite (unittest, standard library only).

Run from the repository root:
    python3 -m unittest discover -s tests/emulator -p 'test_*.py'
"""
import http.client
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lambda_emulator  # noqa: E402

PY = sys.executable or "/usr/bin/python3"
BOOT = os.path.join(HERE, "runtimes", "bootstrap.py")
PROBE = os.path.join(HERE, "probe_extension.py")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
UNSAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
FAST = b'{"action":"fast"}'


def wait_for(pred, timeout=5.0, interval=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def delivered_record(emu, rtype, request_id, timeout=5.0):
    """Wait (bounded) until a POST carrying a record of rtype for request_id is in
    emu.delivered; the POSTs that carried one (empty when none came in time).
    The probe logs what it received before it answers, and the emulator records the attempt
    only after the answer, so asserting on emu.delivered right after the probe saw a record
    races; wait for the emulator's own record instead."""
    def find():
        return [d for d in list(emu.delivered) if d["status"] == 200 and any(
            x["type"] == rtype and x["record"].get("requestId") == request_id
            for x in d["records"])]
    return wait_for(find, timeout)


def delivered_report(emu, request_id, timeout=5.0):
    return delivered_record(emu, "platform.report", request_id, timeout)


def raw(api, method, path, body=None, headers=None, timeout=5.0):
    host, port = api.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def err_type(data):
    return json.loads(data)["errorType"]


class Box:
    """A temporary sandbox root with probe extensions (wrapper scripts) and an Emulator."""

    def __init__(self, tc, probes=None, env=None, files=None, **kw):
        self.dir = tempfile.mkdtemp(prefix="lambda-emu-test-")
        tc.addCleanup(shutil.rmtree, self.dir, True)
        self.root = os.path.join(self.dir, "root")
        self.ext_dir = os.path.join(self.root, "opt", "extensions")
        os.makedirs(self.ext_dir)
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.logs)
        for name, knobs in (probes or {}).items():
            lines = ["#!/bin/sh", "export PROBE_EXT_NAME=%s" % shlex.quote(name), 'export PROBE_ARGV0="$0"']
            for k, v in (knobs or {}).items():
                lines.append("export %s=%s" % (k, shlex.quote(str(v))))
            lines.append('exec %s %s "$@"' % (shlex.quote(PY), shlex.quote(PROBE)))
            path = os.path.join(self.ext_dir, name)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.chmod(path, 0o755)
        for name, (content, mode) in (files or {}).items():
            path = os.path.join(self.ext_dir, name)
            if content is None:
                os.makedirs(path)
                continue
            with open(path, "w") as f:
                f.write(content)
            os.chmod(path, mode)
        e = {"PROBE_LOG_DIR": self.logs}
        e.update(env or {})
        kw.setdefault("timeout_s", 3)
        self.emu = lambda_emulator.Emulator(root=self.root, runtime=[PY, BOOT], env=e, **kw)
        tc.addCleanup(self.emu.close)

    def log(self, name, kind=None):
        path = os.path.join(self.logs, name + ".jsonl")
        if not os.path.exists(path):
            return []
        out = []
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    if kind is None or d["kind"] == kind:
                        out.append(d)
        return out

    def telemetry(self, name, rtype=None):
        return [d["record"] for d in self.log(name, "telemetry")
                if rtype is None or d["record"]["type"] == rtype]

    def events(self, name):
        return [d["event"] for d in self.log(name, "event")]

    def ext_id(self, name):
        reg = self.log(name, "register")[0]
        return {k.lower(): v for k, v in reg["headers"].items()}["lambda-extension-identifier"]


SUB = {"PROBE_SUBSCRIBE": "1"}


class ShapeTests(unittest.TestCase):
    def test_register_response_shape(self):
        box = Box(self, probes={"with-acct": {"PROBE_ACCEPT_FEATURE": "accountId"}, "plain": {}},
                  function_name="shape-fn", handler="my.handler")
        r = box.emu.start()
        self.assertEqual(r.status, "success")
        for name, acct in (("with-acct", True), ("plain", False)):
            reg = box.log(name, "register")[0]
            self.assertEqual(reg["status"], 200)
            hdrs = {k.lower(): v for k, v in reg["headers"].items()}
            self.assertEqual(str(uuid.UUID(hdrs["lambda-extension-identifier"])), hdrs["lambda-extension-identifier"])
            body = json.loads(reg["body"])
            want = {"functionName": "shape-fn", "functionVersion": "$LATEST", "handler": "my.handler"}
            if acct:
                want["accountId"] = "123456789012"
            self.assertEqual(body, want)
        ids = {box.ext_id("with-acct"), box.ext_id("plain")}
        self.assertEqual(len(ids), 2)

    def test_invoke_event_and_runtime_headers(self):
        box = Box(self, probes={"p": {}}, timeout_s=3)
        box.emu.start()
        before = int(time.time() * 1000)
        r = box.emu.invoke(b'{"action":"echo"}', trace_header=TRACE, client_context="eyJjIjoxfQ==")
        self.assertEqual(r.status, "success")
        ev = box.events("p")[0]
        self.assertEqual(set(ev), {"eventType", "deadlineMs", "requestId", "invokedFunctionArn", "tracing"})
        self.assertEqual(ev["eventType"], "INVOKE")
        self.assertIsInstance(ev["deadlineMs"], int)
        self.assertTrue(before + 2500 <= ev["deadlineMs"] <= before + 3500, ev["deadlineMs"] - before)
        self.assertEqual(ev["requestId"], r.request_id)
        self.assertEqual(ev["invokedFunctionArn"], "arn:aws:lambda:us-east-1:123456789012:function:demo-fn")
        self.assertEqual(ev["tracing"], {"type": "X-Amzn-Trace-Id", "value": TRACE})
        hdrs = {k.lower(): v for k, v in box.log("p", "event")[0]["headers"].items()}
        uuid.UUID(hdrs["lambda-extension-event-identifier"])
        self.assertEqual(hdrs["content-type"], "application/json")
        echo = json.loads(r.response)
        rh = echo["headers"]
        self.assertEqual(rh["lambda-runtime-aws-request-id"], r.request_id)
        self.assertEqual(int(rh["lambda-runtime-deadline-ms"]), ev["deadlineMs"])
        self.assertEqual(rh["lambda-runtime-invoked-function-arn"], ev["invokedFunctionArn"])
        self.assertEqual(rh["content-type"], "application/json")
        self.assertEqual(rh["lambda-runtime-client-context"], "eyJjIjoxfQ==")
        self.assertNotIn("lambda-runtime-cognito-identity", rh)
        start = [x for x in r.records if x["type"] == "platform.start"][0]["record"]
        span_id = start["tracing"]["spanId"]
        self.assertRegex(span_id, r"^[0-9a-f]{16}$")
        self.assertEqual(start["tracing"]["value"], TRACE)
        # Active tracing: the runtime's header names Lambda's segment as parent, keeps Root and Sampled
        self.assertEqual(rh["lambda-runtime-trace-id"],
                         "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=%s;Sampled=1" % span_id)

        # no caller header: Lambda (PassThrough, the default) makes one, not sampled
        r2 = box.emu.invoke(b'{"action":"echo"}')
        ev2 = box.events("p")[1]
        made = box.emu.trace_header_of(r2.request_id)
        self.assertRegex(made, r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")
        self.assertLessEqual(abs(int(made[7:15], 16) - time.time()), 60)
        self.assertEqual(ev2["tracing"], {"type": "X-Amzn-Trace-Id", "value": made})
        rh2 = json.loads(r2.response)["headers"]
        self.assertEqual(rh2["lambda-runtime-trace-id"], made)
        self.assertNotIn("lambda-runtime-client-context", rh2)
        start2 = [x for x in r2.records if x["type"] == "platform.start"][0]["record"]
        self.assertEqual(start2, {"requestId": r2.request_id, "version": "$LATEST"})

        r3 = box.emu.invoke(b'{"action":"echo"}', trace_header=UNSAMPLED)
        self.assertEqual(box.events("p")[2]["tracing"]["value"], UNSAMPLED)
        self.assertEqual(json.loads(r3.response)["headers"]["lambda-runtime-trace-id"], UNSAMPLED)
        start3 = [x for x in r3.records if x["type"] == "platform.start"][0]["record"]
        self.assertNotIn("tracing", start3)

    def test_lambda_made_headers_per_tracing_mode(self):
        # PassThrough (default): every header-less call gets a fresh Root and Parent, Sampled=0
        box = Box(self, probes={"p": {}})
        box.emu.start()
        rs = [box.emu.invoke(FAST) for _ in range(3)]
        made = [box.emu.trace_header_of(r.request_id) for r in rs]
        self.assertTrue(all(h.endswith(";Sampled=0") for h in made), made)
        self.assertEqual(len({h.split(";")[0] for h in made}), 3)
        self.assertEqual(len({h.split(";")[1] for h in made}), 3)
        self.assertEqual([e["tracing"]["value"] for e in box.events("p")], made)
        # a caller's header is never replaced
        r = box.emu.invoke(FAST, trace_header=UNSAMPLED)
        self.assertEqual(box.emu.trace_header_of(r.request_id), UNSAMPLED)
        with self.assertRaises(ValueError):
            lambda_emulator.Emulator(root=box.root, runtime=[PY, BOOT], tracing_mode="active")

    def test_active_mode_samples_by_xrays_default_rule(self):
        box = Box(self, probes={"p": {}}, tracing_mode="Active")
        box.emu.start()
        rs = box.emu.invoke_many([FAST] * 40)
        by_second = {}
        for r in rs:
            h = box.emu.trace_header_of(r.request_id)
            self.assertRegex(h, r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]$")
            by_second.setdefault(h[7:15], []).append(h.endswith("Sampled=1"))
        # the first call of each second is sampled; of the rest about 5 % (fewer than half, p < 1e-9)
        sampled = sum(sum(v) for v in by_second.values())
        self.assertGreaterEqual(sampled, len(by_second))
        self.assertTrue(all(any(v) for v in by_second.values()))
        self.assertLess(sampled - len(by_second), 20)
        # sampled ones carry tracing (with Lambda's spanId) in platform.start
        for r in rs:
            start = [x for x in r.records if x["type"] == "platform.start"][0]["record"]
            self.assertEqual("tracing" in start, box.emu.trace_header_of(r.request_id).endswith("Sampled=1"))

    def test_generate_trace_header_false_invents_none(self):
        box = Box(self, probes={"p": {}}, quirks={"generate_trace_header": False})
        box.emu.start()
        r = box.emu.invoke(b'{"action":"echo"}')
        self.assertIsNone(box.emu.trace_header_of(r.request_id))
        self.assertNotIn("tracing", box.events("p")[0])
        self.assertNotIn("lambda-runtime-trace-id", json.loads(r.response)["headers"])

    def test_shutdown_event_shape(self):
        box = Box(self, probes={"p": {}})
        box.emu.start()
        box.emu.invoke(FAST)
        t = int(time.time() * 1000)
        sd = box.emu.shutdown()
        ev = box.events("p")[-1]
        self.assertEqual(set(ev), {"eventType", "deadlineMs", "shutdownReason"})
        self.assertEqual(ev["eventType"], "SHUTDOWN")
        self.assertEqual(ev["shutdownReason"], "spindown")
        self.assertIsInstance(ev["deadlineMs"], int)
        self.assertTrue(t + 1500 <= ev["deadlineMs"] <= t + 2500, ev["deadlineMs"] - t)
        self.assertEqual(ev["deadlineMs"], sd.deadline_ms)
        self.assertEqual(sd.extensions["p"].exit_code, 0)
        self.assertFalse(sd.extensions["p"].killed)
        self.assertTrue(sd.extensions["p"].shutdown_delivered)
        self.assertLess(sd.extensions["p"].ms_to_exit, 1000)
        self.assertEqual(sd.runtime_exit_code, -signal.SIGTERM)

    def test_buffered_telemetry_flushed_before_shutdown_by_default(self):
        self.assertLess(self._report_after_shutdown_ns(Box(self, probes={"p": SUB})), 0)

    def test_flush_before_shutdown_waits_for_the_answer(self):
        # every POST takes 300 ms to answer: the flush of the last invocation's records (and of
        # the Init batch still in flight at the freeze) outlasts the runtime's exit; SHUTDOWN
        # still waits for it.  (The emulator used to request the flush and give SHUTDOWN at once:
        # the probe exited and never got the report.)
        # (an answer timeout longer than the budget: the wait is bounded by the deadline alone)
        box = Box(self, probes={"p": dict(SUB, PROBE_LISTENER="slow", PROBE_LISTENER_DELAY_MS="300")},
                  quirks={"delivery_timeout_ms": 3000})
        self.assertLess(self._report_after_shutdown_ns(box), 0)

    def test_flush_before_shutdown_does_not_wait_for_retries(self):
        # a failing listener: the first attempt is awaited, its retries are not (SHUTDOWN goes
        # out before the second attempt, the extension keeps its budget)
        box = Box(self, probes={"p": dict(SUB, PROBE_LISTENER="fail")},
                  quirks={"delivery_retries": 1, "delivery_backoff_ms": 1000})
        box.emu.start()
        box.emu.invoke(FAST)
        sd = box.emu.shutdown()
        t_sd = [d["t"] for d in box.log("p", "event") if d["event"]["eventType"] == "SHUTDOWN"][0]
        seconds = [d for d in box.emu.delivered if d["attempt"] == 2]
        self.assertTrue(all(d["t_mono_ns"] > t_sd for d in seconds), (t_sd, seconds))
        self.assertEqual(sd.extensions["p"].exit_code, 0)

    def test_flush_before_shutdown_is_bounded_by_one_answer_timeout(self):
        # a listener that never answers holds SHUTDOWN for one answer timeout, not the budget
        box = Box(self, probes={"p": dict(SUB, PROBE_LISTENER="slow", PROBE_LISTENER_DELAY_MS="5000")},
                  quirks={"delivery_timeout_ms": 300, "delivery_retries": 0})
        box.emu.start()
        box.emu.invoke(FAST)
        sd = box.emu.shutdown()
        ext = sd.extensions["p"]
        self.assertTrue(ext.shutdown_delivered)
        self.assertEqual((ext.exit_code, ext.killed), (0, False))
        sent = [c for c in box.emu.api_log if c.get("event") == "SHUTDOWN"]
        self.assertEqual(len(sent), 1)
        # given before the budget's end with most of it left: 2,000 ms minus one 300 ms timeout
        self.assertGreater(sd.deadline_ms - box.emu._epoch_ms(sent[0]["t_mono_ns"]), 1000)

    def test_quirk_shutdown_telemetry_delay_delivers_the_tail_after_shutdown(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_SHUTDOWN_DELAY_MS="600")},
                  quirks={"shutdown_telemetry_delay_ms": 150})
        self.assertGreaterEqual(self._report_after_shutdown_ns(box), 100_000_000)

    @staticmethod
    def _report_after_shutdown_ns(box):
        """One invoke, then a shutdown: when the probe got the invoke's report, relative to
        when it got SHUTDOWN."""
        box.emu.start()
        inv = box.emu.invoke(FAST)
        box.emu.shutdown()
        t_sd = [d["t"] for d in box.log("p", "event") if d["event"]["eventType"] == "SHUTDOWN"][0]
        t_rep = [d["t"] for d in box.log("p", "telemetry") if d["record"]["type"] == "platform.report"
                 and d["record"]["record"]["requestId"] == inv.request_id][0]
        return t_rep - t_sd

    def test_subscribe_answer_and_record(self):
        box = Box(self, probes={"p": SUB})
        box.emu.start()
        sub = box.log("p", "subscribe")[0]
        self.assertEqual(sub["status"], 200)
        self.assertEqual(sub["body"], '"OK"')
        recs = box.emu.records("platform.telemetrySubscription")
        self.assertEqual([r["record"] for r in recs],
                         [{"name": "p", "state": "Subscribed", "types": ["platform", "function", "extension"]}])

    def test_platform_record_shapes_and_order(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_SHUTDOWN_DELAY_MS="300")}, memory_mb=256)
        init = box.emu.start()
        r1 = box.emu.invoke(FAST, trace_header=TRACE)
        r2 = box.emu.invoke(FAST)
        box.emu.shutdown()
        recs = box.emu.emitted
        for rec in recs:
            self.assertEqual(set(rec), {"time", "type", "record"})
            self.assertRegex(rec["time"], ISO_RE)
        types = [r["type"] for r in recs if r["type"].startswith("platform.")]
        self.assertEqual(types, ["platform.initStart", "platform.telemetrySubscription",
                                 "platform.initRuntimeDone", "platform.extension", "platform.initReport",
                                 "platform.start", "platform.runtimeDone", "platform.report",
                                 "platform.start", "platform.runtimeDone", "platform.report"])
        by = {}
        for r in recs:
            by.setdefault(r["type"], []).append(r["record"])
        st = by["platform.initStart"][0]
        self.assertEqual(st["initializationType"], "on-demand")
        self.assertEqual(st["phase"], "init")
        self.assertEqual(st["functionName"], "demo-fn")
        self.assertEqual(st["functionVersion"], "$LATEST")
        self.assertEqual(st["instanceMaxMemory"], 256 * 1024 * 1024)
        self.assertRegex(st["instanceId"], r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")
        self.assertEqual(by["platform.initRuntimeDone"][0],
                         {"initializationType": "on-demand", "phase": "init", "status": "success"})
        self.assertEqual(by["platform.extension"][0], {"name": "p", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]})
        ir = by["platform.initReport"][0]
        self.assertEqual(set(ir), {"initializationType", "phase", "status", "metrics"})
        self.assertEqual(ir["metrics"]["durationMs"], init.duration_ms)
        start = by["platform.start"][0]
        self.assertEqual(set(start), {"requestId", "version", "tracing"})
        rd = by["platform.runtimeDone"][0]
        self.assertEqual(rd["requestId"], r1.request_id)
        self.assertEqual(rd["status"], "success")
        self.assertNotIn("errorType", rd)
        self.assertEqual(set(rd["metrics"]), {"durationMs", "producedBytes"})
        self.assertEqual(rd["metrics"]["producedBytes"], len(r1.response))
        self.assertEqual([s["name"] for s in rd["spans"]], ["responseLatency", "responseDuration", "runtimeOverhead"])
        for s in rd["spans"]:
            self.assertEqual(set(s), {"name", "start", "durationMs"})
            self.assertRegex(s["start"], ISO_RE)
            self.assertGreaterEqual(s["durationMs"], 0)
        self.assertEqual(rd["tracing"], start["tracing"])
        rep1, rep2 = by["platform.report"]
        self.assertEqual(rep1["requestId"], r1.request_id)
        self.assertEqual(rep1["status"], "success")
        m = rep1["metrics"]
        self.assertEqual(set(m), {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"})
        self.assertEqual(m["initDurationMs"], init.duration_ms)
        self.assertEqual(m["billedDurationMs"], math.ceil(m["durationMs"]))
        self.assertIsInstance(m["billedDurationMs"], int)
        self.assertEqual(m["memorySizeMB"], 256)
        self.assertGreater(m["maxMemoryUsedMB"], 5)       # two python processes really run
        self.assertLessEqual(m["maxMemoryUsedMB"], 256)
        self.assertEqual([s["name"] for s in rep1["spans"]], ["extensionOverhead"])
        self.assertNotIn("initDurationMs", rep2["metrics"])
        self.assertNotIn("tracing", rep2)
        self.assertEqual(rep2["requestId"], r2.request_id)
        # log lines: strings with the trailing newline, function + extension
        fn = [r["record"] for r in recs if r["type"] == "function"]
        self.assertTrue(fn and all(isinstance(x, str) and x.endswith("\n") for x in fn))
        self.assertTrue(any("\tfast\n" in x and r1.request_id in x for x in fn))
        ex = [r["record"] for r in recs if r["type"] == "extension"]
        self.assertTrue(any("[p] INVOKE %s" % r1.request_id in x for x in ex))
        self.assertIn("[p] probe p started", " ".join(box.emu.output("p")))
        # the subscriber received the same records (records before its subscription included)
        got = box.telemetry("p")
        self.assertEqual(got[0]["type"], "platform.initStart")
        self.assertEqual([g["type"] for g in got if g["type"].startswith("platform.")], types)

    def test_environment_of_extensions_and_runtime(self):
        os.environ["LAMBDA_EMU_LEAK_CHECK"] = "leak"
        self.addCleanup(os.environ.pop, "LAMBDA_EMU_LEAK_CHECK", None)
        box = Box(self, probes={"envprobe": {"PROBE_DUMP_ENV": "1"}},
                  env={"CUSTOMER_VAR": "c", "_HIDDEN": "h", "LAMBDA_TRACER_LOG_LEVEL": "debug"},
                  function_name="env-fn", memory_mb=512, region="eu-west-1")
        box.emu.start()
        env = box.log("envprobe", "start")[0]["env"]
        self.assertEqual(env["AWS_LAMBDA_RUNTIME_API"], box.emu.runtime_api)
        self.assertNotEqual(box.emu.runtime_api, "127.0.0.1:9001")
        for k, v in {"AWS_LAMBDA_FUNCTION_NAME": "env-fn", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                     "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_REGION": "eu-west-1",
                     "AWS_DEFAULT_REGION": "eu-west-1", "TZ": ":UTC", "CUSTOMER_VAR": "c",
                     "LAMBDA_TRACER_LOG_LEVEL": "debug", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}.items():
            self.assertEqual(env.get(k), v, k)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            self.assertTrue(env.get(k), k)
        for k in ("_HIDDEN", "_HANDLER", "AWS_XRAY_DAEMON_ADDRESS", "AWS_LAMBDA_LOG_GROUP_NAME",
                  "AWS_LAMBDA_LOG_STREAM_NAME", "LAMBDA_TASK_ROOT", "_AWS_XRAY_DAEMON_ADDRESS",
                  "LAMBDA_EMU_LEAK_CHECK", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
            self.assertNotIn(k, env)
        self.assertEqual(env["PROBE_ARGV0"], os.path.join(box.ext_dir, "envprobe"))
        r = box.emu.invoke(b'{"action":"env"}')
        renv = json.loads(r.response)["env"]
        self.assertEqual(renv["_HANDLER"], "function.handler")
        self.assertEqual(renv["_HIDDEN"], "h")
        self.assertEqual(renv["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/env-fn")
        self.assertEqual(renv["AWS_LAMBDA_LOG_STREAM_NAME"],
                         box.emu.records("platform.initStart")[0]["record"]["instanceId"])
        self.assertTrue(renv["AWS_XRAY_DAEMON_ADDRESS"].startswith("127.0.0.1:"))
        self.assertEqual(renv["AWS_LAMBDA_RUNTIME_API"], box.emu.runtime_api)
        self.assertNotIn("LAMBDA_EMU_LEAK_CHECK", renv)

    def test_extension_discovery(self):
        box = Box(self, probes={"b-probe": {}, "a-probe": {}},
                  files={"notes.txt": ("not executable\n", 0o644), "subdir": (None, 0)})
        r = box.emu.start()
        self.assertEqual(r.status, "success")
        self.assertEqual(list(r.extensions), ["a-probe", "b-probe"])
        launches = [e["who"] for e in box.emu.process_log if e["event"] == "launch"]
        self.assertEqual(launches, ["a-probe", "b-probe", "runtime"])


class OrderingTests(unittest.TestCase):
    def test_runtime_starts_after_every_registration(self):
        box = Box(self, probes={"slowreg": {"PROBE_INIT_SLEEP_MS": "400"}, "fastreg": {}})
        r = box.emu.start()
        self.assertEqual(r.status, "success")
        box.emu.invoke(FAST)     # long-polls are logged when answered
        regs = [e for e in box.emu.api_log if e["path"].endswith("/extension/register")]
        self.assertEqual(sorted(e["who"] for e in regs), ["fastreg", "slowreg"])
        rt_launch = [e for e in box.emu.process_log if e["event"] == "launch" and e["who"] == "runtime"][0]
        self.assertGreater(rt_launch["t_mono_ns"], max(e["t_mono_ns"] for e in regs))
        first_rt = [e for e in box.emu.api_log if e["api"] == "runtime"][0]
        self.assertGreater(first_rt["t_req_ns"], max(e["t_mono_ns"] for e in regs))
        self.assertGreaterEqual(r.duration_ms, 400)

    def test_init_waits_for_every_extension_next(self):
        box = Box(self, probes={"lazy": {"PROBE_BEFORE_NEXT_MS": "500"}})
        r = box.emu.start()
        self.assertEqual(r.status, "success")
        self.assertGreaterEqual(r.duration_ms, 500)
        box.emu.invoke(FAST)     # long-polls are logged when answered
        first_next = [e for e in box.emu.api_log if e["path"].endswith("/event/next")][0]
        rt_next = [e for e in box.emu.api_log if e["path"].endswith("/invocation/next")][0]
        self.assertLess(rt_next["t_req_ns"], first_next["t_req_ns"])      # runtime was ready long before
        done = box.emu.records("platform.initRuntimeDone")[0]
        t_done = lambda_emulator.datetime.datetime.strptime(done["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=lambda_emulator.datetime.timezone.utc).timestamp() * 1000
        self.assertGreaterEqual(t_done, box.emu._epoch_ms(first_next["t_req_ns"]) - 1)

    def test_report_of_n_arrives_after_invoke_of_n_plus_1_when_frozen(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_SHUTDOWN_DELAY_MS="300")}, freeze=True)
        box.emu.start()
        r1 = box.emu.invoke(FAST)
        r2 = box.emu.invoke(b'{"action":"slow","ms":300}')     # usually long enough for the thawed dispatcher
        if not delivered_report(box.emu, r1.request_id, 0):
            box.emu.shutdown()                                 # a loaded machine: thaw until it is out
        self.assertTrue(delivered_report(box.emu, r1.request_id))
        # nothing is delivered while the sandbox is frozen
        intervals, frozen_at = [], None
        for e in box.emu.process_log:
            if e["event"] == "freeze":
                frozen_at = e["t_mono_ns"]
            elif e["event"] == "thaw" and frozen_at is not None:
                intervals.append((frozen_at, e["t_mono_ns"]))
                frozen_at = None
        for d in box.emu.delivered:
            for a, b in intervals:
                self.assertFalse(a < d["t_mono_ns"] < b, "delivery while frozen")
        invoke2 = [e for e in box.emu.api_log if e.get("event") == "INVOKE" and e["who"] == "p"
                   and e.get("request_id") == r2.request_id][0]
        rep1 = delivered_report(box.emu, r1.request_id)
        self.assertTrue(rep1)
        self.assertGreater(rep1[0]["t_mono_ns"], invoke2["t_mono_ns"])
        # and from the extension's side: report r1 reached it only after INVOKE r2 had been
        # written to its /event/next (same monotonic clock; which of its two threads logs first
        # after the thaw is up to the scheduler, as on Lambda)
        t_rep1 = next(d["t"] for d in box.log("p", "telemetry") if d["record"]["type"] == "platform.report"
                      and d["record"]["record"]["requestId"] == r1.request_id)
        self.assertGreater(t_rep1, invoke2["t_mono_ns"])

    def test_without_freeze_report_arrives_before_next_invoke(self):
        box = Box(self, probes={"p": SUB}, freeze=False)
        box.emu.start()
        r1 = box.emu.invoke(FAST)
        self.assertTrue(wait_for(lambda: box.telemetry("p", "platform.report"), 3))
        r2 = box.emu.invoke(FAST)
        log = box.log("p")
        i_inv2 = next(i for i, d in enumerate(log) if d["kind"] == "event" and d["event"].get("requestId") == r2.request_id)
        i_rep1 = next(i for i, d in enumerate(log) if d["kind"] == "telemetry"
                      and d["record"]["type"] == "platform.report" and d["record"]["record"]["requestId"] == r1.request_id)
        self.assertLess(i_rep1, i_inv2)
        self.assertFalse([e for e in box.emu.process_log if e["event"] == "freeze"])

    def test_invoke_held_open_until_extension_next(self):
        box = Box(self, probes={"holder": {"PROBE_HOLD_MS": "300"}})
        box.emu.start()
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        rep = [x for x in r.records if x["type"] == "platform.report"][0]["record"]
        self.assertGreaterEqual(rep["metrics"]["durationMs"], 300)
        self.assertGreaterEqual(rep["spans"][0]["durationMs"], 250)
        rd = [x for x in r.records if x["type"] == "platform.runtimeDone"][0]["record"]
        self.assertLess(rd["metrics"]["durationMs"], 250)
        types = [x["type"] for x in r.records if x["type"].startswith("platform.")]
        self.assertEqual(types, ["platform.start", "platform.runtimeDone", "platform.report"])

    def test_report_duration_covers_runtime_when_extension_is_quick(self):
        # The extension calls next right after INVOKE; the runtime takes 300 ms.  The invoke ends
        # at the later of the two, so report.durationMs >= runtimeDone.durationMs (it was 1.7 ms).
        box = Box(self, probes={"quick": {}})
        box.emu.start()
        r = box.emu.invoke(b'{"action":"slow","ms":300}')
        self.assertEqual(r.status, "success")
        rd = [x["record"] for x in r.records if x["type"] == "platform.runtimeDone"][0]
        rep = [x["record"] for x in r.records if x["type"] == "platform.report"][0]
        self.assertGreaterEqual(rep["metrics"]["durationMs"], rd["metrics"]["durationMs"])
        self.assertGreaterEqual(rep["metrics"]["durationMs"], 300)
        self.assertLess(rep["metrics"]["durationMs"], 300 + 250)
        self.assertEqual(rep["metrics"]["billedDurationMs"], math.ceil(rep["metrics"]["durationMs"]))
        self.assertEqual(r.duration_ms, rep["metrics"]["durationMs"])
        self.assertEqual(r.billed_duration_ms, rep["metrics"]["billedDurationMs"])
        self.assertEqual(rep["spans"][0]["name"], "extensionOverhead")
        self.assertEqual(rep["spans"][0]["durationMs"], 0.0)

    def test_extension_timeout_counts_against_deadline(self):
        box = Box(self, probes={"holder": {"PROBE_HOLD_MS": "1500"}}, timeout_s=1)
        box.emu.start()
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "timeout")
        self.assertEqual(r.duration_ms, 1000.0)
        rd = [x for x in r.records if x["type"] == "platform.runtimeDone"]
        self.assertEqual(rd[0]["record"]["status"], "success")   # the runtime itself was done in time
        self.assertEqual(box.events("holder")[-1]["shutdownReason"], "timeout")


class BatchingTests(unittest.TestCase):
    def test_max_items_and_max_bytes(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_BUFFERING=json.dumps(
            {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 100}))}, freeze=False)
        box.emu.start()
        r = box.emu.invoke(b'{"action":"log","lines":2500,"bytes":40}')
        self.assertEqual(r.status, "success")
        r = box.emu.invoke(b'{"action":"log","lines":1500,"bytes":400}')
        self.assertTrue(delivered_report(box.emu, r.request_id))
        self.assertTrue(wait_for(lambda: any(x["type"] == "platform.report" and x["record"]["requestId"] == r.request_id
                                             for x in box.telemetry("p")), 5))
        counts = [len(d["records"]) for d in box.emu.delivered]
        self.assertLessEqual(max(counts), 1000)
        self.assertIn(1000, counts)
        self.assertTrue(all(d["bytes"] <= 262144 for d in box.emu.delivered))
        self.assertTrue(any(d["bytes"] > 200000 for d in box.emu.delivered))
        lines = [x for x in box.telemetry("p", "function") if x["record"].startswith("log line ")]
        self.assertEqual(len(lines), 4000)
        self.assertEqual([int(x["record"].split()[2]) for x in lines[:2500]], list(range(2500)))

    def test_timeout_ms_honoured(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_BUFFERING=json.dumps(
            {"maxItems": 10000, "maxBytes": 1048576, "timeoutMs": 400}))}, freeze=False)
        box.emu.start()
        self.assertTrue(wait_for(lambda: any(x["type"] == "platform.initReport" for d in list(box.emu.delivered)
                                             for x in d["records"]), 3))
        n0 = len(box.emu.delivered)
        r = box.emu.invoke(FAST)
        self.assertTrue(delivered_report(box.emu, r.request_id))
        for d in box.emu.delivered[n0:]:
            first = d["records"][0]["time"]
            t_first = lambda_emulator.datetime.datetime.strptime(first, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=lambda_emulator.datetime.timezone.utc).timestamp() * 1000
            sent = box.emu._epoch_ms(d["t_mono_ns"])
            self.assertGreaterEqual(sent - t_first, 400 - 2)
            self.assertLess(sent - t_first, 400 + 300)
        self.assertEqual(r.status, "success")

    def test_defaults_when_buffering_omitted(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_BUFFERING="null")})
        box.emu.start()
        s = box.emu.subscribers()["p"]
        self.assertEqual((s["maxItems"], s["maxBytes"], s["timeoutMs"]), (10000, 262144, 1000))


class DeliveryFailureTests(unittest.TestCase):
    def test_failing_subscriber_retries_then_logs_dropped(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_LISTENER="fail")}, freeze=False,
                  quirks={"delivery_retries": 2, "delivery_backoff_ms": 20})
        box.emu.start()
        box.emu.invoke(FAST)
        self.assertTrue(wait_for(lambda: box.emu.records("platform.logsDropped"), 5))
        first = box.emu.delivered[:3]
        self.assertEqual([d["attempt"] for d in first], [1, 2, 3])
        self.assertEqual([d["status"] for d in first], [500, 500, 500])
        self.assertEqual(first[0]["records"], first[2]["records"])
        self.assertGreaterEqual(first[1]["t_mono_ns"] - first[0]["t_done_ns"], 18e6)   # backoff
        self.assertGreaterEqual(first[2]["t_mono_ns"] - first[1]["t_done_ns"], 38e6)   # doubled
        dropped = box.emu.records("platform.logsDropped")[0]["record"]
        self.assertEqual(dropped["droppedRecords"], len(first[0]["records"]))
        self.assertEqual(dropped["droppedBytes"], sum(len(json.dumps(r, separators=(",", ":")).encode())
                                                      for r in first[0]["records"]))
        self.assertEqual(set(dropped), {"droppedBytes", "droppedRecords", "reason"})
        self.assertIsInstance(dropped["reason"], str)
        posts = box.log("p", "post")
        self.assertGreaterEqual(len(posts), 3)
        self.assertEqual(posts[0]["content_type"], "application/json")
        self.assertEqual(posts[0]["path"], "/telemetry")

    def test_slow_subscriber_times_out(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_LISTENER="slow", PROBE_LISTENER_DELAY_MS="1500")},
                  freeze=False, quirks={"delivery_retries": 0, "delivery_timeout_ms": 200})
        box.emu.start()
        self.assertTrue(wait_for(lambda: box.emu.records("platform.logsDropped"), 5))
        d = box.emu.delivered[0]
        self.assertIsInstance(d["status"], str)
        self.assertIn("Timeout", d["status"])
        self.assertLess((d["t_done_ns"] - d["t_mono_ns"]) / 1e6, 600)

    def test_retry_recovers(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_LISTENER="fail_first:1")}, freeze=False,
                  quirks={"delivery_backoff_ms": 10})
        box.emu.start()
        r = box.emu.invoke(FAST)
        self.assertTrue(wait_for(lambda: any(x["type"] == "platform.runtimeDone" for x in box.telemetry("p")), 5))
        # the probe logs a POST before answering it; the emulator records the attempt after the
        # answer: wait for the second attempt to be recorded instead of racing it
        self.assertTrue(wait_for(lambda: len(box.emu.delivered) >= 2, 5))
        self.assertEqual(box.emu.delivered[0]["status"], 500)
        self.assertEqual(box.emu.delivered[1]["status"], 200)
        self.assertEqual(box.emu.delivered[1]["attempt"], 2)
        self.assertEqual(box.telemetry("p")[0]["type"], "platform.initStart")
        self.assertFalse(box.emu.records("platform.logsDropped"))
        self.assertEqual(r.status, "success")

    def test_tcp_destination(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_TCP="1")}, freeze=False)
        box.emu.start()
        r = box.emu.invoke(FAST)
        self.assertTrue(wait_for(lambda: any(x["type"] == "platform.runtimeDone" for x in box.telemetry("p")), 5))
        self.assertEqual(box.telemetry("p")[0]["type"], "platform.initStart")
        self.assertEqual(r.status, "success")

    def test_send_raw_telemetry_reaches_frozen_listener(self):
        box = Box(self, probes={"p": SUB}, freeze=True)
        box.emu.start()
        box.emu.invoke(FAST)
        status, body = box.emu.send_raw_telemetry("p", b"[{\"garbage\": ")
        self.assertEqual(status, 200)
        self.assertTrue(any(d["bytes"] == 13 for d in box.log("p", "post")))
        self.assertEqual(box.emu.invoke(FAST).status, "success")


class FailureTests(unittest.TestCase):
    def test_function_timeout_resets_and_reinits(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_SHUTDOWN_DELAY_MS="100")}, timeout_s=1)
        init = box.emu.start()
        old_pids = (box.emu.runtime_pid(), box.emu.extension_pids()["p"])
        t0 = time.monotonic()
        r = box.emu.invoke(b'{"action":"sleep","ms":5000}')
        self.assertLess(time.monotonic() - t0, 3.5)
        self.assertEqual(r.status, "timeout")
        self.assertIsNone(r.error_type)
        rd = [x["record"] for x in r.records if x["type"] == "platform.runtimeDone"][0]
        self.assertEqual(rd["status"], "timeout")
        self.assertNotIn("errorType", rd)
        rep = [x["record"] for x in r.records if x["type"] == "platform.report"][0]
        self.assertEqual(rep["status"], "timeout")
        self.assertNotIn("errorType", rep)
        self.assertEqual(rep["metrics"]["durationMs"], 1000.0)
        self.assertEqual(rep["metrics"]["billedDurationMs"], 1000)
        self.assertEqual(box.events("p")[-1]["shutdownReason"], "timeout")
        self.assertEqual(r.shutdown.reason, "timeout")
        self.assertEqual(r.shutdown.runtime_exit_code, -signal.SIGTERM)
        # next invoke: suppressed init, new processes, phase invoke, "Already subscribed"
        r2 = box.emu.invoke(FAST)
        self.assertEqual(r2.status, "success")
        self.assertTrue(r2.init_phase_ran)
        self.assertEqual(r2.init.phase, "invoke")
        new_pids = (box.emu.runtime_pid(), box.emu.extension_pids()["p"])
        self.assertNotEqual(old_pids[0], new_pids[0])
        self.assertNotEqual(old_pids[1], new_pids[1])
        types = [x["type"] for x in r2.records if x["type"].startswith("platform.")]
        self.assertEqual(types[:5], ["platform.initStart", "platform.telemetrySubscription", "platform.initRuntimeDone",
                                     "platform.extension", "platform.initReport"])
        self.assertEqual(types[5:], ["platform.start", "platform.runtimeDone", "platform.report"])
        self.assertEqual(r2.records[0]["record"]["phase"], "invoke")
        self.assertEqual([x["record"]["state"] for x in r2.records if x["type"] == "platform.telemetrySubscription"],
                         ["Already subscribed"])
        rep2 = [x["record"] for x in r2.records if x["type"] == "platform.report"][0]
        self.assertNotIn("initDurationMs", rep2["metrics"])
        self.assertGreaterEqual(rep2["metrics"]["durationMs"], r2.init.duration_ms)
        self.assertEqual(init.phase, "init")
        # the new extension process receives the re-init records
        self.assertTrue(wait_for(lambda: any(
            x["type"] == "platform.initStart" and x["record"]["phase"] == "invoke" for x in box.telemetry("p")), 3))

    def test_reset_after_idle_crash_is_not_billed_to_next_invoke(self):
        # the runtime dies while the sandbox is idle; the reset (which waits 600 ms for the
        # extension's SHUTDOWN handling) runs before the next invocation, not inside it
        box = Box(self, probes={"p": {"PROBE_SHUTDOWN_DELAY_MS": "600"}}, freeze=False, timeout_s=3)
        box.emu.start()
        os.kill(box.emu.runtime_pid(), signal.SIGKILL)
        self.assertTrue(wait_for(lambda: any(e["event"] == "exit" and e["who"] == "runtime"
                                             for e in box.emu.process_log), 3))
        t_call = int(time.time() * 1000)
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        self.assertEqual(r.init.phase, "invoke")
        self.assertEqual(box.log("p", "event")[0]["event"]["shutdownReason"], "failure")
        self.assertLess(r.duration_ms, r.init.duration_ms + 300)
        ev = box.events("p")[-1]
        self.assertEqual(ev["eventType"], "INVOKE")
        self.assertGreater(ev["deadlineMs"] - t_call, 3000 - 300)   # the reset did not eat the deadline

    def test_runtime_crash_exit_code(self):
        box = Box(self, probes={"p": {}})
        box.emu.start()
        r = box.emu.invoke(b'{"action":"crash","code":3}')
        self.assertEqual((r.status, r.error_type), ("error", "Runtime.ExitError"))
        self.assertEqual(r.exit_code, 3)
        rd = [x["record"] for x in r.records if x["type"] == "platform.runtimeDone"][0]
        self.assertEqual((rd["status"], rd["errorType"]), ("error", "Runtime.ExitError"))
        rep = [x["record"] for x in r.records if x["type"] == "platform.report"][0]
        self.assertEqual((rep["status"], rep["errorType"]), ("error", "Runtime.ExitError"))
        self.assertEqual(box.events("p")[-1]["shutdownReason"], "failure")
        self.assertTrue(any("crash: exiting with code 3" in x for x in box.emu.output("runtime")))
        r2 = box.emu.invoke(b'{"action":"crash","signal":"SIGSEGV"}')
        self.assertTrue(r2.init_phase_ran)
        self.assertEqual((r2.status, r2.error_type, r2.exit_signal), ("error", "Runtime.ExitError", "SIGSEGV"))
        # shutting down an environment that was already reset has nothing left to stop
        sd = box.emu.shutdown()
        self.assertEqual((sd.extensions, sd.runtime_exit_code), ({}, None))
        self.assertEqual(box.emu.invoke(FAST).status, "success")

    def test_handled_error(self):
        box = Box(self, probes={"p": {}})
        box.emu.start()
        pids = box.emu.extension_pids()
        r = box.emu.invoke(b'{"action":"error","type":"Function.MyError","message":"boom"}')
        self.assertEqual((r.status, r.error_type), ("error", "Function.MyError"))
        self.assertEqual(r.function_error["errorMessage"], "boom")
        rd = [x["record"] for x in r.records if x["type"] == "platform.runtimeDone"][0]
        self.assertEqual((rd["status"], rd["errorType"]), ("error", "Function.MyError"))
        self.assertIsNone(r.shutdown)
        self.assertEqual(box.emu.extension_pids(), pids)                  # no reset
        r = box.emu.invoke(b'{"action":"error","type":"Unhandled"}')
        self.assertEqual(r.error_type, "Runtime.Unknown")
        r = box.emu.invoke(b'{"action":"error","type":"Function.lowercase"}')
        self.assertEqual(r.error_type, "Runtime.Unknown")
        self.assertFalse(r.init_phase_ran)

    def test_handled_error_classic_quirk(self):
        box = Box(self, quirks={"handled_error_status": "success"})
        box.emu.start()
        r = box.emu.invoke(b'{"action":"error","type":"Function.MyError"}')
        self.assertEqual(r.status, "success")
        rd = [x["record"] for x in r.records if x["type"] == "platform.runtimeDone"][0]
        self.assertEqual(rd["status"], "success")
        self.assertNotIn("errorType", rd)
        self.assertEqual(r.function_error["errorType"], "Function.MyError")

    def test_out_of_memory(self):
        box = Box(self, probes={"p": {}}, memory_mb=128)
        box.emu.start()
        r = box.emu.invoke(b'{"action":"oom","mb":400}')
        self.assertEqual((r.status, r.error_type), ("error", "Runtime.OutOfMemory"))
        rep = [x["record"] for x in r.records if x["type"] == "platform.report"][0]
        self.assertEqual(rep["errorType"], "Runtime.OutOfMemory")
        self.assertEqual(rep["metrics"]["maxMemoryUsedMB"], 128)
        self.assertEqual(box.events("p")[-1]["shutdownReason"], "failure")
        self.assertEqual(r.exit_signal, "SIGKILL")

    def test_memory_measured_from_process_tree(self):
        box = Box(self, memory_mb=512)
        box.emu.start()
        base = box.emu.invoke(FAST).max_memory_used_mb
        r = box.emu.invoke(b'{"action":"oom","mb":80}')
        self.assertEqual(r.status, "success")
        self.assertGreaterEqual(r.max_memory_used_mb, base + 70)
        self.assertLess(r.max_memory_used_mb, 512)

    def test_grow_holds_memory_across_invocations(self):
        # a leak: what each call allocates stays, so maxMemoryUsedMB climbs call by call
        box = Box(self, memory_mb=512)
        box.emu.start()
        base = box.emu.invoke(FAST).max_memory_used_mb
        got = [box.emu.invoke(b'{"action":"grow","mb":30}') for _ in range(3)]
        self.assertEqual([r.status for r in got], ["success"] * 3)
        mb = [r.max_memory_used_mb for r in got]
        for before, after in zip([base] + mb, mb):
            self.assertGreaterEqual(after, before + 25)
        self.assertLess(mb[-1], base + 3 * 30 + 20)
        self.assertTrue(any("grow: holding 30 MB (90 MB in all)" in x for x in box.emu.output("runtime")))
        # a fast call still holds it all
        self.assertGreaterEqual(box.emu.invoke(FAST).max_memory_used_mb, mb[-1] - 5)

    def test_crash_after_a_while(self):
        box = Box(self)
        box.emu.start()
        r = box.emu.invoke(b'{"action":"crash","signal":"SIGSEGV","after_ms":400}')
        self.assertEqual((r.status, r.error_type, r.exit_signal), ("error", "Runtime.ExitError", "SIGSEGV"))
        self.assertGreaterEqual(r.duration_ms, 400)
        self.assertTrue(any("crash: in 400 ms" in x for x in box.emu.output("runtime")))

    def test_response_too_large(self):
        box = Box(self)
        box.emu.start()
        r = box.emu.invoke(b'{"action":"big","bytes":7000000}')
        self.assertEqual((r.status, r.error_type), ("error", "Function.ResponseSizeTooLarge"))
        resp = [e for e in box.emu.api_log if e["path"].endswith("/response")][0]
        self.assertEqual((resp["status"], resp["error_type"]), (413, "RequestEntityTooLarge"))
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        # the limit is RIE's 6 MiB + 100 bytes: the largest accepted body, then one byte more
        limit = 6 * 1024 * 1024 + 100
        r = box.emu.invoke(json.dumps({"action": "big", "bytes": limit}).encode())
        self.assertEqual((r.status, len(r.response)), ("success", limit))
        rd = [x["record"] for x in r.records if x["type"] == "platform.runtimeDone"][0]
        self.assertEqual(rd["metrics"]["producedBytes"], limit)
        r = box.emu.invoke(json.dumps({"action": "big", "bytes": limit + 1}).encode())
        self.assertEqual((r.status, r.error_type), ("error", "Function.ResponseSizeTooLarge"))

    def test_runtime_init_error_then_suppressed_init(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_SHUTDOWN_DELAY_MS="50")},
                  env={"DEMO_INIT_FAIL": "1", "DEMO_INIT_ERROR_TYPE": "Runtime.BadConfig"})
        r = box.emu.start()
        self.assertEqual((r.status, r.error_type), ("error", "Runtime.BadConfig"))
        rep = box.emu.records("platform.initReport")[0]["record"]
        self.assertEqual((rep["status"], rep["errorType"], rep["phase"]), ("error", "Runtime.BadConfig", "init"))
        ird = box.emu.records("platform.initRuntimeDone")[0]["record"]
        self.assertEqual((ird["status"], ird["errorType"]), ("error", "Runtime.BadConfig"))
        self.assertEqual(box.events("p")[-1]["shutdownReason"], "failure")
        self.assertEqual([e for e in box.emu.api_log if e["path"].endswith("/init/error")][0]["status"], 202)
        inv = box.emu.invoke(FAST)
        self.assertTrue(inv.init_phase_ran)
        self.assertEqual(inv.init.phase, "invoke")
        self.assertEqual((inv.status, inv.error_type), ("error", "Runtime.BadConfig"))
        starts = box.emu.records("platform.initStart")
        self.assertEqual([s["record"]["phase"] for s in starts], ["init", "invoke"])
        self.assertEqual([s["record"]["state"] for s in box.emu.records("platform.telemetrySubscription")],
                         ["Subscribed", "Already subscribed"])

    def test_init_timeout_retried_under_function_timeout(self):
        box = Box(self, probes={"p": {}}, env={"DEMO_INIT_MS": "1300"}, init_timeout_s=1.0, timeout_s=3)
        r = box.emu.start()
        self.assertEqual(r.status, "timeout")
        self.assertEqual([x["record"]["status"] for x in box.emu.records("platform.initReport")], ["timeout"])
        t_call = int(time.time() * 1000)
        inv = box.emu.invoke(FAST)
        self.assertEqual(inv.status, "success")
        self.assertEqual(inv.init.phase, "invoke")
        self.assertGreaterEqual(inv.duration_ms, 1300)
        ev = box.events("p")[-1]
        self.assertEqual(ev["eventType"], "INVOKE")
        self.assertLess(abs(ev["deadlineMs"] - (t_call + 3000)), 300)      # the re-init used up part of it
        self.assertEqual([x["record"]["phase"] for x in box.emu.records("platform.initStart")], ["init", "invoke"])

    def test_init_timeout_when_extension_never_registers(self):
        box = Box(self, probes={"mute": {"PROBE_NO_REGISTER": "1"}}, init_timeout_s=1.0)
        t0 = time.monotonic()
        r = box.emu.start()
        self.assertLess(time.monotonic() - t0, 3.5)
        self.assertEqual(r.status, "timeout")
        self.assertGreaterEqual(r.duration_ms, 1000)
        self.assertIsNone(r.runtime_pid)                    # runtime never started
        self.assertTrue(r.shutdown.extensions["mute"].killed)
        rep = box.emu.records("platform.initReport")[0]["record"]
        self.assertEqual(rep["status"], "timeout")

    def test_extension_crash_during_init(self):
        box = Box(self, probes={"boom": {"PROBE_CRASH": "after_register"}, "ok": {}})
        r = box.emu.start()
        self.assertEqual((r.status, r.error_type), ("error", "Extension.Crash"))
        exts = {x["record"]["name"]: x["record"] for x in box.emu.records("platform.extension")}
        self.assertEqual(exts["boom"]["errorType"], "Extension.Crash")

    def test_extension_crash_during_invoke(self):
        box = Box(self, probes={"boom": {"PROBE_CRASH": "invoke", "PROBE_CRASH_AT": "2"}, "ok": {}})
        box.emu.start()
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        r = box.emu.invoke(FAST)
        self.assertEqual((r.status, r.error_type), ("error", "Extension.Crash"))
        self.assertEqual(box.events("ok")[-1]["shutdownReason"], "failure")
        self.assertEqual(r.shutdown.extensions["boom"].exit_code, 3)
        r3 = box.emu.invoke(FAST)
        self.assertTrue(r3.init_phase_ran)
        self.assertEqual(r3.status, "success")

    def test_extension_init_error(self):
        box = Box(self, probes={"bad": {"PROBE_INIT_ERROR": "1"}})
        r = box.emu.start()
        self.assertEqual((r.status, r.error_type), ("error", "Extension.InitError"))
        call = box.log("bad", "call")[0]
        self.assertEqual((call["status"], json.loads(call["body"])), (202, {"status": "OK"}))

    def test_extension_exit_error(self):
        box = Box(self, probes={"bad": {"PROBE_EXIT_ERROR": "1"}})
        box.emu.start()
        r = box.emu.invoke(FAST)
        self.assertEqual((r.status, r.error_type), ("error", "Extension.ExitError"))
        call = box.log("bad", "call")[0]
        self.assertEqual((call["what"], call["status"]), ("exit/error", 202))


class FaultKnobTests(unittest.TestCase):
    """The fault knobs (README "Fault knobs"): each does what it says, once, and nothing else."""

    def test_register_fault_answered_then_real_registration(self):
        body = '{"errorMessage":"injected","errorType":"Extension.Unknown"}'
        box = Box(self, probes={"p": {}}, faults={"register_faults": [{"status": 500, "body": body}]})
        r = box.emu.start()
        # the probe exits on a non-200 register: Lambda sees a crashed extension
        self.assertEqual((r.status, r.error_type), ("error", "Extension.Crash"))
        reg = box.log("p", "register")
        self.assertEqual((reg[0]["status"], json.loads(reg[0]["body"])["errorMessage"]), (500, "injected"))
        calls = [c for c in box.emu.api_log if c.get("path") == "/2020-01-01/extension/register"]
        self.assertEqual((calls[0]["status"], calls[0]["who"]), (500, "p"))
        # consumed: the retried Init registers for real
        r2 = box.emu.invoke(FAST)
        self.assertEqual(r2.status, "success")
        self.assertEqual([x["status"] for x in box.log("p", "register")], [500, 200])

    def test_register_fault_with_registration_replaces_only_the_body(self):
        box = Box(self, probes={"p": {}},
                  faults={"register_faults": [{"status": 200, "body": "\u0000garbage{", "register": True}]})
        self.assertEqual(box.emu.start().status, "success")
        reg = box.log("p", "register")[0]
        self.assertEqual(reg["status"], 200)
        self.assertEqual(reg["body"], "\u0000garbage{")
        self.assertTrue(box.ext_id("p"))
        self.assertEqual(box.emu.invoke(FAST).status, "success")

    def test_register_faults_are_validated(self):
        with self.assertRaises(ValueError):
            Box(self, faults={"register_faults": [{"body": "x"}]})
        with self.assertRaises(ValueError):
            Box(self, faults={"no_such_fault": 1})

    def test_next_reset_after_thaw(self):
        box = Box(self, probes={"p": {"PROBE_NEXT_RETRY": "1"}}, faults={"reset_next_after_thaw": 1})
        box.emu.start()
        r1 = box.emu.invoke(FAST)
        r2 = box.emu.invoke(FAST)
        self.assertEqual((r1.status, r2.status), ("success", "success"))
        # one reset (the first thaw), seen by the probe as a dropped connection, then the
        # retried call got the INVOKE; the second invoke was normal
        self.assertEqual(len(box.log("p", "next_reset")), 1)
        self.assertEqual([e["requestId"] for e in box.events("p")], [r1.request_id, r2.request_id])
        dropped = [c for c in box.emu.api_log if c.get("who") == "p" and c.get("status") == "dropped"]
        self.assertEqual(len(dropped), 1)
        self.assertTrue(dropped[0]["reset"])
        # the retried call is not taken as "done with the invoke": the invoke was held open
        # until the probe's next after it received the INVOKE
        nexts = [c for c in box.emu.api_log if c.get("who") == "p" and c.get("event") == "INVOKE"]
        self.assertEqual(nexts[0]["request_id"], r1.request_id)

    def _next_faults_box(self, faults):
        box = Box(self, probes={"p": {"PROBE_NEXT_RETRY": "1"}}, faults={"next_faults": faults})
        self.assertEqual(box.emu.start().status, "success")
        return box

    def test_next_fault_garbage_answers_n_calls_with_200_and_no_event(self):
        box = self._next_faults_box([{"garbage": 3, "body": "<html>oops"}])
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        garbage = box.log("p", "next_garbage")
        # the first three calls (the one ending Init and two more) got garbage at once, the
        # fourth waited for and got the INVOKE: the knob is used up
        self.assertEqual([g["body"] for g in garbage], ["<html>oops"] * 3)
        self.assertEqual([e["requestId"] for e in box.events("p")], [r.request_id])
        faulted = [c for c in box.emu.api_log if c.get("who") == "p" and c.get("fault") == "garbage"]
        self.assertEqual([c["status"] for c in faulted], [200] * 3)
        self.assertEqual(box.emu.faults["next_faults"], [])
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        self.assertEqual(len(box.log("p", "next_garbage")), 3)

    def test_next_fault_status_answers_n_calls_with_an_error(self):
        box = self._next_faults_box([{"status": 500, "count": 2}])
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        errors = box.log("p", "next_error")
        self.assertEqual([e["status"] for e in errors], [500, 500])
        self.assertEqual(err_type(errors[0]["body"]), "Fault.Injected")
        self.assertEqual([e["requestId"] for e in box.events("p")], [r.request_id])

    def test_next_fault_truncate_cuts_the_body_then_gives_the_event_again(self):
        box = self._next_faults_box([{"truncate": True}])
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        # the probe saw the answer end before its Content-Length, called again and got the
        # same INVOKE whole
        resets = box.log("p", "next_reset")
        self.assertEqual([x["error"] for x in resets], ["IncompleteRead"])
        self.assertEqual([e["requestId"] for e in box.events("p")], [r.request_id])
        cut = [c for c in box.emu.api_log if c.get("who") == "p" and c.get("fault") == "truncate"]
        self.assertEqual([(c["event"], c["request_id"]) for c in cut], [("INVOKE", r.request_id)])
        # the invoke was held open until the probe's next after the whole INVOKE
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        self.assertEqual(len(box.events("p")), 2)

    def test_next_fault_oversize_pads_the_next_invoke_only(self):
        box = self._next_faults_box([{"oversize_bytes": 100000}])
        r1 = box.emu.invoke(FAST)
        r2 = box.emu.invoke(FAST)
        self.assertEqual((r1.status, r2.status), ("success", "success"))
        ev = box.events("p")
        self.assertEqual([e["requestId"] for e in ev], [r1.request_id, r2.request_id])
        self.assertEqual(len(ev[0]["padding"]), 100000)
        self.assertNotIn("padding", ev[1])
        sd = box.emu.shutdown()
        self.assertEqual(box.events("p")[-1]["eventType"], "SHUTDOWN")
        self.assertEqual(sd.extensions["p"].exit_code, 0)

    def test_next_fault_patch_sets_fields_of_the_next_invoke(self):
        box = self._next_faults_box([{"patch": {"requestId": "a\nb", "extra": [1]}}])
        r1 = box.emu.invoke(FAST)
        r2 = box.emu.invoke(FAST)
        self.assertEqual((r1.status, r2.status), ("success", "success"))
        ev = box.events("p")
        self.assertEqual((ev[0]["requestId"], ev[0]["extra"]), ("a\nb", [1]))
        self.assertEqual(ev[1]["requestId"], r2.request_id)

    def test_next_fault_status_body_replaces_the_error_body(self):
        box = self._next_faults_box([{"status": 403, "body": "{\"errorType\":\"T\"}"}])
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        self.assertEqual([(e["status"], err_type(e["body"])) for e in box.log("p", "next_error")],
                         [(403, "T")])

    def test_next_faults_are_validated(self):
        with self.assertRaises(ValueError):
            Box(self, faults={"next_faults": [{"body": "x"}]})

    def test_shutdown_deadline_already_passed(self):
        box = Box(self, probes={"p": {"PROBE_SHUTDOWN_DELAY_MS": "400"}},
                  faults={"shutdown_deadline_ms": -50})
        box.emu.start()
        t0 = time.time() * 1000
        sd = box.emu.shutdown()
        ev = box.events("p")[-1]
        self.assertEqual(ev["eventType"], "SHUTDOWN")
        self.assertLess(ev["deadlineMs"], t0 + 10)
        self.assertEqual(sd.deadline_ms, ev["deadlineMs"])
        # the budget really enforced is unchanged: a 400 ms exit is not killed
        self.assertEqual((sd.extensions["p"].exit_code, sd.extensions["p"].killed), (0, False))

    def _crash_then_reinit(self, keep):
        box = Box(self, probes={"p": dict(SUB, PROBE_CRASH="invoke", PROBE_CRASH_AT="2")},
                  faults={"keep_undelivered_records": keep})
        box.emu.start()
        box.emu.invoke(FAST)
        crashed = box.emu.invoke(FAST)
        self.assertEqual(crashed.error_type, "Extension.Crash")
        ok = box.emu.invoke(b'{"action":"slow","ms":300}')
        self.assertEqual(ok.status, "success")
        # either way the new process is subscribed: its own invocation's platform.start
        # reached it (its report would go out only at the next thaw, after the probe's /next)
        self.assertTrue(delivered_record(box.emu, "platform.start", ok.request_id), ok.request_id)
        self.assertIn(ok.request_id, [x["record"].get("requestId")
                                      for x in box.telemetry("p", "platform.start")])
        reports = [x["record"].get("requestId") for x in box.telemetry("p", "platform.report")]
        return box, reports, crashed

    def test_undelivered_records_go_to_the_next_process_by_default(self):
        box, reports, crashed = self._crash_then_reinit(True)
        self.assertTrue(delivered_report(box.emu, crashed.request_id), crashed.request_id)
        self.assertIn(crashed.request_id, reports)

    def test_undelivered_records_lost_with_the_process(self):
        box, reports, crashed = self._crash_then_reinit(False)
        self.assertFalse(delivered_report(box.emu, crashed.request_id, timeout=0))
        self.assertNotIn(crashed.request_id, reports)

    def test_hold_telemetry_until_released(self):
        box = Box(self, probes={"p": SUB}, faults={"hold_telemetry": True})
        box.emu.start()
        r = box.emu.invoke(FAST)
        time.sleep(0.3)
        self.assertEqual(box.emu.delivered, [])
        self.assertEqual(box.telemetry("p"), [])
        box.emu.faults["hold_telemetry"] = False
        # thaws long enough for the held records to go out (a short invoke may freeze the
        # sandbox again before the dispatcher runs, on a loaded machine)
        box.emu.invoke(b'{"action":"slow","ms":300}')
        self.assertTrue(delivered_report(box.emu, r.request_id))

    def test_tmp_persists_across_resets(self):
        box = Box(self, probes={"p": {}})
        tmp = box.emu.extension_environment()["TMPDIR"]
        self.assertEqual(tmp, os.path.join(box.root, "tmp"))
        self.assertEqual(box.emu.runtime_environment()["TMPDIR"], tmp)
        self.assertTrue(os.path.isdir(tmp))
        box.emu.start()
        with open(os.path.join(tmp, "kept"), "w") as f:
            f.write("x")
        r = box.emu.invoke(b'{"action":"crash","code":3}')
        self.assertIsNotNone(r.shutdown)  # a reset happened
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        self.assertTrue(os.path.exists(os.path.join(tmp, "kept")))
        # a customer TMPDIR wins, as on Lambda
        box2 = Box(self, env={"TMPDIR": "/var/tmp"})
        self.assertEqual(box2.emu.extension_environment()["TMPDIR"], "/var/tmp")


class RejectionTests(unittest.TestCase):
    def _internal_session(self, **kw):
        """An Init held open by the test acting as an internal extension."""
        box = Box(self, env={"DEMO_INIT_MS": "700"}, **kw)
        result = {}
        th = threading.Thread(target=lambda: result.setdefault("init", box.emu.start()), daemon=True)
        th.start()
        api = box.emu.runtime_api
        self.assertTrue(wait_for(lambda: box.emu.runtime_pid(), 3))
        st, h, body = raw(api, "POST", "/2020-01-01/extension/register", b'{"events":["INVOKE"]}',
                          {"Lambda-Extension-Name": "tester"})
        self.assertEqual(st, 200, body)
        return box, h["lambda-extension-identifier"], th, result

    def test_telemetry_subscribe_validation(self):
        box, ident, th, result = self._internal_session()
        api = box.emu.runtime_api
        good = {"schemaVersion": "2022-12-13", "types": ["platform"],
                "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
                "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/t"}}

        def variant(**changes):
            d = json.loads(json.dumps(good))
            for path, value in changes.items():
                keys = path.split("__")
                tgt = d
                for k in keys[:-1]:
                    tgt = tgt[k]
                if value is KeyError:
                    del tgt[keys[-1]]
                else:
                    tgt[keys[-1]] = value
            return json.dumps(d).encode()

        bad = {
            "schema": variant(schemaVersion="2020-08-15"),
            "no-schema": variant(schemaVersion=KeyError),
            "types-empty": variant(types=[]),
            "types-bogus": variant(types=["platform", "bogus"]),
            "no-dest": variant(destination=KeyError),
            "no-port": variant(destination__URI="http://sandbox.localdomain/t"),
            "https": variant(destination__URI="https://sandbox.localdomain:4243/t"),
            "foreign-host": variant(destination__URI="http://example.com:4243/t"),
            "proto": variant(destination__protocol="UDP"),
            "items-low": variant(buffering__maxItems=999),
            "items-high": variant(buffering__maxItems=10001),
            "items-float": variant(buffering__maxItems=1000.0),
            "items-string": variant(buffering__maxItems="1000"),
            "bytes-low": variant(buffering__maxBytes=262143),
            "bytes-high": variant(buffering__maxBytes=1048577),
            "timeout-low": variant(buffering__timeoutMs=24),
            "timeout-high": variant(buffering__timeoutMs=30001),
            "tcp-2025-uri": variant(schemaVersion="2025-01-29",
                                    destination={"protocol": "TCP", "URI": "tcp://sandbox.localdomain:4243"}),
            "tcp-2025-port0": variant(schemaVersion="2025-01-29", destination={"protocol": "TCP", "port": 0}),
            "not-json": b"{nope",
            "array": b"[]",
        }
        hdr = {"Lambda-Extension-Identifier": ident, "Content-Type": "application/json"}
        for name, body in bad.items():
            st, _, data = raw(api, "PUT", "/2022-07-01/telemetry", body, hdr)
            self.assertEqual((name, st), (name, 400), data)
            self.assertEqual(err_type(data), "ValidationError", name)
        logged = [e for e in box.emu.api_log if e["path"] == "/2022-07-01/telemetry" and e["status"] == 400]
        self.assertEqual(logged[-2]["body"], "{nope")                        # not JSON: the raw text
        self.assertEqual(logged[-1]["body"], [])
        self.assertEqual(logged[0]["body"]["schemaVersion"], "2020-08-15")
        st, _, data = raw(api, "PUT", "/2022-07-01/telemetry", bad["no-port"], hdr)
        self.assertIn("URI port is not provided", json.loads(data)["errorMessage"])
        st, _, data = raw(api, "PUT", "/2022-07-01/telemetry", variant(types=[]), hdr)
        self.assertIn("types should not be empty", json.loads(data)["errorMessage"])
        # identifier problems
        for headers, et in (({}, "Extension.MissingExtensionIdentifier"),
                            ({"Lambda-Extension-Identifier": "not-a-uuid"}, "Extension.InvalidExtensionIdentifier"),
                            ({"Lambda-Extension-Identifier": str(uuid.uuid4())}, "Extension.UnknownExtensionIdentifier")):
            st, _, data = raw(api, "PUT", "/2022-07-01/telemetry", variant(), headers)
            self.assertEqual((st, err_type(data)), (403, et))
        self.assertFalse(box.emu.records("platform.telemetrySubscription"))
        # valid variants of every schema version
        for version, dest in (("2022-07-01", None), ("2022-12-13", None),
                              ("2025-01-29", {"protocol": "TCP", "port": 4244})):
            body = variant(schemaVersion=version, **({"destination": dest} if dest else {}))
            st, h, data = raw(api, "PUT", "/2022-07-01/telemetry", body, hdr)
            self.assertEqual((st, data), (200, b'"OK"'), version)
            self.assertEqual(h["content-type"], "application/json")
        states = [r["record"]["state"] for r in box.emu.records("platform.telemetrySubscription")]
        self.assertEqual(states, ["Subscribed", "Already subscribed", "Already subscribed"])
        # finish Init: our first next; afterwards subscriptions are closed
        def next_call():
            try:
                raw(api, "GET", "/2020-01-01/extension/event/next", None,
                    {"Lambda-Extension-Identifier": ident}, timeout=10)
            except OSError:
                pass     # the emulator drops the long-poll at close
        nxt = threading.Thread(target=next_call, daemon=True)
        nxt.start()
        th.join(10)
        self.assertEqual(result["init"].status, "success")
        self.assertEqual(result["init"].extensions, {"tester": "Ready"})
        st, _, data = raw(api, "PUT", "/2022-07-01/telemetry", variant(), hdr)
        self.assertEqual((st, err_type(data)), (403, "Telemetry.SubscriptionClosed"))

    def test_subscription_schema_matches_reference(self):
        # the shared reference beside the repository, else its copy in tests/tools/schemas
        name = "rie-telemetry-subscription-schema.2025-01-29.json"
        candidates = [os.path.join(HERE, "..", "..", "..", "shared", "reference", "schemas", name),
                      os.path.join(HERE, "..", "tools", "schemas", name)]
        path = next(p for p in candidates if os.path.exists(p))
        with open(path) as f:
            ref = json.load(f)
        self.assertEqual(lambda_emulator.SUBSCRIPTION_SCHEMA_2025_01_29, ref)
        ok = {"schemaVersion": "2025-01-29", "types": ["platform"],
              "destination": {"protocol": "TCP", "port": 4000}}
        self.assertEqual(lambda_emulator._schema_errors(ref, ok), [])
        self.assertIsNone(lambda_emulator.validate_subscription(json.dumps(ok))[0])

    def test_register_rejections(self):
        box = Box(self, probes={"p": {}})
        box.emu.start()
        api = box.emu.runtime_api
        reg = "/2020-01-01/extension/register"
        cases = [
            ({"Lambda-Extension-Name": ""}, b'{"events":["INVOKE"]}', "Extension.InvalidExtensionName"),
            ({}, b'{"events":["INVOKE"]}', "Extension.InvalidExtensionName"),
            ({"Lambda-Extension-Name": "p"}, b'{"events":["INVOKE","BOGUS"]}', "Extension.InvalidEventType"),
            ({"Lambda-Extension-Name": "p"}, b'{"events":', "InvalidRequestFormat"),
            ({"Lambda-Extension-Name": "p"}, b'', "InvalidRequestFormat"),
            ({"Lambda-Extension-Name": "p"}, b'{"events":"INVOKE"}', "InvalidRequestFormat"),
            ({"Lambda-Extension-Name": "p"}, b'{"events":["INVOKE"],"configurationKeys":["a"]}', "InvalidRequestFormat"),
            ({"Lambda-Extension-Name": "p"}, b'{"events":["INVOKE"]}', "Extension.InvalidExtensionState"),
            ({"Lambda-Extension-Name": "latecomer"}, b'{"events":["INVOKE"]}', "Extension.RegistrationClosed"),
            ({"Lambda-Extension-Name": "latecomer"}, b'{"events":["SHUTDOWN"]}', "Extension.InvalidEventType"),
        ]
        for headers, body, et in cases:
            st, _, data = raw(api, "POST", reg, body, headers)
            self.assertEqual((st, err_type(data)), (403, et), (headers, body))
            self.assertEqual(set(json.loads(data)), {"errorMessage", "errorType"})
        logged = [e for e in box.emu.api_log if e["path"] == reg and e["status"] == 403]
        self.assertEqual(len(logged), len(cases))

    def test_name_mismatch_is_rejected(self):
        box = Box(self, probes={"real-name": {"PROBE_NAME": "other-name"}})
        r = box.emu.start()
        reg = box.log("real-name", "register")[0]
        self.assertEqual((reg["status"], err_type(reg["body"])), (403, "Extension.InvalidEventType"))
        self.assertEqual((r.status, r.error_type), ("error", "Extension.Crash"))

    def test_name_mismatch_without_shutdown_stalls_init(self):
        box = Box(self, probes={"real-name": {"PROBE_NAME": "other-name", "PROBE_EVENTS": "INVOKE"}},
                  init_timeout_s=1.0)
        r = box.emu.start()
        # registered as an internal extension; the launched file itself never registered
        self.assertEqual(box.log("real-name", "register")[0]["status"], 200)
        self.assertEqual(r.status, "timeout")
        self.assertIsNone(r.runtime_pid)

    def test_too_many_extensions(self):
        probes = {"x%02d" % i: {} for i in range(11)}
        box = Box(self, probes=probes, init_timeout_s=5)
        r = box.emu.start()
        codes = [box.log(n, "register")[0]["status"] for n in probes]
        self.assertEqual(sorted(codes), [200] * 10 + [403])
        loser = [n for n in probes if box.log(n, "register")[0]["status"] == 403][0]
        self.assertEqual(err_type(box.log(loser, "register")[0]["body"]), "Extension.TooManyExtensions")
        self.assertEqual(r.status, "error")

    def test_identifier_rejections_on_next_and_errors(self):
        box = Box(self, probes={"p": {}})
        box.emu.start()
        api = box.emu.runtime_api
        for path, method in (("/2020-01-01/extension/event/next", "GET"),
                             ("/2020-01-01/extension/init/error", "POST"),
                             ("/2020-01-01/extension/exit/error", "POST")):
            for headers, et in (({}, "Extension.MissingExtensionIdentifier"),
                                ({"Lambda-Extension-Identifier": "zzz"}, "Extension.InvalidExtensionIdentifier"),
                                ({"Lambda-Extension-Identifier": str(uuid.uuid4()),
                                  "Lambda-Extension-Function-Error-Type": "Extension.X"},
                                 "Extension.UnknownExtensionIdentifier")):
                st, _, data = raw(api, method, path, b"" if method == "POST" else None, headers)
                self.assertEqual((path, st, err_type(data)), (path, 403, et))
        ident = box.ext_id("p")
        for path in ("/2020-01-01/extension/init/error", "/2020-01-01/extension/exit/error"):
            st, _, data = raw(api, "POST", path, b"", {"Lambda-Extension-Identifier": ident})
            self.assertEqual((st, err_type(data)), (403, "Extension.MissingHeader"))
        # init/error after Init; a second concurrent /event/next; a late subscribe
        st, _, data = raw(api, "POST", "/2020-01-01/extension/init/error", b"",
                          {"Lambda-Extension-Identifier": ident, "Lambda-Extension-Function-Error-Type": "Extension.Late"})
        self.assertEqual((st, err_type(data)), (403, "Extension.InvalidExtensionState"))
        st, _, data = raw(api, "GET", "/2020-01-01/extension/event/next", None, {"Lambda-Extension-Identifier": ident})
        self.assertEqual((st, err_type(data)), (403, "Extension.InvalidExtensionState"))
        st, _, data = raw(api, "PUT", "/2022-07-01/telemetry", json.dumps(
            {"schemaVersion": "2022-12-13", "types": ["platform"],
             "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/"}}).encode(),
            {"Lambda-Extension-Identifier": ident})
        self.assertEqual((st, err_type(data)), (403, "Telemetry.SubscriptionClosed"))
        self.assertEqual(box.emu.invoke(FAST).status, "success")

    def test_no_api_call_succeeds_after_exit_error(self):
        # after /extension/exit/error (or init/error) every further call of that extension fails
        box, ident, th, result = self._internal_session(freeze=False)
        api = box.emu.runtime_api
        hdr = {"Lambda-Extension-Identifier": ident}
        def next_call():
            try:
                raw(api, "GET", "/2020-01-01/extension/event/next", None, hdr, timeout=10)
            except OSError:
                pass     # dropped at the reset / close
        threading.Thread(target=next_call, daemon=True).start()
        th.join(10)
        self.assertEqual(result["init"].status, "success")
        st, _, data = raw(api, "POST", "/2020-01-01/extension/exit/error", b"",
                          dict(hdr, **{"Lambda-Extension-Function-Error-Type": "Extension.Bad"}))
        self.assertEqual(st, 202, data)
        body = json.dumps({"schemaVersion": "2022-12-13", "types": ["platform"],
                           "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/"}}).encode()
        st, _, data = raw(api, "PUT", "/2022-07-01/telemetry", body, hdr)
        self.assertEqual((st, err_type(data)), (403, "Extension.InvalidExtensionState"))
        st, _, data = raw(api, "GET", "/2020-01-01/extension/event/next", None, hdr)
        self.assertEqual((st, err_type(data)), (403, "Extension.InvalidExtensionState"))
        st, _, data = raw(api, "POST", "/2020-01-01/extension/exit/error", b"",
                          dict(hdr, **{"Lambda-Extension-Function-Error-Type": "Extension.Bad"}))
        self.assertEqual((st, err_type(data)), (403, "Extension.InvalidExtensionState"))
        # the failure resets the environment at the next invoke
        r = box.emu.invoke(FAST)
        self.assertEqual((r.init_phase_ran, r.init.phase), (True, "invoke"))

    def test_late_subscribe_from_probe(self):
        box = Box(self, probes={"late": {"PROBE_LATE_SUBSCRIBE": "1"}})
        box.emu.start()
        box.emu.invoke(FAST)
        sub = box.log("late", "subscribe")[0]
        self.assertTrue(sub["late"])
        self.assertEqual((sub["status"], err_type(sub["body"])), (403, "Telemetry.SubscriptionClosed"))

    def test_runtime_api_rejections(self):
        box = Box(self)
        box.emu.start()
        api = box.emu.runtime_api
        r = box.emu.invoke(FAST)
        base = "/2018-06-01/runtime"
        st, _, data = raw(api, "POST", "%s/invocation/%s/response" % (base, uuid.uuid4()), b"{}")
        self.assertEqual((st, err_type(data)), (400, "InvalidRequestID"))
        st, _, data = raw(api, "POST", "%s/invocation/%s/response" % (base, r.request_id), b"{}")
        self.assertEqual((st, err_type(data)), (400, "InvalidRequestID"))      # already answered
        st, _, data = raw(api, "POST", "%s/invocation/%s/error" % (base, r.request_id), b"{}")
        self.assertEqual((st, err_type(data)), (400, "InvalidRequestID"))
        st, _, data = raw(api, "GET", base + "/invocation/next")                # runtime already waits in next
        self.assertEqual((st, err_type(data)), (403, "InvalidStateTransition"))
        st, _, data = raw(api, "POST", base + "/init/error", b"{}", {"Lambda-Runtime-Function-Error-Type": "Runtime.X"})
        self.assertEqual((st, err_type(data)), (403, "InvalidStateTransition"))
        st, _, data = raw(api, "GET", base + "/restore/next")
        self.assertEqual((st, err_type(data)), (403, "InvalidStateTransition"))
        st, _, _ = raw(api, "GET", "/2018-06-01/runtime/nope")
        self.assertEqual(st, 404)
        st, _, _ = raw(api, "POST", base + "/invocation/next")
        self.assertEqual(st, 405)
        self.assertEqual(box.emu.invoke(FAST).status, "success")

    def test_garbage_and_keep_alive(self):
        box = Box(self)
        box.emu.start()
        host, port = box.emu.runtime_api.split(":")
        for junk in (b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                     b"POST /2020-01-01/extension/register HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"):
            s = socket.create_connection((host, int(port)), timeout=2)
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(4096)
            except OSError:
                pass
            s.close()
        c = http.client.HTTPConnection(host, int(port), timeout=3)
        for _ in range(3):
            c.request("GET", "/2020-01-01/extension/event/next")
            resp = c.getresponse()
            self.assertEqual(resp.status, 403)
            resp.read()
        c.close()
        self.assertEqual(box.emu.invoke(FAST).status, "success")


class TelemetryQuirkTests(unittest.TestCase):
    def test_schema_versions_of_an_era(self):
        # an era that does not know 2025-01-29 yet: an extension trying it first gets 400 and
        # falls back; api_log and subscribers() show what was asked and what was accepted
        box = Box(self, probes={"new": dict(SUB, PROBE_SCHEMA="2025-01-29"), "old": dict(SUB, PROBE_SCHEMA="2022-07-01")},
                  quirks={"telemetry_schema_versions": ["2022-12-13", "2022-07-01"]})
        self.assertEqual(box.emu.start().status, "success")
        new = box.log("new", "subscribe")[0]
        self.assertEqual(new["status"], 400)
        body = json.loads(new["body"])
        self.assertEqual(set(body), {"errorType", "errorMessage"})
        self.assertEqual(body["errorType"], "ValidationError")
        self.assertIn("2022-12-13", body["errorMessage"])
        self.assertNotIn("2025-01-29", body["errorMessage"])
        self.assertEqual(box.log("old", "subscribe")[0]["status"], 200)
        subs = box.emu.subscribers()
        self.assertEqual(sorted(subs), ["old"])
        self.assertEqual(subs["old"]["schemaVersion"], "2022-07-01")
        puts = {e["who"]: e for e in box.emu.api_log if e["path"] == "/2022-07-01/telemetry"}
        self.assertEqual((puts["new"]["status"], puts["new"]["error_type"]), (400, "ValidationError"))
        self.assertEqual(puts["new"]["body"]["schemaVersion"], "2025-01-29")
        self.assertEqual(puts["old"]["body"]["schemaVersion"], "2022-07-01")
        self.assertEqual(puts["old"]["body"]["destination"]["protocol"], "HTTP")
        with self.assertRaises(ValueError):
            lambda_emulator.Emulator(root=box.root, runtime=[PY, BOOT], quirks={"telemetry_schema_versions": ["2023-01-01"]})

    def test_telemetry_not_supported_like_rie(self):
        box = Box(self, probes={"p": SUB}, quirks={"telemetry_not_supported": True}, freeze=False)
        self.assertEqual(box.emu.start().status, "success")
        sub = box.log("p", "subscribe")[0]
        self.assertEqual(sub["status"], 202)
        self.assertEqual(json.loads(sub["body"]), {"errorMessage": "Telemetry API is not supported",
                                                   "errorType": "Telemetry.NotSupported"})
        self.assertEqual(box.emu.invoke(FAST).status, "success")
        time.sleep(0.1)
        self.assertEqual(box.emu.subscribers(), {})
        self.assertEqual(box.emu.delivered, [])
        self.assertEqual(box.log("p", "post"), [])
        self.assertFalse(box.emu.records("platform.telemetrySubscription"))
        put = [e for e in box.emu.api_log if e["path"] == "/2022-07-01/telemetry"][0]
        self.assertEqual((put["status"], put["error_type"], put["who"]), (202, "Telemetry.NotSupported", "p"))
        self.assertEqual(put["body"]["types"], ["platform", "function", "extension"])


class ShutdownTests(unittest.TestCase):
    def test_budget_then_sigkill(self):
        box = Box(self, probes={"stubborn": {"PROBE_IGNORE_SHUTDOWN": "1"}, "polite": {}})
        box.emu.start()
        box.emu.invoke(FAST)
        t0 = time.monotonic()
        sd = box.emu.shutdown()
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 3.5)
        st = sd.extensions["stubborn"]
        self.assertTrue(st.killed)
        self.assertTrue(st.shutdown_delivered)
        self.assertEqual(st.exit_code, -signal.SIGKILL)
        self.assertGreaterEqual(st.ms_to_exit, 1500)
        po = sd.extensions["polite"]
        self.assertFalse(po.killed)
        self.assertEqual(po.exit_code, 0)
        self.assertLess(po.ms_to_exit, 1000)

    def test_ms_to_exit_measures_shutdown_delivery_to_exit(self):
        # the probe logs (monotonic clock, same as the emulator's) when SHUTDOWN arrives, sleeps
        # N ms, then exits; ms_to_exit must be delivery -> exit, never negative
        for delay in (0, 300):
            box = Box(self, probes={"p": {"PROBE_SHUTDOWN_DELAY_MS": str(delay)}})
            box.emu.start()
            sd = box.emu.shutdown()
            e = sd.extensions["p"]
            self.assertTrue(e.shutdown_delivered)
            self.assertEqual((e.exit_code, e.killed), (0, False))
            got = box.log("p", "event")[-1]
            self.assertEqual(got["event"]["eventType"], "SHUTDOWN")
            exit_ns = [x for x in box.emu.process_log if x["event"] == "exit" and x["who"] == "p"][-1]["t_mono_ns"]
            self.assertGreaterEqual(e.ms_to_exit, 0)
            self.assertGreaterEqual(e.ms_to_exit, (exit_ns - got["t"]) / 1e6 - 0.001)   # delivered before received
            self.assertGreaterEqual(e.ms_to_exit, delay)
            self.assertLess(e.ms_to_exit, delay + 250)

    def test_every_shutdown_reason_reaches_the_extension(self):
        # Lambda's three (lower case on the wire) and RIE's SIGTERM reason, verbatim
        self.assertEqual(lambda_emulator.SHUTDOWN_REASONS, ("spindown", "timeout", "failure", "SandboxTerminated"))
        for reason in lambda_emulator.SHUTDOWN_REASONS:
            box = Box(self, probes={"p": {}})
            box.emu.start()
            box.emu.invoke(FAST)
            sd = box.emu.shutdown(reason)
            self.assertEqual(sd.reason, reason)
            got = [e for e in box.events("p") if e["eventType"] == "SHUTDOWN"]
            self.assertEqual([e["shutdownReason"] for e in got], [reason])
            self.assertEqual(got[0]["deadlineMs"], sd.deadline_ms)
            self.assertEqual(sd.extensions["p"].exit_code, 0)

    def test_cli_sigterm_shuts_down_with_sandbox_terminated(self):
        # like RIE: SIGTERM stops the invokes and resets with SHUTDOWN SandboxTerminated
        box = Box(self, probes={"p": {}})
        argv = [PY, os.path.join(HERE, "lambda_emulator.py"), "run", "--root", box.root,
                "--runtime", "%s %s" % (PY, BOOT), "--env", "PROBE_LOG_DIR=%s" % box.logs]
        for _ in range(5):
            argv += ["--invoke", '{"action":"sleep","ms":300}']
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            self.assertTrue(wait_for(lambda: any(e["eventType"] == "INVOKE" for e in box.events("p")), 30),
                            "the probe never got an INVOKE")
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, out)
        events = box.events("p")
        self.assertEqual([e["shutdownReason"] for e in events if e["eventType"] == "SHUTDOWN"],
                         ["SandboxTerminated"], out)
        self.assertLess(sum(1 for e in events if e["eventType"] == "INVOKE"), 5, out)
        self.assertIn("shutdown SandboxTerminated", out)

    def test_cli_defaults_lambda_tracer_to_stdout(self):
        # lambda-tracer's own default exporter is the real X-Ray API: the command line must
        # never send anything off the machine unless asked (--env overrides)
        for extra, want in (([], "stdout"), (["--env", "LAMBDA_TRACER_EXPORTERS=xray"], "xray")):
            box = Box(self, probes={"p": {"PROBE_DUMP_ENV": "1"}})
            proc = subprocess.run([PY, os.path.join(HERE, "lambda_emulator.py"), "run", "--root", box.root,
                                   "--runtime", "%s %s" % (PY, BOOT), "--env", "PROBE_LOG_DIR=%s" % box.logs,
                                   "--invoke", '{"action":"fast"}'] + extra,
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            starts = [r for r in box.log("p") if r.get("kind") == "start" or "env" in r]
            self.assertTrue(starts, box.log("p"))
            self.assertEqual(starts[0]["env"].get("LAMBDA_TRACER_EXPORTERS"), want)

    def test_extension_not_registered_for_shutdown_is_killed(self):
        box = Box(self, probes={"invoke-only": {"PROBE_EVENTS": "INVOKE"}})
        box.emu.start()
        sd = box.emu.shutdown()
        e = sd.extensions["invoke-only"]
        self.assertTrue(e.killed)
        self.assertFalse(e.shutdown_delivered)
        self.assertLess(sd.duration_ms, 1500)

    def test_pending_report_delivered_at_shutdown(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_SHUTDOWN_DELAY_MS="300")}, freeze=True)
        box.emu.start()
        r = box.emu.invoke(FAST)
        box.emu.shutdown()
        reps = [x for x in box.telemetry("p", "platform.report") if x["record"]["requestId"] == r.request_id]
        self.assertEqual(len(reps), 1)
        # the report was held while the sandbox was frozen and went out once the shutdown thawed
        # it (compare times, not positions in the probe's log: other lines interleave under load)
        t_thaw = [e["t_mono_ns"] for e in box.emu.process_log if e["event"] == "thaw"][-1]
        sent = delivered_report(box.emu, r.request_id)
        self.assertTrue(sent)
        self.assertGreaterEqual(sent[0]["t_mono_ns"], t_thaw)
        t_sd = [d["t"] for d in box.log("p", "event") if d["event"]["eventType"] == "SHUTDOWN"][0]
        t_rep = [d["t"] for d in box.log("p", "telemetry") if d["record"]["type"] == "platform.report"][0]
        self.assertLess(abs(t_rep - t_sd) / 1e6, 300)


class TenantDurableKnobTests(unittest.TestCase):
    """tenant_id, bill_init and a durable runtime_version (observability-2026 "Newer platform
    modes"; Init billed for every runtime since 2025-08-01)."""

    def test_tenant_id_on_start_runtime_done_and_report_only(self):
        box = Box(self, probes={"p": {}}, tenant_id="BlueTenant",
                  runtime_version="python:3.13.DurableFunction.v1")
        self.assertEqual(box.emu.start().status, "success")
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        by_type = {x["type"]: x["record"] for x in r.records}
        for t in ("platform.start", "platform.runtimeDone", "platform.report"):
            self.assertEqual(by_type[t]["tenantId"], "BlueTenant", t)
        for x in box.emu.records("platform.initStart") + box.emu.records("platform.initReport"):
            self.assertNotIn("tenantId", x["record"])
        self.assertIn("DurableFunction", box.emu.records("platform.initStart")[0]["record"]["runtimeVersion"])

    def test_without_tenant_no_tenant_id(self):
        box = Box(self, probes={"p": {}})
        box.emu.start()
        r = box.emu.invoke(FAST)
        self.assertFalse(any("tenantId" in x["record"] for x in r.records if isinstance(x["record"], dict)))

    def test_bill_init_adds_the_rounded_init_to_the_cold_report_only(self):
        for bill in (False, True):
            box = Box(self, probes={"p": {}}, bill_init=bill, env={"DEMO_INIT_MS": "30"})
            box.emu.start()
            cold = box.emu.invoke(FAST)
            warm = box.emu.invoke(FAST)
            m = [x["record"] for x in cold.records if x["type"] == "platform.report"][0]["metrics"]
            want = math.ceil(m["durationMs"]) + (math.ceil(m["initDurationMs"]) if bill else 0)
            self.assertEqual(m["billedDurationMs"], want, bill)
            mw = [x["record"] for x in warm.records if x["type"] == "platform.report"][0]["metrics"]
            self.assertNotIn("initDurationMs", mw)
            self.assertEqual(mw["billedDurationMs"], math.ceil(mw["durationMs"]))


class InitTypeTests(unittest.TestCase):
    def test_snap_start_restore(self):
        box = Box(self, probes={"p": dict(SUB, PROBE_DUMP_ENV="1")}, init_type="snap-start",
                  env={"DEMO_RESTORE_MS": "50"})
        init = box.emu.start()
        self.assertEqual(init.status, "success")
        env = box.log("p", "start")[0]["env"]
        self.assertIn("AWS_CONTAINER_CREDENTIALS_FULL_URI", env)
        self.assertIn("AWS_CONTAINER_AUTHORIZATION_TOKEN", env)
        self.assertNotIn("AWS_ACCESS_KEY_ID", env)
        st, _, data = raw(box.emu.runtime_api, "GET", "/2021-04-23/credentials", None,
                          {"Authorization": env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
        self.assertEqual(st, 200)
        self.assertEqual(set(json.loads(data)), {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"})
        st, _, _ = raw(box.emu.runtime_api, "GET", "/2021-04-23/credentials", None, {"Authorization": "wrong"})
        self.assertEqual(st, 401)
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        self.assertEqual(r.restore["status"], "success")
        types = [x["type"] for x in r.records if x["type"].startswith("platform.")]
        self.assertEqual(types, ["platform.restoreStart", "platform.restoreRuntimeDone", "platform.restoreReport",
                                 "platform.start", "platform.runtimeDone", "platform.report"])
        rep = [x["record"] for x in r.records if x["type"] == "platform.report"][0]
        self.assertGreaterEqual(rep["metrics"]["restoreDurationMs"], 50)
        self.assertIn("initDurationMs", rep["metrics"])
        rs = r.records[0]["record"]
        self.assertEqual(rs["functionName"], "demo-fn")
        self.assertEqual(box.emu.records("platform.initStart")[0]["record"]["initializationType"], "snap-start")
        self.assertTrue(any(e["path"].endswith("/restore/next") and e["status"] == 200 for e in box.emu.api_log))
        r2 = box.emu.invoke(FAST)
        self.assertFalse(any(x["type"].startswith("platform.restore") for x in r2.records))

    def test_snap_start_restore_modes(self):
        """DEMO_RESTORE_SPIN_MS / _READ / _WAIT: the after-restore hook is slow in a known way
        (CPU burnt, bytes read, a wait on a slow peer), inside the Restore phase."""
        def runtime_cpu_ticks(pid):
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        def runtime_rchar(pid):
            with open("/proc/%d/io" % pid) as f:
                return int(f.read().split("rchar:")[1].split()[0])

        tmp = tempfile.mkdtemp(prefix="lambda-emu-restore-")
        self.addCleanup(shutil.rmtree, tmp, True)
        big = os.path.join(tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(b"\0" * (8 << 20))
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self.addCleanup(srv.close)
        answered = threading.Event()

        def answer_late():
            c, _ = srv.accept()
            c.recv(64)
            answered.wait(0.4)  # the hook waits for this answer
            c.sendall(b"late\n")
            c.close()
        threading.Thread(target=answer_late, daemon=True).start()
        hz = os.sysconf("SC_CLK_TCK")
        for env, check in (
                ({"DEMO_RESTORE_SPIN_MS": "300"}, "cpu"),
                ({"DEMO_RESTORE_READ": big}, "read"),
                ({"DEMO_RESTORE_WAIT": "127.0.0.1:%d:5000" % srv.getsockname()[1]}, "wait")):
            with self.subTest(check):
                box = Box(self, probes={"p": dict(SUB)}, init_type="snap-start", env=env)
                self.assertEqual(box.emu.start().status, "success")
                pid = box.emu.runtime_pid()
                cpu0 = runtime_cpu_ticks(pid)
                read0 = runtime_rchar(pid)
                r = box.emu.invoke(FAST)
                self.assertEqual((r.status, r.restore["status"]), ("success", "success"))
                restore_ms = [x["record"] for x in r.records
                              if x["type"] == "platform.restoreReport"][0]["metrics"]["durationMs"]
                fn = "".join(x["record"] for x in r.records if x["type"] == "function")
                cpu_ms = (runtime_cpu_ticks(pid) - cpu0) * 1000 / hz
                read = runtime_rchar(pid) - read0
                if check == "cpu":
                    self.assertGreaterEqual(cpu_ms, 290)
                    self.assertGreaterEqual(restore_ms, 290)
                elif check == "read":
                    self.assertIn("restore: read %d bytes" % (8 << 20), fn)
                    self.assertGreaterEqual(read, 8 << 20)
                else:
                    self.assertGreaterEqual(restore_ms, 380)  # the peer answered after 0.4 s
                    self.assertLess(cpu_ms, restore_ms / 2)

    def test_snap_start_restore_error(self):
        box = Box(self, probes={"p": {}}, init_type="snap-start", env={"DEMO_RESTORE_FAIL": "1"})
        self.assertEqual(box.emu.start().status, "success")
        r = box.emu.invoke(FAST)
        self.assertEqual((r.status, r.error_type), ("error", "Runtime.DemoRestoreError"))
        rep = box.emu.records("platform.restoreReport")[0]["record"]
        self.assertEqual((rep["status"], rep["errorType"]), ("error", "Runtime.DemoRestoreError"))
        self.assertEqual(box.events("p")[-1]["shutdownReason"], "failure")
        self.assertTrue(any(e["path"].endswith("/restore/error") and e["status"] == 202 for e in box.emu.api_log))

    def test_provisioned_concurrency(self):
        box = Box(self, probes={"p": {"PROBE_DUMP_ENV": "1"}}, init_type="provisioned-concurrency")
        init = box.emu.start()
        time.sleep(0.2)
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        self.assertEqual(box.log("p", "start")[0]["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"], "provisioned-concurrency")
        for t in ("platform.initStart", "platform.initRuntimeDone", "platform.initReport"):
            self.assertEqual(box.emu.records(t)[0]["record"]["initializationType"], "provisioned-concurrency")
        self.assertEqual(init.init_type, "provisioned-concurrency")

    def test_cold_start_without_explicit_init(self):
        box = Box(self)
        r = box.emu.invoke(FAST)
        self.assertEqual(r.status, "success")
        self.assertTrue(r.init_phase_ran)
        self.assertEqual(r.init.phase, "init")
        rep = [x["record"] for x in r.records if x["type"] == "platform.report"][0]
        self.assertIn("initDurationMs", rep["metrics"])
        self.assertEqual(rep["spans"][0]["durationMs"], 0.0)

    def test_omit_init_fields_quirk(self):
        box = Box(self, quirks={"omit_init_fields": True})
        box.emu.start()
        self.assertEqual(box.emu.records("platform.initStart")[0]["record"],
                         {"initializationType": "on-demand", "phase": "init"})
        self.assertNotIn("status", box.emu.records("platform.initReport")[0]["record"])


class RobustnessTests(unittest.TestCase):
    def test_close_during_invoke_does_not_hang(self):
        box = Box(self, timeout_s=30)
        box.emu.start()
        out = {}
        th = threading.Thread(target=lambda: out.setdefault("r", box.emu.invoke(b'{"action":"sleep","ms":20000}')),
                              daemon=True)
        th.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        box.emu.close()
        th.join(5)
        self.assertFalse(th.is_alive())
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(out["r"].status, "failure")
        pid = box.emu.runtime_pid()
        self.assertFalse(os.path.exists("/proc/%d" % pid) and open("/proc/%d/stat" % pid).read().split()[2] != "Z")

    def test_warm_invoke_is_fast(self):
        box = Box(self, probes={"p": SUB})
        box.emu.start()
        for _ in range(5):
            box.emu.invoke(FAST)
        t0 = time.monotonic()
        n = 50
        for _ in range(n):
            self.assertEqual(box.emu.invoke(FAST).status, "success")
        per = (time.monotonic() - t0) / n * 1000
        self.assertLess(per, 25, "warm invoke round trip %.1f ms" % per)

    def test_relative_runtime_path(self):
        d = tempfile.mkdtemp(prefix="lambda-emu-rel-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "root", "var", "task"))
        cwd = os.getcwd()
        os.chdir(os.path.dirname(HERE))
        try:
            emu = lambda_emulator.Emulator(root=os.path.join(d, "root"), runtime=[PY, "emulator/runtimes/bootstrap.py"])
        finally:
            os.chdir(cwd)
        self.addCleanup(emu.close)
        self.assertEqual(emu.runtime_argv, [PY, BOOT])
        self.assertEqual(emu.invoke(FAST).status, "success")

    def test_api_log_file_and_cli(self):
        d = tempfile.mkdtemp(prefix="lambda-emu-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "root", "opt", "extensions"))
        log = os.path.join(d, "api.jsonl")
        proc = subprocess.run([PY, os.path.join(HERE, "lambda_emulator.py"), "run", "--root", os.path.join(d, "root"),
                               "--runtime", "%s %s" % (PY, BOOT), "--timeout-s", "1", "--invoke", '{"action":"fast"}',
                               "--invoke", '{"action":"sleep","ms":3000}', "--trace-header", TRACE,
                               "--log", log, "--env", "K=V"],
                              capture_output=True, text=True, timeout=60)
        self.assertIn("init: success", proc.stdout)
        self.assertIn("invoke 1", proc.stdout)
        self.assertIn(": timeout", proc.stdout)
        self.assertEqual(proc.returncode, 1)          # the second invoke timed out
        with open(log) as f:
            entries = [json.loads(x) for x in f]
        self.assertTrue(any(e["path"] == "/2018-06-01/runtime/invocation/next" for e in entries))
        for e in entries:
            for k in ("t_mono_ns", "t_epoch_ms", "api", "method", "path", "status"):
                self.assertIn(k, e)


if __name__ == "__main__":
    unittest.main()
