"""Shared set-up for integration tests: the real lambda-tracer binary inside
the local Lambda emulator (tests/emulator)."""
import json
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))

import common  # noqa: E402  (shared with bench/; puts tests/emulator on sys.path)
import lambda_emulator  # noqa: E402
from common import sinks  # noqa: E402

# tests/integration/sinks.py moved to tests/common/sinks.py: `import sinks` after `import
# harness` still gives that very module (for test files written before the move)
sys.modules.setdefault("sinks", sinks)

BOOTSTRAP = common.BOOTSTRAP
EXT_NAME = "lambda-tracer"

# Sanitizer reports that must fail a test whatever else it asserts.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "ERROR: LeakSanitizer")

TELEMETRY_RE = re.compile(r"telemetry type=(\S+) request_id=(\S+) status=(\S+) error_type=(\S+)")
SHUTDOWN_RE = re.compile(r"shutdown reason=(\S+) (.*)")


def binary():
    path = os.environ.get("LAMBDA_TRACER_BIN") or os.path.join(REPO, "build", "dev", "lambda-tracer")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing: run ./build.sh build (or make) first")
    return path


def quick():
    """Slow sanitizers (TSan) run a reduced set."""
    return os.environ.get("LAMBDA_TRACER_TEST_QUICK") == "1"


def make_root(extension_binary=None):
    """A sandbox root with our binary as <root>/opt/extensions/lambda-tracer."""
    root = tempfile.mkdtemp(prefix="lt-root-")
    ext_dir = os.path.join(root, "opt", "extensions")
    os.makedirs(ext_dir)
    dst = os.path.join(ext_dir, EXT_NAME)
    shutil.copy2(extension_binary or binary(), dst)
    os.chmod(dst, 0o755)
    return root


def sanitizer_env():
    env = {}
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"):
        if key in os.environ:
            env[key] = os.environ[key]
    # TSan sleeps 1 s at exit while other threads run (to let them report); a
    # SHUTDOWN that leaves its loop thread to the exit would be timed with it
    env.setdefault("TSAN_OPTIONS", "halt_on_error=1:atexit_sleep_ms=0")
    return env


def new_emulator(root, env=None, lambda_default=False, **kwargs):
    """The emulator mimics Lambda's default (PassThrough: a call without a header gets
    Sampled=0).  Most tests look at every invocation, so they ask for all of them
    (LAMBDA_TRACER_SAMPLING=all); lambda_default=True runs the extension exactly as a new
    user would, with no sampling override (test_sampling)."""
    e = dict(sanitizer_env())
    e["LAMBDA_TRACER_LOG_LEVEL"] = "debug"
    # Never the default (real AWS) endpoints: tests talk to loopback only.
    e["LAMBDA_TRACER_EXPORTERS"] = "stdout"
    if not lambda_default:
        e["LAMBDA_TRACER_SAMPLING"] = "all"
    e.update(env or {})
    kwargs.setdefault("function_name", "demo-fn")
    kwargs.setdefault("memory_mb", 128)
    kwargs.setdefault("timeout_s", 3)
    kwargs.setdefault("runtime", [sys.executable, BOOTSTRAP])  # another: e.g. ["node", "x.js"]
    return lambda_emulator.Emulator(root=root, env=e, **kwargs)


def output_lines(emu, name=EXT_NAME):
    out = emu.output(name)
    if isinstance(out, str):
        return out.splitlines()
    return [line.rstrip("\n") for line in out]


def telemetry_seen(lines):
    """(type, request_id, status, error_type) tuples the extension logged, in order."""
    seen = []
    for line in lines:
        m = TELEMETRY_RE.search(line)
        if m:
            seen.append(m.groups())
    return seen


def shutdowns(lines):
    return [m.groups() for m in (SHUTDOWN_RE.search(l) for l in lines) if m]


def sanitizer_reports(lines):
    return [l for l in lines if any(m in l for m in SANITIZER_MARKERS)]


def tree_violations(doc):
    """Where an X-Ray segment document's tree is inconsistent (README "Read
    your traces"): a subsegment starting before or ending after its parent,
    or ending before it starts; [] when none.  An in-progress node (no
    end_time) bounds nothing."""
    bad = []
    eps = 0.5e-6  # times are whole microseconds printed as float seconds

    def walk(node, path):
        s, e = node.get("start_time"), node.get("end_time")
        if s is not None and e is not None and e < s - eps:
            bad.append("%s ends before it starts" % path)
        for sub in node.get("subsegments", []):
            name = "%s/%s" % (path, sub.get("name"))
            ss, se = sub.get("start_time"), sub.get("end_time")
            if s is not None and ss is not None and ss < s - eps:
                bad.append("%s starts %.6f s before its parent" % (name, s - ss))
            if e is not None and se is not None and se > e + eps:
                bad.append("%s ends %.6f s after its parent" % (name, se - e))
            walk(sub, name)
    walk(doc, doc.get("name", "?"))
    return bad


def otlp_tree_violations(obj):
    """tree_violations for an OTLP/JSON ExportTraceServiceRequest: a span
    outside the span it names as parent (when that parent is in the same
    request); [] when none."""
    bad = []
    spans = [sp for rs in obj.get("resourceSpans", []) for ss in rs.get("scopeSpans", [])
             for sp in ss.get("spans", [])]
    by_id = {(sp.get("traceId"), sp.get("spanId")): sp for sp in spans}
    for sp in spans:
        s, e = int(sp.get("startTimeUnixNano", 0)), int(sp.get("endTimeUnixNano", 0))
        if e < s:
            bad.append("%s ends before it starts" % sp.get("name"))
        parent = by_id.get((sp.get("traceId"), sp.get("parentSpanId")))
        if parent is None:
            continue
        ps, pe = int(parent.get("startTimeUnixNano", 0)), int(parent.get("endTimeUnixNano", 0))
        if s < ps:
            bad.append("%s starts %d ns before %s" % (sp.get("name"), ps - s, parent.get("name")))
        if e > pe:
            bad.append("%s ends %d ns after %s" % (sp.get("name"), e - pe, parent.get("name")))
    return bad


def check_trees(docs):
    """Raises AssertionError when any X-Ray document's tree is inconsistent;
    every path that collects exported documents calls it."""
    bad = [v for d in docs if isinstance(d, dict) for v in tree_violations(d)]
    if bad:
        raise AssertionError("inconsistent trees: " + "; ".join(bad[:10]))
    return docs


def documents(lines):
    """X-Ray documents the stdout exporter printed (one JSON object per line),
    each checked for a consistent tree (check_trees)."""
    docs = []
    for line in lines:
        if line.startswith("{"):
            try:
                docs.append(json.loads(line))
            except ValueError:
                pass
    check_trees([d for d in docs if isinstance(d, dict)])
    return docs


def by_request(docs):
    """Segment documents keyed by aws.request_id; each a list of versions in order."""
    out = {}
    for d in docs:
        rid = d.get("aws", {}).get("request_id")
        if rid is not None and d.get("type") != "subsegment":
            out.setdefault(rid, []).append(d)
    return out


def subsegment_names(doc):
    """{name: subsegment} over the whole nested tree."""
    names = {}

    def walk(node):
        for s in node.get("subsegments", []):
            names[s["name"]] = s
            walk(s)
    walk(doc)
    return names


def record(emu, rtype, request_id):
    for r in emu.records(rtype):
        if r["record"].get("requestId") == request_id:
            return r
    return None


def iso_to_s(text):
    import datetime
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


TOOLS = os.path.join(REPO, "tests", "tools")


def validate_xray(docs):
    """Runs the independent validator (AWS's schema through ajv, plus the
    documented rules) over documents; returns its JSON verdict.  The trees
    are checked first (check_trees)."""
    import subprocess
    check_trees(docs)
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
        path = f.name
    try:
        p = subprocess.run(["node", os.path.join(TOOLS, "validate_xray.js"), "--json",
                            "--format=lines", path], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    if p.returncode == 2:
        raise RuntimeError(p.stderr)
    return json.loads(p.stdout)


def otlp_decode(body, json_input=False):
    """Decodes an OTLP request independently (protobufjs); returns the
    canonical OTLP/JSON object, or raises with the decoder's reasons."""
    import subprocess
    cmd = ["node", os.path.join(TOOLS, "otlp_decode.js")] + (["--json-input"] if json_input else []) + ["-"]
    p = subprocess.run(cmd, input=body, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(p.stderr.decode(errors="replace"))
    out = json.loads(p.stdout)
    bad = otlp_tree_violations(out)
    if bad:
        raise AssertionError("inconsistent OTLP trees: " + "; ".join(bad[:10]))
    return out


def attach_xray_sink(emu, **env):
    """A local X-Ray API endpoint that verifies SigV4 with the credentials
    this emulator gives the extension, configured as its only exporter."""
    creds = emu.extension_environment()
    sink = sinks.XRayApiSink(region=emu.region, access_key=creds["AWS_ACCESS_KEY_ID"],
                             secret=creds["AWS_SECRET_ACCESS_KEY"], token=creds["AWS_SESSION_TOKEN"])
    emu.customer_env.update({"LAMBDA_TRACER_EXPORTERS": "xray",
                             "LAMBDA_TRACER_XRAY_ENDPOINT": sink.endpoint}, **env)
    return sink


# --- fault injection helpers (test_faults*.py) ---------------------------------------

def listener_address(emu, name=EXT_NAME):
    """(host, port) of the extension's telemetry listener, from the subscription the
    emulator received (sandbox.localdomain is 127.0.0.1 here)."""
    dest = emu.subscribers()[name]["destination"]
    return "127.0.0.1", int(dest["port"])


def raw_exchange(addr, data, timeout=5.0):
    """Sends bytes on a fresh connection and returns the status code of what came back
    until the peer closed, a complete answer head or the timeout; None when nothing came."""
    import socket
    with socket.create_connection(addr, timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except OSError:
            pass
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
    return int(m.group(1)) if m else None


def wait_for(pred, timeout, what, interval=0.01):
    """Polls pred until it returns something true, and returns that; after timeout
    seconds raises AssertionError naming what was awaited (a regression fails the test
    instead of hanging the suite)."""
    import time
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError("waited %.1f s for %s" % (timeout, what))
        time.sleep(interval)


def post_bytes(body, path="/telemetry", extra_headers=b""):
    """A telemetry POST with a Content-Length body."""
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: sandbox.localdomain\r\n"
            b"Content-Type: application/json\r\n" + extra_headers +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def extension_overhead_ms(result):
    """How long the extension held this invocation after the runtime was done, from the
    emulator's own report (extensionOverhead span: runtime next -> last extension next)."""
    for r in result.records:
        if r["type"] == "platform.report" and r["record"].get("requestId") == result.request_id:
            for span in r["record"].get("spans", []):
                if span["name"] == "extensionOverhead":
                    return span["durationMs"]
    return None


def delivery_failures(emu):
    """Telemetry POSTs the platform made that the extension did not answer with 2xx."""
    return [d for d in list(emu.delivered) if not (isinstance(d["status"], int) and 200 <= d["status"] < 300)]


def summary(lines):
    """The shutdown summary's counters of the last generation, as a dict of ints."""
    rest = shutdowns(lines)[-1][1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", rest)}


def export_summary(lines):
    line = [l for l in lines if "INFO export submitted=" in l][-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", line)}


def make_wrapped_root(prelude, extension_binary=None):
    """A sandbox root whose /opt/extensions/lambda-tracer is a bash script that runs
    `prelude` (ulimit, unset, ...) and then execs our binary under the same name."""
    import shlex
    root = tempfile.mkdtemp(prefix="lt-root-")
    ext_dir = os.path.join(root, "opt", "extensions")
    os.makedirs(ext_dir)
    real = os.path.join(root, "opt", "lambda-tracer.bin")
    shutil.copy2(extension_binary or binary(), real)
    os.chmod(real, 0o755)
    script = os.path.join(ext_dir, EXT_NAME)
    with open(script, "w") as f:
        f.write("#!/bin/bash\n%s\nexec -a \"$0\" %s \"$@\"\n" % (prelude, shlex.quote(real)))
    os.chmod(script, 0o755)
    return root
