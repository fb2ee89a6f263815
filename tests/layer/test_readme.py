"""The README and docs/ against the code they describe.

- every LAMBDA_TRACER_* setting extension/config.c reads is in the README's Configure section;
- the README names no LAMBDA_TRACER_* setting that config.c does not read;
- every relative link in README.md and docs/*.md points at a file that exists, and a link to a
  heading (`#anchor`, in the same file or in another .md file) at a heading that exists;
- the Quick start gives the two commands.

Run: python3 -m unittest discover -s tests/layer -p 'test_readme.py'
"""
import glob
import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A setting's name as config.c reads it: a string literal.  Names end in a letter or digit,
# so prose such as `LAMBDA_TRACER_*` is not taken for a setting.
NAME_LITERAL = re.compile(r'"(LAMBDA_TRACER_[A-Z0-9_]*[A-Z0-9])"')
NAME = re.compile(r"LAMBDA_TRACER_[A-Z0-9_]*[A-Z0-9]")
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def settings_read_by(config_c_text):
    """The LAMBDA_TRACER_* names config.c reads (its string literals, comments left out)."""
    text = re.sub(r"/\*.*?\*/", "", config_c_text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return set(NAME_LITERAL.findall(text))


def section(markdown, title):
    """The text of the level-2 section whose heading starts with `title`, up to the next
    level-2 heading; None when there is none.  Fenced code is kept (it is part of it)."""
    lines = markdown.split("\n")
    out, inside, fenced = [], False, False
    for line in lines:
        if line.startswith("```") or line.startswith("~~~"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            if inside:
                break
            inside = line[3:].strip().lower().startswith(title.lower())
            continue
        if inside:
            out.append(line)
    return "\n".join(out) if inside or out else None


def slug(heading, seen):
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped (letters,
    digits, '-', '_' and blanks kept), blanks to '-', repeats numbered."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in "-_ ")
    s = text.replace(" ", "-")
    n = seen.get(s, 0)
    seen[s] = n + 1
    return s if n == 0 else "%s-%d" % (s, n)


def anchors(markdown):
    seen, out = {}, set()
    body = FENCE.sub("", markdown)
    for line in body.split("\n"):
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            out.add(slug(m.group(2), seen))
    return out


def broken_links(path, markdown, exists=os.path.exists, read_other=None):
    """Relative links of one Markdown file that lead nowhere: (target, why) pairs."""
    read_other = read_other or read
    bad = []
    body = CODE_SPAN.sub("", FENCE.sub("", markdown))
    base = os.path.dirname(path)
    for target in LINK.findall(body):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        if file_part:
            full = os.path.normpath(os.path.join(base, file_part))
            if not exists(full):
                bad.append((target, "no such file: %s" % os.path.relpath(full, REPO)))
                continue
        else:
            full = path
        if anchor and full.endswith(".md"):
            text = markdown if full == path else read_other(full)
            if anchor not in anchors(text):
                bad.append((target, "no heading #%s in %s" % (anchor, os.path.relpath(full, REPO))))
    return bad


class TheCheckersThemselves(unittest.TestCase):
    """Each check must be able to fail: fed broken input, it says so."""

    def test_settings_from_literals_not_comments(self):
        c = ('/* LAMBDA_TRACER_OLD is gone */\n// "LAMBDA_TRACER_GONE"\n'
             'load(&l, "LAMBDA_TRACER_A", 1);\nstatic const char *x[] = {"LAMBDA_TRACER_B_2", "OTEL_X"};\n')
        self.assertEqual(settings_read_by(c), {"LAMBDA_TRACER_A", "LAMBDA_TRACER_B_2"})

    def test_section(self):
        md = "# T\n## Configure\nAAA\n```\n## fenced\n```\nBBB\n### sub\nCCC\n## Next\nDDD\n"
        got = section(md, "Configure")
        self.assertIn("BBB", got)  # a '## ' line inside fenced code does not end it
        self.assertIn("CCC", got)
        self.assertNotIn("DDD", got)
        self.assertIsNone(section(md, "Missing"))

    def test_slugs(self):
        seen = {}
        self.assertEqual(slug("Sampling: what is exported", seen), "sampling-what-is-exported")
        self.assertEqual(slug("Why did it time out?", seen), "why-did-it-time-out")
        self.assertEqual(slug("OpenTelemetry settings (`OTEL_*`)", seen), "opentelemetry-settings-otel_")
        self.assertEqual(slug("Why did it time out?", seen), "why-did-it-time-out-1")

    def test_broken_links_found(self):
        md = ("# Top\n[ok](#top) [bad anchor](#nowhere) [file](docs/x.md) [web](https://e.com/a)\n"
              "`[in code](missing.md)`\n```\n[fenced](missing2.md)\n```\n[gone](missing3.md#a)\n"
              "[other anchor](docs/x.md#there) [other bad](docs/x.md#not-there)\n")
        path = os.path.join(REPO, "README.md")
        files = {os.path.join(REPO, "docs", "x.md"): "# There\n"}
        bad = broken_links(path, md, exists=lambda p: p in files, read_other=files.__getitem__)
        self.assertEqual(sorted(t for t, _ in bad), ["#nowhere", "docs/x.md#not-there", "missing3.md#a"])


class ReadmeAgainstTheCode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.readme = read(os.path.join(REPO, "README.md"))
        cls.settings = settings_read_by(read(os.path.join(REPO, "extension", "config.c")))

    def test_config_c_reads_settings(self):
        # a guard against the extraction silently finding nothing
        self.assertGreater(len(self.settings), 30)
        self.assertIn("LAMBDA_TRACER_EXPORTERS", self.settings)

    def test_every_setting_is_in_configure(self):
        configure = section(self.readme, "Configure")
        self.assertIsNotNone(configure, "the README has no '## Configure' section")
        missing = sorted(n for n in self.settings if not re.search(r"\b%s\b" % n, configure))
        self.assertEqual(missing, [], "settings config.c reads that the README's Configure section lacks")

    def test_no_setting_config_c_does_not_read(self):
        named = set(NAME.findall(self.readme))
        unknown = sorted(named - self.settings)
        self.assertEqual(unknown, [], "the README names settings config.c does not read")

    def test_quick_start_gives_the_two_commands(self):
        quick = section(self.readme, "Quick start")
        self.assertIsNotNone(quick, "the README has no '## Quick start' section")
        for command in ("./build.sh demo", "./build.sh test"):
            self.assertIn(command, quick)

    def test_relative_links_resolve(self):
        files = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
        self.assertGreater(len(files), 1, "docs/*.md is missing")
        bad = []
        for path in files:
            for target, why in broken_links(path, read(path)):
                bad.append("%s: (%s) %s" % (os.path.relpath(path, REPO), target, why))
        self.assertEqual(bad, [])


if __name__ == "__main__":
    unittest.main()
