"""The sandbox's memory limit: accounting of the processes' memory.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import math
import os
import signal
import time

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .state import *  # noqa: F401,F403
from .server import *  # noqa: F401,F403
from .telemetry import *  # noqa: F401,F403

__all__ = ['MemoryMixin']


class MemoryMixin:
    """The memory limit.  A part of Emulator (core.py); uses its state."""

    # ------------------------------------------------------------------ memory

    def _sampler_loop(self):
        period = max(0.001, self.quirks["memory_sample_ms"] / 1000.0)
        while not self._closed:
            if not self._sampling or self._frozen:
                self._sample_wake.wait(0.2)
                self._sample_wake.clear()
                continue
            try:
                self._sample_once()
            except Exception:
                pass
            time.sleep(period)

    def _set_sampling(self, on):
        self._sampling = on
        if on:
            self._sample_wake.set()

    def _sample_once(self):
        with self._sampler_lock:
            with self._lock:
                procs = [p for p in self._procs if not p.exited and p.pid]
                rt = self._runtime.proc if self._runtime else None
            if not procs:
                return 0
            leaders = {p.pid: p for p in procs}
            now = _mono_ns()
            keys = tuple(sorted(leaders))
            if self._scan["keys"] != keys or now - self._scan["t"] > 50_000_000:
                m = {pid: [pid] for pid in leaders}
                try:
                    entries = os.listdir("/proc")
                except OSError:
                    entries = []
                for e in entries:
                    if not e.isdigit():
                        continue
                    pid = int(e)
                    if pid in leaders:
                        continue
                    try:
                        with open("/proc/%s/stat" % e, "rb") as f:
                            st = f.read()
                        sid = int(st.rsplit(b")", 1)[1].split()[3])
                    except (OSError, ValueError, IndexError):
                        continue
                    if sid in leaders:
                        m[sid].append(pid)
                self._scan = {"t": now, "keys": keys, "map": m}
            page = os.sysconf("SC_PAGE_SIZE")
            total = 0
            rt_total = 0
            for leader, pids in self._scan["map"].items():
                s = 0
                for pid in pids:
                    try:
                        with open("/proc/%d/statm" % pid, "rb") as f:
                            s += int(f.read().split()[1]) * page
                    except (OSError, ValueError, IndexError):
                        pass
                total += s
                if rt is not None and leader == rt.pid:
                    rt_total = s
            if total > self._mem_max:
                self._mem_max = total
            if rt is not None and rt_total > self.memory_mb * MIB and not rt.oom and not rt.exited:
                rt.oom = True
                self._plog("oom_kill", rt, rss=rt_total)
                self._signal(rt, signal.SIGKILL)
            return total

    def _max_memory_mb(self):
        return min(self.memory_mb, int(math.ceil(self._mem_max / MIB)))
