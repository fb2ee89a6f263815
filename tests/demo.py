#!/usr/bin/env python3
"""./build.sh demo: lambda-tracer inside the local Lambda emulator.

Attaches the extension to an example Python function and drives one
environment through a cold start, warm invokes, a slow invoke, a timeout
(with the re-init that follows), a crash and a spin-down, then prints, per
invocation, what the emulator did and what the extension received.
"""
import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))
import harness  # noqa: E402

STEPS = [
    ("cold start", b'{"action":"fast"}', "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
    ("warm", b'{"action":"fast"}', None),
    ("warm", b'{"action":"fast"}', "Root=1-5759e989-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad9;Sampled=1"),
    ("slow (400 ms)", b'{"action":"slow","ms":400}', None),
    ("timeout", b'{"action":"sleep","ms":10000}', None),
    ("after timeout", b'{"action":"fast"}', None),
    ("crash", b'{"action":"crash","code":7}', None),
    ("after crash", b'{"action":"fast"}', None),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=None, help="the lambda-tracer binary")
    ap.add_argument("--timeout-s", type=float, default=2.0, help="function timeout")
    args = ap.parse_args()

    root = harness.make_root(args.binary)
    emu = harness.new_emulator(root, timeout_s=args.timeout_s)
    results = []
    try:
        init = emu.start()
        print(f"Init: {init.status} in {init.duration_ms:.1f} ms "
              f"(extensions: {', '.join(f'{k}={v}' for k, v in init.extensions.items())})")
        for label, payload, header in STEPS:
            r = emu.invoke(payload=payload, trace_header=header)
            results.append((label, r))
        sd = emu.shutdown(reason="spindown")
        lines = harness.output_lines(emu)
    finally:
        emu.close()
        shutil.rmtree(root, ignore_errors=True)

    seen = harness.telemetry_seen(lines)
    print()
    print(f"{'step':<15} {'request id':<37} {'status':<8} {'error type':<18} {'ms':>8}  "
          "telemetry the extension received for it")
    print("-" * 130)
    for label, r in results:
        got = [t.replace("platform.", "") for t, rid, _, _ in seen if rid == r.request_id]
        note = " (re-init)" if r.init_phase_ran and label != "cold start" else ""
        print(f"{label + note:<15} {r.request_id:<37} {r.status:<8} {r.error_type or '-':<18} "
              f"{r.duration_ms:>8.1f}  {', '.join(got) or '-'}")
    env_records = [t for t, rid, _, _ in seen if rid == "-"]
    print()
    print("environment records received:", ", ".join(
        f"{t.replace('platform.', '')} x{env_records.count(t)}" for t in dict.fromkeys(env_records)))
    print()
    print("extension shutdowns (one per generation of the extension process):")
    for reason, rest in harness.shutdowns(lines):
        print(f"  reason={reason}: {rest}")
    ext = sd.extensions.get(harness.EXT_NAME)
    if ext is not None:
        print(f"final spin-down: exit code {ext.exit_code}, killed={ext.killed}, "
              f"SHUTDOWN to exit of the whole environment {sd.duration_ms:.1f} ms (budget 2,000 ms)")
    problems = harness.sanitizer_reports(lines)
    if problems:
        print("\n".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
