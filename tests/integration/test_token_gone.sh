#!/bin/bash
# A token that goes away and comes back (issue 12): SoftHSM2's token directory is moved out of
# its tokens/ dir while itl-signd runs, then moved back. While it is away every request answers
# status 4 (token-not-present) naming the token, never "no private key"; once it is back the next
# request signs again without a restart (the module is finalised and initialised again, the held
# PIN sent once more) and `status` counts the rebuild. Direct mode names the token too. SoftHSM2
# reads its token directories only in C_Initialize: a moved-back directory stays lost to a
# module that is not initialised again. Runs as root (CI); builds nothing.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_init
svc_make_token
PIN=$(cat "$ITL_PIN_FILE")
for label in CallManager ITLRecovery; do
    "$CLI" "${TOK[@]}" key generate --label "$label" --subject "CN=$label,O=test" \
        >>"$T/keygen.log" 2>&1 || { cat "$T/keygen.log"; fail "key generate $label"; }
done
pkcs11-tool --module "$ITL_MODULE" --token-label itl-svc --read-object --type cert \
    --label CallManager -o "$T/CallManager.der" >/dev/null 2>&1 || fail "export the certificate"
openssl x509 -inform der -in "$T/CallManager.der" -out "$T/CallManager.pem" || fail "CallManager.der"
CFG=$T/itl-signd.yaml
svc_config "$CFG" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }"
S=$T/run/socket
mkdir -p "$T/in" "$T/out"
printf '<device><name>SEP001122334455</name></device>\n' >"$T/in/SEP001122334455.cnf.xml"
IN=$T/in/SEP001122334455.cnf.xml

# The token's own directory (SoftHSM2 names it by a UUID): exactly one.
TOKDIR=$(find "$T/token/tokens" -mindepth 1 -maxdepth 1 -type d)
[ -n "$TOKDIR" ] && [ "$(printf '%s\n' "$TOKDIR" | wc -l)" -eq 1 ] ||
    fail "expected one token directory under $T/token/tokens: '$TOKDIR'"
away() { mv "$TOKDIR" "$T/token-away" || fail "mv the token directory away"; }
back() { mv "$T/token-away" "$TOKDIR" || fail "mv the token directory back"; }

# status JSON -> "present logged_in rebuilds"
token_status() {
    "$CLI" --socket "$S" status >"$T/status.json" 2>"$T/status.err" ||
        fail "itl-sign status: $(cat "$T/status.err")"
    "$PY" -c 'import json, sys
t = json.load(open(sys.argv[1]))["token"]
print(int(t["present"]), int(t["logged_in"]), t["rebuilds"])' "$T/status.json" ||
        fail "status JSON: $(cat "$T/status.json")"
}

svc_start "$CFG"
"$CLI" --socket "$S" sign "$IN" --out-dir "$T/out" >"$T/sign.log" 2>&1 ||
    fail "sign before the token leaves: $(cat "$T/sign.log")"
[ "$(token_status)" = "1 1 0" ] || fail "status before: $(cat "$T/status.json")"
ok "service signs; status: present, logged in, 0 rebuilds"

# ---- away: the wire status is 4 (retry later), the message names the token ----
away
out=$(wire request "$S" sign "$IN") || fail "wire request while away: $out"
[[ $out == "4 "*"token not present"*"token 'itl-svc'"* ]] ||
    fail "a request while the token is away: '$out' (want status 4, 'token not present', naming token 'itl-svc')"
[[ $out != *"no private key"* && $out != *"no certificate"* ]] || fail "blames the key: $out"
rc=0
"$CLI" --socket "$S" sign "$IN" --out-dir "$T/out" >"$T/away.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "token not present" "$T/away.log" && ! grep -q "no private key" "$T/away.log" ||
    fail "itl-sign sign while away: rc $rc: $(cat "$T/away.log")"
read -r present logged rebuilds <<<"$(token_status)"
[ "$present" = 0 ] && grep -q "token not present" "$T/status.json" ||
    fail "status while away: $(cat "$T/status.json")"
grep -q "no private key\|no certificate labelled" "$T/status.json" &&
    fail "status while away blames the keys: $(cat "$T/status.json")"
ok "token away: status 4 '${out:0:70}...'; the CLI and status say 'not present', not 'no private key'"

# ---- back: the next request signs, without a restart ----
back
rm -f "$T/out/"*.sgn
"$CLI" --socket "$S" sign "$IN" --out-dir "$T/out" >"$T/back.log" 2>&1 ||
    fail "sign after the token came back: $(cat "$T/back.log")"
"$CLI" verify "$T/out/SEP001122334455.cnf.xml.sgn" --cert "$T/CallManager.pem" >/dev/null 2>&1 ||
    fail "the .sgn signed after the token came back does not verify"
read -r present logged rebuilds <<<"$(token_status)"
[ "$present" = 1 ] && [ "$logged" = 1 ] && [ "$rebuilds" -ge 1 ] ||
    fail "status after the token came back: $(cat "$T/status.json") (want present, logged in, rebuilds >= 1)"
out=$(wire request "$S" sign "$IN") || fail "wire request after return: $out"
[[ $out == "0 "* ]] || fail "a wire request after the token came back: '$out'"
kill -0 "$SVC_PID" 2>/dev/null || fail "itl-signd is gone"
ok "token back: signs again without a restart (verified), status: present, logged in, $rebuilds rebuild(s)"

# ---- and again: each loss is recovered, not only the first ----
away
out=$(wire request "$S" sign "$IN") || fail "wire request while away (2): $out"
[[ $out == "4 "*"token not present"* ]] || fail "second time away: '$out'"
back
out=$(wire request "$S" sign "$IN") || fail "wire request after return (2): $out"
[[ $out == "0 "* ]] || fail "second return: '$out'"
ok "a second absence: 4 while away, 0 once back"

svc_stop
grep -qF -- "$PIN" "$T/signd.log" "$T/status.json" "$T/away.log" && fail "the PIN appears in a log"

# ---- direct mode: the CLI opens the token itself ----
away
rc=0
"$CLI" "${TOK[@]}" sign "$IN" --out-dir "$T/out" >"$T/direct.log" 2>&1 || rc=$?
[ "$rc" -eq 4 ] && grep -q "token not present" "$T/direct.log" &&
    ! grep -q "no private key" "$T/direct.log" ||
    fail "direct mode while away: rc $rc: $(cat "$T/direct.log") (want exit 4, 'token not present')"
back
"$CLI" "${TOK[@]}" sign "$IN" --out-dir "$T/out" >"$T/direct.log" 2>&1 ||
    fail "direct mode once back: $(cat "$T/direct.log")"
ok "direct mode: exit 4 'token not present' while away, signs once back"
