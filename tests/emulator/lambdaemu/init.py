"""The Init phase, and Restore (SnapStart).

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import os

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['InitMixin']


class InitMixin:
    """Init and Restore (SnapStart).  A part of Emulator (core.py); uses its state."""

    # ------------------------------------------------------------------ Init

    def _init_start_record(self, phase):
        if self.quirks["omit_init_fields"]:
            return {"initializationType": self.init_type, "phase": phase}
        return {"initializationType": self.init_type, "phase": phase,
                "runtimeVersion": self.runtime_version, "runtimeVersionArn": self.runtime_version_arn,
                "functionName": self.function_name, "functionVersion": self.function_version,
                "instanceId": self._instance_id, "instanceMaxMemory": self.memory_mb * MIB}

    def _wait(self, pred, deadline_ns):
        """Wait (lock held by caller's `with`) until pred, a fatal error, the deadline or close."""
        while True:
            if self._closed:
                return "closed"
            if self._fatal is not None:
                return "fatal"
            if pred():
                return "ok"
            rem = deadline_ns - _mono_ns()
            if rem <= 0:
                return "timeout"
            self._cv.wait(min(rem / 1e9, 0.5))

    def _run_init(self, phase, deadline_ns):
        t0 = _mono_ns()
        if deadline_ns is None:
            deadline_ns = t0 + int(self.init_timeout_s * 1e9)
        files = self._extension_files()
        with self._cv:
            self._gen += 1
            gen = self._gen
            self._exts = []
            self._ext_by_id = {}
            self._procs = []
            self._runtime = None
            self._inv = None
            self._mi_queue.clear()
            self._fatal = None
            self._idle_fault = None
            self._frozen = False
            self._delivery_hold = False
            self._mem_max = 0
            self._registration_open = True
            self._subscriptions_open = True
            self._init_buffer = []
            self._phase = "init"
            self._init_t0 = t0
            self._emit_locked("platform.initStart", self._init_start_record(phase), t0)
            ext_env = self.extension_environment()
            for path in files:
                ext = _Ext(os.path.basename(path), path, gen)
                self._exts.append(ext)
                proc = _Proc("extension", ext.name)
                proc.ext = ext
                ext.proc = proc
                try:
                    self._launch(proc, [path], ext_env, self.root)
                    self._procs.append(proc)
                except OSError as exc:
                    ext.state = "LaunchError"
                    ext.failed = "Extension.LaunchError"
                    ext.proc = None
                    self._plog("launch_error", proc, error=str(exc))
                    if self._fatal is None:
                        self._fatal = ("Extension.LaunchError", None)
        self._set_sampling(True)
        with self._cv:
            launched = [e for e in self._exts if not e.internal]
            outcome = self._wait(lambda: all(e.registered for e in launched), deadline_ns)
            rt = None
            if outcome == "ok":
                rt = _Runtime()
                rt.proc = _Proc("runtime", "runtime")
                self._runtime = rt
                cwd = os.path.join(self.root, "var", "task")
                if not os.path.isdir(cwd):
                    cwd = self.root if os.path.isdir(self.root) else None
                try:
                    self._launch(rt.proc, self.runtime_argv, self.runtime_environment(), cwd)
                    self._procs.append(rt.proc)
                except OSError as exc:
                    self._plog("launch_error", rt.proc, error=str(exc))
                    self._fatal = ("Runtime.InvalidEntrypoint", rt.proc)
                if self._fatal is None:
                    outcome = self._wait(
                        lambda: rt.ready and all(e.first_next for e in self._exts
                                                 if e.registered and not e.failed),
                        deadline_ns)
                else:
                    outcome = "fatal"
            # Init is over: no more registrations or subscriptions
            self._registration_open = False
            self._subscriptions_open = False
            self._init_buffer = None
            t_end = _mono_ns()
            duration = _ms(t_end - t0)
            if outcome == "ok":
                status, etype = "success", None
            elif outcome == "timeout":
                status, etype = "timeout", None
            elif outcome == "closed":
                status, etype = "error", "Emulator.Closed"
            else:
                status, etype = "error", self._fatal[0]
        # make sure log lines written so far become records before the closing records
        for p in list(self._procs):
            self._drain(p, 0.02)
        with self._cv:
            rec = {"initializationType": self.init_type, "phase": phase, "status": status}
            if etype:
                rec["errorType"] = etype
            # stamped when Init ended (as durationMs is measured), not when the log
            # drain above let them out: under load that was milliseconds later, after
            # initStart + durationMs, which Lambda's records never are
            self._emit_locked("platform.initRuntimeDone", rec, t_end)
            for ext in self._exts:
                state = ext.state
                if ext.registered and ext.first_next and not ext.failed:
                    state = "Ready"
                er = {"name": ext.name, "state": state, "events": list(ext.events)}
                if ext.failed:
                    er["errorType"] = ext.failed
                self._emit_locked("platform.extension", er, t_end)
            rep = {"initializationType": self.init_type, "phase": phase}
            if not self.quirks["omit_init_fields"]:
                rep["status"] = status
            if etype:
                rep["errorType"] = etype
            rep["metrics"] = {"durationMs": duration}
            self._emit_locked("platform.initReport", rep, t_end)
            # subscriptions of extensions that did not subscribe again keep their old destination
            for sub in self._subs.values():
                if sub.ext is None or sub.ext.gen != gen:
                    for ext in self._exts:
                        if ext.name == sub.name and ext.alive:
                            sub.ext = ext
            result = InitResult(status=status, error_type=etype, duration_ms=duration, phase=phase,
                                init_type=self.init_type,
                                extensions={e.name: ("Ready" if e.first_next and not e.failed else e.state)
                                            for e in self._exts},
                                runtime_pid=rt.proc.pid if rt and rt.proc else None,
                                extension_pids={e.name: e.proc.pid for e in self._exts if e.proc})
            if status == "success":
                self._phase = "ready"
                self._needs_init = False
                self._fatal = None
                self._pending_init_duration_ms = duration if phase == "init" else None
                self._pending_restore = self.init_type == "snap-start"
                # SnapStart: the snapshot is taken here, whatever `freeze` says
                self._freeze_locked(force=self.init_type == "snap-start")
                self._set_sampling(False)
        if status != "success":
            result.shutdown = self._teardown("timeout" if status == "timeout" else "failure")
            self._needs_init = True
            self._next_init_phase = "invoke"
        return result

    # ------------------------------------------------------------------ Restore (SnapStart)

    def _run_restore(self, deadline_ns):
        t0 = _mono_ns()
        deadline_ns = min(deadline_ns, t0 + int(10e9))
        with self._cv:
            self._phase = "restore"
            self._fatal = None
            rec = {"functionName": self.function_name, "functionVersion": self.function_version,
                   "instanceId": self._instance_id, "instanceMaxMemory": self.memory_mb * MIB,
                   "runtimeVersion": self.runtime_version, "runtimeVersionArn": self.runtime_version_arn}
            self._emit_locked("platform.restoreStart", rec, t0)
            self._thaw_locked()
            self._set_sampling(True)
            rt = self._runtime
            if rt.restore_waiter is not None:
                w = rt.restore_waiter
                rt.restore_waiter = None
                w.reply = _Reply(200, b"", [], who="runtime", event="RESTORE")
            self._cv.notify_all()
            outcome = self._wait(lambda: rt.state == "idle", deadline_ns)
            t_end = _mono_ns()
            duration = _ms(t_end - t0)
            if outcome == "ok":
                status, etype = "success", None
            elif outcome == "timeout":
                status, etype = "timeout", "Runtime.Unknown"
            else:
                status, etype = "error", (self._fatal[0] if self._fatal else "Emulator.Closed")
            done = {"status": status}
            if etype:
                done["errorType"] = etype
            self._emit_locked("platform.restoreRuntimeDone", done, t_end)
            rep = dict(done)
            rep["metrics"] = {"durationMs": duration}
            self._emit_locked("platform.restoreReport", rep, t_end)
            self._pending_restore = False
            if status == "success":
                self._pending_restore_ms = duration
                self._fatal = None
        return {"status": status, "error_type": etype, "duration_ms": duration}
