"""viewer/traces.py: every input form a user may have, read back to the same
invocations; malformed input skipped and counted, never a crash.

The fixtures (tests/viewer/fixtures, made by make_fixtures.py from one run of
the real extension exporting to stdout and OTLP/JSON at once) hold 7
invocations: ok (cold start, upstream parent), ok, a function error, a
timeout with its forensics, a crash, an out-of-memory kill, ok (cold start)."""
import gzip
import json
import os
import random
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "viewer"))
import page  # noqa: E402
import traces  # noqa: E402
import waterfall  # noqa: E402

FIX = os.path.join(HERE, "fixtures")


def fixture(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as f:
        return f.read()


STEPS = json.loads(fixture("steps.json"))
MARKS = ["OK", "OK", "ERROR", "TIMEOUT", "CRASH", "OOM", "OK"]


def load(text, name="t"):
    return traces.finish(traces.load_text(text, name))


def marks(loaded):
    """[(request id, status mark, is_final)] in order."""
    out = []
    for inv in loaded.invocations:
        doc, _, fin = inv.pick()
        out.append(((doc.get("aws") or {}).get("request_id"), waterfall.status_mark(doc), fin))
    return out


EXPECTED = [(s["request_id"], m, True) for s, m in zip(STEPS, MARKS)]


def cloudwatch_tail(text):
    """Lines as `aws logs tail` prints them, with Lambda's own lines around each invocation."""
    out = []
    stream = "2026/12/02/[$LATEST]c4ccc7243b1d4771a902f9b17227930a"
    for n, line in enumerate(text.splitlines()):
        ts = "2026-12-02T14:41:%02d.%03d000+00:00" % (n % 60, n)
        out.append("%s %s START RequestId: 4fcf174c-55b4-44ae-a0ca-d6812ffd2d08 Version: $LATEST" % (ts, stream))
        out.append("%s %s %s" % (ts, stream, line))
        out.append("%s %s END RequestId: 4fcf174c-55b4-44ae-a0ca-d6812ffd2d08" % (ts, stream))
        out.append("%s %s REPORT RequestId: 4fcf174c Duration: 2.00 ms Billed Duration: 3 ms "
                   "Memory Size: 128 MB Max Memory Used: 32 MB" % (ts, stream))
    return "\n".join(out) + "\n"


def filter_log_events(text):
    """`aws logs filter-log-events` JSON output (messages end with a newline)."""
    events = [{"logStreamName": "2026/12/02/[$LATEST]c4cc", "timestamp": 1796222529000 + n,
               "message": line + "\n", "ingestionTime": 1796222530000 + n, "eventId": str(n)}
              for n, line in enumerate(text.splitlines())]
    return json.dumps({"events": events, "searchedLogStreams": []}, indent=4)


class FixtureFormsTest(unittest.TestCase):
    def test_xray_jsonl(self):
        got = load(fixture("xray.jsonl"))
        self.assertEqual(marks(got), EXPECTED)
        self.assertEqual((got.xray_documents, got.malformed, got.other_lines), (14, 0, 0))
        # each invocation: an in-progress version first, then the final one
        self.assertTrue(all(len(i.versions) == 2 and i.versions[0].get("in_progress") for i in got.invocations))

    def test_otlp_jsonl_gives_the_same_invocations(self):
        got = load(fixture("otlp.jsonl"))
        self.assertEqual(marks(got), EXPECTED)
        self.assertEqual(got.otlp_requests, 7)
        self.assertEqual(got.malformed, 0)
        xray = load(fixture("xray.jsonl"))
        for a, b in zip(got.invocations, xray.invocations):
            da, db = a.pick()[0], b.pick()[0]
            self.assertEqual(da["trace_id"], db["trace_id"])
            self.assertEqual([n.get("name") for _, n in waterfall.rows(da)],
                             [n.get("name") for _, n in waterfall.rows(db)])
            self.assertAlmostEqual(da["start_time"], db["start_time"], places=3)
            self.assertEqual(waterfall.cause(da), waterfall.cause(db))
            for k in ("cold_start", "status", "billed_duration_ms", "max_memory_used_mb"):
                self.assertEqual(da["annotations"].get(k), db["annotations"].get(k), k)
        # the function's own error is an error, the platform's failures faults
        fe = got.invocations[2].pick()[0]
        self.assertTrue(fe.get("error") and not fe.get("fault"))
        self.assertTrue(all(i.pick()[0].get("fault") for i in got.invocations[3:6]))
        # the upstream caller is the segment's parent, the resource under metadata
        first = got.invocations[0].pick()[0]
        self.assertEqual(first["parent_id"], "53995c3f42cd8ad8")
        self.assertEqual(first["metadata"]["otlp"]["resource"]["faas.name"], "demo-fn")

    def test_pretty_printed_otlp_request(self):
        reqs = [json.loads(line) for line in fixture("otlp.jsonl").splitlines()]
        text = "\n".join(json.dumps(r, indent=2) for r in reqs)
        self.assertEqual(marks(load(text)), EXPECTED)

    def test_extension_output_mixed_with_its_log_lines(self):
        got = load(fixture("extension.out"))
        self.assertEqual(marks(got), EXPECTED)
        self.assertEqual(got.malformed, 0)
        self.assertEqual(got.other_lines, sum(1 for line in fixture("extension.out").splitlines()
                                              if not line.startswith("{")))

    def test_aws_logs_tail_text(self):
        got = load(cloudwatch_tail(fixture("extension.out")))
        self.assertEqual(marks(got), EXPECTED)
        self.assertEqual(got.malformed, 0)
        n = len(fixture("extension.out").splitlines())
        self.assertEqual(got.other_lines, 3 * n + sum(1 for line in fixture("extension.out").splitlines()
                                                      if not line.startswith("{")))

    def test_filter_log_events_json_and_get_log_events(self):
        got = load(filter_log_events(fixture("extension.out")))
        self.assertEqual(marks(got), EXPECTED)
        self.assertEqual(got.malformed, 0)
        one_line = json.dumps(json.loads(filter_log_events(fixture("xray.jsonl"))))
        self.assertEqual(marks(load(one_line)), EXPECTED)

    def test_filter_log_events_text_output(self):
        # --output text: EVENTS <eventId> <ingestionTime> <stream> <message> <timestamp>
        lines = ["EVENTS\t%d\t1796222530000\t2026/12/02/[$LATEST]c4cc\t%s\t1796222529000" % (n, line)
                 for n, line in enumerate(fixture("xray.jsonl").splitlines())]
        self.assertEqual(marks(load("\n".join(lines))), EXPECTED)

    def test_logs_insights_results_and_json_log_wrapper(self):
        rows = [[{"field": "@timestamp", "value": "2026-12-02 14:41:00.000"},
                 {"field": "@message", "value": line}] for line in fixture("xray.jsonl").splitlines()]
        self.assertEqual(marks(load(json.dumps({"results": rows, "status": "Complete"}))), EXPECTED)
        wrapped = "\n".join(json.dumps({"timestamp": "2026-12-02T14:41:00Z", "level": "INFO", "message": line})
                            for line in fixture("xray.jsonl").splitlines())
        self.assertEqual(marks(load(wrapped)), EXPECTED)

    def test_xray_batch_get_traces(self):
        docs = [json.loads(line) for line in fixture("xray.jsonl").splitlines()]
        finals = [d for d in docs if not d.get("in_progress")]
        out = {"Traces": [{"Id": d["trace_id"], "Duration": 0.1,
                           "Segments": [{"Id": d["id"], "Document": json.dumps(d)}]} for d in finals]}
        self.assertEqual(marks(load(json.dumps(out))), EXPECTED)

    def test_json_array_of_documents_and_several_files(self):
        docs = [json.loads(line) for line in fixture("xray.jsonl").splitlines()]
        self.assertEqual(marks(load(json.dumps(docs))), EXPECTED)
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: [os.remove(os.path.join(d, f)) for f in os.listdir(d)] and os.rmdir(d))
        a, b = os.path.join(d, "a.jsonl"), os.path.join(d, "b.jsonl.gz")
        lines = fixture("xray.jsonl").splitlines()
        with open(a, "w") as f:
            f.write("\n".join(lines[:7]) + "\n")
        with gzip.open(b, "wt") as f:
            f.write("\n".join(lines[7:]) + "\n")
        self.assertEqual(marks(traces.load([a, b])), EXPECTED)

    def test_in_progress_only_and_order_by_start(self):
        lines = fixture("xray.jsonl").splitlines()
        opened = [line for line in lines if json.loads(line).get("in_progress")]
        got = load("\n".join(reversed(opened)))
        self.assertEqual([r for r, _, _ in marks(got)], [s["request_id"] for s in STEPS])
        self.assertTrue(all(not fin for _, _, fin in marks(got)))


def mutate(line, rng):
    """A damaged copy of a document line: cut, a byte flipped, a field retyped."""
    how = rng.randrange(5)
    if how == 0:
        return line[:rng.randrange(1, len(line))]
    if how == 1:
        i = rng.randrange(len(line))
        return line[:i] + rng.choice('{}[]",:\\x\x00') + line[i + 1:]
    doc = json.loads(line)
    if rng.random() < 0.2:
        doc["aws"] = {"request_id": rng.choice([5, None, ["x"], {"a": 1}, True])}
    key = rng.choice(["start_time", "end_time", "id", "trace_id", "subsegments", "cause", "annotations",
                      "name", "resourceSpans", "aws", "in_progress"])
    doc[key] = rng.choice([None, "x", -1, 1e308, [], {}, [1, "a", None], {"exceptions": "no"}, True])
    return json.dumps(doc)


class MalformedTest(unittest.TestCase):
    def test_truncated_and_garbage_lines_are_counted(self):
        lines = fixture("xray.jsonl").splitlines()
        bad = [lines[2][:30], lines[1][:-1], '{"trace_id": "1-x", "id": 3, "start_time": 1}',
               '{"name":"x","id":"a","trace_id":"1-a","start_time":"yesterday","end_time":2}',
               '{"name":"x","id":"a","trace_id":"1-a","start_time":1}',   # neither end nor in_progress
               '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"1"}]}]}]}']
        got = load("\n".join(lines[:1] + lines[3:] + bad + ["START RequestId: x", "", "[lambda-tracer] INFO ok {", "{not json"]))
        self.assertEqual(got.malformed, len(bad))
        self.assertEqual(got.other_lines, 3)            # START, the log line, "{not json": no document there
        self.assertEqual(len(got.invocations), 7)
        self.assertFalse(got.invocations[0].pick()[2])   # its final version was the damaged line
        self.assertEqual(len(got.problems), len(bad))
        self.assertTrue(any("start_time" in why for _, why in got.problems))
        self.assertTrue(all(where.startswith("t:") for where, _ in got.problems))

    def test_hostile_values_never_crash(self):
        rng = random.Random(15)
        lines = fixture("xray.jsonl").splitlines() + fixture("otlp.jsonl").splitlines()
        for _ in range(400):
            text = "\n".join(mutate(rng.choice(lines), rng) for _ in range(rng.randrange(1, 6)))
            got = load(text)
            for inv in got.invocations:       # whatever was kept can be drawn
                waterfall.render(inv.versions, subsegment_docs=inv.subsegment_docs)
            page.render_page(got)

    def test_deep_nesting_and_odd_json(self):
        deep = '{"name":"a","id":"1","trace_id":"1-a","start_time":1,"end_time":2,"subsegments":' \
            + '[{"name":"b","id":"2","start_time":1,"end_time":2,"subsegments":' * 200 + '[]' + '}]' * 200 + '}'
        got = load(deep)
        self.assertEqual(len(got.invocations), 1)
        self.assertEqual(got.malformed, 1)              # the part past MAX_DEPTH, counted
        depth = max(d for d, _ in waterfall.rows(got.invocations[0].pick()[0]))
        self.assertEqual(depth, traces.MAX_DEPTH)
        for text in ("[" * 100000, '{"a":' * 50000, "\x00\xff\ufffd", "null", "[]", "{}", "1e999",
                     '{"trace_id": NaN, "id": "a", "start_time": Infinity}', '"just a string"',
                     '{"events": "no"}', '{"Traces": [1, {"Segments": [null, {"Document": 5}]}]}'):
            got = load(text)
            self.assertEqual(got.invocations, [])

    def test_otlp_damaged_spans_skipped_rest_kept(self):
        req = json.loads(fixture("otlp.jsonl").splitlines()[3])
        spans = req["resourceSpans"][0]["scopeSpans"][0]["spans"]
        spans.append({"traceId": spans[0]["traceId"], "spanId": "nothex!!nothex!!", "name": "bad",
                      "startTimeUnixNano": "1"})
        spans.append({"traceId": spans[0]["traceId"], "spanId": "00000000000000aa", "name": "bad",
                      "startTimeUnixNano": "-5"})
        spans.append("not a span")
        got = load(json.dumps(req))
        self.assertEqual(got.malformed, 3)
        self.assertEqual(marks(got), [EXPECTED[3]])

    def test_otlp_orphan_child_becomes_its_own_root_and_cycles_end(self):
        t = "0af7651916cd43dd8448eb211c80319c"
        spans = [{"traceId": t, "spanId": "b7ad6b7169203331", "parentSpanId": "ffffffffffffffff", "name": "lost",
                  "startTimeUnixNano": "1000000000", "endTimeUnixNano": "2000000000"},
                 {"traceId": t, "spanId": "00000000000000a1", "parentSpanId": "00000000000000a2", "name": "x",
                  "startTimeUnixNano": "1000000000", "endTimeUnixNano": "2000000000"},
                 {"traceId": t, "spanId": "00000000000000a2", "parentSpanId": "00000000000000a1", "name": "y",
                  "startTimeUnixNano": "1000000000", "endTimeUnixNano": "2000000000"}]
        got = load(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
        self.assertEqual([i.pick()[0]["name"] for i in got.invocations], ["lost"])   # the cycle has no root

    def test_independent_subsegments_hang_on_their_segment(self):
        seg = {"name": "fn", "id": "aaaaaaaaaaaaaaaa", "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
               "start_time": 10.0, "end_time": 11.0}
        sub = {"name": "extra", "id": "bbbbbbbbbbbbbbbb", "trace_id": seg["trace_id"], "parent_id": seg["id"],
               "type": "subsegment", "start_time": 10.1, "end_time": 10.2}
        orphan = dict(sub, trace_id="1-5759e988-000000000000000000000000", id="cccccccccccccccc")
        got = load("\n".join(json.dumps(d) for d in (sub, seg, orphan)))
        self.assertEqual(len(got.invocations), 1)
        self.assertEqual(got.orphans, 1)
        merged = waterfall.merge_independent(got.invocations[0].pick()[0], got.invocations[0].subsegment_docs)
        self.assertEqual([n["name"] for _, n in waterfall.rows(merged)], ["fn", "extra"])


if __name__ == "__main__":
    unittest.main()
