"""A fake Lambda platform that controls every byte: the Extensions API (register, telemetry
subscription, /event/next) on a raw socket server, the extension started directly with
AWS_LAMBDA_RUNTIME_API pointing at it, and helpers that write raw bytes to its telemetry
listener.  For the hostile-conditions tests (test_hostile.py); no dependency on the emulator.
The binary is harness.binary() (LAMBDA_TRACER_BIN, else the development build)."""
import json
import os
import queue
import re
import socket
import subprocess
import threading
import time
import uuid

import harness


def binary():
    return harness.binary()


def read_request(sock, buf=b""):
    """(method, path, headers dict lower-case, body, rest) or None on EOF."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    method, path, _ = lines[0].decode("latin-1").split(" ", 2)
    headers = {}
    for l in lines[1:]:
        k, _, v = l.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            return None
        rest += d
    return method, path, headers, rest[:n], rest[n:]


def answer(status=200, body=b"", headers=None, reason="OK"):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    h = b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())
    for k, v in (headers or {}).items():
        h += k.encode() + b": " + v.encode() + b"\r\n"
    if not any(k.lower() == "content-length" for k in (headers or {})):
        h += b"Content-Length: %d\r\n" % len(body)
    return h + b"\r\n" + body


class FakePlatform:
    """events: put dicts (or callables taking the socket, for raw answers) into self.events;
    each /event/next takes one.  self.log records (time, method, path, headers, body)."""

    def __init__(self, env=None, binary_path=None, deadline_ms=2000, stdout=None, stderr=None,
                 prelude=None, register_answer=None):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.events = queue.Queue()
        self.log = []
        self.next_calls = 0
        self.next_waiting = threading.Event()
        self.subscription = None
        self.listener_port = None
        self.subscribed = threading.Event()
        self.deadline_ms = deadline_ms
        self.register_answer = register_answer
        self.closed = False
        self.next_times = []
        threading.Thread(target=self._accept, daemon=True).start()
        self.env = {
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % self.port,
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "hostile-fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_SESSION_TOKEN": "token",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TRACER_EXPORTERS": "stdout",
            "LAMBDA_TRACER_SAMPLING": "all",
            "LAMBDA_TRACER_LOG_LEVEL": "debug",
        }
        self.env.update(env or {})
        self.tmp = None
        self.binary_path = binary_path or binary()
        self.stdout_path = None
        self.prelude = prelude
        self._stdout = stdout
        self._stderr = stderr

    # --- the extension process -------------------------------------------------------
    def start(self, wait_subscribed=True, timeout=10):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="hostile-")
        self.env.setdefault("TMPDIR", self.tmp)
        out = self._stdout
        err = self._stderr
        if out is None:
            self.stdout_path = os.path.join(self.tmp, "out.log")
            out = open(self.stdout_path, "wb")
            err = subprocess.STDOUT if err is None else err
        argv = [self.binary_path]
        if self.prelude:
            argv = ["/bin/bash", "-c", self.prelude + '\nexec -a lambda-tracer "$0"', self.binary_path]
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        if wait_subscribed:
            if not self.subscribed.wait(timeout):
                raise AssertionError("no subscription; output:\n" + self.output()[-3000:])
        return self

    def output(self):
        if self.stdout_path is None:
            return ""
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def lines(self):
        return self.output().splitlines()

    def wait_next(self, n, timeout=10):
        """Wait until the extension has made its n-th /event/next call."""
        end = time.monotonic() + timeout
        while self.next_calls < n:
            if time.monotonic() > end:
                raise AssertionError("extension made %d /next calls, expected %d" % (self.next_calls, n))
            if self.proc.poll() is not None:
                raise AssertionError("extension exited %s" % self.proc.returncode)
            time.sleep(0.002)

    def invoke(self, request_id=None, timeout_ms=3000, trace=None):
        rid = request_id or str(uuid.uuid4())
        ev = {"eventType": "INVOKE", "deadlineMs": int(time.time() * 1000) + timeout_ms,
              "requestId": rid, "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:hostile-fn",
              "tracing": {"type": "X-Amzn-Trace-Id",
                          "value": trace or "Root=1-%08x-%s;Parent=53995c3f42cd8ad8;Sampled=1"
                          % (int(time.time()), uuid.uuid4().hex[:24])}}
        self.events.put(ev)
        return rid, ev

    def shutdown(self, reason="spindown", deadline_ms=None):
        d = deadline_ms if deadline_ms is not None else self.deadline_ms
        self.t_shutdown = time.monotonic()
        self.events.put({"eventType": "SHUTDOWN", "shutdownReason": reason,
                         "deadlineMs": int(time.time() * 1000) + d})

    def wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout)
            return rc, time.monotonic() - self.t_shutdown
        except subprocess.TimeoutExpired:
            return None, None

    def close(self):
        self.closed = True
        try:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        except Exception:
            pass
        try:
            self.srv.close()
        except OSError:
            pass

    # --- the Extensions API ------------------------------------------------------------
    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                r = read_request(c, buf)
                if r is None:
                    return
                method, path, headers, body, buf = r
                self.log.append((time.monotonic(), method, path, headers, body))
                if path.endswith("/extension/register"):
                    if self.register_answer:
                        c.sendall(self.register_answer)
                        continue
                    c.sendall(answer(200, {"functionName": "hostile-fn", "functionVersion": "$LATEST",
                                           "handler": "x.handler", "accountId": "123456789012"},
                                     {"Lambda-Extension-Identifier": str(uuid.uuid4()),
                                      "Content-Type": "application/json"}))
                elif path.endswith("/telemetry"):
                    self.subscription = json.loads(body)
                    m = re.search(r":(\d+)", self.subscription["destination"]["URI"].split("//", 1)[1])
                    self.listener_port = int(m.group(1))
                    c.sendall(answer(200, b"OK"))
                    self.subscribed.set()
                elif path.endswith("/event/next"):
                    self.next_calls += 1
                    self.next_times.append(time.monotonic())
                    ev = self.events.get()
                    if callable(ev):
                        ev(c)
                        if getattr(ev, "closes", False):
                            return
                    else:
                        c.sendall(answer(200, ev, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4()),
                                                   "Content-Type": "application/json"}))
                else:
                    c.sendall(answer(202, b"{}"))
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    # --- telemetry ---------------------------------------------------------------------
    def post(self, records, conn=None, timeout=5):
        body = json.dumps(records).encode() if not isinstance(records, bytes) else records
        req = (b"POST /telemetry HTTP/1.1\r\nHost: sandbox.localdomain:%d\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (self.listener_port, len(body))) + body
        own = conn is None
        s = conn or socket.create_connection(("127.0.0.1", self.listener_port), timeout=timeout)
        try:
            s.sendall(req)
            got = b""
            while b"\r\n\r\n" not in got:
                d = s.recv(4096)
                if not d:
                    break
                got += d
            m = re.match(rb"HTTP/1\.1 (\d{3})", got)
            return int(m.group(1)) if m else None
        finally:
            if own:
                s.close()


def iso(t=None):
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def rec(rtype, record, t=None):
    return {"time": iso(t), "type": rtype, "record": record}


def invocation_records(rid, start=None, dur_ms=5.0, status="success"):
    start = time.time() if start is None else start
    return [
        rec("platform.start", {"requestId": rid, "version": "$LATEST"}, start),
        rec("platform.runtimeDone", {"requestId": rid, "status": status, "metrics": {"durationMs": dur_ms,
                                                                                  "producedBytes": 10}},
            start + dur_ms / 1000),
    ]


def report_record(rid, start=None, dur_ms=5.0, status="success"):
    start = time.time() if start is None else start
    return rec("platform.report", {"requestId": rid, "status": status,
                                   "metrics": {"durationMs": dur_ms, "billedDurationMs": int(dur_ms) + 1,
                                               "memorySizeMB": 128, "maxMemoryUsedMB": 30}},
               start + dur_ms / 1000 + 0.001)


def summary(lines):
    for l in reversed(lines):
        m = re.search(r"shutdown reason=(\S+) (.*)", l)
        if m:
            return dict((k, int(v)) for k, v in re.findall(r"(\w+)=(-?\d+)", m.group(2)))
    return None
