# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# bench/curves.sh: sourced by bench/run.sh (its helpers: figure, ratio, note, service_round,
# ceiling_round, start_service, ...). The rows that need a service of their own: the batch's
# device flushes (a service under strace), the audit log on tmpfs, and issue 18's:
#   - service_1c_req: one client's time per request against max(one signature, one flush);
#   - service_Nc (N = 1..8): the clients curve, each round paired with a 2-thread ceiling round;
#     service_4c carries the target (>= 0.90 x the 2-thread ceiling);
#   - slow_pool_P (P = 1, 2, 4, 8, 16, 32): a token whose signature takes 5 ms of its own time
#     (the fault module's delay schedule with quirk offload, tests/faultp11) with pool-size P and
#     32 client processes: throughput should grow with P toward 32 / 5 ms;
# and draws both curves with gnuplot into results.svg beside the JSON.

SLOW_DELAY_MS=5
SLOW_CLIENTS=32

# One write + fdatasync of a 300-byte line, as the audit log does, in the audit log's
# directory: the cost of one flush on this disk, in ms (median of 50).
flush_ms() {
    /usr/bin/python3 - "$W" <<'PY'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "flush-probe.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
line, t = b"x" * 299 + b"\n", []
for _ in range(50):
    a = time.monotonic()
    os.write(fd, line)
    os.fdatasync(fd)
    t.append((time.monotonic() - a) * 1000)
os.close(fd)
print("%.4f" % sorted(t)[len(t) // 2])
PY
}

# The issue's target for a single client: a request costs about max(sign, flush), since the
# intent record's flush runs while the token signs (docs/config.md, "record pair").
measure_per_request() {
    local f s=() m req target met
    f=$(flush_ms)
    figure flush_ms ms "diagnostic: one audit-sized write + fdatasync" "$f"
    mapfile -t s < <(awk '$1 == "s1"' "$W/rounds" | field rate | awk '$1 > 0 { printf "%.4f\n", 1000 / $1 }')
    need ${#s[@]} "service_1c per request"
    figure service_1c_req ms "service: 1 client, time per request" "${s[@]}"
    m=$(awk -v a="$RAW_SIGN_MS" -v b="$f" 'BEGIN { printf "%.4f", (a > b ? a : b) }')
    req=$(median service_1c_req)
    target=$(awk -v m="$m" 'BEGIN { printf "%.4f", 1.15 * m + 0.1 }')
    met=$(le "$req" "$target")
    ratio service_1c_req "$(div "$req" "$m")" "max(sign $RAW_SIGN_MS ms, flush $f ms)" \
        "<= 1.15x + 0.1 ms ($target ms)" "$met"
    note "per request: sign $RAW_SIGN_MS ms, flush $f ms, one client $req ms a request (sum would be $(awk -v a="$RAW_SIGN_MS" -v b="$f" 'BEGIN { printf "%.3f", a + b }') ms)"
}

measure_clients_curve() {
    local p r s=()
    say "bench: clients curve, 1-8 client processes (each round after a 2-thread ceiling round)"
    start_service "$W/audit-curve.log"
    for _ in $(seq 1 "$ROUNDS"); do
        ceiling_round 2 | sed 's/^/k2 /'
        for p in 1 2 3 4 5 6 7 8; do service_round "$p" | sed "s/^/k$p /"; done
    done >>"$W/rounds.curve"
    stop_service
    mapfile -t s < <(awk '$1 == "k2" && /^k2 ceiling/' "$W/rounds.curve" | field rate)
    [ ${#s[@]} -eq "$ROUNDS" ] || die "a ceiling round of the clients curve failed"
    figure ceiling_2t_curve sig/s "ceiling: raw C_Sign, 2 threads (curve series)" "${s[@]}"
    : >"$W/curve_clients.dat"
    for p in 1 2 3 4 5 6 7 8; do
        mapfile -t s < <(awk -v k="k$p" '$1 == k && $2 == "client"' "$W/rounds.curve" | field rate)
        [ ${#s[@]} -eq "$ROUNDS" ] || die "a round of $p clients failed (see above)"
        figure "service_${p}c_curve" sig/s "curve: service, $p client process(es)" "${s[@]}"
        printf '%s %s %s\n' "$p" "$(median "service_${p}c_curve")" "$(median ceiling_2t_curve)" >>"$W/curve_clients.dat"
    done
    r=$(median_ratio service_4c_curve ceiling_2t_curve)
    ratio service_4c_curve "$r" "ceiling, 2 threads (same round)" ">= 0.90" "$(ge "$r" 0.90)"
}

# The slow token: the fault module's C_Sign delay on top of its quirk offload (tests/faultp11/
# README.md): a signature the real module already made for the same key and input is replayed
# (PKCS#1 v1.5 is deterministic, so byte-identical) instead of SoftHSM2 computing it on this
# machine's cores again. So the token costs 5 ms of someone else's time per signature, as a
# network HSM does, and what is left on this machine is our own CPU per request. The bench
# signs the same 8 KB config again and again: after the first request every C_Sign is a replay
# (slow_replayed checks it).
slow_service() { # POOL [STATS_FILE]
    SERVICE_MODULE=$BUILD/tests/libfaultp11.so SERVICE_POOL=$1 \
        SERVICE_PREFIX="env FAULTP11_MODULE=$MODULE FAULTP11_CONTROL=$W/slow.control FAULTP11_QUIRKS=offload${2:+ FAULTP11_STATS=$2}" \
        start_service "$W/audit-slow.log"
}

measure_slow_token() {
    local p line rate cpu ideal r replays real bound
    if [ ! -f "$BUILD/tests/libfaultp11.so" ]; then
        note "$BUILD/tests/libfaultp11.so not built: no slow-token rows"
        return 0
    fi
    say "bench: slow token (C_Sign ${SLOW_DELAY_MS} ms off this CPU: fault module, quirk offload), $SLOW_CLIENTS clients, pool-size 1-32"
    printf 'C_Sign delay %sms\n' "$SLOW_DELAY_MS" >"$W/slow.control"
    # Untimed: the rows below must replay, or they measure SoftHSM2's RSA again.
    slow_service 4 "$W/slow.stats"
    "$BUILD/bench/client" --socket "$SOCK" --file "$ONE" --procs 4 --count 25 --rounds 1 >>"$W/client.log"
    stop_service
    replays=$(awk '$1 == "offload_replays" { print $2 }' "$W/slow.stats")
    real=$(awk '$1 == "offload_signs" { print $2 }' "$W/slow.stats")
    [ "${replays:-0}" -gt 0 ] || die "slow token: the fault module replayed no signature (quirk offload; $W/slow.stats)"
    figure slow_replayed % "diagnostic: slow token, C_Sign replayed (offload), 4 clients x 26 requests" \
        "$(awk -v a="$replays" -v b="$real" 'BEGIN { printf "%.1f", 100 * a / (a + b) }')"
    note "slow token: of $((replays + real)) C_Sign, $real made by SoftHSM2 and $replays replayed (quirk offload)"
    : >"$W/curve_pool.raw"
    for p in 1 2 4 8 16 32; do
        slow_service "$p"
        line=$(service_round "$SLOW_CLIENTS")
        stop_service
        rate=$(printf '%s\n' "$line" | field rate)
        cpu=$(printf '%s\n' "$line" | field svc_cpu_ms)
        [ -n "$rate" ] || die "slow token, pool-size $p: the clients failed (see above)"
        figure "slow_pool_$p" sig/s "slow token (${SLOW_DELAY_MS} ms/sig): pool-size $p, $SLOW_CLIENTS clients" "$rate"
        ideal=$(awk -v p="$p" -v d="$SLOW_DELAY_MS" 'BEGIN { printf "%.1f", p * 1000 / d }')
        printf '%s %s %s\n' "$p" "$rate" "$ideal" >>"$W/curve_pool.raw"
        r=$(div "$rate" "$ideal")
        if [ "$p" = 32 ]; then
            ratio "slow_pool_$p" "$r" "32 / ${SLOW_DELAY_MS} ms = $ideal sig/s" ">= 0.85" "$(ge "$r" 0.85)"
            figure slow_service_cpu ms "diagnostic: slow token, service CPU per request, pool-size 32" "$cpu"
        else
            ratio "slow_pool_$p" "$r" "$p / ${SLOW_DELAY_MS} ms" "diagnostic" null
        fi
    done
    # Diagnostic: twice as many clients as sessions, so a session never waits for its next
    # request (a synchronous client's round trip outside the token idles its session).
    slow_service 32
    line=$(service_round $((2 * SLOW_CLIENTS)))
    stop_service
    rate=$(printf '%s\n' "$line" | field rate)
    [ -n "$rate" ] || die "slow token, $((2 * SLOW_CLIENTS)) clients: the clients failed (see above)"
    figure slow_pool_32_64c sig/s "diagnostic: slow token, pool-size 32, $((2 * SLOW_CLIENTS)) clients" "$rate"
    ratio slow_pool_32_64c "$(div "$rate" "$(awk -v d="$SLOW_DELAY_MS" 'BEGIN { printf "%.1f", 32 * 1000 / d }')")" "32 / ${SLOW_DELAY_MS} ms" "diagnostic" null
    # What this machine can serve at all: the same service and clients with a token that takes
    # no time (offload, no delay). Above it no pool size helps.
    : >"$W/slow.control"
    slow_service 32
    line=$(service_round "$SLOW_CLIENTS")
    stop_service
    bound=$(printf '%s\n' "$line" | field rate)
    [ -n "$bound" ] || die "slow token, no delay: the clients failed (see above)"
    figure slow_pool_32_nodelay sig/s "diagnostic: the same, pool-size 32, token time 0 (our stack's bound)" "$bound"
    ratio slow_pool_32_nodelay "$(div "$bound" "$(awk -v d="$SLOW_DELAY_MS" 'BEGIN { printf "%.1f", 32 * 1000 / d }')")" "32 / ${SLOW_DELAY_MS} ms" "diagnostic" null
    awk -v b="$bound" '{ print $0, b }' "$W/curve_pool.raw" >"$W/curve_pool.dat"
    note "slow token: the service spends $cpu ms CPU per request at pool-size 32 ($(awk -v c="$(nproc)" -v m="$cpu" 'BEGIN { printf "%.0f", (m > 0 ? c * 1000 / m : 0) }') requests/s on $(nproc) idle cores); with no token time at all it serves $bound sig/s on this machine now"
}

# Both curves in one SVG next to the JSON (gnuplot-nox, tools/install-deps.sh).
plot_curves() { # SVG
    local svg=$1
    if ! command -v gnuplot >/dev/null; then
        note "gnuplot is not installed (tools/install-deps.sh): no $svg"
        return 0
    fi
    [ -s "$W/curve_clients.dat" ] && [ -s "$W/curve_pool.dat" ] || return 0
    gnuplot <<EOF || note "gnuplot failed: no $svg"
set terminal svg size 1000,420 dynamic noenhanced font "sans,11"
set output "$svg"
set multiplot layout 1,2 title "itl-sign bench, RSA-$BITS, load $LOAD_START at start"
set key left top
set grid
set xlabel "client processes (1 connection each)"
set ylabel "signatures per second"
set yrange [0:*]
plot "$W/curve_clients.dat" using 1:2 with linespoints lw 2 title "itl-signd", \\
     "$W/curve_clients.dat" using 1:3 with lines lw 1 title "raw C_Sign, 2 threads"
set xlabel "token.pool-size ($SLOW_CLIENTS clients, C_Sign = $SLOW_DELAY_MS ms off this CPU)"
set logscale x 2
plot "$W/curve_pool.dat" using 1:2 with linespoints lw 2 title "itl-signd", \\
     "$W/curve_pool.dat" using 1:3 with lines lw 1 title "pool-size / $SLOW_DELAY_MS ms", \\
     "$W/curve_pool.dat" using 1:4 with lines lw 1 title "itl-signd, pool 32, token time 0 (the bound)"
unset multiplot
EOF
    [ -s "$svg" ] && say "bench: curves drawn in $svg"
}

# Device flushes of one batch, counted by strace (fsync, fdatasync, syncfs) in the service and
# in the client: they must not grow with the number of files. An extra, untimed round (tracing
# slows both sides): a second service is started under strace, since attaching to a running
# one needs ptrace rights a CI container may not give.
FLUSH_CALLS=fsync,fdatasync,syncfs
count_flushes() { # TRACE [FROM TO]: calls started (not "resumed" lines) within [FROM, TO]
    awk -v from="${2:-0}" -v to="${3:-9e18}" '
        $0 ~ /(fsync|fdatasync|syncfs)\(/ && $2 + 0 >= from + 0 && $2 + 0 <= to + 0 { n++ }
        END { print n + 0 }' "$1"
}
measure_flushes() {
    local t0 t1 svc cli total n child met
    say "bench: device flushes of one batch of $N_FILES files (strace, untimed)"
    # LeakSanitizer cannot run under ptrace: an ASan build is traced without it.
    local asan="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    SERVICE_PREFIX="env $asan strace -f --seccomp-bpf -ttt -e trace=$FLUSH_CALLS -o $W/service.trace"
    start_service "$W/audit-flushes.log"
    SERVICE_PREFIX=""
    rm -rf "$W/out/flushes" && mkdir -p "$W/out/flushes"
    t0=$(date +%s.%N)
    env "$asan" strace -f --seccomp-bpf -ttt -e trace=$FLUSH_CALLS -o "$W/client.trace" \
        "$ITL_SIGN" --socket "$SOCK" --quiet sign "${CONFIGS[@]}" --out-dir "$W/out/flushes" ||
        die "batch under strace failed"
    t1=$(date +%s.%N)
    n=$(find "$W/out/flushes" -name '*.sgn' | wc -l)
    [ "$n" -eq "$N_FILES" ] || die "batch under strace: $n of $N_FILES .sgn files written"
    # SERVICE_PID is strace's; the service is its child (stopped by its pid, never waited for
    # blindly).
    child=$(ps -o pid= --ppid "$SERVICE_PID" | tr -d ' ' | head -n 1)
    [ -n "$child" ] || die "itl-signd under strace (pid $SERVICE_PID) not found"
    kill "$child"
    # Under ASan a SIGTERM was seen not to reach the traced service: after 30 s it is killed
    # (the count is taken from the batch's time window, not from its exit).
    for _ in $(seq 1 300); do
        kill -0 "$child" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$child" 2>/dev/null && kill -KILL "$child"
    wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=""
    svc=$(count_flushes "$W/service.trace" "$t0" "$t1")
    cli=$(count_flushes "$W/client.trace")
    total=$((svc + cli))
    figure flushes count "device flushes per batch of $N_FILES (service + client)" "$total"
    # The target is for a batch of 1,000; a smaller one (--quick) is only shown.
    met=null
    [ "$N_FILES" -ge 1000 ] && met=$(le "$total" 20)
    ratio flushes "$total" "fsync+fdatasync+syncfs calls (strace)" "<= 20 per 1,000 files" "$met"
    figure flushes_service count "diagnostic: of them in the service (audit log)" "$svc"
    figure flushes_client count "diagnostic: of them in the client (outputs)" "$cli"
    note "flushes: $svc in the service + $cli in the client for one batch of $N_FILES files (they do not grow with the files: issue 18's target is <= 20 for 1,000)"
}

measure_tmpfs_audit() {
    local shm r
    shm=$(mktemp -d /dev/shm/itl-bench.XXXXXX) || return 0
    start_service "$shm/audit.log"
    for _ in $(seq 1 "$ROUNDS"); do
        ceiling_round 1 | sed 's/^/t1c /'
        service_round 1 | sed 's/^/t1s /'
        ceiling_round 2 | sed 's/^/t2c /'
        service_round 2 | sed 's/^/t2s /'
    done >>"$W/rounds"
    stop_service
    rm -rf "$shm"
    for k in t1c t1s t2c t2s; do
        [ "$(rounds_of "$k" rate | wc -l)" -eq "$ROUNDS" ] || die "a tmpfs-audit round failed (see above)"
    done
    mapfile -t s < <(rounds_of t1c rate)
    figure ceiling_1t_b sig/s "ceiling: raw C_Sign, 1 thread (second series)" "${s[@]}"
    mapfile -t s < <(rounds_of t1s rate)
    figure service_1c_tmpfs sig/s "diagnostic: service 1 client, audit log on tmpfs" "${s[@]}"
    r=$(median_ratio service_1c_tmpfs ceiling_1t_b)
    ratio service_1c_tmpfs "$r" "ceiling, 1 thread (same round)" "diagnostic" null
    mapfile -t s < <(rounds_of t2c rate)
    figure ceiling_2t_b sig/s "ceiling: raw C_Sign, 2 threads (second series)" "${s[@]}"
    mapfile -t s < <(rounds_of t2s rate)
    figure service_2c_tmpfs sig/s "diagnostic: service 2 clients, audit log on tmpfs" "${s[@]}"
    r=$(median_ratio service_2c_tmpfs ceiling_2t_b)
    ratio service_2c_tmpfs "$r" "ceiling, 2 threads (same round)" "diagnostic" null
    mapfile -t s < <(rounds_of t1s svc_cpu_ms)
    figure service_cpu_tmpfs ms "diagnostic: service CPU per request, audit on tmpfs" "${s[@]}"
}
