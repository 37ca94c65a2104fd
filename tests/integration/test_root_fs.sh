#!/bin/bash
# What itl-signd does to files as root, next to a hostile service user (issue 12):
#   1. started as root with run-as, it never chowns or chmods a file the service user can
#      swap for a link: a process of the service user renames the socket and the audit log
#      away the moment they appear and puts links to a root-owned canary in their place, over
#      many starts; the canary's owner, mode and content never change;
#   2. an existing 0666 audit log is narrowed to 0640 and given to the service user; a log of
#      another user and an audit dir writable by others are refused, at start and at SIGHUP;
#   3. refused requests from one peer are counted, not written one line each: the lines are
#      bounded and the summary counts add up to every refusal.
# Runs as root (CI); builds nothing.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it switches uids with setpriv"
svc_init
svc_make_token
svc_test_user
uid=$(id -u "$TEST_USER")
gid=$(id -g "$TEST_USER")
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"; }

for label in CallManager ITLRecovery; do
    "$CLI" "${TOK[@]}" key generate --label "$label" --subject "CN=$label-fs,O=test" \
        >>"$T/keygen.log" 2>&1 || { cat "$T/keygen.log"; fail "key generate $label"; }
done
chown -R "$TEST_USER" "$T/token" # SoftHSM2 keeps its files per uid (pkcs11-notes P2)
chown root "$ITL_PIN_FILE" # read as root before the drop: root's or the reader's only
chmod 0755 "$T/token"

ACCESS="access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }
  - { user: $TEST_USER, allow: [sign, status] }
run-as: { user: $TEST_USER }"
CFG=$T/fs.yaml
svc_config "$CFG" "$ACCESS"
# socket.group: root also chowns the socket, the step the attack aims at with the chmod.
sed -i 's/  mode: "0660"/  mode: "0666"\n  group: nogroup/' "$CFG"
RUN=$T/run LOG=$T/log
mkdir -p "$RUN" "$LOG" "$T/state"
chown "$TEST_USER:$gid" "$RUN" "$LOG" "$T/state" # what a first start makes them
chmod 0750 "$RUN" "$LOG" "$T/state"
chmod 0755 "$RUN" # the test user's clients reach the socket

# ---- 1. the symlink race, as a real attack ----
CANARY=$T/canary
echo "root:secret-hash:19000:0:99999:7:::" >"$CANARY"
chmod 0600 "$CANARY"
canary_state() { stat -c '%u:%g %a' "$CANARY" && sha256sum <"$CANARY"; }
want=$(canary_state)
# The attacker: a tight loop as the service user that moves the socket and the audit log away
# as soon as they exist and plants links to the canary under their names.
cat >"$T/attack.py" <<'EOF'
import os, sys
canary, stop = sys.argv[1], sys.argv[2]
names = [(os.path.join(d, n), os.path.join(d, ".moved-" + n)) for d, n in
         ((sys.argv[3], "socket"), (sys.argv[4], "audit.log"))]
while not os.path.exists(stop) and os.path.exists(canary):  # ends with the test's dir too
    for path, moved in names:
        try:
            os.rename(path, moved)
        except OSError:
            continue
        try:
            os.symlink(canary, path)
        except OSError:
            pass
EOF
chmod 0644 "$T/attack.py"
# setpriv itself (not the as_user function, a subshell): $! must be the attacker.
setpriv --reuid="$uid" --regid="$gid" --clear-groups \
    "$PY" "$T/attack.py" "$CANARY" "$T/attack.stop" "$RUN" "$LOG" &
attacker=$!
SVC_EXTRA_PIDS="$attacker"
TRIES=${ROOT_FS_TRIES:-200} # 0: skip the race (to see the later checks fail on an old build)
started=0 refused=0 changed=0
for i in $(seq 1 "$TRIES"); do
    rm -f "$RUN/socket" "$LOG/audit.log" # the links of the last round
    : >"$T/try.log" # before the start: the service's own redirection may come after the first grep
    "$SIGND" --config "$CFG" --foreground >>"$T/try.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 300); do # 30 s at most: a deadlock guard
        grep -q "serving on" "$T/try.log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    if grep -q "serving on" "$T/try.log"; then started=$((started + 1)); else refused=$((refused + 1)); fi
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    cat "$T/try.log" >>"$T/signd.log"
    if [ "$(canary_state)" != "$want" ]; then
        changed=$i
        break
    fi
done
touch "$T/attack.stop"
wait "$attacker"
SVC_EXTRA_PIDS=""
[ "$changed" -eq 0 ] ||
    fail "start $changed of $TRIES: root changed the canary through a link the service user planted: $(ls -la "$CANARY" 2>&1), was $(echo "$want" | head -n 1)"
[ "$TRIES" -eq 0 ] || [ "$started" -ge 1 ] ||
    fail "no start reached 'serving on' in $TRIES tries (refused $refused)"
ok "$TRIES starts as root with run-as while $TEST_USER swaps socket and audit log for links: the canary never changed ($started served, $refused refused)"
figures "symlink race: $TRIES starts, $started served, $refused refused, canary unchanged"
rm -f "$RUN"/.moved-* "$LOG"/.moved-* "$RUN/socket" "$LOG/audit.log"
leftover=$(find "$RUN" -name '.itl-signd.bind.*' | wc -l)
[ "$leftover" -eq 0 ] || fail "$leftover private bind directories left in $RUN"

# ---- 2. the audit log's owner and mode, the audit dir ----
echo '{"earlier":"record"}' >"$LOG/audit.log"
chmod 0666 "$LOG/audit.log"
svc_start "$CFG"
[ "$(stat -c '%a %U' "$LOG/audit.log")" = "640 $TEST_USER" ] ||
    fail "an existing 0666 audit log is now $(stat -c '%a %U' "$LOG/audit.log"), want 640 $TEST_USER"
# after rotation: a 0666 log planted in its place is narrowed too; a dir others can write is
# refused at SIGHUP (the old log stays in use)
mv "$LOG/audit.log" "$LOG/audit.log.1"
as_user sh -c "umask 0 && touch '$LOG/audit.log' && chmod 0666 '$LOG/audit.log'"
kill -HUP "$SVC_PID"
for _ in $(seq 1 1200); do grep -q "audit log $LOG/audit.log reopened" "$T/signd.log" && break; sleep 0.05; done
[ "$(stat -c %a "$LOG/audit.log")" = 640 ] || fail "SIGHUP kept a 0666 audit log ($(stat -c %a "$LOG/audit.log"))"
mv "$LOG/audit.log" "$LOG/audit.log.2"
chmod 0777 "$LOG"
kill -HUP "$SVC_PID"
for _ in $(seq 1 1200); do grep -q "cannot reopen the audit log" "$T/signd.log" && break; sleep 0.05; done
grep -q "cannot reopen the audit log.*$LOG is writable by others" "$T/signd.log" ||
    fail "SIGHUP accepted an audit dir writable by others: $(tail -n 3 "$T/signd.log")"
[ ! -e "$LOG/audit.log" ] || fail "a log was created in a dir writable by others"
"$CLI" --socket "$RUN/socket" status >/dev/null 2>&1 || fail "status after a refused reopen"
grep -q '"op":"status"' "$LOG/audit.log.2" || fail "the old log is no longer written after a refused reopen"
svc_stop
rc=0
out=$(timeout 20 "$SIGND" --config "$CFG" --foreground 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"audit log directory $LOG is writable by others"*"chmod o-w $LOG"* ]] ||
    fail "start with an audit dir writable by others: exit $rc: $out"
rc=0
out=$("$SIGND" --config "$CFG" --check-config 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"audit log directory $LOG is writable by others"* ]] ||
    fail "--check-config passed an audit dir writable by others: exit $rc: $out"
chmod 0750 "$LOG"
touch "$LOG/audit.log" && chown nobody "$LOG/audit.log"
rc=0
out=$(timeout 20 "$SIGND" --config "$CFG" --foreground 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"audit log $LOG/audit.log belongs to user nobody"* ]] ||
    fail "start with an audit log of another user: exit $rc: $out"
[ "$(stat -c %U "$LOG/audit.log")" = nobody ] || fail "root took over another user's audit log"
rm -f "$LOG/audit.log"
ok "audit log: 0666 narrowed to 0640 and given to $TEST_USER (start and SIGHUP); a dir writable by others and another user's log are refused, naming the fix"

# ---- 3. refused requests are counted, not written one line each ----
svc_start "$CFG"
N=1000
cat >"$T/deny.py" <<'EOF'
import sys
wire, sock, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
exec(open(wire).read().rsplit("main()", 1)[0])  # the frame helpers, without their main()
denied = 0
for _ in range(n):
    s = connect(sock)
    s.sendall(request(OPS["build"]))  # not in the test user's rules
    denied += reply(s)[0x41][0] != 0
    s.close()
print(denied)
EOF
chmod 0644 "$T/deny.py"
before=$(wc -l <"$LOG/audit.log")
denied=$(as_user "$PY" "$T/deny.py" "$T/wire.py" "$RUN/socket" "$N") || fail "the denied requests"
[ "$denied" -eq "$N" ] || fail "$denied of $N build requests denied"
svc_stop # writes the summary of the interval still open
tail -n +$((before + 1)) "$LOG/audit.log" >"$T/deny.log"
"$PY" - "$T/deny.log" "$uid" "$N" <<'EOF' || fail "denials: $(tail -n 3 "$T/deny.log")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
uid, n = int(sys.argv[2]), int(sys.argv[3])
mine = [r for r in recs if r["uid"] == uid]
lines = [r for r in mine if r["result"] == "denied" and r["op"] != "denied-summary"]
counted = sum(r["count"] for r in mine if r["op"] == "denied-summary")
assert len(lines) + counted == n, (len(lines), counted, n)
# 60 per minute and one summary each: a run of up to 4 minutes stays below n / 4
assert len(mine) <= n // 4, len(mine)
print("%d lines, %d counted" % (len(lines), counted))
EOF
ok "$N denied requests from uid $uid: $(wc -l <"$T/deny.log") audit lines, the summaries count the rest"
