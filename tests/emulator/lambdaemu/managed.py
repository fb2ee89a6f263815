"""Invoke on Lambda Managed Instances (concurrent invocations, never frozen).

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import json
import math
import signal
import uuid

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['ManagedInstancesMixin']


class ManagedInstancesMixin:
    """Invoke, Managed Instances.  A part of Emulator (core.py); uses its state."""

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
