#!/bin/bash
# SPDX-License-Identifier: MIT
# Self-test of the fault-injecting PKCS#11 module (tests/faultp11/README.md): it must forward
# every call unchanged when the schedule is empty, and inject exactly what the schedule says.
#
#   tests/faultp11/selftest.sh        (ITL_SRC: repo root, ITL_BUILD: build dir holding
#                                      tests/libfaultp11.so; defaults: this repo, $ITL_SRC/build)
#
# Drives the module with pkcs11-tool (one process per command: the stats file carries counts
# and rule states between them) and with driver/p11drive.c (many calls, threads and schedule
# changes inside one process). Prints "ok: ..." per check and "N passed, N failed" at the end.
set -u
set -o pipefail
ITL_SRC=${ITL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
ITL_BUILD=${ITL_BUILD:-$ITL_SRC/build}
FAULT=$ITL_BUILD/tests/libfaultp11.so
HERE=$ITL_SRC/tests/faultp11

passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
fatal() { echo "FAIL: $*"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
# check DESCRIPTION TEST...: runs TEST (a command), counts it as passed or failed.
check() {
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

[ -f "$FAULT" ] || fatal "$FAULT missing: make BUILD=<dir> <dir>/tests/libfaultp11.so"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultp11-selftest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---- setup: a throwaway SoftHSM2 token with an RSA key, and the driver -------------------------
LABEL=faultp11-selftest
eval "$("$ITL_SRC/softhsm-conf/make-token.sh" "$WORK/token" "$LABEL")" || fatal "make-token.sh"
REAL=$ITL_MODULE
# PINs travel in the environment (pkcs11-tool's env:VAR, p11drive's P11DRIVE_PIN), never argv.
FP_PIN=$(cat "$ITL_PIN_FILE")
export FP_PIN P11DRIVE_PIN=$FP_PIN
pkcs11-tool --module "$REAL" --token-label "$LABEL" --login --pin env:FP_PIN --keypairgen \
    --key-type rsa:2048 --label k --id 01 --usage-sign --sensitive --private \
    >"$WORK/keygen.log" 2>&1 || { cat "$WORK/keygen.log"; fatal "key generation"; }
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror $(pkg-config --cflags p11-kit-1) \
    -o "$WORK/p11drive" "$HERE/driver/p11drive.c" -ldl -pthread $(pkg-config --libs p11-kit-1) ||
    fatal "building p11drive"

export FAULTP11_MODULE=$REAL FAULTP11_CONTROL=$WORK/control FAULTP11_STATS=$WORK/stats
CONTROL=$WORK/control STATS=$WORK/stats
printf 'faultp11 selftest data\n' >"$WORK/data"

# schedule RULE...: the control file holds these lines (written atomically, as tests should).
schedule() {
    printf '%s\n' "$@" >"$CONTROL.tmp" && mv "$CONTROL.tmp" "$CONTROL"
}
fresh() { # no schedule, counters from zero
    rm -f "$CONTROL" "$STATS"
}
# stat_value KEY [FUNCTION]: a number from the stats file (0 when the line is absent).
stat_value() {
    local v
    if [ $# -eq 2 ]; then
        v=$(awk -v k="$1" -v f="$2" '$1 == k && $2 == f { print $3 }' "$STATS")
    else
        v=$(awk -v k="$1" '$1 == k { print $2 }' "$STATS")
    fi
    echo "${v:-0}"
}
# expect_stat KEY [FUNCTION] WANT
expect_stat() {
    local want=${*: -1} got
    got=$(stat_value "${@:1:$#-1}")
    [ "$got" = "$want" ] || { echo "    stats: $* : got $got" >&2; return 1; }
}
# p11tool MODULE ARGS...: pkcs11-tool; stdout in $WORK/out, stderr in $WORK/err.
p11tool() {
    local module=$1; shift
    pkcs11-tool --module "$module" "$@" >"$WORK/out" 2>"$WORK/err"
}
sign_with() { # MODULE OUTFILE
    p11tool "$1" --token-label "$LABEL" --login --pin env:FP_PIN --sign -m SHA256-RSA-PKCS \
        --id 01 -i "$WORK/data" -o "$2"
}
# drive SCRIPT-LINES...: runs p11drive on the fault module; its output in $WORK/drive.
drive() {
    printf '%s\n' "$@" | "$WORK/p11drive" "$FAULT" "$LABEL" k >"$WORK/drive" 2>"$WORK/drive.err"
}
# expect_drive LINE...: p11drive printed exactly these lines.
expect_drive() {
    local want
    want=$(printf '%s\n' "$@")
    [ "$(cat "$WORK/drive")" = "$want" ] ||
        { echo "    p11drive printed:" >&2; sed 's/^/      /' "$WORK/drive" "$WORK/drive.err" >&2; return 1; }
}
sha256_of() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# ---- (1) no schedule: the module is transparent ------------------------------------------------
fresh
p11tool "$REAL" -L && cp "$WORK/out" "$WORK/list.real"
check "-L through the fault module lists exactly what SoftHSM2 lists" \
    eval 'p11tool "$FAULT" -L && cmp -s "$WORK/out" "$WORK/list.real"'
p11tool "$REAL" --token-label "$LABEL" --login --pin env:FP_PIN -O && cp "$WORK/out" "$WORK/objs.real"
check "-O (objects, after login) is identical through the fault module" \
    eval 'p11tool "$FAULT" --token-label "$LABEL" --login --pin env:FP_PIN -O &&
          cmp -s "$WORK/out" "$WORK/objs.real"'
sign_with "$REAL" "$WORK/sig.real" || fatal "signing with SoftHSM2 directly: $(cat "$WORK/err")"
fresh
check "a signature through the fault module is byte-identical to SoftHSM2's" \
    eval 'sign_with "$FAULT" "$WORK/sig.fault" && cmp -s "$WORK/sig.fault" "$WORK/sig.real"'
check "stats: 1 C_Sign, nothing injected, no real error, 1 login" eval '
    expect_stat calls C_Sign 1 && ! grep -q "^injected " "$STATS" && ! grep -q "^errors " "$STATS" &&
    expect_stat login_attempts 1'
check "stats: the login's PIN is recorded as its SHA-256, the PIN itself appears nowhere" eval '
    grep -qx "login_pin_sha256 $(sha256_of "$FP_PIN")" "$STATS" && ! grep -qF "$FP_PIN" "$STATS"'

# ---- (2) every 2nd C_Sign: SESSION_HANDLE_INVALID, counted across processes ------------------
fresh
schedule "# every second signature loses its session" "C_Sign every 2 rv CKR_SESSION_HANDLE_INVALID"
check "every 2: 1st sign (process 1) succeeds with the same signature" \
    eval 'sign_with "$FAULT" "$WORK/sig.1" && cmp -s "$WORK/sig.1" "$WORK/sig.real"'
check "every 2: 2nd sign (process 2) fails, pkcs11-tool reports CKR_SESSION_HANDLE_INVALID" \
    eval '! sign_with "$FAULT" "$WORK/sig.2" && grep -q CKR_SESSION_HANDLE_INVALID "$WORK/err"'
check "every 2: 3rd sign (process 3) succeeds again" \
    eval 'sign_with "$FAULT" "$WORK/sig.3" && cmp -s "$WORK/sig.3" "$WORK/sig.real"'
check "every 2: stats say 3 C_Sign calls, 1 injected, rule seen 3 times" eval '
    expect_stat calls C_Sign 3 && expect_stat injected C_Sign 1 &&
    grep -qx "rule_state 3 -1 C_Sign every 2 rv CKR_SESSION_HANDLE_INVALID" "$STATS"'

# ---- (3) C_Login always PIN_INCORRECT ----------------------------------------------------------
fresh
schedule "C_Login always rv CKR_PIN_INCORRECT"
check "PIN_INCORRECT: login fails and pkcs11-tool reports CKR_PIN_INCORRECT" \
    eval '! p11tool "$FAULT" --token-label "$LABEL" --login --pin env:FP_PIN -O &&
          grep -q CKR_PIN_INCORRECT "$WORK/err"'
check "PIN_INCORRECT: 1 attempt counted, injected, its PIN hash recorded" eval '
    expect_stat login_attempts 1 && expect_stat injected C_Login 1 &&
    grep -qx "login_pin_sha256 $(sha256_of "$FP_PIN")" "$STATS"'
check "PIN_INCORRECT: the PIN never reached the token (no failed-login flag on SoftHSM2)" eval '
    p11tool "$REAL" -T && ! grep -qi "count low" "$WORK/out"'
# SHA-256 at its padding boundaries: wrong PINs of 1..200 bytes, all refused before the token.
: >"$WORK/pins"
for n in 1 3 55 56 57 63 64 65 119 120 200; do
    head -c "$n" /dev/zero | tr '\0' 'x' >>"$WORK/pins"; echo >>"$WORK/pins"
done
fresh
schedule "C_Login always rv CKR_PIN_INCORRECT"
drive "login-file $WORK/pins"
check "PIN hashes: 11 logins refused with 0xa0, each hash equals sha256sum of the PIN sent" eval '
    expect_drive "login: $(printf "0xa0 %.0s" $(seq 11) | sed "s/ $//")" &&
    diff <(while read -r p; do sha256_of "$p"; done <"$WORK/pins") \
         <(awk "\$1 == \"login_pin_sha256\" { print \$2 }" "$STATS")'

# ---- (4) absent: the token is removed, and comes back -------------------------------------------
fresh
schedule absent
check "absent: -L shows no token (only empty slots)" \
    eval 'p11tool "$FAULT" -L && ! grep -q "$LABEL" "$WORK/out" && grep -q "(empty)" "$WORK/out"'
check "absent: C_GetSlotList(present) is empty, a token session cannot open" \
    eval 'fresh; drive "control absent" "slots" "open 1" && expect_drive "slots: 0" "open: 0xe0"'
schedule
check "absent removed: -L lists the token again, exactly as SoftHSM2 does" \
    eval 'p11tool "$FAULT" -L && cmp -s "$WORK/out" "$WORK/list.real"'
fresh
# A session open across a removal is dead afterwards, and the login is gone: the caller rebuilds.
check "absent in a running process: open session gets DEVICE_REMOVED, then rebuilds and signs" eval '
    drive "sign 1" "control absent" "sign 1" "slots" "control" "slots" "sign 1" &&
    expect_drive "sign: 0x0" "sign: 0x32" "slots: 0" "slots: 2" "sign: 0x0"'
fresh
check "absent then back: a session from before the removal is invalid (real sessions closed)" eval '
    drive "sign 1" "control absent" "slots" "control" "sign 1" "sign 1" &&
    expect_drive "sign: 0x0" "slots: 0" "sign: 0xb3" "sign: 0x0" && expect_stat login_attempts 2'

# ---- (5) delay -----------------------------------------------------------------------------------
fresh
schedule "C_Sign delay 300ms"
t0=$(date +%s%N)
sign_with "$FAULT" "$WORK/sig.slow"
rc=$?
t1=$(date +%s%N)
check "delay 300ms: the signature is correct and took >= 300 ms ($(((t1 - t0) / 1000000)) ms)" eval '
    [ $rc -eq 0 ] && cmp -s "$WORK/sig.slow" "$WORK/sig.real" && [ $((t1 - t0)) -ge 300000000 ] &&
    expect_stat delayed C_Sign 1 && ! grep -q "^injected " "$STATS"'

# ---- (6) threads: exact counts under concurrency -------------------------------------------------
fresh
schedule "C_Sign every 5 rv CKR_SESSION_HANDLE_INVALID"
check "4 threads x 50 signs, every 5th fails: exactly 160 ok / 40 failed, all signatures equal" \
    eval 'drive "threads 4 50" && expect_drive "threads: ok=160 failed=40"'
check "threads: stats say 200 C_Sign, 40 injected; 40 real sessions were closed under the caller" \
    eval 'expect_stat calls C_Sign 200 && expect_stat injected C_Sign 40 &&
          expect_stat errors C_CloseSession 40'

fresh
schedule "C_Sign every 7 rv CKR_SESSION_HANDLE_INVALID"
( for i in $(seq 30); do
      schedule "C_Sign every $((i % 4 + 2)) rv CKR_SESSION_HANDLE_INVALID" "C_Sign delay 1ms"
      sleep 0.02
  done ) &
changer=$!
drive "threads 4 100"
wait "$changer"
check "schedule rewritten 30 times while 4 threads sign: every call accounted, no wrong signature" eval '
    n_ok=$(sed -n "s/^threads: ok=\([0-9]*\) failed=\([0-9]*\)$/\1/p" "$WORK/drive")
    bad=$(sed -n "s/^threads: ok=\([0-9]*\) failed=\([0-9]*\)$/\2/p" "$WORK/drive")
    [ -n "$n_ok" ] && [ $((n_ok + bad)) -eq 400 ] && [ "$bad" -gt 0 ] &&
    expect_stat calls C_Sign 400 && expect_stat injected C_Sign "$bad"'

# ---- (7) loaded by p11-kit, and fork ---------------------------------------------------------------
fresh
check "loaded and initialised by p11-kit (as pkcs11/ does): signs, every 3rd fails exactly" eval '
    P11DRIVE_LOADER=p11-kit drive "sign 1" "control C_Sign every 3 rv CKR_SESSION_HANDLE_INVALID" \
        "threads 3 20" &&
    expect_drive "sign: 0x0" "threads: ok=40 failed=20"'
fresh
check "fork: the child initialises the module again and signs; the parent keeps signing" eval '
    drive "sign 1" "fork" "sign 1" && expect_drive "sign: 0x0" "fork: init 0x0 sign 0x0 exit 0" "sign: 0x0"'

# SoftHSM2's default lets a child use the parent's state and refuses a second C_Initialize.
sed 's/^library.reset_on_fork = true/library.reset_on_fork = false/' "$SOFTHSM2_CONF" \
    >"$WORK/softhsm2-shared-fork.conf"
fresh
check "fork, real module without reset_on_fork: the child's C_Initialize still succeeds" eval '
    SOFTHSM2_CONF=$WORK/softhsm2-shared-fork.conf drive "sign 1" "fork" "sign 1" &&
    expect_drive "sign: 0x0" "fork: init 0x0 sign 0x0 exit 0" "sign: 0x0"'

# ---- (8) after/count, for, SESSION_COUNT, DEVICE_REMOVED, schedule changes in one process -------
fresh
check "after 2 count 3: calls 3..5 fail with DEVICE_ERROR, the others pass" eval '
    drive "control C_Sign after 2 count 3 rv CKR_DEVICE_ERROR" "sign 7" &&
    expect_drive "sign: 0x0 0x0 0x30 0x30 0x30 0x0 0x0"'
fresh
# The window opens at the first call: 2 s hold the second call on a busy host, and the sleep
# after it is longer than the window, so the last call is past it however slow the host.
check "for 2000ms: calls fail with TOKEN_NOT_PRESENT inside the window, pass after it" eval '
    drive "control C_Sign for 2000ms rv CKR_TOKEN_NOT_PRESENT" "sign 2" "sleep 2100" "sign 1" &&
    expect_drive "sign: 0xe0 0xe0" "sign: 0x0"'
fresh
check "C_OpenSession every 2: SESSION_COUNT on the 2nd and 4th open" eval '
    drive "control C_OpenSession every 2 rv CKR_SESSION_COUNT" "open 4" &&
    expect_drive "open: 0x0 0xb1 0x0 0xb1"'
fresh
check "DEVICE_REMOVED on C_Sign: the token forgets the login, the caller logs in once more" eval '
    drive "sign 1" "control C_Sign after 0 count 1 rv CKR_DEVICE_REMOVED" "sign 2" &&
    expect_drive "sign: 0x0" "sign: 0x32 0x0" && expect_stat login_attempts 2'

# What a fault leaves behind on the token, seen by a caller that keeps its session.
fresh
check "DEVICE_ERROR on C_Sign ends the operation: a retry in the same session signs" eval '
    drive "sign 1" "control C_Sign after 0 count 1 rv CKR_DEVICE_ERROR" "sign-keep 2" &&
    expect_drive "sign: 0x0" "sign-keep: 0x30 0x0"'
fresh
check "SESSION_HANDLE_INVALID on C_Sign: the session is gone on the token too" eval '
    drive "sign 1" "control C_Sign after 0 count 1 rv CKR_SESSION_HANDLE_INVALID" "sign-keep 2" \
          "sign 2" &&
    expect_drive "sign: 0x0" "sign-keep: 0xb3 0xb3" "sign: 0xb3 0x0"'
fresh
check "DEVICE_REMOVED on C_Sign: all sessions and the login are gone, the caller logs in again" eval '
    drive "sign 1" "control C_Sign after 0 count 1 rv CKR_DEVICE_REMOVED" "sign-keep 2" "sign 2" &&
    expect_drive "sign: 0x0" "sign-keep: 0x32 0xb3" "sign: 0xb3 0x0" &&
    expect_stat login_attempts 2'
fresh
# (SoftHSM2 answers OBJECT_HANDLE_INVALID for a private key used while logged out.)
check "USER_NOT_LOGGED_IN on C_Sign: the token forgets the login, the caller logs in again" eval '
    drive "sign 1" "control C_Sign after 0 count 1 rv CKR_USER_NOT_LOGGED_IN" "sign-keep 2" \
          "sign 2" &&
    expect_drive "sign: 0x0" "sign-keep: 0x101 0x82" "sign: 0x82 0x0" &&
    expect_stat login_attempts 2'

# ---- (9) bad schedules: refused with the line named, never ignored silently ----------------------
bad_schedule() { # RULE EXPECTED-MESSAGE-PART
    fresh
    schedule "# a comment line" "$1"
    ! p11tool "$FAULT" -L && grep -q "control:2: .*$2" "$WORK/err" &&
        grep -q "C_Initialize refused" "$WORK/err" &&
        grep -q "^schedule_error .*control:2: .*$2" "$STATS"
}
check "bad schedule: unknown function refused at C_Initialize" bad_schedule \
    "C_Sgn every 2 rv 0x5" "unknown function or keyword 'C_Sgn'"
check "bad schedule: every 0" bad_schedule "C_Sign every 0 rv CKR_GENERAL_ERROR" "'every 0'"
check "bad schedule: unknown rv name" bad_schedule "C_Sign rv CKR_NOPE" "unknown rv 'CKR_NOPE'"
check "bad schedule: rv CKR_OK" bad_schedule "C_Sign rv CKR_OK" "must not be CKR_OK"
check "bad schedule: a rule that does nothing" bad_schedule "C_Sign every 2" "does nothing"
check "bad schedule: duration without unit" bad_schedule "C_Sign delay 5" "'delay 5'"
check "bad schedule: absent with arguments" bad_schedule "absent now" "'absent' takes no"
check "bad schedule: C_GetFunctionList" bad_schedule "C_GetFunctionList rv 0x5" "cannot be faulted"
fresh
check "bad schedule in a running process: reported, the previous schedule stays in force" eval '
    drive "control C_Sign every 2 rv CKR_SESSION_HANDLE_INVALID" "sign 2" "control C_Sign bogus" \
          "sign 2" &&
    expect_drive "sign: 0x0 0xb3" "sign: 0x0 0xb3" &&
    grep -q "control:1: unexpected .bogus." "$WORK/drive.err" && grep -q "^schedule_error" "$STATS"'
check "a number as rv: rv 0x30 injects CKR_DEVICE_ERROR" eval '
    fresh; drive "control C_Sign always rv 0x30" "sign 1" && expect_drive "sign: 0x30"'

# ---- (10) quirk offload: replayed signatures, byte-identical to the token's ---------------------
# RSA PKCS#1 v1.5 is deterministic: the same key and input give the same bytes, so a replay is
# what the token would have returned. p11drive signs "faultp11 selftest data" (no newline).
printf 'faultp11 selftest data' >"$WORK/data.drive"
p11tool "$REAL" --token-label "$LABEL" --login --pin env:FP_PIN --sign -m SHA256-RSA-PKCS \
    --id 01 -i "$WORK/data.drive" -o "$WORK/sig.drive.real" ||
    fatal "signing p11drive's data with SoftHSM2 directly: $(cat "$WORK/err")"
fresh
check "offload: 5 signs of one input: 1 made by SoftHSM2, 4 replayed, all equal to SoftHSM2's" eval '
    FAULTP11_QUIRKS=offload P11DRIVE_SIG_OUT=$WORK/sig.offload drive "sign 5" &&
    expect_drive "sign: 0x0 0x0 0x0 0x0 0x0" && cmp -s "$WORK/sig.offload" "$WORK/sig.drive.real" &&
    expect_stat calls C_Sign 5 && expect_stat offload_signs 1 && expect_stat offload_replays 4'
fresh
check "offload: new inputs go to SoftHSM2 (3 real signatures), the repeated one is replayed" eval '
    FAULTP11_QUIRKS=offload drive "sign 1" "sign-new 3" "sign 2" &&
    expect_drive "sign: 0x0" "sign-new: 0x0 0x0 0x0" "sign: 0x0 0x0" &&
    expect_stat offload_signs 4 && expect_stat offload_replays 2'
fresh
check "offload: a closed session forgets the validation: the next C_SignInit/C_Sign are real" eval '
    FAULTP11_QUIRKS=offload drive "sign 2" "open 1" "sign 1" &&
    expect_drive "sign: 0x0 0x0" "open: 0x0" "sign: 0x0" &&
    expect_stat offload_signs 2 && expect_stat offload_replays 1'
fresh
schedule "C_Sign delay 100ms" "C_Sign every 2 rv CKR_DEVICE_ERROR"
# A failed sign makes p11drive replace its session (validation forgotten): calls 1 and 3 are
# real; 2 and 4 (whose answers the fault drops, ending the operation) are replays.
check "offload: the schedule still applies to replays (every call delayed, every 2nd fails)" eval '
    FAULTP11_QUIRKS=offload drive "sign 4" && expect_drive "sign: 0x0 0x30 0x0 0x30" &&
    expect_stat delayed C_Sign 4 && expect_stat injected C_Sign 2 &&
    expect_stat offload_signs 2 && expect_stat offload_replays 2'
fresh
# How many of the first signs race to the real module depends on the threads' timing (a sign
# deferred before another thread stored its signature goes real): only the sum is exact.
check "offload: 4 threads x 50 signs: all 200 succeed and equal, replays + real = 200" eval '
    FAULTP11_QUIRKS=offload drive "threads 4 50" && expect_drive "threads: ok=200 failed=0" &&
    r=$(stat_value offload_replays) && n=$(stat_value offload_signs) &&
    [ "$n" -ge 1 ] && [ "$r" -ge 1 ] && [ $((r + n)) -eq 200 ]'
check "offload: an unknown quirk is still refused, and the message lists offload" eval '
    fresh; ! FAULTP11_QUIRKS=offlaod drive "sign 1" && grep -q "claims-local, offload" "$WORK/drive.err"'

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
