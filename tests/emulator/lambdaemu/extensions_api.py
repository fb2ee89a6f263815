"""Extensions API (2020-01-01): register, /event/next, init and exit errors.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import json
import os
import uuid

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['ExtensionsApiMixin']


class ExtensionsApiMixin:
    """Extensions API handlers.  A part of Emulator (core.py); uses its state."""

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
