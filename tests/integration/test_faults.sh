#!/bin/bash
# Faults (issue 9.1): itl-signd on the fault-injecting PKCS#11 module (tests/faultp11), which
# forwards to SoftHSM2 and fails calls on a schedule. Under each schedule several clients send
# sign / reset / status requests through the socket; every request must either succeed with a
# signature that verifies with the signer's certificate (and the payload intact), or fail with
# a status and a message that say what happened, within the retry budget. Once the fault is
# gone, requests succeed again. The service never exits or hangs (status answers), its file
# descriptors stay flat, and after CKR_PIN_INCORRECT the PIN is sent at most once.
# STRESS=1: more requests per schedule.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_hardening.sh"

svc_need_root "like test_service.sh"
hard_init
hard_keys
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || fail "$FAULT not built (make BUILD=... all)"
# The service's environment: the real module behind the fault module, the schedule, the counters.
export FAULTP11_MODULE=$ITL_MODULE FAULTP11_CONTROL=$T/control FAULTP11_STATS=$T/stats
SOCK=$T/run/socket
ACCESS="access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }"
CFG=$T/faults.yaml
svc_config "$CFG" "$ACCESS"
sed -i "s|^  module: .*|  module: $FAULT|; s|pool-size: 2|pool-size: 4|" "$CFG"

CLIENTS=4
PER_CLIENT=40
[ "$STRESS" = 1 ] && PER_CLIENT=500
# No request may take longer: the retry budget is a few rebuilds, not a hang. A deadlock guard,
# generous for a loaded 2-core host under ASan (requests there take milliseconds).
BUDGET_S=30

# schedule LINE...: the control file holds these lines, replaced atomically.
schedule() {
    printf '%s\n' "$@" >"$T/control.new" && mv "$T/control.new" "$T/control"
}
# fp_stat KEY [FUNCTION]: a counter of the fault module (0 when absent; without FUNCTION the
# sum over all functions).
fp_stat() {
    local v
    if [ $# -eq 2 ]; then
        v=$(awk -v k="$1" -v f="$2" '$1 == k && $2 == f { print $3 }' "$T/stats")
    else
        # a per-function counter summed over all functions, or a plain counter
        v=$(awk -v k="$1" '$1 == k { s += (NF == 3 ? $3 : $2) } END { print s + 0 }' "$T/stats")
    fi
    echo "${v:-0}"
}
# load NAME [hard.py options]: CLIENTS clients in parallel; totals in $T/NAME.json.
load() {
    local name=$1 c pids=()
    shift
    mkdir -p "$T/$name"
    for c in $(seq 1 "$CLIENTS"); do
        "$PY" "$T/hard.py" run "$SOCK" "$name$c" "$T/$name" --tftp "$T/tftp.pub" \
            --recovery "$T/recovery.pub" --itl "$T/ITLFile.tlv" "$@" >/dev/null 2>"$T/$name/$c.err" &
        pids+=($!)
    done
    for c in "${pids[@]}"; do wait "$c" || fail "a load client of '$name' crashed: $(cat "$T/$name"/*.err)"; done
    "$PY" "$T/hard.py" check "$T/$name" >"$T/$name.json"
}
# total NAME KEY: a figure of a load's totals.
total() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/$1.json" "$2"; }
# expect_clean NAME: no unexpected outcome, latency within the budget.
expect_clean() {
    [ "$(total "$1" unexpected)" -eq 0 ] ||
        fail "$1: unexpected outcomes: $(grep -h '"problem"' "$T/$1"/*.jsonl | head -5)"
    "$PY" -c 'import json,sys; t=json.load(open(sys.argv[1])); sys.exit(t["max_latency_s"] > float(sys.argv[2]))' \
        "$T/$1.json" "$BUDGET_S" || fail "$1: a request took $(total "$1" max_latency_s)s (budget ${BUDGET_S}s)"
}
# recovered NAME: after the fault, a clean load where every request succeeds and verifies.
recovered() {
    load "$1-after" --requests 10 --mix sign:2,reset:1,status:1
    expect_clean "$1-after"
    [ "$(total "$1-after" ok)" -eq $((CLIENTS * 10)) ] ||
        fail "$1: after the fault cleared only $(total "$1-after" ok) of $((CLIENTS * 10)) requests succeeded"
}

schedule "# empty: forward everything"
svc_start "$CFG"
load warmup --requests 5 --mix sign:1,reset:1,status:1
expect_clean warmup
FDS0=$(hard_quiet_fds)
requests=0 faults=0

# ---- 1. every 7th C_Sign loses its session ----
before=$(fp_stat injected C_Sign)
schedule "C_Sign every 7 rv CKR_SESSION_HANDLE_INVALID"
load sessinv --requests "$PER_CLIENT" --mix sign:3,reset:1,status:1 --allow 3 --save-every 8
expect_clean sessinv
n=$(($(fp_stat injected C_Sign) - before))
[ "$n" -gt 0 ] || fail "sessinv: no fault was injected"
[ "$(total sessinv verified)" -gt 0 ] || fail "sessinv: nothing verified"
trusted=$(hard_verify_saved "$T/sessinv")
schedule ""
recovered sessinv
hard_alive
rebuilds=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"]["rebuilds"])' "$T/alive.json")
[ "$rebuilds" -gt 0 ] || fail "sessinv: the service reports no session rebuild after $n lost sessions"
ok "every 7th C_Sign -> SESSION_HANDLE_INVALID ($n injected): $(total sessinv ok) of $(total sessinv requests) requests ok ($(total sessinv verified) signatures verified), $(total sessinv allowed) failed with a message; $trusted sampled outputs pass itl-sign verify --trust; $rebuilds rebuilds; all succeed after"
requests=$((requests + $(total sessinv requests) + $(total sessinv-after requests)))
faults=$((faults + n))

# ---- 2. the token is pulled: C_Sign -> DEVICE_REMOVED, then absent, then back ----
# In "absent" the module answers like a removed token: operations DEVICE_REMOVED, opening a
# session TOKEN_NOT_PRESENT, no slot with a token. Every step waits on what the service and the
# clients report (bounded waits are deadlock guards only): a busy host makes the steps longer,
# never the checks wrong.
before=$(fp_stat injected)
rm -f "$T/stop"
load removed --until "$T/stop" --pace 5 --mix sign:3,reset:1,status:1 --allow 3,4 &
loader=$!
# removed_seen PYTHON-CONDITION: the clients' records so far satisfy it (r: one record).
removed_seen() {
    "$PY" - "$T/removed" "$1" <<'EOF'
import glob, json, sys
rs = []
for p in glob.glob(sys.argv[1] + "/*.jsonl"):
    for line in open(p):
        try:
            rs.append(json.loads(line))
        except ValueError:
            pass  # a line being written
sys.exit(0 if eval(sys.argv[2], {"rs": rs}) else 1)
EOF
}
# wait_for WHAT CMD...: CMD succeeds within 120 s (a guard), else fail naming WHAT.
wait_for() {
    local what=$1 i
    shift
    for i in $(seq 1 1200); do
        "$@" && return 0
        kill -0 "$SVC_PID" 2>/dev/null || fail "itl-signd exited while waiting for $what"
        hard_sleep_ms 100
    done
    fail "no $what within 120 s"
}
wait_for "20 answered requests before the removal" removed_seen "len(rs) >= 20"
date +%s.%N >"$T/absent.from"
schedule "absent"
# While the token is away the service still answers, and says so.
absent_status() {
    "$CLI" --socket "$SOCK" status >"$T/absent-status.json" 2>"$T/absent-status.err" ||
        fail "status while the token was absent: $(cat "$T/absent-status.err")"
    "$PY" -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["token"]["present"] is not False)' \
        "$T/absent-status.json"
}
wait_for "status 'present: false' while the token is absent" absent_status
from=$(cat "$T/absent.from")
wait_for "'token not present' answer (status 4) during the removal" \
    removed_seen "any(r.get('status') == 4 and r['t0'] >= $from for r in rs)"
schedule ""
date +%s.%N >"$T/absent.to"
to=$(cat "$T/absent.to")
# Back: once one request that started after the token came back succeeded...
wait_for "successful request after the token came back" \
    removed_seen "any(r.get('status') == 0 and r['op'] != 'status' and r['t0'] > $to for r in rs)"
back=$("$PY" - "$T/removed" "$to" <<'EOF'
import glob, json, sys
print(min(r["t1"] for p in glob.glob(sys.argv[1] + "/*.jsonl") for r in map(json.loads, open(p))
          if r.get("status") == 0 and r["op"] != "status" and r["t0"] > float(sys.argv[2])))
EOF
)
# ...every later one must succeed: 40 more requests of them.
wait_for "40 requests after the recovery" removed_seen "sum(r['t0'] > $back for r in rs) >= 40"
touch "$T/stop"
wait "$loader" || fail "the load during the removal failed"
expect_clean removed
"$PY" - "$T/removed" "$from" "$to" "$back" >"$T/removed.check" 2>&1 <<'EOF' ||
import glob, json, sys
d, t_from, t_to, t_back = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
during = after = after_ok = not_present = 0
for path in glob.glob(d + "/*.jsonl"):
    for line in open(path):
        r = json.loads(line)
        st = r.get("status")
        if r["t0"] > t_back:  # after the service served the first request since the token came back
            after += 1
            if st != 0:
                raise SystemExit("after the token came back: %s" % line)
            after_ok += 1
        if st == 4:
            if "not present" not in r["msg"]:
                raise SystemExit("status 4 without 'not present': %s" % line)
            if not (t_from <= r["t1"] and r["t0"] <= t_back):
                raise SystemExit("'not present' outside the removal: %s" % line)
            not_present += 1
        if st not in (0, None) and r["op"] != "status" and t_from <= r["t1"] and r["t0"] <= t_back:
            during += 1
if not_present == 0:
    raise SystemExit("no request was answered 'token not present' during the removal")
if after == 0:
    raise SystemExit("no request after the token came back")
print(during, not_present, after_ok)
EOF
    fail "removed: $(cat "$T/removed.check")"
read -r during not_present after_ok <"$T/removed.check"
n=$(($(fp_stat injected) - before))
ok "token removed under load until the clients saw it ($n calls failed by the module): $during requests failed during the removal, $not_present of them 'token not present' (status 4); status answered 'present: false'; all $after_ok requests after the first success since it came back succeeded and verified"
recovered removed
requests=$((requests + $(total removed requests) + $(total removed-after requests)))
faults=$((faults + n))

# ---- 3. every 2nd C_OpenSession -> SESSION_COUNT, while sessions are being lost ----
before_open=$(fp_stat injected C_OpenSession) before_sign=$(fp_stat injected C_Sign)
schedule "C_OpenSession every 2 rv CKR_SESSION_COUNT" "C_Sign every 5 rv CKR_SESSION_HANDLE_INVALID"
load sesscount --requests "$PER_CLIENT" --mix sign:3,reset:1,status:1 --allow 3 --save-every 8
expect_clean sesscount
n_open=$(($(fp_stat injected C_OpenSession) - before_open))
n_sign=$(($(fp_stat injected C_Sign) - before_sign))
[ "$n_open" -gt 0 ] || fail "sesscount: no C_OpenSession was refused (rebuilds never opened a session?)"
trusted=$(hard_verify_saved "$T/sesscount")
schedule ""
recovered sesscount
ok "every 2nd C_OpenSession -> SESSION_COUNT ($n_open injected, with $n_sign lost sessions): $(total sesscount ok) of $(total sesscount requests) ok and verified, $(total sesscount allowed) failed with a message; $trusted sampled outputs pass itl-sign verify --trust; all succeed after"
requests=$((requests + $(total sesscount requests) + $(total sesscount-after requests)))
faults=$((faults + n_open + n_sign))

# ---- 4. a slow token: every C_Sign takes 20 ms more ----
before=$(fp_stat delayed C_Sign)
schedule "C_Sign always delay 20ms"
load slow --requests "$((PER_CLIENT / 2))" --mix sign:3,reset:1,status:1
expect_clean slow
[ "$(total slow ok)" -eq "$(total slow requests)" ] || fail "slow: not every request succeeded"
n=$(($(fp_stat delayed C_Sign) - before))
[ "$n" -gt 0 ] || fail "slow: no C_Sign was delayed"
"$PY" - "$T/slow" <<'EOF' || fail "slow: a signing request answered faster than the token"
import glob, json, sys
for p in glob.glob(sys.argv[1] + "/*.jsonl"):
    for line in open(p):
        r = json.loads(line)
        if r["op"] in ("sign", "reset") and r["t1"] - r["t0"] < 0.02:
            raise SystemExit(line)
EOF
schedule ""
ok "every C_Sign delayed 20 ms ($n delayed): all $(total slow requests) requests ok and verified, none faster than the token, max latency $(total slow max_latency_s)s"
requests=$((requests + $(total slow requests)))

# ---- the service survived all of it ----
hard_alive
FDS1=$(hard_settle_fds "$FDS0")
[ "$FDS1" -le "$FDS0" ] || fail "file descriptors grew from $FDS0 to $FDS1 over the fault schedules"
ok "itl-signd still runs and answers status; file descriptors $FDS0 before, $FDS1 after"

# ---- 5. PIN_INCORRECT after a re-login: the PIN is sent at most once more ----
logins0=$(fp_stat login_attempts)
schedule "absent"
load pin-absent --requests 2 --mix sign:1 --allow 3,4
schedule "C_Login always rv CKR_PIN_INCORRECT"
load pinbad --requests 10 --mix sign:2,status:1 --allow 3,4
expect_clean pinbad
[ "$(total pinbad allowed)" -gt 0 ] || fail "pinbad: every request succeeded although the login was refused"
hard_alive
"$PY" - "$T/pinbad" <<'EOF' || fail "pinbad: a failure does not name the PIN problem"
import glob, json, sys
for p in glob.glob(sys.argv[1] + "/*.jsonl"):
    for line in open(p):
        r = json.loads(line)
        if r["status"] != 0 and "PIN" not in r["msg"]:
            raise SystemExit(line)
EOF
# The token would take the PIN again now; the service must still not send it.
schedule ""
load pinafter --requests 5 --mix sign:1 --allow 3
[ "$(total pinafter ok)" -eq 0 ] || fail "signed after a rejected PIN without being restarted"
logins=$(($(fp_stat login_attempts) - logins0))
[ "$logins" -le 1 ] || fail "the PIN was sent $logins times after CKR_PIN_INCORRECT (at most 1)"
ok "re-login refused with PIN_INCORRECT: $(total pinbad allowed) requests failed naming the PIN, $logins login attempt(s) in all (also after the fault cleared), status still answers"
requests=$((requests + $(total pinbad requests) + $(total pin-absent requests) + $(total pinafter requests)))
faults=$((faults + 1))
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd exited $SVC_RC after SIGTERM (86: LeakSanitizer found a leak)"

# ---- 6. PIN_INCORRECT at startup: the service fails clearly (or fails requests), one try ----
rm -f "$T/stats"
schedule "C_Login always rv CKR_PIN_INCORRECT"
: >"$T/signd-pin.log"
"$SIGND" --config "$CFG" --foreground >"$T/signd-pin.log" 2>&1 &
pin_pid=$!
# It either exits or starts serving: wait for one of the two (120 s guard), not for a time.
for _ in $(seq 1 1200); do
    kill -0 "$pin_pid" 2>/dev/null || break
    [ -S "$SOCK" ] && "$CLI" --socket "$SOCK" status >/dev/null 2>&1 && break
    hard_sleep_ms 100
done
if kill -0 "$pin_pid" 2>/dev/null; then
    # Still running: then every request must fail, saying why.
    SVC_PID=$pin_pid
    load pinstart --requests 3 --mix sign:1 --allow 3,4
    expect_clean pinstart
    [ "$(total pinstart ok)" -eq 0 ] || fail "signed with a refused PIN"
    svc_stop
    how="kept running and refused every request"
else
    rc=0
    wait "$pin_pid" || rc=$?
    [ "$rc" -ne 0 ] || fail "itl-signd exited 0 with a refused PIN"
    [ "$rc" -ne 86 ] || fail "LeakSanitizer: itl-signd leaked on the wrong-PIN exit: $(cat "$T/signd-pin.log")"
    grep -qi 'pin' "$T/signd-pin.log" || fail "the startup failure does not name the PIN: $(cat "$T/signd-pin.log")"
    how="refused to start (exit $rc): $(grep -i pin "$T/signd-pin.log" | head -1)"
fi
attempts=$(fp_stat login_attempts)
[ "$attempts" -le 1 ] || fail "the PIN was sent $attempts times at startup after CKR_PIN_INCORRECT"
[ "$(fp_stat injected C_Login)" -eq "$attempts" ] || fail "stats: logins $attempts, injected $(fp_stat injected C_Login)"
! grep -qF "$(cat "$ITL_PIN_FILE")" "$T/signd-pin.log" "$T/signd.log" || fail "the PIN is in the service log"
ok "C_Login -> PIN_INCORRECT at startup: $how; PIN sent $attempts time(s)"

figures "faults: requests $requests, faults injected $faults (plus a token removal), clients $CLIENTS x $PER_CLIENT per schedule, fds $FDS0 before / $FDS1 after"
