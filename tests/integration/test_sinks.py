"""The test-side backends must themselves be right before they judge the
extension: the SigV4 verifier against AWS's published test-suite vector, the
daemon sink's header rules."""
import socket
import time
import unittest

import harness  # noqa: F401  (puts tests/ on sys.path)
from common import sinks


class SinkSelfTest(unittest.TestCase):
    def test_sigv4_matches_aws_get_vanilla_vector(self):
        # aws-sig-v4-test-suite "get-vanilla": secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
        # 20150830T123600Z, us-east-1, service "service"
        sig, scope = sinks.sigv4_expected(
            "GET", "/", "", {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"},
            b"", ["host", "x-amz-date"], "20150830T123600Z", "us-east-1", "service")
        self.assertEqual(scope, "20150830/us-east-1/service/aws4_request")
        self.assertEqual(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        # one changed byte of the body changes the signature
        sig2, _ = sinks.sigv4_expected(
            "GET", "/", "", {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"},
            b"x", ["host", "x-amz-date"], "20150830T123600Z", "us-east-1", "service")
        self.assertNotEqual(sig, sig2)

    def test_xray_sink_rejects_unsigned_requests(self):
        import http.client
        sink = sinks.XRayApiSink()
        try:
            c = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
            c.request("POST", "/TraceSegments", body=b'{"TraceSegmentDocuments":[]}')
            self.assertEqual(c.getresponse().status, 403)
            self.assertEqual(sink.documents, [])
            self.assertEqual(len(sink.bad_signatures), 1)
        finally:
            sink.close()

    def test_daemon_sink_header_rules(self):
        sink = sinks.DaemonSink()
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b'{"format": "json", "version": 1}\n{"id":"a"}', ("127.0.0.1", sink.port))
            s.sendto(b'{"format": "JSON", "version": 1}\n{"id":"b"}', ("127.0.0.1", sink.port))
            s.sendto(b'{"format": "json", "version": 2}\n{"id":"c"}', ("127.0.0.1", sink.port))
            s.sendto(b'{"id":"d"}', ("127.0.0.1", sink.port))
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and len(sink.documents) + len(sink.bad_datagrams) < 4:
                time.sleep(0.01)
            self.assertEqual([d["id"] for d in sink.documents], ["a", "b"])
            self.assertEqual(len(sink.bad_datagrams), 2)
        finally:
            sink.close()


if __name__ == "__main__":
    unittest.main()
