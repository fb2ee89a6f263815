"""Runtime API (2018-06-01): /invocation/next, /response, /error, /init/error.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import datetime
import json

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['RuntimeApiMixin']


class RuntimeApiMixin:
    """Runtime API handlers.  A part of Emulator (core.py); uses its state."""

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
