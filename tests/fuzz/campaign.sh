#!/usr/bin/env bash
# tests/fuzz/campaign.sh TARGET... - a long libFuzzer campaign per target, one
# after the other, at low priority: each runs until RUNS executions
# (default 10,000,000) or MAX_SECONDS (default 3600), whichever comes first,
# through ./build.sh fuzz (dictionary, hang/leak/RSS limits, artifacts in
# build/fuzz/artifacts-TARGET/).  The log with libFuzzer's final stats is
# build/fuzz/logs/TARGET.log; the grown corpus stays in build/fuzz/corpus-TARGET
# for minimising into tests/fuzz/corpus/TARGET (see tests/fuzz/README.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-10000000}
MAX_SECONDS=${MAX_SECONDS:-3600}
mkdir -p build/fuzz/logs
for target in "$@"; do
    log=build/fuzz/logs/$target.log
    start=$(date +%s)
    nice -n 10 ./build.sh fuzz "$target" "$MAX_SECONDS" -runs="$RUNS" >"$log" 2>&1
    rc=$?
    echo "campaign $target: exit $rc, $(( $(date +%s) - start )) s, $(grep -h 'stat::number_of_executed_units' "$log")" \
        | tee -a build/fuzz/logs/summary.txt
done
