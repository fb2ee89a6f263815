#!/usr/bin/env python3
"""Tiny Lambda external extension used by the emulator's own tests (not the product).

It registers, optionally subscribes to the Telemetry API, records everything it
sees into a JSONL log, loops on /event/next and exits on SHUTDOWN.  Standard
library only.

Name: PROBE_NAME (deliberately wrong name) > PROBE_EXT_NAME (set by a wrapper
script) > basename(argv[0]).

Log: PROBE_LOG (a file) or PROBE_LOG_DIR/<name>.jsonl.  One JSON object per line,
each with "kind" and "t" (time.monotonic_ns(), same clock as the emulator):
  start     {pid, argv, env (only with PROBE_DUMP_ENV=1)}
  register  {status, headers, body}
  subscribe {status, body, late}
  post      {n, status, bytes, count}         one per telemetry POST received
  telemetry {n, record}                       one per record received
  event     {event, headers}                  INVOKE / SHUTDOWN from /event/next
  next_error{status, body}
  call      {what, status, body}              init/error, exit/error

Knobs (environment variables):
  PROBE_EVENTS=INVOKE,SHUTDOWN   events to register for ("" for none)
  PROBE_REGISTER_BODY=<raw>      send this raw register body instead
  PROBE_ACCEPT_FEATURE=accountId send Lambda-Extension-Accept-Feature
  PROBE_NO_REGISTER=1            never register (stalls Init)
  PROBE_INIT_SLEEP_MS=N          sleep before registering
  PROBE_SUBSCRIBE=1              subscribe after register (before the first next)
  PROBE_LATE_SUBSCRIBE=1         (also) subscribe after the first event arrives
  PROBE_TYPES=platform,function,extension
  PROBE_SCHEMA=2022-12-13
  PROBE_BUFFERING=<json>         buffering object (default maxItems 1000, maxBytes 262144, timeoutMs 25)
  PROBE_DEST_HOST=sandbox.localdomain
  PROBE_SUBSCRIBE_BODY=<raw>     send this raw subscribe body ("{port}" is replaced)
  PROBE_TCP=1                    listen with TCP and subscribe with protocol TCP (schema 2025-01-29)
  PROBE_LISTENER=ok|fail|slow|close|fail_first:N   listener behaviour (500 for fail)
  PROBE_LISTENER_DELAY_MS=N      delay for "slow"
  PROBE_BEFORE_NEXT_MS=N         sleep before the first /event/next
  PROBE_HOLD_MS=N                hold each INVOKE open N ms before calling next
  PROBE_CRASH=init|invoke|after_register   exit with PROBE_CRASH_CODE (default 3);
  PROBE_CRASH_AT=N               for "invoke": on the N-th INVOKE (default 1)
  PROBE_INIT_ERROR=1             POST /extension/init/error then exit 1
  PROBE_EXIT_ERROR=1             on the first INVOKE POST /extension/exit/error then exit 1
  PROBE_IGNORE_SHUTDOWN=1        ignore SHUTDOWN and SIGTERM (wait to be SIGKILLed)
  PROBE_SHUTDOWN_DELAY_MS=N      on SHUTDOWN wait N ms (still receiving telemetry) before exit
  PROBE_PRINT_LINES=N            print N lines at start (extension log records)
  PROBE_DUMP_ENV=1               put environ and argv in the start record
  PROBE_NEXT_RETRY=1             a /event/next connection reset or closed without an answer
                                 (or mid-body) is recorded (next_reset) and the call is made
                                 again; so is an answer that is not JSON (next_garbage) or not
                                 200 (next_error)
"""
import http.client
import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time

NAME = (os.environ.get("PROBE_NAME") or os.environ.get("PROBE_EXT_NAME")
        or os.path.basename(sys.argv[0]))
API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")

_log_lock = threading.Lock()
_log_path = os.environ.get("PROBE_LOG")
if not _log_path and os.environ.get("PROBE_LOG_DIR"):
    _log_path = os.path.join(os.environ["PROBE_LOG_DIR"],
                             (os.environ.get("PROBE_EXT_NAME") or os.path.basename(sys.argv[0])) + ".jsonl")
_log_file = open(_log_path, "a", buffering=1) if _log_path else None
_post_count = 0


def record(kind, **fields):
    fields["kind"] = kind
    fields["t"] = time.monotonic_ns()
    line = json.dumps(fields)
    with _log_lock:
        if _log_file:
            _log_file.write(line + "\n")
            _log_file.flush()


def say(msg):
    sys.stdout.write("[%s] %s\n" % (NAME, msg))
    sys.stdout.flush()


def env_int(key, default=0):
    try:
        return int(os.environ.get(key, default) or default)
    except ValueError:
        return default


# ---------------------------------------------------------------- telemetry listener
class Listener(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        global _post_count
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with _log_lock:
            _post_count += 1
            n = _post_count
        mode = os.environ.get("PROBE_LISTENER", "ok")
        status = 200
        if mode == "fail":
            status = 500
        elif mode.startswith("fail_first:"):
            status = 500 if n <= int(mode.split(":", 1)[1]) else 200
        elif mode == "slow":
            time.sleep(env_int("PROBE_LISTENER_DELAY_MS", 2000) / 1000.0)
        elif mode == "close":
            record("post", n=n, status="closed", bytes=len(body), count=None, path=self.path)
            self.close_connection = True
            return
        try:
            records = json.loads(body)
        except ValueError:
            records = None
        record("post", n=n, status=status, bytes=len(body), path=self.path,
               count=len(records) if isinstance(records, list) else None,
               content_type=self.headers.get("Content-Type"))
        if status == 200 and isinstance(records, list):
            for r in records:
                record("telemetry", n=n, record=r)
        out = b"OK"
        self.send_response(status)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class TcpListener(socketserver.StreamRequestHandler):
    def handle(self):
        global _post_count
        for line in self.rfile:
            with _log_lock:
                _post_count += 1
                n = _post_count
            try:
                r = json.loads(line)
            except ValueError:
                r = None
            record("telemetry", n=n, record=r, tcp=True)


def start_listener():
    if os.environ.get("PROBE_TCP") == "1":
        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), TcpListener)
    else:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


# ---------------------------------------------------------------- API calls
def request(method, path, body=None, headers=None):
    host, _, port = API.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def subscribe(ext_id, port, late=False):
    raw = os.environ.get("PROBE_SUBSCRIBE_BODY")
    if raw is not None:
        body = raw.replace("{port}", str(port)).encode()
    else:
        buffering = json.loads(os.environ.get(
            "PROBE_BUFFERING", '{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}'))
        types = [t for t in os.environ.get("PROBE_TYPES", "platform,function,extension").split(",") if t]
        if os.environ.get("PROBE_TCP") == "1":
            dest = {"protocol": "TCP", "port": port}
            schema = os.environ.get("PROBE_SCHEMA", "2025-01-29")
        else:
            host = os.environ.get("PROBE_DEST_HOST", "sandbox.localdomain")
            dest = {"protocol": "HTTP", "URI": "http://%s:%d/telemetry" % (host, port)}
            schema = os.environ.get("PROBE_SCHEMA", "2022-12-13")
        sub = {"schemaVersion": schema, "types": types, "destination": dest}
        if buffering is not None:
            sub["buffering"] = buffering
        body = json.dumps(sub).encode()
    status, headers, data = request("PUT", "/2022-07-01/telemetry", body,
                                    {"Lambda-Extension-Identifier": ext_id,
                                     "Content-Type": "application/json"})
    record("subscribe", status=status, body=data.decode("utf-8", "replace"), late=late)
    say("subscribe -> %d" % status)
    return status


def crash(where):
    if os.environ.get("PROBE_CRASH") == where:
        code = env_int("PROBE_CRASH_CODE", 3)
        say("crashing at %s with code %d" % (where, code))
        os._exit(code)


def main():
    say("probe %s started (pid %d)" % (NAME, os.getpid()))
    start = {"pid": os.getpid(), "argv": sys.argv, "name": NAME}
    if os.environ.get("PROBE_DUMP_ENV") == "1":
        start["env"] = dict(os.environ)
    record("start", **start)
    for i in range(env_int("PROBE_PRINT_LINES")):
        say("extension log line %d" % i)
    crash("init")
    if env_int("PROBE_INIT_SLEEP_MS"):
        time.sleep(env_int("PROBE_INIT_SLEEP_MS") / 1000.0)
    if os.environ.get("PROBE_NO_REGISTER") == "1":
        while True:
            time.sleep(3600)

    port = start_listener()
    raw_reg = os.environ.get("PROBE_REGISTER_BODY")
    if raw_reg is not None:
        reg_body = raw_reg.encode()
    else:
        events = [e for e in os.environ.get("PROBE_EVENTS", "INVOKE,SHUTDOWN").split(",") if e]
        reg_body = json.dumps({"events": events}).encode()
    headers = {"Lambda-Extension-Name": NAME, "Content-Type": "application/json"}
    if os.environ.get("PROBE_ACCEPT_FEATURE"):
        headers["Lambda-Extension-Accept-Feature"] = os.environ["PROBE_ACCEPT_FEATURE"]
    status, rheaders, data = request("POST", "/2020-01-01/extension/register", reg_body, headers)
    record("register", status=status, headers=rheaders, body=data.decode("utf-8", "replace"))
    say("register -> %d" % status)
    if status != 200:
        sys.exit(2)
    ext_id = {k.lower(): v for k, v in rheaders.items()}.get("lambda-extension-identifier", "")
    crash("after_register")

    if os.environ.get("PROBE_SUBSCRIBE") == "1":
        subscribe(ext_id, port)
    if os.environ.get("PROBE_INIT_ERROR") == "1":
        st, _, body = request("POST", "/2020-01-01/extension/init/error",
                              json.dumps({"errorMessage": "probe init error",
                                          "errorType": "Extension.ProbeInit"}).encode(),
                              {"Lambda-Extension-Identifier": ext_id,
                               "Lambda-Extension-Function-Error-Type": "Extension.ProbeInit"})
        record("call", what="init/error", status=st, body=body.decode("utf-8", "replace"))
        sys.exit(1)
    if env_int("PROBE_BEFORE_NEXT_MS"):
        time.sleep(env_int("PROBE_BEFORE_NEXT_MS") / 1000.0)

    invokes = 0
    late_done = False
    while True:
        try:
            st, hdrs, body = request("GET", "/2020-01-01/extension/event/next", None,
                                     {"Lambda-Extension-Identifier": ext_id})
        except (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead) as exc:
            if os.environ.get("PROBE_NEXT_RETRY") != "1":
                raise
            record("next_reset", error=type(exc).__name__)
            continue
        tolerant = os.environ.get("PROBE_NEXT_RETRY") == "1"
        if st != 200:
            record("next_error", status=st, body=body.decode("utf-8", "replace"))
            if tolerant:
                continue
            say("next -> %d, exiting" % st)
            sys.exit(1)
        try:
            event = json.loads(body)
        except ValueError:
            if not tolerant:
                raise
            record("next_garbage", body=body.decode("utf-8", "replace"), headers=hdrs)
            continue
        record("event", event=event, headers=hdrs)
        if os.environ.get("PROBE_LATE_SUBSCRIBE") == "1" and not late_done:
            late_done = True
            subscribe(ext_id, port, late=True)
        if event.get("eventType") == "SHUTDOWN":
            say("SHUTDOWN %s" % event.get("shutdownReason"))
            if os.environ.get("PROBE_IGNORE_SHUTDOWN") == "1":
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                while True:
                    time.sleep(3600)
            if env_int("PROBE_SHUTDOWN_DELAY_MS"):
                time.sleep(env_int("PROBE_SHUTDOWN_DELAY_MS") / 1000.0)
            sys.stdout.flush()
            os._exit(0)
        invokes += 1
        say("INVOKE %s" % event.get("requestId"))
        if os.environ.get("PROBE_CRASH") == "invoke" and invokes == env_int("PROBE_CRASH_AT", 1):
            crash("invoke")
        if os.environ.get("PROBE_EXIT_ERROR") == "1":
            st, _, body = request("POST", "/2020-01-01/extension/exit/error", b"",
                                  {"Lambda-Extension-Identifier": ext_id,
                                   "Lambda-Extension-Function-Error-Type": "Extension.ProbeExit"})
            record("call", what="exit/error", status=st, body=body.decode("utf-8", "replace"))
            sys.exit(1)
        if env_int("PROBE_HOLD_MS"):
            time.sleep(env_int("PROBE_HOLD_MS") / 1000.0)


if __name__ == "__main__":
    main()
