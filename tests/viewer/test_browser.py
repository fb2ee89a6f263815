"""The HTML page in a real browser: Debian's headless Chromium renders the
page made from the fixture (the real extension's documents) plus one
document full of markup, takes a screenshot, and dumps the DOM after the
page's script ran.

Checked: the screenshot is a PNG of the window's size with the status
colours of the page's bars in it (ok, error, fault); the DOM has the script's
mark (it ran, and counted every row), one bar per node, the causes of the
timeout (with its forensics sentence), the crash and the out-of-memory kill,
and the markup document's strings as text (no element, no changed title).

Skipped when chromium is not installed, unless LAMBDA_TRACER_REQUIRE_ALL=1
(./build.sh test installs it)."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "viewer"))
sys.path.insert(0, HERE)
import page  # noqa: E402
import traces  # noqa: E402
import waterfall  # noqa: E402
from test_page import EVIL, evil_doc, read  # noqa: E402

WIDTH, HEIGHT = 1280, 2000
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=%d,%d" % (WIDTH, HEIGHT)]
COLOURS = {"ok": (0x3b, 0x82, 0xc4), "segment": (0x1d, 0x5a, 0x96), "error": (0xe0, 0xa1, 0x00),
           "fault": (0xd9, 0x30, 0x25)}


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def png_pixels(data):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, [[tuple(r[x * bpp:x * bpp + 3]) for x in range(w)] for r in rows]


@unittest.skipIf(chromium() is None and os.environ.get("LAMBDA_TRACER_REQUIRE_ALL") != "1",
                 "chromium is not installed (apt-get install chromium)")
class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.exe = chromium()
        assert cls.exe, "chromium is not installed (apt-get install chromium)"
        cls.dir = tempfile.mkdtemp(prefix="lt-viewer-browser-")
        cls.loaded = traces.finish(traces.load_text(read("xray.jsonl") + json.dumps(evil_doc()) + "\n", "fixture"))
        cls.html = os.path.join(cls.dir, "traces.html")
        with open(cls.html, "w", encoding="utf-8") as f:
            f.write(page.render_page(cls.loaded, sources=["fixture"]))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_chromium(self, *args):
        profile = tempfile.mkdtemp(prefix="profile-", dir=self.dir)    # a new empty profile each time
        r = subprocess.run([self.exe] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + list(args)
                           + ["file://" + self.html], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace")[-2000:])
        return r

    def test_screenshot(self):
        shot = os.path.join(self.dir, "shot.png")
        self.run_chromium("--screenshot=" + shot)
        with open(shot, "rb") as f:
            data = f.read()
        w, h, rows = png_pixels(data)
        self.assertEqual((w, h), (WIDTH, HEIGHT))
        seen = {}
        for row in rows[::2]:
            for px in row[::2]:
                seen[px] = seen.get(px, 0) + 1
        self.assertGreater(len(seen), 50, "a blank or nearly blank screenshot")
        background = max(seen, key=seen.get)
        self.assertEqual(background, (255, 255, 255))
        self.assertLess(seen[background], 0.97 * sum(seen.values()))
        for name, rgb in COLOURS.items():
            self.assertGreater(seen.get(rgb, 0), 20, "no %s bar (%r) in the screenshot" % (name, rgb))
        if os.environ.get("LAMBDA_TRACER_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["LAMBDA_TRACER_KEEP_SCREENSHOT"])

    def test_dom_after_the_script(self):
        dom = self.run_chromium("--dump-dom").stdout.decode("utf-8", errors="replace")
        nodes = [len(waterfall.rows(waterfall.merge_independent(inv.pick()[0], inv.subsegment_docs)))
                 for inv in self.loaded.invocations]
        m = re.search(r'<html[^>]*data-ready="(\d+)"', dom)
        self.assertIsNotNone(m, "the page's script did not run")
        self.assertEqual(int(m.group(1)), sum(nodes))
        sections = re.split(r'<section class="inv', dom)[1:]
        self.assertEqual(len(sections), len(nodes))
        for n, sec in zip(nodes, sections):
            self.assertEqual(len(re.findall(r'<span class="bar s-(?:ok|error|fault|throttle|open)"', sec)), n)
        by_mark = {}
        for sec in sections:
            by_mark.setdefault(re.search(r'data-mark="([^"]+)"', sec).group(1), []).append(sec)
        def causes(mark):
            return [re.search(r'<div class="cause[^>]*>(.*?)</div>', sec, re.S).group(1) for sec in by_mark[mark]]
        for mark, text in (("TIMEOUT", "Sandbox.Timedout: Task timed out after 2.00 seconds: sleeping (clock_nanosleep)"),
                           ("CRASH", "Runtime.ExitError: The runtime exited before completing the invocation"),
                           ("OOM", "Runtime.OutOfMemory: Out of memory: 128 MB used of 128 MB")):
            self.assertTrue(any(text in c for c in causes(mark)), (mark, causes(mark)))
        # the forensics snapshot is in the timeout's details
        self.assertTrue(any("where_the_time_went" in sec for sec in by_mark["TIMEOUT"]))
        # markup from a document is text: no element made of it, the title untouched
        self.assertNotIn("<img", dom)
        self.assertEqual(dom.count("<script"), 1)
        self.assertIn("<title>lambda-tracer traces</title>", dom)
        self.assertIn(EVIL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), dom)


if __name__ == "__main__":
    unittest.main()
