"""The viewer's fixtures (real exported documents, make_fixtures.py) are
consistent trees: no child starts before or ends after its parent, in the
X-Ray documents and in the OTLP requests (README "Read your traces").  The
same check the integration harness runs on every document it collects."""
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# appended, not first: tests/integration has modules named like this suite's (test_traces)
sys.path.append(os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

FIXTURES = os.path.join(HERE, "fixtures")


def lines(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return [json.loads(l) for l in f if l.strip()]


class FixtureContainmentTest(unittest.TestCase):
    def test_xray_documents(self):
        docs = lines("xray.jsonl")
        self.assertTrue(docs)
        self.assertTrue(any("Initialization" in harness.subsegment_names(d) for d in docs))
        self.assertEqual([v for d in docs for v in harness.tree_violations(d)], [])

    def test_otlp_requests(self):
        reqs = lines("otlp.jsonl")
        self.assertTrue(reqs)
        self.assertEqual([v for r in reqs for v in harness.otlp_tree_violations(r)], [])

    def test_the_check_sees_a_child_outside(self):
        doc = {"name": "f", "start_time": 10.0, "end_time": 11.0,
               "subsegments": [{"name": "a", "start_time": 9.5, "end_time": 10.5,
                                "subsegments": [{"name": "b", "start_time": 10.0, "end_time": 10.6}]},
                               {"name": "open", "start_time": 10.2, "in_progress": True}]}
        bad = harness.tree_violations(doc)
        self.assertEqual(len(bad), 2, bad)
        self.assertIn("f/a starts", bad[0])
        self.assertIn("f/a/b ends", bad[1])
        with self.assertRaises(AssertionError):
            harness.check_trees([doc])
        req = {"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "t", "spanId": "p", "name": "p", "startTimeUnixNano": "100", "endTimeUnixNano": "200"},
            {"traceId": "t", "spanId": "c", "parentSpanId": "p", "name": "c",
             "startTimeUnixNano": "150", "endTimeUnixNano": "201"},
            {"traceId": "t", "spanId": "u", "parentSpanId": "upstream", "name": "u",
             "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
        self.assertEqual(harness.otlp_tree_violations(req), ["c ends 1 ns after p"])


if __name__ == "__main__":
    unittest.main()
