"""No outside value can redirect a request, add a header or forge a log line (issue 10,
point 3).  Each attack is aimed at a second listening socket (a "wrong host") or at the
extension's own log; on the old binary they land, here they must not."""
import json
import shlex
import shutil
import socket
import subprocess
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
from common import sinks

FAST = b'{"action":"fast"}'
PREFIX = "[%s] " % harness.EXT_NAME


class WrongHost:
    """A TCP socket on 127.0.0.1 that nothing should ever reach: counts connections and
    keeps the first bytes of each, then closes it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.seen = []
        self.closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(0.5)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
            with self.lock:
                self.seen.append(data)

    def connections(self):
        with self.lock:
            return list(self.seen)

    def close(self):
        self.sock.close()


class CredentialsEndpoint:
    """A container credentials endpoint answering `answer` (a dict) and keeping each
    request's raw header block."""

    def __init__(self, answer):
        self.requests = []
        ep = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                ep.requests.append(str(self.headers))
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/2021-04-23/credentials" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ansi_c(text):
    """text as a bash $'...' word (control bytes as \\xHH)."""
    return "$'" + "".join(c if c.isalnum() or c in " -:_" else "\\x%02x" % ord(c) for c in text) + "'"


class Common:
    def healthy(self, emu, init, results, sd, lines):
        self.assertEqual(init.status, "success")
        for r in results:
            self.assertEqual(r.status, "success")
        ext = sd.extensions[harness.EXT_NAME]
        self.assertEqual((ext.exit_code, ext.killed), (0, False), ext)
        self.assertEqual(harness.sanitizer_reports(lines), [])

    def run_env(self, env=None, prelude=None, steps=2, **kwargs):
        root = harness.make_wrapped_root(prelude) if prelude else harness.make_root()
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root, env=env, **kwargs)
        self.addCleanup(emu.close)
        init = emu.start()
        results = [emu.invoke(payload=FAST) for _ in range(steps)]
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        self.healthy(emu, init, results, sd, lines)
        return emu, lines


class RegionTest(unittest.TestCase, Common):
    """AWS_REGION goes into https://xray.<region>.amazonaws.com: a value with '@' makes the
    rest of it the host, and PutTraceSegments (signed, with the session token) goes there."""

    def attack(self, region_fmt):
        wrong = WrongHost()
        self.addCleanup(wrong.close)
        region = region_fmt.format(port=wrong.port)
        emu, lines = self.run_env({"LAMBDA_TRACER_EXPORTERS": "xray,stdout"}, region=region)
        return wrong, lines

    def test_region_that_redirects_is_refused(self):
        for fmt in ("x@127.0.0.1:{port}/", "x@127.0.0.1:{port}#", "x@127.0.0.1:{port}?a=",
                    "us-east-1@127.0.0.1:{port}"):
            with self.subTest(region=fmt):
                wrong, lines = self.attack(fmt)
                self.assertEqual(wrong.connections(), [])
                warned = [l for l in lines if "AWS_REGION is not a region name" in l]
                self.assertEqual(len(warned), 1, lines)
                # the X-Ray API sink is left out (no explicit endpoint), said once
                self.assertEqual(len([l for l in lines if "X-Ray exporter needs AWS_REGION" in l]), 1)
                # never echoed
                self.assertFalse([l for l in lines if "127.0.0.1:%d" % wrong.port in l and not l.startswith("{")])
                # the other sink still works
                self.assertTrue(harness.documents(lines))

    def test_region_of_other_shapes_is_refused(self):
        for region in ("US-EAST-1", "us-east-1:443", "us east 1", "us-\u00e9ast-1", "a" * 40,
                       "-us-east-1", "us-east-1-", "us-east-1/x"):
            with self.subTest(region=region):
                wrong, lines = self.attack(region)
                self.assertEqual(len([l for l in lines if "AWS_REGION is not a region name" in l]), 1,
                                 [l for l in lines if "WARN" in l])

    def test_lambda_regions_are_accepted(self):
        for region in ("eu-west-3", "us-gov-west-1", "ap-southeast-2", "cn-north-1", "us-isob-east-1"):
            with self.subTest(region=region):
                emu, lines = self.run_env({"LAMBDA_TRACER_EXPORTERS": "stdout"}, region=region, steps=1)
                self.assertEqual([l for l in lines if "AWS_REGION" in l], [])


class RuntimeApiTest(unittest.TestCase):
    """AWS_LAMBDA_RUNTIME_API becomes the authority of every Extensions API URL."""

    def run_binary(self, value):
        env = dict(harness.sanitizer_env())
        env.update({"PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": value,
                    "LAMBDA_TRACER_LOG_LEVEL": "debug"})
        p = subprocess.run([harness.binary()], env=env, capture_output=True, timeout=30)
        return p.returncode, p.stderr.decode("utf-8", "replace").splitlines()

    def test_values_that_are_not_host_port_are_refused_before_any_connection(self):
        wrong = WrongHost()
        self.addCleanup(wrong.close)
        port = wrong.port
        for value in ("127.0.0.1:1@127.0.0.1:%d" % port, "user:pw@127.0.0.1:%d" % port,
                      "@127.0.0.1:%d" % port, "127.0.0.1:%d/x" % port, "127.0.0.1:%d?x" % port,
                      "127.0.0.1:%d#x" % port, "127.0.0.1:%d x" % port, "127.0.0.1:%d\r\nX: 1" % port,
                      "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1:+%d" % port,
                      "127.0.0.1:%07d" % port, "127.0.0.1", "[::1:%d" % port, "[127.0.0.1]:%d" % port,
                      "h\u00e9st:%d" % port, "-h:%d" % port):
            with self.subTest(value=value):
                status, lines = self.run_binary(value)
                self.assertEqual(wrong.connections(), [])
                self.assertEqual(status, 1)
                self.assertEqual(len(lines), 1, lines)
                self.assertIn("AWS_LAMBDA_RUNTIME_API is not host:port", lines[0])
                self.assertNotIn(str(port), lines[0])  # never echoed

    def test_host_port_is_used(self):
        # the same socket as a plain host:port is reached: the check refuses only the rest
        for fmt in ("127.0.0.1:%d", "localhost:%d"):
            wrong = WrongHost()
            self.addCleanup(wrong.close)
            status, lines = self.run_binary(fmt % wrong.port)
            self.assertTrue(wrong.connections())
            self.assertIn(b"POST /2020-01-01/extension/register", wrong.connections()[0])
            self.assertEqual(status, 1)  # the socket does not answer: registration fails
            self.assertFalse([l for l in lines if "not host:port" in l])


class CredentialsTest(unittest.TestCase, Common):
    """Credentials go into header lines: a CR LF in one must not add a header."""

    def with_sink(self, prelude):
        root = harness.make_wrapped_root(prelude)
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root)
        self.addCleanup(emu.close)
        sink = harness.attach_xray_sink(emu)
        self.addCleanup(sink.close)
        init = emu.start()
        results = [emu.invoke(payload=FAST) for _ in range(2)]
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        self.healthy(emu, init, results, sd, lines)
        return sink, lines

    def assert_refused(self, sink, lines):
        for req in sink.requests:
            self.assertNotIn("x-injected", req["headers"])
        self.assertEqual(sink.requests, [])
        self.assertEqual(len([l for l in lines if "has no AWS credentials" in l]), 1,
                         [l for l in lines if "WARN" in l])
        self.assertGreater(harness.export_summary(lines)["xray_skipped"], 0)

    def test_env_credentials_with_control_bytes_are_refused(self):
        cases = [("AWS_SESSION_TOKEN", bad) for bad in ("\r\nX-Injected: 1", "\nX-Injected: 1", "\x01", "\x7f", " a")]
        cases += [(var, bad) for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                  for bad in ("\r\nX-Injected: 1", "\x7f")]
        for var, bad in cases:
            with self.subTest(var=var, bad=bad):
                sink, lines = self.with_sink('export %s="${%s}"%s' % (var, var, ansi_c(bad)))
                self.assert_refused(sink, lines)
                # the line names the variable and what is wrong with it, never its value
                line = [l for l in lines if "has no AWS credentials" in l][0]
                self.assertIn("(%s holds a blank or control byte; AWS_CONTAINER_CREDENTIALS_FULL_URI unset)" % var,
                              line)
                self.assertNotIn("Injected", line)

    def container(self, answer, token="tok"):
        ep = CredentialsEndpoint(answer)
        self.addCleanup(ep.close)
        prelude = ("unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN\n"
                   "export AWS_CONTAINER_CREDENTIALS_FULL_URI=%s\n"
                   "export AWS_CONTAINER_AUTHORIZATION_TOKEN=%s\n" % (shlex.quote(ep.url), ansi_c(token)))
        sink, lines = self.with_sink(prelude)
        return ep, sink, lines

    def test_container_answer_with_control_bytes_is_refused(self):
        good = {"AccessKeyId": sinks.TEST_ACCESS_KEY, "SecretAccessKey": sinks.TEST_SECRET_KEY,
                "Token": sinks.TEST_SESSION_TOKEN, "Expiration": "2099-01-01T00:00:00Z"}
        cases = [("Token", bad) for bad in ("\r\nX-Injected: 1", "\u0001", "\u007f")]
        cases += [("AccessKeyId", "\r\nX-Injected: 1"), ("SecretAccessKey", "\n")]
        for field, bad in cases:
            with self.subTest(field=field, bad=bad):
                ep, sink, lines = self.container(dict(good, **{field: good[field] + bad}))
                self.assertTrue(ep.requests)
                self.assert_refused(sink, lines)
                line = [l for l in lines if "has no AWS credentials" in l][0]
                self.assertIn("(the container credentials endpoint's answer holds no usable credentials)", line)
                self.assertNotIn(good[field], line)

    def test_container_authorization_token_with_control_bytes_is_never_sent(self):
        good = {"AccessKeyId": "A", "SecretAccessKey": "S", "Token": "T"}
        for bad in ("tok\r\nX-Injected: 1", "tok\nX-Injected: 1"):
            with self.subTest(bad=bad):
                ep, sink, lines = self.container(good, token=bad)
                self.assertEqual(ep.requests, [])
                self.assert_refused(sink, lines)
                line = [l for l in lines if "has no AWS credentials" in l][0]
                self.assertIn("AWS_CONTAINER_AUTHORIZATION_TOKEN holds a blank or control byte", line)
                self.assertNotIn("tok", line)


class LogForgingTest(unittest.TestCase, Common):
    """Strings from the Extensions API and telemetry reach log lines: each event stays one
    line whatever they hold."""

    def test_no_forged_line_from_api_or_telemetry_strings(self):
        forge = "\n" + PREFIX + "ERROR forged-%s\r\n" + PREFIX + "ERROR forged-%s-cr\u2028\x85x"
        err_body = json.dumps({"errorType": forge % ("register", "register"), "errorMessage": "m\n" + PREFIX + "ERROR forged-msg"})
        next_body = json.dumps({"errorType": forge % ("next", "next"), "errorMessage": "x"})
        root = harness.make_root()
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root, faults={
            "register_faults": [{"status": 500, "body": err_body}],
            "next_faults": [{"patch": {"requestId": "rid" + forge % ("invoke", "invoke")}}]})
        self.addCleanup(emu.close)
        init = emu.start()
        r1 = emu.invoke(payload=FAST)
        records = [
            {"time": "2026-01-01T00:00:00.000Z", "type": "platform.start",
             "record": {"requestId": "r" + forge % ("tel-rid", "tel-rid"), "version": "$LATEST"}},
            {"time": "2026-01-01T00:00:00.000Z", "type": "platform.report" + forge % ("tel-type", "tel-type"),
             "record": {"requestId": "x", "status": "success"}},
            {"time": "2026-01-01T00:00:00.000Z", "type": "platform.runtimeDone",
             "record": {"requestId": "y", "status": "error", "errorType": "E" + forge % ("tel-err", "tel-err")}},
        ]
        status, _ = emu.send_raw_telemetry(harness.EXT_NAME, json.dumps(records).encode())
        self.assertEqual(status, 200)
        emu.faults["next_faults"] = [{"status": 500, "body": next_body}]
        r2 = emu.invoke(payload=FAST)
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        for what in ("register", "next", "invoke", "tel-rid", "tel-type", "tel-err", "msg"):
            with self.subTest(what=what):
                marker = "forged-" + what
                # no line begins with the forged text ...
                self.assertEqual([l for l in lines if l.startswith(PREFIX + "ERROR " + marker)], [])
                self.assertEqual([l for l in lines if l.startswith(marker)], [])
        # ... and it was logged, escaped, inside the line of its event
        text = "\n".join(lines)
        for what in ("register", "next", "invoke", "tel-rid"):
            self.assertIn("\\n" + PREFIX + "ERROR forged-" + what + "\\r\\n", text, what)
        self.assertIn("\\xe2\\x80\\xa8\\xc2\\x85x", text)
        # every line of ours is one of ours
        for l in lines:
            if l.startswith("{") or not l.strip():
                continue
            self.assertTrue(l.startswith(PREFIX) or l.startswith("==") or "Sanitizer" in l, repr(l))
        # the next that failed with it did not end the process (point 6)
        self.healthy(emu, init, [r1, r2], sd, lines)


if __name__ == "__main__":
    unittest.main()
