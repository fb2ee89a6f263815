"""viewer/page.py and viewer/view.py: the HTML page and the command line,
without a browser (tests/viewer/test_browser.py opens the page in Chromium)."""
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "viewer"))
import page  # noqa: E402
import traces  # noqa: E402
import waterfall  # noqa: E402

FIX = os.path.join(HERE, "fixtures")
T0 = 1796222529.0
EVIL = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def read(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as f:
        return f.read()


def evil_doc():
    """A document whose every string field carries markup."""
    return {"name": EVIL, "id": "aaaaaaaaaaaaaaaa", "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
            "start_time": 100.0, "end_time": 100.5, "fault": True, "aws": {"request_id": EVIL},
            "cause": {"exceptions": [{"type": "Sandbox.Timedout", "message": "waiting " + EVIL}]},
            "annotations": {EVIL: EVIL, "sampled_by": "outcome"},
            "metadata": {"lambda_tracer": {"snapshot": {"comm": EVIL, "</pre>": "</script>"}}},
            EVIL: EVIL,
            "subsegments": [{"name": "</details>" + EVIL, "id": "bbbbbbbbbbbbbbbb", "start_time": 100.1,
                             "end_time": 100.2, "error": True}]}


class Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.attrs = []
        self.scripts = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def render(text):
    return page.render_page(traces.finish(traces.load_text(text, "t")), sources=["t"])


class PageTest(unittest.TestCase):
    def test_markup_in_documents_stays_text(self):
        out = render(json.dumps(evil_doc()))
        p = Tags()
        p.feed(out)
        self.assertEqual(p.tags.count("script"), 1)              # ours, nothing else
        self.assertNotIn("img", p.tags)
        self.assertEqual([a for a in p.attrs if a[0].startswith("on")], [])
        self.assertNotIn(EVIL, out)
        self.assertIn(page.esc(EVIL), out)
        self.assertIn(page.esc("waiting " + EVIL), out)
        # the one script is ours, and the policy allows exactly it
        self.assertEqual(p.scripts, [page.SCRIPT])
        self.assertNotIn("pwned", page.SCRIPT)

    def test_self_contained(self):
        out = render(read("xray.jsonl"))
        self.assertIsNone(re.search(r"<(link|iframe|object|embed|img)\b", out))
        self.assertIsNone(re.search(r"(src|href)\s*=", out))
        self.assertIsNone(re.search(r"url\(|@import|https?://", page.CSS + page.SCRIPT))
        self.assertIn("Content-Security-Policy", out)
        self.assertTrue("default-src &#x27;none&#x27;" in out)

    def test_bars_causes_and_details_of_the_fixture(self):
        loaded = traces.finish(traces.load_text(read("xray.jsonl"), "t"))
        out = page.render_page(loaded)
        sections = out.split('<section class="inv')[1:]
        self.assertEqual(len(sections), 7)
        for inv, sec in zip(loaded.invocations, sections):
            doc = waterfall.merge_independent(inv.pick()[0], inv.subsegment_docs)
            self.assertEqual(sec.count('<span class="bar '), len(waterfall.rows(doc)))
            self.assertEqual(sec.count('<details class="row'), len(waterfall.rows(doc)))
        status = [re.search(r'data-status="(\w+)" data-mark="([^"]+)"', s).groups() for s in sections]
        self.assertEqual(status, [("ok", "OK"), ("ok", "OK"), ("error", "ERROR"), ("fault", "TIMEOUT"),
                                  ("fault", "CRASH"), ("fault", "OOM"), ("ok", "OK")])
        self.assertIn("Task timed out after 2.00 seconds: sleeping (clock_nanosleep)", sections[3])
        self.assertIn("Runtime.ExitError: The runtime exited", sections[4])
        self.assertIn("Out of memory: 128 MB used of 128 MB", sections[5])
        # annotations as chips, the forensics snapshot in the segment's details
        self.assertIn('<span class="k">cold_start</span>', sections[0])
        self.assertIn("where_the_time_went", sections[3])
        self.assertIn("clock_nanosleep", sections[3].split("<h4>Metadata</h4>")[1])

    def test_bar_geometry(self):
        doc = {"name": "fn", "id": "a" * 16, "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
               "start_time": T0, "end_time": T0 + 0.1,
               "subsegments": [{"name": "half", "id": "b" * 16, "start_time": T0 + 0.05, "end_time": T0 + 0.1},
                               {"name": "open", "id": "c" * 16, "start_time": T0, "in_progress": True}]}
        out = render(json.dumps(doc))
        bars = re.findall(r'<span class="bar s-(\w+)" style="left:([\d.]+)%;width:([\d.]+)%"', out)
        self.assertEqual([(s, round(float(l)), round(float(w))) for s, l, w in bars],
                         [("ok", 0, 100), ("ok", 50, 50), ("open", 0, 100)])
        # provisioned concurrency: init minutes before the invocation, the idle stretch cut out
        pc = dict(doc, subsegments=[{"name": "Initialization", "id": "d" * 16, "start_time": T0 - 600,
                                     "end_time": T0 - 599.9}])
        out = render(json.dumps(pc))
        self.assertEqual(out.count('<span class="gap"'), 2)       # one per row
        lefts = [float(x) for x in re.findall(r'class="bar s-\w+" style="left:([\d.]+)%', out)]
        self.assertGreater(lefts[0], 40)                           # the segment is not squeezed to the edge

    def test_statuses(self):
        base = {"name": "fn", "id": "a" * 16, "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
                "start_time": 10.0, "end_time": 10.1}
        for extra, want in (({}, ("ok", "OK")), ({"throttle": True, "error": True}, ("throttle", "THROTTLED")),
                            ({"error": True}, ("error", "ERROR")), ({"fault": True}, ("fault", "FAULT")),
                            ({"in_progress": True, "end_time": None}, ("open", "IN PROGRESS"))):
            d = dict(base, **extra)
            if d.get("end_time") is None:
                d.pop("end_time")
            inv = traces.finish(traces.load_text(json.dumps(d))).invocations[0]
            doc, _, fin = inv.pick()
            self.assertEqual(page.invocation_status(doc, fin), want, extra)

    def test_titles_by_request_id(self):
        loaded = traces.finish(traces.load_text(read("xray.jsonl"), "t"))
        rid = loaded.invocations[3].pick()[0]["aws"]["request_id"]
        out = page.render_page(loaded, titles={rid: "#4 timeout <b>"})
        self.assertTrue('<span class="num">#4 timeout &lt;b&gt;</span>' in out)
        self.assertEqual(out.count('<span class="num">#'), 7)

    def test_empty_input_still_a_page(self):
        out = render("START RequestId: x\n{broken")
        self.assertTrue("No trace documents found" in out)
        self.assertTrue("2 other lines ignored" in out)


class CommandLineTest(unittest.TestCase):
    def run_view(self, *args, stdin=None):
        return subprocess.run([sys.executable, os.path.join(REPO, "viewer", "view.py")] + list(args),
                              input=stdin, capture_output=True, text=True, timeout=60)

    def test_terminal_and_html(self):
        d = tempfile.mkdtemp()
        out = os.path.join(d, "sub", "t.html")
        r = self.run_view(os.path.join(FIX, "extension.out"), "--html", out, "--color", "never")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(re.findall(r"^#\d ", r.stdout, re.M)), 7)
        for word in ("TIMEOUT", "CRASH", "OOM", "cause: Sandbox.Timedout"):
            self.assertIn(word, r.stdout)
        self.assertIn("7 invocations, 14 X-Ray documents, 16 other lines ignored", r.stdout)
        self.assertNotIn("\x1b[", r.stdout)
        with open(out) as f:
            self.assertEqual(f.read().count('<section class="inv'), 7)
        os.remove(out)
        os.rmdir(os.path.dirname(out))
        os.rmdir(d)

    def test_stdin_problems_only_and_skipped_lines(self):
        text = read("otlp.jsonl") + '{"resourceSpans": [\n'
        r = self.run_view("-", "--problems", "--color", "never", stdin=text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(re.findall(r"^#\d ", r.stdout, re.M)), 4)   # error, timeout, crash, oom
        self.assertIn("1 malformed skipped", r.stdout)
        self.assertIn("skipped stdin:8: looks like a trace document", r.stdout)

    def test_build_sh_view(self):
        r = subprocess.run(["bash", os.path.join(REPO, "build.sh"), "view", os.path.join(FIX, "otlp.jsonl"),
                            "--quiet"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("7 invocations, 42 OTLP spans in 7 requests", r.stdout)
        usage = subprocess.run(["bash", os.path.join(REPO, "build.sh")], capture_output=True, text=True, timeout=60)
        self.assertEqual(usage.returncode, 2)
        self.assertIn("./build.sh view FILE... [--html OUT]", usage.stdout)

    def test_no_documents_and_missing_file(self):
        r = self.run_view("-", stdin="hello\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("0 invocations", r.stdout)
        r = self.run_view("/nonexistent/file")
        self.assertEqual(r.returncode, 2)
        self.assertIn("No such file", r.stderr)


if __name__ == "__main__":
    unittest.main()
