"""Failing open (issue 2): bad settings, malformed telemetry and a disabled
extension never stop the function, and each problem is reported once."""
import shutil
import unittest

import harness


def run_env(env, steps=2, raw_bodies=(), **kwargs):
    """Start an environment, optionally POST raw bodies to the extension's
    listener, invoke a few times, spin down.  Returns (results, lines, emu log,
    shutdown result, raw answers)."""
    root = harness.make_root()
    emu = harness.new_emulator(root, env=env, **kwargs)
    try:
        init = emu.start()
        answers = [emu.send_raw_telemetry(harness.EXT_NAME, body) for body in raw_bodies]
        results = [emu.invoke(payload=b'{"action":"fast"}') for _ in range(steps)]
        sd = emu.shutdown(reason="spindown")
        return init, results, harness.output_lines(emu), list(emu.api_log), sd, answers
    finally:
        emu.close()
        shutil.rmtree(root, ignore_errors=True)


class FailOpenTest(unittest.TestCase):
    def assert_healthy(self, init, results, lines, sd):
        self.assertEqual(init.status, "success")
        for r in results:
            self.assertEqual(r.status, "success")
        ext = sd.extensions[harness.EXT_NAME]
        self.assertEqual((ext.exit_code, ext.killed), (0, False))
        self.assertEqual(harness.sanitizer_reports(lines), [])

    def test_invalid_settings_each_logged_once_and_defaults_used(self):
        bad = {
            "LAMBDA_TRACER_BUFFER_MAX_ITEMS": "lots",
            "LAMBDA_TRACER_BUFFER_TIMEOUT_MS": "5",
            "LAMBDA_TRACER_LISTENER_PORT": "9001",
            "LAMBDA_TRACER_TELEMETRY_TYPES": "platform,metrics",
            "LAMBDA_TRACER_SCHEMA_VERSION": "2030-01-01",
        }
        init, results, lines, log, sd, _ = run_env(bad)
        self.assert_healthy(init, results, lines, sd)
        for name in bad:
            warned = [l for l in lines if "WARN" in l and name in l]
            self.assertEqual(len(warned), 1, (name, warned))
            self.assertIn("using", warned[0])
        # the values themselves are never echoed (they may be secrets elsewhere)
        self.assertFalse(any("lots" in l for l in lines))
        # defaults really used: telemetry still flows
        seen = harness.telemetry_seen(lines)
        self.assertIn("platform.report", [t for t, *_ in seen])

    def test_malformed_telemetry_is_counted_and_ignored(self):
        bodies = [b"not json at all", b'{"an":"object"}', b"[" * 5000,
                  b'[{"time":"2024-01-01T00:00:00Z","type":"platform.start","record":{"requestId":7}},'
                  b' {"type":"x"}, 42]']
        init, results, lines, log, sd, answers = run_env({}, raw_bodies=bodies)
        self.assert_healthy(init, results, lines, sd)
        for status, _ in answers:
            self.assertEqual(status, 200)  # answered fast; never a retry storm
        summary = harness.shutdowns(lines)[-1][1]
        self.assertIn("bad_batches=3", summary)
        self.assertIn("invalid_records=2", summary)

    def test_disabled_extension_only_keeps_the_loop(self):
        init, results, lines, log, sd, _ = run_env({"LAMBDA_TRACER_DISABLE": "true"})
        self.assert_healthy(init, results, lines, sd)
        ours = [c for c in log if c.get("who") == harness.EXT_NAME]
        self.assertFalse([c for c in ours if "telemetry" in c.get("path", "")])
        self.assertEqual(sum(1 for c in ours if c.get("event") == "INVOKE"), 2)
        self.assertTrue(any("disabled by LAMBDA_TRACER_DISABLE" in l for l in lines))


if __name__ == "__main__":
    unittest.main()


class SubscriptionFallbackTest(unittest.TestCase):
    """2025-01-29 first; an older Lambda refuses it with 400: fall back to
    2022-12-13, then 2022-07-01.  202 (no Telemetry API here): carry on."""

    def subscribes(self, log):
        return [c for c in log if c.get("who") == harness.EXT_NAME
                and c.get("path", "").endswith("/2022-07-01/telemetry")]

    def test_falls_back_to_2022_12_13(self):
        init, results, lines, log, sd, _ = run_env(
            {}, quirks={"telemetry_schema_versions": ["2022-07-01", "2022-12-13"]})
        FailOpenTest.assert_healthy(self, init, results, lines, sd)
        subs = self.subscribes(log)
        self.assertEqual([c["status"] for c in subs], [400, 200])
        self.assertEqual([c["body"]["schemaVersion"] for c in subs], ["2025-01-29", "2022-12-13"])
        self.assertTrue(any("subscribed to the Telemetry API (schema 2022-12-13)" in l for l in lines))
        self.assertIn("platform.report", [t for t, *_ in harness.telemetry_seen(lines)])

    def test_falls_back_to_2022_07_01(self):
        init, results, lines, log, sd, _ = run_env(
            {}, quirks={"telemetry_schema_versions": ["2022-07-01"]})
        FailOpenTest.assert_healthy(self, init, results, lines, sd)
        subs = self.subscribes(log)
        self.assertEqual([c["status"] for c in subs], [400, 400, 200])
        self.assertEqual(subs[-1]["body"]["schemaVersion"], "2022-07-01")

    def test_not_supported_keeps_the_loop(self):
        init, results, lines, log, sd, _ = run_env({}, quirks={"telemetry_not_supported": True})
        FailOpenTest.assert_healthy(self, init, results, lines, sd)
        self.assertEqual([c["status"] for c in self.subscribes(log)], [202])
        self.assertTrue(any("Telemetry API is not available here" in l for l in lines))
        self.assertEqual(harness.telemetry_seen(lines), [])
        ours = [c for c in log if c.get("who") == harness.EXT_NAME and c.get("event") == "INVOKE"]
        self.assertEqual(len(ours), 2)


class QueueFullTest(unittest.TestCase):
    def test_dropped_batch_is_counted_and_reported_on_the_next_segment(self):
        big = ('[' + ','.join(['{"time":"2026-01-01T00:00:00.000Z","type":"function","record":"%s"}'
                               % ("x" * 900)] * 330) + ']').encode()
        self.assertGreater(len(big), 262144)
        root = harness.make_root()
        emu = harness.new_emulator(root, env={"LAMBDA_TRACER_QUEUE_MAX_BYTES": "262144",
                                              "LAMBDA_TRACER_FLUSH": "background"})
        try:
            emu.start()
            status, _ = emu.send_raw_telemetry(harness.EXT_NAME, big)
            r1 = emu.invoke(payload=b'{"action":"fast"}')
            r2 = emu.invoke(payload=b'{"action":"fast"}')
            emu.shutdown()
            lines = harness.output_lines(emu)
        finally:
            emu.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(status, 200)  # answered at once; the drop is ours to count
        self.assertIn("queue_dropped=1", harness.shutdowns(lines)[-1][1])
        segs = harness.by_request(harness.documents(lines))
        meta = segs[r1.request_id][-1]["metadata"]["lambda_tracer"]
        self.assertEqual(meta["telemetry_lost_batches"], 1)
        # reported once
        self.assertEqual(segs[r2.request_id][-1].get("metadata", {}).get("lambda_tracer", {})
                         .get("telemetry_lost_batches", 0), 0)
