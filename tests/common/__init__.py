"""Helpers shared by the integration tests (tests/integration), the layer tests and the
benchmarks (bench/): neither imports the other's modules, both import these.

    sinks.py    local stand-ins for the exporters' backends (X-Ray API, OTLP, daemon)
    records.py  Telemetry API batches made up for a test or a benchmark
    tls.py      a throw-away CA and server certificate, and HTTPS for a sink

Put tests/ on sys.path and `from common import sinks`; importing this package also puts the
emulator (tests/emulator) on sys.path, so `import lambda_emulator` works after it.
(sinks.py was tests/integration/sinks.py: tests/integration/harness.py makes a plain
`import sinks` after `import harness` give this module, for tests written before the move.)
"""
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)
EMULATOR_DIR = os.path.join(TESTS, "emulator")
BOOTSTRAP = os.path.join(EMULATOR_DIR, "runtimes", "bootstrap.py")

if EMULATOR_DIR not in sys.path:
    sys.path.insert(0, EMULATOR_DIR)
