"""Crowding out the platform (issue 10, points 4 and 5): other clients of the telemetry listener
(slow, silent, churning connections) must never cost the platform a delivery, and a flood of
records for request ids nobody announced must never cost the invocation being traced its trace
context.  Every connection closed to make room and every invocation forgotten is counted in the
shutdown summary.

The platform here is the emulator's telemetry sender (one kept-alive connection, as Lambda's);
the attackers are extra sockets of the test."""
import json
import socket
import threading
import time
import unittest

import harness
from test_faults import BACKGROUND_MS, Checks, Env, final_segments

CAP = 16  # LISTENER_MAX_CONNECTIONS
TABLE = 64  # TRACER_MAX_OPEN
REAL_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
REAL_PARENT = "53995c3f42cd8ad8"
REAL_HEADER = "Root=%s;Parent=%s;Sampled=1" % (REAL_ROOT, REAL_PARENT)


def open_slow(addr, n):
    """n connections, each with the start of a request and then nothing (slow senders)."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(addr, timeout=5)
        s.sendall(b"POST /telemetry HTTP/1.1\r\nContent-Length: 100000\r\n\r\n[")
        socks.append(s)
    return socks


def reconnects(emu):
    """Times the platform found its kept-alive connection closed under it (and retried)."""
    return [c for c in list(emu.api_log) if c.get("api") == "delivery-reconnect"]


def close_all(socks):
    for s in socks:
        s.close()


class Churn:
    """Threads that open short connections and drop them, 4 at a time, 200 times a second
    each, up to a budget (the closing side keeps each port in TIME_WAIT: the machine is
    shared): silent ones and ones with half a request.  None completes a request, so none is
    ever a kept-alive connection: any kept-alive connection evicted is the platform's."""

    def __init__(self, addr, threads=2, budget=3000):
        self.addr = addr
        self.stop = threading.Event()
        self.opened = 0
        self.budget = budget // threads
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        n = 0
        while n < self.budget and not self.stop.wait(0.005):
            socks = []
            for i in range(4):
                try:
                    s = socket.create_connection(self.addr, timeout=2)
                except OSError:
                    continue
                socks.append(s)
                if i % 2:
                    try:
                        s.sendall(b"POST /telemetry HTTP/1.1\r\nContent-Le")
                    except OSError:
                        pass
            n += 4
            close_all(socks)
        with self.lock:
            self.opened += n

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()


class ListenerCrowdTest(unittest.TestCase, Checks):
    def test_slow_senders_filling_the_cap_never_cost_a_delivery(self):
        # Each round: every slot held by a slow sender, one more connection on top, then an
        # invocation whose telemetry the platform delivers on its kept-alive connection.
        # The sandbox is not frozen between invocations: on Lambda nothing can connect to the
        # listener while it is (the function's processes are frozen with it), and under the
        # emulator's freeze each round's attackers would wait in the kernel's backlog for the
        # next invocation's few milliseconds, so on a loaded machine the rounds pile up until
        # the backlog is full and the test's own connects time out.
        env = Env(self, env={"LAMBDA_TRACER_FLUSH": "background"}, freeze=False)
        emu = env.emu
        emu.start()
        results = [emu.invoke(payload=b'{"action":"fast"}')]
        addr = harness.listener_address(emu)
        for _ in range(20):
            attackers = open_slow(addr, CAP) + [socket.create_connection(addr, timeout=5)]
            try:
                results.append(emu.invoke(payload=b'{"action":"fast"}'))
            finally:
                close_all(attackers)
        sd = emu.shutdown()
        lines = env.lines()
        self.assertEqual(harness.delivery_failures(emu), [])
        self.assertEqual(reconnects(emu), [])
        for r in results:
            self.assert_within(r, BACKGROUND_MS)
        self.assert_one_final_each(lines, results)
        self.assert_clean_exit(sd, lines)
        s = harness.summary(lines)
        # slow senders made room (17 attackers a round against 15 slots beside the
        # platform's: one eviction a round when the listener has accepted them all before
        # the round ends them, fewer when a loaded machine runs the round faster than the
        # loop accepts), and the platform's own connection never did
        self.assertGreaterEqual(s["listener_evicted"], 1, s)
        self.assertEqual(s["listener_evicted_kept_alive"], 0, s)
        self.assertEqual(s["listener_refused"], 0, s)

    def test_churn_never_costs_a_delivery(self):
        # A few hundred platform deliveries while threads churn short connections.
        env = Env(self, env={"LAMBDA_TRACER_FLUSH": "background"})
        emu = env.emu
        emu.start()
        results = [emu.invoke(payload=b'{"action":"fast"}')]
        churn = Churn(harness.listener_address(emu))
        self.addCleanup(churn.close)
        # each invocation outlasts the delivery window (timeoutMs 25 ms): at least one
        # delivery during it, and its report with the next
        while len(emu.delivered) < 300 and len(results) < 600:
            results.append(emu.invoke(payload=b'{"action":"slow","ms":40}'))
        churn.close()
        sd = emu.shutdown()
        lines = env.lines()
        self.assertGreater(churn.opened, 1000)
        self.assertGreaterEqual(len(emu.delivered), 300)
        self.assertEqual(harness.delivery_failures(emu), [])
        self.assertEqual(reconnects(emu), [])
        self.assert_one_final_each(lines, results)
        self.assert_clean_exit(sd, lines)
        s = harness.summary(lines)
        self.assertEqual(s["listener_evicted_kept_alive"], 0, s)
        self.assertEqual(s["listener_refused"], 0, s)

    def test_silent_connections_are_closed_after_the_idle_timeout_and_counted(self):
        # A connection that never sends a byte holds its slot 5 s at most
        # (LISTENER_REQUEST_IDLE_TIMEOUT_MS), like a request gone silent.
        env = Env(self, timeout_s=10, env={"LAMBDA_TRACER_FLUSH": "background"})
        emu = env.emu
        emu.start()
        addr = harness.listener_address(emu)
        h = emu.invoke_async(payload=b'{"action":"slow","ms":6500}')
        harness.wait_for(lambda: any(c.get("who") == harness.EXT_NAME and c.get("request_id") == h.request_id
                                     and c.get("event") == "INVOKE" for c in list(emu.api_log)),
                         5.0, "the extension to get the INVOKE", interval=0.005)
        silent = socket.create_connection(addr, timeout=10)
        self.addCleanup(silent.close)
        t0 = time.monotonic()
        try:
            closed = silent.recv(100)  # blocks until the listener closes it
        except socket.timeout:
            closed = None
        waited = time.monotonic() - t0
        r = h.result(timeout=15)
        sd = emu.shutdown()
        lines = env.lines()
        self.assertEqual(closed, b"")
        self.assertGreater(waited, 4.5)
        self.assertLess(waited, 6.5)
        self.assertEqual(harness.summary(lines)["listener_timed_out"], 1)
        self.assert_within(r, BACKGROUND_MS)
        self.assert_clean_exit(sd, lines)


def flood_body(prefix, start, n):
    return json.dumps([{"time": "2026-01-01T00:00:00.000Z", "type": "platform.start",
                        "record": {"requestId": "%s-%d" % (prefix, i), "version": "$LATEST"}}
                       for i in range(start, start + n)]).encode()


class InvocationTableFloodTest(unittest.TestCase, Checks):
    """6,000 platform.start records of request ids nobody announced reach the extension while
    an invocation runs (the sandbox is thawed), after its INVOKE: its segment keeps the trace
    id and parent INVOKE's tracing header gave it."""

    def run_flood(self, header, after_start, env=None):
        e = {"LAMBDA_TRACER_FLUSH": "background"}
        e.update(env or {})
        env = Env(self, env=e)
        emu = env.emu
        emu.start()
        addr = harness.listener_address(emu)
        if not after_start:
            emu.faults["hold_telemetry"] = True  # its own records come after the flood
        h = emu.invoke_async(payload=b'{"action":"slow","ms":1500}', trace_header=header)
        # the pipeline has taken the INVOKE (its debug line) before the flood arrives
        harness.wait_for(lambda: any("event INVOKE request_id=%s " % h.request_id in l for l in env.lines()),
                         5.0, "the pipeline to take INVOKE %s" % h.request_id)
        if after_start:
            # ... and its platform.start (delivered: queued before the answer)
            harness.wait_for(lambda: any(d["status"] == 200 and any(
                r["type"] == "platform.start" and r["record"].get("requestId") == h.request_id
                for r in d["records"]) for d in list(emu.delivered)), 5.0, "the start's delivery")
        flood = 6000
        answers = [harness.raw_exchange(addr, harness.post_bytes(flood_body("flood", i, 1500)))
                   for i in range(0, flood, 1500)]
        emu.faults["hold_telemetry"] = False
        real = h.result(timeout=10)
        sd = emu.shutdown()  # its report is delivered at the next thaw: SHUTDOWN's
        lines = env.lines()
        self.assertEqual(answers, [200] * len(answers))
        finals = final_segments(lines)
        self.assertEqual(len(finals[real.request_id]), 1)
        doc = finals[real.request_id][0]
        self.assertEqual(doc["trace_id"], REAL_ROOT)
        if "Sampled=0" in header:
            # kept although Sampled=0: a root segment of the header's trace, the header's
            # Parent (which nobody exports in PassThrough) kept in metadata
            self.assertNotIn("parent_id", doc)
            self.assertEqual(doc["metadata"]["lambda_tracer"]["upstream_parent_id"], REAL_PARENT)
        else:
            self.assertEqual(doc["parent_id"], REAL_PARENT)
        self.assertEqual(doc["annotations"]["status"], "success")  # its report came
        # the free slots beside the invocation's took the first 63; every later one pushed
        # out an older one of them, counted, and reported on the next segment: this one
        evicted = flood - (TABLE - 1)
        self.assertEqual(doc["metadata"]["lambda_tracer"]["evicted_invocations"], evicted)
        self.assertNotIn("closed_by_shutdown", doc["metadata"]["lambda_tracer"])
        s = harness.summary(lines)
        self.assertEqual(s["evicted_invocations"], evicted, s)
        self.assertEqual(s["evicted_announced"], 0, s)
        self.assertEqual(s["closed_by_shutdown"], TABLE - 1, s)  # the flood's survivors
        # SHUTDOWN's wait list (64) forgets flood ids for newer ones, never the INVOKE'd
        # invocation (issue 12; it was the first to go): its report came, so exactly the
        # flood is unreported
        self.assertEqual(s["unreported"], flood, s)
        self.assertEqual(harness.delivery_failures(emu), [])
        self.assert_clean_exit(sd, lines)

    def test_flood_between_start_and_report(self):
        # platform.start carried the (sampled) header too; the report does not
        self.run_flood(REAL_HEADER, after_start=True)

    def test_flood_between_invoke_and_start_of_an_unsampled_invocation_traced_anyway(self):
        # Sampled=0 traced on request (LAMBDA_TRACER_SAMPLING=all): only INVOKE carries the header (platform.start has no
        # tracing then, as on Lambda without active tracing)
        self.run_flood(REAL_HEADER.replace("Sampled=1", "Sampled=0"), after_start=False,
                       env={"LAMBDA_TRACER_SAMPLING": "all"})


if __name__ == "__main__":
    unittest.main()
