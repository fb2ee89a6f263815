"""Timeout forensics: the real binary under the emulator, with runtimes stuck
in different ways; each timed-out segment must name what the function was
doing (the sentence: kind, peer, port name) and carry the snapshot.

The peers are local servers this test runs on loopback addresses of its own
(127.a.b.c, so two runs never share a port) at well-known ports, so the
sentence can name them: a PostgreSQL port that accepts and never answers, a
Redis port that answers (the idle pooled connection the diagnosis must not
blame), a MongoDB port whose listener has a full backlog (a connect that
never completes: the kernel drops the SYNs, deterministically).

They run with Lambda's default (harness lambda_default=True: the emulator stamps Sampled=0
and no LAMBDA_TRACER_SAMPLING is set): every timeout, crash, out of memory and slow
invocation is kept for its outcome, so the defaults a new user gets are the ones tested.

    cd tests/integration && LAMBDA_TRACER_BIN=$PWD/../../build/asan/lambda-tracer \\
        python3 -m unittest test_forensics
"""
import json
import os
import re
import random
import shutil
import socket
import threading
import unittest

import harness

TIMEOUT_S = 2
SLOW = ("mixed", "slow_read")  # ForensicsTest's invocations that are slow but finish
PG, REDIS, MONGO = 5432, 6379, 27017


def bind_loopback(port, backlog):
    """A listening socket on 127.a.b.c:port for some free a.b.c."""
    last = None
    for _ in range(50):
        host = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 254), random.randint(1, 254))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
            s.listen(backlog)
            return s, host
        except OSError as exc:
            last = exc
            s.close()
    raise RuntimeError("no free loopback address for port %d: %s" % (port, last))


class Peers:
    """The local servers; close() stops them."""

    def __init__(self):
        self.socks = []
        self.stop = threading.Event()
        self.silent, self.silent_host = bind_loopback(PG, 16)     # accepts, never answers
        self.pool, self.pool_host = bind_loopback(REDIS, 16)      # answers every line
        self.full, self.full_host = bind_loopback(MONGO, 0)       # never accepts
        # fill the accept queue (backlog 0 holds one): later SYNs are dropped
        self.filler = socket.create_connection((self.full_host, MONGO), timeout=5)
        for srv, fn in ((self.silent, self._hold), (self.pool, self._answer)):
            srv.settimeout(0.2)
            threading.Thread(target=self._accept, args=(srv, fn), daemon=True).start()

    def _accept(self, srv, fn):
        while not self.stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            self.socks.append(c)
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    def _hold(self, c):
        pass  # keep it open, say nothing

    def _answer(self, c):
        c.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data = c.recv(64)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            c.sendall(b"pong\n")

    def close(self):
        self.stop.set()
        for s in self.socks + [self.silent, self.pool, self.full, self.filler]:
            try:
                s.close()
            except OSError:
                pass


def meta(doc):
    return doc.get("metadata", {}).get("lambda_tracer", {})


def cause_message(doc):
    return doc["cause"]["exceptions"][0]["message"]


def threads(snapshot):
    return [t for p in snapshot["procs"] for t in p.get("threads", [])]


def sockets(snapshot):
    return [s for p in snapshot["procs"] for s in p.get("sockets", [])]


class ForensicsTest(unittest.TestCase):
    """One environment, one stuck invocation after another (each timeout resets it),
    then a slow one that finishes."""

    @classmethod
    def setUpClass(cls):
        cls.peers = Peers()
        cls.root = harness.make_root()
        cls.emu = None
        try:
            # the slow threshold set (the default, half the budget, is FastInvocationsTest's)
            cls.emu = harness.new_emulator(cls.root, timeout_s=TIMEOUT_S, env={"LAMBDA_TRACER_SLOW_MS": "500"},
                                           lambda_default=True)
            cls.emu.start()
            p = cls.peers
            cls.payloads = {
                "spin": {"action": "spin", "ms": 10000},
                "read": {"action": "read", "host": p.silent_host, "port": PG,
                         "pool_host": p.pool_host, "pool_port": REDIS},
                "connect": {"action": "connect", "host": p.full_host, "port": MONGO},
                "sleep": {"action": "sleep", "ms": 10000},
                "child": {"action": "child", "ms": 10000},
                "mixed": {"action": "mixed", "cpu_ms": 800, "sleep_ms": 700},
                # slow, not stuck: waits 1.2 s for the silent peer, then gives up and responds
                "slow_read": {"action": "read", "host": p.silent_host, "port": PG,
                              "pool_host": p.pool_host, "pool_port": REDIS, "timeout_ms": 1200},
            }
            cls.results = {}
            cls.runtime_pids = {}
            # the slow ones first, on the warm environment; each stuck one after a warm-up
            # invocation, so the Init that follows a timeout's reset is not part of its budget
            for name in list(SLOW) + [n for n in cls.payloads if n not in SLOW]:
                if name not in SLOW:
                    cls.emu.invoke(b'{"action":"fast"}')
                cls.runtime_pids[name] = cls.emu.runtime_pid()
                cls.results[name] = cls.emu.invoke(json.dumps(cls.payloads[name]).encode())
            cls.sd = cls.emu.shutdown()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.lines = harness.output_lines(cls.emu)
        cls.docs = harness.documents(cls.lines)
        cls.versions = harness.by_request(cls.docs)

    @classmethod
    def tearDownClass(cls):
        if cls.emu is not None:
            cls.emu.close()
        cls.peers.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def final(self, name):
        rid = self.results[name].request_id
        got = [d for d in self.versions.get(rid, []) if not d.get("in_progress")]
        self.assertEqual(len(got), 1, "final segments of %s: %s" % (name, got))
        return got[0]

    def in_progress(self, name):
        rid = self.results[name].request_id
        got = [d for d in self.versions.get(rid, []) if d.get("in_progress")]
        self.assertEqual(len(got), 1, "in-progress segments of %s" % name)
        return got[0]

    def sentence(self, name):
        """The timed-out segment's sentence, checked to be the same in the cause (after the
        platform's own text), in the metadata, and in the in-progress version."""
        d = self.final(name)
        self.assertEqual(self.results[name].status, "timeout")
        # Lambda's default (Sampled=0 header, smart sampling): kept for its outcome
        self.assertEqual(d["annotations"]["sampled_by"], "outcome")
        sentence = meta(d)["diagnosis"]
        self.assertEqual(cause_message(d).split("\n")[0],
                         "Task timed out after %.2f seconds: %s" % (TIMEOUT_S, sentence))
        self.assertEqual(meta(self.in_progress(name))["diagnosis"], sentence)
        self.assertEqual(meta(self.in_progress(name))["snapshot"], meta(d)["snapshot"])
        snap = meta(d)["snapshot"]
        self.assertEqual(snap["procs"][0]["pid"], self.runtime_pids[name])
        self.assertIn("one invocation at a time", meta(d)["snapshot_scope"])
        # the slow sampler (from 500 ms, every 100 ms) ran first, then the deadline's look
        self.assertEqual(meta(d)["snapshots"], 9)
        # whose CPU figures count from the sampler's first look (500 ms to 1.7 s), not
        # from the process's start
        self.assertRegex(sentence, r"of CPU in the last 1\.[0-3] s")
        self.assertNotIn("since the process started", sentence)
        # and the snapshot says so: its *_start figures count from that first look
        self.assertEqual(snap["baseline"], "first_slow_snapshot")
        start_us = self.results[name].deadline_ms * 1000 - TIMEOUT_S * 1000000
        self.assertGreaterEqual(snap["baseline_taken_us"], start_us + 500000 - 2000)
        self.assertLess(snap["baseline_taken_us"], snap["taken_us"] - 900000)
        self.assertIn("rss_start_bytes", snap["procs"][0])
        # at the deadline minus the margin (300 ms), not before
        deadline_ms = self.results[name].deadline_ms
        self.assertGreaterEqual(snap["taken_us"] // 1000, deadline_ms - 300 - 2)
        self.assertLess(snap["taken_us"] // 1000, deadline_ms + 1000)
        return sentence, snap

    def test_busy_loop(self):
        sentence, snap = self.sentence("spin")
        self.assertTrue(sentence.startswith("busy: "), sentence)
        self.assertIn("one thread", sentence)
        # "busy: 1.19 s of CPU in the last 1.2 s ...": on an idle machine about all of the
        # window; on a loaded one the loop gets less of a CPU but is still running, so the
        # figure must hold the rule that called it busy (at least 10 % of the window) and
        # cannot exceed the window (one thread)
        m = re.match(r"busy: (\d+\.\d+) s of CPU in the last (\d+\.\d+) s", sentence)
        cpu, window = float(m.group(1)), float(m.group(2))
        self.assertGreaterEqual(cpu, 0.1 * window - 0.01)
        self.assertLessEqual(cpu, window + 0.01)
        # a loop is runnable all the time: what it did not get of the CPU it waited for
        starved = re.search(r", and (\d+\.\d+) s more waiting for a CPU$", sentence)
        if cpu < 0.8 * window:
            self.assertIsNotNone(starved, sentence)
        if starved:
            self.assertAlmostEqual(cpu + float(starved.group(1)), window, delta=0.1 * window)
        self.assertIn("R", [t["state"] for t in threads(snap)])

    def test_socket_read_names_the_waited_peer_not_the_pool(self):
        sentence, snap = self.sentence("read")
        p = self.peers
        self.assertIn("socket read from %s:%d (PostgreSQL, established)" % (p.silent_host, PG), sentence)
        self.assertNotIn(str(REDIS), sentence)
        self.assertNotIn(p.pool_host, sentence)
        peers = {s.get("peer"): s for s in sockets(snap)}
        # both connections are in the snapshot, named, told apart
        self.assertEqual(peers["%s:%d" % (p.silent_host, PG)]["service"], "PostgreSQL")
        self.assertEqual(peers["%s:%d" % (p.pool_host, REDIS)]["service"], "Redis")
        self.assertEqual(peers["%s:%d" % (p.pool_host, REDIS)]["state"], "established")
        # read through their fds (pidfd_getfd, the extension being the runtime's sibling),
        # not from the namespace's tables
        self.assertEqual(snap["sockets_by_fd"], len(sockets(snap)) + snap.get("ignored", {}).get("sockets", 0))
        self.assertEqual(snap["namespace_entries"], 0)
        self.assertIn("read", [t.get("syscall", "") for t in threads(snap)] +
                      [t.get("syscall", "").replace("recvfrom", "read") for t in threads(snap)])

    def test_connect_that_never_completes(self):
        sentence, snap = self.sentence("connect")
        self.assertTrue(sentence.startswith("connecting to %s:%d (MongoDB)" % (self.peers.full_host, MONGO)),
                        sentence)
        states = {s.get("peer"): s.get("state") for s in sockets(snap)}
        self.assertEqual(states["%s:%d" % (self.peers.full_host, MONGO)], "connecting")

    def test_sleep(self):
        sentence, _ = self.sentence("sleep")
        self.assertTrue(sentence.startswith("sleeping"), sentence)

    def test_waiting_on_a_child_process(self):
        sentence, snap = self.sentence("child")
        self.assertIn("waiting on child process", sentence)
        self.assertIn("(sleep)", sentence)
        children = [p for p in snap["procs"] if p["comm"] == "sleep"]
        self.assertEqual(len(children), 1)
        self.assertEqual(children[0]["ppid"], snap["procs"][0]["pid"])

    def test_slow_invocation_says_where_the_time_went(self):
        r = self.results["mixed"]
        self.assertEqual(r.status, "success")
        d = self.final("mixed")
        self.assertNotIn("cause", d)
        # the environment's first invocation: kept as the cold start (which outranks slow)
        self.assertEqual(d["annotations"]["sampled_by"], "cold_start")
        m = meta(d)
        # past the threshold (500 ms) it ran 1 s more: the sampler's 8, no more
        self.assertEqual(m["snapshots"], 8)
        went = m["where_the_time_went"]
        # 0.3 s of its CPU phase and 0.4 s of its sleep were sampled (7 intervals)
        self.assertRegex(went, r"^0\.[67]\d? s: ")
        self.assertIn("% sleeping", went)
        self.assertRegex(went, r"% (CPU|runnable)")
        self.assertIn("(8 snapshots)", went)
        # the last look saw it asleep, not waiting for its next event on the Runtime API
        self.assertTrue(m["diagnosis"].startswith("sleeping"), m["diagnosis"])
        self.assertNotIn("127.0.0.1:", went + m["diagnosis"])
        self.assertIn("snapshot", m)

    def test_slow_wait_on_a_peer_says_its_share(self):
        r = self.results["slow_read"]
        self.assertEqual(r.status, "success")
        d = self.final("slow_read")
        self.assertNotIn("cause", d)
        self.assertEqual(d["annotations"]["sampled_by"], "slow")
        m = meta(d)
        went = m["where_the_time_went"]
        p = self.peers
        # "0.7 s: 99% waiting on 127.a.b.c:5432 (PostgreSQL), 1% CPU (8 snapshots)": the
        # waited peer's share comes first (past the 500 ms threshold it only waited), and the
        # pooled Redis connection, answered long before, has none (not even in a look taken
        # after the handler gave up on its peer)
        got = re.match(r"^\d\.\d+ s: (\d+)%% waiting on %s:%d \(PostgreSQL\)" % (re.escape(p.silent_host), PG),
                       went)
        self.assertIsNotNone(got, went)
        self.assertGreaterEqual(int(got.group(1)), 50, went)
        self.assertNotIn(p.pool_host, went)
        self.assertNotIn("Redis", went)
        self.assertGreaterEqual(m["snapshots"], 2)
        # (the last look may catch it waking at its own 1.2 s timeout: not asserted)
        self.assertNotIn("Redis", m["diagnosis"])
        self.assertNotIn("busy", m["diagnosis"])

    def test_documents_are_valid_xray(self):
        verdict = harness.validate_xray(self.docs)
        self.assertEqual((verdict["invalid"], verdict["problems"]), (0, []), verdict)
        self.assertGreater(verdict["documents"], 12)

    def test_summary_counts_the_snapshots(self):
        gens = [dict((k, int(v)) for k, v in (kv.split("=") for kv in l.split("forensics ")[1].split()))
                for l in self.lines if " forensics snapshots=" in l]
        # an extension per timeout (each resets)
        self.assertEqual(len(gens), len([n for n in self.payloads if n not in SLOW]))
        self.assertTrue(all(g["snapshots"] >= 2 for g in gens), gens)
        self.assertEqual(harness.sanitizer_reports(self.lines), [])


class OutOfMemoryAndCrashTest(unittest.TestCase):
    """Out of memory and crashes: not timeouts, but the cause still says what is known.  A
    function that leaks (each warm call keeps what it allocated) then runs out of memory: the
    cause carries the memory trend.  A slow invocation (sampled from LAMBDA_TRACER_SLOW_MS) that
    then crashes: the cause carries the last snapshot's sentence and how long before the end
    it was taken."""

    MEMORY_MB = 256
    GROW_MB = 30

    @classmethod
    def setUpClass(cls):
        cls.root = harness.make_root()
        cls.emu = None
        try:
            cls.emu = harness.new_emulator(cls.root, timeout_s=10, memory_mb=cls.MEMORY_MB,
                                           env={"LAMBDA_TRACER_SLOW_MS": "300"}, lambda_default=True)
            cls.emu.start()
            cls.warm = [cls.emu.invoke(b'{"action":"fast"}')]
            cls.warm += [cls.emu.invoke(json.dumps({"action": "grow", "mb": cls.GROW_MB}).encode())
                         for _ in range(3)]
            cls.oom = cls.emu.invoke(b'{"action":"oom","mb":400}')
            # the reset environment: a warm call, then one that sleeps past the threshold and
            # crashes.  The sampler's 8 snapshots (from 300 ms, every 100 ms) are over by the
            # time it crashes at 1.8 s, so the last one saw it asleep, never the crash itself
            # (a process caught dying is on the CPU, with nothing to say)
            cls.emu.invoke(b'{"action":"fast"}')
            cls.crash = cls.emu.invoke(b'{"action":"crash","signal":"SIGSEGV","after_ms":1800}')
            cls.emu.shutdown()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.lines = harness.output_lines(cls.emu)
        cls.versions = harness.by_request(harness.documents(cls.lines))

    @classmethod
    def tearDownClass(cls):
        if cls.emu is not None:
            cls.emu.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def final(self, r):
        got = [d for d in self.versions.get(r.request_id, []) if not d.get("in_progress")]
        self.assertEqual(len(got), 1, got)
        return got[0]

    def test_out_of_memory_cause_carries_the_memory_trend(self):
        self.assertEqual([r.status for r in self.warm], ["success"] * 4)
        self.assertEqual(self.oom.error_type, "Runtime.OutOfMemory")
        mb = [r.max_memory_used_mb for r in self.warm] + [self.oom.max_memory_used_mb]
        # the leak as the platform measured it (each warm call holds 30 MB more)
        for before, after in zip(mb, mb[1:]):
            self.assertGreater(after, before, mb)
        d = self.final(self.oom)
        self.assertTrue(d["fault"])
        self.assertEqual(d["cause"]["exceptions"][0]["type"], "Runtime.OutOfMemory")
        trend = "max memory used by the last 5 invocations: %s MB (growing steadily: a leak?)" % (
            ", ".join(str(x) for x in mb))
        first = cause_message(d).split("\n")[0]
        self.assertTrue(first.startswith("Out of memory: %d MB used of %d MB; %s" % (
            self.oom.max_memory_used_mb, self.MEMORY_MB, trend)), first)
        self.assertEqual(meta(d)["memory_trend"], trend)
        self.assertEqual(d["annotations"]["sampled_by"], "outcome")
        # the warm calls' own segments carry no trend (they did not fail); with Lambda's
        # default sampling only the cold start is sure to be exported, but the others' reports
        # fed the trend all the same
        self.assertEqual(self.final(self.warm[0])["annotations"]["sampled_by"], "cold_start")
        for r in self.warm:
            for d in self.versions.get(r.request_id, []):
                self.assertNotIn("memory_trend", meta(d))
                self.assertNotIn("cause", d)

    def test_crash_after_slow_start_carries_the_last_snapshot(self):
        self.assertEqual((self.crash.error_type, self.crash.exit_signal), ("Runtime.ExitError", "SIGSEGV"))
        d = self.final(self.crash)
        m = meta(d)
        self.assertEqual(d["annotations"]["sampled_by"], "outcome")
        self.assertEqual(d["cause"]["exceptions"][0]["type"], "Runtime.ExitError")
        self.assertTrue(m["diagnosis"].startswith("sleeping"), m["diagnosis"])
        first = cause_message(d).split("\n")[0]
        # "<platform text>; max memory used by the last 2 invocations: ...; last snapshot,
        # 0.1 s before the end: sleeping ..."
        got = re.search(r"; last snapshot, (\d+\.\d) s before the end: (.*)$", first)
        self.assertIsNotNone(got, first)
        self.assertEqual(got.group(2), m["diagnosis"])
        # taken while it slept (the last of the sampler's 8, at 1.0 s or later, of 1.8 s)
        self.assertLessEqual(float(got.group(1)), 0.9)
        self.assertEqual(m["snapshots"], 8)
        end_us = round(d["end_time"] * 1e6)
        self.assertAlmostEqual((end_us - m["snapshot"]["taken_us"]) / 1e6, float(got.group(1)), delta=0.051)
        self.assertIn("max memory used by the last 2 invocations: ", first)
        self.assertIn("memory_trend", m)
        self.assertEqual(m["snapshot"]["procs"][0]["comm"][:6], "python")

    def test_clean(self):
        self.assertEqual(harness.sanitizer_reports(self.lines), [])


NODE_BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_stuck", "bootstrap.js")


@unittest.skipUnless(shutil.which("node"), "node missing")
class NodeForensicsTest(unittest.TestCase):
    """A second real runtime: a Node.js handler waits for the answer of a server that accepts
    and never answers.  Node waits in epoll_wait on its event loop, never in a read on the
    socket: the sockets' send and receive times carry the diagnosis, and they must name the
    silent peer, not the idle pooled connection beside it nor the Runtime API."""

    def test_socket_wait_in_epoll_names_the_peer(self):
        peers = Peers()
        self.addCleanup(peers.close)
        root = harness.make_root()
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root, timeout_s=TIMEOUT_S, lambda_default=True,
                                   runtime=["node", NODE_BOOTSTRAP])
        self.addCleanup(emu.close)
        emu.start()
        self.assertEqual(emu.invoke(b'{"action":"fast"}').status, "success")
        pid = emu.runtime_pid()
        r = emu.invoke(json.dumps({"action": "read", "host": peers.silent_host, "port": PG,
                                   "pool_host": peers.pool_host, "pool_port": REDIS}).encode())
        emu.shutdown()
        lines = harness.output_lines(emu)
        self.assertEqual(r.status, "timeout")
        got = [d for d in harness.by_request(harness.documents(lines))[r.request_id] if not d.get("in_progress")]
        self.assertEqual(len(got), 1)
        d = got[0]
        m = meta(d)
        sentence = m["diagnosis"]
        self.assertEqual(d["annotations"]["sampled_by"], "outcome")
        self.assertEqual(cause_message(d).split("\n")[0],
                         "Task timed out after %.2f seconds: %s" % (TIMEOUT_S, sentence))
        self.assertIn("for an answer from %s:%d (PostgreSQL, established)" % (peers.silent_host, PG), sentence)
        self.assertIn("epoll_wait", sentence)
        self.assertNotIn(peers.pool_host, sentence)
        self.assertNotIn(str(REDIS), sentence)
        snap = m["snapshot"]
        self.assertEqual(snap["procs"][0]["pid"], pid)
        self.assertEqual(snap["procs"][0]["comm"], "node")
        # the main thread sits in epoll_wait (epoll_pwait on some builds), not in a read
        main = [t for t in threads(snap) if t["tid"] == pid][0]
        self.assertIn(main.get("syscall"), ("epoll_wait", "epoll_pwait", "epoll_pwait2"))
        by_peer = {s.get("peer"): s for s in sockets(snap)}
        silent = by_peer["%s:%d" % (peers.silent_host, PG)]
        self.assertEqual((silent["service"], silent["state"]), ("PostgreSQL", "established"))
        # sent during this invocation (nothing ever received: the receive age is the
        # connection's), like the pool's ping, which was sent earlier and answered in the same
        # clock tick (equal ages): the older request is not the one waited on
        pool = by_peer["%s:%d" % (peers.pool_host, REDIS)]
        self.assertGreaterEqual(silent["last_recv_ms"], silent["last_send_ms"])
        self.assertEqual(pool["state"], "established")
        self.assertGreaterEqual(pool["last_send_ms"], silent["last_send_ms"])
        self.assertEqual(harness.sanitizer_reports(lines), [])


class OtlpForensicsTest(unittest.TestCase):
    """On OTLP: the diagnosis as span attributes, the snapshot as a span event whose
    attribute holds its JSON; decoded independently (protobufjs)."""

    def test_timeout_span_carries_diagnosis_and_snapshot_event(self):
        import sinks
        sink = sinks.OtlpSink()
        root = harness.make_root()
        emu = harness.new_emulator(root, timeout_s=TIMEOUT_S, lambda_default=True, env={
            "LAMBDA_TRACER_EXPORTERS": "otlp", "LAMBDA_TRACER_OTLP_ENDPOINT": sink.endpoint + "/v1/traces"})
        try:
            emu.start()
            emu.invoke(b'{"action":"fast"}')
            r = emu.invoke(b'{"action":"sleep","ms":10000}')
            lines = harness.output_lines(emu)
            spans = []
            for _, body, _ in list(sink.bodies):
                for rs in harness.otlp_decode(body)["resourceSpans"]:
                    for ss in rs["scopeSpans"]:
                        spans += [sp for sp in ss["spans"] if sp["kind"] == 2]
        finally:
            emu.close()
            sink.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(r.status, "timeout")
        mine = [sp for sp in spans if {"key": "faas.invocation_id", "value": {"stringValue": r.request_id}}
                in sp["attributes"]]
        self.assertEqual(len(mine), 1, spans)
        sp = mine[0]
        attrs = {a["key"]: a["value"] for a in sp["attributes"]}
        sentence = attrs["lambda_tracer.diagnosis"]["stringValue"]
        self.assertTrue(sentence.startswith("sleeping"), sentence)
        # the default threshold (half the budget): the CPU from 1 s to 1.7 s
        self.assertRegex(sentence, r"; \d\.\d\d s of CPU in the last 0\.[4-8]\d s$")
        self.assertIn("one invocation at a time", attrs["lambda_tracer.snapshot.scope"]["stringValue"])
        self.assertGreater(int(attrs["lambda_tracer.snapshots"]["intValue"]), 1)
        events = {e["name"]: e for e in sp["events"]}
        self.assertEqual({a["key"]: a["value"] for a in events["exception"]["attributes"]}
                         ["exception.message"]["stringValue"].split("\n")[0],
                         "Task timed out after %.2f seconds: %s" % (TIMEOUT_S, sentence))
        ev = events["lambda_tracer.snapshot"]
        snap = json.loads(ev["attributes"][0]["value"]["stringValue"])
        self.assertEqual(ev["attributes"][0]["key"], "lambda_tracer.snapshot")
        self.assertEqual(int(ev["timeUnixNano"]) // 1000, snap["taken_us"])
        self.assertIn(snap["procs"][0]["threads"][0]["syscall"], ("clock_nanosleep", "nanosleep"))
        self.assertEqual(harness.sanitizer_reports(lines), [])


class FastInvocationsTest(unittest.TestCase):
    """Fast invocations pay nothing: not one snapshot, the runtime not even looked for."""

    def test_no_snapshot_for_fast_invocations(self):
        root = harness.make_root()
        # every invocation exported (LAMBDA_TRACER_SAMPLING=all, not Lambda's default): the
        # check that no document carries a snapshot must see all six, and the default sample
        # would leave most of these fast ones out
        emu = harness.new_emulator(root, timeout_s=TIMEOUT_S)
        try:
            emu.start()
            rs = [emu.invoke(b'{"action":"fast"}') for _ in range(5)]
            rs.append(emu.invoke(b'{"action":"slow","ms":300}'))  # under half the budget
            emu.shutdown()
            lines = harness.output_lines(emu)
        finally:
            emu.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual([r.status for r in rs], ["success"] * 6)
        line = [l for l in lines if " forensics snapshots=" in l]
        self.assertEqual(len(line), 1)
        self.assertIn("forensics snapshots=0 failures=0 slow=0 diagnosed=0 runtime_finds=0 ", line[0])
        for d in harness.documents(lines):
            self.assertNotIn("snapshot", meta(d))
            self.assertNotIn("diagnosis", meta(d))


class NoEarlierSnapshotTest(unittest.TestCase):
    """The slow threshold past the timeout: the deadline's look is the only one, and its CPU
    figure says it counts from the process's start."""

    def test_cpu_since_the_process_started(self):
        root = harness.make_root()
        emu = harness.new_emulator(root, timeout_s=TIMEOUT_S, env={"LAMBDA_TRACER_SLOW_MS": "5000"},
                                   lambda_default=True)
        try:
            emu.start()
            emu.invoke(b'{"action":"fast"}')
            r = emu.invoke(b'{"action":"sleep","ms":10000}')
            emu.shutdown()
            lines = harness.output_lines(emu)
        finally:
            emu.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(r.status, "timeout")
        d = [v for v in harness.by_request(harness.documents(lines))[r.request_id] if not v.get("in_progress")][0]
        m = meta(d)
        self.assertEqual(m["snapshots"], 1)
        self.assertTrue(m["diagnosis"].startswith("sleeping"), m["diagnosis"])
        self.assertTrue(m["diagnosis"].endswith(" of CPU used since the process started"), m["diagnosis"])
        self.assertNotIn("in the last", m["diagnosis"])
        self.assertEqual(m["snapshot"]["baseline"], "process_start")
        self.assertNotIn("baseline_taken_us", m["snapshot"])
        self.assertNotIn("rss_start_bytes", m["snapshot"]["procs"][0])
        self.assertEqual(harness.sanitizer_reports(lines), [])


class ManagedInstancesForensicsTest(unittest.TestCase):
    """Managed Instances: no INVOKE, no deadline.  The sampler, timed from platform.start,
    catches the stuck invocation; its timeout's report finds the handler still running; the
    segment says the snapshot is process-wide."""

    def run_mi(self, stuck_payload):
        root = harness.make_root()
        emu = harness.new_emulator(root, timeout_s=TIMEOUT_S, managed_instances=True, max_concurrency=2,
                                   lambda_default=True)
        try:
            emu.start()
            stuck, fast = emu.invoke_many([stuck_payload, b'{"action":"fast"}'])
            # SHUTDOWN would stop the handler that the report's snapshot must still see
            harness.wait_for(lambda: stuck.request_id in harness.by_request(
                [d for d in harness.documents(harness.output_lines(emu)) if not d.get("in_progress")]),
                20, "the stuck invocation's final segment")
            emu.shutdown()
            lines = harness.output_lines(emu)
        finally:
            emu.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual((stuck.status, fast.status), ("timeout", "success"))
        versions = harness.by_request(harness.documents(lines))
        d = [v for v in versions[stuck.request_id] if not v.get("in_progress")][0]
        self.assertIn("process-wide", meta(d)["snapshot_scope"])
        return d, fast, versions, lines

    def test_sleeping_handler_not_the_idle_worker(self):
        # the other worker waits for its next event on the Runtime API: not the function
        d, _, _, lines = self.run_mi(b'{"action":"sleep","ms":4000}')
        m = meta(d)
        self.assertTrue(m["diagnosis"].startswith("sleeping"), m["diagnosis"])
        self.assertIn("seconds: sleeping", cause_message(d).split("\n")[0])
        self.assertEqual(harness.sanitizer_reports(lines), [])

    def test_stuck_invocation_among_concurrent_ones(self):
        d, fast, versions, lines = self.run_mi(b'{"action":"spin","ms":4000}')
        m = meta(d)
        self.assertTrue(m["diagnosis"].startswith("busy: "), m["diagnosis"])
        self.assertIn(": busy: ", cause_message(d).split("\n")[0])
        # the sampler (from 1 s, every 100 ms, at most 8) and one more at the report
        self.assertGreaterEqual(m["snapshots"], 2)
        self.assertLessEqual(m["snapshots"], 9)
        f = [v for v in versions[fast.request_id] if not v.get("in_progress")][0]
        self.assertNotIn("snapshot", meta(f))
        self.assertEqual(harness.sanitizer_reports(lines), [])


if __name__ == "__main__":
    unittest.main()
