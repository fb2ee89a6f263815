#!/usr/bin/env python3
"""Local AWS Lambda execution-environment emulator for lambda-tracer.

Standard library only (Debian's /usr/bin/python3, 3.11).  It launches every
executable in <root>/opt/extensions plus a runtime bootstrap, serves the
Runtime API (2018-06-01), the Extensions API (2020-01-01) and the Telemetry API
(2022-07-01, schemas 2022-07-01 / 2022-12-13 / 2025-01-29) on an ephemeral
loopback port, delivers telemetry to subscribers the way Lambda does (batched
POSTs, held while the sandbox is frozen, retries then platform.logsDropped) and
runs the Init / Invoke / Shutdown lifecycle including resets after failures.

Python API: see Emulator.  CLI: `python3 lambda_emulator.py run --help`.
README.md next to this file lists where the emulator knowingly differs from Lambda.
"""

import argparse
import collections
import datetime
import email.utils
import fcntl
import hashlib
import http
import json
import math
import os
import re
import secrets
import select
import shlex
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

__all__ = ["Emulator", "InitResult", "InvokeResult", "InvokeHandle", "ShutdownResult", "ExtensionExit",
           "validate_subscription", "normalize_runtime_error_type", "SUBSCRIPTION_SCHEMA_2025_01_29"]

# ----------------------------------------------------------------------------- constants

MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100    # Runtime API response limit (RIE's; 413 above)
MAX_REQUEST_BYTES = 64 * 1024 * 1024          # anything bigger is refused and the connection closed
MAX_EXTENSIONS = 10
SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
TELEMETRY_TYPES = ("platform", "function", "extension")
DEFAULT_BUFFERING = {"maxItems": 10000, "maxBytes": 262144, "timeoutMs": 1000}
BUFFERING_LIMITS = {"maxItems": (1000, 10000), "maxBytes": (262144, 1048576), "timeoutMs": (25, 30000)}
SANDBOX_HOSTS = ("sandbox.localdomain", "sandbox")
ERROR_TYPE_RE = re.compile(r"^(Runtime|Function)\.[A-Z][a-zA-Z]+$")
LOGS_DROPPED_REASON = ("Some logs were dropped because the downstream consumer is slower "
                       "than the logs production rate")
MIB = 1024 * 1024
INIT_TYPES = ("on-demand", "provisioned-concurrency", "snap-start", "lambda-managed-instances")
MI_INIT_TYPE = "lambda-managed-instances"
# SHUTDOWN's shutdownReason as the wire spells it: Lambda's three (lower case on the wire, upper
# case in the docs) and the one AWS's RIE resets with when it gets SIGTERM or SIGINT.
SHUTDOWN_REASONS = ("spindown", "timeout", "failure", "SandboxTerminated")
SIGTERM_SHUTDOWN_REASON = "SandboxTerminated"

# Variables the runtime gets but external extensions do not (besides every "_"-prefixed key).
RUNTIME_ONLY_VARS = frozenset({
    "AWS_XRAY_DAEMON_ADDRESS", "AWS_XRAY_CONTEXT_MISSING", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    "_HANDLER", "_X_AMZN_TRACE_ID", "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT",
    "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL",
})
# Parent environment keys passed through to sandbox processes; nothing else leaks in.
PASSTHROUGH_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "USER", "LOGNAME", "TERM")

# The Telemetry API subscription schema for 2025-01-29, transcribed from the published
# JSON schema (reference/schemas/rie-telemetry-subscription-schema.2025-01-29.json); the
# emulator's test suite checks it is identical to the reference file.
SUBSCRIPTION_SCHEMA_2025_01_29 = {
    "type": "object",
    "required": ["schemaVersion", "types", "destination"],
    "properties": {
        "schemaVersion": {"type": "string", "enum": ["2025-01-29"]},
        "types": {"type": "array", "minItems": 1,
                  "items": {"type": "string", "enum": ["platform", "function", "extension"]}},
        "destination": {"oneOf": [
            {"type": "object", "required": ["protocol", "URI"],
             "properties": {"protocol": {"type": "string", "enum": ["HTTP"]},
                            "URI": {"type": "string", "minLength": 1}}},
            {"type": "object", "required": ["protocol", "port"],
             "properties": {"protocol": {"type": "string", "enum": ["TCP"]},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535}}},
        ]},
        "buffering": {"type": "object", "properties": {
            "maxItems": {"type": "integer", "minimum": 1000, "maximum": 10000},
            "maxBytes": {"type": "integer", "minimum": 262144, "maximum": 1048576},
            "timeoutMs": {"type": "integer", "minimum": 25, "maximum": 30000},
        }},
    },
}

DEFAULT_QUIRKS = {
    # status of runtimeDone/report after /invocation/{id}/error: "error" (RIE-MI) or "success" (classic RIE)
    "handled_error_status": "error",
    # 2022/2023 era: initStart only {initializationType, phase}; initReport without status
    "omit_init_fields": False,
    # runtimeDone without the runtimeOverhead span (added later)
    "omit_runtime_overhead": False,
    # no spans at all in runtimeDone / report (oldest captures)
    "omit_spans": False,
    # errorType to put on timed-out runtimeDone/report (real captures: none; RIE-MI: "Sandbox.Timedout")
    "timeout_error_type": None,
    # a header when the caller sends none, as Lambda does: None follows tracing_mode (PassThrough:
    # Sampled=0; Active: Sampled by X-Ray's default rule); False: no header (older emulators)
    "generate_trace_header": None,
    # put tracing into platform.start/runtimeDone/report even when Sampled=0
    "start_tracing_unsampled": False,
    # Active tracing: the runtime's Lambda-Runtime-Trace-Id gets Parent=<spanId of platform.start>
    "rewrite_runtime_trace_parent": True,
    # telemetry delivery: retries after the first attempt, first backoff, time to wait for an answer
    "delivery_retries": 3,
    "delivery_backoff_ms": 100,
    "delivery_timeout_ms": 1000,
    # per-subscriber buffer; beyond it the oldest records are dropped (platform.logsDropped)
    "subscriber_buffer_bytes": 8 * MIB,
    # accept any destination host (Lambda only documents sandbox.localdomain / sandbox)
    "allow_any_destination_host": False,
    # part of the shutdown budget reserved for the runtime (SIGTERM, then SIGKILL)
    "runtime_shutdown_ms": 300,
    # Telemetry still buffered when a shutdown starts: None flushes it before SHUTDOWN goes out
    # (the usual order); N holds it and delivers it N ms after SHUTDOWN was given, the other
    # order the service also shows ("usually delivered ... during SHUTDOWN")
    "shutdown_telemetry_delay_ms": None,
    # memory sampling period
    "memory_sample_ms": 5,
    # Telemetry API schema versions this era of Lambda accepts; others get 400 ValidationError
    # (Managed Instances accept only 2025-01-29 whatever this says)
    "telemetry_schema_versions": list(SCHEMA_VERSIONS),
    # AWS's own RIE: every subscribe gets 202 Telemetry.NotSupported and nothing is delivered
    "telemetry_not_supported": False,
}

# Fault knobs (`faults={...}`, `--fault K=V`): failures of the platform itself, injected on
# purpose to test how an extension copes.  Off by default; each is a documented deviation
# (README.md, "Fault knobs").
DEFAULT_FAULTS = {
    # answers for the first register calls, in order: {"status": int, "body": str} is answered
    # instead of registering; with "register": true the registration happens and only the
    # body is replaced (an identifier header with a garbage body)
    "register_faults": [],
    # the extensions' pending /event/next connections are reset (RST, no answer) when the
    # sandbox thaws for the next N invokes; the INVOKE waits for the retried call
    "reset_next_after_thaw": 0,
    # SHUTDOWN's deadlineMs = shutdown start + this many ms (may be 0 or negative: already
    # passed); None: the real budget.  The budget enforced (SIGKILL) does not change.
    "shutdown_deadline_ms": None,
    # telemetry not yet delivered when the processes are reset goes to the next process (True),
    # or is lost with them (False)
    "keep_undelivered_records": True,
    # telemetry delivery is held (records buffer as while frozen) while this is true; may be
    # changed on a running emulator (emu.faults["hold_telemetry"] = False releases it)
    "hold_telemetry": False,
    # the extensions' next /event/next calls, in order (each entry is used up, then removed):
    # {"garbage": N, "body": str} answers N calls at once with 200 and a body that is not an
    # event; {"status": S, "count": N, "body": str} answers N calls with an error status (and
    # that body); {"truncate": true} writes the next event with its full Content-Length but half
    # its body, closes the connection and gives the event again on the next call;
    # {"oversize_bytes": N} adds a "padding" field of N bytes to the next INVOKE event;
    # {"patch": {...}} sets these fields of the next INVOKE event (e.g. a hostile requestId)
    "next_faults": [],
    # the next `count` telemetry deliveries that carry a platform.runtimeDone are spoiled:
    # {"how": "garbage"} cuts the body in half (unparsable JSON), {"how": "pad", "bytes": N}
    # appends N spaces inside the array (valid, but N bytes bigger), {"how": "delay", "ms": N}
    # delivers it N ms late (counted while thawed); None: off
    "spoil_runtime_done": None,
}


# ----------------------------------------------------------------------------- helpers

def _mono_ns():
    return time.monotonic_ns()


def _iso_ms(epoch_ns):
    """ISO 8601 UTC with millisecond precision and Z, like Lambda's record times."""
    secs, rem = divmod(int(epoch_ns), 1_000_000_000)
    dt = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (rem // 1_000_000)


def _ms(ns):
    return round(ns / 1e6, 3)


def normalize_runtime_error_type(value):
    """Lambda keeps a runtime-supplied error type only if it looks like Runtime.X / Function.X."""
    if value and ERROR_TYPE_RE.match(value.strip()):
        return value.strip()
    return "Runtime.Unknown"


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def _err_body(error_type, message):
    return _json({"errorMessage": message, "errorType": error_type})


def _parse_trace_header(value):
    parts = {}
    for piece in (value or "").split(";"):
        if "=" in piece:
            k, v = piece.split("=", 1)
            parts[k.strip()] = v.strip()
    return parts


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _schema_errors(schema, value, path="$"):
    """A small JSON-Schema subset validator (type, required, properties, enum, items,
    minItems, minLength, minimum, maximum, oneOf).  Returns a list of messages."""
    errs = []
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not _schema_errors(s, value, path)]
        if len(ok) != 1:
            errs.append("%s: must match exactly one schema in oneOf (matched %d)" % (path, len(ok)))
        return errs
    t = schema.get("type")
    if t == "object" and not isinstance(value, dict):
        return ["%s: expected object" % path]
    if t == "array" and not isinstance(value, list):
        return ["%s: expected array" % path]
    if t == "string" and not isinstance(value, str):
        return ["%s: expected string" % path]
    if t == "integer" and not _is_int(value):
        return ["%s: expected integer" % path]
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: value must be one of %s" % (path, ", ".join(map(json.dumps, schema["enum"]))))
    if t == "string" and "minLength" in schema and len(value) < schema["minLength"]:
        errs.append("%s: length must be >= %d" % (path, schema["minLength"]))
    if t == "integer":
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: must be >= %d but found %d" % (path, schema["minimum"], value))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: must be <= %d but found %d" % (path, schema["maximum"], value))
    if t == "array":
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append("%s: minimum %d items required" % (path, schema["minItems"]))
        if "items" in schema:
            for i, item in enumerate(value):
                errs.extend(_schema_errors(schema["items"], item, "%s[%d]" % (path, i)))
    if t == "object":
        for key in schema.get("required", []):
            if key not in value:
                errs.append("%s: missing property %r" % (path, key))
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errs.extend(_schema_errors(sub, value[key], "%s.%s" % (path, key)))
    return errs


def validate_subscription(body, allow_any_host=False, versions=SCHEMA_VERSIONS):
    """Validate a Telemetry API subscribe body.

    `versions` are the schema versions accepted (an era of Lambda, or Managed Instances, may
    accept fewer than SCHEMA_VERSIONS).
    Returns (None, parsed) on success or (message, None) on a validation error.
    parsed = {"schemaVersion", "types", "buffering" (complete, defaults applied),
              "destination": {"protocol", "host", "port", "path", "uri"}}.
    2025-01-29 is validated against SUBSCRIPTION_SCHEMA_2025_01_29; the older schema
    versions use the same rules except that a TCP destination may also be given as a URI.
    """
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return "failed to parse JSON: %s" % exc, None
    if not isinstance(obj, dict):
        return "failed to parse JSON: request body must be a JSON object", None
    errs = []
    version = obj.get("schemaVersion")
    if not isinstance(version, str) or version not in SCHEMA_VERSIONS or version not in versions:
        errs.append("schemaVersion must be one of %s" % ", ".join(v for v in SCHEMA_VERSIONS if v in versions))
        if not isinstance(version, str) or version not in SCHEMA_VERSIONS:
            version = "2025-01-29"
    if version == "2025-01-29":
        errs.extend(_schema_errors(SUBSCRIPTION_SCHEMA_2025_01_29, obj))
    else:
        schema = json.loads(json.dumps(SUBSCRIPTION_SCHEMA_2025_01_29))
        schema["properties"]["schemaVersion"]["enum"] = [version]
        tcp = schema["properties"]["destination"]["oneOf"][1]
        tcp["required"] = ["protocol"]
        tcp["properties"]["URI"] = {"type": "string", "minLength": 1}
        errs.extend(_schema_errors(schema, obj))
    types = obj.get("types")
    if isinstance(types, list) and not types:
        errs.append("types should not be empty")
    dest_out = None
    dest = obj.get("destination")
    if isinstance(dest, dict) and not errs:
        proto = dest.get("protocol")
        uri = dest.get("URI")
        if proto == "HTTP" or (proto == "TCP" and "port" not in dest):
            if proto == "TCP" and not isinstance(uri, str):
                errs.append("TCP destination needs a port")
            else:
                parts = urllib.parse.urlsplit(uri)
                scheme = "http" if proto == "HTTP" else "tcp"
                try:
                    port = parts.port
                except ValueError:
                    port = None
                    errs.append("URI port is invalid")
                if parts.scheme.lower() != scheme:
                    errs.append("URI scheme must be %s" % scheme)
                elif not parts.hostname:
                    errs.append("URI host is not provided")
                elif port is None and not errs:
                    errs.append("URI port is not provided")
                elif not allow_any_host and parts.hostname.lower() not in SANDBOX_HOSTS:
                    errs.append("URI host must be sandbox.localdomain")
                elif port == 9001:
                    errs.append("port 9001 is reserved")
                if not errs:
                    dest_out = {"protocol": proto, "host": parts.hostname, "port": port,
                                "path": (parts.path or "/") + ("?" + parts.query if parts.query else ""),
                                "uri": uri}
        else:
            port = dest.get("port")
            if port == 9001:
                errs.append("port 9001 is reserved")
            else:
                dest_out = {"protocol": "TCP", "host": "sandbox.localdomain", "port": port,
                            "path": None, "uri": None}
    if errs:
        return "; ".join(errs), None
    buffering = dict(DEFAULT_BUFFERING)
    if isinstance(obj.get("buffering"), dict):
        for key in BUFFERING_LIMITS:
            if key in obj["buffering"]:
                buffering[key] = obj["buffering"][key]
    return None, {"schemaVersion": version, "types": list(types), "buffering": buffering,
                  "destination": dest_out}


# ----------------------------------------------------------------------------- results

@dataclass
class ExtensionExit:
    name: str
    pid: Optional[int]
    exit_code: Optional[int]          # Popen-style: negative = killed by that signal
    killed: bool                      # the emulator SIGKILLed it at the end of the budget
    shutdown_delivered: bool          # the SHUTDOWN event was written to its /event/next
    ms_to_exit: Optional[float]       # SHUTDOWN delivery -> process exit


@dataclass
class ShutdownResult:
    reason: str
    deadline_ms: int                  # epoch ms sent as deadlineMs
    duration_ms: float
    runtime_exit_code: Optional[int]
    runtime_killed: bool
    extensions: Dict[str, ExtensionExit] = field(default_factory=dict)


@dataclass
class InitResult:
    status: str                       # success | error | timeout
    error_type: Optional[str]
    duration_ms: float
    phase: str                        # init | invoke
    init_type: str
    extensions: Dict[str, str] = field(default_factory=dict)   # name -> state at the end of Init
    runtime_pid: Optional[int] = None
    extension_pids: Dict[str, int] = field(default_factory=dict)
    shutdown: Optional[ShutdownResult] = None                 # the reset after a failed Init


@dataclass
class InvokeResult:
    request_id: str
    status: str                       # success | error | timeout | failure
    error_type: Optional[str]
    response: Optional[bytes]
    duration_ms: float                # platform.report durationMs
    billed_duration_ms: int
    init_phase_ran: bool
    max_memory_used_mb: int = 0
    init: Optional[InitResult] = None
    restore: Optional[Dict[str, Any]] = None
    function_error: Optional[Dict[str, Any]] = None   # what the runtime posted to /error
    exit_code: Optional[int] = None                   # runtime exit status on a crash (negative = signal)
    exit_signal: Optional[str] = None
    deadline_ms: int = 0
    shutdown: Optional[ShutdownResult] = None         # the reset that followed a failure
    records: List[Dict[str, Any]] = field(default_factory=list)   # records emitted during the call


class InvokeHandle:
    """A running invocation started with Emulator.invoke_async()."""

    def __init__(self, request_id):
        self.request_id = request_id
        self._done = threading.Event()
        self._result = None
        self._exc = None

    def done(self):
        return self._done.is_set()

    def result(self, timeout=None):
        """The InvokeResult; raises TimeoutError if it is not there within `timeout` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError("invocation %s still running" % self.request_id)
        if self._exc is not None:
            raise self._exc
        return self._result


# ----------------------------------------------------------------------------- internals

class _Reply:
    __slots__ = ("status", "body", "headers", "error_type", "event", "request_id", "who", "on_sent",
                 "close", "log", "truncate")

    def __init__(self, status, body=b"", headers=None, error_type=None, event=None, request_id=None,
                 who=None, on_sent=None, close=False, log=None, truncate=None):
        self.status = status
        self.body = body
        self.headers = headers or []
        self.error_type = error_type
        self.event = event
        self.request_id = request_id
        self.who = who
        self.on_sent = on_sent
        self.close = close
        self.log = log             # extra api_log fields
        self.truncate = truncate   # write only this many body bytes, then close (fault knob)


def _error_reply(status, error_type, message, who=None):
    return _Reply(status, _err_body(error_type, message), [("Content-Type", "application/json")],
                  error_type=error_type, who=who)


def _accepted(who=None):
    return _Reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")], who=who)


class _Waiter:
    """A pending long-poll (/event/next, /invocation/next, /restore/next)."""
    __slots__ = ("reply", "cancelled", "sent", "sent_ns", "who", "reset")

    def __init__(self, who):
        self.reply = None
        self.cancelled = False
        self.reset = False          # cancelled by a fault knob: reset the connection (RST)
        self.sent = threading.Event()
        self.sent_ns = None
        self.who = who


class _Proc:
    """A sandbox process (runtime or extension) with its output reader and exit watcher."""

    def __init__(self, kind, name):
        self.kind = kind
        self.name = name
        self.popen = None
        self.pid = None
        self.rlock = threading.Lock()
        self.exited = False
        self.returncode = None
        self.t_exit_ns = None
        self.expected_exit = False
        self.killed = False
        self.oom = False
        self.ext = None
        self.t_spawn_ns = None
        self.t_start_ns = None


class _Ext:
    def __init__(self, name, path, gen, internal=False):
        self.name = name
        self.path = path
        self.gen = gen
        self.internal = internal
        self.proc = None
        self.id = None
        self.events = []
        self.state = "Started"
        self.registered = False
        self.first_next = False
        self.waiter = None
        self.queued = None
        self.invoke_rid = None
        self.failed = None
        self.dead = False
        self.shutdown_waiter = None
        self.t_shutdown_sent_ns = None
        self.shutdown_delivered = False
        self.reported_error_type = None

    @property
    def alive(self):
        if self.dead:
            return False
        if self.proc is None:
            return self.internal
        return not self.proc.exited


class _Runtime:
    def __init__(self):
        self.proc = None
        self.state = "init"        # init | restore_wait | idle | invoking
        self.waiter = None
        self.waiters = []          # Managed Instances: every pending /invocation/next
        self.restore_waiter = None
        self.cur = None
        self.ready = False
        self.pending = None


class _Invocation:
    def __init__(self, rid):
        self.request_id = rid
        self.payload = b""
        self.trace_header = None
        self.runtime_trace = None
        self.tracing = None
        self.client_context = None
        self.cognito_identity = None
        self.content_type = "application/json"
        self.deadline_epoch_ms = 0
        self.deadline_ns = 0
        self.t_start_ns = 0
        self.t_delivered_ns = None
        self.answered = False
        self.response = None
        self.error_type = None
        self.function_error = None
        self.produced_bytes = 0
        self.t_resp_start_ns = None
        self.t_resp_end_ns = None
        self.t_rt_next_ns = None
        self.rt_done = False
        self.ext_pending = set()
        self.t_last_ext_next_ns = None
        self.finished = False
        # Managed Instances
        self.gen = 0
        self.t_base_ns = 0          # report durationMs starts here
        self.suppressed = False
        self.first_record = 0
        self.outcome = None         # ok | timeout | fatal | closed
        self.t_end_ns = None
        self.fatal = None           # (errorType, proc) of the failure that ended it
        self.result = None


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


class _Abort(Exception):
    pass


class _Stale(Exception):
    pass


class _BadRequest(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, emu):
        self.emu = emu
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_all(self):
        with self._conns_lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # garbage from clients must not spam the test output


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lambda-emulator"
    sys_version = ""

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, fmt, *args):
        pass

    def _go(self):
        self.server.emu._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _go


def _read_body(h):
    te = (h.headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        out = bytearray()
        while True:
            line = h.rfile.readline(1024)
            if not line:
                raise _BadRequest("truncated chunked body")
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise _BadRequest("bad chunk size")
            if size == 0:
                while True:  # trailers
                    t = h.rfile.readline(8192)
                    if not t or t in (b"\r\n", b"\n"):
                        break
                return bytes(out)
            if len(out) + size > MAX_REQUEST_BYTES:
                raise _BadRequest("body too large")
            chunk = h.rfile.read(size)
            if len(chunk) < size:
                raise _BadRequest("truncated chunk")
            out += chunk
            h.rfile.readline(16)
    cl = h.headers.get("Content-Length")
    if cl is None:
        return b""
    try:
        n = int(cl)
    except ValueError:
        raise _BadRequest("bad Content-Length")
    if n < 0 or n > MAX_REQUEST_BYTES:
        raise _BadRequest("bad Content-Length")
    data = h.rfile.read(n) if n else b""
    if len(data) < n:
        raise _BadRequest("truncated body")
    return data


def _write_reply(h, reply):
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "Status"
    lines = ["HTTP/1.1 %d %s" % (reply.status, phrase),
             "Date: " + email.utils.formatdate(usegmt=True)]
    for k, v in reply.headers:
        lines.append("%s: %s" % (k, v))
    lines.append("Content-Length: %d" % len(reply.body))
    if reply.close or h.close_connection:
        lines.append("Connection: close")
        h.close_connection = True
    body = reply.body
    if reply.truncate is not None:
        # Content-Length promises the whole body; the connection ends before it
        body = body[:reply.truncate]
        h.close_connection = True
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    try:
        h.wfile.write(data)
        return True
    except OSError:
        h.close_connection = True
        return False


# Routes
_P_RT = "/2018-06-01/runtime/"
_RE_INV = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")


# ----------------------------------------------------------------------------- the emulator

class Emulator:
    """One Lambda execution environment (sandbox) driven from Python.

    Emulator(root, runtime, function_name="demo-fn", function_version="$LATEST",
             memory_mb=128, timeout_s=3, init_type="on-demand", region="us-east-1",
             account_id="123456789012", env=None, init_timeout_s=None (10 s on-demand,
             max(130, timeout_s) for provisioned-concurrency / snap-start),
             shutdown_budget_ms=2000, freeze=True, quirks=None, log_path=None, work_dir=None,
             handler="function.handler", runtime_version="provided:al2023.v100",
             xray_daemon_address="127.0.0.1:2000", managed_instances=False, max_concurrency=None,
             tracing_mode="PassThrough")

    tracing_mode: the header Lambda makes for a call that brings none (the function's X-Ray
    tracing mode): "PassThrough" (Lambda's default) a fresh Root and Parent with Sampled=0,
    "Active" Sampled by X-Ray's default rule (the first each second, then 5 %).

    managed_instances=True (or init_type="lambda-managed-instances") emulates Lambda Managed
    Instances: up to max_concurrency (default 2) invocations at once, no INVOKE events for
    extensions, no platform.runtimeDone, schema 2025-01-29 only, no freeze.
    """

    def __init__(self, root, runtime, function_name="demo-fn", function_version="$LATEST",
                 memory_mb=128, timeout_s=3, init_type="on-demand", region="us-east-1",
                 account_id="123456789012", env=None, init_timeout_s=None, shutdown_budget_ms=2000,
                 freeze=True, quirks=None, log_path=None, work_dir=None, handler="function.handler",
                 runtime_version="provided:al2023.v100", xray_daemon_address="127.0.0.1:2000",
                 managed_instances=False, max_concurrency=None, faults=None, tmp_dir=None,
                 tracing_mode="PassThrough", tenant_id=None, bill_init=False):
        # Tenant isolation: tenantId on platform.start, runtimeDone and report (reference
        # observability-2026 "Newer platform modes").  bill_init: billedDurationMs of the cold
        # start's report includes the Init, rounded up on its own (every runtime since 2025-08-01;
        # off by default to keep the older reports other tests were written against).
        self.tenant_id = tenant_id
        self.bill_init = bill_init
        if tracing_mode not in ("PassThrough", "Active"):
            raise ValueError("tracing_mode must be PassThrough or Active")
        # Lambda's default is PassThrough: a call without a trace header gets one Lambda makes,
        # a fresh Root with Sampled=0 (reference observability-2026 "Lambda and X-Ray tracing
        # modes"); Active decides by X-Ray's default rule (1 per second, then 5 %).
        self.tracing_mode = tracing_mode
        self._trace_headers = {}
        self._xray_second = None
        self._xray_lock = threading.Lock()
        if init_type not in INIT_TYPES:
            raise ValueError("init_type must be one of %s" % ", ".join(INIT_TYPES))
        if init_type == MI_INIT_TYPE:
            managed_instances = True
        self.managed_instances = bool(managed_instances)
        if self.managed_instances:
            if init_type not in ("on-demand", MI_INIT_TYPE):
                raise ValueError("Managed Instances have their own init type; %s is not possible" % init_type)
            init_type = MI_INIT_TYPE
            max_concurrency = 2 if max_concurrency is None else max_concurrency
            if not _is_int(max_concurrency) or max_concurrency < 1:
                raise ValueError("max_concurrency must be a positive integer")
            freeze = False          # Managed Instances environments keep running between requests
        elif max_concurrency not in (None, 1):
            raise ValueError("max_concurrency needs managed_instances=True (one invocation at a time otherwise)")
        self.max_concurrency = int(max_concurrency or 1)
        self.root = os.path.abspath(root)
        argv = shlex.split(runtime) if isinstance(runtime, str) else [str(a) for a in runtime]
        if not argv:
            raise ValueError("runtime argv is empty")
        # the runtime runs in <root>/var/task: make relative paths given by the caller absolute
        self.runtime_argv = [os.path.abspath(a) if ("/" in a and not os.path.isabs(a) and os.path.exists(a))
                             else a for a in argv]
        self.function_name = function_name
        self.function_version = function_version
        self.memory_mb = int(memory_mb)
        self.timeout_s = float(timeout_s)
        self.init_type = init_type
        self.region = region
        self.account_id = account_id
        self.customer_env = {str(k): str(v) for k, v in (env or {}).items()}
        if init_timeout_s is None:
            init_timeout_s = 10.0 if init_type == "on-demand" else max(130.0, self.timeout_s)
        self.init_timeout_s = float(init_timeout_s)
        self.shutdown_budget_ms = int(shutdown_budget_ms)
        self.freeze = bool(freeze)
        self.quirks = dict(DEFAULT_QUIRKS)
        if self.managed_instances:
            # RIE-MI puts Sandbox.Timedout on timed-out reports (the only source for MI)
            self.quirks["timeout_error_type"] = "Sandbox.Timedout"
        for k, v in (quirks or {}).items():
            if k not in DEFAULT_QUIRKS:
                raise ValueError("unknown quirk %r (known: %s)" % (k, ", ".join(sorted(DEFAULT_QUIRKS))))
            self.quirks[k] = v
        if self.quirks["handled_error_status"] not in ("error", "success"):
            raise ValueError("handled_error_status must be 'error' or 'success'")
        tsv = self.quirks["telemetry_schema_versions"]
        if isinstance(tsv, str):
            tsv = [v.strip() for v in tsv.split(",") if v.strip()]
        if not isinstance(tsv, (list, tuple)) or not tsv or any(v not in SCHEMA_VERSIONS for v in tsv):
            raise ValueError("telemetry_schema_versions must be a non-empty list of %s" % ", ".join(SCHEMA_VERSIONS))
        self.quirks["telemetry_schema_versions"] = list(tsv)
        self.faults = dict(DEFAULT_FAULTS)
        for k, v in (faults or {}).items():
            if k not in DEFAULT_FAULTS:
                raise ValueError("unknown fault %r (known: %s)" % (k, ", ".join(sorted(DEFAULT_FAULTS))))
            self.faults[k] = v
        self.faults["register_faults"] = [dict(f) for f in self.faults["register_faults"] or []]
        self.faults["next_faults"] = [dict(f) for f in self.faults["next_faults"] or []]
        for f in self.faults["next_faults"]:
            if not any(k in f for k in ("garbage", "status", "truncate", "oversize_bytes", "patch")):
                raise ValueError("next_faults entries need garbage, status, truncate, oversize_bytes or patch")
        for f in self.faults["register_faults"]:
            if not _is_int(f.get("status")) or not 100 <= f["status"] <= 599:
                raise ValueError("register_faults entries need an HTTP status")
        # the sandbox's /tmp: one directory per Emulator, kept across resets (as Lambda keeps
        # /tmp across re-inits of one execution environment), given to processes as TMPDIR
        self.tmp_dir = os.path.abspath(tmp_dir) if tmp_dir else os.path.join(self.root, "tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)
        self.handler = handler
        self.runtime_version = runtime_version
        self.runtime_version_arn = "arn:aws:lambda:%s::runtime:%s" % (
            region, hashlib.sha256(runtime_version.encode()).hexdigest())
        self.xray_daemon_address = xray_daemon_address
        self.function_arn = "arn:aws:lambda:%s:%s:function:%s" % (region, account_id, function_name)
        self.work_dir = os.path.abspath(work_dir) if work_dir else None
        if self.work_dir:
            os.makedirs(self.work_dir, exist_ok=True)

        # public observation points
        self.api_log = []
        self.delivered = []
        self.emitted = []
        self.process_log = []

        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)
        self._op_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._log_file = open(log_path, "a", buffering=1) if log_path else None
        self._out_files = {}
        self._outputs = collections.defaultdict(list)
        self._closed = False
        self._epoch_base_ns = time.time_ns() - time.monotonic_ns()
        self._instance_id = "%s/[%s]%s" % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d"),
            function_version, uuid.uuid4().hex)
        self._creds_token = secrets.token_hex(24)
        self._fake_creds = {
            "AccessKeyId": "ASIA" + secrets.token_hex(8).upper(),
            "SecretAccessKey": secrets.token_urlsafe(30),
            "Token": "FwoGZXIvYXdzE" + secrets.token_urlsafe(60),
        }

        # sandbox state (guarded by _lock)
        self._gen = 0
        self._phase = "new"              # new | init | ready | restore | invoke | shutdown | dead
        self._exts = []
        self._ext_by_id = {}
        self._runtime = None
        self._procs = []
        self._readers = []   # (proc, output reader thread), every process ever launched
        self._registration_open = False
        self._subscriptions_open = False
        self._init_buffer = None
        self._subs = {}
        self._fatal = None
        self._idle_fault = None
        self._inv = None
        self._frozen = False
        self._delivery_hold = False
        self._needs_init = True
        self._next_init_phase = "init"
        self._pending_init_duration_ms = None
        self._pending_restore = self.init_type == "snap-start"
        self._pending_restore_ms = None
        self._mem_max = 0
        # Managed Instances
        self._mi_invs = {}               # request id -> _Invocation in flight (current generation)
        self._mi_queue = collections.deque()   # registered, waiting for a runtime /next
        self._mi_slots = threading.Semaphore(self.max_concurrency)
        self._mi_draining = 0            # shutdown() waiting for in-flight invocations
        self._mi_resetting = False       # a failure is being turned into reports + reset
        self._sampling = False
        self._sampler_lock = threading.Lock()
        self._scan = {"t": 0, "keys": None, "map": {}}

        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self.runtime_api = "127.0.0.1:%d" % self.port
        self._server_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                               name="lambda-emulator-api", daemon=True)
        self._server_thread.start()
        self._sample_wake = threading.Event()
        self._sampler_thread = threading.Thread(target=self._sampler_loop, name="lambda-emulator-mem",
                                                daemon=True)
        self._sampler_thread.start()

    # ------------------------------------------------------------------ public API

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        """Run Init (phase "init").  Returns InitResult.  A failed Init resets the sandbox;
        the next invoke() retries it as a suppressed init (phase "invoke")."""
        with self._op_lock:
            self._check_open()
            if not self._needs_init:
                raise RuntimeError("environment already initialised")
            if self._idle_fault is not None or self._has_live_procs():
                self._teardown("failure")
            return self._run_init("init", None)

    def invoke(self, payload=b"{}", trace_header=None, request_id=None, client_context=None,
               cognito_identity=None, content_type="application/json"):
        """One invocation.  Blocks until the runtime and every INVOKE-registered extension
        called next (or until a timeout / failure and the reset that follows it).
        Managed Instances: until the runtime answered (or a timeout / failure); other
        invocations may run at the same time (see invoke_async)."""
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, (bytes, bytearray)):
            payload = _json(payload)
        if self.managed_instances:
            self._check_open()
            return self._invoke_mi(bytes(payload), trace_header, request_id, client_context,
                                   cognito_identity, content_type)
        with self._op_lock:
            self._check_open()
            return self._invoke(bytes(payload), trace_header, request_id, client_context,
                                cognito_identity, content_type)

    def invoke_async(self, payload=b"{}", trace_header=None, request_id=None, client_context=None,
                     cognito_identity=None, content_type="application/json"):
        """Start invoke() on a thread and return an InvokeHandle (request_id is known at once;
        .result(timeout) gives the InvokeResult).  With Managed Instances up to max_concurrency
        invocations run at once (more wait for a slot); otherwise they run one after another,
        in no guaranteed order."""
        rid = request_id or str(uuid.uuid4())
        handle = InvokeHandle(rid)

        def run():
            try:
                handle._result = self.invoke(payload, trace_header=trace_header, request_id=rid,
                                             client_context=client_context, cognito_identity=cognito_identity,
                                             content_type=content_type)
            except BaseException as exc:  # handed to the caller by result()
                handle._exc = exc
            finally:
                handle._done.set()

        threading.Thread(target=run, name="invoke-%s" % rid[:8], daemon=True).start()
        return handle

    def invoke_many(self, payloads, trace_header=None, timeout=None):
        """invoke_async() every payload at once and return their InvokeResults in order.
        trace_header: one header for all, or a list with one per payload (None = no header)."""
        payloads = list(payloads)
        if isinstance(trace_header, (list, tuple)):
            if len(trace_header) != len(payloads):
                raise ValueError("one trace header per payload")
            headers = list(trace_header)
        else:
            headers = [trace_header] * len(payloads)
        handles = [self.invoke_async(p, trace_header=th) for p, th in zip(payloads, headers)]
        end = None if timeout is None else time.monotonic() + timeout
        return [h.result(None if end is None else max(0.0, end - time.monotonic())) for h in handles]

    def shutdown(self, reason="spindown"):
        """SHUTDOWN to the registered extensions (pending or next /event/next), SIGTERM the
        runtime, SIGKILL whatever is alive at the end of the budget.  reason is sent as given
        (SHUTDOWN_REASONS lists the real ones; "SandboxTerminated" is RIE's on SIGTERM).  A later invoke() starts
        a fresh environment (cold start).  Managed Instances: invocations in flight finish
        first (each is bounded by its timeout); new ones wait until the shutdown is over."""
        if self.managed_instances:
            with self._cv:
                self._mi_draining += 1
        try:
            if self.managed_instances:
                with self._cv:
                    while (self._mi_invs or self._mi_resetting) and not self._closed:
                        self._cv.wait(0.2)
            with self._op_lock:
                self._check_open()
                res = self._teardown(reason)
                self._needs_init = True
                self._next_init_phase = "init"
                self._pending_restore = self.init_type == "snap-start"
                return res
        finally:
            if self.managed_instances:
                with self._cv:
                    self._mi_draining -= 1
                    self._cv.notify_all()

    def close(self):
        """Kill every process, stop servers and threads.  Safe to call more than once."""
        if self._closed:
            return
        with self._cv:
            self._closed = True
            procs = list(self._procs)
            self._cancel_all_waiters_locked()
            self._cv.notify_all()
        for p in procs:
            self._signal(p, signal.SIGKILL)
        try:
            self._server.shutdown()
        except Exception:
            pass
        self._server.close_all()
        self._server.server_close()
        self._sample_wake.set()
        for p in procs:
            if p.popen is not None:
                try:
                    p.popen.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        for sub in list(self._subs.values()):
            sub.thread.join(timeout=2)
        self._sampler_thread.join(timeout=2)
        with self._log_lock:
            if self._log_file:
                self._log_file.close()
                self._log_file = None
            for f in self._out_files.values():
                try:
                    f.close()
                except OSError:
                    pass
            self._out_files.clear()

    def output(self, name):
        """Captured stdout+stderr lines (without the newline) of an extension or "runtime".

        For a process that has exited, waits (bounded) until its reader has
        taken everything it wrote: under load the reader thread may lag
        behind the exit, and a caller must not see a truncated output."""
        for proc, reader in list(self._readers):
            if proc.exited and reader.is_alive() and (
                    proc.name == name or (name == "runtime" and proc.kind == "runtime")):
                reader.join(timeout=2.0)
        with self._lock:
            return list(self._outputs.get(name, []))

    def extension_tasks_at_first_next(self, name):
        """How many threads the extension had when its first /event/next arrived (None: unknown)."""
        with self._cv:
            for e in self._exts:
                if e.name == name:
                    return getattr(e, "tasks_at_first_next", None)
        return None

    def telemetry_settled(self):
        """No telemetry buffered or on its way to any subscriber."""
        with self._cv:
            return not any(sub.q or sub.busy for sub in self._subs.values())

    def extension_pids(self):
        with self._lock:
            return {e.name: e.proc.pid for e in self._exts if e.proc is not None and e.proc.pid}

    def runtime_pid(self):
        with self._lock:
            rt = self._runtime
            return rt.proc.pid if rt and rt.proc else None

    def records(self, rtype=None):
        """Emitted records, optionally of one type."""
        with self._lock:
            return [r for r in self.emitted if rtype is None or r["type"] == rtype]

    def processes(self):
        """Every process this emulator launched (runtime and extensions, every generation), in
        launch order: name, pid, t_spawn_ns (just before fork + exec), t_start_ns (after),
        exited, returncode, killed."""
        with self._cv:
            return list(self._procs)

    def subscribers(self):
        with self._lock:
            return {n: {"schemaVersion": s.schema_version, "types": sorted(s.types),
                        "maxItems": s.max_items, "maxBytes": s.max_bytes,
                        "timeoutMs": s.timeout_ms, "destination": dict(s.dest or {}),
                        "queued": len(s.q)} for n, s in self._subs.items()}

    def send_raw_telemetry(self, name, body_bytes, headers=None, timeout=5.0):
        """POST arbitrary bytes to an extension's subscribed destination (fault tests).
        A frozen extension is thawed for the call.  Returns (status, body) or (None, error)."""
        import http.client
        with self._lock:
            sub = self._subs.get(name)
            if sub is None or sub.dest is None:
                raise KeyError("no subscription for %r" % name)
            dest = dict(sub.dest)
            proc = sub.ext.proc if sub.ext else None
            was_frozen = self._frozen
        if isinstance(body_bytes, str):
            body_bytes = body_bytes.encode()
        if was_frozen and proc:
            self._signal(proc, signal.SIGCONT)
        try:
            if dest["protocol"] == "TCP":
                with socket.create_connection(("127.0.0.1", dest["port"]), timeout=timeout) as s:
                    s.sendall(body_bytes)
                return 200, b""
            conn = http.client.HTTPConnection("127.0.0.1", dest["port"], timeout=timeout)
            try:
                hdrs = {"Content-Type": "application/json"}
                hdrs.update(headers or {})
                conn.request("POST", dest["path"], body=body_bytes, headers=hdrs)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException) as exc:
                return None, "%s: %s" % (type(exc).__name__, exc)
            finally:
                conn.close()
        finally:
            with self._lock:
                if was_frozen and proc and self._frozen:
                    self._signal(proc, signal.SIGSTOP)

    # ------------------------------------------------------------------ logging helpers

    def _epoch_ns(self, mono_ns=None):
        return (mono_ns if mono_ns is not None else _mono_ns()) + self._epoch_base_ns

    def _epoch_ms(self, mono_ns=None):
        return self._epoch_ns(mono_ns) // 1_000_000

    def _log_api(self, entry):
        entry.setdefault("t_mono_ns", _mono_ns())
        entry["t_epoch_ms"] = self._epoch_ms(entry["t_mono_ns"])
        self.api_log.append(entry)
        if self._log_file:
            with self._log_lock:
                if self._log_file:
                    self._log_file.write(json.dumps(entry, default=str) + "\n")

    def _plog(self, event, proc, **extra):
        entry = {"t_mono_ns": _mono_ns(), "event": event, "who": proc.name, "kind": proc.kind,
                 "pid": proc.pid}
        entry.update(extra)
        self.process_log.append(entry)

    def _check_open(self):
        if self._closed:
            raise RuntimeError("emulator is closed")

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

    # ------------------------------------------------------------------ processes

    def _base_env(self):
        env = {k: os.environ[k] for k in PASSTHROUGH_VARS if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["TMPDIR"] = self.tmp_dir
        return env

    def _platform_env(self):
        env = {
            "AWS_LAMBDA_RUNTIME_API": self.runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": self.function_version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "TZ": ":UTC",
            "AWS_LAMBDA_INITIALIZATION_TYPE": self.init_type,
        }
        if self.init_type == "snap-start":
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://%s/2021-04-23/credentials" % self.runtime_api
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self._creds_token
        else:
            env["AWS_ACCESS_KEY_ID"] = self._fake_creds["AccessKeyId"]
            env["AWS_SECRET_ACCESS_KEY"] = self._fake_creds["SecretAccessKey"]
            env["AWS_SESSION_TOKEN"] = self._fake_creds["Token"]
        return env

    def _runtime_only_env(self):
        host, _, port = self.xray_daemon_address.rpartition(":")
        env = {
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": os.path.join(self.root, "var", "task"),
            "LAMBDA_RUNTIME_DIR": os.path.join(self.root, "var", "runtime"),
            "AWS_XRAY_DAEMON_ADDRESS": self.xray_daemon_address,
            "_AWS_XRAY_DAEMON_ADDRESS": host,
            "_AWS_XRAY_DAEMON_PORT": port,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
        if self.init_type != "snap-start":
            env["AWS_LAMBDA_LOG_GROUP_NAME"] = "/aws/lambda/%s" % self.function_name
            env["AWS_LAMBDA_LOG_STREAM_NAME"] = self._instance_id
        if self.managed_instances:
            # set by Lambda for Managed Instances runtimes (aws-lambda-go PR #600); runtime only here
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.max_concurrency)
        return env

    def extension_environment(self):
        """The exact environment an external extension process gets."""
        env = self._base_env()
        merged = dict(self.customer_env)
        merged.update(self._platform_env())
        for k, v in merged.items():
            if k.startswith("_") or k in RUNTIME_ONLY_VARS:
                continue
            env[k] = v
        return env

    def runtime_environment(self):
        """The exact environment the runtime bootstrap gets."""
        env = self._base_env()
        env.update(self.customer_env)
        env.update(self._runtime_only_env())
        env.update(self._platform_env())
        return env

    def _extension_files(self):
        d = os.path.join(self.root, "opt", "extensions")
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return []
        out = []
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and os.access(p, os.X_OK):
                out.append(p)
        return out

    def _launch(self, proc, argv, env, cwd):
        out_path = None
        if self.work_dir:
            out_path = os.path.join(self.work_dir, "%s.log" % proc.name)
        t_spawn = _mono_ns()
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        proc.popen = p
        proc.pid = p.pid
        proc.t_spawn_ns = t_spawn  # just before fork + exec: nothing the process does precedes it
        proc.t_start_ns = _mono_ns()
        if out_path:
            with self._log_lock:
                if out_path not in self._out_files:
                    self._out_files[out_path] = open(out_path, "ab", buffering=0)
        reader = threading.Thread(target=self._reader, args=(proc, out_path), name="out-%s" % proc.name,
                                  daemon=True)
        self._readers.append((proc, reader))
        reader.start()
        threading.Thread(target=self._watcher, args=(proc,), name="wait-%s" % proc.name,
                         daemon=True).start()
        self._plog("launch", proc, argv=argv)

    def _reader(self, proc, out_path):
        fd = proc.popen.stdout.fileno()
        rtype = "function" if proc.kind == "runtime" else "extension"
        buf = b""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while True:
                try:
                    r = poller.poll(500)
                except (OSError, ValueError):
                    break
                if not r:
                    if proc.exited and self._pipe_pending(fd) == 0:
                        # a child may keep the pipe open; stop once the process is gone
                        if self._closed:
                            break
                    continue
                with proc.rlock:
                    try:
                        data = os.read(fd, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        if buf:
                            self._emit_output(proc, rtype, [buf], out_path)
                        break
                    buf += data
                    lines = buf.split(b"\n")
                    buf = lines.pop()
                    out = [l + b"\n" for l in lines]
                    while len(buf) > 256 * 1024:
                        out.append(buf[:256 * 1024])
                        buf = buf[256 * 1024:]
                    if out:
                        self._emit_output(proc, rtype, out, out_path)
        finally:
            try:
                proc.popen.stdout.close()
            except OSError:
                pass

    def _emit_output(self, proc, rtype, chunks, out_path):
        texts = [c.decode("utf-8", "replace") for c in chunks]
        if out_path:
            with self._log_lock:
                f = self._out_files.get(out_path)
                if f:
                    try:
                        f.write(b"".join(chunks))
                    except (OSError, ValueError):
                        pass
        with self._cv:
            store = self._outputs["runtime" if proc.kind == "runtime" else proc.name]
            for t in texts:
                store.append(t[:-1] if t.endswith("\n") else t)
                self._emit_locked(rtype, t)

    @staticmethod
    def _pipe_pending(fd):
        try:
            buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
            return struct.unpack("i", buf)[0]
        except OSError:
            return 0

    def _drain(self, proc, limit_s=0.05):
        """Wait until everything the process wrote so far has been turned into records."""
        if proc is None or proc.popen is None:
            return
        try:
            fd = proc.popen.stdout.fileno()
        except (ValueError, AttributeError):
            return
        end = time.monotonic() + limit_s
        while True:
            with proc.rlock:
                try:
                    n = self._pipe_pending(fd)
                except ValueError:
                    return
            if n == 0 or time.monotonic() > end:
                return
            time.sleep(0.0005)

    def _watcher(self, proc):
        rc = proc.popen.wait()
        with self._cv:
            proc.exited = True
            proc.returncode = rc
            proc.t_exit_ns = _mono_ns()
            self._plog("exit", proc, returncode=rc)
            self._on_exit_locked(proc)
            self._cv.notify_all()

    def _on_exit_locked(self, proc):
        if proc.kind == "runtime":
            rt = self._runtime
            if rt is not None and rt.proc is proc:
                for w in [rt.waiter, rt.restore_waiter] + rt.waiters:
                    if w is not None:
                        w.cancelled = True
                rt.waiter = rt.restore_waiter = None
                rt.waiters = []
        else:
            ext = proc.ext
            if ext.waiter is not None:
                ext.waiter.cancelled = True
                ext.waiter = None
        if proc.expected_exit or self._phase in ("shutdown", "dead") or self._closed:
            return
        if proc.kind == "runtime":
            etype = "Runtime.OutOfMemory" if proc.oom else "Runtime.ExitError"
        else:
            ext = proc.ext
            if ext.failed:
                etype = ext.failed
            else:
                etype = "Extension.Crash"
                ext.failed = etype
                ext.state = "Exited"
        self._set_fatal_locked(etype, proc)

    def _set_fatal_locked(self, etype, proc=None):
        if self._phase in ("init", "invoke", "restore"):
            if self._fatal is None:
                self._fatal = (etype, proc)
        elif self._phase == "ready" and self._idle_fault is None:
            self._idle_fault = (etype, proc)
        self._cv.notify_all()

    def _signal(self, proc, sig):
        if proc.popen is None or proc.exited:
            return
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(proc.pid, sig)
            except OSError:
                pass

    def _has_live_procs(self):
        with self._lock:
            return any(not p.exited for p in self._procs)

    def _freeze_locked(self, force=False):
        if self._frozen or not (self.freeze or force):
            return
        for p in self._procs:
            self._signal(p, signal.SIGSTOP)
        self._frozen = True
        self._sampling = False
        self.process_log.append({"t_mono_ns": _mono_ns(), "event": "freeze", "who": "sandbox"})

    def _thaw_locked(self):
        if not self._frozen:
            return
        for p in self._procs:
            self._signal(p, signal.SIGCONT)
        self._frozen = False
        self.process_log.append({"t_mono_ns": _mono_ns(), "event": "thaw", "who": "sandbox"})
        self._cv.notify_all()

    # ------------------------------------------------------------------ memory

    def _sampler_loop(self):
        period = max(0.001, self.quirks["memory_sample_ms"] / 1000.0)
        while not self._closed:
            if not self._sampling or self._frozen:
                self._sample_wake.wait(0.2)
                self._sample_wake.clear()
                continue
            try:
                self._sample_once()
            except Exception:
                pass
            time.sleep(period)

    def _set_sampling(self, on):
        self._sampling = on
        if on:
            self._sample_wake.set()

    def _sample_once(self):
        with self._sampler_lock:
            with self._lock:
                procs = [p for p in self._procs if not p.exited and p.pid]
                rt = self._runtime.proc if self._runtime else None
            if not procs:
                return 0
            leaders = {p.pid: p for p in procs}
            now = _mono_ns()
            keys = tuple(sorted(leaders))
            if self._scan["keys"] != keys or now - self._scan["t"] > 50_000_000:
                m = {pid: [pid] for pid in leaders}
                try:
                    entries = os.listdir("/proc")
                except OSError:
                    entries = []
                for e in entries:
                    if not e.isdigit():
                        continue
                    pid = int(e)
                    if pid in leaders:
                        continue
                    try:
                        with open("/proc/%s/stat" % e, "rb") as f:
                            st = f.read()
                        sid = int(st.rsplit(b")", 1)[1].split()[3])
                    except (OSError, ValueError, IndexError):
                        continue
                    if sid in leaders:
                        m[sid].append(pid)
                self._scan = {"t": now, "keys": keys, "map": m}
            page = os.sysconf("SC_PAGE_SIZE")
            total = 0
            rt_total = 0
            for leader, pids in self._scan["map"].items():
                s = 0
                for pid in pids:
                    try:
                        with open("/proc/%d/statm" % pid, "rb") as f:
                            s += int(f.read().split()[1]) * page
                    except (OSError, ValueError, IndexError):
                        pass
                total += s
                if rt is not None and leader == rt.pid:
                    rt_total = s
            if total > self._mem_max:
                self._mem_max = total
            if rt is not None and rt_total > self.memory_mb * MIB and not rt.oom and not rt.exited:
                rt.oom = True
                self._plog("oom_kill", rt, rss=rt_total)
                self._signal(rt, signal.SIGKILL)
            return total

    def _max_memory_mb(self):
        return min(self.memory_mb, int(math.ceil(self._mem_max / MIB)))

    # ------------------------------------------------------------------ Init

    def _init_start_record(self, phase):
        if self.quirks["omit_init_fields"]:
            return {"initializationType": self.init_type, "phase": phase}
        return {"initializationType": self.init_type, "phase": phase,
                "runtimeVersion": self.runtime_version, "runtimeVersionArn": self.runtime_version_arn,
                "functionName": self.function_name, "functionVersion": self.function_version,
                "instanceId": self._instance_id, "instanceMaxMemory": self.memory_mb * MIB}

    def _wait(self, pred, deadline_ns):
        """Wait (lock held by caller's `with`) until pred, a fatal error, the deadline or close."""
        while True:
            if self._closed:
                return "closed"
            if self._fatal is not None:
                return "fatal"
            if pred():
                return "ok"
            rem = deadline_ns - _mono_ns()
            if rem <= 0:
                return "timeout"
            self._cv.wait(min(rem / 1e9, 0.5))

    def _run_init(self, phase, deadline_ns):
        t0 = _mono_ns()
        if deadline_ns is None:
            deadline_ns = t0 + int(self.init_timeout_s * 1e9)
        files = self._extension_files()
        with self._cv:
            self._gen += 1
            gen = self._gen
            self._exts = []
            self._ext_by_id = {}
            self._procs = []
            self._runtime = None
            self._inv = None
            self._mi_queue.clear()
            self._fatal = None
            self._idle_fault = None
            self._frozen = False
            self._delivery_hold = False
            self._mem_max = 0
            self._registration_open = True
            self._subscriptions_open = True
            self._init_buffer = []
            self._phase = "init"
            self._init_t0 = t0
            self._emit_locked("platform.initStart", self._init_start_record(phase), t0)
            ext_env = self.extension_environment()
            for path in files:
                ext = _Ext(os.path.basename(path), path, gen)
                self._exts.append(ext)
                proc = _Proc("extension", ext.name)
                proc.ext = ext
                ext.proc = proc
                try:
                    self._launch(proc, [path], ext_env, self.root)
                    self._procs.append(proc)
                except OSError as exc:
                    ext.state = "LaunchError"
                    ext.failed = "Extension.LaunchError"
                    ext.proc = None
                    self._plog("launch_error", proc, error=str(exc))
                    if self._fatal is None:
                        self._fatal = ("Extension.LaunchError", None)
        self._set_sampling(True)
        with self._cv:
            launched = [e for e in self._exts if not e.internal]
            outcome = self._wait(lambda: all(e.registered for e in launched), deadline_ns)
            rt = None
            if outcome == "ok":
                rt = _Runtime()
                rt.proc = _Proc("runtime", "runtime")
                self._runtime = rt
                cwd = os.path.join(self.root, "var", "task")
                if not os.path.isdir(cwd):
                    cwd = self.root if os.path.isdir(self.root) else None
                try:
                    self._launch(rt.proc, self.runtime_argv, self.runtime_environment(), cwd)
                    self._procs.append(rt.proc)
                except OSError as exc:
                    self._plog("launch_error", rt.proc, error=str(exc))
                    self._fatal = ("Runtime.InvalidEntrypoint", rt.proc)
                if self._fatal is None:
                    outcome = self._wait(
                        lambda: rt.ready and all(e.first_next for e in self._exts
                                                 if e.registered and not e.failed),
                        deadline_ns)
                else:
                    outcome = "fatal"
            # Init is over: no more registrations or subscriptions
            self._registration_open = False
            self._subscriptions_open = False
            self._init_buffer = None
            t_end = _mono_ns()
            duration = _ms(t_end - t0)
            if outcome == "ok":
                status, etype = "success", None
            elif outcome == "timeout":
                status, etype = "timeout", None
            elif outcome == "closed":
                status, etype = "error", "Emulator.Closed"
            else:
                status, etype = "error", self._fatal[0]
        # make sure log lines written so far become records before the closing records
        for p in list(self._procs):
            self._drain(p, 0.02)
        with self._cv:
            rec = {"initializationType": self.init_type, "phase": phase, "status": status}
            if etype:
                rec["errorType"] = etype
            self._emit_locked("platform.initRuntimeDone", rec)
            for ext in self._exts:
                state = ext.state
                if ext.registered and ext.first_next and not ext.failed:
                    state = "Ready"
                er = {"name": ext.name, "state": state, "events": list(ext.events)}
                if ext.failed:
                    er["errorType"] = ext.failed
                self._emit_locked("platform.extension", er)
            rep = {"initializationType": self.init_type, "phase": phase}
            if not self.quirks["omit_init_fields"]:
                rep["status"] = status
            if etype:
                rep["errorType"] = etype
            rep["metrics"] = {"durationMs": duration}
            self._emit_locked("platform.initReport", rep)
            # subscriptions of extensions that did not subscribe again keep their old destination
            for sub in self._subs.values():
                if sub.ext is None or sub.ext.gen != gen:
                    for ext in self._exts:
                        if ext.name == sub.name and ext.alive:
                            sub.ext = ext
            result = InitResult(status=status, error_type=etype, duration_ms=duration, phase=phase,
                                init_type=self.init_type,
                                extensions={e.name: ("Ready" if e.first_next and not e.failed else e.state)
                                            for e in self._exts},
                                runtime_pid=rt.proc.pid if rt and rt.proc else None,
                                extension_pids={e.name: e.proc.pid for e in self._exts if e.proc})
            if status == "success":
                self._phase = "ready"
                self._needs_init = False
                self._fatal = None
                self._pending_init_duration_ms = duration if phase == "init" else None
                self._pending_restore = self.init_type == "snap-start"
                # SnapStart: the snapshot is taken here, whatever `freeze` says
                self._freeze_locked(force=self.init_type == "snap-start")
                self._set_sampling(False)
        if status != "success":
            result.shutdown = self._teardown("timeout" if status == "timeout" else "failure")
            self._needs_init = True
            self._next_init_phase = "invoke"
        return result

    # ------------------------------------------------------------------ Restore (SnapStart)

    def _run_restore(self, deadline_ns):
        t0 = _mono_ns()
        deadline_ns = min(deadline_ns, t0 + int(10e9))
        with self._cv:
            self._phase = "restore"
            self._fatal = None
            rec = {"functionName": self.function_name, "functionVersion": self.function_version,
                   "instanceId": self._instance_id, "instanceMaxMemory": self.memory_mb * MIB,
                   "runtimeVersion": self.runtime_version, "runtimeVersionArn": self.runtime_version_arn}
            self._emit_locked("platform.restoreStart", rec, t0)
            self._thaw_locked()
            self._set_sampling(True)
            rt = self._runtime
            if rt.restore_waiter is not None:
                w = rt.restore_waiter
                rt.restore_waiter = None
                w.reply = _Reply(200, b"", [], who="runtime", event="RESTORE")
            self._cv.notify_all()
            outcome = self._wait(lambda: rt.state == "idle", deadline_ns)
            duration = _ms(_mono_ns() - t0)
            if outcome == "ok":
                status, etype = "success", None
            elif outcome == "timeout":
                status, etype = "timeout", "Runtime.Unknown"
            else:
                status, etype = "error", (self._fatal[0] if self._fatal else "Emulator.Closed")
            done = {"status": status}
            if etype:
                done["errorType"] = etype
            self._emit_locked("platform.restoreRuntimeDone", done)
            rep = dict(done)
            rep["metrics"] = {"durationMs": duration}
            self._emit_locked("platform.restoreReport", rep)
            self._pending_restore = False
            if status == "success":
                self._pending_restore_ms = duration
                self._fatal = None
        return {"status": status, "error_type": etype, "duration_ms": duration}

    # ------------------------------------------------------------------ Invoke

    def trace_header_of(self, request_id):
        """The X-Amzn-Trace-Id an invocation ran with: the caller's, or the one Lambda made."""
        return self._trace_headers.get(request_id)

    def _lambda_trace_header(self):
        """The header Lambda makes for a call that brought none (None: the quirk turned it off)."""
        if self.quirks["generate_trace_header"] is False:
            return None
        now = time.time()
        sampled = 0
        if self.tracing_mode == "Active":
            # X-Ray's default sampling rule: the first request each second, then 5 %
            with self._xray_lock:
                if self._xray_second != int(now):
                    self._xray_second = int(now)
                    sampled = 1
                elif secrets.randbelow(100) < 5:
                    sampled = 1
        return "Root=1-%08x-%s;Parent=%s;Sampled=%d" % (int(now), secrets.token_hex(12), secrets.token_hex(8),
                                                        sampled)

    def _tracing_for(self, header):
        if not header:
            return None, None
        parts = _parse_trace_header(header)
        sampled = parts.get("Sampled") == "1"
        if not parts.get("Root") or not (sampled or self.quirks["start_tracing_unsampled"]):
            return None, header
        tracing = {"type": "X-Amzn-Trace-Id", "value": header}
        runtime_header = header
        if sampled:
            span_id = secrets.token_hex(8)
            tracing = {"spanId": span_id, "type": "X-Amzn-Trace-Id", "value": header}
            if self.quirks["rewrite_runtime_trace_parent"]:
                pieces = []
                seen = False
                for piece in header.split(";"):
                    if piece.strip().startswith("Parent="):
                        pieces.append("Parent=" + span_id)
                        seen = True
                    else:
                        pieces.append(piece)
                if not seen:
                    pieces.insert(1, "Parent=" + span_id)
                runtime_header = ";".join(pieces)
        return tracing, runtime_header

    def _invoke(self, payload, trace_header, request_id, client_context, cognito_identity, content_type):
        rid = request_id or str(uuid.uuid4())
        first_record = len(self.emitted)
        if self._idle_fault is not None:
            # a process died while the sandbox was idle: reset it first; the reset is not part
            # of the invocation (its duration and deadline start afterwards)
            self._teardown("failure")
            self._needs_init = True
            self._next_init_phase = "invoke"
        t_start = _mono_ns()
        deadline_ns = t_start + int(self.timeout_s * 1e9)
        deadline_epoch_ms = self._epoch_ms(t_start) + int(round(self.timeout_s * 1000))
        if trace_header is None:
            trace_header = self._lambda_trace_header()
        self._trace_headers[rid] = trace_header
        init_res = None
        restore_res = None
        suppressed = False
        if self._needs_init:
            failed, init_res, suppressed, t_start, deadline_ns, deadline_epoch_ms = self._init_for_invoke(
                rid, t_start, deadline_ns, deadline_epoch_ms, first_record)
            if failed is not None:
                return failed
        if self._pending_restore:
            restore_res = self._run_restore(deadline_ns)
            if restore_res["status"] != "success":
                sd = self._teardown("failure")
                self._needs_init = True
                self._next_init_phase = "invoke"
                return self._failed_before_invoke(rid, t_start, "error", restore_res["error_type"],
                                                  init_res, restore_res, deadline_epoch_ms, first_record, sd)

        tracing, runtime_trace = self._tracing_for(trace_header)
        inv = _Invocation(rid)
        inv.payload = payload
        inv.trace_header = trace_header
        inv.runtime_trace = runtime_trace
        inv.tracing = tracing
        inv.client_context = client_context
        inv.cognito_identity = cognito_identity
        inv.content_type = content_type
        inv.deadline_epoch_ms = deadline_epoch_ms
        inv.deadline_ns = deadline_ns
        inv.t_start_ns = t_start
        waiters = []
        with self._cv:
            self._inv = inv
            self._phase = "invoke"
            self._fatal = None
            rt = self._runtime
            start = {"requestId": rid, "version": self.function_version}
            if tracing:
                start["tracing"] = tracing
            self._emit_locked("platform.start", start)
            self._delivery_hold = True
            self._thaw_locked()
            if self.faults["reset_next_after_thaw"]:
                self.faults["reset_next_after_thaw"] -= 1
                for ext in self._exts:
                    if ext.waiter is not None and not ext.waiter.cancelled:
                        ext.waiter.reset = ext.waiter.cancelled = True
                        ext.waiter = None
            self._set_sampling(True)
            inv.t_delivered_ns = _mono_ns()
            rt.cur = inv
            rt.state = "invoking"
            if rt.waiter is not None:
                w = rt.waiter
                rt.waiter = None
                w.reply = self._runtime_invoke_reply(inv)
                waiters.append(w)
            else:
                rt.pending = inv  # delivered when the runtime calls next
            for ext in self._exts:
                if ext.registered and "INVOKE" in ext.events and ext.alive and not ext.failed:
                    ev = {"eventType": "INVOKE", "deadlineMs": deadline_epoch_ms, "requestId": rid,
                          "invokedFunctionArn": self.function_arn}
                    if trace_header:
                        ev["tracing"] = {"type": "X-Amzn-Trace-Id", "value": trace_header}
                    reply = _Reply(200, _json(ev), [("Content-Type", "application/json"),
                                                    ("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))],
                                   event="INVOKE", request_id=rid, who=ext.name)
                    ext.invoke_rid = rid
                    inv.ext_pending.add(ext)
                    w = self._give_ext_locked(ext, reply)
                    if w is not None:
                        waiters.append(w)
            self._cv.notify_all()
        # hold telemetry delivery until the events are on the wire (Lambda's listener was frozen)
        end = time.monotonic() + 0.2
        for w in waiters:
            w.sent.wait(max(0.0, end - time.monotonic()))
        with self._cv:
            self._delivery_hold = False
            self._cv.notify_all()
        self._sample_once()
        with self._cv:
            outcome = self._wait(lambda: inv.rt_done and not inv.ext_pending, deadline_ns)
        if outcome == "closed":
            inv.finished = True
            return InvokeResult(request_id=rid, status="failure", error_type="Emulator.Closed",
                                response=inv.response, duration_ms=_ms(_mono_ns() - t_start),
                                billed_duration_ms=0, init_phase_ran=init_res is not None,
                                init=init_res, deadline_ms=deadline_epoch_ms,
                                records=self.emitted[first_record:])
        self._sample_once()
        for p in list(self._procs):
            self._drain(p, 0.02)
        shutdown_res = None
        exit_code = exit_signal = None
        with self._cv:
            inv.finished = True
            t_end = _mono_ns()
            if outcome == "ok":
                status, etype = self._invocation_status(inv)
                # the invoke ends when the runtime AND every INVOKE extension called next,
                # whichever came last (an extension may well be done before the runtime)
                t_last = max(inv.t_rt_next_ns or 0, inv.t_last_ext_next_ns or 0) or t_end
            elif outcome == "timeout":
                status, etype = "timeout", self.quirks["timeout_error_type"]
                t_last = deadline_ns
                if not inv.rt_done:
                    self._emit_runtime_done_locked(inv, "timeout", etype, t_end)
            else:
                status, etype = "error", self._fatal[0]
                t_last = t_end
                proc = self._fatal[1]
                if proc is not None and proc.kind == "runtime" and proc.exited and proc.returncode is not None:
                    exit_code = proc.returncode
                    if exit_code < 0:
                        try:
                            exit_signal = signal.Signals(-exit_code).name
                        except ValueError:
                            exit_signal = str(-exit_code)
                if not inv.rt_done:
                    self._emit_runtime_done_locked(inv, "error", etype, t_end)
            base = t_start if suppressed else (inv.t_delivered_ns or t_start)
            duration = _ms(t_last - base)
            if outcome == "timeout":
                duration = round(self.timeout_s * 1000.0, 3) if not suppressed else duration
            billed = int(math.ceil(duration))
            metrics = {"durationMs": duration, "billedDurationMs": billed,
                       "memorySizeMB": self.memory_mb, "maxMemoryUsedMB": self._max_memory_mb()}
            if self._pending_init_duration_ms is not None:
                metrics["initDurationMs"] = self._pending_init_duration_ms
                if self.bill_init:
                    metrics["billedDurationMs"] = billed + int(math.ceil(self._pending_init_duration_ms))
                self._pending_init_duration_ms = None
            if self._pending_restore_ms is not None:
                metrics["restoreDurationMs"] = self._pending_restore_ms
                self._pending_restore_ms = None
            report = {"requestId": rid, "status": status}
            if etype:
                report["errorType"] = etype
            report["metrics"] = metrics
            if not self.quirks["omit_spans"] and inv.t_rt_next_ns is not None:
                ext_end = max(inv.t_last_ext_next_ns or 0, inv.t_rt_next_ns)
                if outcome == "timeout" and inv.ext_pending:
                    ext_end = deadline_ns
                report["spans"] = [{"name": "extensionOverhead",
                                    "start": _iso_ms(self._epoch_ns(inv.t_rt_next_ns)),
                                    "durationMs": _ms(max(0, ext_end - inv.t_rt_next_ns))}]
            if tracing:
                report["tracing"] = tracing
            self._emit_locked("platform.report", report)
            result = InvokeResult(request_id=rid, status=status, error_type=etype, response=inv.response,
                                  duration_ms=duration, billed_duration_ms=billed,
                                  init_phase_ran=init_res is not None,
                                  max_memory_used_mb=metrics["maxMemoryUsedMB"], init=init_res,
                                  restore=restore_res, function_error=inv.function_error,
                                  exit_code=exit_code, exit_signal=exit_signal,
                                  deadline_ms=deadline_epoch_ms)
            if outcome == "ok":
                self._phase = "ready"
                self._inv = None
                self._set_sampling(False)
                self._freeze_locked()
        if outcome != "ok":
            shutdown_res = self._teardown("timeout" if outcome == "timeout" else "failure")
            self._needs_init = True
            self._next_init_phase = "invoke"
            result.shutdown = shutdown_res
        result.records = self.emitted[first_record:]
        return result

    # ------------------------------------------------------------------ Invoke, Managed Instances

    def _mi_blocked_locked(self):
        """New MI invocations wait while a shutdown drains the environment or a failure is
        being turned into reports and a reset."""
        return (self._mi_draining > 0 or self._mi_resetting
                or (self._fatal is not None and self._phase == "invoke"))

    def _mi_closed_result(self, rid, t_start, inv=None, init_res=None, first_record=0):
        return InvokeResult(request_id=rid, status="failure", error_type="Emulator.Closed",
                            response=inv.response if inv else None,
                            duration_ms=_ms(_mono_ns() - t_start), billed_duration_ms=0,
                            init_phase_ran=init_res is not None, init=init_res,
                            deadline_ms=inv.deadline_epoch_ms if inv else 0,
                            records=self.emitted[first_record:])

    def _invoke_mi(self, payload, trace_header, request_id, client_context, cognito_identity, content_type):
        rid = request_id or str(uuid.uuid4())
        t0 = _mono_ns()
        while not self._mi_slots.acquire(timeout=0.2):
            if self._closed:
                return self._mi_closed_result(rid, t0)
        try:
            return self._invoke_mi_slot(rid, payload, trace_header, client_context, cognito_identity,
                                        content_type)
        finally:
            self._mi_slots.release()

    def _invoke_mi_slot(self, rid, payload, trace_header, client_context, cognito_identity, content_type):
        first_record = len(self.emitted)
        if trace_header is None:
            trace_header = self._lambda_trace_header()
        self._trace_headers[rid] = trace_header
        init_res = None
        suppressed = False
        t_start = _mono_ns()
        inv = None
        while inv is None:
            with self._cv:
                while self._mi_blocked_locked() and not self._closed:
                    self._cv.wait(0.2)
            if self._closed:
                return self._mi_closed_result(rid, t_start, None, init_res, first_record)
            with self._op_lock:
                if self._closed:
                    return self._mi_closed_result(rid, t_start, None, init_res, first_record)
                if self._idle_fault is not None and not self._mi_invs:
                    # a process died while nothing ran: reset before this invocation starts
                    self._teardown("failure")
                    self._needs_init = True
                    self._next_init_phase = "invoke"
                t_start = _mono_ns()
                deadline_ns = t_start + int(self.timeout_s * 1e9)
                deadline_epoch_ms = self._epoch_ms(t_start) + int(round(self.timeout_s * 1000))
                if self._needs_init:
                    failed, init_res, suppressed, t_start, deadline_ns, deadline_epoch_ms = \
                        self._init_for_invoke(rid, t_start, deadline_ns, deadline_epoch_ms, first_record)
                    if failed is not None:
                        return failed
                with self._cv:
                    if self._mi_blocked_locked() or self._idle_fault is not None or self._needs_init:
                        continue
                    tracing, runtime_trace = self._tracing_for(trace_header)
                    inv = _Invocation(rid)
                    inv.payload = payload
                    inv.trace_header = trace_header
                    inv.runtime_trace = runtime_trace
                    inv.tracing = tracing
                    inv.client_context = client_context
                    inv.cognito_identity = cognito_identity
                    inv.content_type = content_type
                    inv.deadline_epoch_ms = deadline_epoch_ms
                    inv.deadline_ns = deadline_ns
                    inv.gen = self._gen
                    inv.suppressed = suppressed
                    inv.first_record = first_record
                    self._mi_invs[rid] = inv
                    self._phase = "invoke"
                    start = {"requestId": rid, "version": self.function_version}
                    if tracing:
                        start["tracing"] = tracing
                    inv.t_start_ns = _mono_ns()
                    inv.t_base_ns = t_start if suppressed else inv.t_start_ns
                    self._emit_locked("platform.start", start, inv.t_start_ns)
                    self._set_sampling(True)
                    self._mi_dispatch_locked(inv)
        inv_init = init_res
        while True:
            with self._cv:
                while True:
                    if inv.result is not None:
                        if inv.outcome != "fatal" or not self._mi_resetting or self._closed:
                            res = inv.result
                            res.init = inv_init
                            res.init_phase_ran = inv_init is not None
                            return res
                    elif self._closed:
                        self._mi_invs.pop(rid, None)
                        return self._mi_closed_result(rid, t_start, inv, inv_init, first_record)
                    elif inv.outcome == "ok":
                        action = "finish"
                        break
                    elif (self._fatal is not None and inv.gen == self._gen and self._phase == "invoke"
                          and not self._mi_resetting):
                        action = "reset"
                        break
                    elif inv.outcome is None and _mono_ns() >= inv.deadline_ns and not self._mi_resetting:
                        inv.outcome = "timeout"
                        inv.t_end_ns = inv.deadline_ns
                        action = "finish"
                        break
                    elif inv.outcome == "timeout" and not self._mi_resetting:
                        action = "finish"
                        break
                    rem = (inv.deadline_ns - _mono_ns()) / 1e9
                    self._cv.wait(max(0.001, min(rem, 0.5)) if inv.outcome is None else 0.5)
                if action == "reset":
                    self._mi_resetting = True
                    etype, proc = self._fatal
                    t_fail = _mono_ns()
                    victims = [i for i in self._mi_invs.values() if i.gen == inv.gen and i.result is None]
                    for v in victims:
                        if v.outcome is None:
                            v.outcome = "fatal"
                            v.fatal = (etype, proc)
                            v.t_end_ns = t_fail
                    procs = list(self._procs)
                else:
                    victims = [inv]
                    procs = [self._runtime.proc] if self._runtime and self._runtime.proc else []
            # log lines written so far become records before the report(s)
            for p in procs:
                self._drain(p, 0.02)
            self._sample_once()
            with self._cv:
                for v in victims:
                    if v.result is None:
                        self._mi_finish_locked(v)
                if action == "finish":
                    if not self._mi_invs and self._phase == "invoke":
                        if self._fatal is not None:
                            # failed after the last answer: a reset at the next invoke
                            self._idle_fault = self._fatal
                            self._fatal = None
                        self._phase = "ready"
                        self._set_sampling(False)
                    self._cv.notify_all()
                    continue
            # action == "reset": the environment is reset like after any failure
            with self._op_lock:
                sd = self._teardown("failure")
                self._needs_init = True
                self._next_init_phase = "invoke"
            with self._cv:
                for v in victims:
                    if v.result is not None and v.outcome == "fatal":
                        v.result.shutdown = sd
                self._mi_resetting = False
                self._cv.notify_all()

    def _mi_finish_locked(self, inv):
        """platform.report of one MI invocation and its InvokeResult."""
        outcome = inv.outcome
        exit_code = exit_signal = None
        if outcome == "ok":
            status, etype = self._invocation_status(inv)
            t_last = inv.t_end_ns
        elif outcome == "timeout":
            status, etype = "timeout", self.quirks["timeout_error_type"]
            t_last = inv.deadline_ns
        else:
            etype, proc = inv.fatal
            status = "failure" if etype.startswith("Sandbox.") else "error"
            t_last = inv.t_end_ns
            if proc is not None and proc.kind == "runtime" and proc.exited and proc.returncode is not None:
                exit_code = proc.returncode
                if exit_code < 0:
                    try:
                        exit_signal = signal.Signals(-exit_code).name
                    except ValueError:
                        exit_signal = str(-exit_code)
        duration = _ms(max(0, t_last - inv.t_base_ns))
        if outcome == "timeout" and not inv.suppressed:
            duration = round(self.timeout_s * 1000.0, 3)
        report = {"requestId": inv.request_id, "status": status}
        if etype:
            report["errorType"] = etype
        report["metrics"] = {"durationMs": duration}
        if not self.quirks["omit_spans"]:
            spans = []
            if inv.t_delivered_ns is not None and inv.t_resp_start_ns is not None:
                spans.append({"name": "responseLatency", "start": _iso_ms(self._epoch_ns(inv.t_delivered_ns)),
                              "durationMs": _ms(inv.t_resp_start_ns - inv.t_delivered_ns)})
                if inv.t_resp_end_ns is not None and inv.error_type != "Function.ResponseSizeTooLarge":
                    spans.append({"name": "responseDuration",
                                  "start": _iso_ms(self._epoch_ns(inv.t_resp_start_ns)),
                                  "durationMs": _ms(inv.t_resp_end_ns - inv.t_resp_start_ns)})
            if spans:
                report["spans"] = spans
        if inv.tracing:
            report["tracing"] = inv.tracing
        self._emit_locked("platform.report", report)
        inv.finished = True
        inv.result = InvokeResult(
            request_id=inv.request_id, status=status, error_type=etype,
            response=inv.response if outcome == "ok" else None,
            duration_ms=duration, billed_duration_ms=int(math.ceil(duration)),
            init_phase_ran=False, max_memory_used_mb=self._max_memory_mb(),
            function_error=inv.function_error, exit_code=exit_code, exit_signal=exit_signal,
            deadline_ms=inv.deadline_epoch_ms)
        inv.result.records = self.emitted[inv.first_record:]
        self._mi_invs.pop(inv.request_id, None)
        try:
            self._mi_queue.remove(inv)
        except ValueError:
            pass

    def _invocation_status(self, inv):
        if inv.error_type == "Function.ResponseSizeTooLarge":
            return "error", inv.error_type
        if inv.function_error is not None:
            if self.quirks["handled_error_status"] == "success":
                return "success", None
            return "error", inv.error_type
        return "success", None

    def _init_for_invoke(self, rid, t_start, deadline_ns, deadline_epoch_ms, first_record):
        """Runs the Init an invoke needs.  A suppressed Init (phase "invoke")
        runs under the invocation's deadline and counts against it; a cold
        start does not, so the invocation's clock restarts after it.
        Returns (failed result or None, init result, suppressed, t_start,
        deadline_ns, deadline_epoch_ms)."""
        phase = self._next_init_phase
        suppressed = phase == "invoke"
        init_res = self._run_init(phase, deadline_ns if suppressed else None)
        if not suppressed:
            t_start = _mono_ns()
            deadline_ns = t_start + int(self.timeout_s * 1e9)
            deadline_epoch_ms = self._epoch_ms(t_start) + int(round(self.timeout_s * 1000))
        failed = None
        if init_res.status != "success":
            failed = self._failed_before_invoke(rid, t_start, init_res.status, init_res.error_type,
                                                init_res, None, deadline_epoch_ms, first_record,
                                                init_res.shutdown)
        return failed, init_res, suppressed, t_start, deadline_ns, deadline_epoch_ms

    def _failed_before_invoke(self, rid, t_start, status, etype, init_res, restore_res, deadline_ms,
                              first_record, shutdown_res):
        with self._cv:
            t_end = _mono_ns()
            duration = _ms(t_end - t_start)
            if status == "timeout":
                duration = max(duration, round(self.timeout_s * 1000.0, 3))
            self._emit_locked("platform.start", {"requestId": rid, "version": self.function_version})
            report = {"requestId": rid, "status": status}
            if etype:
                report["errorType"] = etype
            if self.managed_instances:
                report["metrics"] = {"durationMs": duration}
            else:
                report["metrics"] = {"durationMs": duration, "billedDurationMs": int(math.ceil(duration)),
                                     "memorySizeMB": self.memory_mb, "maxMemoryUsedMB": self._max_memory_mb()}
            self._emit_locked("platform.report", report)
        return InvokeResult(request_id=rid, status=status, error_type=etype, response=None,
                            duration_ms=duration, billed_duration_ms=int(math.ceil(duration)),
                            init_phase_ran=init_res is not None, init=init_res, restore=restore_res,
                            max_memory_used_mb=self._max_memory_mb(), deadline_ms=deadline_ms,
                            shutdown=shutdown_res, records=self.emitted[first_record:])

    def _runtime_invoke_reply(self, inv):
        headers = [("Lambda-Runtime-Aws-Request-Id", inv.request_id),
                   ("Lambda-Runtime-Deadline-Ms", str(inv.deadline_epoch_ms)),
                   ("Lambda-Runtime-Invoked-Function-Arn", self.function_arn)]
        if inv.runtime_trace:
            headers.append(("Lambda-Runtime-Trace-Id", inv.runtime_trace))
        if inv.client_context:
            headers.append(("Lambda-Runtime-Client-Context", inv.client_context))
        if inv.cognito_identity:
            ci = inv.cognito_identity
            if not isinstance(ci, str):
                ci = json.dumps(ci)
            headers.append(("Lambda-Runtime-Cognito-Identity", ci))
        headers.append(("Content-Type", inv.content_type or "application/json"))
        return _Reply(200, inv.payload, headers, event="INVOKE", request_id=inv.request_id, who="runtime")

    def _emit_runtime_done_locked(self, inv, status, etype, t_now):
        rec = {"requestId": inv.request_id, "status": status}
        if etype:
            rec["errorType"] = etype
        end = inv.t_rt_next_ns or t_now
        rec["metrics"] = {"durationMs": _ms(end - inv.t_delivered_ns), "producedBytes": inv.produced_bytes}
        if not self.quirks["omit_spans"] and inv.t_resp_start_ns is not None:
            spans = [{"name": "responseLatency", "start": _iso_ms(self._epoch_ns(inv.t_delivered_ns)),
                      "durationMs": _ms(inv.t_resp_start_ns - inv.t_delivered_ns)},
                     {"name": "responseDuration", "start": _iso_ms(self._epoch_ns(inv.t_resp_start_ns)),
                      "durationMs": _ms(inv.t_resp_end_ns - inv.t_resp_start_ns)}]
            if inv.t_rt_next_ns is not None and not self.quirks["omit_runtime_overhead"]:
                spans.append({"name": "runtimeOverhead", "start": _iso_ms(self._epoch_ns(inv.t_resp_end_ns)),
                              "durationMs": _ms(inv.t_rt_next_ns - inv.t_resp_end_ns)})
            rec["spans"] = spans
        if inv.tracing:
            rec["tracing"] = inv.tracing
        inv.rt_done = True
        self._emit_locked("platform.runtimeDone", rec)

    # ------------------------------------------------------------------ Shutdown / reset

    def _give_ext_locked(self, ext, reply):
        """Hand an event to an extension's pending /event/next, or queue it for its next call."""
        if ext.waiter is not None and not ext.waiter.cancelled:
            w = ext.waiter
            ext.waiter = None
            w.reply = reply
            self._cv.notify_all()
            return w
        ext.queued = reply
        return None

    def _release_delivery_hold(self):
        with self._cv:
            self._delivery_hold = False
            self._cv.notify_all()

    def _teardown(self, reason):
        budget_ms = self.shutdown_budget_ms
        with self._cv:
            already_down = self._phase in ("dead", "new")
            self._phase = "shutdown"
            self._thaw_locked()
            tail_delay_ms = self.quirks["shutdown_telemetry_delay_ms"]
            self._delivery_hold = tail_delay_ms is not None
            self._set_sampling(False)
            for sub in self._subs.values():
                sub.flush_req = True
            rt = None if already_down else self._runtime
            exts = [] if already_down else [e for e in self._exts if not e.dead]
            t0 = _mono_ns()
            deadline_ns = t0 + budget_ms * 1_000_000
            announced_ms = self.faults["shutdown_deadline_ms"]
            deadline_epoch_ms = self._epoch_ms(t0) + (budget_ms if announced_ms is None else int(announced_ms))
            if rt is not None and rt.proc is not None:
                rt.proc.expected_exit = True
            for ext in exts:
                if ext.proc is not None:
                    ext.proc.expected_exit = True
            self._cv.notify_all()
        result = ShutdownResult(reason=reason, deadline_ms=deadline_epoch_ms, duration_ms=0.0,
                                runtime_exit_code=None, runtime_killed=False)
        # 1. runtime: SIGTERM, then SIGKILL after its share of the budget
        if rt is not None and rt.proc is not None and rt.proc.popen is not None:
            p = rt.proc
            if not p.exited:
                self._signal(p, signal.SIGTERM)
                share = min(budget_ms, int(self.quirks["runtime_shutdown_ms"]))
                with self._cv:
                    end = _mono_ns() + share * 1_000_000
                    while not p.exited and _mono_ns() < end and not self._closed:
                        self._cv.wait(0.05)
                if not p.exited:
                    p.killed = True
                    self._signal(p, signal.SIGKILL)
            result.runtime_killed = p.killed
        # 2. extensions: SHUTDOWN to those registered for it, SIGKILL to the others.  By default
        # what is buffered goes out before SHUTDOWN: the flush was only requested above and runs
        # on each subscriber's own thread, so wait until it has been answered (or has failed once,
        # or cannot be delivered), for at most one answer timeout from the shutdown's start.
        # Without this wait a loaded machine let the runtime's exit win the race, and an
        # extension that exits at once on SHUTDOWN never got the last platform.report.
        with self._cv:
            if tail_delay_ms is None:
                for sub in self._subs.values():
                    sub.flush_req = True
                self._cv.notify_all()
                flush_end = min(deadline_ns, t0 + int(self.quirks["delivery_timeout_ms"]) * 1_000_000)
                while not self._closed and _mono_ns() < flush_end and any(
                        sub.flush_pending_locked() for sub in self._subs.values()):
                    self._cv.wait(min(0.05, max(0.001, (flush_end - _mono_ns()) / 1e9)))
            for ext in exts:
                if ext.proc is None or ext.proc.exited:
                    continue
                if ext.registered and "SHUTDOWN" in ext.events:
                    ev = {"eventType": "SHUTDOWN", "deadlineMs": deadline_epoch_ms, "shutdownReason": reason}

                    def sent(t_write_ns, ok, ext=ext):
                        # called under the lock just before the write (ok None) and again if
                        # the write failed (ok False)
                        if ok is None:
                            ext.t_shutdown_sent_ns = t_write_ns
                            ext.shutdown_delivered = True
                        elif not ok:
                            ext.t_shutdown_sent_ns = None
                            ext.shutdown_delivered = False

                    reply = _Reply(200, _json(ev), [("Content-Type", "application/json"),
                                                    ("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))],
                                   event="SHUTDOWN", who=ext.name, on_sent=sent)
                    self._give_ext_locked(ext, reply)
                else:
                    ext.proc.killed = True
                    self._signal(ext.proc, signal.SIGKILL)
            if tail_delay_ms is not None:
                threading.Timer(tail_delay_ms / 1000.0, self._release_delivery_hold).start()
            self._cv.notify_all()
            while not self._closed and _mono_ns() < deadline_ns:
                if all(e.proc is None or e.proc.exited for e in exts):
                    break
                self._cv.wait(min(0.05, max(0.001, (deadline_ns - _mono_ns()) / 1e9)))
            stragglers = [e.proc for e in exts if e.proc is not None and not e.proc.exited]
        for p in stragglers:
            p.killed = True
            self._signal(p, signal.SIGKILL)
        # reap everything (bounded)
        with self._cv:
            end = _mono_ns() + 2_000_000_000
            while any(not p.exited for p in self._procs) and _mono_ns() < end and not self._closed:
                self._cv.wait(0.05)
            result.duration_ms = _ms(_mono_ns() - t0)
            if rt is not None and rt.proc is not None:
                result.runtime_exit_code = rt.proc.returncode
            for ext in exts:
                p = ext.proc
                ms_to_exit = None
                if p is not None and p.exited and ext.t_shutdown_sent_ns is not None and p.t_exit_ns:
                    ms_to_exit = _ms(p.t_exit_ns - ext.t_shutdown_sent_ns)
                result.extensions[ext.name] = ExtensionExit(
                    name=ext.name, pid=p.pid if p else None, exit_code=p.returncode if p else None,
                    killed=bool(p and p.killed), shutdown_delivered=ext.shutdown_delivered,
                    ms_to_exit=ms_to_exit)
                ext.dead = True
            self._cancel_all_waiters_locked()
            if not self.faults["keep_undelivered_records"]:
                for sub in self._subs.values():
                    sub.q.clear()
                    sub.q_bytes = 0
            self._phase = "dead"
            self._frozen = False
            self._inv = None
            self._mi_queue.clear()
            self._cv.notify_all()
        return result

    def _cancel_all_waiters_locked(self):
        for ext in self._exts:
            if ext.waiter is not None:
                ext.waiter.cancelled = True
                ext.waiter = None
        rt = self._runtime
        if rt is not None:
            for w in [rt.waiter, rt.restore_waiter] + rt.waiters:
                if w is not None:
                    w.cancelled = True
            rt.waiter = rt.restore_waiter = None
            rt.waiters = []

    # ------------------------------------------------------------------ HTTP dispatch

    def _serve(self, h):
        t_req = _mono_ns()
        path = urllib.parse.urlsplit(h.path).path
        method = h.command
        if path.startswith("/2018-06-01/"):
            api = "runtime"
        elif path.startswith("/2020-01-01/"):
            api = "extension"
        elif path.startswith("/2022-07-01/"):
            api = "telemetry"
        elif path.startswith("/2020-08-15/"):
            api = "logs"
        elif path.startswith("/2021-04-23/"):
            api = "credentials"
        else:
            api = "unknown"
        try:
            body = _read_body(h)
        except _BadRequest as exc:
            reply = _Reply(400, _err_body("InvalidRequestFormat", str(exc)),
                           [("Content-Type", "application/json")], error_type="InvalidRequestFormat",
                           close=True)
            body = None
        except OSError:
            h.close_connection = True
            return
        if body is not None:
            try:
                reply = self._route(h, method, path, body, t_req)
            except Exception as exc:  # never let a bug hang a client
                reply = _Reply(500, _err_body("InternalServerError", "%s: %s" % (type(exc).__name__, exc)),
                               [("Content-Type", "application/json")], error_type="InternalServerError")
        w = None
        if isinstance(reply, _Waiter):
            w = reply
            with self._cv:
                while w.reply is None and not w.cancelled and not self._closed:
                    self._cv.wait(1.0)
                reply = w.reply
            if reply is None:
                h.close_connection = True
                if w.reset:
                    # an abortive close: the client sees a connection reset, not an answer
                    try:
                        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                self._log_api({"t_req_ns": t_req, "api": api, "who": w.who, "method": method, "path": path,
                               "status": "dropped", **({"reset": True} if w.reset else {})})
                return
        if reply.event and path == "/2020-01-01/extension/event/next":
            reply = self._next_event_fault(reply)
        # the entry is logged just before the answer is written, so a client that got its
        # answer always finds the entry in api_log
        t_write = _mono_ns()
        entry = {"t_mono_ns": t_write, "t_req_ns": t_req, "api": api, "who": reply.who,
                 "method": method, "path": path, "status": reply.status}
        if reply.error_type:
            entry["error_type"] = reply.error_type
        if reply.event:
            entry["event"] = reply.event
        if reply.request_id:
            entry["request_id"] = reply.request_id
        if reply.log:
            entry.update(reply.log)
        self._log_api(entry)
        if reply.on_sent:
            with self._cv:
                reply.on_sent(t_write, None)
        ok = _write_reply(h, reply)
        if not ok:
            entry["write_failed"] = True
            if reply.on_sent:
                with self._cv:
                    reply.on_sent(t_write, False)
        if w is not None:
            w.sent_ns = t_write
            w.sent.set()

    def _route(self, h, method, path, body, t_req):
        if path.startswith(_P_RT):
            rest = path[len(_P_RT):]
            if rest == "invocation/next":
                return self._expect(method, "GET") or self._h_runtime_next(t_req)
            m = _RE_INV.match(path)
            if m:
                return self._expect(method, "POST") or self._h_runtime_result(h, m.group(1), m.group(2),
                                                                              body, t_req)
            if rest == "init/error":
                return self._expect(method, "POST") or self._h_runtime_init_error(h, body)
            if rest == "restore/next":
                return self._expect(method, "GET") or self._h_restore_next()
            if rest == "restore/error":
                return self._expect(method, "POST") or self._h_restore_error(h)
        elif path == "/2020-01-01/extension/register":
            return self._expect(method, "POST") or self._h_register(h, body)
        elif path == "/2020-01-01/extension/event/next":
            return self._expect(method, "GET") or self._h_ext_next(h, t_req)
        elif path in ("/2020-01-01/extension/init/error", "/2020-01-01/extension/exit/error"):
            return self._expect(method, "POST") or self._h_ext_error(h, path.rsplit("/", 2)[1])
        elif path == "/2022-07-01/telemetry":
            reply = self._expect(method, "PUT") or self._h_telemetry(h, body)
            if method == "PUT":
                # what the extension asked for, for tests: the parsed object, or the raw text
                try:
                    shown = json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    shown = body.decode("utf-8", "replace")
                reply.log = dict(reply.log or {}, body=shown)
            return reply
        elif path == "/2020-08-15/logs":
            return self._expect(method, "PUT") or _Reply(
                202, _err_body("Logs.NotSupported", "Logs API is not supported by this emulator"),
                [("Content-Type", "application/json")], error_type="Logs.NotSupported")
        elif path == "/2021-04-23/credentials":
            return self._expect(method, "GET") or self._h_credentials(h)
        return _Reply(404, b"404 page not found\n", [("Content-Type", "text/plain; charset=utf-8")])

    @staticmethod
    def _expect(method, want):
        if method != want:
            return _Reply(405, b"", [("Allow", want)])
        return None

    # --- Runtime API

    def _h_runtime_next_mi(self):
        """Managed Instances: any number of concurrent pollers; each takes the oldest waiting
        invocation or waits for one."""
        with self._cv:
            rt = self._runtime
            if rt is None or rt.proc is None or rt.proc.exited or self._phase in ("shutdown", "dead"):
                return _error_reply(403, "InvalidStateTransition",
                                    "State transition from Stopped to InvocationNext failed for runtime. "
                                    "Error: State transition is not allowed", who="runtime")
            if rt.state == "init":
                rt.ready = True
                rt.state = "idle"
            w = _Waiter("runtime")
            while self._mi_queue:
                inv = self._mi_queue.popleft()
                if inv.outcome is None and inv.result is None:
                    inv.t_delivered_ns = _mono_ns()
                    w.reply = self._runtime_invoke_reply(inv)
                    break
            if w.reply is None:
                rt.waiters.append(w)
            self._cv.notify_all()
            return w

    def _mi_dispatch_locked(self, inv):
        rt = self._runtime
        while rt is not None and rt.waiters:
            w = rt.waiters.pop(0)
            if w.cancelled or w.reply is not None:
                continue
            inv.t_delivered_ns = _mono_ns()
            w.reply = self._runtime_invoke_reply(inv)
            self._cv.notify_all()
            return
        self._mi_queue.append(inv)

    def _h_runtime_next(self, t_req):
        if self.managed_instances:
            return self._h_runtime_next_mi()
        rt0 = self._runtime
        if rt0 is not None and rt0.state == "invoking" and rt0.cur is not None and rt0.cur.answered:
            self._drain(rt0.proc, 0.02)
        with self._cv:
            rt = self._runtime
            if rt is None or rt.proc is None or rt.proc.exited or self._phase in ("shutdown", "dead"):
                return _error_reply(403, "InvalidStateTransition",
                                    "State transition from Stopped to InvocationNext failed for runtime. "
                                    "Error: State transition is not allowed", who="runtime")
            if rt.waiter is not None and not rt.waiter.cancelled:
                return _error_reply(403, "InvalidStateTransition",
                                    "State transition from InvocationNext to InvocationNext failed for runtime. "
                                    "Error: State transition is not allowed", who="runtime")
            if rt.state == "invoking":
                inv = rt.cur
                if inv is None or not inv.answered:
                    return _error_reply(403, "InvalidStateTransition",
                                        "State transition from Invoking to InvocationNext failed for runtime. "
                                        "Error: State transition is not allowed", who="runtime")
                inv.t_rt_next_ns = t_req
                if not inv.finished and not inv.rt_done:
                    status, etype = self._invocation_status(inv)
                    self._emit_runtime_done_locked(inv, status, etype, t_req)
                rt.cur = None
            elif rt.state in ("init", "restore_wait"):
                rt.ready = True
            rt.state = "idle"
            w = _Waiter("runtime")
            pending = rt.pending
            if pending is not None and not pending.finished:
                rt.pending = None
                rt.cur = pending
                rt.state = "invoking"
                w.reply = self._runtime_invoke_reply(pending)
            else:
                rt.waiter = w
            self._cv.notify_all()
            return w

    def _h_runtime_result(self, h, rid, kind, body, t_req):
        t_end = _mono_ns()
        with self._cv:
            rt = self._runtime
            if self.managed_instances:
                inv = self._mi_invs.get(rid)
                if (inv is None or rt is None or inv.t_delivered_ns is None or inv.answered
                        or inv.outcome is not None or inv.result is not None):
                    return _error_reply(400, "InvalidRequestID", "Invalid request ID", who="runtime")
            else:
                inv = self._inv
                if (inv is None or rt is None or rt.cur is not inv or inv.request_id != rid
                        or inv.answered or inv.finished):
                    return _error_reply(400, "InvalidRequestID", "Invalid request ID", who="runtime")
            inv.answered = True
            inv.t_resp_start_ns = t_req
            inv.t_resp_end_ns = t_end
            if kind == "response":
                if len(body) > MAX_RESPONSE_BYTES:
                    inv.error_type = "Function.ResponseSizeTooLarge"
                    inv.produced_bytes = 0
                    if self.managed_instances:
                        inv.outcome = "ok"
                        inv.t_end_ns = t_end
                    self._cv.notify_all()
                    return _error_reply(413, "RequestEntityTooLarge",
                                        "Exceeded maximum allowed payload size (%d bytes)." % MAX_RESPONSE_BYTES,
                                        who="runtime")
                inv.response = body
                inv.produced_bytes = len(body)
            else:
                raw = h.headers.get("Lambda-Runtime-Function-Error-Type")
                etype = normalize_runtime_error_type(raw)
                info = {"errorType": etype, "rawErrorType": raw, "body": body}
                try:
                    parsed = json.loads(body) if body else None
                    if isinstance(parsed, dict):
                        info["errorMessage"] = parsed.get("errorMessage")
                        info["payloadErrorType"] = parsed.get("errorType")
                except ValueError:
                    pass
                cause = h.headers.get("Lambda-Runtime-Function-XRay-Error-Cause")
                if cause:
                    info["xrayErrorCause"] = cause
                inv.function_error = info
                inv.error_type = etype
                inv.response = body
                inv.produced_bytes = len(body)
            if self.managed_instances:
                # no runtime next closes an MI invocation: the answer does
                inv.outcome = "ok"
                inv.t_end_ns = t_end
            self._cv.notify_all()
            reply = _accepted(who="runtime")
            reply.request_id = rid
            return reply

    def _h_runtime_init_error(self, h, body):
        with self._cv:
            rt = self._runtime
            if self._phase != "init" or rt is None or rt.state != "init":
                return _error_reply(403, "InvalidStateTransition",
                                    "State transition to InitError failed for runtime. "
                                    "Error: State transition is not allowed", who="runtime")
            etype = normalize_runtime_error_type(h.headers.get("Lambda-Runtime-Function-Error-Type"))
            self._set_fatal_locked(etype, rt.proc)
            return _accepted(who="runtime")

    def _h_restore_next(self):
        with self._cv:
            rt = self._runtime
            if (self.init_type != "snap-start" or rt is None or rt.state != "init"
                    or self._phase != "init"):
                return _error_reply(403, "InvalidStateTransition",
                                    "State transition to RestoreNext failed for runtime. "
                                    "Error: State transition is not allowed", who="runtime")
            rt.ready = True
            rt.state = "restore_wait"
            w = _Waiter("runtime")
            rt.restore_waiter = w
            self._cv.notify_all()
            return w

    def _h_restore_error(self, h):
        with self._cv:
            rt = self._runtime
            if self._phase != "restore" or rt is None or rt.state != "restore_wait":
                return _error_reply(403, "InvalidStateTransition",
                                    "State transition to RestoreError failed for runtime. "
                                    "Error: State transition is not allowed", who="runtime")
            etype = normalize_runtime_error_type(h.headers.get("Lambda-Runtime-Function-Error-Type"))
            self._set_fatal_locked(etype, rt.proc)
            return _accepted(who="runtime")

    def _h_credentials(self, h):
        if self.init_type != "snap-start":
            return _Reply(404, b"404 page not found\n", [("Content-Type", "text/plain; charset=utf-8")])
        if h.headers.get("Authorization") != self._creds_token:
            return _error_reply(401, "InvalidAuthorizationToken", "Invalid authorization token")
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        body = {"AccessKeyId": self._fake_creds["AccessKeyId"],
                "SecretAccessKey": self._fake_creds["SecretAccessKey"],
                "Token": self._fake_creds["Token"],
                "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return _Reply(200, _json(body), [("Content-Type", "application/json")])

    # --- Extensions API

    def _lookup_ext_locked(self, h):
        ident = h.headers.get("Lambda-Extension-Identifier")
        if not ident:
            return None, _error_reply(403, "Extension.MissingExtensionIdentifier",
                                      "Missing Lambda-Extension-Identifier header")
        try:
            key = str(uuid.UUID(ident.strip()))
        except ValueError:
            return None, _error_reply(403, "Extension.InvalidExtensionIdentifier",
                                      "Invalid Lambda-Extension-Identifier")
        ext = self._ext_by_id.get(key)
        if ext is None or ext.dead:
            return None, _error_reply(403, "Extension.UnknownExtensionIdentifier", "Unknown extension " + ident)
        return ext, None

    def _h_register(self, h, body):
        with self._cv:
            fault = self.faults["register_faults"].pop(0) if self.faults["register_faults"] else None
        if fault is not None:
            who = (h.headers.get("Lambda-Extension-Name") or "").strip() or None
            data = fault.get("body", "").encode("utf-8", "surrogateescape")
            if not fault.get("register"):
                return _Reply(fault["status"], data, [("Content-Type", "application/json")],
                              error_type="InjectedFault", who=who)
            reply = self._h_register_real(h, body)
            if reply.status == 200:
                reply.status, reply.body = fault["status"], data
            return reply
        return self._h_register_real(h, body)

    def _h_register_real(self, h, body):
        name = (h.headers.get("Lambda-Extension-Name") or "").strip()
        if not name:
            return _error_reply(403, "Extension.InvalidExtensionName", "Empty extension name")
        features = [f.strip() for f in (h.headers.get("Lambda-Extension-Accept-Feature") or "").split(",")]
        try:
            req = json.loads(body)
            if not isinstance(req, dict):
                raise ValueError("json: cannot unmarshal %s into Go value of type handler.RegisterRequest"
                                 % type(req).__name__)
            events = req.get("events", [])
            if events is None:
                events = []
            if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
                raise ValueError("json: cannot unmarshal events")
            keys = req.get("configurationKeys")
            if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
                raise ValueError("json: cannot unmarshal configurationKeys")
            if keys:
                raise ValueError("configurationKeys are deprecated; use environment variables instead")
        except (ValueError, UnicodeDecodeError) as exc:
            msg = str(exc) if str(exc) else "unexpected end of JSON input"
            if not body.strip():
                msg = "unexpected end of JSON input"
            return _error_reply(403, "InvalidRequestFormat", msg, who=name)
        with self._cv:
            ext = next((e for e in self._exts if not e.internal and e.name == name), None)
            valid = ("INVOKE", "SHUTDOWN") if ext is not None else ("INVOKE",)
            if self.managed_instances and "INVOKE" in events:
                return _error_reply(403, "Extension.InvalidEventType",
                                    "INVOKE: event type is not supported on Lambda Managed Instances",
                                    who=name)
            for e in events:
                if e not in valid:
                    why = ("internal extensions may not register for SHUTDOWN" if e == "SHUTDOWN"
                           else "invalid event")
                    return _error_reply(403, "Extension.InvalidEventType", "%s: %s" % (e, why), who=name)
            if ext is not None:
                if ext.registered or ext.failed:
                    return _error_reply(403, "Extension.InvalidExtensionState",
                                        "State transition from %s to Registered failed for extension %s. "
                                        "Error: State transition is not allowed" % (ext.state, name), who=name)
                if not self._registration_open:
                    return _error_reply(403, "Extension.RegistrationClosed",
                                        "Extension registration closed already", who=name)
            else:
                if not self._registration_open:
                    return _error_reply(403, "Extension.RegistrationClosed",
                                        "Extension registration closed already", who=name)
                if any(e.name == name for e in self._exts):
                    return _error_reply(403, "Extension.InvalidExtensionState",
                                        "Extension with this name already registered", who=name)
            if sum(1 for e in self._exts if e.registered) >= MAX_EXTENSIONS:
                return _error_reply(403, "Extension.TooManyExtensions",
                                    "Extension limit (%d) reached" % MAX_EXTENSIONS, who=name)
            if ext is None:
                ext = _Ext(name, None, self._gen, internal=True)
                self._exts.append(ext)
            ext.id = str(uuid.uuid4())
            ext.events = list(dict.fromkeys(events))
            ext.registered = True
            ext.state = "Registered"
            self._ext_by_id[ext.id] = ext
            self._cv.notify_all()
            resp = {"functionName": self.function_name, "functionVersion": self.function_version,
                    "handler": self.handler}
            if "accountId" in features and self.account_id:
                resp["accountId"] = self.account_id
            return _Reply(200, _json(resp), [("Lambda-Extension-Identifier", ext.id),
                                            ("Content-Type", "application/json")], who=name)

    def _h_ext_next(self, h, t_req):
        with self._cv:
            ext, err = self._lookup_ext_locked(h)
            if err:
                return err
            who = ext.name
            if ext.failed or (ext.waiter is not None and not ext.waiter.cancelled):
                return _error_reply(403, "Extension.InvalidExtensionState",
                                    "State transition from %s to Ready failed for extension %s. "
                                    "Error: State transition is not allowed" % (ext.state, ext.id), who=who)
            if not ext.first_next:
                ext.first_next = True
                ext.state = "Ready"
                # its threads as it waits in its first /next (issue 12: at most 2 in Init)
                try:
                    ext.tasks_at_first_next = len(os.listdir("/proc/%d/task" % ext.proc.pid))
                except (OSError, AttributeError):
                    ext.tasks_at_first_next = None
            else:
                ext.state = "Ready"
            undelivered_invoke = ext.queued is not None and ext.queued.request_id == ext.invoke_rid
            if ext.invoke_rid is not None and not undelivered_invoke:
                inv = self._inv
                if inv is not None and inv.request_id == ext.invoke_rid and ext in inv.ext_pending:
                    inv.ext_pending.discard(ext)
                    inv.t_last_ext_next_ns = max(inv.t_last_ext_next_ns or 0, t_req)
                ext.invoke_rid = None
            answer = self._next_call_fault_locked(who)
            if answer is not None:
                return answer
            w = _Waiter(who)
            if ext.queued is not None:
                w.reply = ext.queued
                ext.queued = None
            else:
                ext.waiter = w
            self._cv.notify_all()
            return w

    def _next_call_fault_locked(self, who):
        """The answer a `garbage` or `status` next_faults entry gives this call, or None."""
        faults = self.faults["next_faults"]
        f = faults[0] if faults else None
        if f is None or not ("garbage" in f or "status" in f):
            return None
        key = "garbage" if "garbage" in f else "count"
        f[key] = f.get(key, 1) - 1
        if f[key] <= 0:
            faults.pop(0)
        if "garbage" in f:
            return _Reply(200, f.get("body", "<html>not an event</html>").encode("utf-8", "surrogateescape"),
                          [("Content-Type", "text/html")], who=who, log={"fault": "garbage"})
        reply = _error_reply(int(f["status"]), "Fault.Injected", "injected by next_faults", who=who)
        if "body" in f:
            reply.body = f["body"].encode("utf-8", "surrogateescape")
        reply.log = {"fault": "status"}
        return reply

    def _next_event_fault(self, reply):
        """An event about to be written to an /event/next: cut short (and given again on the
        next call) or padded, as the head of next_faults says."""
        with self._cv:
            faults = self.faults["next_faults"]
            f = faults[0] if faults else None
            if f is not None and f.get("truncate"):
                faults.pop(0)
                ext = next((e for e in self._exts if e.name == reply.who and not e.dead), None)
                if ext is not None and ext.queued is None:
                    ext.queued = reply  # given again, whole, on the next call
                return _Reply(reply.status, reply.body, reply.headers, event=reply.event,
                              request_id=reply.request_id, who=reply.who,
                              log={"fault": "truncate"}, truncate=len(reply.body) // 2)
            if f is not None and (f.get("oversize_bytes") or "patch" in f) and reply.event == "INVOKE":
                faults.pop(0)
                ev = json.loads(reply.body)
                if f.get("oversize_bytes"):
                    ev["padding"] = "x" * int(f["oversize_bytes"])
                ev.update(f.get("patch") or {})
                return _Reply(reply.status, _json(ev), reply.headers, event=reply.event,
                              request_id=reply.request_id, who=reply.who, on_sent=reply.on_sent,
                              log={"fault": "oversize" if f.get("oversize_bytes") else "patch"})
        return reply

    def _h_ext_error(self, h, kind):
        with self._cv:
            ident = h.headers.get("Lambda-Extension-Identifier")
            if not ident:
                return _error_reply(403, "Extension.MissingExtensionIdentifier",
                                    "Missing Lambda-Extension-Identifier header")
            try:
                uuid.UUID(ident.strip())
            except ValueError:
                return _error_reply(403, "Extension.InvalidExtensionIdentifier",
                                    "Invalid Lambda-Extension-Identifier")
            if not h.headers.get("Lambda-Extension-Function-Error-Type"):
                return _error_reply(403, "Extension.MissingHeader",
                                    "Lambda-Extension-Function-Error-Type not found")
            ext, err = self._lookup_ext_locked(h)
            if err:
                return err
            who = ext.name
            if kind == "init":
                allowed = self._phase == "init" and not ext.first_next and not ext.failed
                target, etype = "InitError", "Extension.InitError"
            else:
                allowed = not ext.failed
                target, etype = "ExitError", "Extension.ExitError"
            if not allowed:
                return _error_reply(403, "Extension.InvalidExtensionState",
                                    "State transition from %s to %s failed for extension %s. "
                                    "Error: State transition is not allowed" % (ext.state, target, ext.id),
                                    who=who)
            ext.failed = etype
            ext.state = target
            ext.reported_error_type = h.headers.get("Lambda-Extension-Function-Error-Type")
            if ext.proc is not None:
                self._set_fatal_locked(etype, ext.proc)
            else:
                self._set_fatal_locked(etype, None)
            return _accepted(who=who)

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


# ----------------------------------------------------------------------------- CLI

def _parse_kv(items):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit("expected KEY=VALUE, got %r" % item)
        k, v = item.split("=", 1)
        out[k] = v
    return out


def _parse_quirks(items):
    out = {}
    for k, v in _parse_kv(items).items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _short(data, n=120):
    if data is None:
        return "-"
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
    return text if len(text) <= n else text[:n] + "..."


def _cmd_run(args):
    if args.init_type == MI_INIT_TYPE:
        args.managed_instances = True
    env = _parse_kv(args.env)
    # Nothing leaves this machine unless asked: lambda-tracer's own default is the real
    # X-Ray API, so the command line sets its stdout exporter (--env LAMBDA_TRACER_EXPORTERS=...
    # overrides); the documents land in --work-dir's lambda-tracer.log for ./build.sh view.
    env.setdefault("LAMBDA_TRACER_EXPORTERS", "stdout")
    quirks = _parse_quirks(args.quirk)
    faults = _parse_quirks(args.fault)
    emu = Emulator(root=args.root, runtime=args.runtime, function_name=args.function_name,
                   function_version=args.function_version, memory_mb=args.memory_mb, timeout_s=args.timeout_s,
                   init_type=args.init_type, region=args.region, account_id=args.account_id, env=env,
                   init_timeout_s=args.init_timeout_s, shutdown_budget_ms=args.shutdown_budget_ms,
                   freeze=not args.no_freeze, quirks=quirks, faults=faults, log_path=args.log, work_dir=args.work_dir,
                   managed_instances=args.managed_instances,
                   max_concurrency=args.max_concurrency if args.managed_instances else None,
                   tracing_mode=args.tracing_mode)
    rc = 0
    # RIE on SIGTERM or SIGINT resets the sandbox with reason SandboxTerminated: no further
    # invoke, SHUTDOWN SandboxTerminated to the extensions.  (An invoke in flight is finished
    # first here; RIE cuts it.)
    terminated = []

    def on_signal(signum, frame):
        terminated.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        print("runtime API: %s" % emu.runtime_api)
        if not args.no_start:
            r = emu.start()
            print("init: %s%s %.1f ms phase=%s type=%s extensions=%s" % (
                r.status, " (%s)" % r.error_type if r.error_type else "", r.duration_ms, r.phase, r.init_type,
                ", ".join("%s:%s" % kv for kv in r.extensions.items()) or "none"))
            if r.status != "success":
                _print_tail(emu)
        traces = args.trace_header or []
        payloads = args.invoke or []
        headers = [traces[i] if i < len(traces) else (traces[-1] if traces else None) for i in range(len(payloads))]
        if args.managed_instances:
            # Managed Instances: all invokes at once (up to --max-concurrency in flight)
            results = emu.invoke_many([p.encode() for p in payloads], trace_header=headers)
        else:
            results = None
        for i, payload in enumerate(payloads):
            if terminated:
                print("signal %d: no further invoke" % terminated[0])
                break
            r = results[i] if results is not None else emu.invoke(payload.encode(), trace_header=headers[i])
            print("invoke %d %s: %s%s duration=%.1f ms billed=%d ms maxMemoryUsed=%d MB init=%s response=%s" % (
                i + 1, r.request_id, r.status, " (%s)" % r.error_type if r.error_type else "",
                r.duration_ms, r.billed_duration_ms, r.max_memory_used_mb,
                "yes" if r.init_phase_ran else "no", _short(r.response)))
            if r.exit_code is not None:
                print("  runtime exit code %s%s" % (r.exit_code, " (%s)" % r.exit_signal if r.exit_signal else ""))
            if r.shutdown:
                _print_shutdown(r.shutdown, "  reset")
            if r.status != "success":
                rc = 1
                if r.init_phase_ran and r.init and r.init.status != "success":
                    _print_tail(emu)
        if terminated:
            _print_shutdown(emu.shutdown(SIGTERM_SHUTDOWN_REASON), "shutdown")
        elif args.shutdown:
            _print_shutdown(emu.shutdown(args.shutdown), "shutdown")
        if args.records:
            with open(args.records, "w") as f:
                for rec in emu.emitted:
                    f.write(json.dumps(rec) + "\n")
        print("api calls served: %d, telemetry POSTs: %d, records emitted: %d" % (
            sum(1 for e in emu.api_log if e["api"] != "delivery"), len(emu.delivered), len(emu.emitted)))
    finally:
        emu.close()
    return rc


def _print_tail(emu, n=5):
    lines = emu.output("runtime")[-n:]
    for line in lines:
        print("  runtime output: %s" % line)


def _print_shutdown(sd, label):
    print("%s %s: %.1f ms runtime_exit=%s%s" % (label, sd.reason, sd.duration_ms, sd.runtime_exit_code,
                                              " (killed)" if sd.runtime_killed else ""))
    for name, e in sd.extensions.items():
        print("  extension %s: exit=%s killed=%s shutdown_delivered=%s ms_to_exit=%s" % (
            name, e.exit_code, e.killed, e.shutdown_delivered, e.ms_to_exit))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lambda_emulator.py",
                                     description="Local AWS Lambda execution-environment emulator")
    subs = parser.add_subparsers(dest="cmd", required=True)
    p = subs.add_parser("run", help="start an environment, invoke it, shut it down",
                        description="Run Init, the given invokes and a shutdown; print a summary.")
    p.add_argument("--root", required=True, help="sandbox root; extensions are <root>/opt/extensions/*")
    p.add_argument("--runtime", required=True, help='bootstrap command line, e.g. "python3 runtimes/bootstrap.py"')
    p.add_argument("--function-name", default="demo-fn")
    p.add_argument("--function-version", default="$LATEST")
    p.add_argument("--memory-mb", type=int, default=128)
    p.add_argument("--timeout-s", type=float, default=3)
    p.add_argument("--init-type", default="on-demand", choices=list(INIT_TYPES))
    p.add_argument("--managed-instances", action="store_true",
                   help="Lambda Managed Instances: the --invoke payloads run concurrently")
    p.add_argument("--max-concurrency", type=int, default=2, help="Managed Instances: invocations at once")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--tracing-mode", default="PassThrough", choices=["PassThrough", "Active"],
                   help="the header Lambda makes for a call without one: Sampled=0, or X-Ray's default rule")
    p.add_argument("--account-id", default="123456789012")
    p.add_argument("--env", action="append", metavar="K=V", help="customer environment variable (repeatable)")
    p.add_argument("--quirk", action="append", metavar="K=V", help="schema/era quirk, JSON value (repeatable)")
    p.add_argument("--fault", action="append", metavar="K=V", help="fault knob, JSON value (repeatable)")
    p.add_argument("--init-timeout-s", type=float, default=None)
    p.add_argument("--shutdown-budget-ms", type=int, default=2000)
    p.add_argument("--no-freeze", action="store_true", help="do not SIGSTOP the sandbox between invokes")
    p.add_argument("--no-start", action="store_true", help="skip the explicit Init (first invoke cold-starts)")
    p.add_argument("--invoke", action="append", metavar="JSON", help="invoke payload (repeatable, in order)")
    p.add_argument("--trace-header", action="append", metavar="X-Amzn-Trace-Id",
                   help="trace header; one for all invokes or one per invoke")
    p.add_argument("--shutdown", default="spindown", nargs="?", const="spindown",
                   help="shutdown reason at the end (%s); '' to skip; SIGTERM or SIGINT "
                        "stops the invokes and shuts down with %s" % ("|".join(SHUTDOWN_REASONS),
                                                                      SIGTERM_SHUTDOWN_REASON))
    p.add_argument("--log", help="write the API log (JSONL) here")
    p.add_argument("--records", help="write every emitted telemetry record (JSONL) here")
    p.add_argument("--work-dir", help="directory for captured process output")
    p.set_defaults(func=_cmd_run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
