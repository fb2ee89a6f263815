"""Scenarios and quirks: the era/schema quirks and the platform fault knobs, with their defaults.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""



from .constants import *  # noqa: F401,F403

__all__ = ['DEFAULT_QUIRKS', 'DEFAULT_FAULTS']


DEFAULT_QUIRKS = {
    # status of runtimeDone/report after /invocation/{id}/error: "error" (RIE-MI) or "success" (classic RIE)
    "handled_error_status": "error",
    # 2022/2023 era: initStart only {initializationType, phase}; initReport without status
    "omit_init_fields": False,
    # runtimeDone without the runtimeOverhead span (added later)
    "omit_runtime_overhead": False,
    # no spans at all in runtimeDone / report (oldest captures)
    "omit_spans": False,
    # errorType to put on timed-out runtimeDone/report (real captures: none; RIE-MI: "Sandbox.Timedout")
    "timeout_error_type": None,
    # a header when the caller sends none, as Lambda does: None follows tracing_mode (PassThrough:
    # Sampled=0; Active: Sampled by X-Ray's default rule); False: no header (older emulators)
    "generate_trace_header": None,
    # put tracing into platform.start/runtimeDone/report even when Sampled=0
    "start_tracing_unsampled": False,
    # Active tracing: the runtime's Lambda-Runtime-Trace-Id gets Parent=<spanId of platform.start>
    "rewrite_runtime_trace_parent": True,
    # telemetry delivery: retries after the first attempt, first backoff, time to wait for an answer
    "delivery_retries": 3,
    "delivery_backoff_ms": 100,
    "delivery_timeout_ms": 1000,
    # per-subscriber buffer; beyond it the oldest records are dropped (platform.logsDropped)
    "subscriber_buffer_bytes": 8 * MIB,
    # accept any destination host (Lambda only documents sandbox.localdomain / sandbox)
    "allow_any_destination_host": False,
    # part of the shutdown budget reserved for the runtime (SIGTERM, then SIGKILL)
    "runtime_shutdown_ms": 300,
    # Telemetry still buffered when a shutdown starts: None flushes it before SHUTDOWN goes out
    # (the usual order); N holds it and delivers it N ms after SHUTDOWN was given, the other
    # order the service also shows ("usually delivered ... during SHUTDOWN")
    "shutdown_telemetry_delay_ms": None,
    # memory sampling period
    "memory_sample_ms": 5,
    # Telemetry API schema versions this era of Lambda accepts; others get 400 ValidationError
    # (Managed Instances accept only 2025-01-29 whatever this says)
    "telemetry_schema_versions": list(SCHEMA_VERSIONS),
    # AWS's own RIE: every subscribe gets 202 Telemetry.NotSupported and nothing is delivered
    "telemetry_not_supported": False,
}

# Fault knobs (`faults={...}`, `--fault K=V`): failures of the platform itself, injected on
# purpose to test how an extension copes.  Off by default; each is a documented deviation
# (README.md, "Fault knobs").
DEFAULT_FAULTS = {
    # answers for the first register calls, in order: {"status": int, "body": str} is answered
    # instead of registering; with "register": true the registration happens and only the
    # body is replaced (an identifier header with a garbage body)
    "register_faults": [],
    # the extensions' pending /event/next connections are reset (RST, no answer) when the
    # sandbox thaws for the next N invokes; the INVOKE waits for the retried call
    "reset_next_after_thaw": 0,
    # SHUTDOWN's deadlineMs = shutdown start + this many ms (may be 0 or negative: already
    # passed); None: the real budget.  The budget enforced (SIGKILL) does not change.
    "shutdown_deadline_ms": None,
    # telemetry not yet delivered when the processes are reset goes to the next process (True),
    # or is lost with them (False)
    "keep_undelivered_records": True,
    # telemetry delivery is held (records buffer as while frozen) while this is true; may be
    # changed on a running emulator (emu.faults["hold_telemetry"] = False releases it)
    "hold_telemetry": False,
    # the extensions' next /event/next calls, in order (each entry is used up, then removed):
    # {"garbage": N, "body": str} answers N calls at once with 200 and a body that is not an
    # event; {"status": S, "count": N, "body": str} answers N calls with an error status (and
    # that body); {"truncate": true} writes the next event with its full Content-Length but half
    # its body, closes the connection and gives the event again on the next call;
    # {"oversize_bytes": N} adds a "padding" field of N bytes to the next INVOKE event;
    # {"patch": {...}} sets these fields of the next INVOKE event (e.g. a hostile requestId)
    "next_faults": [],
    # the next `count` telemetry deliveries that carry a platform.runtimeDone are spoiled:
    # {"how": "garbage"} cuts the body in half (unparsable JSON), {"how": "pad", "bytes": N}
    # appends N spaces inside the array (valid, but N bytes bigger), {"how": "delay", "ms": N}
    # delivers it N ms late (counted while thawed); None: off
    "spoil_runtime_done": None,
}
