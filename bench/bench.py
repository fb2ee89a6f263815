#!/usr/bin/env python3
"""lambda-tracer benchmarks (issue 5): the real extension under the local
Lambda emulator, every figure measured side by side in the same run against
two references, interleaved (ABAB) so a busy machine slows all alike:

  none   the same function with no extension;
  floor  bench/floor.c: register, loop on /event/next, exit on SHUTDOWN.

Figures: 1 cold start, 2 added time per warm invocation per flush policy,
3 memory, 4 telemetry ingest, 5 shutdown, 6 size, 7 CPU per invocation,
8 timeout forensics, 9 counts: a pass of its own (never the timing runs),
beside the floor and the floor + listener (BENCH_FLOOR_LISTEN=1): system
calls under `strace -f` of the extension's process, threads and CPU when the
emulator sees the first /event/next, context switches from
/proc/<pid>/task/*/status, idle CPU never frozen, SHUTDOWN with pending to a
sink answering after 30 ms, idle RSS after the first HTTPS export.
Writes a JSON results file and a Markdown table; exits 1 without writing
them when any figure cannot be measured (never a made-up number).
results.json's `goals` are issue 12's goals 1-6, each {figure, goal,
measured, op, target, unit, met} with met = measured op target;
`--goals-table` prints them as Markdown (today's main beside, from
bench/goals-before.json).  Needs strace and openssl.

Run it through ./build.sh bench, which builds what it measures.
"""
import argparse
import datetime
import glob
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

# helpers shared with the tests (tests/common), never a test module
import common  # noqa: E402  (also puts the emulator on sys.path)
import lambda_emulator  # noqa: E402
from common import sinks, tls  # noqa: E402
# n complete invocations' platform records as one batch, as the shutdown test sends them
from common.records import fake_invocations  # noqa: E402

BOOTSTRAP = common.BOOTSTRAP
TRACER = "lambda-tracer"
FLOOR = "floor"
FAST = b'{"action":"fast"}'
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Goals of issue 5.  "MB" is decimal (10^6 bytes), the stricter reading.
GOAL_INIT_VS_FLOOR_MS = 1.0
GOAL_OWN_INIT_MS = 2.0
GOAL_IDLE_RSS_BYTES = 2_000_000
GOAL_INGEST_PER_CORE = 500_000
GOAL_SHUTDOWN_100_MS = 20.0
GOAL_ZIP_BYTES = 1_000_000

# Caps the memory bound is made of (extension/limits.h, extension/config.c),
# at the settings the flood run uses.
QUEUE_DEFAULT_BYTES = 8 * 1024 * 1024
EXPORT_QUEUE_DEFAULT_BYTES = 8 * 1024 * 1024
LISTENER_MAX_CONNECTIONS = 16
LISTENER_BODY_SLACK_BYTES = 64 * 1024
# A batch being parsed: its body, the batch's event array and its string arena.
PARSE_FACTOR = 4


class BenchError(Exception):
    """A figure could not be measured."""


def need(cond, what):
    if not cond:
        raise BenchError(what)


# --------------------------------------------------------------- statistics

def percentile(values, q):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def stats(values, what):
    need(len(values) > 0, f"{what}: no samples")
    for v in values:
        need(isinstance(v, (int, float)) and math.isfinite(v), f"{what}: non-numeric sample {v!r}")
    return {"n": len(values), "median": percentile(values, 50), "p95": percentile(values, 95),
            "mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def rotated(items, i):
    i %= len(items)
    return items[i:] + items[:i]


# --------------------------------------------------------------- /proc

def proc_status(pid):
    """VmRSS and VmHWM in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    need("VmRSS" in out and "VmHWM" in out, f"/proc/{pid}/status has no VmRSS/VmHWM")
    return out


def proc_cpu_s(pid):
    """utime + stime of the whole process (all threads), seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tasks(pid):
    return sorted(glob.glob(f"/proc/{pid}/task/*"))


def sched_ns(task_dirs, seen=None):
    """Time on CPU (ns, exact) summed over the given threads, from schedstat.
    A thread may end between listing and reading (the Init watcher does, when
    Init's report arrives): with `seen` (tid dir -> last value) it keeps
    counting what it used up to the last read; without, it counts nothing."""
    total = 0
    for t in task_dirs:
        try:
            with open(t + "/schedstat") as f:
                ns = int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            ns = seen.get(t, 0) if seen is not None else 0
        if seen is not None:
            seen[t] = ns
        total += ns
    return total


def ctxt_switches(task_dirs, seen=None):
    """(voluntary, nonvoluntary) context switches summed over the given threads, from
    /proc/<pid>/task/<tid>/status; a thread that ended keeps its last value in `seen`
    (tid dir -> (vol, nonvol)), as sched_ns does."""
    vol = invol = 0
    for t in task_dirs:
        v = n = None
        try:
            with open(t + "/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        v = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        n = int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
        if v is None or n is None:
            v, n = seen.get(t, (0, 0)) if seen is not None else (0, 0)
        if seen is not None:
            seen[t] = (v, n)
        vol += v
        invol += n
    return vol, invol


def pin(pid, cpu):
    for t in tasks(pid):
        os.sched_setaffinity(int(os.path.basename(t)), {cpu})


# --------------------------------------------------------------- environments

class Variant:
    """One extension set-up: label, binary (None: no extension), file name,
    extra environment, whether it gets a local X-Ray API sink."""

    def __init__(self, label, binary, name, env=None, xray=False, stdout_null=False, wrap=None):
        self.label, self.binary, self.name = label, binary, name
        self.env, self.xray, self.stdout_null = dict(env or {}), xray, stdout_null
        self.wrap = list(wrap or [])  # argv prefix the extension runs under (strace ...)


class Sandbox:
    """An emulator with one variant's extension; closed with close()."""

    def __init__(self, variant, freeze=True, log_tail=False, emulator_class=None, tls_pki=None):
        self.v = variant
        self.root = tempfile.mkdtemp(prefix="lt-bench-")
        ext_dir = os.path.join(self.root, "opt", "extensions")
        os.makedirs(ext_dir)
        if variant.binary:
            if variant.stdout_null or variant.wrap:
                # stdout (the stdout exporter's documents) to /dev/null, the
                # null exporter; stderr still goes to the emulator.  Or the
                # extension under a wrapper (strace): same file name, so the
                # same extension name.
                bin_dir = os.path.join(self.root, "opt", "bin")
                os.makedirs(bin_dir)
                real = os.path.join(bin_dir, variant.name)
                shutil.copy2(variant.binary, real)
                launcher = os.path.join(ext_dir, variant.name)
                wrap = " ".join(shlex.quote(a) for a in variant.wrap)
                null = " >/dev/null" if variant.stdout_null else ""
                with open(launcher, "w") as f:
                    f.write(f'#!/bin/sh\nexec {wrap} "{real}" "$@"{null}\n')
                os.chmod(launcher, 0o755)
            else:
                shutil.copy2(variant.binary, os.path.join(ext_dir, variant.name))
                os.chmod(os.path.join(ext_dir, variant.name), 0o755)
        # The emulator stamps Lambda's default Sampled=0 header; the figures count the cost of
        # exporting every invocation, so ask for all of them.
        env = {"LAMBDA_TRACER_LOG_LEVEL": "info", "LAMBDA_TRACER_EXPORTERS": "none",
               "LAMBDA_TRACER_SAMPLING": "all"}
        env.update(variant.env)
        self.emu = (emulator_class or lambda_emulator.Emulator)(root=self.root, runtime=[sys.executable, BOOTSTRAP],
                                            function_name="bench-fn", memory_mb=128, timeout_s=3,
                                            env=env, freeze=freeze)
        self.sink = None
        if variant.xray:
            creds = self.emu.extension_environment()
            self.sink = sinks.XRayApiSink(region=self.emu.region, access_key=creds["AWS_ACCESS_KEY_ID"],
                                          secret=creds["AWS_SECRET_ACCESS_KEY"],
                                          token=creds["AWS_SESSION_TOKEN"])
            # an exiting extension resets its kept-alive connection: not news
            self.sink.server.handle_error = lambda *args: None
            endpoint = self.sink.endpoint
            if tls_pki:
                # HTTPS with a certificate for "localhost" from a throw-away CA
                tls.serve_tls(self.sink, tls.server_context(tls_pki))
                endpoint = f"https://localhost:{self.sink.port}"
            self.emu.customer_env.update({"LAMBDA_TRACER_EXPORTERS": "xray",
                                          "LAMBDA_TRACER_XRAY_ENDPOINT": endpoint})
        self.pid = None
        self.task_dirs = None
        self.task_ns = {}
        self.task_sw = {}

    def start(self):
        t0 = time.monotonic_ns()
        init = self.emu.start()
        need(init.status == "success", f"{self.v.label}: Init {init.status} {init.error_type}")
        if self.v.binary:
            self.pid = self.emu.extension_pids().get(self.v.name)
            need(self.pid, f"{self.v.label}: no extension process")
        return t0, init

    def invoke(self):
        res = self.emu.invoke(FAST)
        need(res.status == "success", f"{self.v.label}: invoke {res.status} {res.error_type}")
        return res

    def report(self, res):
        for r in res.records:
            if r["type"] == "platform.report" and r["record"].get("requestId") == res.request_id:
                return r["record"]
        raise BenchError(f"{self.v.label}: no platform.report for {res.request_id}")

    def freeze_tasks(self):
        """The extension's threads, once they have all started."""
        self.task_dirs = tasks(self.pid)
        self.task_ns = {t: 0 for t in self.task_dirs}
        need(self.task_dirs, f"{self.v.label}: no threads under /proc/{self.pid}/task")

    def switches(self):
        """(voluntary, nonvoluntary) context switches of every thread seen since freeze_tasks."""
        for t in tasks(self.pid):
            self.task_sw.setdefault(t, (0, 0))
        for t in self.task_ns:
            self.task_sw.setdefault(t, (0, 0))
        return ctxt_switches(list(self.task_sw), self.task_sw)

    def cpu_ns(self):
        """CPU of every thread seen since freeze_tasks, ended ones included."""
        for t in tasks(self.pid):
            self.task_ns.setdefault(t, 0)
        return sched_ns(list(self.task_ns), self.task_ns)

    def output(self):
        out = self.emu.output(self.v.name)
        return out.splitlines() if isinstance(out, str) else [l.rstrip("\n") for l in out]

    def summary(self):
        """The tracer's shutdown summary line as a dict of numbers."""
        found = {}
        for line in self.output():
            for key in ("INFO export ", "INFO shutdown reason="):
                if key in line:
                    for k, v in re.findall(r"(\w+)=(\d+)", line):
                        found[k] = int(v)
        need("records" in found and "submitted" in found,
             f"{self.v.label}: no shutdown summary in the extension's log")
        return found

    def close(self):
        try:
            self.emu.close()
        finally:
            if self.sink:
                self.sink.close()
            shutil.rmtree(self.root, ignore_errors=True)


def first(entries, pred, what):
    for e in entries:
        if pred(e):
            return e
    raise BenchError(f"not in the emulator's log: {what}")


def exec_time_ns(emu, name):
    """When the emulator started this process: just before its fork and
    exec (after them, the Python thread may get the GIL back only once the
    process has already registered)."""
    for p in emu.processes():
        if p.name == name and p.t_spawn_ns:
            return p.t_spawn_ns
    raise BenchError(f"the emulator did not launch {name}")


# --------------------------------------------------------------- figure 1 (+ idle memory, figure 3)

def fig_cold_start(cfg, reps):
    labels = ["none", "floor", "tracer"]
    data = {l: {"env_to_first_response_ms": [], "init_duration_ms": [], "own_init_ms": [],
                "own_init_ext_share_ms": [], "init_api_calls": [], "exec_to_register_ms": [], "init_cpu_ms": [], "idle_rss": [], "idle_hwm": []} for l in labels}
    for rep in range(reps):
        for label in rotated(labels, rep):
            v = cfg.variants[label]
            sb = Sandbox(v)
            try:
                t0, init = sb.start()
                if v.binary:
                    # CPU the extension used from its exec to the end of Init
                    # (every thread still running: one that already ended
                    # counts nothing): a busy machine delays it but does
                    # not inflate it
                    data[label]["init_cpu_ms"].append(sched_ns(tasks(sb.pid)) / 1e6)
                sb.invoke()
                log = list(sb.emu.api_log)
                resp = first(log, lambda e: e.get("api") == "runtime" and e.get("method") == "POST"
                             and e.get("path", "").endswith("/response"), "first runtime response")
                d = data[label]
                d["env_to_first_response_ms"].append((resp["t_req_ns"] - t0) / 1e6)
                d["init_duration_ms"].append(init.duration_ms)
                if v.binary:
                    t_exec = exec_time_ns(sb.emu, v.name)
                    reg = first(log, lambda e: e.get("who") == v.name and e.get("path", "").endswith(
                        "/extension/register"), f"{v.name} register")
                    nxt = first(log, lambda e: e.get("who") == v.name and e.get("path", "").endswith(
                        "/extension/event/next"), f"{v.name} first /event/next")
                    d["own_init_ms"].append((nxt["t_req_ns"] - t_exec) / 1e6)
                    d["exec_to_register_ms"].append((reg["t_req_ns"] - t_exec) / 1e6)
                    # the part of it the extension itself ran: minus the time
                    # the (Python) emulator took to answer its Init calls
                    waits = sum(e["t_mono_ns"] - e["t_req_ns"] for e in log
                                if e.get("who") == v.name and e.get("api") in ("extension", "telemetry")
                                and e["t_req_ns"] < nxt["t_req_ns"] and e is not nxt)
                    d["own_init_ext_share_ms"].append((nxt["t_req_ns"] - t_exec - waits) / 1e6)
                    d["init_api_calls"].append(sum(1 for e in log if e.get("who") == v.name
                                                   and e.get("api") in ("extension", "telemetry")
                                                   and e["t_req_ns"] <= nxt["t_req_ns"]))
                    mem = proc_status(sb.pid)
                    d["idle_rss"].append(mem["VmRSS"])
                    d["idle_hwm"].append(mem["VmHWM"])
                sd = sb.emu.shutdown()
                if v.binary:
                    need(sd.extensions[v.name].exit_code == 0, f"{label}: exit {sd.extensions[v.name]}")
            finally:
                sb.close()
    out = {}
    for label in labels:
        out[label] = {k: stats(vals, f"figure 1 {label} {k}") for k, vals in data[label].items() if vals
                      or label != "none"}
    return out


# --------------------------------------------------------------- figure 2

def fig_flush(cfg, n):
    labels = ["none", "floor", "background", "auto", "eager"]
    warm = 3  # auto exports the first 3 invocations before /next
    boxes = {l: Sandbox(cfg.variants[l]) for l in labels}
    held = {l: [] for l in labels}
    dur = {l: [] for l in labels}
    first3 = {l: [] for l in labels}
    try:
        for sb in boxes.values():
            sb.start()
        for i in range(warm + n):
            for label in rotated(labels, i):
                sb = boxes[label]
                rep = sb.report(sb.invoke())
                spans = {s["name"]: s for s in rep.get("spans", [])}
                need("extensionOverhead" in spans, f"figure 2 {label}: report has no extensionOverhead")
                h = spans["extensionOverhead"]["durationMs"]
                if i < warm:
                    first3[label].append(h)
                else:
                    held[label].append(h)
                    dur[label].append(rep["metrics"]["durationMs"])
    finally:
        for sb in boxes.values():
            sb.close()
    out = {}
    for label in labels:
        out[label] = {"held_open_ms": stats(held[label], f"figure 2 {label} held open"),
                      "duration_ms": stats(dur[label], f"figure 2 {label} durationMs"),
                      "first_3_held_open_ms": stats(first3[label], f"figure 2 {label} first 3")}
    return out


# --------------------------------------------------------------- figure 7 (+ memory after load)

def fig_cpu(cfg, n):
    labels = ["floor", "tracer"]
    boxes = {l: Sandbox(cfg.variants[l]) for l in labels}
    per_inv = {l: [] for l in labels}
    held = {l: [] for l in labels}
    out = {}
    try:
        for sb in boxes.values():
            sb.start()
            for _ in range(3):
                sb.invoke()
            sb.freeze_tasks()
        cpu0 = {l: proc_cpu_s(boxes[l].pid) for l in labels}
        for i in range(n):
            for label in rotated(labels, i):
                sb = boxes[label]
                before = sb.cpu_ns()
                res = sb.invoke()
                per_inv[label].append((sb.cpu_ns() - before) / 1e3)
                spans = {s["name"]: s for s in sb.report(res).get("spans", [])}
                need("extensionOverhead" in spans, f"figure 7 {label}: report has no extensionOverhead")
                held[label].append(spans["extensionOverhead"]["durationMs"])
        for label in labels:
            sb = boxes[label]
            total_s = proc_cpu_s(sb.pid) - cpu0[label]
            need(set(tasks(sb.pid)) <= set(sb.task_dirs), f"figure 7 {label}: a thread started during the run")
            mem = proc_status(sb.pid)
            out[label] = {"invocations": n, "cpu_total_s": total_s,
                          "cpu_per_invocation_us_from_stat": total_s * 1e6 / n,
                          "cpu_per_invocation_us": stats(per_inv[label], f"figure 7 {label}"),
                          "held_open_ms": stats(held[label], f"figure 7 {label} held open"),
                          "rss_after": mem["VmRSS"], "hwm_after": mem["VmHWM"]}
        for label in labels:
            sd = boxes[label].emu.shutdown()
            need(sd.extensions[cfg.variants[label].name].exit_code == 0, f"figure 7 {label}: bad exit")
    finally:
        for sb in boxes.values():
            sb.close()
    return out


# --------------------------------------------------------------- figure 8: timeout forensics

SLOW_1100 = b'{"action":"slow","ms":1100}'


def fig_snapshot(cfg, n):
    """CPU the extension spends on snapshots of the runtime: n slow invocations (1.1 s,
    LAMBDA_TRACER_SLOW_MS=100: each gets the sampler's 8 snapshots), from the extension's own
    count (forensics cpu_us: its pipeline thread's CPU clock around each snapshot)."""
    v = cfg.variants["tracer"]
    sb = Sandbox(Variant("forensics", v.binary, v.name, {"LAMBDA_TRACER_SLOW_MS": "100"}))
    try:
        sb.start()
        for _ in range(n):
            res = sb.emu.invoke(SLOW_1100)
            need(res.status == "success", f"figure 8: invoke {res.status}")
        sb.emu.shutdown()
        line = [l for l in sb.output() if " forensics snapshots=" in l]
        need(line, "figure 8: no forensics line in the extension's log")
        got = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line[-1])}
    finally:
        sb.close()
    need(got["snapshots"] > 0 and got["slow"] == n, f"figure 8: {got}")
    return {"slow_invocations": n, "snapshots": got["snapshots"], "failures": got["failures"],
            "cpu_us": got["cpu_us"],
            "us_per_snapshot": got["cpu_us"] / got["snapshots"],
            "us_per_slow_invocation": got["cpu_us"] / n}


# --------------------------------------------------------------- figure 4 (+ peak memory, figure 3)

def wait_idle(sb, quiet_ms=50, limit_s=60):
    """Waits until the extension's threads stop using CPU; returns the
    monotonic time (ns) of the last CPU use seen."""
    last = sb.cpu_ns()
    t_last = time.monotonic_ns()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.002)
        now = sb.cpu_ns()
        if now != last:
            last, t_last = now, time.monotonic_ns()
        elif time.monotonic_ns() - t_last > quiet_ms * 1e6:
            return t_last
    raise BenchError(f"{sb.v.label}: still busy after {limit_s} s")


def run_loadgen(cfg, sb, batches, cpu):
    dest = sb.emu.subscribers()[sb.v.name]["destination"]
    argv = [cfg.loadgen, str(dest["port"]), dest["path"] or "/", str(batches), "1000", "7", "1024"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                       preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None)
    need(p.returncode == 0, f"loadgen failed ({p.returncode}): {p.stdout} {p.stderr}")
    return json.loads(p.stdout)


def ingest_variant(label, binary, name, env):
    base = {"LAMBDA_TRACER_EXPORTERS": "stdout", "LAMBDA_TRACER_LOG_TAIL_LINES": "20",
            "LAMBDA_TRACER_BUFFER_MAX_BYTES": "1048576"}
    base.update(env)
    return Variant(label, binary, name, base, stdout_null=True)


def fig_ingest(cfg, reps, batches):
    ext_cpu, gen_cpu = (1, 0) if os.cpu_count() >= 2 else (None, None)
    labels = ["floor", "tracer"]
    variants = {
        "floor": Variant("floor", cfg.floor, FLOOR, {"BENCH_FLOOR_LISTEN": "1"}),
        # a queue that holds the whole run: every record is processed, none dropped
        "tracer": ingest_variant("tracer", cfg.tracer, TRACER, {"LAMBDA_TRACER_QUEUE_MAX_BYTES": "268435456"}),
    }
    boxes = {l: Sandbox(variants[l], freeze=False) for l in labels}
    res = {l: {"cpu_us_per_record": [], "per_core_records_s": [], "wall_records_s": []} for l in labels}
    sent = {l: 0 for l in labels}
    out = {}
    try:
        for sb in boxes.values():
            sb.start()
            sb.invoke()
            sb.freeze_tasks()
            wait_idle(sb)
            if ext_cpu is not None:
                pin(sb.pid, ext_cpu)
        for rep in range(reps):
            for label in rotated(labels, rep):
                sb = boxes[label]
                c0 = sb.cpu_ns()
                g = run_loadgen(cfg, sb, batches, gen_cpu)
                t_end = wait_idle(sb)
                cpu_s = (sb.cpu_ns() - c0) / 1e9
                need(cpu_s > 0, f"figure 4 {label}: no CPU time used")
                recs = g["records"]
                sent[label] += recs
                res[label]["cpu_us_per_record"].append(cpu_s * 1e6 / recs)
                res[label]["per_core_records_s"].append(recs / cpu_s)
                res[label]["wall_records_s"].append(recs / ((t_end - g["t_first_ns"]) / 1e9))
                out.setdefault("batch_bytes", g["bytes"] // g["batches"])
                out.setdefault("records_per_batch", g["records_per_batch"])
        for label in labels:
            sd = boxes[label].emu.shutdown()
            need(sd.extensions[variants[label].name].exit_code == 0, f"figure 4 {label}: bad exit")
        s = boxes["tracer"].summary()
        # every record sent was parsed and every invocation's segment encoded
        need(s["records"] >= sent["tracer"], f"figure 4: tracer parsed {s['records']} of {sent['tracer']}")
        need(s["queue_dropped"] == 0 and s["dropped_full"] == 0 and s["stdout_failed"] == 0,
             f"figure 4: tracer dropped data {s}")
        need(s["segments"] >= sent["tracer"] // 10, f"figure 4: only {s['segments']} segments")
        out["tracer_summary"] = {k: s[k] for k in ("records", "segments", "queue_dropped", "stdout_sent")}
    finally:
        for sb in boxes.values():
            sb.close()
    for label in labels:
        out[label] = {k: stats(v, f"figure 4 {label} {k}") for k, v in res[label].items()}
    out["pinned"] = ext_cpu is not None
    return out


def fig_flood(cfg, batches):
    """Peak memory under a flood that overflows the default queue."""
    v = ingest_variant("tracer", cfg.tracer, TRACER, {})
    sb = Sandbox(v, freeze=False)
    try:
        sb.start()
        sb.invoke()
        sb.freeze_tasks()
        g = run_loadgen(cfg, sb, batches, None)
        wait_idle(sb)
        mem = proc_status(sb.pid)
        sd = sb.emu.shutdown()
        need(sd.extensions[TRACER].exit_code == 0, "flood: bad exit")
        s = sb.summary()
    finally:
        sb.close()
    body_cap = 2 * 1048576 + LISTENER_BODY_SLACK_BYTES
    caps = QUEUE_DEFAULT_BYTES + EXPORT_QUEUE_DEFAULT_BYTES + (LISTENER_MAX_CONNECTIONS + PARSE_FACTOR) * body_cap
    return {"batches": g["batches"], "bytes": g["bytes"], "hwm": mem["VmHWM"], "rss_after": mem["VmRSS"],
            "queue_dropped_batches": s["queue_dropped"], "records_parsed": s["records"], "caps_bytes": caps}


# --------------------------------------------------------------- figure 5

def fig_shutdown(cfg, reps, pendings):
    labels = ["none", "floor"] + [f"tracer-{p}" for p in pendings]
    per_batch = 250  # about 140 KB: under Lambda's 2 x maxBytes
    bodies = {p: [fake_invocations(min(per_batch, p - i)) for i in range(0, p, per_batch)] for p in pendings}
    ms = {l: [] for l in labels}
    env_ms = {l: [] for l in labels}
    delivered = {l: [] for l in labels}
    killed = {l: 0 for l in labels}
    for rep in range(reps):
        for label in rotated(labels, rep):
            pending = int(label.split("-")[1]) if label.startswith("tracer-") else 0
            v = cfg.variants["tracer" if label.startswith("tracer-") else label]
            sb = Sandbox(v)
            try:
                sb.start()
                sb.invoke()
                for body in bodies.get(pending, []):
                    status, _ = sb.emu.send_raw_telemetry(v.name, body)
                    need(status == 200, f"figure 5 {label}: telemetry POST answered {status}")
                sd = sb.emu.shutdown()
                env_ms[label].append(sd.duration_ms)
                if v.binary:
                    ext = sd.extensions[v.name]
                    # killed at the deadline is a result (counted), not a failure to measure
                    need(ext.killed or ext.exit_code == 0, f"figure 5 {label}: {ext}")
                    need(ext.shutdown_delivered and ext.ms_to_exit is not None, f"figure 5 {label}: {ext}")
                    ms[label].append(ext.ms_to_exit)
                    killed[label] += int(ext.killed)
                if sb.sink:
                    finals = {d["id"] for d in sb.sink.documents if not d.get("in_progress")}
                    delivered[label].append(len(finals))
            finally:
                sb.close()
    out = {}
    for label in labels:
        o = {"environment_shutdown_ms": stats(env_ms[label], f"figure 5 {label} environment")}
        if label != "none":
            o["shutdown_to_exit_ms"] = stats(ms[label], f"figure 5 {label}")
            o["killed_at_deadline"] = killed[label]
        if delivered[label]:
            pending = int(label.split("-")[1])
            o["segments_expected"] = pending + 1
            o["segments_delivered_min"] = min(delivered[label])
        out[label] = o
    return out


# --------------------------------------------------------------- figure 9: the counting pass (issue 12's goals)
#
# Load-independent counts, measured in runs of their own (never in the timing runs above):
# system calls (strace), threads, context switches (/proc/<pid>/task/*/status) and CPU time
# (schedstat), for the tracer beside the floor and the floor + listener.

STRACE_MARK = "/extension/event/next"


class FirstNextEmulator(lambda_emulator.Emulator):
    """The emulator, noting each extension's threads and CPU time the moment its first
    /event/next arrives (the end of its own Init; the call is answered only after Init)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.at_first_next = {}

    def _h_ext_next(self, h, t_req):
        with self._cv:
            ext, _ = self._lookup_ext_locked(h)
            first_call = ext is not None and not ext.first_next and ext.proc is not None
            name, pid = (ext.name, ext.proc.pid) if first_call else (None, None)
        if pid and name not in self.at_first_next:
            ts = tasks(pid)
            self.at_first_next[name] = {"threads": len(ts), "cpu_ns": sched_ns(ts)}
        return super()._h_ext_next(h, t_req)


def strace_lines(path):
    """The system calls in an `strace -f` log, in order: one entry per call (an
    interrupted call's "resumed" half is not a second one; signals and exits are not calls)."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            rest = line.split(None, 1)[1] if line[:1].isdigit() else line
            if rest.startswith(("<...", "+++", "---")) or not re.match(r"[a-z_0-9]+\(", rest):
                continue
            out.append(rest)
    return out


def syscall_counts(v, warm, n):
    """System calls of variant v (all its threads, its process only, under strace -f):
    before and including its first /event/next, and per warm invocation (between the
    /event/next calls that end invocation `warm` and invocation `warm + n`)."""
    need(shutil.which("strace"), "figure 9: strace is not installed")
    log_dir = tempfile.mkdtemp(prefix="lt-bench-strace-")
    log = os.path.join(log_dir, "trace")
    traced = Variant(v.label, v.binary, v.name, v.env, xray=v.xray,
                     wrap=["strace", "-f", "-qq", "-s", "64", "-o", log])
    sb = Sandbox(traced)
    try:
        sb.start()
        for _ in range(warm + n):
            sb.invoke()
        sb.emu.shutdown()
        calls = strace_lines(log)
    finally:
        sb.close()
        shutil.rmtree(log_dir, ignore_errors=True)
    marks = [i for i, c in enumerate(calls) if STRACE_MARK in c and not c.startswith(("read", "recv"))]
    need(len(marks) >= warm + n + 1, f"figure 9 {v.label}: {len(marks)} /event/next calls in the strace log")
    names = {}
    for c in calls[:marks[0] + 1]:
        k = c.split("(", 1)[0]
        names[k] = names.get(k, 0) + 1
    return {"before_first_next": marks[0] + 1, "before_first_next_by_call": names,
            "per_warm_invocation": (marks[warm + n] - marks[warm]) / n}


def init_snapshots(v, reps):
    """Threads and CPU time (all threads alive, schedstat) when the first /event/next arrives."""
    threads, cpu = [], []
    for _ in range(reps):
        sb = Sandbox(v, emulator_class=FirstNextEmulator)
        try:
            sb.start()
            snap = sb.emu.at_first_next.get(v.name)
            need(snap, f"figure 9 {v.label}: the first /event/next was not seen")
            threads.append(snap["threads"])
            cpu.append(snap["cpu_ns"] / 1e6)
            sb.emu.shutdown()
        finally:
            sb.close()
    return {"threads": max(threads), "cpu_ms": stats(cpu, f"figure 9 {v.label} Init CPU")}


def warm_counts(variants, warm, n, idle_s):
    """Per warm invocation (frozen between invocations, as on Lambda): context switches and
    CPU time; then, not frozen (Managed Instances), the CPU and wake-ups per second of idle."""
    out = {}
    boxes = {l: Sandbox(v) for l, v in variants.items()}
    try:
        for sb in boxes.values():
            sb.start()
            for _ in range(warm):
                sb.invoke()
            sb.freeze_tasks()
        cpu = {l: [] for l in boxes}
        sw0 = {l: boxes[l].switches() for l in boxes}
        for i in range(n):
            for label in rotated(list(boxes), i):
                sb = boxes[label]
                c0 = sb.cpu_ns()
                sb.invoke()
                cpu[label].append((sb.cpu_ns() - c0) / 1e3)
        for label, sb in boxes.items():
            vol, invol = sb.switches()
            out[label] = {"voluntary_per_invocation": (vol - sw0[label][0]) / n,
                          "nonvoluntary_per_invocation": (invol - sw0[label][1]) / n,
                          "cpu_us_per_invocation": stats(cpu[label], f"figure 9 {label} CPU per invocation")}
    finally:
        for sb in boxes.values():
            sb.close()
    # idle, never frozen
    boxes = {l: Sandbox(v, freeze=False) for l, v in variants.items()}
    try:
        for sb in boxes.values():
            sb.start()
            for _ in range(warm):
                sb.invoke()
            sb.freeze_tasks()
        for label, sb in boxes.items():
            wait_idle(sb, quiet_ms=100)
            c0, s0 = sb.cpu_ns(), sb.switches()
            t0 = time.monotonic()
            time.sleep(idle_s)
            c1, s1 = sb.cpu_ns(), sb.switches()
            dt = time.monotonic() - t0
            out[label]["idle_cpu_us_per_s"] = (c1 - c0) / 1e3 / dt
            out[label]["idle_wakeups_per_s"] = (s1[0] - s0[0]) / dt
            out[label]["idle_window_s"] = dt
    finally:
        for sb in boxes.values():
            sb.close()
    return out


def shutdown_cpu(v, pending, delay_ms):
    """SHUTDOWN with `pending` invocations' records just arrived (the sandbox frozen in
    between, as on Lambda), to an X-Ray API sink that answers each request after delay_ms
    (no sink for a variant without one): the extension's CPU from just before the records
    are sent to its exit (all threads, schedstat, sampled every millisecond until it exits:
    how much is parsed before SHUTDOWN depends on timing, the whole does not), and what the
    sink saw."""
    import threading
    per_batch = 250
    bodies = [fake_invocations(min(per_batch, pending - i)) for i in range(0, pending, per_batch)]
    sb = Sandbox(v)
    try:
        sb.start()
        sb.invoke()
        sb.freeze_tasks()
        if sb.sink:
            sb.sink.delay_s = delay_ms / 1000.0
        stop = threading.Event()

        def sample():
            while not stop.is_set() and os.path.exists(f"/proc/{sb.pid}"):
                sb.cpu_ns()
                time.sleep(0.001)
        c0 = sb.cpu_ns()
        t0 = time.monotonic()
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        try:
            for body in bodies:
                status, _ = sb.emu.send_raw_telemetry(v.name, body)
                need(status == 200, f"figure 9 shutdown: telemetry POST answered {status}")
            t_sd = time.monotonic()
            sd = sb.emu.shutdown()
        finally:
            stop.set()
            th.join()
        cpu_ns = sched_ns(list(sb.task_ns), sb.task_ns) - c0
        ext = sd.extensions[v.name]
        need(ext.shutdown_delivered and ext.ms_to_exit is not None, f"figure 9 shutdown: {ext}")
        out = {"shutdown_to_exit_ms": ext.ms_to_exit, "killed": bool(ext.killed), "cpu_us": cpu_ns / 1e3}
        if sb.sink:
            with sb.sink.lock:
                out["requests"] = sum(1 for r in sb.sink.requests if r["t"] >= t0)
                out["requests_after_shutdown"] = sum(1 for r in sb.sink.requests if r["t"] >= t_sd)
                out["segments_delivered"] = len({d["id"] for d in sb.sink.documents if not d.get("in_progress")})
        return out
    finally:
        sb.close()


def slow_sink_shutdown(v, pending, delay_ms):
    """SHUTDOWN with `pending` to a sink answering after delay_ms: segments delivered,
    SHUTDOWN to exit, and the export's CPU per request: the extension's CPU from the records'
    arrival to its exit, minus that of the same run exporting nothing
    (LAMBDA_TRACER_EXPORTERS=none: the records still parsed), over the requests sent.  The
    difference holds all the exporting costs, encoding included: segments encoded but never
    sent (cut at the deadline) count against the requests that were."""
    x = shutdown_cpu(v, pending, delay_ms)
    base = shutdown_cpu(Variant(v.label + "-none", v.binary, v.name, dict(v.env, LAMBDA_TRACER_EXPORTERS="none")),
                        pending, delay_ms)
    need(x["requests"], "figure 9 shutdown: no request to the sink")
    return {"pending": pending, "sink_delay_ms": delay_ms, "segments_expected": pending + 1,
            "segments_delivered": x["segments_delivered"], "shutdown_to_exit_ms": x["shutdown_to_exit_ms"],
            "killed": x["killed"], "requests": x["requests"], "requests_after_shutdown": x["requests_after_shutdown"],
            "cpu_us_all_threads": x["cpu_us"], "cpu_us_exporting_nothing": base["cpu_us"],
            "cpu_us_per_request_all_threads": x["cpu_us"] / x["requests"],
            # a difference of two runs: may come out below 0 when exporting costs next to nothing
            "export_cpu_us_per_request_delta": (x["cpu_us"] - base["cpu_us"]) / x["requests"]}


def https_memory(v, reps):
    """Idle RSS after the first HTTPS export (X-Ray API over TLS to a local sink whose CA is
    given with LAMBDA_TRACER_CA_FILE), with a bundle of that CA only and with the system's
    whole bundle plus it: the difference is what loading a real bundle costs (RSS, and CPU of
    the invocation that made the first export)."""
    system = next((p for p in ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt")
                   if os.path.isfile(p)), None)
    need(system, "figure 9 HTTPS: no system CA bundle to measure")
    pki = tls.make_pki(("localhost",))
    out = {}
    try:
        with open(os.path.join(pki, "ca.pem")) as f:
            ca = f.read()
        with open(system) as f:
            whole = f.read()
        bundles = {"test_ca_only": ca, "system_bundle": whole + "\n" + ca}
        out["system_bundle_certificates"] = whole.count("BEGIN CERTIFICATE")
        out["system_bundle_bytes"] = len(whole.encode())
        for key, text in bundles.items():
            path = os.path.join(pki, key + ".pem")
            with open(path, "w") as f:
                f.write(text)
            rss, cpu = [], []
            for _ in range(reps):
                tv = Variant(v.label, v.binary, v.name, dict(v.env, LAMBDA_TRACER_CA_FILE=path), xray=True)
                # not frozen: an export the eager budget cut (a slow first handshake, a big
                # bundle) finishes in the background instead of waiting for the next thaw
                sb = Sandbox(tv, freeze=False, tls_pki=pki)
                try:
                    sb.start()
                    sb.freeze_tasks()
                    c0 = sb.cpu_ns()
                    sb.invoke()  # the default policy exports the first invocations before /next
                    deadline = time.monotonic() + 30
                    while not sb.sink.documents and time.monotonic() < deadline:
                        time.sleep(0.005)  # the response may come back before the export is done
                    need(sb.sink.documents, f"figure 9 HTTPS ({key}): nothing arrived over HTTPS in 30 s")
                    wait_idle(sb)
                    cpu.append((sb.cpu_ns() - c0) / 1e3)
                    need(any(h[0] == "ok" for h in sb.sink.handshakes), f"figure 9 HTTPS ({key}): no handshake")
                    rss.append(proc_status(sb.pid)["VmRSS"])
                    sb.emu.shutdown()
                finally:
                    sb.close()
            out[key] = {"idle_rss": stats(rss, f"figure 9 HTTPS {key} RSS"),
                        "first_export_invocation_cpu_us": stats(cpu, f"figure 9 HTTPS {key} CPU")}
    finally:
        shutil.rmtree(pki, ignore_errors=True)
    out["bundle_rss_bytes_delta"] = out["system_bundle"]["idle_rss"]["median"] - out["test_ca_only"]["idle_rss"]["median"]
    out["bundle_cpu_us_delta"] = (out["system_bundle"]["first_export_invocation_cpu_us"]["median"]
                            - out["test_ca_only"]["first_export_invocation_cpu_us"]["median"])
    return out


def fig_counts(cfg, c):
    """The counting pass: c holds its counts (warm, n, idle_s, init_reps, pending, tls_reps)."""
    tracer = cfg.variants["tracer"]
    refs = {"floor": cfg.variants["floor"],
            "floor_listener": Variant("floor_listener", cfg.floor, FLOOR, {"BENCH_FLOOR_LISTEN": "1"})}
    both = dict(refs, tracer=tracer)
    # the same with nothing exported: what the Extensions API, the listener and the pipeline
    # cost without the exporter (a reference, not a goal)
    quiet = Variant("tracer_exporting_nothing", tracer.binary, tracer.name,
                    dict(tracer.env, LAMBDA_TRACER_EXPORTERS="none"))
    out = {"syscalls": {l: syscall_counts(v, c["warm"], c["strace_n"])
                        for l, v in dict(both, tracer_exporting_nothing=quiet).items()},
           "init": {l: init_snapshots(v, c["init_reps"]) for l, v in both.items()},
           "warm": warm_counts({"floor_listener": refs["floor_listener"], "tracer": tracer},
                               c["warm"], c["n"], c["idle_s"]),
           "shutdown_slow_sink": slow_sink_shutdown(tracer, c["pending"], 30),
           "https_memory": https_memory(tracer, c["tls_reps"])}
    return out


# --------------------------------------------------------------- figure 6

STRIP = {"x86_64": ["strip", "llvm-strip"], "arm64": ["aarch64-linux-gnu-strip", "llvm-strip"]}


def stripped_size(path, arch):
    for tool in STRIP.get(arch, ["llvm-strip"]):
        if shutil.which(tool):
            with tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, "s")
                p = subprocess.run([tool, "-o", out, path], capture_output=True, text=True)
                need(p.returncode == 0, f"figure 6: {tool} {path}: {p.stderr.strip()}")
                return os.path.getsize(out)
    raise BenchError(f"figure 6: no strip tool for {arch}")


def fig_size(cfg):
    out = {"floor_x86_64": stripped_size(cfg.floor, "x86_64")}
    for spec in cfg.sizes:
        arch, binary, zipf = spec.split(":")
        need(os.path.isfile(binary), f"figure 6: {arch} binary {binary} is missing")
        need(zipf and os.path.isfile(zipf), f"figure 6: {arch} layer zip {zipf or '(none given)'} is missing")
        out[arch] = {"binary": os.path.relpath(binary, REPO), "stripped_bytes": stripped_size(binary, arch),
                     "zip": os.path.relpath(zipf, REPO), "zip_bytes": os.path.getsize(zipf)}
    need(len(out) > 1, "figure 6: no architecture given")
    return out


# --------------------------------------------------------------- report

def fmt_ms(s):
    return f"{s['median']:.2f} / {s['p95']:.2f}"


def fmt_mib(b):
    return f"{b / 1048576:.2f} MiB"


# Goals of issue 12 (engine round 2), judged from the counting pass (figure 9) and figures 2-6.
GOAL12_INIT_SYSCALLS = 30
GOAL12_INIT_THREADS = 2
GOAL12_INIT_CPU_VS_FLOOR_LISTENER_MS = 0.2
GOAL12_WARM_SYSCALLS = 6
GOAL12_WARM_WAKEUPS = 6
GOAL12_WARM_CPU_VS_FLOOR_LISTENER_US = 30
GOAL12_IDLE_CPU_US_PER_S = 0
GOAL12_INGEST_PER_CORE = 1_000_000
GOAL12_SHUTDOWN_MS = 1500
GOAL12_EXPORT_CPU_PER_REQUEST_US = 100
GOAL12_IDLE_RSS_HTTPS_BYTES = 1024 * 1024
GOAL12_ZIP_BYTES = 500_000

# how `measured` is judged against `target`
COMPARE = {"<=": lambda m, t: m <= t, ">=": lambda m, t: m >= t, "<": lambda m, t: m < t,
           "==": lambda m, t: m == t}


def goal(number, text, measured, op, target, unit, **extra):
    need(isinstance(measured, (int, float)) and not isinstance(measured, bool) and math.isfinite(measured),
         f"goal {number} ({text}): measured {measured!r} is not a number")
    return dict(extra, figure=number, goal=text, measured=measured, op=op, target=target, unit=unit,
                met=bool(COMPARE[op](measured, target)))


def goals(r):
    """Issue 12's goals 1-6: each {figure, goal, measured (a number), op, target, unit, met},
    met computed from measured; `reference` gives the floor's figures where one is compared."""
    f = r["figures"]
    c = f["9_counts"]
    sc, init, warm = c["syscalls"], c["init"], c["warm"]
    g = []
    g.append(goal("1", "system calls before the first `/event/next`", sc["tracer"]["before_first_next"], "<=",
                  GOAL12_INIT_SYSCALLS, "calls", reference={"floor": sc["floor"]["before_first_next"],
                                                            "floor + listener": sc["floor_listener"]["before_first_next"]}))
    g.append(goal("1", "threads when the first `/event/next` arrives", init["tracer"]["threads"], "<=",
                  GOAL12_INIT_THREADS, "threads", reference={"floor": init["floor"]["threads"],
                                                             "floor + listener": init["floor_listener"]["threads"]}))
    t, fl = init["tracer"]["cpu_ms"]["median"], init["floor_listener"]["cpu_ms"]["median"]
    g.append(goal("1", "Init CPU (to the first `/event/next`) minus floor + listener's (medians)", t - fl, "<=",
                  GOAL12_INIT_CPU_VS_FLOOR_LISTENER_MS, "ms",
                  reference={"tracer": t, "floor + listener": fl, "floor": init["floor"]["cpu_ms"]["median"]}))
    g.append(goal("2", "system calls per warm invocation (default policy)", sc["tracer"]["per_warm_invocation"],
                  "<=", GOAL12_WARM_SYSCALLS, "calls",
                  reference={"floor": sc["floor"]["per_warm_invocation"],
                             "floor + listener": sc["floor_listener"]["per_warm_invocation"],
                             "tracer exporting nothing": sc["tracer_exporting_nothing"]["per_warm_invocation"]}))
    g.append(goal("2", "wake-ups (voluntary context switches, all threads) per warm invocation",
                  warm["tracer"]["voluntary_per_invocation"], "<=", GOAL12_WARM_WAKEUPS, "switches",
                  reference={"floor + listener": warm["floor_listener"]["voluntary_per_invocation"],
                             "nonvoluntary (tracer)": warm["tracer"]["nonvoluntary_per_invocation"]}))
    t, fl = warm["tracer"]["cpu_us_per_invocation"]["median"], warm["floor_listener"]["cpu_us_per_invocation"]["median"]
    g.append(goal("2", "CPU per warm invocation minus floor + listener's (medians)", t - fl, "<=",
                  GOAL12_WARM_CPU_VS_FLOOR_LISTENER_US, "µs", reference={"tracer": t, "floor + listener": fl}))
    auto, floor = f["2_added_time"]["auto"]["held_open_ms"], f["2_added_time"]["floor"]["held_open_ms"]
    g.append(goal("2", "held open after the response, default policy (median, against the floor's p95)",
                  auto["median"], "<=", floor["p95"], "ms"))
    g.append(goal("2", "CPU while idle, never frozen (Managed Instances)", warm["tracer"]["idle_cpu_us_per_s"], "<=",
                  GOAL12_IDLE_CPU_US_PER_S, "µs/s",
                  reference={"wake-ups/s (tracer)": warm["tracer"]["idle_wakeups_per_s"],
                             "floor + listener": warm["floor_listener"]["idle_cpu_us_per_s"]}))
    ing = f["4_ingest"]["tracer"]["per_core_records_s"]["median"]
    g.append(goal("3", "telemetry ingest, records/s per core (parse + assemble + encode)", ing, ">=",
                  GOAL12_INGEST_PER_CORE, "records/s"))
    sd = c["shutdown_slow_sink"]
    g.append(goal("4", f"SHUTDOWN with {sd['pending']:,} pending, sink answering after {sd['sink_delay_ms']} ms: "
                  "segments delivered", sd["segments_delivered"], ">=", sd["segments_expected"], "segments"))
    g.append(goal("4", "same: SHUTDOWN to exit", sd["shutdown_to_exit_ms"], "<", GOAL12_SHUTDOWN_MS, "ms"))
    g.append(goal("4", "same: export CPU per PutTraceSegments request (CPU minus a run exporting nothing, "
                  "encoding included)",
                  sd["export_cpu_us_per_request_delta"], "<=", GOAL12_EXPORT_CPU_PER_REQUEST_US, "µs",
                  reference={"all threads, per request": sd["cpu_us_per_request_all_threads"],
                             "requests": sd["requests"]}))
    hm = c["https_memory"]
    g.append(goal("5", "idle RSS after the first HTTPS export (system CA bundle loaded)",
                  hm["system_bundle"]["idle_rss"]["median"], "<=", GOAL12_IDLE_RSS_HTTPS_BYTES, "bytes",
                  reference={"with a one-certificate bundle": hm["test_ca_only"]["idle_rss"]["median"],
                             "loading the bundle: RSS bytes": hm["bundle_rss_bytes_delta"],
                             "loading the bundle: CPU µs": hm["bundle_cpu_us_delta"],
                             "bundle certificates": hm["system_bundle_certificates"]}))
    fl3 = f["3_memory"]["flood"]
    g.append(goal("5", "peak RSS under a telemetry flood within the stated bound", fl3["hwm"], "<=",
                  fl3["bound_bytes"], "bytes"))
    for arch, v in f["6_size"].items():
        if isinstance(v, dict):
            g.append(goal("6", f"{arch} layer zip", v["zip_bytes"], "<=", GOAL12_ZIP_BYTES, "bytes"))
    return g


def goals_issue5(r):
    g = []
    f1 = r["figures"]["1_cold_start"]
    d = f1["tracer"]["own_init_ms"]["median"] - f1["floor"]["own_init_ms"]["median"]
    g.append(("1", "own init within 1 ms of the floor (medians)", f"{d:+.2f} ms", d <= GOAL_INIT_VS_FLOOR_MS,
              d - GOAL_INIT_VS_FLOOR_MS))
    own = f1["tracer"]["own_init_ms"]["median"]
    g.append(("1", "own init under 2 ms (median)", f"{own:.2f} ms", own < GOAL_OWN_INIT_MS, own - GOAL_OWN_INIT_MS))
    share = f1["tracer"]["own_init_ext_share_ms"]["median"]
    d = share - f1["floor"]["own_init_ext_share_ms"]["median"]
    g.append(("1", "same, the extension's share (without the emulator's answer time): within 1 ms of the floor",
              f"{d:+.2f} ms", d <= GOAL_INIT_VS_FLOOR_MS, d - GOAL_INIT_VS_FLOOR_MS))
    g.append(("1", "same, the extension's share: under 2 ms", f"{share:.2f} ms", share < GOAL_OWN_INIT_MS,
              share - GOAL_OWN_INIT_MS))
    f2 = r["figures"]["2_added_time"]
    auto, floor = f2["auto"]["held_open_ms"], f2["floor"]["held_open_ms"]
    ok = auto["median"] <= floor["p95"]
    g.append(("2", "default (auto) policy, busy function: held open 0 within measurement error "
              "(median not above the floor's p95)", f"{auto['median']:.3f} ms (floor p95 {floor['p95']:.3f})",
              ok, auto["median"] - floor["p95"]))
    f3 = r["figures"]["3_memory"]
    idle = f3["tracer"]["idle_rss"]["median"]
    g.append(("3", "idle RSS under 2 MB", fmt_mib(idle), idle < GOAL_IDLE_RSS_BYTES,
              f"{(idle - GOAL_IDLE_RSS_BYTES) / 1e6:+.2f} MB"))
    fl = f3["flood"]
    g.append(("3", "peak RSS under load within the stated bound", f"{fmt_mib(fl['hwm'])} of {fmt_mib(fl['bound_bytes'])}",
              fl["hwm"] <= fl["bound_bytes"], None))
    f4 = r["figures"]["4_ingest"]["tracer"]["per_core_records_s"]["median"]
    g.append(("4", "500,000 records/s per core", f"{f4:,.0f}", f4 >= GOAL_INGEST_PER_CORE,
              f"{f4 / GOAL_INGEST_PER_CORE:.2f}x of the goal"))
    f5 = r["figures"]["5_shutdown"].get("tracer-100", {}).get("shutdown_to_exit_ms")
    if f5:
        g.append(("5", "shutdown with 100 pending under 20 ms (median)", f"{f5['median']:.2f} ms",
                  f5["median"] < GOAL_SHUTDOWN_100_MS, f5["median"] - GOAL_SHUTDOWN_100_MS))
    for arch, v in r["figures"]["6_size"].items():
        if isinstance(v, dict):
            g.append(("6", f"{arch} layer zip under 1 MB", f"{v['zip_bytes']:,} B",
                      v["zip_bytes"] < GOAL_ZIP_BYTES, v["zip_bytes"] - GOAL_ZIP_BYTES))
    return [{"figure": a, "goal": b, "measured": c, "met": bool(d),
             "miss": e if not d else None} for a, b, c, d, e in g]


def fmt_goal_value(v, unit):
    if unit == "bytes":
        return f"{v:,.0f} B" if abs(v) < 100_000 else f"{v:,.0f} B ({v / 1048576:.2f} MiB)"
    if isinstance(v, int) or float(v).is_integer():
        return f"{v:,.0f} {unit}"
    return f"{v:,.2f} {unit}" if abs(v) < 100 else f"{v:,.0f} {unit}"


def goals_table(goals_list, before=None):
    """The goals as Markdown table lines; with `before` (a goals list of an earlier run, e.g.
    bench/goals-before.json's), a column with its figures beside."""
    prior = {(g["figure"], g["goal"]): g for g in (before or [])}
    head = "| # | goal | target |" + (" before |" if before else "") + " measured | met |"
    L = [head, "|" + " --- |" * (head.count("|") - 1)]
    for g in goals_list:
        cells = [g["figure"], g["goal"], f"{g['op']} {fmt_goal_value(g['target'], g['unit'])}"]
        if before:
            b = prior.get((g["figure"], g["goal"]))
            cells.append(fmt_goal_value(b["measured"], b["unit"]) if b else "—")
        m = fmt_goal_value(g["measured"], g["unit"])
        ref = g.get("reference")
        if ref:
            m += " (" + "; ".join(f"{k} {v:,.4g}" if isinstance(v, float) else f"{k} {v:,}" for k, v in ref.items()) + ")"
        cells += [m, "yes" if g["met"] else "**no**"]
        L.append("| " + " | ".join(cells) + " |")
    return L


def print_goals_table(results_path, before_path):
    with open(results_path) as f:
        r = json.load(f)
    before = None
    if before_path and os.path.exists(before_path):
        with open(before_path) as f:
            before = json.load(f)["goals"]
    m = r.get("meta", {})
    print(f"Goals of issue 12, measured {m.get('date', '?')} ({m.get('binary_kind') or m.get('binary', '?')}, "
          f"commit {m.get('commit', '?')})" + ("; before: today's main, bench/goals-before.json" if before else ""))
    print()
    print("\n".join(goals_table(r["goals"], before)))
    return 0


def table(r):
    f = r["figures"]
    m = r["meta"]
    L = []
    L.append(f"Measured {m['date']} on {m['machine']}; binary `{m['binary']}` ({m['binary_kind']}); "
             f"command `{m['command']}`; took {m['seconds']:.0f} s; `sandbox.localdomain` resolved through "
             f"{m.get('sandbox_localdomain', 'DNS')}. Cells are median / p95 unless marked.")
    L.append("")
    f1 = f["1_cold_start"]
    L.append(f"**1. Cold start** ({f1['reps']} cold starts each, interleaved), ms")
    L.append("")
    L.append("| | none | floor | lambda-tracer | tracer − floor (medians) |")
    L.append("| --- | --- | --- | --- | --- |")
    for key, name in (("own_init_ms", "extension exec → first `/event/next` (own init)"),
                      ("own_init_ext_share_ms", "own init minus the emulator's time answering its Init calls"),
                      ("exec_to_register_ms", "extension exec → `/register`"),
                      ("init_cpu_ms", "CPU time the extension used in Init (all threads, `schedstat`)"),
                      ("env_to_first_response_ms", "environment start → first response"),
                      ("init_duration_ms", "`initReport` durationMs")):
        cells = [fmt_ms(f1[l][key]) if key in f1[l] else "—" for l in ("none", "floor", "tracer")]
        diff = f1["tracer"][key]["median"] - f1["floor"][key]["median"]
        L.append(f"| {name} | {' | '.join(cells)} | {diff:+.2f} |")
    L.append("")
    f2 = f["2_added_time"]
    L.append(f"**2. Added time per warm invocation** ({f2['invocations']} warm invocations each after 3 "
             "warm-ups, interleaved; the report's `extensionOverhead`: time held open after the runtime's "
             "`next` until the last extension's `next`), ms")
    L.append("")
    L.append("| | none | floor | background | auto (default) | eager |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    pol = ("none", "floor", "background", "auto", "eager")
    L.append("| held open after the response | " + " | ".join(fmt_ms(f2[p]["held_open_ms"]) for p in pol) + " |")
    L.append("| report durationMs | " + " | ".join(fmt_ms(f2[p]["duration_ms"]) for p in pol) + " |")
    L.append("| durationMs − none (medians) | " + " | ".join(
        f"{f2[p]['duration_ms']['median'] - f2['none']['duration_ms']['median']:+.2f}" for p in pol) + " |")
    L.append("| first 3 invocations: held open | " + " | ".join(fmt_ms(f2[p]["first_3_held_open_ms"]) for p in pol) + " |")
    L.append("")
    f3 = f["3_memory"]
    L.append("**3. Memory** of the extension process (`/proc/<pid>/status`)")
    L.append("")
    L.append("| | floor | lambda-tracer |")
    L.append("| --- | --- | --- |")
    L.append(f"| VmRSS idle (after Init + 1 invoke; median / p95 of {f1['reps']}) | "
             f"{fmt_mib(f3['floor']['idle_rss']['median'])} / {fmt_mib(f3['floor']['idle_rss']['p95'])} | "
             f"{fmt_mib(f3['tracer']['idle_rss']['median'])} / {fmt_mib(f3['tracer']['idle_rss']['p95'])} |")
    L.append(f"| VmHWM idle | {fmt_mib(f3['floor']['idle_hwm']['median'])} | {fmt_mib(f3['tracer']['idle_hwm']['median'])} |")
    L.append(f"| VmRSS / VmHWM after {f['7_cpu']['tracer']['invocations']:,} invocations | "
             f"{fmt_mib(f3['floor']['after_invocations_rss'])} / {fmt_mib(f3['floor']['after_invocations_hwm'])} | "
             f"{fmt_mib(f3['tracer']['after_invocations_rss'])} / {fmt_mib(f3['tracer']['after_invocations_hwm'])} |")
    fl = f3["flood"]
    L.append(f"| VmHWM under a telemetry flood ({fl['batches']} × 1,000-record batches, "
             f"{fl['bytes'] / 1e6:.0f} MB at once, default caps; {fl['queue_dropped_batches']} batches "
             f"dropped by the full queue) | — | {fmt_mib(fl['hwm'])} |")
    L.append(f"| bound: idle VmHWM + queue 8 MiB + export queue 8 MiB + (16 connections + "
             f"{PARSE_FACTOR} for parsing) × 2.06 MiB body cap | — | {fmt_mib(fl['bound_bytes'])} |")
    L.append("")
    f4 = f["4_ingest"]
    L.append(f"**4. Telemetry ingest** ({f4['reps']} runs each of {f4['batches']} batches × "
             f"{f4['records_per_batch']:,} records, {f4['batch_bytes'] / 1e3:.0f} KB per batch: per invocation "
             "`platform.start`, 7 function lines of 1 KB, `runtimeDone`, `report`; one kept-alive connection; "
             + ("extension pinned to one core, load generator on the other" if f4["pinned"] else "not pinned")
             + "; floor = read and discard)")
    L.append("")
    L.append("| | floor (receive only) | lambda-tracer (parse, assemble, encode to /dev/null) |")
    L.append("| --- | --- | --- |")
    L.append(f"| records/s per core (records / CPU time) | "
             f"{f4['floor']['per_core_records_s']['median']:,.0f} / {f4['floor']['per_core_records_s']['p95']:,.0f} | "
             f"{f4['tracer']['per_core_records_s']['median']:,.0f} / {f4['tracer']['per_core_records_s']['p95']:,.0f} |")
    L.append(f"| CPU time per record, µs | {f4['floor']['cpu_us_per_record']['median']:.2f} / "
             f"{f4['floor']['cpu_us_per_record']['p95']:.2f} | {f4['tracer']['cpu_us_per_record']['median']:.2f} / "
             f"{f4['tracer']['cpu_us_per_record']['p95']:.2f} |")
    L.append(f"| records/s wall clock, first byte → idle | "
             f"{f4['floor']['wall_records_s']['median']:,.0f} / {f4['floor']['wall_records_s']['p95']:,.0f} | "
             f"{f4['tracer']['wall_records_s']['median']:,.0f} / {f4['tracer']['wall_records_s']['p95']:,.0f} |")
    L.append("")
    f5 = f["5_shutdown"]
    labels5 = [l for l in f5 if l not in ("reps",)]
    L.append(f"**5. Shutdown** ({f5['reps']} each, interleaved; pending = invocations whose records reach "
             "the extension just before SHUTDOWN, exported to a local X-Ray API sink), ms")
    L.append("")
    L.append("| | " + " | ".join(l.replace("tracer-", "lambda-tracer, ") + (" pending" if l.startswith("tracer-") else "")
                                  for l in labels5) + " |")
    L.append("| --- |" + " --- |" * len(labels5))
    L.append("| SHUTDOWN → exit | " + " | ".join(
        fmt_ms(f5[l]["shutdown_to_exit_ms"]) if "shutdown_to_exit_ms" in f5[l] else "—" for l in labels5) + " |")
    L.append("| killed at the deadline (runs) | " + " | ".join(
        str(f5[l]["killed_at_deadline"]) if "killed_at_deadline" in f5[l] else "—" for l in labels5) + " |")
    L.append("| whole environment shutdown | " + " | ".join(fmt_ms(f5[l]["environment_shutdown_ms"]) for l in labels5) + " |")
    L.append("| segments delivered (fewest of the runs) / expected | " + " | ".join(
        f"{f5[l]['segments_delivered_min']:,} / {f5[l]['segments_expected']:,}" if "segments_expected" in f5[l]
        else "—" for l in labels5) + " |")
    L.append("")
    f6 = f["6_size"]
    L.append("**6. Size**, bytes")
    L.append("")
    L.append("| | stripped binary | layer zip |")
    L.append("| --- | --- | --- |")
    L.append(f"| floor (x86_64, same toolchain) | {f6['floor_x86_64']:,} | — |")
    for arch, v in f6.items():
        if isinstance(v, dict):
            L.append(f"| lambda-tracer {arch} | {v['stripped_bytes']:,} | {v['zip_bytes']:,} |")
    L.append("")
    f7 = f["7_cpu"]
    L.append(f"**7. Cost of being there**: the extension's CPU time per invocation over "
             f"{f7['tracer']['invocations']:,} invocations each (interleaved; default settings, X-Ray API to a "
             "local sink), µs")
    L.append("")
    L.append("| | floor | lambda-tracer | tracer − floor |")
    L.append("| --- | --- | --- | --- |")
    a, b = f7["floor"], f7["tracer"]
    L.append(f"| mean, `/proc/<pid>/stat` utime+stime / invocations | {a['cpu_per_invocation_us_from_stat']:.1f} | "
             f"{b['cpu_per_invocation_us_from_stat']:.1f} | "
             f"{b['cpu_per_invocation_us_from_stat'] - a['cpu_per_invocation_us_from_stat']:+.1f} |")
    L.append(f"| per invocation, schedstat (median / p95) | {a['cpu_per_invocation_us']['median']:.1f} / "
             f"{a['cpu_per_invocation_us']['p95']:.1f} | {b['cpu_per_invocation_us']['median']:.1f} / "
             f"{b['cpu_per_invocation_us']['p95']:.1f} | "
             f"{b['cpu_per_invocation_us']['median'] - a['cpu_per_invocation_us']['median']:+.1f} |")
    L.append(f"| mean, schedstat | {a['cpu_per_invocation_us']['mean']:.1f} | {b['cpu_per_invocation_us']['mean']:.1f} | "
             f"{b['cpu_per_invocation_us']['mean'] - a['cpu_per_invocation_us']['mean']:+.1f} |")
    L.append(f"| held open after the response, ms | {fmt_ms(a['held_open_ms'])} | {fmt_ms(b['held_open_ms'])} | |")
    f8 = f.get("8_snapshot")
    if f8:
        L.append("")
        L.append(f"**8. Timeout forensics** ({f8['slow_invocations']} slow invocations, "
                 f"{f8['snapshots']} snapshots of the runtime; CPU of the extension's pipeline thread "
                 "around each): "
                 f"{f8['us_per_snapshot']:.0f} µs per snapshot, {f8['us_per_slow_invocation']:.0f} µs per slow "
                 "invocation; a fast invocation takes none (figure 7 is its whole cost)")
    L.append("")
    f9 = f.get("9_counts")
    if f9:
        sc, init, warm = f9["syscalls"], f9["init"], f9["warm"]
        L.append("")
        L.append("**9. Counts** (a pass of their own: system calls under `strace -f`, threads and CPU "
                 "when the first `/event/next` arrives, context switches from `/proc/<pid>/task/*/status`)")
        L.append("")
        L.append("| | floor | floor + listener | lambda-tracer |")
        L.append("| --- | --- | --- | --- |")
        L.append("| system calls before the first `/event/next` | " + " | ".join(
            str(sc[l]["before_first_next"]) for l in ("floor", "floor_listener", "tracer")) + " |")
        L.append("| system calls per warm invocation (X-Ray API export of each to a local sink) | " + " | ".join(
            f"{sc[l]['per_warm_invocation']:.1f}" for l in ("floor", "floor_listener", "tracer")) + " |")
        L.append(f"| same, the tracer exporting nothing | — | — | "
                 f"{sc['tracer_exporting_nothing']['per_warm_invocation']:.1f} |")
        L.append("| threads at the first `/event/next` | " + " | ".join(
            str(init[l]["threads"]) for l in ("floor", "floor_listener", "tracer")) + " |")
        L.append("| Init CPU to the first `/event/next`, ms | " + " | ".join(
            fmt_ms(init[l]["cpu_ms"]) for l in ("floor", "floor_listener", "tracer")) + " |")
        L.append("| wake-ups (voluntary / nonvoluntary switches) per warm invocation | — | "
                 + " | ".join(f"{warm[l]['voluntary_per_invocation']:.1f} / {warm[l]['nonvoluntary_per_invocation']:.1f}"
                              for l in ("floor_listener", "tracer")) + " |")
        L.append("| CPU per warm invocation, µs | — | " + " | ".join(
            f"{warm[l]['cpu_us_per_invocation']['median']:.0f} / {warm[l]['cpu_us_per_invocation']['p95']:.0f}"
            for l in ("floor_listener", "tracer")) + " |")
        L.append("| idle, never frozen: CPU µs/s, wake-ups/s | — | " + " | ".join(
            f"{warm[l]['idle_cpu_us_per_s']:.1f}, {warm[l]['idle_wakeups_per_s']:.1f}"
            for l in ("floor_listener", "tracer")) + " |")
        sd, hm = f9["shutdown_slow_sink"], f9["https_memory"]
        L.append("")
        L.append(f"SHUTDOWN with {sd['pending']:,} pending to an X-Ray API sink answering after "
                 f"{sd['sink_delay_ms']} ms: {sd['segments_delivered']:,} of {sd['segments_expected']:,} segments "
                 f"delivered, {sd['shutdown_to_exit_ms']:.0f} ms to exit{' (killed)' if sd['killed'] else ''}, "
                 f"{sd['requests']} requests ({sd['requests_after_shutdown']} after SHUTDOWN), "
                 f"{sd['cpu_us_per_request_all_threads']:.0f} µs of CPU "
                 f"per request (all threads; {sd['export_cpu_us_per_request_delta']:.0f} µs more than exporting nothing). "
                 f"HTTPS: idle RSS after the first export {fmt_mib(hm['system_bundle']['idle_rss']['median'])} "
                 f"with the system's CA bundle ({hm['system_bundle_certificates']} certificates, "
                 f"{hm['system_bundle_bytes'] / 1e3:.0f} KB), {fmt_mib(hm['test_ca_only']['idle_rss']['median'])} "
                 f"with one CA: loading the bundle costs {hm['bundle_rss_bytes_delta'] / 1e3:+.0f} KB of RSS and "
                 f"{hm['bundle_cpu_us_delta'] / 1e3:+.1f} ms of CPU in the first export.")
    L.append("")
    L.append("**Goals of issue 12**")
    L.append("")
    L.extend(goals_table(r["goals"]))
    L.append("")
    L.append("**Goals of issue 5**")
    L.append("")
    L.append("| figure | goal | measured | met |")
    L.append("| --- | --- | --- | --- |")
    for g in r["goals_issue5"]:
        miss = ""
        if not g["met"] and g["miss"] is not None:
            miss = f" (missed by {g['miss']:+.2f})" if isinstance(g["miss"], float) else f" ({g['miss']})"
        L.append(f"| {g['figure']} | {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'NO' + miss} |")
    return "\n".join(L) + "\n"


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return (f"{os.cpu_count()} × {model}, {mem_gb:.0f} GB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at start")


SANDBOX_HOSTS_LINE = "127.0.0.1 sandbox.localdomain sandbox\n"


def hosts_resolve_sandbox():
    """Whether /etc/hosts names sandbox.localdomain, as Lambda's does."""
    try:
        with open("/etc/hosts") as f:
            return any("sandbox.localdomain" in line.split("#")[0].split()[1:] for line in f)
    except OSError:
        return False


def map_sandbox_host():
    """Lambda resolves sandbox.localdomain from /etc/hosts; a machine that
    does not would make every extension's listener ask a DNS server (about
    a millisecond, charged to cold start, and traffic the tests must not
    send).  As root, run the whole benchmark in a private mount namespace
    whose /etc/hosts adds the name (nothing outside it changes, no wrapper
    between the emulator and the extensions it execs).  Returns how the
    name resolves: "hosts" (already), "hosts (private mount namespace)", or
    "DNS" when neither was possible."""
    if hosts_resolve_sandbox():
        return "hosts"
    if os.environ.get("LT_BENCH_NS") == "1":
        with open("/etc/hosts") as f:
            text = f.read()
        fd, path = tempfile.mkstemp(prefix="lt-bench-hosts-")
        with os.fdopen(fd, "w") as f:
            f.write(text + ("" if text.endswith("\n") else "\n") + SANDBOX_HOSTS_LINE)
        os.chmod(path, 0o644)
        r = subprocess.run(["mount", "--bind", path, "/etc/hosts"], capture_output=True, text=True)
        os.unlink(path)  # the mount keeps the file
        if r.returncode == 0 and hosts_resolve_sandbox():
            return "hosts (private mount namespace)"
        return "DNS"
    unshare = shutil.which("unshare")
    # A root without CAP_SYS_ADMIN (a default container) cannot unshare: probe first.
    if (os.geteuid() == 0 and unshare and
            subprocess.run([unshare, "--mount", "--propagation", "private", "true"],
                           capture_output=True).returncode == 0):
        env = dict(os.environ, LT_BENCH_NS="1")
        os.execve(unshare, [unshare, "--mount", "--propagation", "private", sys.executable] + sys.argv, env)
    return "DNS"


def only(cfg, counts):
    """One figure, printed as JSON: quick before/after checks while profiling."""
    n = cfg.reps
    run = {"1": lambda: fig_cold_start(cfg, n or counts["cold"]),
           "4": lambda: fig_ingest(cfg, n or counts["ingest_reps"], counts["ingest_batches"]),
           "5": lambda: fig_shutdown(cfg, n or counts["shutdown_reps"], counts["pendings"]),
           "7": lambda: fig_cpu(cfg, n or counts["cpu"]),
           "8": lambda: fig_snapshot(cfg, n or counts["slow"]),
           "9": lambda: fig_counts(cfg, counts["counting"])}
    try:
        print(json.dumps(run[cfg.only](), indent=1, sort_keys=True))
    except BenchError as e:
        print(f"bench: FAILED, figure {cfg.only} could not be measured: {e}", file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--goals-table", action="store_true",
                    help="print the goals of an earlier run (--results) as a Markdown table and exit")
    ap.add_argument("--results", default=os.path.join(REPO, "build", "bench", "results.json"),
                    help="with --goals-table: the results.json to read")
    ap.add_argument("--before", default=os.path.join(HERE, "goals-before.json"),
                    help="with --goals-table: goals of today's main, shown beside ('' for none)")
    ap.add_argument("--tracer", help="the lambda-tracer binary to measure (required unless --goals-table)")
    ap.add_argument("--binary-kind", default="", help="how it was built (for the report)")
    ap.add_argument("--floor")
    ap.add_argument("--loadgen")
    ap.add_argument("--size", dest="sizes", action="append", default=[],
                    help="ARCH:BINARY:ZIP for figure 6 (repeatable)")
    ap.add_argument("--out", help="directory for results.json and results.md")
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks every figure is produced")
    ap.add_argument("--command", default="./build.sh bench")
    ap.add_argument("--only", choices=["1", "4", "5", "7", "8", "9"],
                    help="measure one figure and print its JSON (for profiling work; no table, no files)")
    ap.add_argument("--reps", type=int, help="with --only: repetitions (cold starts, ingest runs, "
                    "shutdowns or invocations)")
    cfg = ap.parse_args()
    if cfg.goals_table:
        return print_goals_table(cfg.results, cfg.before)
    for opt in ("tracer", "floor", "loadgen", "out"):
        if not getattr(cfg, opt):
            ap.error(f"--{opt} is required")
    q = cfg.quick
    counts = {"cold": 2 if q else 20, "warm": 4 if q else 300, "cpu": 20 if q else 10000,
              "ingest_reps": 1 if q else 3, "ingest_batches": 3 if q else 30, "flood": 12 if q else 150,
              "shutdown_reps": 1 if q else 5, "slow": 2 if q else 10, "pendings": [0, 100, 1000] if q else [0, 100, 10000],
              # figure 9, the counting pass
              "counting": {"warm": 3 if q else 5, "strace_n": 3 if q else 50, "n": 6 if q else 200,
                           "idle_s": 0.5 if q else 5.0, "init_reps": 1 if q else 5,
                           "pending": 300 if q else 10000, "tls_reps": 1 if q else 3}}

    cfg.variants = {
        "none": Variant("none", None, None),
        "floor": Variant("floor", cfg.floor, FLOOR),
        "tracer": Variant("tracer", cfg.tracer, TRACER, xray=True),
        "background": Variant("background", cfg.tracer, TRACER, {"LAMBDA_TRACER_FLUSH": "background"}, xray=True),
        "auto": Variant("auto", cfg.tracer, TRACER, {"LAMBDA_TRACER_FLUSH": "auto"}, xray=True),
        "eager": Variant("eager", cfg.tracer, TRACER, {"LAMBDA_TRACER_FLUSH": "eager"}, xray=True),
    }
    resolves = map_sandbox_host()
    print(f"bench: sandbox.localdomain resolves through {resolves}", file=sys.stderr)
    if cfg.only:
        return only(cfg, counts)
    started = time.monotonic()
    meta = {"sandbox_localdomain": resolves,"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "command": cfg.command, "binary": os.path.relpath(cfg.tracer, REPO),
            "binary_kind": cfg.binary_kind,
            "binary_sha256": hashlib.sha256(open(cfg.tracer, "rb").read()).hexdigest(),
            "quick": q, "counts": counts}
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        meta["commit"] = commit
    except OSError:
        pass
    figures = {}
    try:
        step = lambda name: print(f"bench: {name} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        step("6 size")
        figures["6_size"] = fig_size(cfg)
        step("1 cold start")
        f1 = fig_cold_start(cfg, counts["cold"])
        figures["1_cold_start"] = dict(f1, reps=counts["cold"])
        step("2 added time per flush policy")
        figures["2_added_time"] = dict(fig_flush(cfg, counts["warm"]), invocations=counts["warm"])
        step("7 CPU per invocation")
        f7 = fig_cpu(cfg, counts["cpu"])
        figures["7_cpu"] = f7
        step("8 snapshot cost")
        figures["8_snapshot"] = fig_snapshot(cfg, counts["slow"])
        step("4 ingest")
        figures["4_ingest"] = dict(fig_ingest(cfg, counts["ingest_reps"], counts["ingest_batches"]),
                                   reps=counts["ingest_reps"], batches=counts["ingest_batches"])
        step("3 memory under a flood")
        flood = fig_flood(cfg, counts["flood"])
        flood["bound_bytes"] = f1["tracer"]["idle_hwm"]["max"] + flood["caps_bytes"]
        figures["3_memory"] = {
            label: {"idle_rss": f1[label]["idle_rss"], "idle_hwm": f1[label]["idle_hwm"],
                    "after_invocations_rss": f7[label]["rss_after"],
                    "after_invocations_hwm": f7[label]["hwm_after"]} for label in ("floor", "tracer")}
        figures["3_memory"]["flood"] = flood
        step("5 shutdown")
        figures["5_shutdown"] = dict(fig_shutdown(cfg, counts["shutdown_reps"], counts["pendings"]),
                                     reps=counts["shutdown_reps"])
        step("9 counts (a pass of their own)")
        figures["9_counts"] = fig_counts(cfg, counts["counting"])
    except BenchError as e:
        print(f"bench: FAILED, a figure could not be measured: {e}", file=sys.stderr)
        return 1
    meta["seconds"] = time.monotonic() - started
    meta["load_average_end"] = os.getloadavg()[0]
    results = {"meta": meta, "figures": figures}
    try:
        results["goals"] = goals(results)
    except BenchError as e:
        print(f"bench: FAILED, a goal could not be judged: {e}", file=sys.stderr)
        return 1
    results["goals_issue5"] = goals_issue5(results)
    text = table(results)
    os.makedirs(cfg.out, exist_ok=True)
    with open(os.path.join(cfg.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    with open(os.path.join(cfg.out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"bench: results in {os.path.relpath(cfg.out, REPO)}/results.json and results.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
