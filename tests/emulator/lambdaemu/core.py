"""The Emulator: one Lambda execution environment, its public API and logging.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import collections
import datetime
import hashlib
import http
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import threading
import time
import uuid

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403
from .processes import *  # noqa: F401,F403
from .memory import *  # noqa: F401,F403
from .init import *  # noqa: F401,F403
from .invoke import *  # noqa: F401,F403
from .managed import *  # noqa: F401,F403
from .shutdown import *  # noqa: F401,F403
from .dispatch import *  # noqa: F401,F403
from .runtime_api import *  # noqa: F401,F403
from .extensions_api import *  # noqa: F401,F403

__all__ = ['Emulator']


# ----------------------------------------------------------------------------- the emulator

class Emulator(TelemetryMixin, ProcessesMixin, MemoryMixin, InitMixin, InvokeMixin, ManagedInstancesMixin,
               ShutdownMixin, DispatchMixin, RuntimeApiMixin, ExtensionsApiMixin):
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
