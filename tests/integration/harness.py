"""Shared set-up for integration tests: the real lambda-tracer binary inside
the local Lambda emulator (tests/emulator)."""
import os
import re
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "emulator"))

import lambda_emulator  # noqa: E402

BOOTSTRAP = os.path.join(REPO, "tests", "emulator", "runtimes", "bootstrap.py")
EXT_NAME = "lambda-tracer"

# Sanitizer reports that must fail a test whatever else it asserts.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "ERROR: LeakSanitizer")

TELEMETRY_RE = re.compile(r"telemetry type=(\S+) request_id=(\S+) status=(\S+) error_type=(\S+)")
SHUTDOWN_RE = re.compile(r"shutdown reason=(\S+) (.*)")


def binary():
    path = os.environ.get("LAMBDA_TRACER_BIN") or os.path.join(REPO, "build", "dev", "lambda-tracer")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing: run ./build.sh build (or make) first")
    return path


def quick():
    """Slow sanitizers (TSan) run a reduced set."""
    return os.environ.get("LAMBDA_TRACER_TEST_QUICK") == "1"


def make_root(extension_binary=None):
    """A sandbox root with our binary as <root>/opt/extensions/lambda-tracer."""
    root = tempfile.mkdtemp(prefix="lt-root-")
    ext_dir = os.path.join(root, "opt", "extensions")
    os.makedirs(ext_dir)
    dst = os.path.join(ext_dir, EXT_NAME)
    shutil.copy2(extension_binary or binary(), dst)
    os.chmod(dst, 0o755)
    return root


def sanitizer_env():
    env = {}
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def new_emulator(root, env=None, **kwargs):
    e = dict(sanitizer_env())
    e["LAMBDA_TRACER_LOG_LEVEL"] = "debug"
    # Never the default (real AWS) endpoints: tests talk to loopback only.
    e["LAMBDA_TRACER_EXPORTERS"] = "stdout"
    e.update(env or {})
    kwargs.setdefault("function_name", "demo-fn")
    kwargs.setdefault("memory_mb", 128)
    kwargs.setdefault("timeout_s", 3)
    return lambda_emulator.Emulator(root=root, runtime=[sys.executable, BOOTSTRAP], env=e, **kwargs)


def output_lines(emu, name=EXT_NAME):
    out = emu.output(name)
    if isinstance(out, str):
        return out.splitlines()
    return [line.rstrip("\n") for line in out]


def telemetry_seen(lines):
    """(type, request_id, status, error_type) tuples the extension logged, in order."""
    seen = []
    for line in lines:
        m = TELEMETRY_RE.search(line)
        if m:
            seen.append(m.groups())
    return seen


def shutdowns(lines):
    return [m.groups() for m in (SHUTDOWN_RE.search(l) for l in lines) if m]


def sanitizer_reports(lines):
    return [l for l in lines if any(m in l for m in SANITIZER_MARKERS)]
