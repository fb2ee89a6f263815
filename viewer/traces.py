"""Reading exported traces back: X-Ray documents and OTLP/JSON requests, from
whatever file a user has.  Python 3 standard library only.

Accepted input (any mix, in one file or several):
  - X-Ray segment and subsegment documents, one JSON object per line (the
    stdout exporter's lines, build/demo/segments.jsonl), or a JSON array;
  - the same lines as CloudWatch Logs returns them: `aws logs tail` text
    (a timestamp and log stream before each message), `aws logs
    filter-log-events` / `get-log-events` JSON ({"events": [{"message": ...}]}),
    Logs Insights results ({"results": [[{"field": "@message", ...}]]}),
    a JSON log wrapper ({"message": "..."}), all mixed with other log lines
    (START / END / REPORT, the extension's own [lambda-tracer] lines);
  - `aws xray batch-get-traces` output ({"Traces": [{"Segments": [{"Document": ...}]}]});
  - OTLP/JSON ExportTraceServiceRequest bodies ({"resourceSpans": [...]}), one
    per line or pretty-printed.
A .gz file is read through gzip.

Nothing in the input can make load() raise: a line that looks like a trace
document but cannot be read is skipped and counted (Loaded.malformed, with
the first reasons in Loaded.problems); any other line is counted as
Loaded.other_lines.

The result is a list of Invocation: one per segment (trace id + segment id),
holding every version of it that was read (an in-progress version may come
before the final one), as X-Ray-shaped dicts whose known fields have known
types (see normalise_xray).  OTLP spans are converted to the same shape: the
SERVER span (or a span whose parent is not in the input) is the segment, its
descendants its subsegments, its attributes its annotations (aws.lambda.* and
lambda_tracer.* under their short names, faas.coldstart as cold_start), the
"exception" event its cause, other events and the resource under metadata.
"""
import gzip
import json
import math
import re

MAX_DEPTH = 64            # deepest subsegment nesting kept (deeper: dropped, counted)
MAX_PROBLEMS = 20         # reasons kept for the summary
MAX_NESTED_TEXT = 4       # how deep a message string may hold another JSON text
# a line that holds one of these and is not complete JSON was a document, cut or damaged
SIGNATURE = re.compile(r'"(trace_id|traceId|resourceSpans|start_time|Segments)"|\{"name":')
HEX = re.compile(r"^[0-9a-fA-F]+$")
OTLP_EXCEPTION_EVENT = "exception"
OTLP_IN_PROGRESS = "lambda_tracer.in_progress"
# X-Ray's fault types (tracer.c): anything else with an error status is the function's error.
FAULT_PREFIXES = ("Sandbox.", "Runtime.", "Extension.")


class Invocation:
    """One segment: every version read, in order, plus the independent
    subsegment documents of its trace."""

    def __init__(self, key, source):
        self.key = key            # (trace_id, segment id)
        self.source = source      # "xray" or "otlp"
        self.versions = []
        self.subsegment_docs = []

    def pick(self):
        """(document to show, number of in-progress versions, is_final)."""
        finals = [v for v in self.versions if not v.get("in_progress")]
        n_open = sum(1 for v in self.versions if v.get("in_progress"))
        if finals:
            return finals[-1], n_open, True
        return self.versions[-1], n_open, False

    @property
    def start(self):
        doc = self.pick()[0]
        return doc.get("start_time") if doc.get("start_time") is not None else math.inf


class Loaded:
    def __init__(self):
        self.invocations = []
        self.xray_documents = 0   # X-Ray documents read
        self.otlp_spans = 0       # OTLP spans read
        self.otlp_requests = 0
        self.malformed = 0        # document-like input skipped
        self.other_lines = 0      # log lines that are not trace documents
        self.orphans = 0          # independent subsegments whose segment is not in the input
        self.problems = []        # (where, reason), the first MAX_PROBLEMS
        self._by_key = {}
        self._subsegs = []
        self._spans = []          # (where, resource attrs, span) from OTLP requests

    @property
    def documents(self):
        return self.xray_documents + self.otlp_spans

    def problem(self, where, reason):
        self.malformed += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((where, reason))

    def summary(self):
        """One line: what was read and what was skipped."""
        def n(count, word):
            return "%d %s%s" % (count, word, "" if count == 1 else "s")
        parts = [n(len(self.invocations), "invocation")]
        if self.xray_documents or not self.otlp_spans:
            parts.append(n(self.xray_documents, "X-Ray document"))
        if self.otlp_spans or self.otlp_requests:
            parts.append(n(self.otlp_spans, "OTLP span") + " in " + n(self.otlp_requests, "request"))
        if self.other_lines:
            parts.append(n(self.other_lines, "other line") + " ignored")
        if self.malformed:
            parts.append("%d malformed skipped" % self.malformed)
        if self.orphans:
            parts.append(n(self.orphans, "subsegment") + " without their segment")
        return ", ".join(parts)


# --- small coercions ------------------------------------------------------------

def _num(v):
    """A finite float, or None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


MAX_TIME_S = 1e11      # epoch seconds past this (year 5138) are no time a tracer wrote


def _time(v):
    """An epoch time in seconds within [0, MAX_TIME_S), or None."""
    v = _num(v)
    return v if v is not None and 0 <= v < MAX_TIME_S else None


def _str(v, default=""):
    if isinstance(v, str):
        return v
    if v is None:
        return default
    try:
        return json.dumps(v, ensure_ascii=False)[:200]
    except (TypeError, ValueError):
        return default


def _dict(v):
    return v if isinstance(v, dict) else {}


# --- X-Ray documents -------------------------------------------------------------

def is_xray(obj):
    return isinstance(obj, dict) and "trace_id" in obj and "id" in obj and "start_time" in obj


def normalise_xray(doc, depth=0, counter=None):
    """A copy of an X-Ray document or subsegment with known field types:
    name/id/trace_id/parent_id/type/origin str, start_time/end_time float or
    None, error/fault/throttle/in_progress bool, annotations/metadata/aws dicts,
    cause {"exceptions": [{type, message}]} or absent, subsegments a list of
    normalised nodes (non-dict entries and nesting past MAX_DEPTH dropped and
    counted in counter["dropped"]).  Other fields are kept as they are."""
    out = dict(doc)
    for k in ("name", "id", "trace_id", "parent_id", "type", "origin"):
        if k in out:
            out[k] = _str(out[k])
    out["name"] = _str(doc.get("name"), "?") or "?"
    out["start_time"] = _time(doc.get("start_time"))
    out["end_time"] = _time(doc.get("end_time"))
    if out["end_time"] is None:
        out.pop("end_time")
    for k in ("error", "fault", "throttle", "in_progress"):
        if k in out:
            out[k] = out[k] is True
    for k in ("annotations", "metadata", "aws"):
        if k in out:
            out[k] = _dict(out[k])
    if "request_id" in out.get("aws", {}):
        out["aws"] = dict(out["aws"], request_id=_str(out["aws"]["request_id"]))
    cause = doc.get("cause")
    if cause is not None:
        excs = []
        if isinstance(cause, dict):
            for e in cause.get("exceptions") or []:
                if isinstance(e, dict):
                    ne = dict(e)
                    ne["type"] = _str(e.get("type"))
                    ne["message"] = _str(e.get("message"))
                    excs.append(ne)
        elif isinstance(cause, str):
            excs.append({"type": "", "message": cause})   # an exception id elsewhere in the trace
        if excs:
            out["cause"] = dict(_dict(cause), exceptions=excs)
        else:
            out.pop("cause")
    subs = doc.get("subsegments")
    if subs is not None:
        kept = []
        for s in subs if isinstance(subs, list) else []:
            if isinstance(s, dict) and depth < MAX_DEPTH:
                kept.append(normalise_xray(s, depth + 1, counter))
            elif counter is not None:
                counter["dropped"] = counter.get("dropped", 0) + 1
        if kept:
            out["subsegments"] = kept
        else:
            out.pop("subsegments")
    return out


def _xray_problem(doc):
    """Why a document cannot be shown, or None."""
    for k in ("trace_id", "id"):
        if not isinstance(doc.get(k), str) or not doc[k]:
            return "%s is not a string" % k
    if _time(doc.get("start_time")) is None:
        return "start_time is not a number of epoch seconds"
    if "end_time" in doc and _time(doc.get("end_time")) is None:
        return "end_time is not a number of epoch seconds"
    if "end_time" not in doc and doc.get("in_progress") is not True:
        return "neither end_time nor in_progress"
    if doc.get("type") == "subsegment" and not isinstance(doc.get("parent_id"), str):
        return "an independent subsegment without parent_id"
    return None


def _add_xray(loaded, doc, where):
    why = _xray_problem(doc)
    if why:
        loaded.problem(where, "X-Ray document: " + why)
        return
    counter = {}
    norm = normalise_xray(doc, counter=counter)
    if counter.get("dropped"):
        loaded.problem(where, "X-Ray document: %d subsegment(s) not objects or nested too deep, left out"
                       % counter["dropped"])
    loaded.xray_documents += 1
    if norm.get("type") == "subsegment":
        loaded._subsegs.append(norm)
        return
    key = (norm["trace_id"], norm["id"])
    inv = loaded._by_key.get(key)
    if inv is None:
        inv = loaded._by_key[key] = Invocation(key, "xray")
        loaded.invocations.append(inv)
    inv.versions.append(norm)


# --- OTLP/JSON ----------------------------------------------------------------------

def is_otlp(obj):
    return isinstance(obj, dict) and isinstance(obj.get("resourceSpans"), list)


def any_value(v):
    """An OTLP AnyValue as a Python value (None when unreadable)."""
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return _str(v["stringValue"])
    if "boolValue" in v:
        return v["boolValue"] is True
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return None
    if "doubleValue" in v:
        return _num(v["doubleValue"]) if not isinstance(v["doubleValue"], str) else _num(_float(v["doubleValue"]))
    if "arrayValue" in v:
        return [any_value(x) for x in (_dict(v["arrayValue"]).get("values") or []) if isinstance(x, dict)]
    if "kvlistValue" in v:
        return attributes(_dict(v["kvlistValue"]).get("values"))
    if "bytesValue" in v:
        return _str(v["bytesValue"])
    return None


def _float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def attributes(kvs):
    """[{"key", "value": AnyValue}] as a dict (bad entries left out)."""
    out = {}
    for kv in kvs if isinstance(kvs, list) else []:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out[kv["key"]] = any_value(kv.get("value"))
    return out


def _nanos(v):
    """startTimeUnixNano (a decimal string or an integer) in seconds, or None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, str) and v.isdigit() and len(v) <= 20:
        return int(v) / 1e9
    if isinstance(v, int) and v >= 0:
        return v / 1e9
    return None


def _add_otlp(loaded, req, where):
    loaded.otlp_requests += 1
    for rs in req["resourceSpans"]:
        if not isinstance(rs, dict):
            loaded.problem(where, "OTLP: a resourceSpans entry is not an object")
            continue
        resource = attributes(_dict(rs.get("resource")).get("attributes"))
        for ss in rs.get("scopeSpans") or []:
            if not isinstance(ss, dict) or not isinstance(ss.get("spans") or [], list):
                loaded.problem(where, "OTLP: a scopeSpans entry is not an object with spans")
                continue
            for span in ss.get("spans") or []:
                why = _otlp_problem(span)
                if why:
                    loaded.problem(where, "OTLP span: " + why)
                    continue
                loaded.otlp_spans += 1
                loaded._spans.append((where, resource, span))


def _otlp_problem(span):
    if not isinstance(span, dict):
        return "not an object"
    tid, sid = span.get("traceId"), span.get("spanId")
    if not isinstance(tid, str) or len(tid) != 32 or not HEX.match(tid):
        return "traceId is not 32 hex digits"
    if not isinstance(sid, str) or len(sid) != 16 or not HEX.match(sid):
        return "spanId is not 16 hex digits"
    pid = span.get("parentSpanId")
    if pid not in (None, "") and (not isinstance(pid, str) or not HEX.match(pid)):
        return "parentSpanId is not hex"
    if _nanos(span.get("startTimeUnixNano")) is None:
        return "startTimeUnixNano is not a decimal number"
    if "endTimeUnixNano" in span and _nanos(span.get("endTimeUnixNano")) is None:
        return "endTimeUnixNano is not a decimal number"
    return None


def _short_key(key):
    if key == "faas.coldstart":
        return "cold_start"
    for prefix in ("aws.lambda.", "lambda_tracer."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _maybe_json(v):
    """A string holding a JSON object or array, parsed; anything else as is."""
    if isinstance(v, str) and v[:1] in "{[":
        try:
            return json.loads(v)
        except (ValueError, RecursionError):
            return v
    return v


def _span_node(span, is_segment, resource):
    attrs = attributes(span.get("attributes"))
    node = {"name": _str(span.get("name"), "?") or "?", "id": span["spanId"].lower(),
            "start_time": _nanos(span["startTimeUnixNano"])}
    end = _nanos(span.get("endTimeUnixNano"))
    if end is not None:
        node["end_time"] = end
    if attrs.pop(OTLP_IN_PROGRESS, None) is True or end is None:
        node["in_progress"] = True
    status = _dict(span.get("status"))
    code = status.get("code")
    events = [e for e in (span.get("events") or []) if isinstance(e, dict)] \
        if isinstance(span.get("events"), list) else []
    exc = next((e for e in events if e.get("name") == OTLP_EXCEPTION_EVENT), None)
    others = []
    for e in events:
        if e is exc:
            continue
        others.append({"name": _str(e.get("name")), "time": _nanos(e.get("timeUnixNano")),
                       "attributes": {k: _maybe_json(v) for k, v in attributes(e.get("attributes")).items()}})
    short = {_short_key(k): v for k, v in attrs.items()}
    etype = ""
    if exc is not None:
        ea = attributes(exc.get("attributes"))
        etype = _str(ea.get("exception.type"))
        node["cause"] = {"exceptions": [{"type": etype, "message": _str(ea.get("exception.message"))}]}
    if code == 2 or code == "STATUS_CODE_ERROR":
        etype = etype or _str(status.get("message"))
        if (etype and not etype.startswith(FAULT_PREFIXES)
                and short.get("status") not in ("timeout", "failure")):
            node["error"] = True
        else:
            node["fault"] = True
    if is_segment:
        if etype:
            short.setdefault("error_type", etype)
        node["annotations"] = short
        if attrs.get("faas.invocation_id"):
            node["aws"] = {"request_id": _str(attrs["faas.invocation_id"])}
        meta = {}
        if resource:
            meta["resource"] = resource
        if others:
            meta["events"] = others
        if meta:
            node["metadata"] = {"otlp": meta}
    else:
        if short:
            node["annotations"] = short
        if others:
            node["metadata"] = {"otlp": {"events": others}}
    return node


def _build_otlp(loaded):
    """Trees from the collected spans: one Invocation version per (request
    that carried a root span)."""
    by_trace = {}
    for where, resource, span in loaded._spans:
        by_trace.setdefault(span["traceId"].lower(), []).append((where, resource, span))
    for tid, items in by_trace.items():
        # one group per request ("where"): a span id may come again in a later request
        groups = {}
        for where, resource, span in items:
            groups.setdefault(where, []).append((resource, span))
        for where, group in groups.items():
            ids = {s["spanId"].lower() for _, s in group}
            children = {}
            roots = []
            for resource, span in group:
                pid = (span.get("parentSpanId") or "").lower()
                if span.get("kind") == 2 or not pid or pid not in ids:
                    roots.append((resource, span))
                else:
                    children.setdefault(pid, []).append(span)
            for resource, span in roots:
                seg = _span_node(span, True, resource)
                seg["trace_id"] = "1-%s-%s" % (tid[:8], tid[8:])
                pid = (span.get("parentSpanId") or "").lower()
                if pid:
                    seg["parent_id"] = pid
                seg["origin"] = "AWS::Lambda::Function" if resource.get("cloud.platform") == "aws_lambda" else ""
                seen = {seg["id"]}
                _attach(seg, children, seen, 0, loaded, where)
                key = (seg["trace_id"], seg["id"])
                inv = loaded._by_key.get(key)
                if inv is None:
                    inv = loaded._by_key[key] = Invocation(key, "otlp")
                    loaded.invocations.append(inv)
                inv.versions.append(seg)


def _attach(node, children, seen, depth, loaded, where):
    kids = sorted(children.get(node["id"], []), key=lambda s: _nanos(s["startTimeUnixNano"]) or 0)
    for span in kids:
        sid = span["spanId"].lower()
        if sid in seen:
            continue
        seen.add(sid)
        if depth >= MAX_DEPTH:
            loaded.problem(where, "OTLP span: nested too deep, left out")
            continue
        child = _span_node(span, False, None)
        node.setdefault("subsegments", []).append(child)
        _attach(child, children, seen, depth + 1, loaded, where)


# --- finding documents in text ------------------------------------------------------------

def _take(loaded, obj, where, nested=0):
    """Adds whatever trace documents obj holds.  Returns True when obj was
    recognised (as documents or a container of log messages)."""
    if isinstance(obj, list):
        found = False
        for i, item in enumerate(obj):
            found = _take(loaded, item, where, nested) or found
        return found
    if isinstance(obj, str):
        if nested < MAX_NESTED_TEXT:
            _lines(loaded, obj, where, nested + 1)
        return True
    if not isinstance(obj, dict):
        return False
    if is_xray(obj):
        _add_xray(loaded, obj, where)
        return True
    if is_otlp(obj):
        _add_otlp(loaded, obj, where)
        return True
    if isinstance(obj.get("events"), list):          # aws logs filter-log-events / get-log-events
        for ev in obj["events"]:
            if isinstance(ev, dict) and isinstance(ev.get("message"), str):
                _take(loaded, ev["message"], where, nested)
        return True
    if isinstance(obj.get("results"), list):         # Logs Insights get-query-results
        for row in obj["results"]:
            for cell in row if isinstance(row, list) else []:
                if isinstance(cell, dict) and cell.get("field") == "@message":
                    _take(loaded, cell.get("value"), where, nested)
        return True
    if isinstance(obj.get("Traces"), list):          # aws xray batch-get-traces
        for tr in obj["Traces"]:
            for seg in _dict(tr).get("Segments") or []:
                doc = _dict(seg).get("Document")
                if isinstance(doc, str):
                    _take(loaded, doc, where, nested)
        return True
    if isinstance(obj.get("message"), str) and nested < MAX_NESTED_TEXT:   # a JSON log wrapper
        sub = Loaded()
        _lines(sub, obj["message"], where, nested + 1)
        if sub.documents or sub.malformed:
            _lines(loaded, obj["message"], where, nested + 1)
            return True
    return False


def _decode_at(text, i):
    try:
        return json.JSONDecoder().raw_decode(text, i)
    except (ValueError, RecursionError):
        return None


def _line(loaded, line, where, nested):
    s = line.strip()
    if not s:
        return
    # the JSON object may follow a prefix (aws logs tail: time and stream)
    starts = [m.start() for m in re.finditer(r"\{", s)][:4]
    for i in starts:
        got = _decode_at(s, i)
        if got is None:
            continue
        if _take(loaded, got[0], where, nested):
            return
        break   # a JSON log line of another kind
    if SIGNATURE.search(s):
        loaded.problem(where, "looks like a trace document but is not complete JSON")
    else:
        loaded.other_lines += 1


def _lines(loaded, text, where, nested=0):
    for n, line in enumerate(text.splitlines(), 1):
        _line(loaded, line, "%s:%d" % (where, n) if nested == 0 else where, nested)


def _values(text):
    """The JSON values text holds, separated by whitespace, or None when
    some part is not JSON."""
    values, i, n = [], 0, len(text)
    dec = json.JSONDecoder()
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return values
        try:
            v, i = dec.raw_decode(text, i)
        except (ValueError, RecursionError):
            return None
        values.append(v)


def load_text(text, name="input", loaded=None):
    """Adds the documents of one input's text to loaded (a new Loaded when
    None) and returns it; call finish() once every input is in."""
    loaded = loaded if loaded is not None else Loaded()
    values = _values(text) if text.lstrip()[:1] in ("{", "[") else None
    lines = sum(1 for line in text.splitlines() if line.strip())
    if values is None or (len(values) > 1 and len(values) == lines):
        # log lines, JSON lines: line by line (a bad line costs only itself)
        _lines(loaded, text, name)
        return loaded
    # whole JSON values: CLI output, an array, pretty-printed requests
    for k, v in enumerate(values):
        where = name if len(values) == 1 else "%s value %d" % (name, k + 1)
        items = v if isinstance(v, list) else [v]
        for j, item in enumerate(items):
            at = "%s[%d]" % (where, j) if isinstance(v, list) else where
            if not _take(loaded, item, at):
                loaded.other_lines += 1
    return loaded


def finish(loaded):
    """Builds the OTLP trees, hangs the independent subsegments on their
    invocations, orders invocations by start time.  Returns loaded."""
    _build_otlp(loaded)
    loaded._spans = []
    by_trace = {}
    for inv in loaded.invocations:
        by_trace.setdefault(inv.key[0], []).append(inv)
    for sub in loaded._subsegs:
        invs = by_trace.get(sub.get("trace_id"))
        if not invs:
            loaded.orphans += 1
            continue
        for inv in invs:
            inv.subsegment_docs.append(sub)
    loaded._subsegs = []
    order = {id(inv): n for n, inv in enumerate(loaded.invocations)}
    loaded.invocations.sort(key=lambda inv: (inv.start, order[id(inv)]))
    return loaded


def read_file(path):
    """The text of a file ('-': standard input), gzip-aware, undecodable
    bytes replaced."""
    import sys
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, ValueError):
            pass
    return data.decode("utf-8", errors="replace")


def load(paths):
    """Loaded from files (see read_file)."""
    loaded = Loaded()
    for p in paths:
        load_text(read_file(p), "stdin" if p == "-" else p, loaded)
    return finish(loaded)
