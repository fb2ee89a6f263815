"""The standard OpenTelemetry settings (issue 13): OTEL_EXPORTER_OTLP_* alone turn the OTLP
sink on with the specification's meanings (a base URL gets /v1/traces, header values are
percent-decoded), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES reach the resource, and a
malformed endpoint is refused with one line and never causes a request anywhere."""
import gzip
import shutil
import socket
import unittest

import harness
import sinks

# The harness sets LAMBDA_TRACER_EXPORTERS=stdout; empty is unset (as on Lambda, where an
# empty variable is not a setting), so the OTEL variables decide.
UNSET_EXPORTERS = {"LAMBDA_TRACER_EXPORTERS": ""}
from test_faults import final_segments
from test_faults_failopen import FailOpenChecks, Run


def resource_attributes(req):
    rs = req["resourceSpans"]
    out = {}
    for a in rs[0]["resource"]["attributes"]:
        v = a["value"]
        out[a["key"]] = v.get("stringValue", v.get("intValue"))
    return out


def decoded_bodies(sink):
    out = []
    for ctype, body, headers in sink.bodies:
        out.append(harness.otlp_decode(body, json_input=ctype.startswith("application/json")))
    return out


class OtelSettingsTest(unittest.TestCase, FailOpenChecks):
    def test_otel_variables_alone(self):
        """As a user of any OpenTelemetry SDK would set them: a base URL, a percent-encoded
        Authorization header, a service name, resource attributes.  Nothing else."""
        sink = sinks.OtlpSink()
        self.addCleanup(sink.close)
        run = Run(self, env=dict(UNSET_EXPORTERS, **{
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint + "/",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20dXNlcjpwYXNz, x-team = a%2Cb ",
            "OTEL_SERVICE_NAME": "checkout",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=prod,"
                                        "team=pay%20ments,k%3D1=v%2C2"}))
        self.assert_kept_the_loop(run)
        self.assertFalse([l for l in run.lines if " WARN " in l or " ERROR " in l])
        self.assertTrue(sink.requests)
        for r in sink.requests:
            self.assertEqual(r["path"], "/v1/traces")
            self.assertEqual(r["headers"].get("authorization"), "Basic dXNlcjpwYXNz")
            self.assertEqual(r["headers"].get("x-team"), "a,b")
        seen = set()
        for req in decoded_bodies(sink):
            attrs = resource_attributes(req)
            self.assertEqual(attrs["service.name"], "checkout")
            self.assertEqual(attrs["deployment.environment"], "prod")
            self.assertEqual(attrs["team"], "pay ments")
            self.assertEqual(attrs["k=1"], "v,2")
            self.assertEqual(attrs["cloud.provider"], "aws")
            self.assertEqual(attrs["cloud.platform"], "aws_lambda")
            self.assertTrue(attrs["faas.name"])
            self.assertTrue(attrs["cloud.region"])
            for span in req["resourceSpans"][0]["scopeSpans"][0]["spans"]:
                for a in span.get("attributes", []):
                    if a["key"] == "faas.invocation_id":
                        seen.add(a["value"]["stringValue"])
        self.assertEqual(seen, {r.request_id for r in run.results})
        x = harness.export_summary(run.lines)
        self.assertNotIn("xray_sent", {k for k, v in x.items() if v})  # the default X-Ray sink replaced

    def test_gzip_by_default_and_none_turns_it_off(self):
        """The default (as for OpenTelemetry SDKs set up with only an endpoint): every body
        gzip'd, marked Content-Encoding: gzip, and inflating to OTLP protobufjs accepts, for
        protobuf and JSON; OTEL_EXPORTER_OTLP_COMPRESSION=none sends the plain bytes."""
        cases = [({}, True, "application/x-protobuf"),
                 ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, True, "application/json"),
                 ({"OTEL_EXPORTER_OTLP_COMPRESSION": "none"}, False, "application/x-protobuf"),
                 ({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                   "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, True, "application/json")]
        for extra, gz, ctype in cases:
            with self.subTest(**extra):
                sink = sinks.OtlpSink()
                self.addCleanup(sink.close)
                run = Run(self, steps=2, env=dict(UNSET_EXPORTERS, OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
                                                  OTEL_SERVICE_NAME="zipped", **extra))
                self.assert_kept_the_loop(run)
                self.assertFalse([l for l in run.lines if " WARN " in l or " ERROR " in l])
                self.assertTrue(sink.bodies)
                for r in sink.requests:  # the raw bytes as sent
                    got_type, body, headers = r["headers"].get("content-type"), r["body"], r["headers"]
                    self.assertEqual(got_type, ctype)
                    self.assertEqual(headers.get("content-encoding"), "gzip" if gz else None)
                    self.assertEqual(body[:2] == b"\x1f\x8b", gz)
                    if gz:
                        self.assertLess(len(body), len(gzip.decompress(body)))
                seen = set()
                for req in decoded_bodies(sink):  # protobufjs / JSON against the official .proto
                    self.assertEqual(resource_attributes(req)["service.name"], "zipped")
                    for span in req["resourceSpans"][0]["scopeSpans"][0]["spans"]:
                        for a in span.get("attributes", []):
                            if a["key"] == "faas.invocation_id":
                                seen.add(a["value"]["stringValue"])
                self.assertEqual(seen, {r.request_id for r in run.results})

    def test_invocation_span_takes_the_parent(self):
        """LAMBDA_TRACER_OTLP_INVOCATION_SPAN: by default (parent) the invocation span's id is
        the Parent of the runtime's trace header, with no parent of its own, so spans an in-process SDK parents
        to that Parent hang under it; its child spans point at it.  new: an id of ours, the
        Parent as parentSpanId (as before)."""
        parent = "53995c3f42cd8ad8"
        header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=%s;Sampled=1" % parent
        for mode in (None, "parent", "PARENT", "new"):
            with self.subTest(mode=mode):
                sink = sinks.OtlpSink()
                self.addCleanup(sink.close)
                env = dict(UNSET_EXPORTERS, OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint)
                if mode:
                    env["LAMBDA_TRACER_OTLP_INVOCATION_SPAN"] = mode
                root = harness.make_root()
                self.addCleanup(shutil.rmtree, root, True)
                emu = harness.new_emulator(root, env=env)
                self.addCleanup(emu.close)
                self.assertEqual(emu.start().status, "success")
                res = emu.invoke(payload=b'{"action":"fast"}', trace_header=header)
                self.assertEqual(res.status, "success")
                emu.shutdown()
                spans = [sp for req in decoded_bodies(sink) for rs in req["resourceSpans"]
                         for ss in rs["scopeSpans"] for sp in ss["spans"]]
                mine = [sp for sp in spans if sp["traceId"] == "5759e988bd862e3fe1be46a994272793"]
                server = [sp for sp in mine if sp.get("kind") in (2, "SPAN_KIND_SERVER")]
                self.assertEqual(len(server), 1, mine)
                inv = server[0]
                if mode == "new":
                    self.assertNotEqual(inv["spanId"], parent)
                    self.assertEqual(inv.get("parentSpanId"), parent)
                else:
                    # the Parent the runtime sees: Lambda's (the emulator's) platform.start
                    # spanId in Active mode, which replaces the caller's in its header
                    self.assertRegex(inv["spanId"], "^[0-9a-f]{16}$")
                    self.assertNotEqual(inv["spanId"], parent)
                    self.assertFalse(inv.get("parentSpanId"))
                ids = {sp["spanId"] for sp in mine}
                self.assertEqual(len(ids), len(mine))  # no id twice
                for sp in mine:
                    if sp is not inv:
                        self.assertIn(sp.get("parentSpanId"), ids)  # one connected tree
        run = Run(self, steps=1, env=dict(UNSET_EXPORTERS, OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
                                          LAMBDA_TRACER_OTLP_INVOCATION_SPAN="sideways"))
        self.assert_kept_the_loop(run)
        self.one_line(run, "WARN", "LAMBDA_TRACER_OTLP_INVOCATION_SPAN", "not parent or new")

    def test_lambda_tracer_setting_wins(self):
        """LAMBDA_TRACER_OTLP_ENDPOINT (a base URL too) and _HEADERS win over the OTEL ones,
        which still turn the sink on."""
        sink, other = sinks.OtlpSink(), sinks.OtlpSink()
        self.addCleanup(sink.close)
        self.addCleanup(other.close)
        run = Run(self, steps=1, env=dict(UNSET_EXPORTERS, **{
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": other.endpoint + "/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-who=otel",
            "LAMBDA_TRACER_OTLP_ENDPOINT": sink.endpoint,
            "LAMBDA_TRACER_OTLP_HEADERS": "x-who=lambda%2Dtracer"}))
        self.assert_kept_the_loop(run)
        self.assertEqual(other.requests, [])
        self.assertTrue(sink.requests)
        self.assertEqual({r["path"] for r in sink.requests}, {"/v1/traces"})
        self.assertEqual({r["headers"]["x-who"] for r in sink.requests}, {"lambda-tracer"})

    def test_malformed_endpoints_never_cause_a_request(self):
        """URLs that, misread, would reach the listening sink: userinfo, no scheme, a blank,
        a backslash, a fragment.  Each refused with one line naming the variable; the OTLP
        sink is left out (no fallback address either); the function is untouched."""
        catch = sinks.OtlpSink()
        self.addCleanup(catch.close)
        hp = "127.0.0.1:%d" % catch.port
        cases = [
            ("LAMBDA_TRACER_OTLP_ENDPOINT", "http://user:pw@%s/v1/traces" % hp),
            ("LAMBDA_TRACER_OTLP_ENDPOINT", "http://%s\\@example.invalid/v1/traces" % hp),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "%s" % hp),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x@%s" % hp),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://%s /v1/traces" % hp),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://%s/v1/traces#frag" % hp),
        ]
        for name, value in cases:
            with self.subTest(name=name, value=value):
                env = {name: value, "LAMBDA_TRACER_EXPORTERS": "otlp,stdout"}
                if name.startswith("OTEL_"):
                    # a valid LAMBDA_TRACER one would win: leave it unset; a lower OTEL one
                    # must not be used in place of the refused TRACES one
                    env["OTEL_EXPORTER_OTLP_ENDPOINT" if "TRACES" in name else "OTEL_UNUSED"] = \
                        "http://" + hp
                run = Run(self, steps=2, env=env)
                self.assert_kept_the_loop(run)
                self.one_line(run, "WARN", name, "invalid")
                self.one_line(run, "OTLP exporter has no usable endpoint")
                self.assertFalse(any(value in l for l in run.lines))  # never echoed
                self.assertEqual(set(final_segments(run.lines)), {r.request_id for r in run.results})
        self.assertEqual(catch.requests, [])

    def test_grpc_and_bad_values_one_line_each(self):
        sink = sinks.OtlpSink()
        self.addCleanup(sink.close)
        bad = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
               "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd",
               "OTEL_EXPORTER_OTLP_TIMEOUT": "ten",
               "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%0D%0AX-Evil: 1",
               "OTEL_RESOURCE_ATTRIBUTES": "a=%ZZ",
               "OTEL_SDK_DISABLED": "maybe"}
        run = Run(self, steps=1, env=dict(bad, OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint, **UNSET_EXPORTERS))
        self.assert_kept_the_loop(run)
        for name in bad:
            self.one_line(run, "WARN", name)
        self.assertIn("grpc is not supported", self.one_line(run, "OTEL_EXPORTER_OTLP_PROTOCOL"))
        self.assertTrue(sink.requests)  # still exported, protobuf over HTTP, no headers
        for r in sink.requests:
            self.assertNotIn("x-evil", r["headers"])
            self.assertEqual(r["headers"].get("content-type"), "application/x-protobuf")
        self.assertFalse(any("dXN" in l or "%0D" in l for l in run.lines))

    def test_sdk_disabled_turns_nothing_on(self):
        """OTEL_SDK_DISABLED=true: the OTEL endpoint does not replace the default sinks (here
        X-Ray, pointed at a local sink); an explicit LAMBDA_TRACER_EXPORTERS still wins."""
        sink, xray = sinks.OtlpSink(), sinks.XRayApiSink()
        self.addCleanup(sink.close)
        self.addCleanup(xray.close)

        def attach(emu):
            creds = emu.extension_environment()
            xray.access_key, xray.secret = creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]
            xray.token = creds["AWS_SESSION_TOKEN"]
        run = Run(self, steps=1, setup=attach,
                  env=dict(UNSET_EXPORTERS, OTEL_EXPORTER_OTLP_ENDPOINT=sink.endpoint,
                           OTEL_SDK_DISABLED="true", LAMBDA_TRACER_XRAY_ENDPOINT=xray.endpoint))
        self.assert_kept_the_loop(run)
        self.assertEqual(sink.requests, [])
        self.assertTrue(xray.documents)
        run = Run(self, steps=1, env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                                      "OTEL_SDK_DISABLED": "true", "LAMBDA_TRACER_EXPORTERS": "otlp"})
        self.assert_kept_the_loop(run)
        self.assertTrue(sink.requests)


if __name__ == "__main__":
    unittest.main()
