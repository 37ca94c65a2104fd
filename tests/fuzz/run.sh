#!/bin/bash
# Runs every libFuzzer target (tests/fuzz/fuzz_*.c) for FUZZ_SECONDS each under ASan + UBSan
# (FUZZ_TOTAL_SECONDS instead: that budget shared evenly; FUZZ_TARGETS: only these targets;
# FUZZ_BUILD: the build dir, default build-fuzz). Target fuzz_A_B uses corpus/A_B/, else
# corpus/A/, and tests/fuzz/<that corpus>.dict when there is one.
# The seed corpus is copied, never modified; a crash input is kept in build-fuzz/crashes/ and
# fails the run (add it to tests/fuzz/corpus/<target>/ once fixed: the regression run replays it).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

make --no-print-directory BUILD=$build CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
    SAN="$san -fsanitize=fuzzer-no-link" libs >/dev/null
libs=$(make --no-print-directory -s BUILD=$build print-libs)

targets=()
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    case " ${FUZZ_TARGETS:-$name} " in *" $name "*) targets+=("$src") ;; esac
done
[ -z "${FUZZ_TOTAL_SECONDS:-}" ] || secs=$((FUZZ_TOTAL_SECONDS / ${#targets[@]}))

mkdir -p $build/crashes
status=0
for src in "${targets[@]}"; do
    name=$(basename "$src" .c)
    corpus=tests/fuzz/corpus/${name#fuzz_}
    [ -d "$corpus" ] || corpus=${corpus%_*}
    dict=tests/fuzz/$(basename "$corpus").dict
    dict_opt=()
    [ -f "$dict" ] && dict_opt=(-dict="$dict")
    bin=$build/lf_$name
    # Targets below ~35,000 execs/s get twice the time in `make fuzz`, so that each reaches
    # 10 M executions: fuzz_tlv_x509 pays for OpenSSL's certificate decoders, fuzz_config for
    # libyaml's buffers (~22,000 execs/s each, against ~40,000 for fuzz_tlv, 280,000 for
    # fuzz_wire). CI's shared budget (FUZZ_TOTAL_SECONDS) stays split evenly.
    t_secs=$secs
    case $name in fuzz_tlv_x509 | fuzz_config) [ -n "${FUZZ_TOTAL_SECONDS:-}" ] || t_secs=$((secs * 2)) ;; esac
    clang -std=c11 -D_GNU_SOURCE -O1 -g -I. $(pkg-config --cflags p11-kit-1 yaml-0.1 openssl expat) \
        $san -fsanitize=fuzzer -o "$bin" "$src" \
        $libs $(pkg-config --libs p11-kit-1 yaml-0.1 openssl expat) -pthread
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    log=$build/$name.log
    if "$bin" -max_total_time="$t_secs" -max_len=${FUZZ_MAX_LEN:-70000} -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$build/crashes/$name-" -print_final_stats=1 "${dict_opt[@]}" "$work" >"$log" 2>&1; then
        execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
        echo "figures: fuzz $name: $execs execs in ${t_secs}s ($((${execs/\?/0} / t_secs))/s), no crash"
    else
        echo "FUZZ CRASH in $name: see $log and $build/crashes/"; tail -30 "$log"; status=1
    fi
    rm -rf "$work"
done
exit $status
