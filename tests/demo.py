#!/usr/bin/env python3
"""./build.sh demo: lambda-tracer inside the local Lambda emulator.

Attaches the extension to an example Python function and drives one
environment through a cold start (joining an upstream trace), warm invokes, a
slow invoke, a timeout in a busy loop (its cause says what the function was
doing; and the re-init that follows), a crash, a leak (warm calls whose memory grows) and the out-of-memory
kill and a spin-down.  Everything runs with Lambda's defaults: PassThrough
tracing (a call without a header gets Sampled=0) and no sampling setting, so
a fast warm call without a header is exported only when the sample takes it
(the first of its second, or 5 %); every other step is always exported, and
each segment says why (sampled_by).  Every X-Ray document the extension exported (its stdout
exporter, one JSON line each) is written to build/demo/segments.jsonl, and each
invocation's final segment is printed as a waterfall on a time axis.

Exits 1 when the binary is missing, when a sanitizer reported anything, when an
invocation that must be exported has no final segment, or when a segment's
status is not the one the step provokes.
"""
import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "integration"))
sys.path.insert(0, os.path.join(REPO, "viewer"))
import harness  # noqa: E402
import page  # noqa: E402
import traces  # noqa: E402
import waterfall  # noqa: E402

UPSTREAM = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
UPSTREAM2 = "Root=1-5759e989-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad9;Sampled=1"
FAST = b'{"action":"fast"}'

SLOW = None  # a slow step: 60 % of the timeout, over the default slow threshold (half of it)
# (label, payload, trace header, the status mark its final segment must carry; "OK?": a fast
# warm call with Lambda's Sampled=0 header, exported only when the sample takes it)
STEPS = [
    ("cold start", FAST, UPSTREAM, "OK"),
    ("warm", FAST, None, "OK?"),
    ("warm", FAST, UPSTREAM2, "OK"),
    ("warm", FAST, None, "OK?"),
    ("slow", SLOW, None, "OK"),
    # stuck in a busy loop: the segment's cause says so (timeout forensics)
    ("timeout", b'{"action":"spin","ms":10000}', None, "TIMEOUT"),
    ("after timeout", FAST, None, "OK"),
    ("crash", b'{"action":"crash","code":7}', None, "CRASH"),
    # a leak: each warm call keeps 20 MB more, then one runs out of memory; its cause states
    # the memory trend ("growing steadily: a leak?")
    ("leak 20 MB", b'{"action":"grow","mb":20}', None, "OK?"),
    ("leak 20 MB", b'{"action":"grow","mb":20}', None, "OK?"),
    ("leak 20 MB", b'{"action":"grow","mb":20}', None, "OK?"),
    ("oom 400 MB", b'{"action":"oom","mb":400}', None, "OOM"),
    # the OOM kill reset the environment: without one more invoke the
    # spin-down would find nothing running to shut down
    ("after oom", FAST, None, "OK"),
]


BUILD_NOTE = {
    "release": "The release build: the static binary the layer ships.",
    "dev": ("The development build (linked against this machine's shared libcurl and OpenSSL): its "
            "Init takes 10-20 ms longer than the layer's static release binary's (about 2 ms of CPU "
            "to its first /event/next in the benchmark). "
            "./build.sh layer builds the release binary once; the demo then uses it."),
}

LEGEND = [
    "How to read it: each invocation is a tree of phases on one time axis, in ms from the invocation's",
    "start (Init before it is negative).",
    "  ===  the invocation (X-Ray's segment for the function)    !!!  the same, failed (a fault)",
    "  ###  a phase: Initialization (a cold start: each extension's init, then Runtime init = the",
    "       runtime starting and your code's module-level init); Invocation (your handler);",
    "       Response (the result going back); Overhead (after the response: the runtime's, then",
    "       Extension overhead = extensions finishing before the environment takes the next call).",
    "  'in-progress version': a partial segment sent early (before a slow or failing invocation",
    "  ends), replaced by the final one under the same id.",
]

# Extension overhead above this (ms) on one of the first invocations gets a word of why.
EAGER_NOTE_MS = 5.0


def eager_note(doc, n_in_env):
    """Why Extension overhead is large on an early invocation (auto flush policy)."""
    for sub in doc.get("subsegments") or []:
        for child in sub.get("subsegments") or []:
            if child.get("name") == "Extension overhead":
                ms = (child["end_time"] - child["start_time"]) * 1000
                if ms >= EAGER_NOTE_MS and n_in_env <= 3:
                    return (f"  Extension overhead {ms:.1f} ms: the default flush policy (auto) holds each of an "
                            f"environment's first 3 invocations until Lambda's telemetry for it arrives (batched "
                            f"every 25 ms) and its trace is sent, so the trace is out even if the environment is "
                            f"never invoked again; later invocations export in the background (0 ms held). "
                            f"LAMBDA_TRACER_FLUSH=background skips the wait.")
    return None


def resolve_binary(arg):
    path = arg or os.environ.get("LAMBDA_TRACER_BIN") or os.path.join(REPO, "build", "dev", "lambda-tracer")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return None, path
    return path, path


def want_colour(mode):
    if mode == "always":
        return True
    if mode == "never":
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def shown_path(path):
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def ext_message(line):
    """'[lambda-tracer] INFO export ...' -> 'export ...'."""
    for level in ("INFO ", "WARN ", "ERROR "):
        i = line.find("] " + level)
        if i >= 0:
            return line[i + 2 + len(level):]
    return line


def compact(msg):
    """'shutdown reason=x a=1 b=0 c=0' -> 'shutdown reason=x a=1 (other counters 0)'."""
    words = msg.split()
    kept = [w for w in words if not w.endswith("=0") or w.startswith("shutdown_ms=")]
    return " ".join(kept) + (" (other counters 0)" if len(kept) < len(words) else "")


def cost_table(table):
    """Each exported step's cost split (segment metadata cost_*): Init (cold starts), the
    invocation, the time extensions held it open after the response, and of that this
    layer's own share; the total is the segment's cost_usd (the request price included)."""
    rows = [f"  {'#':>2} {'step':<14} {'Init':>18} {'invocation':>18} {'of it after resp.':>18} "
            f"{'of that ours':>18} {'total':>12}"]

    def cell(meta, usd, ms):
        if usd not in meta:
            return "-"
        return f"{meta[usd]:.9f} [{meta.get(ms, '?')}]" if ms else f"{meta[usd]:.9f}"
    for n, label, _, doc, _, _, _ in table:
        if doc is None:
            continue
        meta = dict(doc.get("annotations") or {})  # billed_duration_ms
        meta.update((doc.get("metadata") or {}).get("lambda_tracer") or {})
        total = meta.get("cost_usd")
        rows.append(f"  {n:>2} {label:<14} {cell(meta, 'cost_init_usd', 'cost_init_billed_ms'):>18} "
                    f"{cell(meta, 'cost_invoke_usd', None):>18} "
                    f"{cell(meta, 'cost_after_response_usd', 'cost_after_response_billed_ms'):>18} "
                    f"{cell(meta, 'cost_tracer_usd', 'cost_tracer_billed_ms'):>18} "
                    f"{f'{total:.9f}' if total is not None else '-':>12}")
    return "\n".join(rows)


def metrics_summary(emf_lines):
    """The EMF documents' metrics summed over the run: counts and costs added up,
    distributions as count / mean / max."""
    sums, dists, units = {}, {}, {}
    for line in emf_lines:
        doc = json.loads(line)
        names = []
        for directive in doc["_aws"].get("CloudWatchMetrics", []):
            for m in directive.get("Metrics", []):
                if m["Name"] not in names:
                    names.append(m["Name"])
                    units[m["Name"]] = m.get("Unit", "None")
        for name in names:
            v = doc.get(name)
            if isinstance(v, list):
                dists.setdefault(name, []).extend(v)
            elif isinstance(v, (int, float)):
                sums[name] = sums.get(name, 0) + v
    short = {"Milliseconds": "ms", "Megabytes": "MB", "Percent": "%"}
    out = []
    if sums:
        out.append(", ".join(f"{k} {v:.9f}" if isinstance(v, float) and v < 1 and units[k] == "None"
                             else f"{k} {v:g}" for k, v in sums.items()))
    for k, v in dists.items():
        u = short.get(units[k], "")
        out.append(f"{k}: {len(v)} values, mean {sum(v) / len(v):.1f} {u}, max {max(v):.1f} {u}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=None, help="the lambda-tracer binary (default build/dev/lambda-tracer)")
    ap.add_argument("--build", choices=("release", "dev"), default="dev",
                    help="which build --binary is (./build.sh demo picks the release one when it can)")
    ap.add_argument("--timeout-s", type=float, default=2.0, help="function timeout (default 2)")
    ap.add_argument("--memory-mb", type=int, default=128, help="function memory (default 128)")
    ap.add_argument("--out", default=os.path.join(REPO, "build", "demo", "segments.jsonl"),
                    help="where to write every exported document (JSON lines)")
    ap.add_argument("--width", type=int, default=waterfall.BAR_WIDTH, help="bar width in columns")
    ap.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                    help="auto: only on a terminal and when NO_COLOR is unset")
    args = ap.parse_args()
    colour = want_colour(args.color)
    bold = lambda text: waterfall.paint(text, "bold", colour)  # noqa: E731

    binary, path = resolve_binary(args.binary)
    if binary is None:
        print(f"demo: the lambda-tracer binary {path} is missing: run ./build.sh build first",
              file=sys.stderr)
        return 1

    print(bold(f"lambda-tracer demo: function demo-fn, {args.memory_mb} MB, timeout {args.timeout_s:g} s, "
               f"extension {shown_path(binary)}"))
    print(BUILD_NOTE[args.build])
    for line in LEGEND:
        print(line)
    root = harness.make_root(binary)
    emu = harness.new_emulator(root, timeout_s=args.timeout_s, memory_mb=args.memory_mb,
                               env={"LAMBDA_TRACER_LOG_LEVEL": "info", "LAMBDA_TRACER_METRICS": "true"},
                               lambda_default=True, bill_init=True)  # Init billed, as since 2025-08-01
    slow = json.dumps({"action": "slow", "ms": int(args.timeout_s * 600)}).encode()
    results = []
    try:
        init = emu.start()
        print(f"Init: {init.status} in {init.duration_ms:.1f} ms "
              f"(extensions: {', '.join(f'{k}={v}' for k, v in init.extensions.items())})")
        for label, payload, header, expect in STEPS:
            r = emu.invoke(payload=slow if payload is SLOW else payload, trace_header=header)
            results.append((label, expect, r))
        sd = emu.shutdown(reason="spindown")
        lines = harness.output_lines(emu)
    finally:
        emu.close()
        shutil.rmtree(root, ignore_errors=True)

    # every exported document, all versions, exactly as the extension printed them; the EMF
    # documents (metrics, LAMBDA_TRACER_METRICS) apart
    raw, emf = [], []
    for line in lines:
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            (emf if isinstance(obj, dict) and "_aws" in obj else raw).append(line)
    docs = harness.documents(raw)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        for line in raw:
            f.write(line + "\n")
    log_path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "extension.log")
    with open(log_path, "w") as f:
        for line in lines:
            if not line.startswith("{"):
                f.write(line + "\n")
    # the same documents as one self-contained HTML page (./build.sh view draws it too)
    html_path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "traces.html")
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page.render_page(traces.finish(traces.load_text("\n".join(raw), "demo")),
                                 title="lambda-tracer demo", sources=[shown_path(os.path.abspath(args.out))],
                                 titles={r.request_id: f"#{n} {label}" for n, (label, _, r) in enumerate(results, 1)}))
    segs = harness.by_request(docs)
    independent = [d for d in docs if d.get("type") == "subsegment"]

    problems = []
    table = []
    n_in_env = 0
    for n, (label, expect, r) in enumerate(results, 1):
        n_in_env = 1 if (r.init_phase_ran or n == 1) else n_in_env + 1
        title = f"#{n} {label}" + (" (re-init)" if r.init_phase_ran and n > 1 else "")
        versions = segs.get(r.request_id, [])
        print()
        if not versions and expect == "OK?" and r.status == "success":
            print(f"{bold(title)}  {r.request_id[:8]}  not exported: a fast warm call with Lambda's "
                  f"Sampled=0 header, outside the sample (counted as dropped)")
            table.append((n, label, r, None, 0, 0, "ok (sampled out)"))
            continue
        if not versions:
            print(f"{bold(title)}  {r.request_id[:8]}  "
                  f"{waterfall.paint('NO SEGMENT EXPORTED', 'bad', colour)}  "
                  f"(emulator: {r.status}{' ' + r.error_type if r.error_type else ''})")
            problems.append(f"{title}: no segment exported for {r.request_id}")
            table.append((n, label, r, None, 0, 0, "no segment"))
            continue
        for line in waterfall.render(versions, title=title, width=args.width, colour=colour,
                                     subsegment_docs=independent):
            print(line)
        doc, n_open, is_final = waterfall.pick(versions)
        note = eager_note(doc, n_in_env) if is_final else None
        if note:
            print(note)
        check = "ok"
        if label == "cold start" and is_final:
            # where Init went (README "Why was the cold start slow?")
            meta = (doc.get("metadata") or {}).get("lambda_tracer") or {}
            # the anatomy is on the Runtime init subsegment, the split and hint on the segment
            rt = ((harness.subsegment_names(doc).get("Runtime init") or {}).get("metadata") or {}).get(
                "lambda_tracer") or {}
            print(f"  Where Init went: {meta.get('init_split', '(no split)')}")
            print(f"  Runtime init: {rt.get('summary', '(no anatomy)')}")
            print(f"  Hint: {(doc.get('annotations') or {}).get('init_hint', '(no rule fired)')}")
            if "summary" not in rt or "init_split" not in meta:
                problems.append(f"{title}: the cold start does not say where Init went")
        if not is_final:
            check = "no final segment"
            problems.append(f"{title}: only in-progress versions of {r.request_id}")
        elif waterfall.status_mark(doc) != expect.rstrip("?"):
            check = f"expected {expect}"
            problems.append(f"{title}: segment says {waterfall.status_mark(doc)}, expected {expect}")
        elif expect == "TIMEOUT" and "seconds: busy" not in (waterfall.cause(doc) or ("", ""))[1]:
            check = "no diagnosis"
            problems.append(f"{title}: the timeout's cause does not say what the function was doing")
        elif expect == "OOM" and "(growing steadily" not in (waterfall.cause(doc) or ("", ""))[1]:
            check = "no memory trend"
            problems.append(f"{title}: the out-of-memory cause does not state the memory trend")
        table.append((n, label, r, doc if is_final else None, len(versions) - n_open, n_open, check))

    print()
    print(bold("Summary"))
    print(f"  {'#':>2} {'step':<14} {'request':<8}  {'emulator':<26} {'segment':<8} {'cold':<4} "
          f"{'ms':>8} {'billed':>6} {'cost $':>11} {'mem MB':>7}  {'sampled_by':<10} {'documents':<15} check")
    for n, label, r, doc, n_final, n_open, check in table:
        emu_status = r.status + (f" {r.error_type}" if r.error_type else "")
        if doc is not None:
            ann = doc.get("annotations") or {}
            mark = waterfall.status_mark(doc)
            cold = "yes" if ann.get("cold_start") else "no"
            ms = f"{(doc['end_time'] - doc['start_time']) * 1000:.1f}"
            billed = str(ann.get("billed_duration_ms", "-"))
            cost = f"{ann['cost_usd']:.9f}" if "cost_usd" in ann else "-"
            mem = str(ann.get("max_memory_used_mb", "-"))
            why = str(ann.get("sampled_by", "-"))
        else:
            mark, cold, ms, billed, cost, mem, why = "-", "-", "-", "-", "-", "-", "-"
        docs_txt = f"{n_final} final" + (f" +{n_open} i.p." if n_open else "")
        check_txt = waterfall.paint(check, "ok" if check.startswith("ok") else "bad", colour)
        print(f"  {n:>2} {label:<14} {r.request_id[:8]:<8}  {emu_status:<26} {mark:<8} {cold:<4} "
              f"{ms:>8} {billed:>6} {cost:>11} {mem:>7}  {why:<10} {docs_txt:<15} {check_txt}")
    print("  (i.p. = in-progress version: sent early, before the runtime's /next or near the deadline,"
          " and replaced by the final one under the same id)")

    print()
    print(bold("Cost per phase") + " (estimated USD at the us-east-1 price, billed ms in brackets: the Init, "
          "the invocation with the request; of the invocation, the time extensions held it open after the "
          "response, and of that, this layer's own share)")
    print(cost_table(table))
    print("  (a re-init after a reset runs inside its invocation: Lambda reports and bills it as part of "
          "the invocation's duration)")

    print()
    print(bold("Extension (one process per environment generation; a timeout, crash or OOM resets it)"))
    gen = 0
    for line in lines:
        if line.startswith("{"):
            continue
        msg = ext_message(line)
        if msg.startswith("export ") or msg.startswith("shutdown reason="):
            if msg.startswith("export "):
                gen += 1
            print(f"  [{gen}] {compact(msg)}")
        elif "] WARN " in line or "] ERROR " in line:
            print(f"  [{gen + 1}] {line}")
    ext = sd.extensions.get(harness.EXT_NAME)
    if ext is not None:
        print(f"  spin-down: exit code {ext.exit_code}, killed={ext.killed}, SHUTDOWN to exit of the "
              f"whole environment {sd.duration_ms:.1f} ms (budget 2,000 ms)")
    else:
        problems.append("spin-down: the extension was not running")

    print()
    print(bold("Metrics") + f" (what the {len(emf)} EMF documents on the extension's stdout carry to CloudWatch, "
          "summed over them)")
    for line in metrics_summary(emf):
        print("  " + line)
    if not emf:
        problems.append("metrics: no EMF document on the extension's stdout")

    n_open = sum(1 for d in docs if d.get("in_progress"))
    print()
    print(f"Wrote {len(raw)} documents ({len(raw) - n_open - len(independent)} final segments, "
          f"{n_open} in-progress versions"
          + (f", {len(independent)} independent subsegments" if independent else "")
          + f") to {shown_path(os.path.abspath(args.out))}; the extension's log is in "
          f"{shown_path(log_path)}; open {shown_path(html_path)} in a browser for the same traces "
          f"with every detail")

    reports = harness.sanitizer_reports(lines)
    if reports:
        problems.append("sanitizer reports:\n" + "\n".join("    " + r for r in reports))
    if problems:
        print()
        print(waterfall.paint("FAILED", "bad", colour))
        for p in problems:
            print("  " + p)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
