"""The command line (`python3 lambda_emulator.py run ...`).

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import argparse
import json
import signal

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .core import *  # noqa: F401,F403

__all__ = ['_parse_kv', '_parse_quirks', '_short', '_cmd_run', '_print_tail', '_print_shutdown', 'main']


# ----------------------------------------------------------------------------- CLI

def _parse_kv(items):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit("expected KEY=VALUE, got %r" % item)
        k, v = item.split("=", 1)
        out[k] = v
    return out


def _parse_quirks(items):
    out = {}
    for k, v in _parse_kv(items).items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _short(data, n=120):
    if data is None:
        return "-"
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
    return text if len(text) <= n else text[:n] + "..."


def _cmd_run(args):
    if args.init_type == MI_INIT_TYPE:
        args.managed_instances = True
    env = _parse_kv(args.env)
    # Nothing leaves this machine unless asked: lambda-tracer's own default is the real
    # X-Ray API, so the command line sets its stdout exporter (--env LAMBDA_TRACER_EXPORTERS=...
    # overrides); the documents land in --work-dir's lambda-tracer.log for ./build.sh view.
    env.setdefault("LAMBDA_TRACER_EXPORTERS", "stdout")
    quirks = _parse_quirks(args.quirk)
    faults = _parse_quirks(args.fault)
    emu = Emulator(root=args.root, runtime=args.runtime, function_name=args.function_name,
                   function_version=args.function_version, memory_mb=args.memory_mb, timeout_s=args.timeout_s,
                   init_type=args.init_type, region=args.region, account_id=args.account_id, env=env,
                   init_timeout_s=args.init_timeout_s, shutdown_budget_ms=args.shutdown_budget_ms,
                   freeze=not args.no_freeze, quirks=quirks, faults=faults, log_path=args.log, work_dir=args.work_dir,
                   managed_instances=args.managed_instances,
                   max_concurrency=args.max_concurrency if args.managed_instances else None,
                   tracing_mode=args.tracing_mode)
    rc = 0
    # RIE on SIGTERM or SIGINT resets the sandbox with reason SandboxTerminated: no further
    # invoke, SHUTDOWN SandboxTerminated to the extensions.  (An invoke in flight is finished
    # first here; RIE cuts it.)
    terminated = []

    def on_signal(signum, frame):
        terminated.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        print("runtime API: %s" % emu.runtime_api)
        if not args.no_start:
            r = emu.start()
            print("init: %s%s %.1f ms phase=%s type=%s extensions=%s" % (
                r.status, " (%s)" % r.error_type if r.error_type else "", r.duration_ms, r.phase, r.init_type,
                ", ".join("%s:%s" % kv for kv in r.extensions.items()) or "none"))
            if r.status != "success":
                _print_tail(emu)
        traces = args.trace_header or []
        payloads = args.invoke or []
        headers = [traces[i] if i < len(traces) else (traces[-1] if traces else None) for i in range(len(payloads))]
        if args.managed_instances:
            # Managed Instances: all invokes at once (up to --max-concurrency in flight)
            results = emu.invoke_many([p.encode() for p in payloads], trace_header=headers)
        else:
            results = None
        for i, payload in enumerate(payloads):
            if terminated:
                print("signal %d: no further invoke" % terminated[0])
                break
            r = results[i] if results is not None else emu.invoke(payload.encode(), trace_header=headers[i])
            print("invoke %d %s: %s%s duration=%.1f ms billed=%d ms maxMemoryUsed=%d MB init=%s response=%s" % (
                i + 1, r.request_id, r.status, " (%s)" % r.error_type if r.error_type else "",
                r.duration_ms, r.billed_duration_ms, r.max_memory_used_mb,
                "yes" if r.init_phase_ran else "no", _short(r.response)))
            if r.exit_code is not None:
                print("  runtime exit code %s%s" % (r.exit_code, " (%s)" % r.exit_signal if r.exit_signal else ""))
            if r.shutdown:
                _print_shutdown(r.shutdown, "  reset")
            if r.status != "success":
                rc = 1
                if r.init_phase_ran and r.init and r.init.status != "success":
                    _print_tail(emu)
        if terminated:
            _print_shutdown(emu.shutdown(SIGTERM_SHUTDOWN_REASON), "shutdown")
        elif args.shutdown:
            _print_shutdown(emu.shutdown(args.shutdown), "shutdown")
        if args.records:
            with open(args.records, "w") as f:
                for rec in emu.emitted:
                    f.write(json.dumps(rec) + "\n")
        print("api calls served: %d, telemetry POSTs: %d, records emitted: %d" % (
            sum(1 for e in emu.api_log if e["api"] != "delivery"), len(emu.delivered), len(emu.emitted)))
    finally:
        emu.close()
    return rc


def _print_tail(emu, n=5):
    lines = emu.output("runtime")[-n:]
    for line in lines:
        print("  runtime output: %s" % line)


def _print_shutdown(sd, label):
    print("%s %s: %.1f ms runtime_exit=%s%s" % (label, sd.reason, sd.duration_ms, sd.runtime_exit_code,
                                              " (killed)" if sd.runtime_killed else ""))
    for name, e in sd.extensions.items():
        print("  extension %s: exit=%s killed=%s shutdown_delivered=%s ms_to_exit=%s" % (
            name, e.exit_code, e.killed, e.shutdown_delivered, e.ms_to_exit))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="lambda_emulator.py",
                                     description="Local AWS Lambda execution-environment emulator")
    subs = parser.add_subparsers(dest="cmd", required=True)
    p = subs.add_parser("run", help="start an environment, invoke it, shut it down",
                        description="Run Init, the given invokes and a shutdown; print a summary.")
    p.add_argument("--root", required=True, help="sandbox root; extensions are <root>/opt/extensions/*")
    p.add_argument("--runtime", required=True, help='bootstrap command line, e.g. "python3 runtimes/bootstrap.py"')
    p.add_argument("--function-name", default="demo-fn")
    p.add_argument("--function-version", default="$LATEST")
    p.add_argument("--memory-mb", type=int, default=128)
    p.add_argument("--timeout-s", type=float, default=3)
    p.add_argument("--init-type", default="on-demand", choices=list(INIT_TYPES))
    p.add_argument("--managed-instances", action="store_true",
                   help="Lambda Managed Instances: the --invoke payloads run concurrently")
    p.add_argument("--max-concurrency", type=int, default=2, help="Managed Instances: invocations at once")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--tracing-mode", default="PassThrough", choices=["PassThrough", "Active"],
                   help="the header Lambda makes for a call without one: Sampled=0, or X-Ray's default rule")
    p.add_argument("--account-id", default="123456789012")
    p.add_argument("--env", action="append", metavar="K=V", help="customer environment variable (repeatable)")
    p.add_argument("--quirk", action="append", metavar="K=V", help="schema/era quirk, JSON value (repeatable)")
    p.add_argument("--fault", action="append", metavar="K=V", help="fault knob, JSON value (repeatable)")
    p.add_argument("--init-timeout-s", type=float, default=None)
    p.add_argument("--shutdown-budget-ms", type=int, default=2000)
    p.add_argument("--no-freeze", action="store_true", help="do not SIGSTOP the sandbox between invokes")
    p.add_argument("--no-start", action="store_true", help="skip the explicit Init (first invoke cold-starts)")
    p.add_argument("--invoke", action="append", metavar="JSON", help="invoke payload (repeatable, in order)")
    p.add_argument("--trace-header", action="append", metavar="X-Amzn-Trace-Id",
                   help="trace header; one for all invokes or one per invoke")
    p.add_argument("--shutdown", default="spindown", nargs="?", const="spindown",
                   help="shutdown reason at the end (%s); '' to skip; SIGTERM or SIGINT "
                        "stops the invokes and shuts down with %s" % ("|".join(SHUTDOWN_REASONS),
                                                                      SIGTERM_SHUTDOWN_REASON))
    p.add_argument("--log", help="write the API log (JSONL) here")
    p.add_argument("--records", help="write every emitted telemetry record (JSONL) here")
    p.add_argument("--work-dir", help="directory for captured process output")
    p.set_defaults(func=_cmd_run)
    args = parser.parse_args(argv)
    return args.func(args)
