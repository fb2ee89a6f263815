"""The Invoke phase (one invocation at a time, classic Lambda).

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import math
import secrets
import signal
import time
import uuid

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['InvokeMixin']


class InvokeMixin:
    """Invoke.  A part of Emulator (core.py); uses its state."""

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
