"""Limits, schema versions, the Telemetry API subscription schema, environment rules.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import re


__all__ = ['MAX_RESPONSE_BYTES', 'MAX_REQUEST_BYTES', 'MAX_EXTENSIONS', 'SCHEMA_VERSIONS', 'TELEMETRY_TYPES', 'DEFAULT_BUFFERING', 'BUFFERING_LIMITS', 'SANDBOX_HOSTS', 'ERROR_TYPE_RE', 'LOGS_DROPPED_REASON', 'MIB', 'INIT_TYPES', 'MI_INIT_TYPE', 'SHUTDOWN_REASONS', 'SIGTERM_SHUTDOWN_REASON', 'RUNTIME_ONLY_VARS', 'PASSTHROUGH_VARS', 'SUBSCRIPTION_SCHEMA_2025_01_29']


# ----------------------------------------------------------------------------- constants

MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100    # Runtime API response limit (RIE's; 413 above)
MAX_REQUEST_BYTES = 64 * 1024 * 1024          # anything bigger is refused and the connection closed
MAX_EXTENSIONS = 10
SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
TELEMETRY_TYPES = ("platform", "function", "extension")
DEFAULT_BUFFERING = {"maxItems": 10000, "maxBytes": 262144, "timeoutMs": 1000}
BUFFERING_LIMITS = {"maxItems": (1000, 10000), "maxBytes": (262144, 1048576), "timeoutMs": (25, 30000)}
SANDBOX_HOSTS = ("sandbox.localdomain", "sandbox")
ERROR_TYPE_RE = re.compile(r"^(Runtime|Function)\.[A-Z][a-zA-Z]+$")
LOGS_DROPPED_REASON = ("Some logs were dropped because the downstream consumer is slower "
                       "than the logs production rate")
MIB = 1024 * 1024
INIT_TYPES = ("on-demand", "provisioned-concurrency", "snap-start", "lambda-managed-instances")
MI_INIT_TYPE = "lambda-managed-instances"
# SHUTDOWN's shutdownReason as the wire spells it: Lambda's three (lower case on the wire, upper
# case in the docs) and the one AWS's RIE resets with when it gets SIGTERM or SIGINT.
SHUTDOWN_REASONS = ("spindown", "timeout", "failure", "SandboxTerminated")
SIGTERM_SHUTDOWN_REASON = "SandboxTerminated"

# Variables the runtime gets but external extensions do not (besides every "_"-prefixed key).
RUNTIME_ONLY_VARS = frozenset({
    "AWS_XRAY_DAEMON_ADDRESS", "AWS_XRAY_CONTEXT_MISSING", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    "_HANDLER", "_X_AMZN_TRACE_ID", "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT",
    "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL",
})
# Parent environment keys passed through to sandbox processes; nothing else leaks in.
PASSTHROUGH_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "USER", "LOGNAME", "TERM")

# The Telemetry API subscription schema for 2025-01-29, transcribed from the published
# JSON schema (reference/schemas/rie-telemetry-subscription-schema.2025-01-29.json); the
# emulator's test suite checks it is identical to the reference file.
SUBSCRIPTION_SCHEMA_2025_01_29 = {
    "type": "object",
    "required": ["schemaVersion", "types", "destination"],
    "properties": {
        "schemaVersion": {"type": "string", "enum": ["2025-01-29"]},
        "types": {"type": "array", "minItems": 1,
                  "items": {"type": "string", "enum": ["platform", "function", "extension"]}},
        "destination": {"oneOf": [
            {"type": "object", "required": ["protocol", "URI"],
             "properties": {"protocol": {"type": "string", "enum": ["HTTP"]},
                            "URI": {"type": "string", "minLength": 1}}},
            {"type": "object", "required": ["protocol", "port"],
             "properties": {"protocol": {"type": "string", "enum": ["TCP"]},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535}}},
        ]},
        "buffering": {"type": "object", "properties": {
            "maxItems": {"type": "integer", "minimum": 1000, "maximum": 10000},
            "maxBytes": {"type": "integer", "minimum": 262144, "maximum": 1048576},
            "timeoutMs": {"type": "integer", "minimum": 25, "maximum": 30000},
        }},
    },
}
