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
from common import sinks

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
        # few documents fill it): the exporter's writes wait, and SHUTDOWN still ends in time.
        # The pipe is shrunk from the writing side before the extension starts, while it is
        # still empty (F_SETPIPE_SZ refuses to shrink a pipe below what it holds, and a reader
        # started under load may come too late to do it)
        prelude = ("exec 1> >(exec sleep 30); "
                   "python3 -c 'import fcntl; fcntl.fcntl(1, 1031, 4096)' || exit 97")
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


def final_segments(lines):
    out = {}
    for rid, docs in harness.by_request(harness.documents(lines)).items():
        out[rid] = [d for d in docs if not d.get("in_progress")]
    return out


class EagerBoundTest(unittest.TestCase):
    """The batch that carries an eager invocation's platform.runtimeDone is spoiled by the
    platform: the invocation is held at most timeoutMs + 250 ms after the runtime finished
    (the emulator's extensionOverhead span: runtime /next to our /next), eager export turns
    off, the later invocations cost nothing, and every invocation still gets its segment."""

    def run_spoiled(self, spoil, env=None):
        env = dict({"LAMBDA_TRACER_FLUSH": "eager"}, **(env or {}))
        # an 8 s function: a wait that ran to the deadline would hold it 7.7 s
        emu = new_env(self, env=env, timeout_s=8)
        emu.start()
        # a handler that runs 500 ms is not held for it: the bound starts when it is done
        first = emu.invoke(payload=b'{"action":"slow","ms":500}')
        emu.faults["spoil_runtime_done"] = spoil
        spoiled = emu.invoke(payload=b'{"action":"slow","ms":300}')
        after = [emu.invoke(payload=b'{"action":"fast"}') for _ in range(2)]
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        self.assertEqual((sd.extensions[harness.EXT_NAME].exit_code, sd.extensions[harness.EXT_NAME].killed),
                         (0, False))
        self.assertEqual(harness.sanitizer_reports(lines), [])
        held = harness.extension_overhead_ms(first)
        self.assertLessEqual(held, EAGER_MS)
        # eager export is off after the spoiled one: the next ones cost nothing
        for r in after:
            self.assertLessEqual(harness.extension_overhead_ms(r), BACKGROUND_MS, r.request_id)
        finals = final_segments(lines)
        for r in [first, spoiled] + after:
            self.assertEqual(len(finals.get(r.request_id, [])), 1, r.request_id)
        return spoiled, lines

    def test_runtime_done_batch_unparsable(self):
        r, lines = self.run_spoiled({"how": "garbage"})
        self.assertLessEqual(harness.extension_overhead_ms(r), EAGER_MS)
        self.assertEqual(harness.summary(lines)["bad_batches"], 1)
        self.assertEqual(len([l for l in lines if "telemetry batch that was lost" in l]), 1)

    def test_runtime_done_batch_dropped_by_a_full_queue(self):
        # the smallest queue (256 KiB) and a batch 300 KB bigger: valid JSON, refused by the
        # queue as full (the listener takes up to 2 x 256 KiB + 64 KiB)
        r, lines = self.run_spoiled({"how": "pad", "bytes": 300000},
                                    env={"LAMBDA_TRACER_QUEUE_MAX_BYTES": "262144"})
        self.assertLessEqual(harness.extension_overhead_ms(r), EAGER_MS)
        self.assertEqual(harness.summary(lines)["queue_dropped"], 1)
        self.assertEqual(len([l for l in lines if "telemetry batch that was lost" in l]), 1)

    def test_runtime_done_delivered_after_the_bound(self):
        # the platform delivers runtimeDone 1 s late: nothing tells the extension sooner that
        # the runtime is done (README, flush policy), so it holds until then, and not a moment
        # longer: no flush once the bound is spent, and eager export off
        delay_ms = 1000
        r, lines = self.run_spoiled({"how": "delay", "ms": delay_ms})
        held = harness.extension_overhead_ms(r)
        self.assertGreaterEqual(held, delay_ms)
        self.assertLessEqual(held, delay_ms + 25 + BACKGROUND_MS)
        self.assertEqual(len([l for l in lines if "arrived after the eager bound" in l]), 1)


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
