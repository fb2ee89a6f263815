"""What the Python API returns: Init, Invoke, Shutdown results and an invocation handle.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403

__all__ = ['ExtensionExit', 'ShutdownResult', 'InitResult', 'InvokeResult', 'InvokeHandle']


# ----------------------------------------------------------------------------- results

@dataclass
class ExtensionExit:
    name: str
    pid: Optional[int]
    exit_code: Optional[int]          # Popen-style: negative = killed by that signal
    killed: bool                      # the emulator SIGKILLed it at the end of the budget
    shutdown_delivered: bool          # the SHUTDOWN event was written to its /event/next
    ms_to_exit: Optional[float]       # SHUTDOWN delivery -> process exit


@dataclass
class ShutdownResult:
    reason: str
    deadline_ms: int                  # epoch ms sent as deadlineMs
    duration_ms: float
    runtime_exit_code: Optional[int]
    runtime_killed: bool
    extensions: Dict[str, ExtensionExit] = field(default_factory=dict)


@dataclass
class InitResult:
    status: str                       # success | error | timeout
    error_type: Optional[str]
    duration_ms: float
    phase: str                        # init | invoke
    init_type: str
    extensions: Dict[str, str] = field(default_factory=dict)   # name -> state at the end of Init
    runtime_pid: Optional[int] = None
    extension_pids: Dict[str, int] = field(default_factory=dict)
    shutdown: Optional[ShutdownResult] = None                 # the reset after a failed Init


@dataclass
class InvokeResult:
    request_id: str
    status: str                       # success | error | timeout | failure
    error_type: Optional[str]
    response: Optional[bytes]
    duration_ms: float                # platform.report durationMs
    billed_duration_ms: int
    init_phase_ran: bool
    max_memory_used_mb: int = 0
    init: Optional[InitResult] = None
    restore: Optional[Dict[str, Any]] = None
    function_error: Optional[Dict[str, Any]] = None   # what the runtime posted to /error
    exit_code: Optional[int] = None                   # runtime exit status on a crash (negative = signal)
    exit_signal: Optional[str] = None
    deadline_ms: int = 0
    shutdown: Optional[ShutdownResult] = None         # the reset that followed a failure
    records: List[Dict[str, Any]] = field(default_factory=list)   # records emitted during the call


class InvokeHandle:
    """A running invocation started with Emulator.invoke_async()."""

    def __init__(self, request_id):
        self.request_id = request_id
        self._done = threading.Event()
        self._result = None
        self._exc = None

    def done(self):
        return self._done.is_set()

    def result(self, timeout=None):
        """The InvokeResult; raises TimeoutError if it is not there within `timeout` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError("invocation %s still running" % self.request_id)
        if self._exc is not None:
            raise self._exc
        return self._result
