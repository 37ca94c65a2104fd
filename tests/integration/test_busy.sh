#!/bin/bash
# Connections the service refuses (issue 17, "scripting and everyday use"): `itl-sign sign` with
# more --jobs than socket.max-connections-per-uid signs every file with the connections it got
# and says once how many were refused; batches of one user side by side all finish; a refused
# or denied peer reads the service's own message (the reply is read after the service closed,
# even while a 3 MB request is still being sent), never "closed the connection without a reply".
# Every signature is checked with openssl. Runs as root (setpriv to nobody for the denied peer).
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "the denied peer runs as nobody"
svc_init
svc_make_token
svc_make_keys
pkcs11-tool --module "$ITL_MODULE" --token-label itl-svc --read-object --type cert \
    --label CallManager -o "$T/tftp.der" >/dev/null 2>&1 || fail "export the CallManager certificate"
openssl x509 -inform der -in "$T/tftp.der" -pubkey -noout >"$T/tftp.pub" || fail "public key"
mkdir -p "$T/run" "$T/state" "$T/log"
S=$T/run/socket

# config LIMIT: the socket reachable by nobody, LIMIT connections per uid ("" the default)
config() {
    svc_config "$T/cfg.yaml" "access:
  - { user: root, allow: [sign, status] }"
    sed -i 's/^  mode: "0660"$/  mode: "0666"/' "$T/cfg.yaml"
    [ -z "$1" ] || sed -i "s/^  timeout: 5s\$/  timeout: 5s\\n  max-connections-per-uid: $1/" "$T/cfg.yaml"
}

# files DIR N: N config files in DIR
files() {
    mkdir -p "$1"
    for i in $(seq -w 1 "$2"); do printf '<device><n>%s-%s</n></device>\n' "$1" "$i" >"$1/SEP0000000$i.cnf.xml"; done
}

# verified DIR N: N .sgn in DIR, each verified by openssl with the TFTP key
verified() {
    local n=0 f md
    for f in "$1"/*.sgn; do
        md=$(wire split "$f" "$T/sig.bin" "$T/signed.bin") || fail "split $f"
        openssl dgst "-$md" -verify "$T/tftp.pub" -signature "$T/sig.bin" "$T/signed.bin" \
            >/dev/null || fail "openssl does not verify $f"
        n=$((n + 1))
    done
    [ "$n" -eq "$2" ] || fail "$1: $n signed files, want $2"
}

# idle: wait until the service serves no connection but the status asking (the ping of
# svc_start, a batch just ended: their slots are given back when their threads end)
idle() {
    local _
    for _ in $(seq 1 400); do
        "$CLI" --json --socket "$S" status 2>/dev/null | grep -q '"connections":1[,}]' && return 0
        sleep 0.05
    done
    fail "the service still serves other connections"
}

config 2
svc_start "$T/cfg.yaml"
LIMIT_MSG="too many connections from uid 0 (socket.max-connections-per-uid is 2)"

# ---- --jobs 8 against 2 slots: 40 signed with the 2 it got, one note ----
files "$T/a" 40
idle
rc=0
"$CLI" --socket "$S" sign --jobs 8 "$T/a" >/dev/null 2>"$T/a.err" || rc=$?
[ "$rc" -eq 0 ] || fail "sign --jobs 8 with 2 slots: exit $rc: $(cat "$T/a.err")"
verified "$T/a" 40
[ "$(grep -c "refused" "$T/a.err")" -eq 1 ] || fail "the refusals are not noted once: $(cat "$T/a.err")"
# How many of the 8 the service refuses depends on when it accepts each one against the
# connections still open (6 when all 8 arrive together; fewer seen under load): the note must
# add up, name the limit, and leave at least one refused.
note=$(grep "refused" "$T/a.err")
re="^itl-sign: note: itl-signd refused ([0-9]+) of 8 connections \\(too many connections from uid 0 \\(socket.max-connections-per-uid is 2\\)\\); signing with ([0-9]+)$"
[[ $note =~ $re ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] &&
    [ $((BASH_REMATCH[1] + BASH_REMATCH[2])) -eq 8 ] || fail "the note: $(cat "$T/a.err")"
[ "$(tail -n 1 "$T/a.err")" = "itl-sign: 40 signed, 0 failed, 0 skipped" ] || fail "summary: $(cat "$T/a.err")"
rm "$T"/a/*.sgn
idle
"$CLI" --quiet --socket "$S" sign --jobs 8 "$T/a" >/dev/null 2>"$T/q.err" || fail "sign --quiet --jobs 8"
[ ! -s "$T/q.err" ] || fail "--quiet printed: $(cat "$T/q.err")"
verified "$T/a" 40
ok "sign --jobs 8 with socket.max-connections-per-uid 2: 40 signed (openssl), the refusals noted once, nothing under --quiet"

# ---- a peer over the limit: the service's message and the exit code of busy ----
"$PY" - "$S" "$T/held" <<'PY' &
import socket, sys, os, time
ss = [socket.socket(socket.AF_UNIX) for _ in range(2)]
for s in ss:
    s.connect(sys.argv[1])
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.05)
PY
HOLDER=$!
for _ in $(seq 1 200); do [ -e "$T/held" ] && break; sleep 0.05; done
[ -e "$T/held" ] || fail "the holder did not connect"
# Status requests until the service has taken both held connections (it answers busy then).
for _ in $(seq 1 200); do
    "$CLI" --socket "$S" --timeout 1 status >/dev/null 2>&1 || break
    sleep 0.05
done
files "$T/one" 1
rc=0
"$CLI" --socket "$S" --timeout 1 sign "$T/one" >/dev/null 2>"$T/one.err" || rc=$?
[ "$rc" -eq 7 ] || fail "sign over the limit: exit $rc, want 7 (busy): $(cat "$T/one.err")"
grep -qxF "itl-sign: $LIMIT_MSG" "$T/one.err" || fail "not the service's message: $(cat "$T/one.err")"
grep -q "without a reply" "$T/one.err" && fail "the reply was lost: $(cat "$T/one.err")"
head -c 3000000 /dev/zero | tr '\0' 'x' | sed 's/^/<device>/; s/$/<\/device>/' >"$T/big.cnf.xml"
rc=0
"$CLI" --socket "$S" --timeout 1 sign "$T/big.cnf.xml" --out-dir "$T" >/dev/null 2>"$T/big.err" || rc=$?
[ "$rc" -eq 7 ] || fail "a 3 MB sign over the limit: exit $rc, want 7: $(cat "$T/big.err")"
grep -qF "$LIMIT_MSG" "$T/big.err" || fail "3 MB over the limit, not the service's message: $(cat "$T/big.err")"
rm "$T/held"
wait "$HOLDER"
ok "over the limit: exit 7 and '$LIMIT_MSG' verbatim (a 3 MB request too, refused while being sent)"

# ---- a denied peer, still sending 3 MB: its denial verbatim ----
chmod 0644 "$T/big.cnf.xml"
rc=0
setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$CLI" --socket "$S" sign "$T/big.cnf.xml" --out-dir /tmp >/dev/null 2>"$T/denied.err" || rc=$?
[ "$rc" -eq 5 ] || fail "nobody's 3 MB sign: exit $rc, want 5: $(cat "$T/denied.err")"
msg=$(grep -o '"uid":65534,.*"op":"connection".*"result":"denied".*' "$T/log/audit.log" | tail -n 1 |
    "$PY" -c 'import json,sys; l=sys.stdin.read(); print(json.loads("{" + l)["message"])') ||
    fail "the denial is not audited"
grep -qF "$msg" "$T/denied.err" || fail "nobody did not read its denial '$msg': $(cat "$T/denied.err")"
grep -q "without a reply\|Broken pipe" "$T/denied.err" && fail "the denial was lost: $(cat "$T/denied.err")"
ok "a denied peer still sending 3 MB reads its denial verbatim: $msg"
svc_stop

# ---- four batches of one user, default --jobs, default limit: every file signed ----
config ""
svc_start "$T/cfg.yaml"
pids=""
for b in 1 2 3 4; do
    files "$T/b$b" 60
    "$CLI" --socket "$S" sign "$T/b$b" >/dev/null 2>"$T/b$b.err" &
    pids="$pids $!"
done
b=0
for p in $pids; do
    b=$((b + 1))
    wait "$p" || fail "batch $b of 4: exit $?: $(cat "$T/b$b.err")"
done
for b in 1 2 3 4; do verified "$T/b$b" 60; done
ok "four sign batches of one uid side by side (default --jobs and limit): 4 x 60 signed (openssl)"
svc_stop
