"""One self-contained HTML page of traces (viewer/traces.py's Loaded).

Each invocation is a section: a header (status, duration, cold start,
billing, memory), its cause, its annotations, and its tree on its own time
axis (milliseconds from the segment's start, a long idle stretch cut out as
in the terminal waterfall).  Every row is a <details> element: a click opens
the node's fields, annotations, metadata (e.g. the forensics snapshot under
metadata.lambda_tracer) and cause; hovering a bar shows its times.

The page loads nothing: its CSS and its script are inline, and a
Content-Security-Policy allows only that one script (by its hash) and no
fetch of any kind.  Every string from a document is HTML-escaped (a name or
cause holding markup shows as text).  The script only adds conveniences
(expand/collapse all, a problems-only filter); the page reads the same
without it.
"""
import base64
import hashlib
import html
import json
import math

import waterfall

AXIS_UNITS = 1000  # the axis in thousandths of the track width
STATUS_CLASSES = ("ok", "error", "fault", "throttle", "open")

CSS = """
:root { --ok:#3b82c4; --seg:#1d5a96; --error:#e0a100; --fault:#d93025; --throttle:#8e44ad;
  --open:#9aa0a6; --ink:#1f2328; --dim:#656d76; --line:#d0d7de; --bg:#ffffff; --soft:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 40px; font: 13px/1.45 system-ui, sans-serif; color: var(--ink);
  background: var(--bg); }
h1 { font-size: 18px; margin: 0 0 4px; }
.sub { color: var(--dim); margin: 0 0 8px; }
.legend, .tools { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; margin: 6px 0; }
.sw { display: inline-block; width: 22px; height: 10px; vertical-align: middle; margin-right: 4px;
  border-radius: 2px; }
.tools button, .tools select { font: inherit; padding: 2px 8px; }
.problems { color: var(--dim); margin: 6px 0; }
.problems li { font-family: ui-monospace, monospace; font-size: 12px; }
section.inv { border: 1px solid var(--line); border-radius: 6px; margin: 14px 0; padding: 8px 10px; }
section.inv[hidden] { display: none; }
.head { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: baseline; }
.num { font-weight: 600; }
.badge { color: #fff; font-weight: 700; padding: 0 6px; border-radius: 3px; font-size: 12px; }
.fn { font-weight: 600; }
.mono, .rid { font-family: ui-monospace, monospace; font-size: 12px; }
.rid, .src { color: var(--dim); }
.tag { background: var(--soft); border: 1px solid var(--line); border-radius: 3px; padding: 0 5px; }
.cause { margin: 6px 0 2px; padding: 4px 8px; border-left: 4px solid var(--fault); background: #fdf0ef;
  white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, monospace; font-size: 12px; }
.cause.c-error { border-left-color: var(--error); background: #fdf7e6; }
.chips { list-style: none; padding: 0; margin: 6px 0; display: flex; flex-wrap: wrap; gap: 4px; }
.chips li { background: var(--soft); border: 1px solid var(--line); border-radius: 10px; padding: 0 8px;
  font-family: ui-monospace, monospace; font-size: 11px; }
.chips .k { color: var(--dim); }
.grid { margin-top: 6px; }
.ruler, summary { display: grid; grid-template-columns: minmax(180px, 26%) 70px 70px 1fr; gap: 0 8px;
  align-items: center; }
.ruler { color: var(--dim); font-size: 11px; border-bottom: 1px solid var(--line); padding-bottom: 2px; }
.ruler .hd { font-weight: 600; }
.ruler .num-h, summary .off, summary .dur { text-align: right; font-family: ui-monospace, monospace;
  font-size: 12px; }
.scale { position: relative; height: 16px; }
.tick { position: absolute; top: 0; transform: translateX(-50%); white-space: nowrap; }
.tick.first { transform: none; }
.tick.last { transform: translateX(-100%); }
details.row > summary { list-style: none; cursor: pointer; padding: 1px 0; border-bottom: 1px solid #f0f2f4; }
details.row > summary::-webkit-details-marker { display: none; }
details.row > summary:hover { background: #eef4fb; }
details.row[open] > summary { background: #e3eefa; }
.name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.name::before { content: "\\25B8"; color: var(--dim); display: inline-block; width: 1em; }
details[open] > summary .name::before { content: "\\25BE"; }
.track { position: relative; height: 14px; }
.bar { position: absolute; top: 2px; height: 10px; min-width: 2px; border-radius: 2px; }
.gap { position: absolute; top: 0; height: 14px; background: repeating-linear-gradient(135deg, #fff 0 3px,
  #c8ccd0 3px 5px); }
.s-ok { background: var(--ok); }
.d0 .bar.s-ok, .badge.s-ok { background: var(--seg); }
.s-error { background: var(--error); }
.s-fault { background: var(--fault); }
.s-throttle { background: var(--throttle); }
.s-open { background: repeating-linear-gradient(90deg, var(--open) 0 6px, #c5c9cd 6px 9px); }
.badge.s-open { background: var(--open); }
.mark { font-size: 11px; color: var(--fault); margin-left: 6px; }
.info { margin: 4px 0 10px 18px; padding: 6px 10px; border-left: 3px solid var(--line); background: #fafbfc; }
.info h4 { margin: 8px 0 2px; font-size: 12px; }
.info table { border-collapse: collapse; font-size: 12px; }
.info td { padding: 1px 10px 1px 0; vertical-align: top; }
.info td:first-child { color: var(--dim); white-space: nowrap; }
.info td.v { font-family: ui-monospace, monospace; word-break: break-word; }
.info pre { margin: 2px 0; max-height: 420px; overflow: auto; background: var(--soft); padding: 6px;
  font-size: 11px; white-space: pre-wrap; word-break: break-word; }
.empty { color: var(--dim); font-style: italic; }
"""

SCRIPT = """
(function () {
  var rows = document.querySelectorAll('details.row');
  function setAll(open) { for (var i = 0; i < rows.length; i++) rows[i].open = open; }
  document.getElementById('expand').addEventListener('click', function () { setAll(true); });
  document.getElementById('collapse').addEventListener('click', function () { setAll(false); });
  var filter = document.getElementById('filter');
  filter.addEventListener('change', function () {
    var secs = document.querySelectorAll('section.inv');
    for (var i = 0; i < secs.length; i++)
      secs[i].hidden = filter.value === 'problems' && secs[i].getAttribute('data-status') === 'ok';
  });
  document.documentElement.setAttribute('data-ready', String(rows.length));
})();
"""

LEGEND = (("ok", "ok (segment darker)"), ("error", "error (the function's)"), ("fault", "fault"),
          ("throttle", "throttled"), ("open", "in progress (no end yet)"))


def esc(value):
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def _json(value):
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _scalar(value):
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return _json(value) if isinstance(value, (dict, list)) else str(value)


def node_status(node):
    """One of STATUS_CLASSES for a node's bar."""
    if node.get("fault"):
        return "fault"
    if node.get("error"):
        return "error"
    if node.get("throttle"):
        return "throttle"
    if node.get("in_progress") or waterfall._times(node)[1] is None:
        return "open"
    return "ok"


def invocation_status(doc, is_final):
    """(class, label): the invocation's colour and its word (TIMEOUT, CRASH, ...)."""
    mark = waterfall.status_mark(doc)
    if doc.get("throttle") and mark in ("OK", "ERROR"):
        mark = "THROTTLED"
    if not is_final:
        return "open", "IN PROGRESS" + (" (%s)" % mark if mark not in ("OK", "IN PROGRESS") else "")
    if mark == "OK":
        return "ok", mark
    if mark == "THROTTLED":
        return "throttle", mark
    if mark == "ERROR":
        return "error", mark
    if mark == "IN PROGRESS":
        return "open", mark
    return "fault", mark


def _kv_table(pairs):
    rows = "".join('<tr><td>%s</td><td class="v">%s</td></tr>' % (esc(k), esc(_scalar(v))) for k, v in pairs)
    return "<table>%s</table>" % rows


def _pct(x):
    """A percentage for a style attribute: finite, within 0..100."""
    return min(max(x, 0.0), 100.0) if math.isfinite(x) else 0.0


def _nice_step(span_ms, parts=6):
    raw = span_ms / parts if span_ms > 0 and math.isfinite(span_ms) else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _ticks(axis, origin):
    """[(position %, label)] along the axis: nice steps within each part
    (before and after a cut-out gap), the ends always."""
    out = []
    parts = [(axis.t0, axis.t1)] if axis.gap is None else [(axis.t0, axis.gap[0]), (axis.gap[1], axis.t1)]
    total = (axis.t1 - axis.t0) * 1000
    for a, b in parts:
        step = _nice_step(total if axis.gap is None else (b - a) * 1000, 6 if axis.gap is None else 3)
        lo, hi = (a - origin) * 1000, (b - origin) * 1000
        v = math.ceil(lo / step) * step
        while v <= hi + 1e-9 and len(out) < 40:
            pos = _pct(axis.col(origin + v / 1000) / axis.width * 100)
            out.append((pos, waterfall._fmt_off(v) if v else "0"))
            v += step
    out.sort()
    kept = []
    for pos, label in out:
        if not kept or pos - kept[-1][0] >= 7:
            kept.append((pos, label))
    return kept


def _node_info(node, origin, depth, inv=None, doc_versions=None):
    s, e = waterfall._times(node)
    fields = [("name", node.get("name", "?")), ("id", node.get("id", ""))]
    if s is not None:
        fields.append(("start", "%s ms from the segment's start" % waterfall._fmt_off((s - origin) * 1000)))
    if s is not None and e is not None:
        fields.append(("duration", "%s ms" % waterfall._fmt_ms((e - s) * 1000)))
    fields.append(("status", node_status(node).replace("open", "in progress")))
    if depth == 0:
        for k in ("trace_id", "parent_id", "origin", "type"):
            if node.get(k):
                fields.append((k, node[k]))
        for k, v in (node.get("aws") or {}).items():
            fields.append(("aws." + k, v))
        if inv is not None:
            fields.append(("source", "OTLP/JSON" if inv.source == "otlp" else "X-Ray document"))
        if doc_versions:
            fields.append(("versions", doc_versions))
    known = {"name", "id", "start_time", "end_time", "subsegments", "annotations", "metadata", "cause",
             "error", "fault", "throttle", "in_progress", "trace_id", "parent_id", "origin", "type", "aws"}
    extra = {k: v for k, v in node.items() if k not in known}
    parts = ["<h4>Node</h4>", _kv_table(fields)]
    if node.get("annotations"):
        parts += ["<h4>Annotations</h4>", _kv_table(node["annotations"].items())]
    if node.get("metadata"):
        parts += ["<h4>Metadata</h4>", '<pre class="meta">%s</pre>' % esc(_json(node["metadata"]))]
    if node.get("cause"):
        parts += ["<h4>Cause</h4>", '<pre class="cause-full">%s</pre>' % esc(_json(node["cause"]))]
    if extra:
        parts += ["<h4>Other fields</h4>", '<pre>%s</pre>' % esc(_json(extra))]
    return '<div class="info">%s</div>' % "".join(parts)


def render_invocation(inv, number, title=None):
    """One <section> for an invocation (an Invocation of traces.py)."""
    doc, n_open, is_final = inv.pick()
    if inv.subsegment_docs:
        doc = waterfall.merge_independent(doc, inv.subsegment_docs)
    cls, label = invocation_status(doc, is_final)
    tree = waterfall.rows(doc)
    origin = waterfall._times(doc)[0]
    known = [t for _, n in tree for t in waterfall._times(n) if t is not None]
    if origin is None:
        origin = min(known) if known else 0.0
    last = max(known) if known else origin
    intervals = []
    for _, n in tree:
        s, e = waterfall._times(n)
        if s is not None:
            intervals.append((s, e if e is not None and e >= s else max(last, s)))
    axis = waterfall.Axis(intervals or [(origin, origin)], AXIS_UNITS)

    ann = doc.get("annotations") or {}
    rid = (doc.get("aws") or {}).get("request_id") or ""
    s, e = waterfall._times(doc)
    head = ['<span class="num">%s</span>' % esc(title or "#%d" % number),
            '<span class="badge s-%s">%s</span>' % (cls, esc(label)),
            '<span class="fn">%s</span>' % esc(doc.get("name", "?"))]
    if rid:
        head.append('<span class="rid" title="request id">%s</span>' % esc(rid))
    if s is not None and e is not None:
        head.append('<span class="mono">%s ms</span>' % esc(waterfall._fmt_ms((e - s) * 1000)))
    if ann.get("cold_start") is True:
        it = ann.get("init_type")
        head.append('<span class="tag">cold start%s</span>' % (" (%s)" % esc(it) if it else ""))
    if ann.get("billed_duration_ms") is not None:
        head.append('<span class="tag">billed %s ms</span>' % esc(ann["billed_duration_ms"]))
    if ann.get("max_memory_used_mb") is not None:
        mem = "%s" % ann["max_memory_used_mb"]
        if ann.get("memory_size_mb") is not None:
            mem += "/%s" % ann["memory_size_mb"]
        head.append('<span class="tag">mem %s MB</span>' % esc(mem))
    if n_open:
        head.append('<span class="src">(%s)</span>' % esc(waterfall.in_progress_note(inv.versions, n_open)))
    head.append('<span class="src">%s</span>' % ("OTLP" if inv.source == "otlp" else "X-Ray"))

    out = ['<section class="inv s-%s-inv" id="inv-%d" data-status="%s" data-mark="%s" data-request-id="%s">'
           % (cls, number, cls, esc(label), esc(rid)),
           '<div class="head">%s</div>' % " ".join(head)]
    c = waterfall.cause(doc)
    if c:
        text = c[0] + (": " + c[1] if c[1] else "")
        out.append('<div class="cause c-%s" data-type="%s">%s</div>'
                   % ("error" if cls == "error" else "fault", esc(c[0]), esc(text)))
    if ann:
        out.append('<ul class="chips">%s</ul>' % "".join(
            '<li><span class="k">%s</span>=<span class="v">%s</span></li>' % (esc(k), esc(_scalar(v)))
            for k, v in ann.items()))
    if doc.get("parent_id"):
        out.append('<div class="src">trace %s, parent %s (the caller\'s)</div>'
                   % (esc(doc.get("trace_id", "")), esc(doc["parent_id"])))

    ticks = "".join('<span class="tick%s" style="left:%.3f%%">%s</span>'
                    % (" first" if i == 0 and pos < 3 else " last" if pos > 97 else "", pos, esc(lbl))
                    for i, (pos, lbl) in enumerate(_ticks(axis, origin)))
    out.append('<div class="grid"><div class="ruler"><span class="hd">node</span>'
               '<span class="num-h">start ms</span><span class="num-h">dur ms</span>'
               '<span class="scale">%s</span></div>' % ticks)
    gap = ""
    bc = axis.break_cols()
    if bc:
        gap = '<span class="gap" style="left:%.3f%%;width:%.3f%%" title="idle time cut out of the axis"></span>' % (
            bc[0] / AXIS_UNITS * 100, (bc[1] - bc[0]) / AXIS_UNITS * 100)
    versions = None
    if len(inv.versions) > 1:
        versions = "%d documents with this id (%d in progress)" % (len(inv.versions), n_open)
    for k, (depth, node) in enumerate(tree):
        ns, ne = waterfall._times(node)
        st = node_status(node)
        if depth == 0 and not is_final:
            st = "open" if st == "ok" else st
        name = str(node.get("name", "?"))
        if ns is not None:
            end = ne if ne is not None and ne >= ns else max(last, ns)
            a, b = axis.col(ns), axis.col(end)
            left = _pct(a / AXIS_UNITS * 100)
            width = min(_pct((b - a) / AXIS_UNITS * 100), 100.0 - left)
            off = waterfall._fmt_off((ns - origin) * 1000)
            dur = waterfall._fmt_ms((ne - ns) * 1000) if ne is not None else "..."
            tip = "%s: %s, start %s ms, %s" % (name, st.replace("open", "in progress"), off,
                                               dur + " ms" if ne is not None else "no end yet")
            bar = '<span class="bar s-%s" style="left:%.3f%%;width:%.3f%%" title="%s"></span>' % (
                st, left, width, esc(tip))
        else:
            off, dur, bar = "?", "?", ""
        mark = ""
        if st in ("fault", "error", "throttle"):
            mark = '<span class="mark">%s</span>' % st
        out.append(
            '<details class="row d%d s-%s-row" data-depth="%d" data-status="%s">'
            '<summary><span class="name" style="padding-left:%.1fem" title="%s">%s%s</span>'
            '<span class="off">%s</span><span class="dur">%s</span>'
            '<span class="track">%s%s</span></summary>%s</details>'
            % (min(depth, 9), st, depth, st, depth * 1.2, esc(name), esc(name), mark, esc(off), esc(dur),
               gap, bar, _node_info(node, origin, depth, inv if depth == 0 else None,
                                    versions if depth == 0 else None)))
    out.append("</div></section>")
    return "\n".join(out)


def render_page(loaded, title="lambda-tracer traces", sources=(), titles=None):
    """The whole page as a string.  titles: optional {request id: title}
    for the invocations (the demo's step names)."""
    titles = titles or {}
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-%s'; img-src 'none'; "
           "connect-src 'none'; font-src 'none'; form-action 'none'; base-uri 'none'" % script_hash)
    counts = {c: 0 for c in STATUS_CLASSES}
    sections = []
    for n, inv in enumerate(loaded.invocations, 1):
        doc, _, is_final = inv.pick()
        counts[invocation_status(doc, is_final)[0]] += 1
        sections.append(render_invocation(inv, n, titles.get((doc.get("aws") or {}).get("request_id"))))
    legend = "".join('<span><span class="sw s-%s"></span>%s</span>' % (c, esc(t)) for c, t in LEGEND)
    legend += '<span><span class="sw gap" style="position:static;display:inline-block;height:10px"></span>' \
              'idle time cut out of the axis</span>'
    tally = ", ".join("%d %s" % (counts[c], {"open": "in progress"}.get(c, c)) for c in STATUS_CLASSES if counts[c])
    problems = ""
    if loaded.problems:
        problems = '<details class="problems"><summary>%d malformed input%s skipped</summary><ul>%s</ul></details>' % (
            loaded.malformed, "" if loaded.malformed == 1 else "s",
            "".join("<li>%s: %s</li>" % (esc(w), esc(r)) for w, r in loaded.problems))
    body = "\n".join(sections) if sections else '<p class="empty">No trace documents found in the input.</p>'
    return """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="%s">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s</title>
<style>%s</style>
</head>
<body>
<h1>%s</h1>
<p class="sub">%s%s</p>
<div class="legend">%s</div>
<div class="tools"><button type="button" id="expand">expand all</button>
<button type="button" id="collapse">collapse all</button>
<label>show <select id="filter"><option value="all">all invocations</option>
<option value="problems">problems only</option></select></label>
<span class="sub">click a row for its details (annotations, metadata, cause); hover a bar for its times;
times are ms from each segment's start</span></div>
%s
<main>
%s
</main>
<script>%s</script>
</body>
</html>
""" % (esc(csp), esc(title), CSS, esc(title),
       esc(loaded.summary() + (": " + tally if tally else "")),
       (" &middot; from " + esc(", ".join(sources))) if sources else "",
       legend, problems, body, SCRIPT)
