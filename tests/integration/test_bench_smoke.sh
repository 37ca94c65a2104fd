#!/bin/bash
# SPDX-License-Identifier: MIT
# The benchmark runs end to end on a tiny workload: every row of the table is there with a
# number, and results.json is valid JSON holding the same figures. Nothing about speed is
# asserted (a benchmark never fails on time).
set -euo pipefail
SRC=${ITL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${ITL_BUILD:-$SRC/build}
T=$(mktemp -d "${TMPDIR:-/tmp}/itl-bench-smoke.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

rc=0
BUILD=$BUILD "$SRC/bench/run.sh" --quick --mem-requests 200 --out "$T/results.json" \
    >"$T/stdout" 2>"$T/stderr" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/stdout" "$T/stderr" >&2; fail "bench/run.sh exited $rc"; }
cat "$T/stdout"

# Valid JSON, read back as "name median" lines (jq when present, else Debian's python3).
if command -v jq >/dev/null; then
    jq -r '.results | to_entries[] | "\(.key) \(.value.median) \(.value.ratio // "-")"' \
        "$T/results.json" >"$T/figures" || fail "results.json is not valid JSON"
    jq -e '(.machine.cores | type) == "number" and (.machine.cpu | length) > 0 and
        (.versions.openssl | length) > 0 and (.versions.softhsm2 | length) > 0 and
        (.versions["p11-kit"] | length) > 0' "$T/results.json" >/dev/null ||
        fail "results.json lacks the machine or the versions"
else
    /usr/bin/python3 - "$T/results.json" >"$T/figures" <<'PY' || fail "results.json is not valid JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d["machine"]["cores"], int) and d["machine"]["cpu"]
assert d["versions"]["openssl"] and d["versions"]["softhsm2"] and d["versions"]["p11-kit"]
for k, v in d["results"].items():
    print(k, v["median"], v.get("ratio", "-"))
PY
fi

# Every path of the issue has a positive number; those with a target have a numeric ratio.
names="ceiling_1t ceiling_2t ceiling_cpu oneshot_min oneshot_durable oneshot_itl file_io
    reset_direct engine service_1c service_2c service_cpu batch reset_service rss_before rss_after
    flushes flushes_service flushes_client flush_ms service_1c_req ceiling_2t_curve
    service_1c_curve service_2c_curve service_3c_curve service_4c_curve service_5c_curve
    service_6c_curve service_7c_curve service_8c_curve
    slow_pool_1 slow_pool_2 slow_pool_4 slow_pool_8 slow_pool_16 slow_pool_32 slow_replayed
    slow_service_cpu slow_pool_32_64c slow_pool_32_nodelay"
# The tmpfs-audit diagnostic runs wherever /dev/shm is writable (every Debian system).
[ -w /dev/shm ] && names="$names service_1c_tmpfs service_2c_tmpfs"
for name in $names; do
    read -r median ratio < <(awk -v n="$name" '$1 == n { print $2, $3 }' "$T/figures") ||
        fail "results.json has no figure '$name'"
    awk -v m="$median" 'BEGIN { exit !(m + 0 > 0) }' || fail "$name: median '$median' is not a positive number"
    case $name in
    oneshot_itl | reset_direct | service_1c | service_2c | batch | reset_service | rss_after | \
        batch_vs_token | service_1c_req | service_4c_curve | slow_pool_32)
        awk -v r="$ratio" 'BEGIN { exit !(r ~ /^[0-9.]+$/ && r + 0 > 0) }' ||
            fail "$name: ratio '$ratio' is not a positive number" ;;
    esac
    echo "ok: $name median $median ratio $ratio"
done

# The slow-token rows model a token that signs off this CPU (faultp11 quirk offload): after each
# pool session's first signature, every C_Sign of the repeated config is a replay (4 sessions,
# 104 requests: at least 100 replayed). A count, not a time.
replayed=$(awk '$1 == "slow_replayed" { print $2 }' "$T/figures")
awk -v r="$replayed" 'BEGIN { exit !(r + 0 >= 90) }' ||
    fail "slow_replayed: only $replayed % of the slow token's C_Sign were replayed (quirk offload)"
echo "ok: slow token: $replayed % of C_Sign replayed by the fault module (offload)"

# The human table has the same rows.
for label in "ceiling: raw C_Sign, 1 thread" "service: sign 8 KB, 2 client processes" \
    "batch: itl-sign --socket sign"; do
    grep -qF "$label" "$T/stdout" || fail "the table has no row '$label'"
done
# Every target row of issue 18's table is printed with its target, and the curves are drawn
# (gnuplot-nox is one of tools/install-deps.sh's packages).
for target in "<= 1.15" "<= 20 per 1,000 files" ">= 0.90" "<= 1.15x + 0.1 ms" ">= 0.85" "<= 1.25" "< 1.05"; do
    grep -qF -- "$target" "$T/stdout" || fail "the table has no row with the target '$target'"
done
grep -q "<svg" "$T/results.svg" 2>/dev/null || fail "no curves drawn in results.svg beside results.json"
echo "ok: every target of issue 18 printed; curves in results.svg ($(wc -c <"$T/results.svg") bytes)"
echo "figures: $(awk '{ printf "%s=%s ", $1, $2 }' "$T/figures")"
