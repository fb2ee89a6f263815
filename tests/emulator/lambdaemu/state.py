"""The emulator's internal state: replies, waiters, processes, extensions, runtime, invocations.

Part of the lambdaemu package behind tests/emulator/lambda_emulator.py (see __init__.py)."""

import threading

from .constants import *  # noqa: F401,F403
from .quirks import *  # noqa: F401,F403
from .helpers import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403

__all__ = ['_Reply', '_error_reply', '_accepted', '_Waiter', '_Proc', '_Ext', '_Runtime', '_Invocation']


# ----------------------------------------------------------------------------- internals

class _Reply:
    __slots__ = ("status", "body", "headers", "error_type", "event", "request_id", "who", "on_sent",
                 "close", "log", "truncate")

    def __init__(self, status, body=b"", headers=None, error_type=None, event=None, request_id=None,
                 who=None, on_sent=None, close=False, log=None, truncate=None):
        self.status = status
        self.body = body
        self.headers = headers or []
        self.error_type = error_type
        self.event = event
        self.request_id = request_id
        self.who = who
        self.on_sent = on_sent
        self.close = close
        self.log = log             # extra api_log fields
        self.truncate = truncate   # write only this many body bytes, then close (fault knob)


def _error_reply(status, error_type, message, who=None):
    return _Reply(status, _err_body(error_type, message), [("Content-Type", "application/json")],
                  error_type=error_type, who=who)


def _accepted(who=None):
    return _Reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")], who=who)


class _Waiter:
    """A pending long-poll (/event/next, /invocation/next, /restore/next)."""
    __slots__ = ("reply", "cancelled", "sent", "sent_ns", "who", "reset")

    def __init__(self, who):
        self.reply = None
        self.cancelled = False
        self.reset = False          # cancelled by a fault knob: reset the connection (RST)
        self.sent = threading.Event()
        self.sent_ns = None
        self.who = who


class _Proc:
    """A sandbox process (runtime or extension) with its output reader and exit watcher."""

    def __init__(self, kind, name):
        self.kind = kind
        self.name = name
        self.popen = None
        self.pid = None
        self.rlock = threading.Lock()
        self.exited = False
        self.returncode = None
        self.t_exit_ns = None
        self.expected_exit = False
        self.killed = False
        self.oom = False
        self.ext = None
        self.t_spawn_ns = None
        self.t_start_ns = None


class _Ext:
    def __init__(self, name, path, gen, internal=False):
        self.name = name
        self.path = path
        self.gen = gen
        self.internal = internal
        self.proc = None
        self.id = None
        self.events = []
        self.state = "Started"
        self.registered = False
        self.first_next = False
        self.waiter = None
        self.queued = None
        self.invoke_rid = None
        self.failed = None
        self.dead = False
        self.shutdown_waiter = None
        self.t_shutdown_sent_ns = None
        self.shutdown_delivered = False
        self.reported_error_type = None

    @property
    def alive(self):
        if self.dead:
            return False
        if self.proc is None:
            return self.internal
        return not self.proc.exited


class _Runtime:
    def __init__(self):
        self.proc = None
        self.state = "init"        # init | restore_wait | idle | invoking
        self.waiter = None
        self.waiters = []          # Managed Instances: every pending /invocation/next
        self.restore_waiter = None
        self.cur = None
        self.ready = False
        self.pending = None


class _Invocation:
    def __init__(self, rid):
        self.request_id = rid
        self.payload = b""
        self.trace_header = None
        self.runtime_trace = None
        self.tracing = None
        self.client_context = None
        self.cognito_identity = None
        self.content_type = "application/json"
        self.deadline_epoch_ms = 0
        self.deadline_ns = 0
        self.t_start_ns = 0
        self.t_delivered_ns = None
        self.answered = False
        self.response = None
        self.error_type = None
        self.function_error = None
        self.produced_bytes = 0
        self.t_resp_start_ns = None
        self.t_resp_end_ns = None
        self.t_rt_next_ns = None
        self.rt_done = False
        self.ext_pending = set()
        self.t_last_ext_next_ns = None
        self.finished = False
        # Managed Instances
        self.gen = 0
        self.t_base_ns = 0          # report durationMs starts here
        self.suppressed = False
        self.first_record = 0
        self.outcome = None         # ok | timeout | fatal | closed
        self.t_end_ns = None
        self.fatal = None           # (errorType, proc) of the failure that ended it
        self.result = None
