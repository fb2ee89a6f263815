#!/usr/bin/env bash
# tests/fuzz/minimize.sh TARGET... - folds a campaign's grown corpus
# (build/fuzz/corpus-TARGET) back into tests/fuzz/corpus/TARGET: the named
# files there (ref-*, emu-*, regress-*, hand-written seeds) are all kept, and
# only the smallest inputs that add coverage beyond them are added (libFuzzer
# -merge=1 into a fresh directory seeded with the named files), replacing the
# SHA-1-named files of earlier merges.  Prints the counts before and after.
set -euo pipefail
cd "$(dirname "$0")/../.."
sha1='.*/[0-9a-f]{40}'
for target in "$@"; do
    committed=tests/fuzz/corpus/$target
    fresh=build/fuzz/min-$target
    rm -rf "$fresh"
    mkdir -p "$fresh"
    before=$(find "$committed" -type f | wc -l)
    find "$committed" -regextype posix-extended -type f ! -regex "$sha1" -exec cp {} "$fresh"/ \;
    make -s "build/fuzz/fuzz_$target"
    nice -n 10 "build/fuzz/fuzz_$target" -merge=1 -timeout=10 -rss_limit_mb=2048 "$fresh" \
        "$committed" "build/fuzz/corpus-$target" >"build/fuzz/min-$target.log" 2>&1
    find "$committed" -regextype posix-extended -type f -regex "$sha1" -delete
    find "$fresh" -regextype posix-extended -type f -regex "$sha1" -exec cp {} "$committed"/ \;
    echo "$target: committed corpus $before -> $(find "$committed" -type f | wc -l) files," \
        "$(du -sk "$committed" | cut -f1) KiB"
done
