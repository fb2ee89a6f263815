"""The HTTP server: connection tracking, request reading and reply writing, routes.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import email.utils
import http
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403

__all__ = ['_Abort', '_Stale', '_BadRequest', '_Server', '_Handler', '_read_body', '_write_reply', '_P_RT', '_RE_INV']


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
