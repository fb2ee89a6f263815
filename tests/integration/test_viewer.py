"""The trace viewer (viewer/, ./build.sh view) on what the binary under test
exports now: the stdout exporter's lines (mixed with the extension's log
lines, as CloudWatch Logs keeps them) and the OTLP/JSON bodies of the same
run read back to the same invocations, statuses and causes, nothing skipped,
and the HTML page has one bar per node.  Keeps the viewer in step with the
encoders as they change."""
import json
import os
import re
import shutil
import sys
import unittest

import harness
from common import sinks

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "viewer"))
import page  # noqa: E402
import traces  # noqa: E402
import waterfall  # noqa: E402

STEPS = [(b'{"action":"fast"}', "OK"), (b'{"action":"error","type":"Function.MyError"}', "ERROR"),
         (b'{"action":"crash","code":3}', "CRASH"), (b'{"action":"fast"}', "OK")]


class ViewerOnRealOutputTest(unittest.TestCase):
    def test_xray_and_otlp_read_back_alike(self):
        sink = sinks.OtlpSink()
        root = harness.make_root()
        emu = harness.new_emulator(root, env={
            "LAMBDA_TRACER_EXPORTERS": "stdout,otlp", "LAMBDA_TRACER_OTLP_PROTOCOL": "http/json",
            "LAMBDA_TRACER_OTLP_ENDPOINT": sink.endpoint + "/v1/traces"})
        try:
            emu.start()
            results = [emu.invoke(payload=p) for p, _ in STEPS]
            emu.shutdown(reason="spindown")
            lines = harness.output_lines(emu)
        finally:
            emu.close()
            sink.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(harness.sanitizer_reports(lines), [])
        want = [(r.request_id, mark) for r, (_, mark) in zip(results, STEPS)]

        xray = traces.finish(traces.load_text("\n".join(lines), "stdout"))
        otlp = traces.finish(traces.load_text(
            "\n".join(body.decode() for _, body, _ in sink.bodies), "otlp"))
        for loaded in (xray, otlp):
            self.assertEqual(loaded.malformed, 0, loaded.problems)
            got = []
            for inv in loaded.invocations:
                doc, _, final = inv.pick()
                self.assertTrue(final)
                got.append(((doc.get("aws") or {}).get("request_id"), waterfall.status_mark(doc)))
            self.assertEqual(got, want)
        self.assertEqual(xray.other_lines, sum(1 for line in lines if not line.startswith("{")))
        for a, b in zip(xray.invocations, otlp.invocations):
            da, db = a.pick()[0], b.pick()[0]
            self.assertEqual([n["name"] for _, n in waterfall.rows(da)], [n["name"] for _, n in waterfall.rows(db)])
            self.assertEqual(waterfall.cause(da), waterfall.cause(db))

        out = page.render_page(xray)
        sections = out.split('<section class="inv')[1:]
        self.assertEqual(len(sections), len(STEPS))
        for inv, sec in zip(xray.invocations, sections):
            self.assertEqual(len(re.findall(r'<span class="bar ', sec)), len(waterfall.rows(inv.pick()[0])))
        self.assertIn("Runtime.ExitError", sections[2])
        self.assertNotIn("<img", out)
        json.dumps([inv.pick()[0] for inv in otlp.invocations])   # plain data throughout


if __name__ == "__main__":
    unittest.main()
