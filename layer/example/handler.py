"""Example function for template.yml: something worth tracing.

The event picks what happens:

  {}  or {"action": "fast"}     answer at once
  {"action": "slow", "ms": N}   sleep N ms (default 1500), then answer
  {"action": "timeout"}         sleep past the function's deadline: Lambda
                                stops it ("Task timed out") and resets the
                                environment, so the next call is a cold start
  {"action": "error"}           raise: an unhandled function error
  {"action": "crash"}           the process exits at once (Runtime.ExitError)
  {"action": "oom", "mb": N}    keeps allocating and touching memory, N MB
                                at a time (default 64), until Lambda stops
                                it (Runtime.OutOfMemory)

Module scope runs once per execution environment; EXAMPLE_INIT_MS (default
300) of sleep there makes the cold start easy to see in the trace's
Initialization subsegment.
"""
import os
import time

_hoard = []

_cold = True
time.sleep(int(os.environ.get("EXAMPLE_INIT_MS", "300")) / 1000.0)


def handler(event, context):
    global _cold
    cold, _cold = _cold, False
    action = event.get("action", "fast") if isinstance(event, dict) else "fast"
    print("action=%s cold_start=%s" % (action, cold))
    if action == "slow":
        time.sleep(int(event.get("ms", 1500)) / 1000.0)
    elif action == "timeout":
        time.sleep(context.get_remaining_time_in_millis() / 1000.0 + 0.5)
    elif action == "error":
        raise RuntimeError("error on demand")
    elif action == "crash":
        os._exit(3)
    elif action == "oom":
        chunk = max(1, int(event.get("mb", 64))) << 20
        while True:
            block = bytearray(chunk)
            for i in range(0, chunk, 4096):  # touch every page: RSS, not just address space
                block[i] = 1
            _hoard.append(block)
    return {"action": action, "cold_start": cold}
