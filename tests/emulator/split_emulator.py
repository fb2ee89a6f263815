#!/usr/bin/env python3
"""Writes the lambdaemu package's parts from the emulator as one file (lambda_emulator.py as it
was before the split, 3bbd727 and earlier), cutting along its section banners.

For merging: a branch that changed the single file gets its change into the package by running
this on its version and taking the diff of the generated parts:

    git show BRANCH:tests/emulator/lambda_emulator.py > /tmp/one-file.py
    python3 tests/emulator/split_emulator.py /tmp/one-file.py tests/emulator/lambdaemu

Every line of the file after its imports goes to exactly one part (checked); each part imports
the standard modules it uses and the parts before it; a name it uses but nobody defines stops
the run.  __init__.py is not written (it is not generated).
"""
import ast
import builtins
import os
import sys

WIDE = "# " + "-" * 77 + " "      # a module-level banner: "# ---...--- constants"
CLASS = "    # " + "-" * 66 + " "  # a banner inside class Emulator

# part, docstring, pieces: ("top", start, end) module-level lines; ("mixin", class, doc, [(start, end)]);
# ("emulator", start, end).  start / end are markers: the first line that starts with it, searched
# from the previous piece's start; end is exclusive.
PARTS = [
    ("constants", "Limits, schema versions, the Telemetry API subscription schema, environment rules.",
     [("top", WIDE + "constants", "DEFAULT_QUIRKS = {")]),
    ("quirks", "Scenarios and quirks: the era/schema quirks and the platform fault knobs, with their defaults.",
     [("top", "DEFAULT_QUIRKS = {", WIDE + "helpers")]),
    ("helpers", "Small helpers: clocks, JSON, trace headers, subscription validation.",
     [("top", WIDE + "helpers", WIDE + "results")]),
    ("results", "What the Python API returns: Init, Invoke, Shutdown results and an invocation handle.",
     [("top", WIDE + "results", WIDE + "internals")]),
    ("state", "The emulator's internal state: replies, waiters, processes, extensions, runtime, invocations.",
     [("top", WIDE + "internals", "class _Subscriber")]),
    ("server", "The HTTP server: connection tracking, request reading and reply writing, routes.",
     [("top", "class _Abort", WIDE + "the emulator")]),
    ("telemetry", "Telemetry API: per-subscriber batching and delivery (held while frozen, retries, logsDropped),\n"
                  "record emission and the subscribe handler.",
     [("top", "class _Subscriber", "class _Abort"),
      ("mixin", "TelemetryMixin", "Telemetry API: emitting records to subscribers and the subscribe call.",
       [(CLASS + "telemetry emission", CLASS + "processes"),
        ("    def _telemetry_versions(self)", WIDE + "CLI")])]),
    ("processes", "Sandbox processes: launch, output capture, freeze/thaw, kill and reap.",
     [("mixin", "ProcessesMixin", "Sandbox processes (launch, freeze/thaw, kill, reap).",
       [(CLASS + "processes", CLASS + "memory")])]),
    ("memory", "The sandbox's memory limit: accounting of the processes' memory.",
     [("mixin", "MemoryMixin", "The memory limit.", [(CLASS + "memory", CLASS + "Init")])]),
    ("init", "The Init phase, and Restore (SnapStart).",
     [("mixin", "InitMixin", "Init and Restore (SnapStart).", [(CLASS + "Init", CLASS + "Invoke\n")])]),
    ("invoke", "The Invoke phase (one invocation at a time, classic Lambda).",
     [("mixin", "InvokeMixin", "Invoke.", [(CLASS + "Invoke\n", CLASS + "Invoke, Managed Instances")])]),
    ("managed", "Invoke on Lambda Managed Instances (concurrent invocations, never frozen).",
     [("mixin", "ManagedInstancesMixin", "Invoke, Managed Instances.",
       [(CLASS + "Invoke, Managed Instances", CLASS + "Shutdown / reset")])]),
    ("shutdown", "Shutdown and resets after failures.",
     [("mixin", "ShutdownMixin", "Shutdown / reset.", [(CLASS + "Shutdown / reset", CLASS + "HTTP dispatch")])]),
    ("dispatch", "HTTP dispatch: routes a request to the Runtime, Extensions or Telemetry API handler.",
     [("mixin", "DispatchMixin", "HTTP dispatch.", [(CLASS + "HTTP dispatch", "    # --- Runtime API")])]),
    ("runtime_api", "Runtime API (2018-06-01): /invocation/next, /response, /error, /init/error.",
     [("mixin", "RuntimeApiMixin", "Runtime API handlers.", [("    # --- Runtime API", "    # --- Extensions API")])]),
    ("extensions_api", "Extensions API (2020-01-01): register, /event/next, init and exit errors.",
     [("mixin", "ExtensionsApiMixin", "Extensions API handlers.",
       [("    # --- Extensions API", "    def _telemetry_versions(self)")])]),
    ("core", "The Emulator: one Lambda execution environment, its public API and logging.",
     [("emulator", WIDE + "the emulator", CLASS + "telemetry emission")]),
    ("cli", "The command line (`python3 lambda_emulator.py run ...`).",
     [("top", WIDE + "CLI", 'if __name__ == "__main__":')]),
]
LOWER = ("constants", "quirks", "helpers", "results", "state", "server", "telemetry")


def main(src, out):
    lines = open(src).read().split("\n")

    def find(marker):
        for i, line in enumerate(lines):
            if (line + "\n").startswith(marker):
                return i
        raise SystemExit(f"split_emulator: no line starts with {marker!r}")

    def chunk(start, end):
        return "\n".join(lines[find(start):find(end)]).strip("\n") + "\n"

    first_import = find("import argparse")
    last_import = find("from typing import")
    imports_all = lines[first_import:last_import + 1]
    mixins = [p[1] for _, _, pieces in PARTS for p in pieces if p[0] == "mixin"]
    mixin_part = {p[1]: name for name, _, pieces in PARTS for p in pieces if p[0] == "mixin"}
    covered = set()
    exported, done = {}, []
    for name, doc, pieces in PARTS:
        body = []
        for p in pieces:
            if p[0] == "top":
                body.append(chunk(p[1], p[2]))
                covered.update(range(find(p[1]), find(p[2])))
            elif p[0] == "mixin":
                text = [f'class {p[1]}:\n    """{p[2]}  A part of Emulator (core.py); uses its state."""\n']
                for a, b in p[3]:
                    text.append(chunk(a, b))
                    covered.update(range(find(a), find(b)))
                body.append("\n".join(text))
            else:
                text = chunk(p[1], p[2])
                covered.update(range(find(p[1]), find(p[2])))
                bases = ", ".join(mixins[:6]) + ",\n               " + ", ".join(mixins[6:])
                body.append(text.replace("class Emulator:", f"class Emulator({bases}):", 1))
        text = "\n\n".join(body)
        tree = ast.parse(text)
        names = []
        for n in tree.body:
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                names.append(n.name)
            elif isinstance(n, ast.Assign):
                names += [t.id for t in n.targets if isinstance(t, ast.Name)]
        exported[name] = names
        if name == "core":
            deps = [d for d in done if d in LOWER and d != "telemetry"]
            deps += sorted({mixin_part[c] for c in mixins}, key=[p[0] for p in PARTS].index)
        elif name == "cli":
            deps = ["constants", "quirks", "helpers", "results", "core"]
        else:
            deps = [d for d in done if d in LOWER]
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        kept = []
        for line in imports_all:
            if line.startswith("import "):
                if line.split()[1].split(".")[0] in used:
                    kept.append(line)
            elif line.startswith("from "):
                mod, _, what = line[5:].partition(" import ")
                w = [x.strip() for x in what.split(",") if x.strip() in used]
                if w:
                    kept.append(f"from {mod} import {', '.join(w)}")
        content = (f'"""{doc}\n\nPart of the lambdaemu package behind tests/emulator/lambda_emulator.py '
                   f'(see __init__.py)."""\n\n' + "\n".join(kept) + "\n\n"
                   + "".join(f"from .{d} import *  # noqa: F401,F403\n" for d in deps) + "\n"
                   + "__all__ = [" + ", ".join(repr(x) for x in names) + "]\n\n\n" + text)
        # a name used but defined nowhere (not here, not imported, not a builtin) stops the run
        t2 = ast.parse(content)
        bound = set(dir(builtins))
        for n in ast.walk(t2):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                bound.add(n.id)
            elif isinstance(n, ast.arg):
                bound.add(n.arg)
            elif isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                bound.add(n.name)
            elif isinstance(n, ast.alias):
                bound.add((n.asname or n.name).split(".")[0])
            elif isinstance(n, ast.ExceptHandler) and n.name:
                bound.add(n.name)
        for d in deps:
            bound.update(exported[d])
        free = sorted({n.id for n in ast.walk(t2) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound)
        if free:
            raise SystemExit(f"split_emulator: {name}.py uses names defined nowhere it imports: {free}")
        with open(os.path.join(out, name + ".py"), "w") as f:
            f.write(content)
        done.append(name)
    start, end = find(WIDE + "constants"), find('if __name__ == "__main__":')
    left = [i + 1 for i in range(start, end) if i not in covered and lines[i].strip()]
    if left:
        raise SystemExit(f"split_emulator: lines in no part: {left[:20]}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
