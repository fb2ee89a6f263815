"""HTTP dispatch: routes a request to the Runtime, Extensions or Telemetry API handler.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import json
import socket
import struct
import urllib.parse

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['DispatchMixin']


class DispatchMixin:
    """HTTP dispatch.  A part of Emulator (core.py); uses its state."""

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
