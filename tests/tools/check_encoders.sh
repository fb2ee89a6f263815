#!/usr/bin/env bash
# check_encoders.sh - the encoders' unit tests checked by independent tools.
#
#   tests/tools/check_encoders.sh [BUILD_DIR]     (default build/dev)
#
# Runs BUILD_DIR/unit/test_xray_encode and test_otlp_encode (already built by
# `make unit`) with LAMBDA_TRACER_ENCODER_DUMP_DIR set, so they write every
# document and request body they produce, then:
#   - validates the X-Ray documents, the daemon datagram and the
#     PutTraceSegments body against AWS's JSON schema (validate_xray.js, ajv);
#   - decodes each OTLP protobuf body with protobufjs and the
#     opentelemetry-proto files (otlp_decode.js), checks each OTLP/JSON body
#     strictly, and requires both encodings of a scenario to read the same.
# Needs tests/tools/node_modules (npm ci --prefix tests/tools).  Prints one
# line per check and "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${1:-build/dev}
tools=tests/tools
dump=$build/encoder-dump

if [ ! -d "$tools/node_modules/ajv" ] || [ ! -d "$tools/node_modules/protobufjs" ]; then
    echo "check_encoders: run 'npm ci --prefix $tools --no-audit --no-fund' first" >&2
    exit 2
fi

passed=0
failed=0
result() { # NAME RC
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok - $1"
    else
        failed=$((failed + 1)); echo "not ok - $1"
    fi
}

rm -rf "$dump"
mkdir -p "$dump"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in test_xray_encode test_otlp_encode; do
    rc=0
    LAMBDA_TRACER_ENCODER_DUMP_DIR=$dump "$build/unit/$t" >"$log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || cat "$log"
    result "$t wrote its dump" "$rc"
done

rc=0
node "$tools/validate_xray.js" --format=lines "$dump"/xray_documents.jsonl || rc=$?
result "X-Ray documents match the schema" "$rc"
rc=0
node "$tools/validate_xray.js" --format=datagram "$dump"/xray_datagram_*.bin || rc=$?
result "daemon datagram" "$rc"
rc=0
node "$tools/validate_xray.js" --format=put "$dump"/xray_put_body_*.json || rc=$?
result "PutTraceSegments body" "$rc"

for pb in "$dump"/otlp_*.pb; do
    name=$(basename "$pb" .pb)
    rc=0
    node "$tools/otlp_decode.js" "$pb" >"$dump/$name.pb.decoded" || rc=$?
    result "$name: protobuf decodes" "$rc"
    rc=0
    node "$tools/otlp_decode.js" --json-input "$dump/$name.json" >"$dump/$name.json.decoded" || rc=$?
    result "$name: JSON follows the OTLP/JSON rules" "$rc"
    rc=0
    cmp -s "$dump/$name.pb.decoded" "$dump/$name.json.decoded" || rc=$?
    [ "$rc" -eq 0 ] || diff <(tr ',' '\n' <"$dump/$name.pb.decoded") <(tr ',' '\n' <"$dump/$name.json.decoded") | head -20
    result "$name: protobuf and JSON say the same" "$rc"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
