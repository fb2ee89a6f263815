"""Telemetry API: per-subscriber batching and delivery (held while frozen, retries, logsDropped),
record emission and the subscribe handler.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import collections
import os
import select
import socket
import threading
import time

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403

__all__ = ['_Subscriber', 'TelemetryMixin']


class _Subscriber:
    """One Telemetry API subscription: buffer + dispatcher thread."""

    def __init__(self, emu, name):
        self.emu = emu
        self.name = name
        self.types = set()
        self.max_items = DEFAULT_BUFFERING["maxItems"]
        self.max_bytes = DEFAULT_BUFFERING["maxBytes"]
        self.timeout_ms = DEFAULT_BUFFERING["timeoutMs"]
        self.dest = None
        self.schema_version = None
        self.ext = None
        self.q = collections.deque()      # (record, json_bytes, t_enqueued_ns)
        self.q_bytes = 0
        self.flush_req = False
        self.busy = False                 # a batch taken from q whose first attempt is not over
        self.failing = False              # the last delivery attempt failed
        self.drop_pending = [0, 0]        # bytes, records folded into the next logsDropped
        self.sock = None
        self.sock_key = None
        self.thread = threading.Thread(target=self._run, name="telemetry-%s" % name, daemon=True)

    # --- called with emu lock held
    def accepts(self, rtype):
        if rtype.startswith("platform."):
            return "platform" in self.types
        return rtype in self.types

    def enqueue_locked(self, rec, data):
        self.q.append((rec, data, _mono_ns()))
        self.q_bytes += len(data)
        cap = self.emu.quirks["subscriber_buffer_bytes"]
        if self.q_bytes > cap:
            dropped_bytes = dropped_n = 0
            while self.q and self.q_bytes > cap // 2:
                _, d, _ = self.q.popleft()
                self.q_bytes -= len(d)
                dropped_bytes += len(d)
                dropped_n += 1
            self.emu._emit_logs_dropped_locked(self, dropped_bytes, dropped_n)

    def deliverable(self):
        e = self.emu
        return (not e._frozen and not e._delivery_hold and not e.faults["hold_telemetry"]
                and self.dest is not None
                and self.ext is not None and self.ext.alive)

    def flush_pending_locked(self):
        """Records are buffered or on their way and a flush would deliver them now: not when
        nothing can be delivered, nor while the listener is failing (the retries go on, but
        the platform does not wait for them)."""
        return self.deliverable() and not self.failing and (bool(self.q) or self.busy)

    # --- dispatcher thread
    def _run(self):
        emu = self.emu
        cv = emu._cv
        while True:
            with cv:
                while True:
                    if emu._closed:
                        self._close_sock()
                        return
                    if not self.q:
                        self.flush_req = False
                        cv.wait(1.0)
                        continue
                    now = _mono_ns()
                    due = self.q[0][2] + self.timeout_ms * 1_000_000
                    ready = (len(self.q) >= self.max_items or self.q_bytes >= self.max_bytes
                             or now >= due or self.flush_req)
                    if not ready:
                        cv.wait(max(0.001, (due - now) / 1e9))
                        continue
                    if not self.deliverable():
                        cv.wait(0.2)
                        continue
                    break
                batch = []
                size = 2
                while self.q and len(batch) < self.max_items:
                    rec, data, _ = self.q[0]
                    if batch and size + len(data) + 1 > self.max_bytes:
                        break
                    self.q.popleft()
                    self.q_bytes -= len(data)
                    batch.append((rec, data))
                    size += len(data) + 1
                self.busy = True
                self.failing = False
            ok = self._deliver(batch)
            with cv:
                self.busy = False
                cv.notify_all()
            if not ok and not emu._closed:
                with cv:
                    n = len(batch)
                    nbytes = sum(len(d) for _, d in batch)
                    if all(r["type"] == "platform.logsDropped" for r, _ in batch):
                        self.drop_pending[0] += nbytes
                        self.drop_pending[1] += n
                    else:
                        emu._emit_logs_dropped_locked(self, nbytes, n)
                    cv.notify_all()

    def _deliver(self, batch):
        emu = self.emu
        q = emu.quirks
        recs = [r for r, _ in batch]
        if self.dest and self.dest["protocol"] == "TCP":
            body = b"".join(d + b"\n" for _, d in batch)
        else:
            body = b"[" + b",".join(d for _, d in batch) + b"]"
        spoil = emu.faults["spoil_runtime_done"]
        if spoil and spoil.get("count", 1) > 0 and any(r["type"] == "platform.runtimeDone" for r in recs):
            spoil["count"] = spoil.get("count", 1) - 1
            if spoil["how"] == "garbage":
                body = body[:len(body) // 2]
            elif spoil["how"] == "pad":
                body = body[:-1] + b" " * int(spoil["bytes"]) + body[-1:]
            elif spoil["how"] == "delay" and not self._sleep_unfrozen(spoil["ms"] / 1000.0):
                return False
        attempts = 1 + int(q["delivery_retries"])
        for attempt in range(1, attempts + 1):
            if not self._wait_deliverable():
                return False
            dest = self.dest
            t0 = _mono_ns()
            try:
                if dest["protocol"] == "TCP":
                    status = self._tcp_send(dest, body)
                else:
                    status = self._http_post(dest, body)
            except _Abort:
                return False
            except Exception as exc:  # connection errors, timeouts, garbage answers
                status = "%s: %s" % (type(exc).__name__, exc)
                self._close_sock()
            t1 = _mono_ns()
            ok = _is_int(status) and 200 <= status < 300
            entry = {"subscriber": self.name, "t_mono_ns": t0, "t_done_ns": t1, "status": status,
                     "records": recs, "attempt": attempt, "bytes": len(body),
                     "destination": dest.get("uri") or "tcp:%s" % dest.get("port")}
            emu.delivered.append(entry)
            emu._log_api({"t_mono_ns": t1, "t_start_ns": t0, "api": "delivery", "who": self.name,
                          "method": "POST" if dest["protocol"] == "HTTP" else "TCP",
                          "path": dest.get("path"), "status": status, "records": len(recs),
                          "attempt": attempt, "bytes": len(body)})
            with emu._cv:
                # the attempt is over: a shutdown's flush waits no longer for this batch
                self.busy = False
                self.failing = not ok
                emu._cv.notify_all()
            if ok:
                return True
            if attempt < attempts:
                if not self._sleep_unfrozen(q["delivery_backoff_ms"] * (2 ** (attempt - 1)) / 1000.0):
                    return False
        return False

    def _wait_deliverable(self):
        emu = self.emu
        with emu._cv:
            while not self.deliverable():
                if emu._closed:
                    return False
                emu._cv.wait(0.2)
        return not emu._closed

    def _sleep_unfrozen(self, seconds):
        emu = self.emu
        spent = 0.0
        while spent < seconds:
            if emu._closed:
                return False
            t = time.monotonic()
            time.sleep(min(0.01, seconds - spent))
            if self.deliverable():
                spent += time.monotonic() - t
        return True

    def _close_sock(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.sock_key = None

    def _connect(self, port, clock):
        self._close_sock()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, 115, 11):  # EINPROGRESS / EAGAIN
            s.close()
            raise ConnectionRefusedError(err, os.strerror(err))
        self.sock = s
        self._io_wait(True, clock)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._close_sock()
            raise ConnectionRefusedError(err, os.strerror(err))
        self.sock_key = port

    def _io_wait(self, want_write, clock):
        """Wait for the socket; only time while the sandbox runs counts toward the timeout."""
        emu = self.emu
        while True:
            if emu._closed:
                raise _Abort()
            t = time.monotonic()
            p = select.poll()
            p.register(self.sock, select.POLLOUT if want_write else select.POLLIN)
            if p.poll(20):
                return
            if not emu._frozen and self.ext is not None and self.ext.alive:
                clock[0] += time.monotonic() - t
            if clock[0] >= clock[1]:
                raise TimeoutError("no answer within %d ms" % int(clock[1] * 1000))

    def _send_all(self, data, clock):
        view = memoryview(data)
        while view:
            self._io_wait(True, clock)
            try:
                n = self.sock.send(view)
            except BlockingIOError:
                continue
            view = view[n:]

    def _recv(self, clock):
        self._io_wait(False, clock)
        try:
            return self.sock.recv(65536)
        except BlockingIOError:
            return None

    def _tcp_send(self, dest, body):
        clock = [0.0, self.emu.quirks["delivery_timeout_ms"] / 1000.0]
        if self.sock is None or self.sock_key != dest["port"]:
            self._connect(dest["port"], clock)
        self._send_all(body, clock)
        return 200

    def _http_post(self, dest, body):
        host_header = "%s:%d" % (dest["host"], dest["port"])
        head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (dest["path"], host_header, len(body))).encode("latin-1")
        for conn_try in (0, 1):
            clock = [0.0, self.emu.quirks["delivery_timeout_ms"] / 1000.0]
            reused = self.sock is not None and self.sock_key == dest["port"]
            if not reused:
                self._connect(dest["port"], clock)
            try:
                self._send_all(head + body, clock)
                return self._read_response(clock)
            except (_Stale, BrokenPipeError, ConnectionResetError) as exc:
                self._close_sock()
                if reused and conn_try == 0:
                    # the kept-alive connection was closed under us: retried at once on a
                    # new one, and logged so that tests can tell
                    self.emu._log_api({"api": "delivery-reconnect", "who": self.name,
                                       "reason": type(exc).__name__})
                    continue
                raise ConnectionError("connection closed without an answer")
        raise ConnectionError("unreachable")

    def _read_response(self, clock):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = self._recv(clock)
                if chunk is None:
                    continue
                if not chunk:
                    if not buf:
                        raise _Stale()
                    raise ConnectionError("connection closed mid-answer")
                buf += chunk
                if len(buf) > 65536 and b"\r\n\r\n" not in buf:
                    raise ValueError("answer headers too long")
            head, _, rest = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ValueError("malformed status line %r" % lines[0][:80])
            status = int(parts[1])
            hdrs = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            if 100 <= status < 200:
                buf = rest
                continue
            break
        keep = parts[0] != "HTTP/1.0" and hdrs.get("connection", "").lower() != "close"
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            data = rest
            while True:
                while b"\r\n" not in data:
                    c = self._recv(clock)
                    if c == b"":
                        raise ConnectionError("closed in chunked body")
                    data += c or b""
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                need = size + 2
                while len(data) < need:
                    c = self._recv(clock)
                    if c == b"":
                        raise ConnectionError("closed in chunked body")
                    data += c or b""
                data = data[need:]
                if size == 0:
                    break
        elif "content-length" in hdrs:
            need = int(hdrs["content-length"])
            got = len(rest)
            while got < need:
                c = self._recv(clock)
                if c == b"":
                    raise ConnectionError("closed in body")
                got += len(c or b"")
        elif status not in (204, 304):
            keep = False
            while True:
                c = self._recv(clock)
                if c == b"":
                    break
        if not keep:
            self._close_sock()
        return status


class TelemetryMixin:
    """Telemetry API: emitting records to subscribers and the subscribe call.  A part of Emulator (core.py); uses its state."""

    # ------------------------------------------------------------------ telemetry emission

    def _emit_locked(self, rtype, record, t_ns=None):
        if self.tenant_id is not None and rtype in ("platform.start", "platform.runtimeDone",
                                                     "platform.report"):
            record = dict(record, tenantId=self.tenant_id)
        rec = {"time": _iso_ms(self._epoch_ns(t_ns)), "type": rtype, "record": record}
        data = _json(rec)
        self.emitted.append(rec)
        if self._init_buffer is not None:
            self._init_buffer.append((rec, data))
        for sub in self._subs.values():
            if sub.accepts(rtype):
                sub.enqueue_locked(rec, data)
        self._cv.notify_all()
        return rec

    def _emit_lines_locked(self, rtype, lines):
        for line in lines:
            self._emit_locked(rtype, line)

    def _emit_logs_dropped_locked(self, sub, nbytes, nrecords):
        nbytes += sub.drop_pending[0]
        nrecords += sub.drop_pending[1]
        sub.drop_pending = [0, 0]
        rec = {"time": _iso_ms(self._epoch_ns()), "type": "platform.logsDropped",
               "record": {"droppedBytes": nbytes, "droppedRecords": nrecords, "reason": LOGS_DROPPED_REASON}}
        data = _json(rec)
        self.emitted.append(rec)
        sub.q.append((rec, data, _mono_ns()))
        sub.q_bytes += len(data)
        self._cv.notify_all()

    def _telemetry_versions(self):
        versions = [v for v in self.quirks["telemetry_schema_versions"] if v in SCHEMA_VERSIONS]
        if self.managed_instances:
            versions = [v for v in versions if v == "2025-01-29"]
        return tuple(versions)

    def _h_telemetry(self, h, body):
        with self._cv:
            ext, err = self._lookup_ext_locked(h)
            if err:
                return err
            who = ext.name
            if ext.failed:
                # after init/error or exit/error no further call of that extension succeeds
                return _error_reply(403, "Extension.InvalidExtensionState",
                                    "State transition from %s to Subscribed failed for extension %s. "
                                    "Error: State transition is not allowed" % (ext.state, ext.id), who=who)
            if self.quirks["telemetry_not_supported"]:
                # AWS's RIE: a stub that accepts nothing and never delivers
                return _Reply(202, _err_body("Telemetry.NotSupported", "Telemetry API is not supported"),
                              [("Content-Type", "application/json")], error_type="Telemetry.NotSupported",
                              who=who)
            if not self._subscriptions_open or ext.first_next or self._phase != "init":
                return _error_reply(403, "Telemetry.SubscriptionClosed", "Telemetry API subscription is closed",
                                    who=who)
        msg, parsed = validate_subscription(body, self.quirks["allow_any_destination_host"],
                                            self._telemetry_versions())
        if msg is not None:
            return _Reply(400, _err_body("ValidationError", msg), [("Content-Type", "application/json")],
                          error_type="ValidationError", who=who)
        with self._cv:
            if not self._subscriptions_open or ext.first_next or self._phase != "init":
                return _error_reply(403, "Telemetry.SubscriptionClosed", "Telemetry API subscription is closed",
                                    who=who)
            sub = self._subs.get(ext.name)
            new = sub is None
            if new:
                sub = _Subscriber(self, ext.name)
            sub.types = set(parsed["types"])
            sub.max_items = parsed["buffering"]["maxItems"]
            sub.max_bytes = parsed["buffering"]["maxBytes"]
            sub.timeout_ms = parsed["buffering"]["timeoutMs"]
            sub.schema_version = parsed["schemaVersion"]
            sub.dest = parsed["destination"]
            sub.ext = ext
            if new:
                # records of the current Init emitted before this subscription still reach it
                for rec, data in self._init_buffer or []:
                    if sub.accepts(rec["type"]):
                        sub.enqueue_locked(rec, data)
                self._subs[ext.name] = sub
                sub.thread.start()
            self._emit_locked("platform.telemetrySubscription",
                              {"name": ext.name, "state": "Subscribed" if new else "Already subscribed",
                               "types": list(parsed["types"])})
            return _Reply(200, b'"OK"', [("Content-Type", "application/json")], who=who)
