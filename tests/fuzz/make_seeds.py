#!/usr/bin/env python3
"""Regenerates the seed inputs of tests/fuzz/corpus/ that come from outside.

    python3 tests/fuzz/make_seeds.py [--no-emulator]

ref-*  from shared/reference: the real Telemetry API capture of 2022-09-13 cut
       into batches the way Lambda delivers them (consecutive records), and
       the protocol reference's examples (register answer, error answer,
       PutTraceSegments answer, container credentials, trace headers).
emu-*  captured from the local emulator (tests/emulator) by
       tests/fuzz/capture_extension.py while it drives an environment through
       a cold start, invokes (success with a trace header, function error,
       logging, timeout, crash, re-init) and SHUTDOWN: the raw telemetry HTTP
       requests, their bodies, the INVOKE/SHUTDOWN events, the trace headers
       they carry and the register answer.

ref-* files are rewritten identically; emu-* files are replaced (their
timestamps, ids and ports differ from run to run).  Regression inputs
(regress-*), hand-written seeds and the minimised fuzzer finds (named by
their SHA-1) are not touched.
"""
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
REFERENCE = os.path.join(REPO, "..", "shared", "reference")
# Seeds larger than this slow the replay and the fuzzer for nothing.
MAX_SEED_BYTES = 16384


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SEED_BYTES:
        return
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def put_hashed(target, prefix, data, ext=""):
    if isinstance(data, str):
        data = data.encode()
    put(target, "%s-%s%s" % (prefix, hashlib.sha1(data).hexdigest()[:10], ext), data)


def reference_seeds():
    capture = os.path.join(REFERENCE, "schemas", "telemetry-events-real-capture-2022-09-13.aws-samples.json")
    records = json.load(open(capture))
    # Lambda delivers consecutive records in batches of varying size.
    for size in (1, 2, 3, 4):
        for start in range(0, len(records), size):
            put("telemetry", "ref-capture-2022-09-13-%d-%02d.json" % (size, start),
                json.dumps(records[start:start + size]))
    put("pipeline", "ref-capture-2022-09-13.json", json.dumps(records))
    for r in records:
        v = r.get("record")
        if isinstance(v, dict) and isinstance(v.get("tracing"), dict):
            put_hashed("xray_header", "ref", v["tracing"].get("value", ""), ".txt")

    # lambda-protocol.md examples.
    put("extapi_response", "ref-register-body.json",
        '{"functionName": "helloWorld", "functionVersion": "$LATEST",\n'
        ' "handler": "lambda_function.lambda_handler", "accountId": "123456789012"}')
    put("extapi_response", "ref-error-body.json",
        '{"errorMessage": "Extension.RegistrationClosed", "errorType": "Extension.RegistrationClosed"}')
    put("extapi_response", "ref-identifier-header.txt",
        "Lambda-Extension-Identifier: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n")
    put("xray_response", "ref-unprocessed.json",
        '{"UnprocessedTraceSegments": [{"Id": "6226467e3f845502", "ErrorCode": "InvalidTraceId", '
        '"Message": "Invalid segment. ErrorCode: InvalidTraceId"}]}')
    put("xray_response", "ref-all-processed.json", '{"UnprocessedTraceSegments": []}')
    put("xray_response", "ref-throttled.json",
        '{"__type": "ThrottledException", "message": "Rate exceeded"}')
    # OTLP/HTTP answers (ExportTraceServiceResponse): protobuf and JSON
    put("otlp_response", "ref-empty.pb", b"")
    put("otlp_response", "ref-partial.pb", bytes([0x0a, 0x0c, 0x08, 0xac, 0x02, 0x12, 0x07]) + b"too old")
    put("otlp_response", "ref-partial-warning.pb", bytes([0x0a, 0x09, 0x12, 0x07]) + b"warning")
    put("otlp_response", "ref-partial.json",
        '{"partialSuccess": {"rejectedSpans": "2", "errorMessage": "span too old"}}')
    put("otlp_response", "ref-success.json", '{}')
    put("credentials", "ref-container-credentials.json",
        '{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", '
        '"Token": "IQoJb3JpZ2luX2VjEXAMPLETOKEN==", "Expiration": "2026-11-24T05:42:12Z"}')
    put("credentials", "ref-container-credentials-no-expiration.json",
        '{"AccessKeyId":"AKIDEXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}')
    for i, h in enumerate(["Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                           "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
                           "Root=1-629d3097-1edcadf06b4c097a50faa7a1;Parent=2a68d66d2a726db8;Sampled=0",
                           "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?;Lineage=a87bd80c:1|68fd508a:5",
                           " parent = 53995c3f42cd8ad8 ; ROOT=1-5759e988-bd862e3fe1be46a994272793"]):
        put("xray_header", "ref-header-%d.txt" % i, h)
    # Settings as a function's configuration would carry them (README's table).
    put("config", "ref-every-setting.txt", "\n".join([
        "LAMBDA_TRACER_LOG_LEVEL=warn", "LAMBDA_TRACER_DISABLE=false",
        "LAMBDA_TRACER_TELEMETRY_TYPES=platform,function,extension", "LAMBDA_TRACER_SCHEMA_VERSION=2022-12-13",
        "LAMBDA_TRACER_BUFFER_MAX_ITEMS=1000", "LAMBDA_TRACER_BUFFER_MAX_BYTES=262144",
        "LAMBDA_TRACER_BUFFER_TIMEOUT_MS=25", "LAMBDA_TRACER_LISTENER_PORT=0",
        "LAMBDA_TRACER_QUEUE_MAX_BYTES=8388608", "LAMBDA_TRACER_SHUTDOWN_TELEMETRY_WAIT_MS=1000",
        "LAMBDA_TRACER_EXPORTERS=xray,daemon,otlp,stdout", "LAMBDA_TRACER_XRAY_ENDPOINT=http://127.0.0.1:4566",
        "LAMBDA_TRACER_DAEMON_ADDRESS=169.254.79.129:2000", "LAMBDA_TRACER_OTLP_ENDPOINT=http://localhost:4318/v1/traces",
        "LAMBDA_TRACER_OTLP_PROTOCOL=http/json", "LAMBDA_TRACER_OTLP_HEADERS=x-api-key=abc,x-team=t",
        "LAMBDA_TRACER_CA_FILE=/etc/ssl/certs/ca-certificates.crt", "LAMBDA_TRACER_EXPORT_TIMEOUT_MS=2000",
        "LAMBDA_TRACER_EXPORT_QUEUE_MAX_BYTES=8388608", "LAMBDA_TRACER_FLUSH=eager",
        "LAMBDA_TRACER_EAGER_FIRST_INVOCATIONS=3", "LAMBDA_TRACER_EAGER_IDLE_S=60",
        "LAMBDA_TRACER_SEGMENT_NAME=checkout", "LAMBDA_TRACER_TRACE_UNSAMPLED=true",
        "LAMBDA_TRACER_TIMEOUT_MARGIN_MS=300", "LAMBDA_TRACER_LOG_TAIL_LINES=20",
        "LAMBDA_TRACER_LOG_TAIL_MAX_BYTES=2048", "LAMBDA_TRACER_SAMPLING=smart",
        "LAMBDA_TRACER_SLOW_MS=1500"]))
    put("config", "ref-sampling.txt", "\n".join([
        "LAMBDA_TRACER_SAMPLING=header", "LAMBDA_TRACER_TRACE_UNSAMPLED=true",
        "LAMBDA_TRACER_SLOW_MS=900001"]))
    put("config", "ref-bad-values.txt", "\n".join([
        "LAMBDA_TRACER_EXPORTERS=xray,zipkin", "LAMBDA_TRACER_DAEMON_ADDRESS=localhost",
        "LAMBDA_TRACER_OTLP_HEADERS=bad header=1", "LAMBDA_TRACER_LISTENER_PORT=9001",
        "LAMBDA_TRACER_BUFFER_TIMEOUT_MS=-1", "LAMBDA_TRACER_FLUSH=sometimes"]))
    put("otlp_headers", "ref-api-key.txt", "x-api-key=abc123")
    put("otlp_headers", "ref-two.txt", "Authorization=Bearer token, x-honeycomb-team = key,")
    for i, a in enumerate(["127.0.0.1:2000", "169.254.79.129:2000", "[::1]:2000", "xray.local:2000",
                           "fe80::1:2000"]):
        put("host_port", "ref-address-%d.txt" % i, a)


def emulator_seeds():
    sys.path.insert(0, os.path.join(REPO, "tests", "emulator"))
    import lambda_emulator

    for old in glob.glob(os.path.join(CORPUS, "*", "emu-*")):
        os.remove(old)

    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        cap = os.path.join(tmp, "capture")
        os.makedirs(os.path.join(root, "opt", "extensions"))
        os.makedirs(cap)
        ext = os.path.join(root, "opt", "extensions", "capture")
        shutil.copy(os.path.join(HERE, "capture_extension.py"), ext)
        os.chmod(ext, 0o755)
        with lambda_emulator.Emulator(
                root=root, runtime=[sys.executable, os.path.join(REPO, "tests", "emulator", "runtimes", "bootstrap.py")],
                function_name="seed-fn", timeout_s=1, env={"CAPTURE_DIR": cap}, freeze=False) as env:
            env.start()
            env.invoke(b'{"action":"fast"}',
                       trace_header="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
            env.invoke(b'{"action":"error","type":"Function.MyError","message":"boom"}')
            env.invoke(b'{"action":"log","lines":3,"bytes":40}')
            env.invoke(b'{"action":"sleep","ms":3000}')        # timeout, then a reset
            env.invoke(b'{"action":"fast"}')                  # suppressed re-init
            env.invoke(b'{"action":"crash","code":3}')
            env.invoke(b'{"action":"fast"}', trace_header="Root=1-62e900b2-710d76f009d6e7785905449a;Sampled=0")
            env.shutdown("spindown")
        raws = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(cap, "http-*.raw")))]
        for raw in raws:
            put_hashed("http_request", "emu-post", raw)
        # What one kept-alive connection carries: requests back to back.
        put_hashed("http_request", "emu-pipelined", b"".join(sorted(raws, key=len)[:3]))
        for path in sorted(glob.glob(os.path.join(cap, "telemetry-*.json"))):
            body = open(path, "rb").read()
            put_hashed("telemetry", "emu-batch", body, ".json")
            put_hashed("pipeline", "emu-batch", body, ".json")
            for r in json.loads(body):
                v = r.get("record")
                if isinstance(v, dict) and isinstance(v.get("tracing"), dict):
                    put_hashed("xray_header", "emu", v["tracing"].get("value", ""), ".txt")
        for path in sorted(glob.glob(os.path.join(cap, "event-*.json"))):
            body = open(path, "rb").read()
            put_hashed("ext_event", "emu-event", body, ".json")
            ev = json.loads(body)
            if isinstance(ev.get("tracing"), dict):
                put_hashed("xray_header", "emu", ev["tracing"].get("value", ""), ".txt")
        if os.path.exists(os.path.join(cap, "register-body.json")):
            put("extapi_response", "emu-register-body.json", open(os.path.join(cap, "register-body.json"), "rb").read())
            for line in open(os.path.join(cap, "register-headers.txt"), "rb").read().split(b"\r\n"):
                if line.lower().startswith(b"lambda-extension-identifier:"):
                    put("extapi_response", "emu-identifier-header.txt", line + b"\r\n")


if __name__ == "__main__":
    reference_seeds()
    if "--no-emulator" not in sys.argv:
        emulator_seeds()
