"""Small helpers: clocks, JSON, trace headers, subscription validation.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import datetime
import json
import time
import urllib.parse

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403

__all__ = ['_mono_ns', '_iso_ms', '_ms', 'normalize_runtime_error_type', '_json', '_err_body', '_parse_trace_header', '_is_int', '_schema_errors', 'validate_subscription']


# ----------------------------------------------------------------------------- helpers

def _mono_ns():
    return time.monotonic_ns()


def _iso_ms(epoch_ns):
    """ISO 8601 UTC with millisecond precision and Z, like Lambda's record times."""
    secs, rem = divmod(int(epoch_ns), 1_000_000_000)
    dt = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (rem // 1_000_000)


def _ms(ns):
    return round(ns / 1e6, 3)


def normalize_runtime_error_type(value):
    """Lambda keeps a runtime-supplied error type only if it looks like Runtime.X / Function.X."""
    if value and ERROR_TYPE_RE.match(value.strip()):
        return value.strip()
    return "Runtime.Unknown"


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def _err_body(error_type, message):
    return _json({"errorMessage": message, "errorType": error_type})


def _parse_trace_header(value):
    parts = {}
    for piece in (value or "").split(";"):
        if "=" in piece:
            k, v = piece.split("=", 1)
            parts[k.strip()] = v.strip()
    return parts


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _schema_errors(schema, value, path="$"):
    """A small JSON-Schema subset validator (type, required, properties, enum, items,
    minItems, minLength, minimum, maximum, oneOf).  Returns a list of messages."""
    errs = []
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not _schema_errors(s, value, path)]
        if len(ok) != 1:
            errs.append("%s: must match exactly one schema in oneOf (matched %d)" % (path, len(ok)))
        return errs
    t = schema.get("type")
    if t == "object" and not isinstance(value, dict):
        return ["%s: expected object" % path]
    if t == "array" and not isinstance(value, list):
        return ["%s: expected array" % path]
    if t == "string" and not isinstance(value, str):
        return ["%s: expected string" % path]
    if t == "integer" and not _is_int(value):
        return ["%s: expected integer" % path]
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: value must be one of %s" % (path, ", ".join(map(json.dumps, schema["enum"]))))
    if t == "string" and "minLength" in schema and len(value) < schema["minLength"]:
        errs.append("%s: length must be >= %d" % (path, schema["minLength"]))
    if t == "integer":
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: must be >= %d but found %d" % (path, schema["minimum"], value))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: must be <= %d but found %d" % (path, schema["maximum"], value))
    if t == "array":
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append("%s: minimum %d items required" % (path, schema["minItems"]))
        if "items" in schema:
            for i, item in enumerate(value):
                errs.extend(_schema_errors(schema["items"], item, "%s[%d]" % (path, i)))
    if t == "object":
        for key in schema.get("required", []):
            if key not in value:
                errs.append("%s: missing property %r" % (path, key))
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errs.extend(_schema_errors(sub, value[key], "%s.%s" % (path, key)))
    return errs


def validate_subscription(body, allow_any_host=False, versions=SCHEMA_VERSIONS):
    """Validate a Telemetry API subscribe body.

    `versions` are the schema versions accepted (an era of Lambda, or Managed Instances, may
    accept fewer than SCHEMA_VERSIONS).
    Returns (None, parsed) on success or (message, None) on a validation error.
    parsed = {"schemaVersion", "types", "buffering" (complete, defaults applied),
              "destination": {"protocol", "host", "port", "path", "uri"}}.
    2025-01-29 is validated against SUBSCRIPTION_SCHEMA_2025_01_29; the older schema
    versions use the same rules except that a TCP destination may also be given as a URI.
    """
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return "failed to parse JSON: %s" % exc, None
    if not isinstance(obj, dict):
        return "failed to parse JSON: request body must be a JSON object", None
    errs = []
    version = obj.get("schemaVersion")
    if not isinstance(version, str) or version not in SCHEMA_VERSIONS or version not in versions:
        errs.append("schemaVersion must be one of %s" % ", ".join(v for v in SCHEMA_VERSIONS if v in versions))
        if not isinstance(version, str) or version not in SCHEMA_VERSIONS:
            version = "2025-01-29"
    if version == "2025-01-29":
        errs.extend(_schema_errors(SUBSCRIPTION_SCHEMA_2025_01_29, obj))
    else:
        schema = json.loads(json.dumps(SUBSCRIPTION_SCHEMA_2025_01_29))
        schema["properties"]["schemaVersion"]["enum"] = [version]
        tcp = schema["properties"]["destination"]["oneOf"][1]
        tcp["required"] = ["protocol"]
        tcp["properties"]["URI"] = {"type": "string", "minLength": 1}
        errs.extend(_schema_errors(schema, obj))
    types = obj.get("types")
    if isinstance(types, list) and not types:
        errs.append("types should not be empty")
    dest_out = None
    dest = obj.get("destination")
    if isinstance(dest, dict) and not errs:
        proto = dest.get("protocol")
        uri = dest.get("URI")
        if proto == "HTTP" or (proto == "TCP" and "port" not in dest):
            if proto == "TCP" and not isinstance(uri, str):
                errs.append("TCP destination needs a port")
            else:
                parts = urllib.parse.urlsplit(uri)
                scheme = "http" if proto == "HTTP" else "tcp"
                try:
                    port = parts.port
                except ValueError:
                    port = None
                    errs.append("URI port is invalid")
                if parts.scheme.lower() != scheme:
                    errs.append("URI scheme must be %s" % scheme)
                elif not parts.hostname:
                    errs.append("URI host is not provided")
                elif port is None and not errs:
                    errs.append("URI port is not provided")
                elif not allow_any_host and parts.hostname.lower() not in SANDBOX_HOSTS:
                    errs.append("URI host must be sandbox.localdomain")
                elif port == 9001:
                    errs.append("port 9001 is reserved")
                if not errs:
                    dest_out = {"protocol": proto, "host": parts.hostname, "port": port,
                                "path": (parts.path or "/") + ("?" + parts.query if parts.query else ""),
                                "uri": uri}
        else:
            port = dest.get("port")
            if port == 9001:
                errs.append("port 9001 is reserved")
            else:
                dest_out = {"protocol": "TCP", "host": "sandbox.localdomain", "port": port,
                            "path": None, "uri": None}
    if errs:
        return "; ".join(errs), None
    buffering = dict(DEFAULT_BUFFERING)
    if isinstance(obj.get("buffering"), dict):
        for key in BUFFERING_LIMITS:
            if key in obj["buffering"]:
                buffering[key] = obj["buffering"][key]
    return None, {"schemaVersion": version, "types": list(types), "buffering": buffering,
                  "destination": dest_out}
