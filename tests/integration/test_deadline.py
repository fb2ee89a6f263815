"""Promises kept under hostile conditions (issue 10, points 1, 2 and 7).

1. SHUTDOWN always ends inside its deadline, whatever the backends do: an export request
   already in flight when SHUTDOWN comes (a backend that accepts and never answers, or
   trickles an answer byte by byte) is cut, for any LAMBDA_TRACER_EXPORT_TIMEOUT_MS; the
   process exits 0 before the deadline and counts what was not delivered.
2. The eager wait never holds an invocation past its bound, whatever happens to the batch
   that carries platform.runtimeDone (unparsable, dropped by a full queue, delayed).
7. Counters tell the truth: invokes= counts INVOKE events even without telemetry; every
   counter is in the shutdown summary line.
"""
import json
import shutil
import socket
import threading
import time
import unittest

import harness
import sinks

BACKGROUND_MS = 60
EAGER_MS = 25 + 250 + BACKGROUND_MS


def new_env(tc, env=None, **kwargs):
    root = harness.make_root()
    emu = harness.new_emulator(root, env=env, **kwargs)
    tc.addCleanup(shutil.rmtree, root, True)
    tc.addCleanup(emu.close)
    return emu


class InFlightAtShutdownTest(unittest.TestCase):
    """A request is in flight to a backend that never finishes answering when SHUTDOWN comes."""

    SINK_ENV = {
        "xray": lambda hole: {"LAMBDA_TRACER_EXPORTERS": "xray", "LAMBDA_TRACER_XRAY_ENDPOINT": hole.endpoint},
        "otlp": lambda hole: {"LAMBDA_TRACER_EXPORTERS": "otlp",
                              "LAMBDA_TRACER_OTLP_ENDPOINT": hole.endpoint + "/v1/traces"},
    }

    def run_case(self, sink, trickle, timeout_ms, deadline_ms):
        hole = sinks.BlackHoleSink(trickle=trickle)
        self.addCleanup(hole.close)
        # eager: a segment is sent before /next (so before the sandbox freezes: X-Ray the
        # first invocation's in-progress version, OTLP the first's final one during the
        # second), the flush gives up after its 250 ms and the request stays in flight
        # through the freeze; the next invocations' segments queue behind it
        env = dict(self.SINK_ENV[sink](hole), LAMBDA_TRACER_EXPORT_TIMEOUT_MS=str(timeout_ms),
                   LAMBDA_TRACER_FLUSH="eager")
        emu = new_env(self, env=env, faults={"shutdown_deadline_ms": deadline_ms})
        emu.start()
        for _ in range(2):
            emu.invoke(payload=b'{"action":"fast"}')
        harness.wait_for(lambda: hole.received > 0, 10.0, "an export request in flight")
        emu.invoke(payload=b'{"action":"fast"}')
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        ext = sd.extensions[harness.EXT_NAME]
        what = (sink, "trickle" if trickle else "black hole", timeout_ms, deadline_ms)
        self.assertEqual((ext.exit_code, ext.killed), (0, False), what)
        # SHUTDOWN is written after the runtime has exited, so this is the weaker side of
        # "before the deadline"; the extension's own figure is stricter
        self.assertLess(ext.ms_to_exit, deadline_ms, what)
        s = harness.summary(lines)
        self.assertLess(s["shutdown_ms"], deadline_ms - 50, what)
        x = harness.export_summary(lines)
        self.assertEqual(x[sink + "_sent"], 0, what)
        # nothing delivered, all of it counted: failed (the cut request), skipped, still
        # queued at the deadline, or abandoned with a stuck thread
        lost = x[sink + "_failed"] + x[sink + "_skipped"] + s["export_unsent_at_stop"] + s["export_abandoned"]
        if sink == "otlp":
            # OTLP takes final versions only (the submitted in-progress ones are X-Ray's)
            self.assertGreaterEqual(lost, s["segments"], (what, s))
            self.assertLessEqual(lost, x["submitted"], (what, s))
        else:
            self.assertGreaterEqual(lost, x["submitted"], (what, s))  # X-Ray counts documents
        self.assertGreaterEqual(x[sink + "_failed"], 1, what)  # the request in flight was cut
        self.assertEqual(harness.sanitizer_reports(lines), [])
        return ext

    def test_black_hole(self):
        timeouts = [1000, 30000] if harness.quick() else [1000, 5000, 30000]
        deadlines = [400, 1200] if harness.quick() else [300, 700, 1500]
        for sink in ("xray", "otlp"):
            for timeout_ms in timeouts:
                for deadline_ms in deadlines:
                    with self.subTest(sink=sink, timeout_ms=timeout_ms, deadline_ms=deadline_ms):
                        self.run_case(sink, False, timeout_ms, deadline_ms)

    def test_trickler(self):
        for sink in ("xray", "otlp"):
            for timeout_ms, deadline_ms in ((30000, 500), (5000, 1500)):
                with self.subTest(sink=sink, timeout_ms=timeout_ms, deadline_ms=deadline_ms):
                    self.run_case(sink, True, timeout_ms, deadline_ms)

    def test_stdout_reader_stalled(self):
        # the stdout sink writes into a pipe whose reader never reads (a one-page pipe, so a
        # few documents fill it): the exporter's writes wait, and SHUTDOWN still ends in time
        prelude = ("exec 1> >(exec python3 -c 'import fcntl, time; fcntl.fcntl(0, 1031, 4096); "
                   "time.sleep(30)')")
        root = harness.make_wrapped_root(prelude)
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root, env={"LAMBDA_TRACER_EXPORTERS": "stdout",
                                              "LAMBDA_TRACER_FLUSH": "background",
                                              "LAMBDA_TRACER_LOG_LEVEL": "info"},
                                   faults={"shutdown_deadline_ms": 700})
        self.addCleanup(emu.close)
        emu.start()
        for _ in range(40):
            emu.invoke(payload=b'{"action":"fast"}')
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        ext = sd.extensions[harness.EXT_NAME]
        self.assertEqual((ext.exit_code, ext.killed), (0, False), lines[-5:])
        self.assertLess(ext.ms_to_exit, 700)
        s = harness.summary(lines)
        x = harness.export_summary(lines)
        # the pipe took a few documents; the rest were counted, none silently lost
        self.assertGreater(x["stdout_failed"] + s["export_unsent_at_stop"] + s["export_abandoned"], 0, s)
        self.assertEqual(harness.sanitizer_reports(lines), [])


class SummaryTest(unittest.TestCase):
    def test_invokes_counted_without_telemetry(self):
        # AWS's own emulator answers the subscription 202 Telemetry.NotSupported: no listener,
        # no pipeline, yet every INVOKE is counted
        emu = new_env(self, quirks={"telemetry_not_supported": True})
        emu.start()
        n = 25
        for _ in range(n):
            emu.invoke(payload=b'{"action":"fast"}')
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        self.assertEqual(sd.extensions[harness.EXT_NAME].exit_code, 0)
        s = harness.summary(lines)
        self.assertEqual(s["invokes"], n)
        self.assertEqual(s["segments"], 0)
        self.assertEqual(s["telemetry_batches"], 0)

    def test_every_counter_in_the_summary_line(self):
        emu = new_env(self, env={"LAMBDA_TRACER_EXPORTERS": "stdout"})
        emu.start()
        for _ in range(4):
            emu.invoke(payload=b'{"action":"fast"}')
        emu.shutdown()
        lines = harness.output_lines(emu)
        s = harness.summary(lines)
        x = harness.export_summary(lines)
        for name in ("invokes", "segments", "telemetry_batches", "records", "bad_batches", "queue_pushed",
                     "queue_dropped", "queue_dropped_bytes", "listener_requests", "listener_evicted",
                     "listener_timed_out", "journal_full", "recovered", "export_submitted",
                     "export_unprocessed", "export_unsent_at_stop", "export_abandoned", "stdout_sent",
                     "stdout_requests", "xray_retries", "otlp_retries", "rec_start", "rec_report", "shutdown_ms"):
            self.assertIn(name, s)
        self.assertEqual(s["invokes"], 4)
        self.assertEqual(s["pipeline_invokes"], 4)
        self.assertEqual(s["export_submitted"], x["submitted"])
        self.assertEqual(s["stdout_sent"], x["stdout_sent"])
        self.assertEqual(s["rec_start"], 4)
        self.assertGreaterEqual(s["rec_report"], 3)


if __name__ == "__main__":
    unittest.main()
