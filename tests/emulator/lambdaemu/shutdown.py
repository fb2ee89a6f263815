"""Shutdown and resets after failures.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import signal
import threading
import uuid

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['ShutdownMixin']


class ShutdownMixin:
    """Shutdown / reset.  A part of Emulator (core.py); uses its state."""

    # ------------------------------------------------------------------ Shutdown / reset

    def _give_ext_locked(self, ext, reply):
        """Hand an event to an extension's pending /event/next, or queue it for its next call."""
        if ext.waiter is not None and not ext.waiter.cancelled:
            w = ext.waiter
            ext.waiter = None
            w.reply = reply
            self._cv.notify_all()
            return w
        ext.queued = reply
        return None

    def _release_delivery_hold(self):
        with self._cv:
            self._delivery_hold = False
            self._cv.notify_all()

    def _teardown(self, reason):
        budget_ms = self.shutdown_budget_ms
        with self._cv:
            already_down = self._phase in ("dead", "new")
            self._phase = "shutdown"
            self._thaw_locked()
            tail_delay_ms = self.quirks["shutdown_telemetry_delay_ms"]
            self._delivery_hold = tail_delay_ms is not None
            self._set_sampling(False)
            for sub in self._subs.values():
                sub.flush_req = True
            rt = None if already_down else self._runtime
            exts = [] if already_down else [e for e in self._exts if not e.dead]
            t0 = _mono_ns()
            deadline_ns = t0 + budget_ms * 1_000_000
            announced_ms = self.faults["shutdown_deadline_ms"]
            deadline_epoch_ms = self._epoch_ms(t0) + (budget_ms if announced_ms is None else int(announced_ms))
            if rt is not None and rt.proc is not None:
                rt.proc.expected_exit = True
            for ext in exts:
                if ext.proc is not None:
                    ext.proc.expected_exit = True
            self._cv.notify_all()
        result = ShutdownResult(reason=reason, deadline_ms=deadline_epoch_ms, duration_ms=0.0,
                                runtime_exit_code=None, runtime_killed=False)
        # 1. runtime: SIGTERM, then SIGKILL after its share of the budget
        if rt is not None and rt.proc is not None and rt.proc.popen is not None:
            p = rt.proc
            if not p.exited:
                self._signal(p, signal.SIGTERM)
                share = min(budget_ms, int(self.quirks["runtime_shutdown_ms"]))
                with self._cv:
                    end = _mono_ns() + share * 1_000_000
                    while not p.exited and _mono_ns() < end and not self._closed:
                        self._cv.wait(0.05)
                if not p.exited:
                    p.killed = True
                    self._signal(p, signal.SIGKILL)
            result.runtime_killed = p.killed
        # 2. extensions: SHUTDOWN to those registered for it, SIGKILL to the others.  By default
        # what is buffered goes out before SHUTDOWN: the flush was only requested above and runs
        # on each subscriber's own thread, so wait until it has been answered (or has failed once,
        # or cannot be delivered), for at most one answer timeout from the shutdown's start.
        # Without this wait a loaded machine let the runtime's exit win the race, and an
        # extension that exits at once on SHUTDOWN never got the last platform.report.
        with self._cv:
            if tail_delay_ms is None:
                for sub in self._subs.values():
                    sub.flush_req = True
                self._cv.notify_all()
                flush_end = min(deadline_ns, t0 + int(self.quirks["delivery_timeout_ms"]) * 1_000_000)
                while not self._closed and _mono_ns() < flush_end and any(
                        sub.flush_pending_locked() for sub in self._subs.values()):
                    self._cv.wait(min(0.05, max(0.001, (flush_end - _mono_ns()) / 1e9)))
            for ext in exts:
                if ext.proc is None or ext.proc.exited:
                    continue
                if ext.registered and "SHUTDOWN" in ext.events:
                    ev = {"eventType": "SHUTDOWN", "deadlineMs": deadline_epoch_ms, "shutdownReason": reason}

                    def sent(t_write_ns, ok, ext=ext):
                        # called under the lock just before the write (ok None) and again if
                        # the write failed (ok False)
                        if ok is None:
                            ext.t_shutdown_sent_ns = t_write_ns
                            ext.shutdown_delivered = True
                        elif not ok:
                            ext.t_shutdown_sent_ns = None
                            ext.shutdown_delivered = False

                    reply = _Reply(200, _json(ev), [("Content-Type", "application/json"),
                                                    ("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))],
                                   event="SHUTDOWN", who=ext.name, on_sent=sent)
                    self._give_ext_locked(ext, reply)
                else:
                    ext.proc.killed = True
                    self._signal(ext.proc, signal.SIGKILL)
            if tail_delay_ms is not None:
                threading.Timer(tail_delay_ms / 1000.0, self._release_delivery_hold).start()
            self._cv.notify_all()
            while not self._closed and _mono_ns() < deadline_ns:
                if all(e.proc is None or e.proc.exited for e in exts):
                    break
                self._cv.wait(min(0.05, max(0.001, (deadline_ns - _mono_ns()) / 1e9)))
            stragglers = [e.proc for e in exts if e.proc is not None and not e.proc.exited]
        for p in stragglers:
            p.killed = True
            self._signal(p, signal.SIGKILL)
        # reap everything (bounded)
        with self._cv:
            end = _mono_ns() + 2_000_000_000
            while any(not p.exited for p in self._procs) and _mono_ns() < end and not self._closed:
                self._cv.wait(0.05)
            result.duration_ms = _ms(_mono_ns() - t0)
            if rt is not None and rt.proc is not None:
                result.runtime_exit_code = rt.proc.returncode
            for ext in exts:
                p = ext.proc
                ms_to_exit = None
                if p is not None and p.exited and ext.t_shutdown_sent_ns is not None and p.t_exit_ns:
                    ms_to_exit = _ms(p.t_exit_ns - ext.t_shutdown_sent_ns)
                result.extensions[ext.name] = ExtensionExit(
                    name=ext.name, pid=p.pid if p else None, exit_code=p.returncode if p else None,
                    killed=bool(p and p.killed), shutdown_delivered=ext.shutdown_delivered,
                    ms_to_exit=ms_to_exit)
                ext.dead = True
            self._cancel_all_waiters_locked()
            if not self.faults["keep_undelivered_records"]:
                for sub in self._subs.values():
                    sub.q.clear()
                    sub.q_bytes = 0
            self._phase = "dead"
            self._frozen = False
            self._inv = None
            self._mi_queue.clear()
            self._cv.notify_all()
        return result

    def _cancel_all_waiters_locked(self):
        for ext in self._exts:
            if ext.waiter is not None:
                ext.waiter.cancelled = True
                ext.waiter = None
        rt = self._runtime
        if rt is not None:
            for w in [rt.waiter, rt.restore_waiter] + rt.waiters:
                if w is not None:
                    w.cancelled = True
            rt.waiter = rt.restore_waiter = None
            rt.waiters = []
