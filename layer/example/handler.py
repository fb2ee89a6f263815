"""Example function for template.yml: something worth tracing.

The event picks what happens:

  {}  or {"action": "fast"}     answer at once
  {"action": "slow", "ms": N}   sleep N ms (default 1500), then answer
  {"action": "timeout"}         sleep past the function's deadline: Lambda
                                stops it ("Task timed out") and resets the
                                environment, so the next call is a cold start
  {"action": "error"}           raise: an unhandled function error

Module scope runs once per execution environment; EXAMPLE_INIT_MS (default
300) of sleep there makes the cold start easy to see in the trace's
Initialization subsegment.
"""
import os
import time

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
    return {"action": action, "cold_start": cold}
