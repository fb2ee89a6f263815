"""The xray-otlp exporter (issue 13): OTLP protobuf to X-Ray's /v1/traces, SigV4-signed
(service xray, checked by the test's own SigV4 implementation), gzip'd, decoding to valid
OTLP (protobufjs with the official .proto files)."""
import unittest

import harness
import sinks
from test_faults_failopen import FailOpenChecks, Run


class XRayOtlpTest(unittest.TestCase, FailOpenChecks):
    def run_with(self, env):
        sink = sinks.XRayOtlpSink()
        self.addCleanup(sink.close)

        def attach(emu):
            creds = emu.extension_environment()
            sink.access_key, sink.secret = creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]
            sink.token = creds["AWS_SESSION_TOKEN"]
            sink.region = emu.region
        run = Run(self, steps=2, env=dict(env, LAMBDA_TRACER_XRAY_ENDPOINT=sink.endpoint), setup=attach)
        return sink, run

    def check(self, sink, run, gzip):
        self.assert_kept_the_loop(run)
        self.assertFalse([l for l in run.lines if " WARN " in l or " ERROR " in l])
        self.assertEqual(sink.bad_signatures, [])
        self.assertTrue(sink.requests)
        seen = set()
        for r in sink.requests:
            self.assertEqual(r["path"], "/v1/traces")
            self.assertEqual(r["status"], 200)
            self.assertEqual(r["headers"].get("content-type"), "application/x-protobuf")
            self.assertEqual(r["headers"].get("content-encoding"), "gzip" if gzip else None)
            self.assertEqual(r["body"][:2] == b"\x1f\x8b", gzip)
        for body, _ in sink.bodies:
            req = harness.otlp_decode(body)
            for rs in req["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for span in ss["spans"]:
                        for a in span.get("attributes", []):
                            if a["key"] == "faas.invocation_id":
                                seen.add(a["value"]["stringValue"])
        self.assertEqual(seen, {r.request_id for r in run.results})
        x = harness.export_summary(run.lines)
        self.assertGreater(x.get("xray_otlp_sent", 0), 0)
        self.assertEqual(x.get("xray_otlp_failed", 0), 0)

    def test_by_name_signed_and_gzipped(self):
        sink, run = self.run_with({"LAMBDA_TRACER_EXPORTERS": "xray-otlp"})
        self.check(sink, run, gzip=True)

    def test_compression_none(self):
        sink, run = self.run_with({"LAMBDA_TRACER_EXPORTERS": "xray-otlp",
                                   "OTEL_EXPORTER_OTLP_COMPRESSION": "none"})
        self.check(sink, run, gzip=False)

    def test_wrong_secret_is_refused_by_the_verifier(self):
        """The verifier itself bites: signed with other credentials, every request is 403."""
        sink = sinks.XRayOtlpSink(secret="not-the-one")
        self.addCleanup(sink.close)

        def attach(emu):
            creds = emu.extension_environment()
            sink.access_key, sink.token = creds["AWS_ACCESS_KEY_ID"], creds["AWS_SESSION_TOKEN"]
            sink.region = emu.region
        run = Run(self, steps=1, env={"LAMBDA_TRACER_EXPORTERS": "xray-otlp",
                                      "LAMBDA_TRACER_XRAY_ENDPOINT": sink.endpoint}, setup=attach)
        self.assertEqual(run.init.status, "success")
        self.assertTrue(sink.bad_signatures)
        self.assertTrue(all("signature mismatch" in p for p in sink.bad_signatures))
        self.assertEqual(sink.bodies, [])

    def test_partial_success_counts_rejected_spans_failed(self):
        """X-Ray's OTLP endpoint answers 200 with partial_success: its spans rejected count as
        failed (this sink counts spans), the rest as sent, and the line says so once."""
        sink, run = self.run_with({"LAMBDA_TRACER_EXPORTERS": "xray-otlp"})
        self.assertTrue(sink.bodies)
        x0 = harness.export_summary(run.lines)
        self.assertEqual(x0.get("rejected_spans"), 0)
        spans = x0["xray_otlp_sent"]
        sink2 = sinks.XRayOtlpSink()
        self.addCleanup(sink2.close)
        sink2.reject_spans, sink2.reject_message = 1, "Span exceeds the maximum size"

        def attach(emu):
            creds = emu.extension_environment()
            sink2.access_key, sink2.secret = creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]
            sink2.token = creds["AWS_SESSION_TOKEN"]
            sink2.region = emu.region
        run2 = Run(self, steps=2, env={"LAMBDA_TRACER_EXPORTERS": "xray-otlp",
                                       "LAMBDA_TRACER_XRAY_ENDPOINT": sink2.endpoint}, setup=attach)
        self.assert_kept_the_loop(run2)
        answered = [r for r in sink2.requests if r["status"] == 200]
        self.assertTrue(answered)
        x = harness.export_summary(run2.lines)
        self.assertEqual(x["rejected_spans"], len(answered))
        self.assertEqual(x["xray_otlp_failed"], len(answered))
        self.assertEqual(x["xray_otlp_sent"] + x["xray_otlp_failed"], spans)
        self.one_line(run2, "X-Ray OTLP exporter: the endpoint rejected 1 span of a request "
                            "(Span exceeds the maximum size)")

    def test_json_protocol_leaves_it_out(self):
        sink, run = self.run_with({"LAMBDA_TRACER_EXPORTERS": "xray-otlp,stdout",
                                   "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
        self.assert_kept_the_loop(run)
        self.one_line(run, "X-Ray OTLP exporter sends protobuf")
        self.assertEqual(sink.requests, [])


if __name__ == "__main__":
    unittest.main()
