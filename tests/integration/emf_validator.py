"""A strict validator for CloudWatch embedded metric format (EMF) documents, written from the
specification's rules (reference observability-2026.md "CloudWatch embedded metric format";
AWS "Specification: Embedded metric format"):

- the document is a JSON object with an `_aws` member: an object with `Timestamp` (an integer,
  milliseconds since the epoch) and `CloudWatchMetrics`, a non-empty array of directives;
- a directive is an object with `Namespace` (a non-empty string of 1-255 characters),
  `Dimensions` (an array of dimension sets, each an array of 0-30 dimension names that are
  non-empty strings) and `Metrics` (an array of at most 100 metric definitions);
- a metric definition is an object with `Name` (a non-empty string of at most 1024 characters),
  optionally `Unit` (one of CloudWatch's standard units) and `StorageResolution` (1 or 60);
- each metric name is a member of the root: a number, or an array of 1-100 numbers;
- each dimension name is a member of the root whose value is a non-empty string
  (CloudWatch: 1-1024 characters).

Strict beyond the letter: unknown keys in `_aws`, directives and metric definitions are errors,
numbers must be finite, and booleans are not numbers."""
import json
import math

UNITS = frozenset((
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None"))

MAX_DIMENSIONS = 30
MAX_METRICS = 100
MAX_VALUES = 100


class EmfError(ValueError):
    pass


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _name(v, limit):
    return isinstance(v, str) and 0 < len(v) <= limit


def validate(doc):
    """Raises EmfError naming the first rule doc breaks; returns doc."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except ValueError as e:
            raise EmfError("not JSON: %s" % e)
    if not isinstance(doc, dict):
        raise EmfError("not a JSON object")
    aws = doc.get("_aws")
    if not isinstance(aws, dict):
        raise EmfError("_aws missing or not an object")
    extra = set(aws) - {"Timestamp", "CloudWatchMetrics", "LogGroupName", "LogStreamName"}
    if extra:
        raise EmfError("unknown _aws members %s" % sorted(extra))
    ts = aws.get("Timestamp")
    if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
        raise EmfError("_aws.Timestamp is not a positive integer")
    if not 946684800000 <= ts <= 4102444800000:
        raise EmfError("_aws.Timestamp %r is not milliseconds since the epoch (2000-2100)" % ts)
    cwm = aws.get("CloudWatchMetrics")
    if not isinstance(cwm, list) or not cwm:
        raise EmfError("_aws.CloudWatchMetrics is not a non-empty array")
    for i, d in enumerate(cwm):
        where = "CloudWatchMetrics[%d]" % i
        if not isinstance(d, dict):
            raise EmfError(where + " is not an object")
        extra = set(d) - {"Namespace", "Dimensions", "Metrics"}
        if extra:
            raise EmfError("%s: unknown members %s" % (where, sorted(extra)))
        if not _name(d.get("Namespace"), 255):
            raise EmfError(where + ".Namespace is not a string of 1-255 characters")
        if d["Namespace"].startswith("AWS/"):
            raise EmfError(where + ".Namespace uses the reserved AWS/ prefix")
        dims = d.get("Dimensions")
        if not isinstance(dims, list):
            raise EmfError(where + ".Dimensions is not an array")
        for j, ds in enumerate(dims):
            if not isinstance(ds, list):
                raise EmfError("%s.Dimensions[%d] is not an array (Dimensions is an array of arrays)"
                               % (where, j))
            if len(ds) > MAX_DIMENSIONS:
                raise EmfError("%s.Dimensions[%d] has %d dimensions (at most %d)"
                               % (where, j, len(ds), MAX_DIMENSIONS))
            if len(set(ds)) != len(ds):
                raise EmfError("%s.Dimensions[%d] repeats a dimension" % (where, j))
            for name in ds:
                if not _name(name, 255):
                    raise EmfError("%s.Dimensions[%d]: %r is not a dimension name" % (where, j, name))
                if name not in doc:
                    raise EmfError("dimension %r is not a member of the document" % name)
                if not _name(doc[name], 1024):
                    raise EmfError("dimension %r: value %r is not a non-empty string"
                                   % (name, doc[name]))
        metrics = d.get("Metrics")
        if not isinstance(metrics, list):
            raise EmfError(where + ".Metrics is not an array")
        if len(metrics) > MAX_METRICS:
            raise EmfError("%s has %d metrics (at most %d)" % (where, len(metrics), MAX_METRICS))
        seen = set()
        for m in metrics:
            if not isinstance(m, dict):
                raise EmfError(where + ": a metric definition is not an object")
            extra = set(m) - {"Name", "Unit", "StorageResolution"}
            if extra:
                raise EmfError("%s: unknown metric definition members %s" % (where, sorted(extra)))
            name = m.get("Name")
            if not _name(name, 1024):
                raise EmfError(where + ": metric Name is not a string of 1-1024 characters")
            if name in seen:
                raise EmfError("%s: metric %r defined twice" % (where, name))
            seen.add(name)
            if "Unit" in m and m["Unit"] not in UNITS:
                raise EmfError("metric %r: unit %r is not a CloudWatch unit" % (name, m["Unit"]))
            if "StorageResolution" in m and (m["StorageResolution"] not in (1, 60) or
                                             isinstance(m["StorageResolution"], bool)):
                raise EmfError("metric %r: StorageResolution is not 1 or 60" % name)
            if name not in doc:
                raise EmfError("metric %r is not a member of the document" % name)
            v = doc[name]
            if isinstance(v, list):
                if not 0 < len(v) <= MAX_VALUES:
                    raise EmfError("metric %r: an array of %d values (1 to %d)" % (name, len(v), MAX_VALUES))
                if not all(_number(x) for x in v):
                    raise EmfError("metric %r: an array member is not a finite number" % name)
            elif not _number(v):
                raise EmfError("metric %r: value %r is not a number or an array of numbers" % (name, v))
            if name == "_aws":
                raise EmfError("a metric is named _aws")
    return doc


def emf_lines(lines):
    """The EMF documents among output lines (JSON objects with an _aws member), validated."""
    docs = []
    for line in lines:
        if line.startswith("{") and '"_aws"' in line:
            docs.append(validate(line))
    return docs
