"""Sandbox processes: launch, output capture, freeze/thaw, kill and reap.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import fcntl
import os
import select
import signal
import stat
import struct
import subprocess
import termios
import threading
import time

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['ProcessesMixin']


class ProcessesMixin:
    """Sandbox processes (launch, freeze/thaw, kill, reap).  A part of Emulator (core.py); uses its state."""

    # ------------------------------------------------------------------ processes

    def _base_env(self):
        env = {k: os.environ[k] for k in PASSTHROUGH_VARS if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["TMPDIR"] = self.tmp_dir
        return env

    def _platform_env(self):
        env = {
            "AWS_LAMBDA_RUNTIME_API": self.runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": self.function_version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "TZ": ":UTC",
            "AWS_LAMBDA_INITIALIZATION_TYPE": self.init_type,
        }
        if self.init_type == "snap-start":
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://%s/2021-04-23/credentials" % self.runtime_api
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self._creds_token
        else:
            env["AWS_ACCESS_KEY_ID"] = self._fake_creds["AccessKeyId"]
            env["AWS_SECRET_ACCESS_KEY"] = self._fake_creds["SecretAccessKey"]
            env["AWS_SESSION_TOKEN"] = self._fake_creds["Token"]
        return env

    def _runtime_only_env(self):
        host, _, port = self.xray_daemon_address.rpartition(":")
        env = {
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": os.path.join(self.root, "var", "task"),
            "LAMBDA_RUNTIME_DIR": os.path.join(self.root, "var", "runtime"),
            "AWS_XRAY_DAEMON_ADDRESS": self.xray_daemon_address,
            "_AWS_XRAY_DAEMON_ADDRESS": host,
            "_AWS_XRAY_DAEMON_PORT": port,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
        if self.init_type != "snap-start":
            env["AWS_LAMBDA_LOG_GROUP_NAME"] = "/aws/lambda/%s" % self.function_name
            env["AWS_LAMBDA_LOG_STREAM_NAME"] = self._instance_id
        if self.managed_instances:
            # set by Lambda for Managed Instances runtimes (aws-lambda-go PR #600); runtime only here
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.max_concurrency)
        return env

    def extension_environment(self):
        """The exact environment an external extension process gets."""
        env = self._base_env()
        merged = dict(self.customer_env)
        merged.update(self._platform_env())
        for k, v in merged.items():
            if k.startswith("_") or k in RUNTIME_ONLY_VARS:
                continue
            env[k] = v
        return env

    def runtime_environment(self):
        """The exact environment the runtime bootstrap gets."""
        env = self._base_env()
        env.update(self.customer_env)
        env.update(self._runtime_only_env())
        env.update(self._platform_env())
        return env

    def _extension_files(self):
        d = os.path.join(self.root, "opt", "extensions")
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return []
        out = []
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and os.access(p, os.X_OK):
                out.append(p)
        return out

    def _launch(self, proc, argv, env, cwd):
        out_path = None
        if self.work_dir:
            out_path = os.path.join(self.work_dir, "%s.log" % proc.name)
        t_spawn = _mono_ns()
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        proc.popen = p
        proc.pid = p.pid
        proc.t_spawn_ns = t_spawn  # just before fork + exec: nothing the process does precedes it
        proc.t_start_ns = _mono_ns()
        if out_path:
            with self._log_lock:
                if out_path not in self._out_files:
                    self._out_files[out_path] = open(out_path, "ab", buffering=0)
        reader = threading.Thread(target=self._reader, args=(proc, out_path), name="out-%s" % proc.name,
                                  daemon=True)
        self._readers.append((proc, reader))
        reader.start()
        threading.Thread(target=self._watcher, args=(proc,), name="wait-%s" % proc.name,
                         daemon=True).start()
        self._plog("launch", proc, argv=argv)

    def _reader(self, proc, out_path):
        fd = proc.popen.stdout.fileno()
        rtype = "function" if proc.kind == "runtime" else "extension"
        buf = b""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while True:
                try:
                    r = poller.poll(500)
                except (OSError, ValueError):
                    break
                if not r:
                    if proc.exited and self._pipe_pending(fd) == 0:
                        # a child may keep the pipe open; stop once the process is gone
                        if self._closed:
                            break
                    continue
                with proc.rlock:
                    try:
                        data = os.read(fd, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        if buf:
                            self._emit_output(proc, rtype, [buf], out_path)
                        break
                    buf += data
                    lines = buf.split(b"\n")
                    buf = lines.pop()
                    out = [l + b"\n" for l in lines]
                    while len(buf) > 256 * 1024:
                        out.append(buf[:256 * 1024])
                        buf = buf[256 * 1024:]
                    if out:
                        self._emit_output(proc, rtype, out, out_path)
        finally:
            try:
                proc.popen.stdout.close()
            except OSError:
                pass

    def _emit_output(self, proc, rtype, chunks, out_path):
        texts = [c.decode("utf-8", "replace") for c in chunks]
        if out_path:
            with self._log_lock:
                f = self._out_files.get(out_path)
                if f:
                    try:
                        f.write(b"".join(chunks))
                    except (OSError, ValueError):
                        pass
        with self._cv:
            store = self._outputs["runtime" if proc.kind == "runtime" else proc.name]
            for t in texts:
                store.append(t[:-1] if t.endswith("\n") else t)
                self._emit_locked(rtype, t)

    @staticmethod
    def _pipe_pending(fd):
        try:
            buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
            return struct.unpack("i", buf)[0]
        except OSError:
            return 0

    def _drain(self, proc, limit_s=0.05):
        """Wait until everything the process wrote so far has been turned into records."""
        if proc is None or proc.popen is None:
            return
        try:
            fd = proc.popen.stdout.fileno()
        except (ValueError, AttributeError):
            return
        end = time.monotonic() + limit_s
        while True:
            with proc.rlock:
                try:
                    n = self._pipe_pending(fd)
                except ValueError:
                    return
            if n == 0 or time.monotonic() > end:
                return
            time.sleep(0.0005)

    def _watcher(self, proc):
        rc = proc.popen.wait()
        with self._cv:
            proc.exited = True
            proc.returncode = rc
            proc.t_exit_ns = _mono_ns()
            self._plog("exit", proc, returncode=rc)
            self._on_exit_locked(proc)
            self._cv.notify_all()

    def _on_exit_locked(self, proc):
        if proc.kind == "runtime":
            rt = self._runtime
            if rt is not None and rt.proc is proc:
                for w in [rt.waiter, rt.restore_waiter] + rt.waiters:
                    if w is not None:
                        w.cancelled = True
                rt.waiter = rt.restore_waiter = None
                rt.waiters = []
        else:
            ext = proc.ext
            if ext.waiter is not None:
                ext.waiter.cancelled = True
                ext.waiter = None
        if proc.expected_exit or self._phase in ("shutdown", "dead") or self._closed:
            return
        if proc.kind == "runtime":
            etype = "Runtime.OutOfMemory" if proc.oom else "Runtime.ExitError"
        else:
            ext = proc.ext
            if ext.failed:
                etype = ext.failed
            else:
                etype = "Extension.Crash"
                ext.failed = etype
                ext.state = "Exited"
        self._set_fatal_locked(etype, proc)

    def _set_fatal_locked(self, etype, proc=None):
        if self._phase in ("init", "invoke", "restore"):
            if self._fatal is None:
                self._fatal = (etype, proc)
        elif self._phase == "ready" and self._idle_fault is None:
            self._idle_fault = (etype, proc)
        self._cv.notify_all()

    def _signal(self, proc, sig):
        if proc.popen is None or proc.exited:
            return
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(proc.pid, sig)
            except OSError:
                pass

    def _has_live_procs(self):
        with self._lock:
            return any(not p.exited for p in self._procs)

    def _freeze_locked(self, force=False):
        if self._frozen or not (self.freeze or force):
            return
        for p in self._procs:
            self._signal(p, signal.SIGSTOP)
        self._frozen = True
        self._sampling = False
        self.process_log.append({"t_mono_ns": _mono_ns(), "event": "freeze", "who": "sandbox"})

    def _thaw_locked(self):
        if not self._frozen:
            return
        for p in self._procs:
            self._signal(p, signal.SIGCONT)
        self._frozen = False
        self.process_log.append({"t_mono_ns": _mono_ns(), "event": "thaw", "who": "sandbox"})
        self._cv.notify_all()
