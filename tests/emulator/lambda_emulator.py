#!/usr/bin/env python3
"""Local AWS Lambda execution-environment emulator for lambda-tracer.

Standard library only (Debian's /usr/bin/python3, 3.11).  It launches every
executable in <root>/opt/extensions plus a runtime bootstrap, serves the
Runtime API (2018-06-01), the Extensions API (2020-01-01) and the Telemetry API
(2022-07-01, schemas 2022-07-01 / 2022-12-13 / 2025-01-29) on an ephemeral
loopback port, delivers telemetry to subscribers the way Lambda does (batched
POSTs, held while the sandbox is frozen, retries then platform.logsDropped) and
runs the Init / Invoke / Shutdown lifecycle including resets after failures.

Python API: see Emulator.  CLI: `python3 lambda_emulator.py run --help`.
README.md next to this file lists where the emulator knowingly differs from Lambda.
The code lives in the lambdaemu package next to this file (one module per section: Runtime API,
Extensions API, Telemetry API, processes, Init / Invoke / Shutdown, quirks and faults, CLI; see
lambdaemu/__init__.py).  This module re-exports every name of it, so `import lambda_emulator`,
`from lambda_emulator import Emulator` and this command line work as they always did.
"""

import os as _os
import sys as _sys

_HERE = _os.path.dirname(_os.path.abspath(__file__))
if _HERE not in _sys.path:
    _sys.path.insert(0, _HERE)

import lambdaemu as _lambdaemu  # noqa: E402

# what the single file imported, still reachable as lambda_emulator.<name> (tests use lambda_emulator.datetime)
import argparse  # noqa: E402,F401
import collections  # noqa: E402,F401
import datetime  # noqa: E402,F401
import email.utils  # noqa: E402,F401
import fcntl  # noqa: E402,F401
import hashlib  # noqa: E402,F401
import http  # noqa: E402,F401
import json  # noqa: E402,F401
import math  # noqa: E402,F401
import os  # noqa: E402,F401
import re  # noqa: E402,F401
import secrets  # noqa: E402,F401
import select  # noqa: E402,F401
import shlex  # noqa: E402,F401
import signal  # noqa: E402,F401
import socket  # noqa: E402,F401
import stat  # noqa: E402,F401
import struct  # noqa: E402,F401
import subprocess  # noqa: E402,F401
import sys  # noqa: E402,F401
import termios  # noqa: E402,F401
import threading  # noqa: E402,F401
import time  # noqa: E402,F401
import urllib.parse  # noqa: E402,F401
import uuid  # noqa: E402,F401
from dataclasses import dataclass, field  # noqa: E402,F401
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402,F401
from typing import Any, Dict, List, Optional  # noqa: E402,F401

globals().update(_lambdaemu.namespace())

__all__ = list(_lambdaemu.__all__)

if __name__ == "__main__":
    _sys.exit(main())  # noqa: F821 (from lambdaemu.cli)
