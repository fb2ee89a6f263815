"""The README and docs/ against the code they describe.

- every LAMBDA_TRACER_* setting extension/config.c reads is in the README's Configure section;
- the README names no LAMBDA_TRACER_* setting that config.c does not read;
- every relative link in README.md and docs/*.md points at a file that exists, and a link to a
  heading (`#anchor`, in the same file or in another .md file) at a heading that exists;
- the Quick start gives the two commands;
- every WARN and ERROR line extension/*.c can log has a row in the README's Troubleshooting table
  (matched by a stable key: the line's text up to its first format directive, or a little
  further when that is too short to tell lines apart), at the level the code logs it, and every
  line the table quotes is one the code logs (no stale rows).

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


# A log call and its format: log_error/log_warn/log_info (log.h), then C string literals.
LOG_CALL = re.compile(r"\blog_(error|warn|info)\s*\(")
C_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*', re.S)
STRING_RUN = re.compile(r'\s*((?:"(?:\\.|[^"\\\n])*"\s*)+)')
DIRECTIVE = re.compile(r"%(?:%|[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|z|j|t|L)?[diouxXeEfgGcsp])")
KEY_MIN_CHARS = 12  # literal characters a key needs before it may end at a directive
KEY_MAX_CHARS = 60  # and where a long literal start is cut (at a word)
LEVELS = {"error": "ERROR", "warn": "WARN", "info": "INFO"}
ROW_LEVEL = re.compile(r"\b(ERROR|WARN|INFO)\s*$")


def strip_comments(c_text):
    """C text with comments blanked out (string literals kept whole)."""
    return C_TOKEN.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "\n" * m.group(0).count("\n") or " ",
                       c_text)


def c_unescape(literals):
    """The text of adjacent C string literals, joined."""
    out = []
    for lit in re.findall(r'"((?:\\.|[^"\\])*)"', literals):
        out.append(re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), lit))
    return "".join(out)


def log_formats(c_text, where="?"):
    """(level, format, 'file:line') for every log_error/log_warn/log_info call; a call whose
    format is not a string literal gives format None (it cannot be checked)."""
    text = strip_comments(c_text)
    found = []
    for m in LOG_CALL.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        lits = STRING_RUN.match(text, m.end())
        after = text[lits.end():].lstrip()[:1] if lits else ""
        fmt = c_unescape(lits.group(1)) if lits and after in (",", ")") else None
        found.append((LEVELS[m.group(1)], fmt, "%s:%d" % (where, line)))
    return found


def format_key(fmt):
    """A regular expression for the start of the line fmt prints: its literal text up to the
    first directive (a directive matching anything), continued past directives until it holds
    KEY_MIN_CHARS literal characters, and cut at a word near KEY_MAX_CHARS."""
    parts, pos = [], 0
    for m in DIRECTIVE.finditer(fmt):
        parts.append(fmt[pos:m.start()])
        parts.append("%%" if m.group(0) == "%%" else None)
        pos = m.end()
    parts.append(fmt[pos:])
    pattern, count = "^", 0
    for part in parts:
        if part is None:
            if count >= KEY_MIN_CHARS:
                break
            pattern += ".+?"
            continue
        lit = "%" if part == "%%" else part
        if count + len(lit) > KEY_MAX_CHARS:
            cut = lit[:max(KEY_MAX_CHARS - count, 0)]
            lit = cut[:cut.rfind(" ")] if " " in cut else cut
            pattern += re.escape(lit)
            count += len(lit)
            break
        pattern += re.escape(lit)
        count += len(lit.strip())
    return pattern.rstrip() if not pattern.endswith("\\ ") else pattern[:-2]


def troubleshooting_lines(markdown):
    """(level, text) of each line the Troubleshooting section's table quotes in its first
    column: each `code span` there, at the level written just before it (ERROR, INFO), else
    WARN (the table's default)."""
    body = section(markdown, "Troubleshooting") or ""
    out = []
    for row in body.split("\n"):
        if not row.startswith("|") or re.match(r"^\|\s*-", row):
            continue
        cells = re.split(r"(?<!\\)\|", row)
        first = cells[1] if len(cells) > 2 else ""
        pos = 0
        for m in re.finditer(r"`([^`]+)`", first):
            before = first[pos:m.start()]
            lvl = ROW_LEVEL.search(before)
            out.append((lvl.group(1) if lvl else "WARN", m.group(1).replace("\\|", "|")))
            pos = m.end()
    return out


def table_against_code(formats, quoted):
    """(lines the table lacks, table lines no code logs): the first as 'file:line LEVEL key',
    the second as 'LEVEL text'.  formats: log_formats' tuples; quoted: troubleshooting_lines."""
    keys = [(lvl, re.compile(format_key(fmt)), where, fmt) for lvl, fmt, where in formats if fmt is not None]
    missing = ["%s %s %s" % (where, lvl, key.pattern) for lvl, key, where, _ in keys
               if lvl != "INFO" and not any(ql == lvl and key.match(qt) for ql, qt in quoted)]
    stale = ["%s %s" % (ql, qt) for ql, qt in quoted
             if not any(lvl == ql and key.match(qt) for lvl, key, _, _ in keys)]
    return missing, stale


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

    def test_log_formats_found(self):
        c = ('/* log_warn("in a comment %d",\n 1); */\n'
             'static void f(void)\n{\n    log_warn("a \\"quoted\\" %s "\n'
             '             "continued", x);\n'
             '    log_error(fmt, x);\n    log_debug("not checked");\n    log_info("done");\n}\n')
        self.assertEqual(log_formats(c, "x.c"), [("WARN", 'a "quoted" %s continued', "x.c:5"),
                                                 ("ERROR", None, "x.c:7"), ("INFO", "done", "x.c:9")])

    def test_format_keys(self):
        key = format_key("%s exporter failing (%s); pausing it for %d s")
        self.assertTrue(re.match(key, "xray exporter failing (HTTP 403); pausing it for 30 s"))
        self.assertFalse(re.match(key, "xray exporter refused a request (HTTP 403)"))
        # too short before its first directive: the key goes on past it
        key = format_key("setting %s is invalid (%s); using %s")
        self.assertTrue(re.match(key, "setting NAME is invalid (why); using FALLBACK"))
        self.assertFalse(re.match(key, "setting NAME is deprecated"))
        # a long literal start is cut at a word
        key = format_key("X-Ray daemon exporter needs LAMBDA_TRACER_DAEMON_ADDRESS (or AWS_XRAY_DAEMON_ADDRESS); "
                         "leaving it out")
        self.assertTrue(re.match(key, "X-Ray daemon exporter needs LAMBDA_TRACER_DAEMON_ADDRESS (or ...)"))
        self.assertEqual(format_key("100%% of the batch done: %d"), r"^100%\ of\ the\ batch\ done:")

    def test_table_against_code(self):
        md = ("## Troubleshooting\n| line | means | do |\n| --- | --- | --- |\n"
              "| `a thing failed (why); going on` / ERROR `it broke: REASON` | x | y |\n"
              "| `gone away (...)` | x | y |\n"
              "| ERROR `only a warning (N)` | x | y |\n## Next\n| `not in the section` | | |\n")
        quoted = troubleshooting_lines(md)
        self.assertEqual(quoted, [("WARN", "a thing failed (why); going on"), ("ERROR", "it broke: REASON"),
                                  ("WARN", "gone away (...)"), ("ERROR", "only a warning (N)")])
        formats = [("WARN", "a thing failed (%s); going on", "a.c:1"), ("ERROR", "it broke: %s", "a.c:2"),
                   ("WARN", "only a warning (%d)", "a.c:3"), ("WARN", "never in the table %s", "a.c:4"),
                   ("INFO", "an info line need not be there", "a.c:5")]
        missing, stale = table_against_code(formats, quoted)
        self.assertEqual([m.split()[0] for m in missing], ["a.c:3", "a.c:4"])  # wrong level, absent
        self.assertEqual(stale, ["WARN gone away (...)", "ERROR only a warning (N)"])

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

    def test_troubleshooting_table_lists_every_warn_and_error_line(self):
        formats = []
        for path in sorted(glob.glob(os.path.join(REPO, "extension", "*.c"))):
            formats += log_formats(read(path), os.path.relpath(path, REPO))
        self.assertGreater(len([f for f in formats if f[0] != "INFO"]), 40)  # the extraction found them
        self.assertEqual([where for _, fmt, where in formats if fmt is None], [],
                         "log calls whose format is not a string literal")
        quoted = troubleshooting_lines(self.readme)
        self.assertGreater(len(quoted), 20, "no Troubleshooting table found")
        missing, stale = table_against_code(formats, quoted)
        self.assertEqual(missing, [], "WARN/ERROR lines without a row in the README's Troubleshooting table")
        self.assertEqual(stale, [], "lines the Troubleshooting table quotes that no code logs (or at another level)")

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
