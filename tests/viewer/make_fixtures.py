#!/usr/bin/env python3
"""Writes tests/viewer/fixtures/ from one run of the real extension under the
local Lambda emulator, exporting to stdout (X-Ray documents) and to a local
OTLP/JSON sink at the same time, so both forms describe the same invocations.

    python3 tests/viewer/make_fixtures.py --binary build/dev/lambda-tracer

Files written (checked in; the viewer tests read them, they do not run the
binary):
  xray.jsonl          every X-Ray document the stdout exporter printed, as printed
  otlp.jsonl          every OTLP/JSON request body the extension POSTed, one per line
  extension.out       the extension's whole output: its log lines and the documents,
                      interleaved as CloudWatch Logs would store them
  steps.json          per step: label, request id, the emulator's status and error type

Steps: a cold start joining an upstream trace, a warm call, a function error,
a timeout (sleeping past the deadline), a crash
(exit 7) and an out-of-memory kill, then a spin-down.
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402
from common import sinks  # noqa: E402

UPSTREAM = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
STEPS = [
    ("cold start", {"action": "fast"}, UPSTREAM),
    ("warm", {"action": "fast"}, None),
    ("function error", {"action": "error", "type": "Function.MyError", "message": "bad input"}, None),
    ("timeout", {"action": "sleep", "ms": 10000}, None),
    ("crash", {"action": "crash", "code": 7}, None),
    ("oom", {"action": "oom", "mb": 400}, None),
    ("after oom", {"action": "fast"}, None),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"))
    args = ap.parse_args()
    sink = sinks.OtlpSink()
    root = harness.make_root(os.path.abspath(args.binary))
    env = {"LAMBDA_TRACER_EXPORTERS": "stdout,otlp", "LAMBDA_TRACER_OTLP_PROTOCOL": "http/json",
           "LAMBDA_TRACER_OTLP_ENDPOINT": sink.endpoint + "/v1/traces",
           "LAMBDA_TRACER_LOG_LEVEL": "info"}
    emu = harness.new_emulator(root, env=env, timeout_s=2.0, memory_mb=128, lambda_default=True)
    steps = []
    try:
        emu.start()
        for label, payload, header in STEPS:
            # every step sampled (Sampled=1), whatever the extension's sampling policy
            header = header or "Root=1-%08x-%s;Sampled=1" % (int(time.time()), os.urandom(12).hex())
            r = emu.invoke(payload=json.dumps(payload).encode(), trace_header=header)
            steps.append({"label": label, "request_id": r.request_id, "status": r.status,
                          "error_type": r.error_type})
        emu.shutdown(reason="spindown")
        lines = harness.output_lines(emu)
    finally:
        emu.close()
        sink.close()
        shutil.rmtree(root, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "xray.jsonl"), "w") as f:
        for line in lines:
            if line.startswith("{"):
                f.write(line + "\n")
    with open(os.path.join(args.out, "extension.out"), "w") as f:
        for line in lines:
            f.write(line + "\n")
    with open(os.path.join(args.out, "otlp.jsonl"), "w") as f:
        for ctype, body, _ in sink.bodies:
            f.write(json.dumps(json.loads(body), separators=(",", ":")) + "\n")
    with open(os.path.join(args.out, "steps.json"), "w") as f:
        json.dump(steps, f, indent=1)
        f.write("\n")
    print("wrote %s: %d lines of output, %d OTLP requests, %d steps"
          % (args.out, len(lines), len(sink.bodies), len(steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
