"""Log lines that say what to do (issue 15, point 5): the settings line, a
refusal's reason and permission, lists that keep their valid names, and no
secret in any line."""
import shutil
import unittest

import harness
from common import sinks

SECRET_HEADER = "hdr-SECRET-value-7f3a"
ACCESS_DENIED = {"__type": "com.amazon.coral.service#AccessDeniedException",
                 "message": "User: arn:aws:sts::123456789012:assumed-role/fn-role/fn is not authorized "
                            "to perform: xray:PutTraceSegments\nERROR forged line"}


class LogsTest(unittest.TestCase):
    def run_ext(self, env, steps=4, setup=None):
        root = harness.make_root()
        emu = harness.new_emulator(root, env=dict(env))
        xray = harness.attach_xray_sink(emu, **env)
        otlp = sinks.OtlpSink()
        emu.customer_env["LAMBDA_TRACER_OTLP_ENDPOINT"] = otlp.endpoint
        if setup:
            setup(xray, otlp)
        try:
            emu.start()
            for _ in range(steps):
                emu.invoke(payload=b'{"action":"fast"}')
            emu.shutdown(reason="spindown")
            creds = emu.extension_environment()
            return harness.output_lines(emu), creds, xray, otlp
        finally:
            emu.close()
            xray.close()
            otlp.close()
            shutil.rmtree(root, ignore_errors=True)

    def assert_no_secret(self, lines, creds):
        for line in lines:
            self.assertNotIn(SECRET_HEADER, line)
            self.assertNotIn(creds["AWS_SESSION_TOKEN"], line)
            self.assertNotIn(creds["AWS_SECRET_ACCESS_KEY"], line)

    def test_xray_403_names_type_message_and_permission(self):
        def deny(xray, otlp):
            xray.fail_status = 403
            xray.fail_body = ACCESS_DENIED
        lines, creds, xray, _ = self.run_ext({"LAMBDA_TRACER_FLUSH": "eager"}, setup=deny)
        failing = [l for l in lines if "xray exporter refused a request" in l]
        self.assertEqual(len(failing), 1, lines)
        self.assertIn("(HTTP 403 AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/fn-role/fn "
                      "is not authorized to perform: xray:PutTraceSegments ERROR forged line; the function's "
                      "role needs xray:PutTraceSegments)", failing[0])
        self.assertFalse([l for l in lines if l.startswith("ERROR forged")], lines)
        eager = [l for l in lines if "export before /next failed" in l]
        self.assertEqual(len(eager), 1, lines)
        self.assertIn("failed (xray: HTTP 403 AccessDeniedException", eager[0])
        self.assert_no_secret(lines, creds)

    def test_otlp_4xx_carries_the_body_message(self):
        def refuse(xray, otlp):
            otlp.fail_status = 400
            otlp.fail_body = {"code": 3, "message": "span too large " + "x" * 400}
        lines, creds, _, _ = self.run_ext({"LAMBDA_TRACER_FLUSH": "eager", "LAMBDA_TRACER_EXPORTERS": "otlp"},
                                          setup=refuse)
        failing = [l for l in lines if "otlp exporter refused a request" in l]
        self.assertEqual(len(failing), 1, lines)
        self.assertIn("(HTTP 400: span too large xxxx", failing[0])
        self.assertIn("...)", failing[0])
        self.assertLess(len(failing[0]), 600)

    def test_settings_line_and_bad_exporter_name(self):
        lines, creds, xray, otlp = self.run_ext({"LAMBDA_TRACER_EXPORTERS": "otel, xray,otlp",
                                                 "LAMBDA_TRACER_OTLP_HEADERS": "x-api-key=" + SECRET_HEADER,
                                                 "LAMBDA_TRACER_SAMPLING": "all",
                                                 "LAMBDA_TRACER_SLOW_MS": "1500"}, steps=2)
        warn = [l for l in lines if "LAMBDA_TRACER_EXPORTERS" in l]
        self.assertEqual(len(warn), 1, lines)
        self.assertIn("'otel'", warn[0])
        self.assertIn("did you mean 'otlp'", warn[0])
        settings = [l for l in lines if "settings: " in l]
        self.assertEqual(len(settings), 1, lines)
        s = settings[0]
        self.assertIn("exporters=xray,otlp ", s)
        self.assertIn("sampling=all slow_ms=1500 flush=auto(", s)
        self.assertIn("xray_endpoint=" + xray.endpoint, s)
        self.assertIn("otlp_url=" + otlp.endpoint + "/v1/traces", s)
        self.assertIn("otlp_headers=x-api-key(values not shown)", s)
        self.assertIn("metrics=off", s)
        # the valid names were kept: both exporters got documents
        self.assertTrue(xray.documents)
        self.assertTrue(otlp.bodies)
        self.assert_no_secret(lines, creds)


if __name__ == "__main__":
    unittest.main()
