"""The local Lambda emulator as a package, split along the old single file's section banners.

    constants.py       limits, schema versions, the subscription schema, environment rules
    quirks.py          scenarios and quirks: era/schema quirks and platform fault knobs
    helpers.py         clocks, JSON, trace headers, subscription validation
    results.py         what the Python API returns (InitResult, InvokeResult, ...)
    state.py           internal state: replies, waiters, processes, extensions, invocations
    server.py          the HTTP server, request reading and reply writing, routes
    telemetry.py       Telemetry API: subscribers' batching and delivery, emission, subscribe
    processes.py       sandbox processes: launch, freeze/thaw, kill, reap
    memory.py          the memory limit
    init.py            Init and Restore (SnapStart)
    invoke.py          Invoke
    managed.py         Invoke on Lambda Managed Instances
    shutdown.py        Shutdown and resets
    dispatch.py        HTTP dispatch to the three APIs
    runtime_api.py     Runtime API handlers
    extensions_api.py  Extensions API handlers
    core.py            Emulator: state, public API, logging (the mixins above are its parts)
    cli.py             the command line

Import it as before, through tests/emulator/lambda_emulator.py (`import lambda_emulator`,
`from lambda_emulator import Emulator`, `python3 lambda_emulator.py run ...`): that module
re-exports every name of every part, private ones included.
"""

from .core import Emulator  # noqa: F401
from .results import ExtensionExit, InitResult, InvokeHandle, InvokeResult, ShutdownResult  # noqa: F401
from .helpers import normalize_runtime_error_type, validate_subscription  # noqa: F401
from .constants import SUBSCRIPTION_SCHEMA_2025_01_29  # noqa: F401
from .cli import main  # noqa: F401

PARTS = ("constants", "quirks", "helpers", "results", "state", "server", "telemetry", "processes", "memory",
         "init", "invoke", "managed", "shutdown", "dispatch", "runtime_api", "extensions_api", "core", "cli")

__all__ = ["Emulator", "InitResult", "InvokeResult", "InvokeHandle", "ShutdownResult", "ExtensionExit",
           "validate_subscription", "normalize_runtime_error_type", "SUBSCRIPTION_SCHEMA_2025_01_29"]


def namespace():
    """Every top-level name of every part (modules they import included), as the single file had them."""
    import importlib
    out = {}
    for part in PARTS:
        mod = importlib.import_module(__name__ + "." + part)
        out.update({k: v for k, v in vars(mod).items() if not (k.startswith("__") and k.endswith("__"))})
    return out
