"""Sampling decided after the outcome (issue 11, part 1), with Lambda's defaults: PassThrough
tracing (the emulator stamps Sampled=0 on every call that brings no header) and no sampling
setting.  Every failed, cold, slow and Sampled=1 invocation is exported, with its sampled_by;
of the rest the first of each second (reservoir) and those whose trace id falls in the 5 %
(ratio).  The ratio is a function of the trace id, so every decision is predicted exactly."""
import math
import re
import shutil
import unittest

import harness

SAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
RATIO_PPM = 50000
FAST_COUNT = 300
SKIP_LINE = "not exported:"


def in_ratio(header):
    root = dict(p.split("=", 1) for p in header.split(";"))["Root"]
    return int(root[-8:], 16) * 1000000 < RATIO_PPM * 2 ** 32


def header_parts(header):
    return dict(p.split("=", 1) for p in header.split(";"))


def binomial_upper(n, p, alpha=1e-9):
    """Smallest k with P(X > k) < alpha for X ~ Binomial(n, p): a bound a correct
    implementation exceeds by chance less than once in a billion runs."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p ** k * (1 - p) ** (n - k)
        if 1.0 - total < alpha:
            return k
    return n


class DefaultSamplingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = harness.make_root()
        cls.emu = harness.new_emulator(cls.root, lambda_default=True, timeout_s=3)
        e = cls.emu
        e.start()
        cls.cold = e.invoke(payload=b'{"action":"fast"}')
        cls.fast = e.invoke_many([b'{"action":"fast"}'] * FAST_COUNT, timeout=600)
        cls.sampled = e.invoke(payload=b'{"action":"fast"}', trace_header=SAMPLED)
        cls.slow = e.invoke(payload=b'{"action":"slow","ms":1900}')
        cls.fnerr = e.invoke(payload=b'{"action":"error","type":"Function.MyError","message":"boom"}')
        cls.timeout = e.invoke(payload=b'{"action":"sleep","ms":10000}')
        cls.reinit = e.invoke(payload=b'{"action":"fast"}')
        cls.crash = e.invoke(payload=b'{"action":"crash","code":3}')
        cls.after_crash = e.invoke(payload=b'{"action":"fast"}')
        cls.sd = e.shutdown(reason="spindown")
        cls.lines = harness.output_lines(e)
        cls.docs = harness.documents(cls.lines)
        cls.segs = harness.by_request(cls.docs)

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def final(self, result):
        versions = self.segs.get(result.request_id)
        self.assertTrue(versions, "no segment for %s" % result.request_id)
        self.assertNotIn("in_progress", versions[-1])
        return versions[-1]

    def reason(self, doc):
        return doc.get("annotations", {}).get("sampled_by")

    def predicted(self):
        """{request_id: "reservoir" | "ratio" | None} for the fast batch, in start order."""
        starts = []
        slow = set()
        for r in self.fast:
            rec = harness.record(self.emu, "platform.start", r.request_id)
            self.assertIsNotNone(rec, r.request_id)
            t = harness.iso_to_s(rec["time"])
            starts.append((t, r.request_id))
            # a "fast" one the loaded machine made slow (over half its budget) is kept as such
            if r.duration_ms / 1000 > (r.deadline_ms / 1000 - t) / 2:
                slow.add(r.request_id)
        starts.sort()
        last_second = None
        out = {}
        for t, rid in starts:
            second = math.floor(t + 1e-7)
            if rid in slow:
                out[rid] = "slow"
            elif last_second is None or second > last_second:
                last_second = second
                out[rid] = "reservoir"
            elif in_ratio(self.emu.trace_header_of(rid)):
                out[rid] = "ratio"
            else:
                out[rid] = None
        return out, starts

    def test_the_emulator_ran_with_lambdas_default_header(self):
        for r in [self.cold] + self.fast + [self.fnerr, self.timeout, self.crash]:
            h = header_parts(self.emu.trace_header_of(r.request_id))
            self.assertEqual(h["Sampled"], "0")
            self.assertRegex(h["Root"], r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
            self.assertRegex(h["Parent"], r"^[0-9a-f]{16}$")
        self.assertEqual(self.emu.trace_header_of(self.sampled.request_id), SAMPLED)
        for r in self.fast:
            self.assertEqual(r.status, "success")
            self.assertGreater(r.deadline_ms, 0)

    def test_failures_are_always_exported_by_outcome(self):
        self.assertEqual(self.fnerr.status, "error")
        self.assertEqual(self.timeout.status, "timeout")
        self.assertEqual(self.crash.error_type, "Runtime.ExitError")
        for r in (self.fnerr, self.timeout, self.crash):
            d = self.final(r)
            self.assertEqual(self.reason(d), "outcome", r.request_id)
            self.assertTrue(d.get("fault") or d.get("error"))

    def test_the_timeout_has_an_in_progress_version_kept_by_outcome(self):
        versions = self.segs[self.timeout.request_id]
        self.assertEqual(len(versions), 2)
        self.assertTrue(versions[0].get("in_progress"))
        self.assertEqual(self.reason(versions[0]), "outcome")
        self.assertTrue(versions[0]["annotations"].get("timing_out"))
        self.assertEqual(versions[0]["id"], versions[1]["id"])

    def test_cold_starts_are_exported(self):
        for r in (self.cold, self.reinit, self.after_crash):
            self.assertEqual(self.reason(self.final(r)), "cold_start", r.request_id)
            self.assertTrue(self.final(r)["annotations"]["cold_start"])

    def test_slow_is_exported(self):
        self.assertEqual(self.slow.status, "success")
        self.assertEqual(self.reason(self.final(self.slow)), "slow")

    def test_sampled_one_is_exported_as_a_child_of_its_parent(self):
        d = self.final(self.sampled)
        self.assertEqual(self.reason(d), "header")
        self.assertEqual(d["trace_id"], "1-5759e988-bd862e3fe1be46a994272793")
        self.assertEqual(d["parent_id"], "53995c3f42cd8ad8")

    def test_kept_sampled_zero_joins_its_root_as_a_root_segment(self):
        for r in (self.cold, self.fnerr, self.timeout):
            h = header_parts(self.emu.trace_header_of(r.request_id))
            for d in self.segs[r.request_id]:
                self.assertEqual(d["trace_id"], h["Root"])
                self.assertNotIn("parent_id", d)
                self.assertEqual(d["metadata"]["lambda_tracer"]["upstream_parent_id"], h["Parent"])

    def test_reservoir_and_ratio_are_exact(self):
        want, starts = self.predicted()
        got = {r.request_id: (self.reason(self.final(r)) if r.request_id in self.segs else None)
               for r in self.fast}
        self.assertEqual(got, want)
        # the reservoir: exactly one per second that had an invocation
        seconds = {math.floor(t + 1e-7) for t, _ in starts}
        reservoir = [rid for rid, why in got.items() if why == "reservoir"]
        self.assertEqual(len(reservoir), len(seconds))
        # and a band no correct implementation leaves by chance (p < 1e-9), whatever ids came
        ratio = sum(1 for why in got.values() if why == "ratio")
        candidates = FAST_COUNT - len(reservoir)
        self.assertLessEqual(ratio, binomial_upper(candidates, RATIO_PPM / 1e6))
        self.assertGreater(candidates - ratio, FAST_COUNT // 2, "most fast invocations are left out")

    def test_the_first_skip_is_logged_once_and_the_rest_counted(self):
        want, starts = self.predicted()
        skips = [l for l in self.lines if SKIP_LINE in l]
        self.assertEqual(len(skips), 1, skips)
        first_dropped = next(rid for _, rid in starts if want[rid] is None)
        self.assertIn("invocation %s not exported" % first_dropped, skips[0])
        self.assertIn("LAMBDA_TRACER_SAMPLING=all", skips[0])
        # one summary per process (the timeout and the crash each reset the sandbox)
        summaries = [s[1] for s in harness.shutdowns(self.lines)]
        self.assertEqual(len(summaries), 3)
        dropped = sum(1 for why in want.values() if why is None)
        self.assertIn("dropped=%d " % dropped, summaries[0])
        self.assertIn("dropped=0 ", summaries[1])
        self.assertIn("dropped=0 ", summaries[2])
        counts = {}
        for s in summaries:
            for k, v in re.findall(r"\bsampled_by_(\w+)=(\d+)", s):
                counts[k] = counts.get(k, 0) + int(v)
        self.assertEqual(counts.pop("unknown"), 0)
        self.assertEqual(set(counts), {"outcome", "cold_start", "slow", "header", "reservoir", "ratio", "all"})
        reasons = [self.reason(self.final(r)) for r in self.fast + [self.cold, self.sampled, self.slow,
                   self.fnerr, self.timeout, self.reinit, self.crash, self.after_crash]
                   if r.request_id in self.segs]
        for k, v in counts.items():
            self.assertEqual(int(v), reasons.count(k), k)

    def test_no_sanitizer_reports(self):
        self.assertEqual(harness.sanitizer_reports(self.lines), [])


class ManagedInstancesDefaultTest(unittest.TestCase):
    """Managed Instances with Lambda's defaults: no INVOKE, so no deadline; the slow threshold
    is 1,000 ms.  The Sampled=0 header reaches no telemetry record there, so the extension
    starts its own traces and draws the sample from them."""

    @classmethod
    def setUpClass(cls):
        cls.root = harness.make_root()
        cls.emu = harness.new_emulator(cls.root, lambda_default=True, managed_instances=True,
                                       max_concurrency=2, timeout_s=3)
        e = cls.emu
        e.start()
        cls.fast = e.invoke_many([b'{"action":"fast"}'] * 30)
        cls.slow, cls.not_slow, cls.err = e.invoke_many(
            [b'{"action":"slow","ms":1300}', b'{"action":"slow","ms":500}',
             b'{"action":"error","type":"Function.MyError","message":"boom"}'])
        cls.sampled = e.invoke(payload=b'{"action":"fast"}', trace_header=SAMPLED)
        cls.sd = e.shutdown(reason="spindown")
        cls.lines = harness.output_lines(e)
        cls.segs = harness.by_request(harness.documents(cls.lines))

    @classmethod
    def tearDownClass(cls):
        cls.emu.close()
        shutil.rmtree(cls.root, ignore_errors=True)

    def reason(self, r):
        versions = self.segs.get(r.request_id)
        return versions[-1]["annotations"]["sampled_by"] if versions else None

    def test_failures_slow_and_sampled_are_kept(self):
        self.assertEqual(self.reason(self.err), "outcome")
        self.assertEqual(self.reason(self.slow), "slow")        # over 1,000 ms: no deadline known
        self.assertEqual(self.reason(self.sampled), "header")
        self.assertIn(self.reason(self.not_slow), (None, "reservoir", "ratio", "cold_start"))

    def test_the_rest_is_sampled_one_per_second_plus_ratio(self):
        reasons = [self.reason(r) for r in self.fast]
        self.assertTrue(set(reasons) <= {None, "reservoir", "ratio", "cold_start"}, reasons)
        self.assertLessEqual(reasons.count("cold_start"), 1)
        seconds = []
        for r in self.fast:
            d = self.segs.get(r.request_id, [None])[-1]
            if d is not None and d["annotations"]["sampled_by"] == "ratio":
                self.assertTrue(in_ratio("Root=" + d["trace_id"]))
            if d is not None and d["annotations"]["sampled_by"] == "reservoir":
                seconds.append(math.floor(d["start_time"] + 1e-7))
        self.assertEqual(len(seconds), len(set(seconds)), "one reservoir per second")
        self.assertIn(None, reasons)  # 30 fast calls in a few seconds: some are left out
        self.assertEqual(len([l for l in self.lines if SKIP_LINE in l]), 1)
        self.assertEqual(harness.sanitizer_reports(self.lines), [])


class HeaderAndAliasTest(unittest.TestCase):
    """LAMBDA_TRACER_SAMPLING=header is the old behaviour (Sampled=0 dropped, failures too);
    the deprecated LAMBDA_TRACER_TRACE_UNSAMPLED=true means all, with one log line."""

    def run_with(self, env):
        root = harness.make_root()
        emu = harness.new_emulator(root, lambda_default=True, env=env)
        try:
            emu.start()
            results = [emu.invoke(payload=b'{"action":"fast"}'),
                       emu.invoke(payload=b'{"action":"error","type":"Function.MyError","message":"x"}'),
                       emu.invoke(payload=b'{"action":"fast"}'),
                       emu.invoke(payload=b'{"action":"fast"}', trace_header=SAMPLED)]
            emu.shutdown(reason="spindown")
            lines = harness.output_lines(emu)
        finally:
            emu.close()
            shutil.rmtree(root, ignore_errors=True)
        self.assertEqual(harness.sanitizer_reports(lines), [])
        return results, lines, harness.by_request(harness.documents(lines))

    def test_header_only_drops_every_sampled_zero(self):
        results, lines, segs = self.run_with({"LAMBDA_TRACER_SAMPLING": "header"})
        self.assertEqual([r.request_id in segs for r in results], [False, False, False, True])
        skips = [l for l in lines if SKIP_LINE in l]
        self.assertEqual(len(skips), 1)
        self.assertIn("invocation %s not exported" % results[0].request_id, skips[0])
        self.assertIn("Sampled=0", skips[0])
        self.assertIn("dropped=3 ", harness.shutdowns(lines)[0][1])

    def test_deprecated_alias_means_all(self):
        results, lines, segs = self.run_with({"LAMBDA_TRACER_TRACE_UNSAMPLED": "true"})
        self.assertTrue(all(r.request_id in segs for r in results))
        self.assertEqual([segs[r.request_id][-1]["annotations"]["sampled_by"] for r in results],
                         ["cold_start", "outcome", "all", "header"])
        self.assertEqual(len([l for l in lines if "LAMBDA_TRACER_TRACE_UNSAMPLED is deprecated" in l]), 1)
        self.assertEqual([l for l in lines if SKIP_LINE in l], [])
        self.assertIn("dropped=0 ", harness.shutdowns(lines)[0][1])


if __name__ == "__main__":
    unittest.main()
