#!/usr/bin/env python3
"""Example custom runtime for the lambda-tracer emulator (standard library only).

A real Runtime API (2018-06-01) client: it reads AWS_LAMBDA_RUNTIME_API, long-polls
/runtime/invocation/next over one keep-alive HTTP/1.1 connection and answers with
/response or /error.  It works against the emulator and, packaged as `bootstrap`
with a python3 on the image, against real Lambda.

The handler's behaviour is chosen by the JSON payload:

  {"action": "fast"}                                 respond immediately
  {"action": "slow", "ms": N}                        sleep N ms, then respond
  {"action": "sleep", "ms": N}                       same; used to run past the deadline
  {"action": "crash", "code": N}                     exit(N) mid-invoke
  {"action": "crash", "signal": "SIGSEGV"}           kill itself with a signal mid-invoke
                                                     (either with "after_ms": M: asleep M ms first)
  {"action": "error", "type": "Function.MyError", "message": "..."}
                                                     POST /invocation/{id}/error
  {"action": "oom", "mb": N}                         allocate and touch N MB, hold it, respond
  {"action": "grow", "mb": N}                        the same (a leak: what every call allocates
                                                     stays held, so memory grows call by call)
  {"action": "log", "lines": N, "bytes": B}          print N lines of about B bytes to stdout
  {"action": "big", "bytes": N}                      respond with an N-byte body (size limit tests)
  {"action": "env"}                                  respond with the runtime's environment
  {"action": "echo"}                                 respond with the invoke payload and headers

Stuck on purpose (timeout forensics; each responds if it ever gets there):

  {"action": "spin", "ms": N}                        busy loop on the CPU for N ms
  {"action": "read", "port": P, "pool_port": Q}      a pooled connection to HOST:Q (one request
                                                     answered, then left idle), then a request
                                                     to HOST:P and a blocking read ("host",
                                                     "pool_host": default 127.0.0.1); with
                                                     "timeout_ms": N it gives up after N ms
                                                     and responds (a slow call, not stuck)
  {"action": "connect", "port": P}                   a blocking connect to HOST:P
  {"action": "child", "ms": N}                       run `sleep` for N ms and wait for it
  {"action": "mixed", "cpu_ms": N, "sleep_ms": M}    N ms busy, then M ms asleep

Every handler prints at least one log line.  Unknown or unparsable payloads act as "fast".
Any action whose payload has "m" first logs that value as one line (a function logging part
of its event: tests follow it into the log tail and check where it must not go).

Init behaviour comes from environment variables:

  DEMO_INIT_MS=N          sleep N ms during init (before the first /next)
  DEMO_INIT_FAIL=1        POST /runtime/init/error (type DEMO_INIT_ERROR_TYPE, default
                          Runtime.DemoInitError) and exit 1
  DEMO_INIT_CRASH=N       exit N during init without reporting
  DEMO_INIT_LOG=N         print N log lines during init
  DEMO_INIT_IMPORT=DIR    import every module of the package tree under DIR (Init anatomy:
                          loading code)
  DEMO_INIT_IMPORT_MIN_MS=N  then reload them (read and compiled again) until N ms have
                          passed since the first import: the same work on any machine's speed
  DEMO_INIT_READ=FILE     read FILE to the end in 1 MB chunks
  DEMO_INIT_READ_UNCACHED=1  first drop FILE's pages from the page cache (posix_fadvise
                          DONTNEED; FILE written and synced): the read comes from storage
  DEMO_INIT_SPIN_MS=N     busy loop on the CPU for N ms
  DEMO_INIT_WAIT=HOST:PORT:N  connect to HOST:PORT, send a line and wait (at most N ms) for
                          the answer (a slow dependency on the network)
  DEMO_RESTORE_MS=N       (SnapStart) sleep N ms in the after-restore hook
  DEMO_RESTORE_READ=FILE, DEMO_RESTORE_READ_UNCACHED=1, DEMO_RESTORE_SPIN_MS=N,
  DEMO_RESTORE_WAIT=HOST:PORT:N
                          (SnapStart) the after-restore hook reads FILE, burns N ms of CPU,
                          or waits on a slow peer, as their DEMO_INIT_ twins do in init
  DEMO_RESTORE_FAIL=1     (SnapStart) POST /runtime/restore/error and exit 1
  DEMO_CONCURRENCY=N      N worker threads, each long-polling /invocation/next on its own
                          connection (Lambda Managed Instances); default AWS_LAMBDA_MAX_CONCURRENCY
                          when Lambda sets it, else 1.  With N > 1 _X_AMZN_TRACE_ID is not set
                          (one process-wide variable cannot hold N requests' headers).

When AWS_LAMBDA_INITIALIZATION_TYPE is "snap-start" the runtime calls
GET /runtime/restore/next after init (the snapshot point) and runs its after-restore
hook when that returns, before the first /invocation/next.
"""
import datetime
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
BASE = "/2018-06-01/runtime"

# one keep-alive connection and one current request per worker thread
_tls = threading.local()
_out_lock = threading.Lock()


def log(msg):
    """Print one line in the usual Lambda runtime text layout and flush it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)
    line = "%s\t%s\tINFO\t%s\n" % (stamp, getattr(_tls, "request_id", "") or "-", msg)
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def _connect():
    host, _, port = API.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _tls.conn = conn


def call(method, path, body=None, headers=None):
    """One request on this thread's keep-alive connection; reconnects once on a stale socket."""
    for attempt in (1, 2):
        if getattr(_tls, "conn", None) is None:
            _connect()
        try:
            _tls.conn.request(method, path, body=body, headers=headers or {})
            resp = _tls.conn.getresponse()
            data = resp.read()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data
        except (ConnectionError, http.client.HTTPException, OSError):
            try:
                _tls.conn.close()
            finally:
                _tls.conn = None
            if attempt == 2:
                raise


def post_error(path, error_type, message):
    body = json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()
    return call("POST", path, body, {"Lambda-Runtime-Function-Error-Type": error_type,
                                     "Content-Type": "application/json"})


def respond(request_id, obj):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    status, _, _ = call("POST", "%s/invocation/%s/response" % (BASE, request_id), body,
                        {"Content-Type": "application/json"})
    if status != 202:
        log("response rejected with HTTP %d" % status)


_pool = []  # connections kept open across invocations, like a client's pool


def spin(ms):
    """Keep one CPU busy for ms milliseconds of wall time."""
    end = time.monotonic() + ms / 1000.0
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def handle(request_id, headers, payload):
    try:
        event = json.loads(payload or b"{}")
        if not isinstance(event, dict):
            event = {}
    except ValueError:
        event = {}
    action = event.get("action", "fast")
    if "m" in event:
        log("m: %s" % event["m"])

    if action in ("slow", "sleep"):
        ms = int(event.get("ms", 100))
        log("%s: sleeping %d ms" % (action, ms))
        time.sleep(ms / 1000.0)
        log("%s: done" % action)
        respond(request_id, {"ok": True, "action": action, "ms": ms})
    elif action == "spin":
        ms = int(event.get("ms", 100))
        log("spin: %d ms" % ms)
        spin(ms)
        respond(request_id, {"ok": True, "action": action})
    elif action == "read":
        host = str(event.get("host", "127.0.0.1"))
        pooled = socket.create_connection((str(event.get("pool_host", host)), int(event["pool_port"])))
        pooled.sendall(b"ping\n")
        pooled.recv(64)  # answered: from now on an idle pooled connection
        _pool.append(pooled)
        s = socket.create_connection((host, int(event["port"])))
        log("read: request sent, waiting for the answer")
        s.sendall(b"GET / HTTP/1.1\r\nHost: local\r\n\r\n")
        if "timeout_ms" in event:
            s.settimeout(int(event["timeout_ms"]) / 1000.0)
        try:
            data = s.recv(64)
        except socket.timeout:
            log("read: no answer, giving up")
            data = b""
        respond(request_id, {"ok": True, "action": action, "got": len(data)})
    elif action == "connect":
        host = str(event.get("host", "127.0.0.1"))
        log("connect: to %s:%d" % (host, int(event["port"])))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect((host, int(event["port"])))
        respond(request_id, {"ok": True, "action": action})
    elif action == "child":
        ms = int(event.get("ms", 100))
        log("child: sleep %d ms" % ms)
        subprocess.run(["sleep", "%.3f" % (ms / 1000.0)], check=False)
        respond(request_id, {"ok": True, "action": action})
    elif action == "mixed":
        spin(int(event.get("cpu_ms", 100)))
        time.sleep(int(event.get("sleep_ms", 100)) / 1000.0)
        log("mixed: done")
        respond(request_id, {"ok": True, "action": action})
    elif action == "crash":
        after_ms = int(event.get("after_ms", 0))
        if after_ms > 0:
            log("crash: in %d ms" % after_ms)
            time.sleep(after_ms / 1000.0)
        if "signal" in event:
            signame = str(event["signal"])
            log("crash: raising %s" % signame)
            signum = getattr(signal, signame, signal.SIGSEGV)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            time.sleep(5)
        code = int(event.get("code", 1))
        log("crash: exiting with code %d" % code)
        os._exit(code)
    elif action == "error":
        etype = str(event.get("type", "Function.HandledError"))
        message = str(event.get("message", "handled error"))
        log("error: reporting %s" % etype)
        status, _, _ = post_error("%s/invocation/%s/error" % (BASE, request_id), etype, message)
        if status != 202:
            log("error rejected with HTTP %d" % status)
    elif action in ("oom", "grow"):
        mb = int(event.get("mb", 256))
        log("%s: allocating %d MB" % (action, mb))
        hold = []
        step = 4096
        for _ in range(mb):
            chunk = bytearray(1 << 20)
            chunk[::step] = b"\x01" * ((1 << 20) // step)  # touch every page
            hold.append(chunk)
        held = globals().setdefault("_held", [])
        held.append(hold)
        log("%s: holding %d MB (%d MB in all)" % (action, mb, sum(len(h) for h in held)))
        respond(request_id, {"ok": True, "action": action, "mb": mb})
    elif action == "log":
        lines = int(event.get("lines", 10))
        size = int(event.get("bytes", 80))
        out = []
        for i in range(lines):
            prefix = "log line %d " % i
            out.append(prefix + "x" * max(0, size - len(prefix)) + "\n")
        with _out_lock:
            sys.stdout.write("".join(out))
            sys.stdout.flush()
        log("log: printed %d lines" % lines)
        respond(request_id, {"ok": True, "action": "log", "lines": lines})
    elif action == "big":
        n = int(event.get("bytes", 7 * 1024 * 1024))
        log("big: responding with %d bytes" % n)
        respond(request_id, b"\"" + b"a" * max(0, n - 2) + b"\"")
    elif action == "env":
        log("env")
        respond(request_id, {"env": dict(os.environ), "argv": sys.argv})
    elif action == "echo":
        log("echo")
        respond(request_id, {"payload": payload.decode("utf-8", "replace"), "headers": headers})
    else:
        log("fast")
        respond(request_id, {"ok": True, "action": "fast"})


def slow_phase(var, what):
    """DEMO_<var>_READ / _SPIN_MS / _WAIT: a phase (Init, or SnapStart's after-restore hook)
    slow in a known way, for the anatomy the extension reports."""
    path = os.environ.get("DEMO_%s_READ" % var)
    if path:
        got = 0
        with open(path, "rb", buffering=0) as f:
            if os.environ.get("DEMO_%s_READ_UNCACHED" % var) == "1":
                # out of the page cache (clean pages: the writer synced them), so the read
                # comes from storage
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        log("%s: read %d bytes" % (what, got))
    spin_ms = int(os.environ.get("DEMO_%s_SPIN_MS" % var, "0") or 0)
    if spin_ms:  # N ms of CPU time (not wall: a loaded machine must not shorten it)
        t0 = time.process_time()
        while time.process_time() - t0 < spin_ms / 1000.0:
            pass
    wait = os.environ.get("DEMO_%s_WAIT" % var)
    if wait:
        host, port, ms = wait.rsplit(":", 2)
        c = socket.create_connection((host, int(port)), timeout=int(ms) / 1000.0)
        c.sendall(b"hello\n")
        try:
            c.recv(64)
        except socket.timeout:
            pass
        c.close()


def init():
    n = int(os.environ.get("DEMO_INIT_LOG", "0") or 0)
    log("bootstrap init (pid %d)" % os.getpid())
    for i in range(n):
        log("init log line %d" % i)
    tree = os.environ.get("DEMO_INIT_IMPORT")
    if tree:
        sys.path.insert(0, tree)
        import importlib
        names = sorted(f[:-3] for f in os.listdir(os.path.join(tree, "gen")) if f.endswith(".py")
                       and f != "__init__.py")
        min_s = int(os.environ.get("DEMO_INIT_IMPORT_MIN_MS", "0") or 0) / 1000.0
        t0, rounds = time.monotonic(), 0
        mods = [importlib.import_module("gen." + name) for name in names]
        while time.monotonic() - t0 < min_s:
            for mod in mods:
                importlib.reload(mod)
            rounds += 1
        log("init: imported %d modules, reloaded them %d times" % (len(names), rounds))
    slow_phase("INIT", "init")
    init_ms = int(os.environ.get("DEMO_INIT_MS", "0") or 0)
    if init_ms:
        time.sleep(init_ms / 1000.0)
    crash = os.environ.get("DEMO_INIT_CRASH")
    if crash:
        log("init: exiting with code %s" % crash)
        os._exit(int(crash))
    if os.environ.get("DEMO_INIT_FAIL") == "1":
        etype = os.environ.get("DEMO_INIT_ERROR_TYPE", "Runtime.DemoInitError")
        log("init: reporting %s" % etype)
        post_error(BASE + "/init/error", etype, "init failed on purpose")
        sys.exit(1)


def restore():
    status, _, _ = call("GET", BASE + "/restore/next")
    log("restore/next answered %d" % status)
    slow_phase("RESTORE", "restore")
    ms = int(os.environ.get("DEMO_RESTORE_MS", "0") or 0)
    if ms:
        time.sleep(ms / 1000.0)
    if os.environ.get("DEMO_RESTORE_FAIL") == "1":
        post_error(BASE + "/restore/error", "Runtime.DemoRestoreError", "restore failed on purpose")
        sys.exit(1)


def worker(single):
    while True:
        _tls.request_id = ""
        status, headers, payload = call("GET", BASE + "/invocation/next")
        if status != 200:
            log("invocation/next answered %d: %r" % (status, payload[:200]))
            time.sleep(0.05)
            continue
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        _tls.request_id = request_id
        if single:
            trace = headers.get("lambda-runtime-trace-id")
            if trace:
                os.environ["_X_AMZN_TRACE_ID"] = trace
            else:
                os.environ.pop("_X_AMZN_TRACE_ID", None)
        handle(request_id, headers, payload)


def concurrency():
    for key in ("DEMO_CONCURRENCY", "AWS_LAMBDA_MAX_CONCURRENCY"):
        try:
            n = int(os.environ.get(key) or 0)
        except ValueError:
            n = 0
        if n > 0:
            return n
    return 1


def main():
    init()
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        restore()
    n = concurrency()
    if n == 1:
        worker(True)
    log("starting %d workers" % n)
    for i in range(n - 1):
        threading.Thread(target=worker, args=(False,), name="worker-%d" % (i + 1), daemon=True).start()
    worker(False)


if __name__ == "__main__":
    main()
