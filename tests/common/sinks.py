"""Local stand-ins for the exporters' backends, for integration tests.

XRayApiSink  - PutTraceSegments over HTTP; recomputes every request's SigV4
               signature independently (hashlib/hmac) and rejects bad ones.
DaemonSink   - the X-Ray daemon's UDP protocol (header line + document).
OtlpSink     - OTLP/HTTP POST /v1/traces; keeps bodies and content types.

Each records what arrived, can be told to fail (status codes, delays,
UnprocessedTraceSegments, OTLP partial success) and listens on 127.0.0.1 only.
"""
import datetime
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEST_ACCESS_KEY = "AKIDEXAMPLE"
TEST_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEST_SESSION_TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN"


def sigv4_expected(method, path, query, headers, body, signed_headers, amz_date, region, service,
                   secret=TEST_SECRET_KEY):
    """The SigV4 signature for a request, computed from the AWS algorithm's
    definition (canonical request, string to sign, derived key)."""
    canonical_headers = "".join(
        f"{h}:{' '.join(headers.get(h, '').strip().split())}\n" for h in signed_headers)
    qs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(qs))
    canonical_request = "\n".join([
        method, urllib.parse.quote(path, safe="/-_.~"), canonical_query, canonical_headers,
        ";".join(signed_headers), hashlib.sha256(body).hexdigest()])
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope,
        hashlib.sha256(canonical_request.encode()).hexdigest()])

    def sign(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = sign(("AWS4" + secret).encode(), date)
    k = sign(k, region)
    k = sign(k, service)
    k = sign(k, "aws4_request")
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest(), scope


class _HttpSink:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []          # dicts: path, headers, body, t (monotonic), status
        self.fail_status = None     # answer every request with this status
        self.fail_count = 0         # ... only this many times (0: always while fail_status set)
        self.fail_body = None       # the injected failure's answer (None: {"message": "injected failure"})
        self.delay_s = 0.0
        self.in_flight = 0          # requests being answered now (inside the delay)
        self.peak_in_flight = 0     # the most answered at once
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in separate writes: without this,
            # Nagle plus the client's delayed ACK adds 40 ms per request
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def read_chunked(self):
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            def do_POST(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = self.read_chunked()  # OpenTelemetry JS's exporter streams its body
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length)
                status, answer = sink.handle(self.command, self.path,
                                             {k.lower(): v for k, v in self.headers.items()}, body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a hanging sink answers after the client gave up: expected

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def injected_failure(self):
        if self.delay_s:
            with self.lock:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            time.sleep(self.delay_s)
            with self.lock:
                self.in_flight -= 1
        with self.lock:
            if self.fail_status is None:
                return None
            if self.fail_count:
                self.fail_count -= 1
                if self.fail_count == 0:
                    status, self.fail_status = self.fail_status, None
                    return status
            return self.fail_status

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class XRayApiSink(_HttpSink):
    """POST /TraceSegments with a verified SigV4 signature (service xray)."""

    def __init__(self, region="us-east-1", access_key=TEST_ACCESS_KEY, secret=TEST_SECRET_KEY,
                 token=TEST_SESSION_TOKEN):
        self.region = region
        self.access_key, self.secret, self.token = access_key, secret, token
        self.documents = []         # parsed segment documents, in arrival order
        self.bad_signatures = []
        self.unprocessed_ids = set()  # answer these ids as UnprocessedTraceSegments (once each)
        super().__init__()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def verify(self, method, path, headers, body):
        auth = headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "no SigV4 Authorization header"
        fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        cred = fields.get("Credential", "").split("/")
        if len(cred) != 5 or cred[0] != self.access_key or cred[2] != self.region \
                or cred[3] != "xray" or cred[4] != "aws4_request":
            return f"bad credential scope {fields.get('Credential')}"
        signed = fields.get("SignedHeaders", "").split(";")
        for required in ("host", "x-amz-date"):
            if required not in signed:
                return f"{required} not signed"
        if headers.get("x-amz-security-token") != self.token:
            return "missing or wrong X-Amz-Security-Token"
        if "x-amz-security-token" not in signed:
            return "security token not signed"
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            return f"bad X-Amz-Date {amz_date!r}"
        if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300:
            return "X-Amz-Date too far from now"
        u = urllib.parse.urlsplit(path)
        expected, scope = sigv4_expected(method, u.path, u.query, headers, body, signed, amz_date,
                                         self.region, "xray", secret=self.secret)
        if cred[1] != amz_date[:8]:
            return "credential date differs from X-Amz-Date"
        if fields.get("Signature") != expected:
            return f"signature mismatch (expected {expected})"
        return None

    def handle(self, method, path, headers, body):
        entry = {"path": path, "headers": headers, "body": body, "t": time.monotonic()}
        problem = self.verify(method, path, headers, body)
        if problem:
            with self.lock:
                self.bad_signatures.append(problem)
            entry["status"] = 403
            self.record(entry)
            return 403, {"message": problem}
        status = self.injected_failure()
        if status is not None:
            entry["status"] = status
            self.record(entry)
            return status, self.fail_body if self.fail_body is not None else {"message": "injected failure"}
        if path != "/TraceSegments":
            entry["status"] = 404
            self.record(entry)
            return 404, {"message": "unknown path"}
        docs = [json.loads(s) for s in json.loads(body)["TraceSegmentDocuments"]]
        unprocessed = []
        with self.lock:
            for d in docs:
                if d.get("id") in self.unprocessed_ids:
                    self.unprocessed_ids.discard(d["id"])
                    unprocessed.append({"Id": d["id"], "ErrorCode": "ThrottledException",
                                        "Message": "injected"})
                else:
                    self.documents.append(d)
        entry["status"] = 200
        self.record(entry)
        return 200, {"UnprocessedTraceSegments": unprocessed}


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def otlp_partial_answer(content_type, rejected, message):
    """An ExportTraceServiceResponse with partial_success, in the request's format."""
    if "json" in content_type:
        return {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}
    m = message.encode()
    inner = b"\x08" + _varint(rejected) + b"\x12" + _varint(len(m)) + m
    return b"\x0a" + _varint(len(inner)) + inner


class _PartialAnswers:
    """reject_spans > 0 (or a reject_message): each 200 answer says that many spans of the
    request were rejected (partial_success), in the request's format."""
    reject_spans = 0
    reject_message = ""

    def answer_for(self, headers):
        if not self.reject_spans and not self.reject_message:
            return {}
        return otlp_partial_answer(headers.get("content-type", ""), self.reject_spans, self.reject_message)


class OtlpSink(_PartialAnswers, _HttpSink):
    """POST /v1/traces; keeps each body with its content type, a gzip'd one inflated (the
    raw bytes stay in requests[i]["body"])."""

    def __init__(self):
        self.bodies = []            # (content_type, bytes, headers)
        super().__init__()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def handle(self, method, path, headers, body):
        entry = {"path": path, "headers": headers, "body": body, "t": time.monotonic()}
        status = self.injected_failure()
        if status is not None:
            entry["status"] = status
            self.record(entry)
            return status, self.fail_body if self.fail_body is not None else {}
        entry["status"] = 200 if path == "/v1/traces" else 404
        self.record(entry)
        if path == "/v1/traces":
            if headers.get("content-encoding") == "gzip":
                import gzip
                body = gzip.decompress(body)
            with self.lock:
                self.bodies.append((headers.get("content-type", ""), body, headers))
            return 200, self.answer_for(headers)
        return entry["status"], {}


class XRayOtlpSink(_PartialAnswers, XRayApiSink):
    """X-Ray's OTLP endpoint: POST /v1/traces with a verified SigV4 signature (service xray);
    keeps each body (gzip'd ones inflated) with its headers."""

    def __init__(self, **kw):
        self.bodies = []            # (uncompressed protobuf, headers)
        super().__init__(**kw)

    def handle(self, method, path, headers, body):
        import gzip
        entry = {"path": path, "headers": headers, "body": body, "t": time.monotonic()}
        problem = self.verify(method, path, headers, body)
        if problem:
            with self.lock:
                self.bad_signatures.append(problem)
            entry["status"] = 403
            self.record(entry)
            return 403, {"message": problem}
        entry["status"] = 200 if path == "/v1/traces" else 404
        self.record(entry)
        if path == "/v1/traces":
            if headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            with self.lock:
                self.bodies.append((body, headers))
            return 200, self.answer_for(headers)
        return entry["status"], {}


class DaemonSink:
    """The X-Ray daemon's UDP listener: one document per datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.documents = []
        self.bad_datagrams = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _run(self):
        while self.running:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            head, sep, doc = data.partition(b"\n")
            try:
                header = json.loads(head)
                ok = sep and header.get("format", "").lower() == "json" and header.get("version") == 1
                parsed = json.loads(doc) if ok else None
            except ValueError:
                ok, parsed = False, None
            with self.lock:
                if ok:
                    self.documents.append(parsed)
                else:
                    self.bad_datagrams.append(data)

    def close(self):
        self.running = False
        self.sock.close()


class BlackHoleSink:
    """A TCP endpoint that accepts, reads whatever comes and never answers
    (trickle=False), or answers one byte at a time, every `interval_s`, of
    a response that never ends (trickle=True): a backend that keeps a
    request in flight for as long as the client lets it."""

    def __init__(self, trickle=False, interval_s=0.05):
        self.trickle = trickle
        self.interval_s = interval_s
        self.lock = threading.Lock()
        self.accepted = 0
        self.received = 0           # bytes read from clients
        self.conns = []
        self.running = True
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
        sent = 0
        c.settimeout(self.interval_s)
        while self.running:
            try:
                data = c.recv(65536)
                if not data:
                    return
                with self.lock:
                    self.received += len(data)
            except socket.timeout:
                pass
            except OSError:
                return
            if self.trickle:
                try:
                    c.sendall(head[sent:sent + 1] if sent < len(head) else b" ")
                    sent += 1
                except OSError:
                    return

    def close(self):
        self.running = False
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
