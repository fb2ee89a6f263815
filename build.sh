#!/usr/bin/env bash
# lambda-tracer: the single entry point.
#
#   ./build.sh deps            install the Debian packages the project needs (only missing ones)
#   ./build.sh build           development build: build/dev/lambda-tracer
#   ./build.sh test            every suite: unit (plain+valgrind, ASan+UBSan, TSan), fuzz corpus
#                              replay, the emulator's own tests, integration tests, the layer
#   ./build.sh demo            run the extension inside the local Lambda emulator and show what it saw
#   ./build.sh view FILE... [--html OUT]
#                              draw exported traces (X-Ray documents, CloudWatch Logs output, OTLP/JSON)
#                              as terminal waterfalls, and as one self-contained HTML page with --html
#   ./build.sh fuzz TARGET [S] run one libFuzzer target for S seconds (default 60); more args go to libFuzzer
#   ./build.sh layer [ARCH...] release zips build/layer/lambda-tracer-{x86_64,arm64}.zip
#   ./build.sh bench [--quick] benchmarks of the release binary against no extension and a floor
#                              extension; results in build/bench/results.{json,md}
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-/usr/bin/python3}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

BASE_PKGS=(gcc make python3 libcurl4-openssl-dev libcjson-dev zlib1g-dev libcmocka-dev)
# chromium: the trace viewer's page is tested in headless Chromium.
TEST_PKGS=(valgrind cppcheck clang-tidy chromium strace openssl)
# Independent validators (tests/tools): AWS's X-Ray schema through ajv, OTLP
# through protobufjs.  Node and npm come from Debian when the machine has none.
NODE_PKGS=(nodejs npm)
FUZZ_PKGS=(clang libclang-rt-14-dev)
# The release layer: musl toolchains, Debian source tooling, zip; and for the
# empty-root tests qemu (arm64), openssl (test CA) and file.
LAYER_PKGS=(gcc musl-tools dpkg-dev autoconf automake libtool make patch xz-utils zip unzip file
            binutils python3 debian-archive-keyring)
LAYER_ARM64_PKGS=(gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu musl-dev:arm64)
LAYER_TEST_PKGS=(qemu-user-static openssl)

say() { printf '==> %s\n' "$*"; }

# Installs whichever of the given Debian packages are missing, non-interactively.
need_pkgs() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing Debian packages: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The npm packages of tests/tools, pinned by its package-lock.json; skipped
# when node_modules is already at that lock.
need_node_tools() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        need_pkgs "${NODE_PKGS[@]}"
    fi
    local stamp=tests/tools/node_modules/.package-lock.json
    if [ -f "$stamp" ] && ! [ tests/tools/package-lock.json -nt "$stamp" ]; then
        return 0
    fi
    say "installing the test validators (npm ci in tests/tools)"
    npm ci --prefix tests/tools --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null
}

cmd_deps() {
    need_pkgs "${BASE_PKGS[@]}" "${TEST_PKGS[@]}"
    need_node_tools
    need_layer_pkgs
    need_pkgs "${LAYER_TEST_PKGS[@]}"
}

cmd_build() {
    need_pkgs "${BASE_PKGS[@]}"
    step "building build/dev/lambda-tracer" make -s -j"$JOBS" extension
}

# --- test bookkeeping: every suite adds its counts; one closing line at the end.
# PASSED/FAILED count each distinct test once.  Re-runs of the same tests
# (the unit tests under ASan+UBSan and TSan, the integration tests with the
# TSan binary) and the fuzz corpus replay are reported on their own lines; a
# failing re-run or replay still adds one failure per failed test (or per
# failing corpus) to FAILED, so the closing line can never hide one.
PASSED=0
FAILED=0
SKIPPED=0
FAILED_SUITES=()
RERUNS=()         # "unit tests under TSan 312 passed"
CORPUS_INPUTS=0
CORPUS_TARGETS=0
NOTES=()          # "static analysis: ..." lines the suites print as "summary: ..."

# now_us: microseconds since the epoch (bash 5).
now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }

# elapsed START_US: "12.3 s" since START_US.
elapsed() {
    local d=$(( $(now_us) - $1 ))
    printf '%d.%d s' $((d / 1000000)) $(( (d % 1000000) / 100000 ))
}

# heartbeat NAME: a line every 30 s while a long step runs (killed by its caller).
heartbeat() {
    local name=$1 start sp=
    start=$(now_us)
    trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; exit 0' TERM
    while :; do
        sleep 30 </dev/null >/dev/null 2>&1 & sp=$!   # holds no pipe of ours open
        wait "$sp"
        printf '    ... %s: still running (%s)\n' "$name" "$(elapsed "$start")"
    done
}

# step NAME COMMAND...: a long step that is not a test (a build): says what it
# does, how long it took, and fails the script on failure.
step() {
    local name=$1; shift
    local start hb rc=0
    start=$(now_us)
    say "$name"
    heartbeat "$name" & hb=$!
    "$@" || rc=$?
    kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        say "$name: FAILED (exit $rc) after $(elapsed "$start")"
        return "$rc"
    fi
    say "$name: done in $(elapsed "$start")"
}

# count_results LOG: prints "PASSED FAILED SKIPPED" from the runners' own summaries:
# cmocka ("[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)"), python
# unittest ("Ran N tests" + "FAILED (failures=a, errors=b)"), the corpus
# replay programs ("replayed N inputs") and plain "N passed, N failed" lines.
count_results() {
    awk '
        /^\[  PASSED  \] [0-9]+ test/ { p += $4 }
        /^\[  FAILED  \] [0-9]+ test/ { f += $4 }
        /^Ran [0-9]+ test/ { ran += $2; py = 1 }
        /^(FAILED|OK) \(/ { while (match($0, /(failures|errors|skipped)=[0-9]+/)) {
                           split(substr($0, RSTART, RLENGTH), kv, "=");
                           if (kv[1] == "skipped") sk += kv[2]; else bad += kv[2];
                           $0 = substr($0, RSTART + RLENGTH) } }
        /^replayed [0-9]+ inputs/ { p += $2 }
        /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
        END { if (py) { p += ran - bad - sk; f += bad } print p + 0, f + 0, sk + 0 }
    ' "$1"
}

# run_suite [--rerun LABEL | --corpus] NAME COMMAND...: runs a suite, counts
# its tests from its own summary, says how long it took.  --rerun: the same
# tests again (LABEL, e.g. "unit tests under TSan", goes on the re-runs
# line); --corpus: fuzz corpus replays (inputs, not tests).  Lines the suite
# prints as "summary: TEXT" are shown after its result and at the end.
run_suite() {
    local kind=test label=
    case "$1" in
        --rerun) kind=rerun; label=$2; shift 2 ;;
        --corpus) kind=corpus; shift ;;
    esac
    local name=$1; shift
    local log start hb
    log=$(mktemp)
    start=$(now_us)
    say "$name"
    heartbeat "$name" & hb=$!
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true
    local p f s took
    took=$(elapsed "$start")
    read -r p f s < <(count_results "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    local what="$p passed"
    case "$kind" in
        test) PASSED=$((PASSED + p)); SKIPPED=$((SKIPPED + s)) ;;
        rerun) local r="$label $p passed"
               if [ "$f" -gt 0 ]; then r+=", $f failed"; fi
               if [ "$s" -gt 0 ]; then r+=", $s skipped"; fi
               RERUNS+=("$r") ;;
        corpus) CORPUS_INPUTS=$((CORPUS_INPUTS + p))
                CORPUS_TARGETS=$((CORPUS_TARGETS + $(grep -c '^replayed [0-9]* inputs' "$log" || true)))
                what="$p inputs replayed" ;;
    esac
    FAILED=$((FAILED + f))
    while IFS= read -r line; do NOTES+=("${line#summary: }"); done < <(grep '^summary: ' "$log" || true)
    if [ "$rc" -ne 0 ]; then
        FAILED_SUITES+=("$name")
        # what failed, wherever it is in the log, then its end
        grep -E '^\[  FAILED  \] [a-z]|^(FAIL|ERROR): |^==[0-9]+== [A-Z]|runtime error:|ERROR: [A-Za-z]+Sanitizer' \
            "$log" | head -n 40 || true
        tail -n 80 "$log"
        say "$name: FAILED (exit $rc, $f failed) in $took"
    else
        if [ "$s" -gt 0 ]; then what+=", $s skipped"; fi
        say "$name: $what in $took"
        grep '^summary: ' "$log" | sed 's/^summary: /    /' || true
    fi
    rm -f "$log"
}

run_units() { # DIR [WRAPPER...]
    local dir=$1; shift
    local rc=0
    for t in "$dir"/unit/test_*; do
        [ -x "$t" ] || continue
        "$@" "$t" || rc=1
    done
    return $rc
}

run_replays() { # DIR
    local dir=$1 rc=0
    for r in "$dir"/fuzz/replay_*; do
        [ -x "$r" ] || continue
        local target=${r##*/replay_}
        "$r" "tests/fuzz/corpus/$target" || rc=1
    done
    return $rc
}

# cppcheck and clang-tidy (.clang-tidy) must be clean on extension/; each
# tool is one test, and the suite says what they checked.
static_analysis() {
    local files checks failed=0
    files=$(find extension -name '*.[ch]' | wc -l)
    cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability --std=c11 \
        -D_GNU_SOURCE --suppress=missingIncludeSystem --inline-suppr extension/ || failed=$((failed + 1))
    checks=$(clang-tidy --list-checks 2>/dev/null | grep -c '^    ' || true)
    clang-tidy --quiet extension/*.c -- -std=c11 -D_GNU_SOURCE -Iextension || failed=$((failed + 1))
    echo "summary: static analysis: cppcheck (warning, style, performance, portability) on $files files" \
         "of extension/, clang-tidy ($checks checks of .clang-tidy) on its $(ls extension/*.c | wc -l) .c files:" \
         "$([ "$failed" -eq 0 ] && echo clean || echo "$failed tool(s) reported findings")"
    echo "$((2 - failed)) passed, $failed failed"
    [ "$failed" -eq 0 ]
}

cmd_test() {
    need_pkgs "${BASE_PKGS[@]}" "${TEST_PKGS[@]}"
    need_node_tools
    local test_start
    test_start=$(now_us)
    step "building: plain (build/dev)" make -s -j"$JOBS" extension unit fuzz-replay
    step "building: ASan+UBSan (build/asan)" make -s -j"$JOBS" SANITIZE=address extension unit fuzz-replay
    step "building: TSan (build/tsan)" make -s -j"$JOBS" SANITIZE=thread extension unit
    step "building: benchmark programs" make -s -f Makefile -f bench/bench.mk bench-programs

    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:atexit_sleep_ms=0}
    # Suites that skip when something is missing (root, a built program) fail instead.
    export LAMBDA_TRACER_REQUIRE_ALL=1

    run_suite "unit tests (valgrind memcheck)" run_units build/dev \
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    run_suite --rerun "unit tests under ASan+UBSan" "unit tests again (ASan+UBSan)" run_units build/asan
    run_suite --rerun "unit tests under TSan" "unit tests again (TSan)" run_units build/tsan
    run_suite --corpus "fuzz corpus replay (ASan+UBSan)" run_replays build/asan
    run_suite "static analysis (cppcheck, clang-tidy)" static_analysis
    run_suite "validator self-test" node tests/tools/selftest.js
    run_suite "encoders against the independent validators" tests/tools/check_encoders.sh build/dev
    run_suite "emulator tests" "$PYTHON" -m unittest discover -s tests/emulator -p 'test_*.py'
    run_suite "integration tests (ASan+UBSan binary)" \
        env LAMBDA_TRACER_BIN="$PWD/build/asan/lambda-tracer" \
        "$PYTHON" -m unittest discover -s tests/integration -p 'test_*.py'
    run_suite --rerun "integration tests with the TSan binary (quick)" "integration tests again (TSan binary, quick)" \
        env LAMBDA_TRACER_BIN="$PWD/build/tsan/lambda-tracer" LAMBDA_TRACER_TEST_QUICK=1 \
        "$PYTHON" -m unittest discover -s tests/integration -p 'test_*.py'
    run_suite "benchmark smoke check (bench.py --quick)" \
        "$PYTHON" -m unittest discover -s bench -p 'test_*.py'
    run_suite "trace viewer: parsers, terminal and HTML renderers, the page in headless Chromium" \
        "$PYTHON" -m unittest discover -s tests/viewer -p 'test_*.py'

    # The release layer (issue 4): built (cached after the first time), then
    # proven in an empty root for both architectures; the SAM template.
    need_layer_pkgs
    need_pkgs "${LAYER_TEST_PKGS[@]}"
    if step "release layer build (x86_64, arm64; cached after the first time)" layer/build-layer.sh; then
        run_suite "layer: static checks, empty-root runs (x86_64; arm64 under qemu)" \
            "$PYTHON" -m unittest discover -s tests/layer -p 'test_layer.py'
    else
        FAILED=$((FAILED + 1)); FAILED_SUITES+=("release layer build")
    fi
    run_suite "SAM template against the SAM schema, example function" \
        "$PYTHON" -m unittest discover -s tests/layer -p 'test_template.py'
    run_suite "README and docs/: settings against config.c, links, the quick start" \
        "$PYTHON" -m unittest discover -s tests/layer -p 'test_readme.py'

    echo
    if [ ${#FAILED_SUITES[@]} -gt 0 ]; then
        say "failed suites: ${FAILED_SUITES[*]}"
    fi
    say "all suites in $(elapsed "$test_start")"
    local IFS_SAVE=$IFS
    if [ ${#RERUNS[@]} -gt 0 ]; then
        IFS=';'; echo "re-runs (not counted again below):${RERUNS[*]/#/ }"; IFS=$IFS_SAVE
    fi
    echo "corpus replay: $CORPUS_INPUTS inputs of $CORPUS_TARGETS fuzz targets (not counted as tests)"
    for note in "${NOTES[@]}"; do echo "$note"; done
    echo "tests: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ] && [ ${#FAILED_SUITES[@]} -eq 0 ]
}

# The demo runs the release binary (static musl, what the layer ships) when
# its static dependencies are already built for this machine (./build.sh
# layer, bench or test build them), else the development build, and says so.
cmd_demo() {
    cmd_build
    local arch
    arch=$(uname -m)
    [ "$arch" = aarch64 ] && arch=arm64
    if [ -f "build/layer/deps/$arch/include/curl/curl.h" ]; then
        if make -s ARCH="$arch" release >build/demo-release.log 2>&1; then
            exec "$PYTHON" tests/demo.py --binary "$PWD/build/release-$arch/lambda-tracer" --build release "$@"
        fi
        echo "demo: the release build failed (see build/demo-release.log); using the development build" >&2
    fi
    exec "$PYTHON" tests/demo.py --binary "$PWD/build/dev/lambda-tracer" --build dev "$@"
}

cmd_fuzz() {
    local target=${1:?usage: ./build.sh fuzz TARGET [seconds]}
    local seconds=${2:-60}
    need_pkgs "${BASE_PKGS[@]}" "${FUZZ_PKGS[@]}"
    make -s -j"$JOBS" "build/fuzz/fuzz_$target"
    shift $(( $# < 2 ? $# : 2 ))
    local work=build/fuzz/corpus-$target
    local artifacts=build/fuzz/artifacts-$target/
    mkdir -p "$work" "$artifacts"
    cp -n tests/fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
    local dict=()
    [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
    # A hang (10 s on one input), a leak or 2 GB of RSS is a finding like a
    # crash; the input that caused it lands in $artifacts.  Extra arguments
    # (e.g. -runs=N) go to libFuzzer.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "build/fuzz/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -detect_leaks=1 \
        -artifact_prefix="$artifacts" "${dict[@]}" "$@" "$work"
}

# The packages for ARCH... (both when none given).  musl-dev:arm64 needs
# the arm64 architecture known to dpkg; it is added only when missing.
need_layer_pkgs() {
    local pkgs=("${LAYER_PKGS[@]}")
    if [ $# -eq 0 ] || [[ " $* " == *" arm64 "* ]]; then
        if ! dpkg --print-foreign-architectures | grep -qx arm64; then
            say "adding the arm64 architecture to dpkg (for musl-dev:arm64)"
            local sudo=()
            [ "$(id -u)" -ne 0 ] && sudo=(sudo)
            "${sudo[@]}" dpkg --add-architecture arm64
        fi
        pkgs+=("${LAYER_ARM64_PKGS[@]}")
    fi
    need_pkgs "${pkgs[@]}"
}

cmd_layer() {
    need_layer_pkgs "$@"
    step "release layer build (${*:-x86_64, arm64}; cached after the first time)" layer/build-layer.sh "$@"
}

# Benchmarks (bench/): not a test.  Builds the release layer (both
# architectures: figure 6 reports their sizes), measures the x86_64 release
# binary against a floor extension built with the same toolchain, and writes
# build/bench/results.json and results.md.  Runs in about 3 minutes on 2 cores.
cmd_bench() {
    need_pkgs "${BASE_PKGS[@]}" strace openssl
    cmd_layer
    make -s -f Makefile -f bench/bench.mk ARCH=x86_64 release-floor
    make -s -f Makefile -f bench/bench.mk build/dev/bench/loadgen
    "$PYTHON" bench/bench.py --tracer build/release-x86_64/lambda-tracer \
        --binary-kind "release x86_64: static musl, stripped" \
        --floor build/release-x86_64/bench/floor --loadgen build/dev/bench/loadgen \
        --size x86_64:build/release-x86_64/lambda-tracer:build/layer/lambda-tracer-x86_64.zip \
        --size arm64:build/release-arm64/lambda-tracer:build/layer/lambda-tracer-arm64.zip \
        --out build/bench "$@"
}

case "${1:-}" in
    deps) cmd_deps ;;
    build) cmd_build ;;
    test) cmd_test ;;
    demo) shift; cmd_demo "$@" ;;
    fuzz) shift; cmd_fuzz "$@" ;;
    layer) shift; cmd_layer "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    view) shift; exec "$PYTHON" viewer/view.py "$@" ;;
    *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
