"""The terminal waterfall (viewer/waterfall.py) on hand-made X-Ray
documents: no emulator, no binary."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "viewer"))
import waterfall  # noqa: E402

T = 1700000000.0  # the segment's start
W = 40
ROW = re.compile(r"^  (?P<name>.{%d}) (?P<start>[ \S]{8}) (?P<dur>[ \S]{8})  \|(?P<bar>.{%d})\|(?: (?P<mark>.*))?$"
                 % (waterfall.NAME_WIDTH, W))


def node(name, start_ms, end_ms=None, children=(), **extra):
    n = {"name": name, "id": "%016x" % (abs(hash(name)) % (1 << 64)), "start_time": T + start_ms / 1000}
    if end_ms is None:
        n["in_progress"] = True
    else:
        n["end_time"] = T + end_ms / 1000
    if children:
        n["subsegments"] = list(children)
    n.update(extra)
    return n


def segment(end_ms, children, **extra):
    doc = node("demo-fn", 0, end_ms, children, trace_id="1-5759e988-bd862e3fe1be46a994272793",
               origin="AWS::Lambda::Function",
               aws={"request_id": "2cd6a142-36a6-4193-a35c-7b4a27157516"})
    doc["id"] = "4c5f43cf6ca37bdd"
    doc.update(extra)
    return doc


def init_tree(offset_ms=-80.0):
    return node("Initialization", offset_ms, offset_ms + 78, [
        node("Extension init: lambda-tracer", offset_ms, offset_ms + 20),
        node("Runtime init", offset_ms + 15, offset_ms + 78),
    ])


IN_PROGRESS = segment(None, [init_tree(), node("Invocation", 0)],
                      annotations={"cold_start": True, "init_type": "on-demand", "memory_size_mb": 128,
                                   "timing_out": True, "status": "in_progress"})
FINAL = segment(2000.0, [
    init_tree(),
    node("Invocation", 0, 2000.0),
    node("Overhead", 1999.5, 2000.0, [node("Runtime overhead", 1999.5, 1999.6)]),
], fault=True, cause={"exceptions": [{"id": "dccc0b724c3740bc", "type": "Sandbox.Timedout",
                                       "message": "Task timed out after 2.00 seconds"}]},
    annotations={"cold_start": True, "init_type": "on-demand", "memory_size_mb": 128,
                 "max_memory_used_mb": 60, "billed_duration_ms": 2000, "status": "timeout",
                 "error_type": "Sandbox.Timedout"})


def parse(lines):
    """{row name (stripped): (indent, start, dur, bar, mark)} of the node rows."""
    out = {}
    for line in lines:
        m = ROW.match(line)
        if m and m.group("name").strip() != "node":
            name = m.group("name").rstrip()
            out[name.strip()] = (len(name) - len(name.lstrip()), m.group("start").strip(),
                                 m.group("dur").strip(), m.group("bar"), m.group("mark") or "")
    return out


def span(bar):
    cells = [i for i, c in enumerate(bar) if c not in " /"]
    return (cells[0], cells[-1] + 1) if cells else None


class WaterfallTest(unittest.TestCase):
    def test_final_version_of_a_timed_out_cold_start(self):
        lines = waterfall.render([IN_PROGRESS, FINAL], title="#6 timeout", width=W)
        head = lines[0]
        for part in ("#6 timeout", "2cd6a142", "TIMEOUT", "2000.0 ms", "COLD START (on-demand)",
                     "billed 2000 ms", "mem 60/128 MB", "1 in-progress version sent first, timing_out"):
            self.assertIn(part, head)
        rows = parse(lines)
        self.assertEqual(list(rows), ["demo-fn", "Initialization", "Extension init: lambda-tracer",
                                      "Runtime init", "Invocation", "Overhead", "Runtime overhead"])
        # indentation follows depth
        self.assertEqual([rows[n][0] for n in rows], [0, 2, 4, 4, 2, 2, 4])
        # offsets from the segment's start; the Initialization came before it
        self.assertEqual(rows["Initialization"][1:3], ("-80.0", "78.0"))
        self.assertEqual(rows["Runtime init"][1:3], ("-65.0", "63.0"))
        self.assertEqual(rows["demo-fn"][1:3], ("+0.0", "2000.0"))
        # the axis covers the Initialization: it starts at the left edge
        self.assertEqual(span(rows["Initialization"][3])[0], 0)
        self.assertEqual(span(rows["demo-fn"][3])[1], W)
        # the faulted segment is drawn and marked as such; its children are not
        self.assertEqual(set(rows["demo-fn"][3].strip()), {"!"})
        self.assertEqual(rows["demo-fn"][4], "fault")
        self.assertEqual(rows["Invocation"][4], "")
        self.assertEqual(set(rows["Invocation"][3].strip()), {"#"})
        # a 0.1 ms span on a 2,080 ms axis still gets a cell
        self.assertEqual(span(rows["Runtime overhead"][3])[1] - span(rows["Runtime overhead"][3])[0], 1)
        self.assertNotIn("in progress", "\n".join(lines))
        self.assertEqual(lines[-1], "  cause: Sandbox.Timedout: Task timed out after 2.00 seconds")
        self.assertNotIn("\x1b[", "\n".join(lines))

    def test_only_an_in_progress_version(self):
        lines = waterfall.render([IN_PROGRESS], width=W)
        self.assertIn("IN PROGRESS", lines[0])
        rows = parse(lines)
        inv = rows["Invocation"]
        self.assertEqual(inv[2], "...")
        self.assertTrue(inv[3].rstrip().endswith(">"))
        self.assertEqual(inv[4], "in progress")
        self.assertEqual(rows["demo-fn"][4], "in progress")
        self.assertEqual(rows["Initialization"][4], "")

    def test_pick_and_status_marks(self):
        self.assertEqual(waterfall.pick([IN_PROGRESS, FINAL]), (FINAL, 1, True))
        self.assertEqual(waterfall.pick([IN_PROGRESS]), (IN_PROGRESS, 1, False))

        def doc(etype=None, **kw):
            d = {"annotations": {"status": "error" if etype else "success"}}
            if etype:
                d["annotations"]["error_type"] = etype
            d.update(kw)
            return d
        self.assertEqual(waterfall.status_mark(doc()), "OK")
        self.assertEqual(waterfall.status_mark(FINAL), "TIMEOUT")
        self.assertEqual(waterfall.status_mark(doc("Runtime.ExitError", fault=True)), "CRASH")
        self.assertEqual(waterfall.status_mark(doc("Runtime.OutOfMemory", fault=True)), "OOM")
        self.assertEqual(waterfall.status_mark(doc("Function.MyError", error=True)), "ERROR")
        self.assertEqual(waterfall.status_mark(doc("Extension.Crash", fault=True)), "FAULT")

    def test_provisioned_concurrency_gap_is_cut_out_of_the_axis(self):
        # Initialization ten minutes before the invocation
        pc = segment(30.0, [init_tree(-600000.0), node("Invocation", 0, 30.0)],
                     annotations={"cold_start": True, "init_type": "provisioned-concurrency"})
        lines = waterfall.render([pc], width=W)
        rows = parse(lines)
        init, seg = span(rows["Initialization"][3]), span(rows["demo-fn"][3])
        self.assertEqual(init[0], 0)
        self.assertEqual(seg[1], W)
        self.assertLess(init[1], seg[0])
        self.assertGreaterEqual(seg[1] - seg[0], 8)  # 30 ms against 78 ms of init: readable
        self.assertIn("/", rows["Invocation"][3])  # the break is drawn
        self.assertEqual(rows["Initialization"][1], "-600000")  # whole ms past 100 s

    def test_independent_subsegment_documents_are_hung_under_their_parent(self):
        seg = segment(10.0, [node("Invocation", 0, 10.0)])
        inv_id = seg["subsegments"][0]["id"]
        extra = {"type": "subsegment", "trace_id": seg["trace_id"], "parent_id": inv_id,
                 "name": "Late child", "id": "aaaaaaaaaaaaaaaa", "start_time": T + 0.002, "end_time": T + 0.004}
        rows = parse(waterfall.render([seg], width=W, subsegment_docs=[extra]))
        self.assertEqual(rows["Late child"][0], 4)
        self.assertNotIn("subsegments", seg["subsegments"][0])  # the input is left alone

    def test_colour_only_when_asked(self):
        plain = waterfall.render([IN_PROGRESS, FINAL], width=W)
        coloured = waterfall.render([IN_PROGRESS, FINAL], width=W, colour=True)
        self.assertIn("\x1b[", "\n".join(coloured))
        strip = re.compile(r"\x1b\[[0-9;]*m")
        self.assertEqual([strip.sub("", line) for line in coloured], plain)


if __name__ == "__main__":
    unittest.main()
