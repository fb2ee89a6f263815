"""Resource limits never kill the extension (issue 10, point 8), and every SHUTDOWN reason the
platform sends is recognised (point 9).

A file size limit (RLIMIT_FSIZE) is set by a wrapper before exec, as the descriptor and
address-space limits are in test_faults_failopen.py.  Its default signal, SIGXFSZ, used to kill
the extension when the journal in /tmp was written past the limit; now the write fails
(EFBIG), the journal turns itself off with one line, and the invocations are still exported."""
import os
import shutil
import unittest

import harness
from test_faults import Checks, final_segments
from test_faults_failopen import FailOpenChecks, Run

JOURNAL = ".%s.journal" % harness.EXT_NAME


def journal_path(emu):
    return os.path.join(emu.tmp_dir, JOURNAL)


def under_tsan():
    with open(harness.binary(), "rb") as f:
        return b"__tsan_init" in f.read()


def journal_lines(lines):
    # (the shutdown summary's counters, e.g. journal_full=, are not journal lines)
    return [l for l in lines if "journal" in l and not l.startswith("{") and " shutdown reason=" not in l]


class FileSizeLimitTest(unittest.TestCase, FailOpenChecks):
    def setUp(self):
        if under_tsan():
            # ThreadSanitizer's runtime writes before main and dies by SIGXFSZ at a 0-byte limit
            self.skipTest("the TSan runtime cannot start under RLIMIT_FSIZE=0")

    def assert_exported_without_journal(self, run, needles):
        # every invocation went on, was exported once, the process exited 0 by itself
        self.assert_kept_the_loop(run)
        self.assert_one_final_each(run.lines, run.results)
        self.assertEqual(set(final_segments(run.lines)), {r.request_id for r in run.results})
        # one line about the journal, saying why
        self.assertEqual(len(journal_lines(run.lines)), 1, journal_lines(run.lines))
        self.one_line(run, *needles)
        # no exit by a signal anywhere in the environment's life
        exits = [p for p in run.emu.process_log if p.get("event") == "exit" and p.get("who") == harness.EXT_NAME]
        self.assertTrue(exits)
        for p in exits:
            self.assertEqual(p["returncode"], 0, p)

    def test_limit_zero_with_a_predecessors_journal(self):
        # a journal left by a killed predecessor must be wiped at start: the first write is
        # refused.  (Before: SIGXFSZ pending on the main thread, fatal when its signal mask was
        # restored; every process died in Init and every invocation failed.)
        stale = b"\xff" * 2048

        def leave_journal(emu):
            with open(journal_path(emu), "wb") as f:
                f.write(stale)
        run = Run(self, prelude="ulimit -f 0", setup=leave_journal)
        self.assert_exported_without_journal(run, ("invocation journal unavailable", "File too large",
                                                    "continuing without it"))
        # the predecessor's file is left as it was (a process without the limit may still use it)
        with open(journal_path(run.emu), "rb") as f:
            self.assertEqual(f.read(), stale)

    def test_limit_zero_on_a_fresh_tmp(self):
        # nothing to wipe at start: the first invocation's entry is the first write refused
        run = Run(self, prelude="ulimit -f 0")
        self.assert_exported_without_journal(run, ("invocation journal could not be written (File too large)",
                                                    "continuing without it"))
        self.assertEqual(os.path.getsize(journal_path(run.emu)), 0)

    def test_limit_inside_the_first_slot(self):
        # 100 bytes: the first entry's write is cut short, the rest refused.  The torn slot is
        # not left behind for a next process: the file is emptied (before: 100 bytes remained)
        run = Run(self, prelude="prlimit --pid $$ --fsize=100")
        self.assert_exported_without_journal(run, ("invocation journal could not be written (File too large)",
                                                    "continuing without it"))
        self.assertEqual(os.path.getsize(journal_path(run.emu)), 0)

    def test_limit_kept_after_a_reset(self):
        # the runtime crashes: the reset starts a new extension process under the same limit and
        # the same stale journal; each process exits 0 and the crashed invocation is exported
        def leave_journal(emu):
            with open(journal_path(emu), "wb") as f:
                f.write(b"\x01" * 700)
        run = Run(self, prelude="ulimit -f 0", setup=leave_journal,
                  payloads=[b'{"action":"fast"}', b'{"action":"crash","code":3}', b'{"action":"fast"}'])
        self.assertEqual([r.status for r in run.results], ["success", "error", "success"])
        self.assertEqual(run.results[1].error_type, "Runtime.ExitError")
        reset = run.results[1].shutdown.extensions[harness.EXT_NAME]
        self.assertEqual((reset.exit_code, reset.killed), (0, False))
        self.assert_clean_exit(run.sd, run.lines)
        self.assert_one_final_each(run.lines, run.results)
        # one line per process (two processes)
        self.assertEqual(len([l for l in run.lines if "invocation journal unavailable (File too large)" in l]), 2)


class FullTmpTest(unittest.TestCase, FailOpenChecks):
    def test_full_tmp(self):
        # /tmp on a tiny tmpfs, filled: the first journal write fails with ENOSPC (needs root to
        # mount; skipped otherwise).  One line, every invocation exported, exit 0.
        import subprocess
        import tempfile
        tmp = tempfile.mkdtemp(prefix="lt-fulltmp-")
        self.addCleanup(shutil.rmtree, tmp, True)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", tmp],
                          capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs here")
        self.addCleanup(subprocess.run, ["umount", "-l", tmp], capture_output=True)
        fd = os.open(os.path.join(tmp, "fill"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 1024) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        root = harness.make_root()
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root, tmp_dir=tmp)
        self.addCleanup(emu.close)
        emu.start()
        results = [emu.invoke(payload=b'{"action":"fast"}') for _ in range(3)]
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        self.assertEqual([r.status for r in results], ["success"] * 3)
        self.assert_clean_exit(sd, lines)
        self.assert_one_final_each(lines, results)
        self.assertEqual(len(journal_lines(lines)), 1, journal_lines(lines))
        self.assertIn("invocation journal could not be written", journal_lines(lines)[0])
        self.assertEqual(os.path.getsize(os.path.join(tmp, JOURNAL)), 0)


class LimitSignalTest(unittest.TestCase, Checks):
    def test_limit_signals_are_ignored(self):
        # the signals a resource limit sends (SIGXFSZ: file size, SIGXCPU: CPU time soft limit)
        # and SIGPIPE must not kill the process, whichever thread they land on: sent from outside
        # while the sandbox is frozen, they are delivered at the thaw of the next invocation
        import signal
        root = harness.make_root()
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root)
        self.addCleanup(emu.close)
        emu.start()
        results = [emu.invoke(payload=b'{"action":"fast"}')]
        pid = emu.extension_pids()[harness.EXT_NAME]
        for sig in (signal.SIGXFSZ, signal.SIGXCPU, signal.SIGPIPE):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.fail("the extension died of the signal before %s" % sig.name)
            results.append(emu.invoke(payload=b'{"action":"fast"}'))
        sd = emu.shutdown()
        lines = harness.output_lines(emu)
        self.assertEqual([r.status for r in results], ["success"] * 4)
        self.assertEqual(emu.extension_pids()[harness.EXT_NAME], pid)  # the same process throughout
        self.assert_clean_exit(sd, lines)
        self.assert_one_final_each(lines, results)


class ShutdownReasonTest(unittest.TestCase, Checks):
    """SHUTDOWN's reason is named in the summary as Lambda (or AWS's RIE, on SIGTERM) sent it."""

    def run_reason(self, reason):
        root = harness.make_root()
        self.addCleanup(shutil.rmtree, root, True)
        emu = harness.new_emulator(root)
        self.addCleanup(emu.close)
        emu.start()
        results = [emu.invoke(payload=b'{"action":"fast"}') for _ in range(2)]
        sd = emu.shutdown(reason)
        lines = harness.output_lines(emu)
        self.assert_clean_exit(sd, lines)
        self.assert_one_final_each(lines, results)
        return [r for r, _ in harness.shutdowns(lines)], lines

    def test_sandbox_terminated_is_recognised(self):
        for sent in ("SandboxTerminated", "sandboxterminated"):
            reasons, lines = self.run_reason(sent)
            self.assertEqual(reasons, ["SandboxTerminated"], sent)
            self.assertFalse([l for l in lines if "reason=unknown" in l], sent)

    def test_every_lambda_reason_is_recognised(self):
        for sent, named in (("spindown", "spindown"), ("TIMEOUT", "timeout"), ("failure", "failure"),
                            ("meteor", "unknown")):
            reasons, _ = self.run_reason(sent)
            self.assertEqual(reasons, [named], sent)


if __name__ == "__main__":
    unittest.main()
