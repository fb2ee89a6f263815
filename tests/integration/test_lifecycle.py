"""The extension's lifecycle under the emulator: cold start, warm invokes,
a timeout with re-init, a crash, and spindown (issue 2, "Done when")."""
import json
import os
import shutil
import unittest

import harness


class LifecycleTest(unittest.TestCase):
    """One environment driven through the whole story; each test method
    checks one part of what happened."""

    @classmethod
    def setUpClass(cls):
        cls.root = harness.make_root()
        cls.emu = harness.new_emulator(cls.root)
        cls.init = cls.emu.start()
        cls.subscription = cls.emu.subscribers().get(harness.EXT_NAME)
        cls.warm = [cls.emu.invoke(payload=b'{"action":"fast"}',
                                   trace_header="Root=1-5759e988-bd862e3fe1be46a994272793;"
                                                "Parent=53995c3f42cd8ad8;Sampled=1" if i % 2 else None)
                    for i in range(5)]
        cls.timeout = cls.emu.invoke(payload=b'{"action":"sleep","ms":10000}')
        cls.after_timeout = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.crash = cls.emu.invoke(payload=b'{"action":"crash","code":3}')
        cls.after_crash = cls.emu.invoke(payload=b'{"action":"fast"}')
        cls.spindown = cls.emu.shutdown(reason="spindown")
        cls.lines = harness.output_lines(cls.emu)
        cls.log = list(cls.emu.api_log)

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def ext_calls(self, path_part, method=None):
        return [c for c in self.log
                if c.get("who") == harness.EXT_NAME and path_part in c.get("path", "")
                and (method is None or c.get("method") == method)]

    def test_invocation_outcomes(self):
        self.assertEqual(self.init.status, "success")
        for r in self.warm:
            self.assertEqual(r.status, "success", r)
        self.assertEqual(self.timeout.status, "timeout")
        self.assertEqual(self.after_timeout.status, "success")
        self.assertEqual(self.crash.status, "error")
        self.assertEqual(self.crash.error_type, "Runtime.ExitError")
        self.assertEqual(self.after_crash.status, "success")

    def test_registers_subscribes_then_waits_in_each_environment(self):
        registers = self.ext_calls("/extension/register", "POST")
        subscribes = self.ext_calls("/2022-07-01/telemetry", "PUT")
        # three generations of the extension: cold start, after timeout, after crash
        self.assertEqual(len(registers), 3, registers)
        self.assertEqual(len(subscribes), 3, subscribes)
        for c in registers + subscribes:
            self.assertEqual(c["status"], 200, c)
        # per generation: register, then subscribe, then the first next
        order = [(c["t_mono_ns"], c["path"]) for c in self.log if c.get("who") == harness.EXT_NAME]
        order.sort()
        seq = []
        for _, path in order:
            kind = ("register" if "register" in path else "subscribe" if "telemetry" in path
                    else "next" if "event/next" in path else "other")
            if not seq or seq[-1] != kind:
                seq.append(kind)
        self.assertEqual(seq[:3], ["register", "subscribe", "next"])
        self.assertEqual(seq.count("register"), 3)
        for i, kind in enumerate(seq):
            if kind == "register":
                self.assertEqual(seq[i + 1:i + 3], ["subscribe", "next"], seq)

    def test_subscription_body(self):
        sub = self.subscription
        self.assertIsNotNone(sub)
        self.assertEqual(sub["types"], ["platform"])
        self.assertEqual((sub["maxItems"], sub["maxBytes"], sub["timeoutMs"]), (1000, 262144, 25))
        dest = sub["destination"]
        self.assertEqual((dest["protocol"], dest["host"], dest["path"]), ("HTTP", "sandbox.localdomain", "/telemetry"), dest)
        self.assertGreater(dest["port"], 0)
        self.assertTrue(any("subscribed to the Telemetry API (schema 2025-01-29)" in l
                            for l in self.lines))

    def test_init_says_subscription_and_settings_in_one_line(self):
        # one write to stderr in each process's Init, not two: the subscription and the settings
        # together (the environment is started more than once here: one line per process)
        init = [l for l in self.lines if "subscribed to the Telemetry API" in l or "settings: " in l]
        self.assertTrue(init)
        for line in init:
            self.assertRegex(line, r"INFO subscribed to the Telemetry API \(schema 2025-01-29\) on port \d+; "
                                   r"settings: exporters=")
        port = "on port %d; settings: " % self.subscription["destination"]["port"]
        self.assertTrue(any(port in l for l in init), init)

    def test_events_delivered(self):
        events = [c.get("event") for c in self.ext_calls("/extension/event/next")
                  if c.get("event")]
        self.assertEqual(events.count("INVOKE"), 9)
        self.assertEqual(events.count("SHUTDOWN"), 3)

    def test_telemetry_received_by_type_and_request(self):
        seen = harness.telemetry_seen(self.lines)
        by_req = {}
        for typ, rid, status, err in seen:
            by_req.setdefault(rid, []).append((typ, status, err))
        for r in self.warm + [self.after_timeout]:
            types = [t for t, _, _ in by_req.get(r.request_id, [])]
            for t in ("platform.start", "platform.runtimeDone", "platform.report"):
                self.assertIn(t, types, (r.request_id, types))
        tmo = by_req.get(self.timeout.request_id, [])
        self.assertIn(("platform.runtimeDone", "timeout", "-"), tmo)
        crash = by_req.get(self.crash.request_id, [])
        self.assertIn(("platform.runtimeDone", "error", "Runtime.ExitError"), crash)
        all_types = {t for t, _, _, _ in seen}
        for t in ("platform.initStart", "platform.initRuntimeDone", "platform.extension",
                  "platform.initReport", "platform.telemetrySubscription"):
            self.assertIn(t, all_types)

    def test_each_generation_shut_down_cleanly(self):
        reasons = [r for r, _ in harness.shutdowns(self.lines)]
        self.assertEqual(reasons, ["timeout", "failure", "spindown"])
        for _, rest in harness.shutdowns(self.lines):
            self.assertIn("queue_dropped=0", rest)
            self.assertIn("bad_batches=0", rest)
        sd = self.spindown
        ext = sd.extensions[harness.EXT_NAME]
        self.assertTrue(ext.shutdown_delivered)
        self.assertEqual(ext.exit_code, 0)
        self.assertFalse(ext.killed)
        self.assertLess(sd.duration_ms, 2000)
        # the timeout and crash resets too: SHUTDOWN delivered, exit 0, not killed
        for r in (self.timeout, self.crash):
            e = r.shutdown.extensions[harness.EXT_NAME]
            self.assertEqual((e.exit_code, e.killed, e.shutdown_delivered), (0, False, True), r)

    def test_no_sanitizer_reports(self):
        self.assertEqual(harness.sanitizer_reports(self.lines), [])


if __name__ == "__main__":
    unittest.main()
