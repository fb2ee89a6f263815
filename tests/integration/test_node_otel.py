"""One tree with the function's own spans (issue 13): a real Node.js function using the
OpenTelemetry JS SDK from npm (sdk-trace-base, the X-Ray propagator, the OTLP protobuf
exporter) runs under the emulator next to the extension; both export to the same OTLP sink.
Every span of the invocation's trace has its parent present (the invocation span, which takes
the header's Parent, is the one root), the service name and resource attributes are ours, and
the extension's gzip bodies decode to valid OTLP (protobufjs with the official .proto files)."""
import json
import os
import shutil
import subprocess
import unittest

import harness
import sinks
from test_otel_settings import resource_attributes

from harness import lambda_emulator

NODE_BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_otel", "bootstrap.js")
OTEL_MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "node_modules",
                            "@opentelemetry", "sdk-trace-base")


@unittest.skipUnless(shutil.which("node") and os.path.isdir(OTEL_MODULES), "node or the OpenTelemetry JS SDK missing")
class NodeOtelTreeTest(unittest.TestCase):
    def run_function(self, mode=None, steps=2):
        sink = sinks.OtlpSink()
        self.addCleanup(sink.close)
        root = harness.make_root()
        self.addCleanup(shutil.rmtree, root, True)
        env = dict(harness.sanitizer_env())
        env.update({"LAMBDA_TRACER_LOG_LEVEL": "debug", "LAMBDA_TRACER_SAMPLING": "all",
                    "LAMBDA_TRACER_EXPORTERS": "",  # unset: the OTEL endpoint turns OTLP on
                    "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "OTEL_SERVICE_NAME": "checkout",
                    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod"})
        if mode:
            env["LAMBDA_TRACER_OTLP_INVOCATION_SPAN"] = mode
        emu = lambda_emulator.Emulator(root=root, runtime=["node", NODE_BOOTSTRAP], env=env,
                                       function_name="demo-fn", memory_mb=128, timeout_s=10)
        self.addCleanup(emu.close)
        self.assertEqual(emu.start().status, "success")
        results = []
        for i in range(steps):
            header = "Root=1-5759e988-bd862e3fe1be46a9942727%02x;Parent=53995c3f42cd8a%02x;Sampled=1" % (i, i)
            r = emu.invoke(payload=b"{}", trace_header=header)
            self.assertEqual(r.status, "success")
            results.append((r, header))
        emu.shutdown()
        return sink, results

    def decoded(self, sink):
        """Ours strictly (protobufjs, the official .proto, canonical encoding); the SDK's
        leniently: its encoder writes default values, which the strict check refuses."""
        out = []
        for ctype, body, headers in sink.bodies:
            if (headers.get("user-agent") or "").startswith("OTel-OTLP-Exporter-JavaScript"):
                p = subprocess.run(["node", os.path.join(harness.TOOLS, "otlp_decode.js"), "-"], input=body,
                                   capture_output=True, timeout=60)
                self.assertTrue(p.stdout, p.stderr)
                out.append(json.loads(p.stdout))
            else:
                self.assertEqual(headers.get("content-encoding"), "gzip")
                out.append(harness.otlp_decode(body))  # inflated by the sink
        return out

    def spans_by_trace(self, sink):
        out = {}
        for req in self.decoded(sink):
            for rs in req.get("resourceSpans", []):
                attrs = resource_attributes({"resourceSpans": [rs]})
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        out.setdefault(sp["traceId"], []).append((sp, ss.get("scope", {}).get("name"), attrs))
        return out

    def test_one_connected_tree(self):
        sink, results = self.run_function()
        # the extension's bodies are gzip'd (the default); the SDK's arrive as it sends them
        self.assertTrue(any(h.get("content-encoding") == "gzip" for _, _, h in sink.bodies))
        by_trace = self.spans_by_trace(sink)
        for r, header in results:
            root = header.split(";")[0][len("Root=1-"):].replace("-", "")
            parent = header.split(";")[1][len("Parent="):]
            spans = by_trace.get(root, [])
            scopes = {scope for _, scope, _ in spans}
            self.assertIn("lambda-tracer", scopes)
            self.assertIn("node-fn", scopes, (  # the function's own spans
                [(ct, h.get("content-encoding"), h.get("user-agent"), len(b)) for ct, b, h in sink.bodies],
                {k: [(s["name"], s["spanId"], s.get("parentSpanId"), sc) for s, sc, _ in v]
                 for k, v in by_trace.items()}))
            ids = {sp["spanId"] for sp, _, _ in spans}
            self.assertEqual(len(ids), len(spans), "a span id twice")
            roots = [sp for sp, _, _ in spans if not sp.get("parentSpanId")]
            self.assertEqual(len(roots), 1, [(s["name"], s.get("parentSpanId")) for s, _, _ in spans])
            # our invocation span, with the Parent the runtime's SDK saw (in Active mode
            # Lambda's platform.start spanId, not the caller's Parent)
            self.assertEqual(roots[0]["name"], "demo-fn")
            self.assertNotEqual(roots[0]["spanId"], parent)
            handler = [sp for sp, scope, _ in spans if sp["name"] == "handler"]
            self.assertEqual(len(handler), 1)
            self.assertEqual(handler[0]["parentSpanId"], roots[0]["spanId"])
            for sp, _, _ in spans:
                if sp is not roots[0]:
                    self.assertIn(sp["parentSpanId"], ids, sp["name"])  # no orphans
            for sp, scope, attrs in spans:
                self.assertEqual(attrs["service.name"], "checkout")
                if scope == "lambda-tracer":
                    self.assertEqual(attrs["deployment.environment"], "prod")
                    self.assertEqual(attrs["cloud.provider"], "aws")
                    self.assertEqual(attrs["faas.name"], "demo-fn")

    def test_new_mode_orphans_the_function_spans(self):
        """The other side: with our own span id, the SDK's spans point at a Parent nobody sent."""
        sink, results = self.run_function(mode="new", steps=1)
        spans = self.spans_by_trace(sink)[results[0][1].split(";")[0][len("Root=1-"):].replace("-", "")]
        ids = {sp["spanId"] for sp, _, _ in spans}
        orphans = [sp for sp, _, _ in spans if sp.get("parentSpanId") and sp["parentSpanId"] not in ids]
        self.assertTrue(orphans)


if __name__ == "__main__":
    unittest.main()
