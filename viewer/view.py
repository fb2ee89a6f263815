#!/usr/bin/env python3
"""./build.sh view FILE... [--html OUT]: lambda-tracer's traces, read locally.

Reads exported X-Ray documents (a .jsonl file, the stdout exporter's lines as
CloudWatch Logs returns them, mixed with other log lines) and OTLP/JSON
requests, and draws each invocation as a waterfall on a time axis in the
terminal; --html also writes one self-contained HTML page of them (no
external scripts, fonts or styles).  FILE '-' reads standard input; a .gz
file is read through gzip.  Python 3 standard library only.

Exit status: 0 when at least one invocation was drawn, 1 when the input held
none, 2 on a usage or I/O error.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import page  # noqa: E402
import traces  # noqa: E402
import waterfall  # noqa: E402


def want_colour(mode, stream=sys.stdout):
    if mode == "always":
        return True
    if mode == "never":
        return False
    return stream.isatty() and not os.environ.get("NO_COLOR")


def terminal(loaded, width=waterfall.BAR_WIDTH, colour=False, problems_only=False):
    """The waterfalls as lines."""
    out = []
    for n, inv in enumerate(loaded.invocations, 1):
        doc, _, is_final = inv.pick()
        if problems_only and is_final and page.invocation_status(doc, True)[0] == "ok":
            continue
        if out:
            out.append("")
        out += waterfall.render(inv.versions, title="#%d" % n, width=width, colour=colour,
                                subsegment_docs=inv.subsegment_docs)
    return out


def write_html(loaded, path, sources, title=None):
    text = page.render_page(loaded, title=title or "lambda-tracer traces", sources=sources)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="./build.sh view", description=__doc__.splitlines()[0],
                                 epilog="examples: ./build.sh view build/demo/segments.jsonl --html /tmp/t.html; "
                                        "aws logs tail /aws/lambda/my-fn --since 1h | ./build.sh view -")
    ap.add_argument("files", nargs="+", metavar="FILE", help="input file(s); - for standard input")
    ap.add_argument("--html", metavar="OUT", help="also write a self-contained HTML page here")
    ap.add_argument("--width", type=int, default=waterfall.BAR_WIDTH, help="bar width in columns (default %(default)s)")
    ap.add_argument("--problems", action="store_true", help="terminal: only invocations that did not end OK")
    ap.add_argument("--quiet", action="store_true", help="no waterfalls, only the summary (with --html)")
    ap.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                    help="auto: only on a terminal and when NO_COLOR is unset")
    args = ap.parse_args(argv)
    if args.width < 10:
        ap.error("--width must be at least 10")
    try:
        loaded = traces.load(args.files)
    except OSError as e:
        print("view: %s" % e, file=sys.stderr)
        return 2
    colour = want_colour(args.color)
    if not args.quiet:
        for line in terminal(loaded, args.width, colour, args.problems):
            print(line)
        if loaded.invocations:
            print()
    print("read %s: %s" % (", ".join(args.files), loaded.summary()))
    for where, reason in loaded.problems:
        print("  skipped %s: %s" % (where, reason))
    if loaded.malformed > len(loaded.problems):
        print("  (and %d more)" % (loaded.malformed - len(loaded.problems)))
    if args.html:
        try:
            write_html(loaded, args.html, args.files)
        except OSError as e:
            print("view: %s" % e, file=sys.stderr)
            return 2
        print("wrote %s" % args.html)
    return 0 if loaded.invocations else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:      # | head
        sys.exit(0)
