"""Moved to tests/common/sinks.py (shared with bench/).  `import sinks` from here still gives
that very module (the same object, so a test that changes it changes the one in use)."""
import os
import sys

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from common import sinks as _sinks  # noqa: E402

sys.modules[__name__] = _sinks
