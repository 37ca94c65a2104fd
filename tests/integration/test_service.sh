#!/bin/bash
# itl-signd end to end: a SoftHSM2 token in a temp dir, the service on a temp socket, every
# command through the client, outputs verified with `itl-sign verify` and with OpenSSL over
# bytes this test extracts itself. Then: access rules under another uid, unsafe directories,
# malformed frames, connection limits, 8 clients x 500 requests, SIGTERM under load, SIGHUP,
# privilege drop, daemon mode. Runs as root (CI); builds nothing.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it switches uids with setpriv"
svc_init
svc_make_token
PIN=$(cat "$ITL_PIN_FILE")
svc_test_user

# ---- keys: TFTP (CallManager) and ITL Recovery, made on the token by the key commands ----
svc_make_keys
for label in CallManager ITLRecovery; do
    pkcs11-tool --module "$ITL_MODULE" --token-label itl-svc --read-object --type cert \
        --label "$label" -o "$T/$label.der" >/dev/null 2>&1 || fail "export the $label certificate"
    openssl x509 -inform der -in "$T/$label.der" -out "$T/$label.pem" || fail "$label.der"
    openssl x509 -in "$T/$label.pem" -pubkey -noout >"$T/$label.pub" || fail "$label public key"
done
ok "keys generated on the token; certificates exported"

ACCESS="access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }
  - { user: $TEST_USER, allow: [sign, status] }"
CFG=$T/itl-signd.yaml
svc_config "$CFG" "$ACCESS"
# The socket dir exists beforehand (root, 0755) so the other uids can reach the socket; the
# socket is 0666 here: the access rules, not the file mode, are what this test exercises.
mkdir -p "$T/run" && chmod 0755 "$T/run"
sed -i 's/mode: "0660"/mode: "0666"/' "$CFG"

# ---- --check-config ----
out=$("$SIGND" --config "$CFG" --check-config 2>&1) || fail "--check-config: $out"
[ "$out" = "config OK" ] || fail "--check-config printed '$out'"
printf 'token: { uri: "pkcs11:token=x" }\nsocket:\n  path: /tmp/s\n  mode: "0660"\n  max-conections: 4\n' \
    >"$T/bad.yaml"
rc=0
out=$("$SIGND" --config "$T/bad.yaml" --check-config 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *bad.yaml:5:* ]] && [[ $out == *max-conections* ]] ||
    fail "a misspelt key: rc $rc, '$out' (want exit 1 naming line 5 and the key)"
ok "--check-config: 'config OK'; a misspelt key fails naming bad.yaml:5"

# A PIN file others can read: refused by --check-config and at start, the PIN never shown.
cp "$ITL_PIN_FILE" "$T/loose.pin" && chmod 0644 "$T/loose.pin"
sed "s|pin-file: .*|pin-file: $T/loose.pin|" "$CFG" >"$T/loose.yaml"
rc=0
out=$("$SIGND" --config "$T/loose.yaml" --check-config 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"token.pin-file $T/loose.pin"*"chmod 600"* ]] ||
    fail "--check-config passed a world-readable PIN file: rc $rc: $out"
rc=0
out=$(timeout 10 "$SIGND" --config "$T/loose.yaml" --foreground 2>&1) || rc=$?
[ "$rc" -eq 3 ] && [[ $out == *"loose.pin"* ]] && [[ $out != *"$PIN"* ]] ||
    fail "start with a world-readable PIN file: rc $rc (want 3): $out"
ok "a PIN file readable by others: --check-config fails with the fix, the service refuses to start (exit 3, not retried by systemd)"

# ---- start, status ----
svc_start "$CFG"
[ ! -e "$T/run/socket" ] || [ "$(stat -c %a "$T/run/socket")" = 666 ] || fail "socket mode"
"$CLI" --socket "$T/run/socket" status >"$T/status.json" 2>"$T/status.err" ||
    fail "itl-sign status: $(cat "$T/status.err")"
"$PY" - "$T/status.json" "$SVC_PID" <<'EOF' || fail "status JSON: $(cat "$T/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["pid"] == int(sys.argv[2]), s["pid"]
for k in ("uptime_s", "connections", "requests_total", "requests_failed"):
    assert isinstance(s[k], int), k
assert s["connections"] >= 1
assert s["token"]["present"] and s["token"]["logged_in"], s["token"]
assert s["keys"]["tftp"]["found"] and s["keys"]["recovery"]["found"], s["keys"]
EOF
ok "status through the socket: pid, uptime_s, connections, request counters, token logged in, keys found"

# ---- sign (batch), verified twice ----
mkdir -p "$T/in" "$T/out"
for i in 1 2 3; do
    printf '<device><name>SEP00112233440%d</name></device>\n' "$i" >"$T/in/SEP00112233440$i.cnf.xml"
done
# The largest config CUCM produces: 550,001 bytes in one frame.
head -c 550001 /dev/zero | tr '\0' 'x' >"$T/in/big.cnf.xml"
"$CLI" --socket "$T/run/socket" sign "$T"/in/*.cnf.xml --out-dir "$T/out" >"$T/sign.log" 2>&1 ||
    fail "sign: $(cat "$T/sign.log")"
for f in "$T"/in/*.cnf.xml; do
    sgn=$T/out/$(basename "$f").sgn
    [ -f "$sgn" ] || fail "no $sgn"
    "$CLI" verify "$sgn" --cert "$T/CallManager.pem" >/dev/null 2>&1 || fail "itl-sign verify $sgn"
    md=$(wire split "$sgn" "$T/sig.bin" "$T/signed.bin") || fail "split $sgn"
    openssl dgst "-$md" -verify "$T/CallManager.pub" -signature "$T/sig.bin" "$T/signed.bin" \
        >/dev/null || fail "openssl does not verify $sgn with the CallManager key"
    tail -c "$(stat -c %s "$f")" "$sgn" | cmp -s - "$f" || fail "$sgn does not end with $f"
done
ok "sign: 4 files (one of 550,001 bytes) verified by itl-sign verify and by openssl (CallManager key)"

# ---- build, reset, encrypt ----
S=$T/run/socket
"$CLI" --socket "$S" build --sast "$T/CallManager.pem" --sast "$T/ITLRecovery.pem" \
    --ccm-tftp "$T/CallManager.pem" -o "$T/ITLFile.tlv" >"$T/build.log" 2>&1 ||
    fail "build: $(cat "$T/build.log")"
"$CLI" verify "$T/ITLFile.tlv" >/dev/null 2>&1 || fail "itl-sign verify ITLFile.tlv"
md=$(wire split "$T/ITLFile.tlv" "$T/sig.bin" "$T/signed.bin") || fail "split ITLFile.tlv"
openssl dgst "-$md" -verify "$T/CallManager.pub" -signature "$T/sig.bin" "$T/signed.bin" \
    >/dev/null || fail "openssl: the built ITL is not signed by the TFTP key"
ok "build: ITLFile.tlv signed by the TFTP key (a SAST record of it), verified twice"

"$CLI" --socket "$S" reset "$T/ITLFile.tlv" -o "$T/reset.tlv" >"$T/reset.log" 2>&1 ||
    fail "reset: $(cat "$T/reset.log")"
# What matters for a reset: a phone that holds the old ITL accepts the new one.
"$CLI" verify "$T/reset.tlv" --trust "$T/ITLFile.tlv" >/dev/null 2>&1 ||
    fail "itl-sign verify reset.tlv --trust ITLFile.tlv"
md=$(wire split "$T/reset.tlv" "$T/sig.bin" "$T/signed.bin") || fail "split reset.tlv"
openssl dgst "-$md" -verify "$T/ITLRecovery.pub" -signature "$T/sig.bin" "$T/signed.bin" \
    >/dev/null || fail "openssl: the reset ITL is not signed by the recovery key"
ok "reset: re-signed by the ITL Recovery key; accepted by a phone holding the old ITL; openssl agrees"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/phone.key" -out "$T/phone.pem" \
    -subj "/CN=SEP001122334455" -days 30 >/dev/null 2>&1 || fail "phone certificate"
cp "$T/in/SEP001122334401.cnf.xml" "$T/SEP001122334455.cnf.xml"
mkdir -p "$T/enc"
"$CLI" --socket "$S" encrypt "$T/SEP001122334455.cnf.xml" --phone-cert "$T/phone.pem" \
    -o "$T/enc" >"$T/enc.log" 2>&1 || fail "encrypt: $(cat "$T/enc.log")"
for f in SEP001122334455.cnf.xml.enc.sgn SEP001122334455.cnf.xml.sgn; do
    [ -f "$T/enc/$f" ] || fail "encrypt wrote no $f"
    "$CLI" verify "$T/enc/$f" --trust "$T/ITLFile.tlv" >/dev/null 2>&1 ||
        fail "itl-sign verify $f --trust ITLFile.tlv"
    md=$(wire split "$T/enc/$f" "$T/sig.bin" "$T/signed.bin") || fail "split $f"
    openssl dgst "-$md" -verify "$T/CallManager.pub" -signature "$T/sig.bin" "$T/signed.bin" \
        >/dev/null || fail "openssl does not verify $f"
done
ok "encrypt: .enc.sgn and its short .sgn, accepted against the ITL and verified by openssl"

# ---- access rules under other uids ----
rc=0
setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$CLI" --socket "$S" status >/dev/null 2>"$T/denied.err" || rc=$?
[ "$rc" -eq 5 ] || fail "nobody's status: exit $rc, want 5 (denied): $(cat "$T/denied.err")"
# A peer without rules is denied at accept, before its request is read (issue 12).
grep -q '"uid":65534,.*"op":"connection".*"result":"denied"' "$T/log/audit.log" ||
    fail "the denial of uid 65534 is not in the audit log"
rc=0
setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$CLI" --socket "$S" sign "$T/in/SEP001122334401.cnf.xml" --out-dir /tmp >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 5 ] || fail "nobody's sign: exit $rc, want 5"
ok "a peer not in the access rules (nobody) is refused (exit 5) and the denial is audited"

uid=$(id -u "$TEST_USER")
mkdir -p "$T/user-out" && chown "$TEST_USER" "$T/user-out"
setpriv --reuid="$TEST_USER" --regid="$(id -g "$TEST_USER")" --clear-groups \
    "$CLI" --socket "$S" sign "$T/in/SEP001122334402.cnf.xml" --out-dir "$T/user-out" \
    >/dev/null 2>"$T/user.err" || fail "$TEST_USER may sign: $(cat "$T/user.err")"
[ -f "$T/user-out/SEP001122334402.cnf.xml.sgn" ] || fail "$TEST_USER's output is missing"
rc=0
setpriv --reuid="$TEST_USER" --regid="$(id -g "$TEST_USER")" --clear-groups \
    "$CLI" --socket "$S" reset "$T/ITLFile.tlv" -o "$T/user-out/r.tlv" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 5 ] || fail "$TEST_USER's reset: exit $rc, want 5"
[ ! -e "$T/user-out/r.tlv" ] || fail "a denied reset left an output"
grep -q "\"uid\":$uid,.*\"op\":\"reset\".*\"result\":\"denied\"" "$T/log/audit.log" ||
    fail "$TEST_USER's denied reset is not audited"
ok "$TEST_USER (uid $uid) may sign but not reset: the rules are per operation, and audited"

# ---- malformed frames ----
kinds="garbage version type oversize truncated short-header field unknown-field no-op bad-op bad-string"
before=$(audit_count '"op":"protocol"')
n=0
for k in $kinds; do
    out=$(wire raw "$S" "$k") || fail "malformed frame '$k': no error reply ($out)"
    [ "${out%% *}" = 7 ] || fail "malformed frame '$k': status ${out%% *}, want 7 (protocol): $out"
    wire ping "$S" || fail "the service stopped serving after the malformed frame '$k'"
    n=$((n + 1))
done
after=$(audit_count '"op":"protocol"')
[ $((after - before)) -eq "$n" ] || fail "$((after - before)) protocol audit records for $n bad frames"
kill -0 "$SVC_PID" || fail "itl-signd died"
ok "$n malformed frames (garbage, wrong version/type, oversize, truncated, bad fields): status 7, audited, still serving"
figures "malformed frames: $n, protocol audit records: $((after - before))"

# ---- 8 clients x 500 sign requests ----
"$PY" - "$T/load" <<'EOF' || fail "cannot write the load inputs"
import os, sys
for c in range(1, 9):
    os.makedirs("%s/in%d" % (sys.argv[1], c))
    os.makedirs("%s/out%d" % (sys.argv[1], c))
    for i in range(1, 501):
        with open("%s/in%d/SEP%d%07d.cnf.xml" % (sys.argv[1], c, c, i), "w") as f:
            f.write("<device><n>%d-%d</n></device>\n" % (c, i))
EOF
# Outcome records: a lone request's intent record ("result":"signing") is not one.
outcome_count() { grep -vc '"result":"signing"' "$T/log/audit.log" 2>/dev/null || true; }
before=$(outcome_count)
start=$(date +%s.%N)
pids=()
for c in 1 2 3 4 5 6 7 8; do
    "$CLI" --quiet --socket "$S" sign "$T/load/in$c"/*.cnf.xml --out-dir "$T/load/out$c" --jobs 2 \
        >"$T/load/client$c.log" 2>&1 &
    pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
secs=$(elapsed "$start")
[ "$failed" -eq 0 ] || fail "$failed of 8 load clients failed: $(cat "$T"/load/client*.log | head -5)"
outputs=$(find "$T/load" -name '*.sgn' | wc -l)
[ "$outputs" -eq 4000 ] || fail "$outputs outputs, want 4000"
"$PY" "$T/wire.py" verify "$T/CallManager.der" "$T"/load/out*/*.sgn >"$T/load/verify.log" ||
    fail "load outputs do not verify: $(head -3 "$T/load/verify.log")"
after=$(outcome_count)
[ $((after - before)) -eq 4000 ] || fail "$((after - before)) outcome records for 4000 requests"
[ "$(grep -v '"result":"signing"' "$T/log/audit.log" | tail -n 4000 | grep -c '"op":"sign".*"result":"ok"')" -eq 4000 ] ||
    fail "the 4000 outcome records are not all successful signs"
ok "8 clients x 500 sign requests: all succeeded, all 4000 outputs verify, exactly 4000 outcome records (a request with nothing pipelined behind it also has its intent record)"
figures "load: 4000 requests in ${secs}s ($(awk -v s="$secs" 'BEGIN { printf "%d", 4000 / s }') req/s), 8 clients x 2 connections each"

# ---- SIGHUP reopens the audit log ----
mv "$T/log/audit.log" "$T/log/audit.log.1"
lines=$(wc -l <"$T/log/audit.log.1")
kill -HUP "$SVC_PID"
for i in $(seq 1 600); do [ -f "$T/log/audit.log" ] && break; sleep 0.1; done # 60 s guard
"$CLI" --socket "$S" status >/dev/null 2>&1 || fail "status after SIGHUP"
[ -f "$T/log/audit.log" ] || fail "no new audit log after SIGHUP"
# Two records: the reload's own (SIGHUP also reloads the config: test_reload.sh) and the status.
[ "$(wc -l <"$T/log/audit.log")" -eq 2 ] || fail "the new audit log has $(wc -l <"$T/log/audit.log") lines, want 2"
grep -q '"op":"reload".*"result":"ok"' "$T/log/audit.log" || fail "no reload record in the new log"
grep -q '"op":"status"' "$T/log/audit.log" || fail "the status request is not in the new log"
[ "$(wc -l <"$T/log/audit.log.1")" -eq "$lines" ] || fail "the rotated log still grew"
ok "SIGHUP: the reload record and the next request land in a new audit log; the rotated one is untouched"

# ---- SIGTERM under load ----
before=$(audit_count)
pids=()
for c in 1 2 3 4 5 6 7 8; do
    rm -rf "$T/load/out$c" && mkdir -p "$T/load/out$c"
    "$CLI" --quiet --socket "$S" sign "$T/load/in$c"/*.cnf.xml --out-dir "$T/load/out$c" --jobs 2 \
        >"$T/load/term$c.log" 2>&1 &
    pids+=($!)
done
# Stop once the load is well under way, however fast this machine signs (a 120 s guard).
for i in $(seq 1 2400); do
    [ "$(find "$T/load" -name '*.sgn' | wc -l)" -ge 200 ] && break
    sleep 0.05
done
term_at=$(date +%s.%N)
svc_stop
stop_secs=$(elapsed "$term_at")
[ "$SVC_RC" -eq 0 ] || fail "itl-signd exited $SVC_RC after SIGTERM, want 0"
for p in "${pids[@]}"; do wait "$p"; done # they fail: the service went away
[ ! -e "$S" ] || fail "the socket is still there after SIGTERM"
leftovers=$(find "$T/load" -name '*.tmp.*' | wc -l)
[ "$leftovers" -eq 0 ] || fail "$leftovers partial output files after SIGTERM"
outputs=$(find "$T/load" -name '*.sgn' | wc -l)
[ "$outputs" -ge 200 ] && [ "$outputs" -lt 4000 ] ||
    fail "$outputs outputs: SIGTERM did not land during the load"
"$PY" "$T/wire.py" verify "$T/CallManager.der" "$T"/load/out*/*.sgn >/dev/null ||
    fail "an output written before SIGTERM does not verify"
audited_ok=$(tail -n +$((before + 1)) "$T/log/audit.log" | grep -c '"op":"sign".*"result":"ok"')
[ "$audited_ok" -ge "$outputs" ] || fail "$outputs outputs but only $audited_ok audited signatures"
grep -q "stopped after" "$T/signd.log" || fail "no stop line in the log"
ok "SIGTERM under load: exit 0 in ${stop_secs}s, socket removed, no partial file, all $outputs outputs verify and are audited"
figures "SIGTERM: $outputs of 4000 requests completed before the stop, $audited_ok audited ok"

# ---- unsafe directories: the service refuses to start ----
for mode in 0777 1777; do
    mkdir -p "$T/unsafe$mode" && chmod "$mode" "$T/unsafe$mode"
    svc_config "$T/unsafe.yaml" "$ACCESS"
    sed -i "s|path: $T/run/socket|path: $T/unsafe$mode/socket|" "$T/unsafe.yaml"
    rc=0
    out=$(timeout 10 "$SIGND" --config "$T/unsafe.yaml" --foreground 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || fail "a socket dir of mode $mode: exit $rc, want 1 ($out)"
    [[ $out == *"$T/unsafe$mode"*"writable by others"*"chmod o-w"* ]] ||
        fail "the refusal does not name the dir and the fix: $out"
    [ ! -e "$T/unsafe$mode/socket" ] || fail "a socket was created in an unsafe dir"
done
grp=$(getent group nogroup | cut -d: -f3)
mkdir -p "$T/gw" && chgrp "$grp" "$T/gw" && chmod 0770 "$T/gw"
svc_config "$T/unsafe.yaml" "$ACCESS"
sed -i "s|state-dir: .*|state-dir: $T/gw|" "$T/unsafe.yaml"
rc=0
out=$(timeout 10 "$SIGND" --config "$T/unsafe.yaml" --foreground 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"$T/gw"*"writable by group nogroup"* ]] ||
    fail "a state dir writable by another group: exit $rc: $out"
rc=0
out=$("$SIGND" --config "$T/unsafe.yaml" --check-config 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"$T/gw"* ]] || fail "--check-config passed an unsafe state dir: $out"
ok "socket dir 0777 / 1777 and a state dir writable by another group: refused with the dir and the fix named"

# ---- stale socket, second instance ----
svc_start "$CFG"
first=$SVC_PID
rc=0
out=$(timeout 10 "$SIGND" --config "$CFG" --foreground 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"already listening"* ]] || fail "a second instance: exit $rc: $out"
wire ping "$S" || fail "the first instance stopped answering"
kill -KILL "$first" && wait "$first" 2>/dev/null
SVC_PID=""
[ -S "$S" ] || fail "SIGKILL should leave the socket file behind for this check"
svc_start "$CFG"
grep -q "removed stale socket" "$T/signd.log" || fail "the stale socket was not reported"
svc_stop
ok "a second instance is refused while one listens; a stale socket (after SIGKILL) is replaced"

# ---- limits: max-connections, idle timeout ----
svc_config "$T/limits.yaml" "$ACCESS"
sed -i 's/  timeout: 5s/  timeout: 1s\n  max-connections: 2/' "$T/limits.yaml"
svc_start "$T/limits.yaml"
"$PY" "$T/wire.py" limits "$S" 2 1000 || fail "connection limit / idle timeout"
svc_stop
ok "max-connections 2: the third connection gets status 9 (busy); an idle connection is closed after the timeout"

# ---- privilege drop: started as root, serves as the test user ----
chown -R "$TEST_USER" "$T/token" # SoftHSM2 keeps its files per uid (pkcs11-notes P2)
chown root "$ITL_PIN_FILE"        # read as root before the drop: root's or the reader's only
chmod 0755 "$T/token"
svc_config "$T/drop.yaml" "$ACCESS
run-as: { user: $TEST_USER }"
sed -i "s|$T/state|$T/state-drop|; s|$T/log/|$T/log-drop/|; s|$T/run/socket|$T/run-drop/socket|" "$T/drop.yaml"
svc_start "$T/drop.yaml"
S2=$T/run-drop/socket
read -r _ ruid euid suid _ < <(grep '^Uid:' "/proc/$SVC_PID/status")
[ "$ruid $euid $suid" = "$uid $uid $uid" ] || fail "serving with uids $ruid/$euid/$suid, want $uid"
[ "$(stat -c %U "/proc/$SVC_PID/environ")" = root ] || fail "the service is dumpable (its /proc files belong to the user)"
[ "$(stat -c %U "$T/state-drop")" = "$TEST_USER" ] || fail "the state dir does not belong to the service user"
[ "$(stat -c %a "$T/run-drop")" = 750 ] || fail "the socket dir was created $(stat -c %a "$T/run-drop"), want 750"
"$CLI" --socket "$S2" sign "$T/in/SEP001122334403.cnf.xml" --out-dir "$T/out" >/dev/null 2>&1 ||
    fail "sign through the unprivileged service"
"$PY" "$T/wire.py" verify "$T/CallManager.der" "$T/out/SEP001122334403.cnf.xml.sgn" || fail "verify"
mv "$T/log-drop/audit.log" "$T/log-drop/audit.log.1"
kill -HUP "$SVC_PID"
for i in $(seq 1 600); do [ -f "$T/log-drop/audit.log" ] && break; sleep 0.1; done # reopened (60 s guard)
"$CLI" --socket "$S2" status >/dev/null 2>&1 || fail "status after SIGHUP as the service user"
[ -f "$T/log-drop/audit.log" ] || fail "the unprivileged service could not reopen its audit log"
svc_stop
[ "$SVC_RC" -eq 0 ] && [ ! -e "$S2" ] || fail "the unprivileged service: exit $SVC_RC, socket left: $(ls "$T/run-drop")"
ok "run-as: PIN read as root, then serving as $TEST_USER (uid $uid, non-dumpable, dirs 0750 and its own), SIGHUP and SIGTERM still work"

# ---- daemon mode: detaches, reports readiness, stops on SIGTERM ----
"$SIGND" --config "$T/drop.yaml" >"$T/daemon.out" 2>&1 || fail "daemon start: $(cat "$T/daemon.out")"
"$CLI" --socket "$S2" status >"$T/status.json" 2>&1 || fail "status of the daemon"
dpid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/status.json")
SVC_EXTRA_PIDS="$dpid"
# Double fork: a session of its own, but not its leader (it can never acquire a terminal).
dsid=$(ps -o sid= -p "$dpid" | tr -d ' ')
[ "$dsid" != "$(ps -o sid= -p $$ | tr -d ' ')" ] && [ "$dsid" != "$dpid" ] ||
    fail "the daemon (pid $dpid, session $dsid) did not detach with setsid + a second fork"
[ "$(readlink "/proc/$dpid/fd/0")" = /dev/null ] || fail "the daemon's stdin is not /dev/null"
kill -TERM "$dpid"
for i in $(seq 1 600); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done # 60 s guard
! kill -0 "$dpid" 2>/dev/null || fail "the daemon did not stop on SIGTERM"
[ ! -e "$S2" ] || fail "the daemon left its socket"
rc=0
out=$("$SIGND" --config "$T/unsafe.yaml" 2>&1) || rc=$?
[ "$rc" -eq 1 ] && [[ $out == *"$T/gw"* ]] || fail "daemon mode hides a startup error: $rc $out"
ok "daemon mode: detached (new session, not its leader; stdio on /dev/null), ready when the parent exits, startup errors reach the caller"

# ---- socket activation (LISTEN_FDS, as systemd passes it) ----
mkdir -p "$T/act" && chmod 0755 "$T/act"
svc_config "$T/act.yaml" "$ACCESS"
sed -i "s|$T/run/socket|$T/act/socket|" "$T/act.yaml"
systemd-socket-activate -E SOFTHSM2_CONF -l "$T/act/socket" "$SIGND" --config "$T/act.yaml" --foreground \
    >>"$T/signd.log" 2>&1 &
SVC_EXTRA_PIDS="$SVC_EXTRA_PIDS $!"
for i in $(seq 1 600); do [ -S "$T/act/socket" ] && break; sleep 0.1; done # 60 s guard
"$CLI" --socket "$T/act/socket" status >"$T/status.json" 2>&1 || fail "status through an activated socket"
apid=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/status.json")
grep -q "serving on $T/act/socket (from systemd)" "$T/signd.log" || fail "the passed socket was not used"
kill -TERM "$apid"
for i in $(seq 1 600); do kill -0 "$apid" 2>/dev/null || break; sleep 0.1; done # 60 s guard
! kill -0 "$apid" 2>/dev/null || fail "the activated service did not stop"
[ -S "$T/act/socket" ] || fail "the service removed a socket that systemd owns"
ok "socket activation: the service takes the socket from LISTEN_FDS, and leaves it to systemd on stop"

# ---- secrets ----
! grep -rqF "$PIN" "$T/signd.log" "$T/log" "$T/log-drop" "$T/daemon.out" "$T/status.json" ||
    fail "the PIN appears in a log"
ok "the PIN appears in no log and no audit record"
