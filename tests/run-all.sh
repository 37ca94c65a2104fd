#!/bin/bash
# Runs the test suites and prints one closing line "N passed, N failed".
#   tests/run-all.sh [unit|integration|valgrind|all]
# BUILD names the build directory (build, build-asan). Each suite gets its own temp dir and token.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
what=${1:-all}
export ITL_SRC=$PWD ITL_BUILD=$PWD/$BUILD
# Sanitizers: fail on the first error; leaks in the libraries we load (SoftHSM2, p11-kit,
# OpenSSL's engine) are theirs, listed in tests/lsan.supp.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:exitcode=86}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0 failed=0 failures=()
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/itl-tests.XXXXXX")

record() { # name rc log
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS $1"
    else
        failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1 (exit $2)"; tail -n 40 "$3" | sed 's/^/    /'
    fi
}

run_unit() {
    local wrap=("$@") t name rc
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        name=unit/$(basename "$t")
        ( cd "$log_dir" && "${wrap[@]}" "$ITL_BUILD/tests/$(basename "$t")" ) >"$log_dir/$(basename "$t").log" 2>&1
        rc=$?
        grep -E '^[0-9]+%: Checks' "$log_dir/$(basename "$t").log" | sed "s|^|    $name: |"
        record "$name" $rc "$log_dir/$(basename "$t").log"
    done
}

run_integration() {
    local t name rc
    for t in tests/integration/test_*.sh tests/faultp11/selftest.sh; do
        [ -f "$t" ] || continue
        name=integration/$(basename "$(dirname "$t")")-$(basename "$t" .sh)
        name=${name/integration\/integration-/integration/}
        bash "$t" >"$log_dir/$(basename "$t").log" 2>&1
        rc=$?
        grep -E '^(ok|figures):' "$log_dir/$(basename "$t").log" | sed "s|^|    $name: |"
        record "$name" $rc "$log_dir/$(basename "$t").log"
    done
}

run_fuzz_regress() {
    local t name rc corpus
    for t in "$BUILD"/tests/fuzz_*; do
        [ -x "$t" ] || continue
        name=fuzz-regress/$(basename "$t")
        # fuzz_A_B replays corpus/A_B, else corpus/A (as tests/fuzz/run.sh)
        corpus=tests/fuzz/corpus/$(basename "$t" | sed 's/^fuzz_//')
        [ -d "$corpus" ] || corpus=${corpus%_*}
        "$t" "$corpus" >"$log_dir/$(basename "$t").log" 2>&1
        rc=$?
        record "$name" $rc "$log_dir/$(basename "$t").log"
    done
}

case $what in
unit) run_unit ;;
integration) run_integration ;;
valgrind)
    export CK_FORK=no
    run_unit valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --suppressions="$PWD/tests/valgrind.supp" ;;
all) run_unit; run_fuzz_regress; run_integration ;;
*) echo "usage: $0 [unit|integration|valgrind|all]" >&2; exit 2 ;;
esac

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]} (logs in $log_dir)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && rm -rf "$log_dir"
[ "$failed" -eq 0 ]
