#!/usr/bin/env python3
"""Capture extension for tests/fuzz/make_seeds.py (not the product).

Runs inside the local emulator as an external extension and saves, byte for
byte, what the platform sends an extension, into $CAPTURE_DIR:
  register-headers.txt, register-body.json   the register answer
  event-PID-NNN.json                         each /event/next body (INVOKE, SHUTDOWN)
  http-PID-NNN.raw                           each telemetry request as it came off the socket
  telemetry-PID-NNN.json                       its body
Standard library only.
"""
import http.client
import json
import os
import socket
import threading

OUT = os.environ["CAPTURE_DIR"]
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
NAME = os.path.basename(__file__)
_lock = threading.Lock()
_n = {"http": 0}


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def serve(conn):
    """Reads requests off one connection (keep-alive), answers 200 to each."""
    buf = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                rest += chunk
            body, buf = rest[:length], rest[length:]
            with _lock:
                _n["http"] += 1
                n = _n["http"]
            save("http-%d-%03d.raw" % (os.getpid(), n), head + b"\r\n\r\n" + body)
            save("telemetry-%d-%03d.json" % (os.getpid(), n), body)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")


def listen():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def call(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(HOST, int(PORT))
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    return r, data


def main():
    r, body = call("POST", "/2020-01-01/extension/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}),
                   {"Lambda-Extension-Name": NAME, "Lambda-Extension-Accept-Feature": "accountId"})
    save("register-headers.txt", "".join("%s: %s\r\n" % kv for kv in r.getheaders()).encode())
    save("register-body.json", body)
    ident = r.getheader("Lambda-Extension-Identifier")
    port = listen()
    sub = {"schemaVersion": "2025-01-29", "types": ["platform", "function", "extension"],
           "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
           "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:%d/telemetry" % port}}
    call("PUT", "/2022-07-01/telemetry", json.dumps(sub),
         {"Lambda-Extension-Identifier": ident, "Content-Type": "application/json"})
    n = 0
    while True:
        r, body = call("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ident})
        n += 1
        save("event-%d-%03d.json" % (os.getpid(), n), body)
        if json.loads(body).get("eventType") == "SHUTDOWN":
            break


if __name__ == "__main__":
    main()
