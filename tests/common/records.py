"""Telemetry API batches made up for tests and benchmarks."""
import json
import uuid


def fake_invocations(n, t0="2026-11-23T10:00:00.000Z"):
    """n complete invocations' worth of platform records, as one batch."""
    recs = []
    for i in range(n):
        rid = str(uuid.uuid4())
        recs += [
            {"time": t0, "type": "platform.start", "record": {"requestId": rid}},
            {"time": t0, "type": "platform.runtimeDone", "record": {
                "requestId": rid, "status": "success", "metrics": {"durationMs": 1.0},
                "spans": [{"name": "responseLatency", "start": t0, "durationMs": 0.5}]}},
            {"time": t0, "type": "platform.report", "record": {
                "requestId": rid, "status": "success", "metrics": {
                    "durationMs": 1.5, "billedDurationMs": 2, "memorySizeMB": 128, "maxMemoryUsedMB": 30}}},
        ]
    return json.dumps(recs).encode()
