"""Terminal waterfalls of the X-Ray documents lambda-tracer exports.

Used by tests/demo.py and viewer/view.py (./build.sh view); unit-tested by
tests/viewer/test_waterfall.py.
Python 3 standard library only.

One invocation is a list of document versions with the same segment id (an
in-progress version may come first, the final one last).  render() draws the
final version, or the last in-progress one when no final version came:

    #1 cold start  1035c3c2  OK  27.3 ms  COLD START (on-demand)  billed 28 ms  mem 28/128 MB
      node                              start ms   dur ms  -86.0                          +27.4 ms
      demo-fn                               +0.0     27.3  |                      =======|
        Initialization                     -86.0     85.8  |######################       |
          Extension init: lambda-tracer    -86.0     28.7  |########                     |
      ...
      cause: Sandbox.Timedout: Task timed out after 2.00 seconds    (when there is one)

Bars: '=' the segment, '#' a subsegment, '!' faulted, '?' error, '~...>' in
progress (no end yet); faulted and in-progress rows are also marked in words.

Times on each row are milliseconds relative to the segment's start (an
Initialization before it has a negative offset).  The axis is linear and
covers every node; a long idle stretch between nodes (provisioned concurrency
initialises minutes before the invocation) is cut out and drawn as a break.
"""
import copy
import math

BAR_WIDTH = 60
NAME_WIDTH = 33  # "    Extension init: lambda-tracer" fits
BREAK_COLS = 3
# A gap is cut out of the axis when no node covers it and it is more than this
# share of the whole span.
BREAK_SHARE = 0.5

FILL_SEGMENT = "="
FILL_OK = "#"
FILL_FAULT = "!"
FILL_ERROR = "?"
FILL_OPEN = "~"

_COLOURS = {"ok": "32", "bad": "1;31", "warn": "33", "open": "35", "dim": "2", "bold": "1",
            "bar": "36", "seg": "1;36"}


def paint(text, kind, colour):
    if not colour or not text:
        return text
    return "\x1b[%sm%s\x1b[0m" % (_COLOURS[kind], text)


# --- picking the version and reading the document -----------------------------

def pick(versions):
    """(document to show, number of in-progress versions, is_final)."""
    finals = [v for v in versions if not v.get("in_progress")]
    n_open = sum(1 for v in versions if v.get("in_progress"))
    if finals:
        return finals[-1], n_open, True
    return (versions[-1] if versions else None), n_open, False


def cause(doc):
    """(type, message) of the first exception, or None."""
    exc = ((doc.get("cause") or {}).get("exceptions") or [None])[0]
    if not isinstance(exc, dict):
        return None
    return exc.get("type") or "", exc.get("message") or ""


def status_mark(doc):
    """OK / TIMEOUT / CRASH / OOM / ERROR / FAULT / IN PROGRESS."""
    ann = doc.get("annotations") or {}
    c = cause(doc)
    etype = ann.get("error_type") or (c[0] if c else "")
    if ann.get("status") == "timeout" or etype == "Sandbox.Timedout":
        return "TIMEOUT"
    if etype == "Runtime.OutOfMemory":
        return "OOM"
    if etype == "Runtime.ExitError":
        return "CRASH"
    if doc.get("fault"):
        return "FAULT"
    if doc.get("error") or ann.get("status") == "error":
        return "ERROR"
    if doc.get("in_progress"):
        return "IN PROGRESS"
    return "OK"


def merge_independent(segment, subsegment_docs):
    """A copy of segment with the independent subsegment documents
    ("type": "subsegment", sent on their own when a document is too big for
    one datagram) hung under the node their parent_id names."""
    seg = copy.deepcopy(segment)
    nodes = {}

    def index(node):
        nodes[node.get("id")] = node
        for s in node.get("subsegments", []):
            index(s)
    index(seg)
    pending = [d for d in subsegment_docs if d.get("trace_id") == seg.get("trace_id")]
    progress = True
    while pending and progress:
        progress = False
        for d in list(pending):
            parent = nodes.get(d.get("parent_id"))
            if parent is None:
                continue
            pending.remove(d)
            progress = True
            if d.get("id") in nodes:
                continue
            child = {k: v for k, v in d.items() if k not in ("type", "trace_id", "parent_id")}
            parent.setdefault("subsegments", []).append(child)
            index(child)
    return seg


def rows(doc):
    """[(depth, node)] in document order: the segment, then its subsegments
    depth first."""
    out = []

    def walk(node, depth):
        out.append((depth, node))
        for s in node.get("subsegments", []) or []:
            walk(s, depth + 1)
    walk(doc, 0)
    return out


def _times(node):
    s = node.get("start_time")
    e = node.get("end_time")
    return (float(s) if isinstance(s, (int, float)) else None,
            float(e) if isinstance(e, (int, float)) else None)


# --- the time axis -------------------------------------------------------------

class Axis:
    """Maps absolute times (seconds) to columns 0..width, linearly over
    [t0, t1], or piecewise around one cut-out gap [g0, g1]."""

    def __init__(self, intervals, width=BAR_WIDTH):
        self.width = width
        points = [t for iv in intervals for t in iv]
        self.t0 = min(points)
        self.t1 = max(points)
        if self.t1 <= self.t0:
            self.t1 = self.t0 + 1e-6
        self.gap = None
        span = self.t1 - self.t0
        # the longest stretch no interval covers
        merged = []
        for s, e in sorted(intervals):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        best = None
        for a, b in zip(merged, merged[1:]):
            if best is None or b[0] - a[1] > best[1] - best[0]:
                best = (a[1], b[0])
        if best and best[1] - best[0] > BREAK_SHARE * span and width >= BREAK_COLS + 2:
            left = best[0] - self.t0
            right = self.t1 - best[1]
            usable = width - BREAK_COLS
            wl = round(usable * left / (left + right)) if left + right > 0 else usable // 2
            wl = min(max(wl, 1), usable - 1)
            self.gap = (best[0], best[1])
            self.wl = wl
            self.wr = usable - wl

    def col(self, t):
        if self.gap is None:
            return (t - self.t0) / (self.t1 - self.t0) * self.width
        g0, g1 = self.gap
        if t <= g0:
            return (t - self.t0) / max(g0 - self.t0, 1e-9) * self.wl
        if t >= g1:
            return self.wl + BREAK_COLS + (t - g1) / max(self.t1 - g1, 1e-9) * self.wr
        return self.wl + BREAK_COLS / 2.0

    def cells(self, start, end):
        """[a, b): at least one cell, inside 0..width."""
        a = int(math.floor(self.col(start) + 1e-9))
        b = int(math.ceil(self.col(end) - 1e-9))
        a = min(max(a, 0), self.width - 1)
        b = min(max(b, a + 1), self.width)
        return a, b

    def break_cols(self):
        if self.gap is None:
            return None
        return self.wl, self.wl + BREAK_COLS


# --- rendering -------------------------------------------------------------------

def _fmt_ms(ms, sign=""):
    """At most 8 characters: 0.1 ms resolution below 100 s, then whole ms,
    then whole seconds."""
    if abs(ms) < 1e5:
        return ("%" + sign + ".1f") % ms
    if abs(ms) < 1e7:
        return ("%" + sign + ".0f") % ms
    return ("%" + sign + ".0fs") % (ms / 1000)


def _fmt_off(ms):
    return _fmt_ms(ms, "+")


def _fit(name, width):
    return name if len(name) <= width else name[:width - 2] + ".."


def _ruler(axis, origin, width):
    """The label line over the bar area: offsets (ms from the segment start)
    at the left end, at both sides of a break, and at the right end."""
    line = [" "] * (width + 2)

    def put(text, at, align):
        start = at if align == "left" else at - len(text)
        if start < 0 or start + len(text) > len(line):
            return False
        if any(c != " " for c in line[max(start - 1, 0):start + len(text) + 1]):
            return False
        line[start:start + len(text)] = list(text)
        return True

    # index i of the line is above column i - 1 of the bar ('|' is index 0)
    put(_fmt_off((axis.t0 - origin) * 1000), 0, "left")
    put(_fmt_off((axis.t1 - origin) * 1000) + " ms", width + 2, "right")
    bc = axis.break_cols()
    if bc:
        a, b = bc
        put(_fmt_off((axis.gap[0] - origin) * 1000), a + 1, "right")
        put(_fmt_off((axis.gap[1] - origin) * 1000), b + 1, "left")
        if line[a + 2] == " ":
            line[a + 2] = "/"
    return "".join(line).rstrip()


def header(doc, n_open, is_final, title=None, colour=False, versions=()):
    """The one-line summary of an invocation."""
    ann = doc.get("annotations") or {}
    mark = status_mark(doc)
    if not is_final:
        mark = "IN PROGRESS" + (" (%s)" % mark if mark not in ("OK", "IN PROGRESS") else "")
    kind = "ok" if mark == "OK" else "warn" if mark == "ERROR" else "open" if mark.startswith("IN PROGRESS") else "bad"
    rid = (doc.get("aws") or {}).get("request_id") or doc.get("id") or "?"
    parts = []
    if title:
        parts.append(paint(title, "bold", colour))
    parts.append(rid[:8])
    parts.append(paint(mark, kind, colour))
    s, e = _times(doc)
    parts.append(("%s ms" % _fmt_ms((e - s) * 1000)) if s is not None and e is not None else "open")
    if ann.get("cold_start") is True:
        init_type = ann.get("init_type")
        parts.append(paint("COLD START" + (" (%s)" % init_type if init_type else ""), "warn", colour))
    if "billed_duration_ms" in ann:
        parts.append("billed %s ms" % ann["billed_duration_ms"])
    if "max_memory_used_mb" in ann:
        mem = "mem %s" % ann["max_memory_used_mb"]
        if "memory_size_mb" in ann:
            mem += "/%s" % ann["memory_size_mb"]
        parts.append(mem + " MB")
    if n_open:
        parts.append(paint("(%s)" % in_progress_note(versions, n_open), "dim", colour))
    return "  ".join(parts)


def in_progress_note(versions, n_open):
    note = "%d in-progress version%s sent first" % (n_open, "" if n_open == 1 else "s")
    if any((v.get("annotations") or {}).get("timing_out") for v in versions if v.get("in_progress")):
        note += ", timing_out"
    return note


def render(versions, title=None, width=BAR_WIDTH, colour=False, subsegment_docs=(),
           name_width=NAME_WIDTH):
    """The waterfall of one invocation as a list of lines (no newlines)."""
    versions = list(versions)
    doc, n_open, is_final = pick(versions)
    if doc is None:
        return [(title + "  " if title else "") + "no document"]
    if subsegment_docs:
        doc = merge_independent(doc, subsegment_docs)
    origin = _times(doc)[0]
    tree = rows(doc)

    known = []
    for _, node in tree:
        s, e = _times(node)
        for t in (s, e):
            if t is not None:
                known.append(t)
    if origin is None:
        origin = min(known) if known else 0.0
    last = max(known) if known else origin
    intervals = []
    for _, node in tree:
        s, e = _times(node)
        if s is None:
            continue
        intervals.append((s, e if e is not None and e >= s else max(last, s)))
    if not intervals:
        intervals = [(origin, origin)]
    axis = Axis(intervals, width)

    nw = max(name_width, len("node"))
    out = [header(doc, n_open, is_final, title, colour, versions)]
    if doc.get("parent_id"):
        out.append(paint("  trace %s, parent %s (the caller's)" % (doc.get("trace_id"), doc["parent_id"]),
                         "dim", colour))
    out.append("  %-*s %8s %8s  %s" % (nw, "node", "start ms", "dur ms", _ruler(axis, origin, width)))
    brk = axis.break_cols()
    for depth, node in tree:
        name = _fit("  " * depth + str(node.get("name", "?")), nw)
        s, e = _times(node)
        is_open = bool(node.get("in_progress")) or e is None
        if node.get("fault"):
            fill, kind, mark = FILL_FAULT, "bad", "fault"
        elif node.get("error"):
            fill, kind, mark = FILL_ERROR, "warn", "error"
        elif is_open:
            fill, kind, mark = FILL_OPEN, "open", ""
        else:
            fill, kind, mark = (FILL_SEGMENT, "seg", "") if depth == 0 else (FILL_OK, "bar", "")
        if is_open:
            mark = (mark + ", " if mark else "") + "in progress"
        cells = [" "] * width
        if brk:
            for i in range(brk[0], brk[1]):
                cells[i] = "/" if i == brk[0] + 1 else " "
        if s is not None:
            end = e if e is not None and e >= s else max(last, s)
            a, b = axis.cells(s, end)
            for i in range(a, b):
                cells[i] = fill
            if is_open:
                cells[b - 1] = ">"
            bar_plain = "".join(cells)
            bar = bar_plain[:a] + paint(bar_plain[a:b], kind, colour) + bar_plain[b:]
            start_txt = _fmt_off((s - origin) * 1000)
            dur_txt = _fmt_ms((e - s) * 1000) if e is not None else "..."
        else:
            bar = "".join(cells)
            start_txt, dur_txt = "?", "?"
        line = "  %-*s %8s %8s  |%s|" % (nw, name, start_txt, dur_txt, bar)
        if mark:
            line += " " + paint(mark, "bad" if "fault" in mark else kind, colour)
        out.append(line)
    c = cause(doc)
    if c:
        out.append("  cause: " + paint(c[0], "bad" if doc.get("fault") else "warn", colour)
                   + (": " + c[1] if c[1] else ""))
    return out
