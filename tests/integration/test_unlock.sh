#!/bin/bash
# keys.recovery.unlock: manual (issue 16, "The recovery key offline until an operator unlocks
# it"). Two SoftHSM2 tokens in one store: itl-svc holds the TFTP key and is the service's token,
# itl-recovery holds only the recovery key and is keys.recovery.token. The service starts with
# the recovery key locked; `itl-sign unlock --key recovery` logs in to itl-recovery for a while.
# Asserts: locked at start (reset and build --key recovery refused with the message, TFTP ops
# unaffected); a peer without the `unlock` right refused; a wrong PIN refused and then never
# sent again; unlock -> reset works and openssl verifies the recovery signature; lock -> refused
# again; --for 2s -> status shows locked again by itself (polled, no duration asserted); SIGTERM
# locks; every unlock, lock and timed lock audited; the PINs in no log; `unlock: always` keeps
# today's behaviour. Runs as root (setpriv for the second peer).
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it switches uids with setpriv"
svc_init
svc_make_token
svc_test_user
PIN=$(cat "$ITL_PIN_FILE")

# ---- a second token, itl-recovery, in the same SoftHSM2 store (PINs through env:, not argv) ----
umask 077
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$T/recovery.pin"
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$T/recovery.so.pin"
REC_PIN=$(cat "$T/recovery.pin")
ITL_SO_PIN=$(cat "$T/recovery.so.pin") ITL_USER_PIN=$REC_PIN
export ITL_SO_PIN ITL_USER_PIN
free_slot=$(pkcs11-tool --module "$ITL_MODULE" -L 2>/dev/null |
    awk '/^Slot [0-9]+/ { n++ } /token state: *uninitialized/ { print n - 1; exit }')
[ -n "$free_slot" ] || fail "SoftHSM2 shows no uninitialised slot for the second token"
pkcs11-tool --module "$ITL_MODULE" --slot-index "$free_slot" --init-token --label itl-recovery \
    --so-pin env:ITL_SO_PIN >/dev/null 2>"$T/init.log" || fail "init itl-recovery: $(cat "$T/init.log")"
pkcs11-tool --module "$ITL_MODULE" --token-label itl-recovery --login --login-type so \
    --so-pin env:ITL_SO_PIN --init-pin --new-pin env:ITL_USER_PIN >/dev/null 2>"$T/init.log" ||
    fail "init-pin itl-recovery: $(cat "$T/init.log")"
unset ITL_SO_PIN ITL_USER_PIN
umask 022
REC_URI="pkcs11:token=itl-recovery"
RTOK=(--module "$ITL_MODULE" --token "$REC_URI" --pin-file "$T/recovery.pin")

"$CLI" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" \
    >"$T/keygen.log" 2>&1 || fail "key generate CallManager: $(cat "$T/keygen.log")"
"$CLI" "${RTOK[@]}" key generate --label ITLRecovery --subject "CN=ITLRECOVERY_cucm-pub,O=test" \
    >>"$T/keygen.log" 2>&1 || fail "key generate ITLRecovery: $(cat "$T/keygen.log")"
for pair in CallManager:itl-svc ITLRecovery:itl-recovery; do
    label=${pair%%:*} token=${pair#*:}
    pkcs11-tool --module "$ITL_MODULE" --token-label "$token" --read-object --type cert \
        --label "$label" -o "$T/$label.der" >/dev/null 2>&1 || fail "export the $label certificate"
    openssl x509 -inform der -in "$T/$label.der" -out "$T/$label.pem" || fail "$label.der"
    openssl x509 -in "$T/$label.pem" -pubkey -noout >"$T/$label.pub" || fail "$label public key"
done
"$CLI" "${TOK[@]}" key list >"$T/list.log" 2>&1 || fail "key list itl-svc: $(cat "$T/list.log")"
grep -q CallManager "$T/list.log" || fail "key list itl-svc shows no CallManager"
grep -q ITLRecovery "$T/list.log" && fail "the recovery key is on the service token too"
ok "two tokens: itl-svc holds the TFTP key, itl-recovery holds only the recovery key"

CFG=$T/itl-signd.yaml
svc_config "$CFG" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status, unlock] }
  - { user: $TEST_USER, allow: [sign, status] }"
sed -i "s|^  recovery: { label: ITLRecovery }|  recovery:\n    label: ITLRecovery\n    unlock: manual\n    unlock-max: 10m\n    token: { uri: \"$REC_URI\", module: $ITL_MODULE }|" "$CFG"
grep -q "unlock: manual" "$CFG" || fail "the config has no unlock: manual"
mkdir -p "$T/run" "$T/out" && chmod 0755 "$T/run"
sed -i 's/mode: "0660"/mode: "0666"/' "$CFG"
S=$T/run/socket
svc_start "$CFG"

# status --json: the recovery_unlock object's field, or "" (python reads the document)
unlock_state() {
    "$CLI" --socket "$S" --json status 2>/dev/null |
        "$PY" -c 'import json,sys; d=json.load(sys.stdin)["recovery_unlock"]; print(d.get(sys.argv[1], ""))' "$1"
}
# The last audit record whose op is $1: one line.
last_audit() { grep "\"op\":\"$1\"" "$T/log/audit.log" | tail -n 1; }

# ---- locked at start; TFTP operations unaffected ----
grep -q "the recovery key is locked until itl-sign unlock --key recovery" "$T/signd.log" ||
    fail "the service does not say at start that the recovery key is locked"
[ "$(unlock_state mode)" = manual ] || fail "status: recovery_unlock.mode is not manual"
[ "$(unlock_state state)" = locked ] || fail "status: the recovery key is not locked at start"
"$CLI" --socket "$S" build --sast "$T/CallManager.pem" --sast "$T/ITLRecovery.pem" \
    -o "$T/ITLFile.tlv" >"$T/build.log" 2>&1 || fail "build with the TFTP key: $(cat "$T/build.log")"
printf '<device><x>1</x></device>\n' >"$T/SEP001122334455.cnf.xml"
"$CLI" --socket "$S" sign "$T/SEP001122334455.cnf.xml" --out-dir "$T/out" >"$T/sign.log" 2>&1 ||
    fail "sign with the TFTP key while the recovery key is locked: $(cat "$T/sign.log")"
LOCKED_MSG="the recovery key is locked: run itl-sign unlock --key recovery"
refused_locked() { # what: the command's words; the rest: the command
    local what=$1 rc=0
    shift
    "$@" >"$T/refused.log" 2>&1 || rc=$?
    [ "$rc" -eq 5 ] && grep -qF "$LOCKED_MSG" "$T/refused.log" ||
        fail "$what while locked: exit $rc (want 5 and '$LOCKED_MSG'): $(cat "$T/refused.log")"
}
refused_locked "reset" "$CLI" --socket "$S" reset "$T/ITLFile.tlv" -o "$T/out/reset.tlv"
[ ! -e "$T/out/reset.tlv" ] || fail "a refused reset left an output"
refused_locked "build --key recovery" "$CLI" --socket "$S" build --key recovery \
    --sast "$T/ITLRecovery.pem" -o "$T/out/rec.tlv"
last_audit reset | grep -q '"result":"denied".*"rule":"locked"' ||
    fail "the refused reset is not audited with rule locked: $(last_audit reset)"
ok "locked at start: reset and build --key recovery refused ('$LOCKED_MSG', exit 5, audited); TFTP build and sign work"

# Direct mode has no service to unlock the key: it says so instead of pointing at unlock.
rc=0
"$CLI" --config "$CFG" --direct reset "$T/ITLFile.tlv" -o "$T/out/direct.tlv" >"$T/direct.log" 2>&1 || rc=$?
[ "$rc" -eq 5 ] && grep -qF "direct mode cannot unlock it: run this through itl-signd" "$T/direct.log" ||
    fail "direct reset with unlock: manual: exit $rc: $(cat "$T/direct.log")"
[ ! -e "$T/out/direct.tlv" ] || fail "a refused direct reset left an output"
ok "direct mode with unlock: manual: reset refused (exit 5), saying direct mode cannot unlock the key"

# ---- a peer without the unlock right ----
uid=$(id -u "$TEST_USER")
install -m 0600 -o "$TEST_USER" "$T/recovery.pin" "$T/user-recovery.pin"
rc=0
setpriv --reuid="$TEST_USER" --regid="$(id -g "$TEST_USER")" --clear-groups \
    "$CLI" --socket "$S" unlock --key recovery --pin-file "$T/user-recovery.pin" \
    >"$T/user.log" 2>&1 || rc=$?
[ "$rc" -eq 5 ] && grep -q "unlock" "$T/user.log" ||
    fail "$TEST_USER's unlock (right PIN, no unlock right): exit $rc, want 5: $(cat "$T/user.log")"
last_audit unlock | grep -q "\"uid\":$uid,.*\"result\":\"denied\"" ||
    fail "$TEST_USER's unlock is not audited as denied: $(last_audit unlock)"
[ "$(unlock_state state)" = locked ] || fail "a refused unlock unlocked the key"
rc=0
setpriv --reuid="$TEST_USER" --regid="$(id -g "$TEST_USER")" --clear-groups \
    "$CLI" --socket "$S" lock --key recovery >"$T/user.log" 2>&1 || rc=$?
[ "$rc" -eq 5 ] || fail "$TEST_USER's lock: exit $rc, want 5: $(cat "$T/user.log")"
last_audit lock | grep -q "\"uid\":$uid,.*\"result\":\"denied\"" ||
    fail "$TEST_USER's lock is not audited as a denied lock: $(last_audit lock)"
ok "a peer without the unlock right ($TEST_USER) is refused unlock even with the right PIN, and lock (exit 5, audited as op unlock / lock)"

# ---- a wrong PIN: refused, and never sent again ----
printf 'wrong-%s' "$RANDOM$RANDOM" >"$T/wrong.pin" && chmod 0600 "$T/wrong.pin"
WRONG=$(cat "$T/wrong.pin")
rc=0
"$CLI" --socket "$S" unlock --key recovery --pin-file "$T/wrong.pin" >"$T/wrong.log" 2>&1 || rc=$?
[ "$rc" -eq 4 ] && grep -q "CKR_PIN_INCORRECT" "$T/wrong.log" &&
    grep -q "will not send this PIN again" "$T/wrong.log" ||
    fail "a wrong PIN: exit $rc (want 4, CKR_PIN_INCORRECT, 'will not send this PIN again'): $(cat "$T/wrong.log")"
rc=0
"$CLI" --socket "$S" unlock --key recovery --pin-file "$T/wrong.pin" >"$T/wrong2.log" 2>&1 || rc=$?
[ "$rc" -eq 4 ] && grep -q "rejected by the recovery token ($REC_URI) before: the service does not send it again" "$T/wrong2.log" ||
    fail "the same wrong PIN again: exit $rc (want 4, refused before any login): $(cat "$T/wrong2.log")"
[ "$(grep -c '"op":"unlock".*"result":"error"' "$T/log/audit.log")" -eq 2 ] ||
    fail "the two wrong-PIN unlocks are not both audited"
[ "$(unlock_state state)" = locked ] || fail "a wrong PIN unlocked the key"
ok "a wrong PIN: refused naming CKR_PIN_INCORRECT (exit 4); the same PIN again is refused without being sent; both audited"

# ---- unlock -> reset works, openssl verifies the recovery signature ----
rc=0
"$CLI" --socket "$S" unlock --key recovery --for 11m --pin-file "$T/recovery.pin" >"$T/long.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "longer than keys.recovery.unlock-max (600 s)" "$T/long.log" ||
    fail "--for 11m over unlock-max 10m: exit $rc (want 2): $(cat "$T/long.log")"
"$CLI" --socket "$S" unlock --key recovery --for 5m --pin-file "$T/recovery.pin" >"$T/unlock.log" 2>&1 ||
    fail "unlock with the right PIN (after a rejected one): $(cat "$T/unlock.log")"
grep -q "The recovery key is unlocked until" "$T/unlock.log" || fail "unlock said: $(cat "$T/unlock.log")"
[ "$(unlock_state state)" = unlocked ] || fail "status does not show the key unlocked"
[ -n "$(unlock_state until)" ] || fail "status shows no 'until' while unlocked"
last_audit unlock | grep -q '"uid":0,.*"result":"ok".*unlocked for 300 s, until ' ||
    fail "the unlock is not audited with its length: $(last_audit unlock)"
"$CLI" --socket "$S" reset "$T/ITLFile.tlv" -o "$T/out/reset.tlv" >"$T/reset.log" 2>&1 ||
    fail "reset while unlocked: $(cat "$T/reset.log")"
md=$(wire split "$T/out/reset.tlv" "$T/sig.bin" "$T/signed.bin") || fail "split reset.tlv"
openssl dgst "-$md" -verify "$T/ITLRecovery.pub" -signature "$T/sig.bin" "$T/signed.bin" \
    >/dev/null || fail "openssl: the reset ITL is not signed by the recovery key"
"$CLI" verify "$T/out/reset.tlv" --trust "$T/ITLFile.tlv" >/dev/null 2>&1 ||
    fail "a phone holding the old ITL would not take the reset one"
ok "unlock --for 5m (right PIN): status 'unlocked' with 'until', audited; reset signs, openssl verifies the recovery signature; --for 11m over unlock-max refused (exit 2)"

# ---- explicit lock ----
"$CLI" --socket "$S" --json lock --key recovery >"$T/lock.json" 2>"$T/lock.log" ||
    fail "lock: $(cat "$T/lock.log")"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["command"] == "lock" and d["status"] == "ok", d' \
    "$T/lock.json" || fail "lock --json: $(cat "$T/lock.json")"
[ "$(unlock_state state)" = locked ] || fail "status does not show the key locked after lock"
last_audit lock | grep -q '"uid":0,.*"result":"ok".*locked by uid 0' ||
    fail "the lock is not audited: $(last_audit lock)"
refused_locked "reset after lock" "$CLI" --socket "$S" reset "$T/ITLFile.tlv" -o "$T/out/r2.tlv"
ok "lock: status 'locked', audited; reset refused again"

# ---- --for 2s: the service locks it by itself ----
"$CLI" --socket "$S" unlock --key recovery --for 2s --pin-file "$T/recovery.pin" >"$T/unlock2.log" 2>&1 ||
    fail "unlock --for 2s: $(cat "$T/unlock2.log")"
state=""
for _ in $(seq 1 120); do
    state=$(unlock_state state)
    [ "$state" = locked ] && break
    sleep 0.5
done
[ "$state" = locked ] || fail "60 s after an unlock --for 2s the status still says '$state'"
last_audit lock | grep -q '"result":"ok".*locked: the unlock of 2 s by uid 0 ended' ||
    fail "the timed lock is not audited: $(last_audit lock)"
last_audit lock | grep -q '"uid":null,' || fail "the timed lock is audited as a peer's (no request asked for it): $(last_audit lock)"
refused_locked "reset after the unlock ended" "$CLI" --socket "$S" reset "$T/ITLFile.tlv" -o "$T/out/r3.tlv"
ok "unlock --for 2s: locked again by the service's timer (no request needed), audited; reset refused"

# ---- SIGTERM locks ----
"$CLI" --socket "$S" unlock --key recovery --pin-file "$T/recovery.pin" >/dev/null 2>&1 ||
    fail "unlock (default length)"
last_audit unlock | grep -q 'unlocked for 600 s' || fail "the default unlock is not unlock-max: $(last_audit unlock)"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd exit $SVC_RC after SIGTERM"
last_audit lock | grep -q '"result":"ok".*locked: the service is stopping' ||
    fail "the stop's lock is not audited: $(last_audit lock)"
ok "the default unlock is unlock-max (600 s); SIGTERM locks it, audited"

# ---- the PINs appear in no log, audit record or error ----
for f in "$T/log/audit.log" "$T/signd.log" "$T"/*.log; do
    for secret in "$REC_PIN" "$WRONG" "$PIN"; do
        grep -qF "$secret" "$f" && fail "a PIN appears in $f"
    done
done
ok "neither PIN (right or wrong) nor the service token's appears in the audit log, the service log or any output"

# ---- unlock: always (the default) keeps today's behaviour ----
"$CLI" "${TOK[@]}" key generate --label ITLRecovery --subject "CN=ITLRECOVERY_cucm-pub,O=test" \
    >>"$T/keygen.log" 2>&1 || fail "key generate ITLRecovery on itl-svc: $(cat "$T/keygen.log")"
pkcs11-tool --module "$ITL_MODULE" --token-label itl-svc --read-object --type cert \
    --label ITLRecovery -o "$T/rec2.der" >/dev/null 2>&1 || fail "export the itl-svc ITLRecovery certificate"
openssl x509 -inform der -in "$T/rec2.der" -out "$T/rec2.pem" && openssl x509 -in "$T/rec2.pem" -pubkey -noout >"$T/rec2.pub" ||
    fail "rec2.der"
svc_config "$T/always.yaml" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status, unlock] }"
svc_start "$T/always.yaml"
[ "$(unlock_state mode)" = always ] && [ "$(unlock_state state)" = always ] ||
    fail "status under unlock: always: mode '$(unlock_state mode)', state '$(unlock_state state)'"
"$CLI" --socket "$S" build --sast "$T/CallManager.pem" --sast "$T/rec2.pem" -o "$T/ITL2.tlv" \
    >"$T/build2.log" 2>&1 || fail "build: $(cat "$T/build2.log")"
"$CLI" --socket "$S" reset "$T/ITL2.tlv" -o "$T/out/reset2.tlv" >"$T/reset2.log" 2>&1 ||
    fail "reset under unlock: always needs no unlock: $(cat "$T/reset2.log")"
md=$(wire split "$T/out/reset2.tlv" "$T/sig.bin" "$T/signed.bin") || fail "split reset2.tlv"
openssl dgst "-$md" -verify "$T/rec2.pub" -signature "$T/sig.bin" "$T/signed.bin" >/dev/null ||
    fail "openssl: reset2 is not signed by the recovery key"
rc=0
"$CLI" --socket "$S" unlock --key recovery --pin-file "$T/recovery.pin" >"$T/always.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "keys.recovery.unlock is always" "$T/always.log" ||
    fail "unlock under unlock: always: exit $rc (want 2): $(cat "$T/always.log")"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd (unlock: always) exit $SVC_RC after SIGTERM"
ok "unlock: always (the default): reset signs without an unlock (openssl verifies); unlock says there is nothing to unlock (exit 2)"

# ---- (b) again, both tokens through faultp11 (no quirks): count the PINs that reach a token ----
# faultp11 records the SHA-256 of every C_Login's PIN: the wrong PIN must reach the recovery
# token once, however often it is sent to the service; after the lock, a relock and a new
# unlock keep both tokens usable (the module is shared, p11-kit managed).
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || fail "$FAULT not built"
sed "s|^  module: $ITL_MODULE|  module: $FAULT|; s|module: $ITL_MODULE }|module: $FAULT }|" "$CFG" >"$T/counted.yaml"
[ "$(grep -c "module: $FAULT" "$T/counted.yaml")" -eq 2 ] || fail "counted.yaml: $(cat "$T/counted.yaml")"
rm -f "$T/bstats"
FAULTP11_MODULE=$ITL_MODULE FAULTP11_STATS=$T/bstats svc_start "$T/counted.yaml"
bpin_sent() { grep -c "^login_pin_sha256 $(printf '%s' "$1" | sha256sum | cut -d' ' -f1)\$" "$T/bstats"; }
printf 'wrong2-%s' "$RANDOM$RANDOM" >"$T/wrong2.pin" && chmod 0600 "$T/wrong2.pin"
for i in 1 2 3; do
    "$CLI" --socket "$S" unlock --key recovery --pin-file "$T/wrong2.pin" >/dev/null 2>&1 &&
        fail "a wrong PIN unlocked (attempt $i)"
done
[ "$(bpin_sent "$(cat "$T/wrong2.pin")")" -eq 1 ] ||
    fail "the wrong PIN reached the token $(bpin_sent "$(cat "$T/wrong2.pin")") times in 3 unlocks, want 1"
"$CLI" --socket "$S" unlock --key recovery --for 5m --pin-file "$T/recovery.pin" >/dev/null 2>&1 ||
    fail "unlock through faultp11"
"$CLI" --socket "$S" reset "$T/ITLFile.tlv" -o "$T/out/rc.tlv" >"$T/rc.log" 2>&1 || fail "reset: $(cat "$T/rc.log")"
"$CLI" --socket "$S" lock --key recovery >/dev/null 2>&1 || fail "lock through faultp11"
"$CLI" --socket "$S" sign "$T/SEP001122334455.cnf.xml" --out-dir "$T/out" >"$T/sign2.log" 2>&1 ||
    fail "the TFTP key after the recovery token was closed: $(cat "$T/sign2.log")"
[ "$(bpin_sent "$REC_PIN")" -eq 1 ] || fail "the recovery PIN reached the token $(bpin_sent "$REC_PIN") times, want 1"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd (faultp11) exit $SVC_RC after SIGTERM"
ok "through faultp11: a wrong PIN sent 3 times reaches the recovery token once; the right one once; after the lock the service token still signs"

# ---- (a) no recovery token: the recovery key's own PIN (CKA_ALWAYS_AUTHENTICATE) ----
# faultp11's always-auth quirk over SoftHSM2: private keys read CKA_ALWAYS_AUTHENTICATE = TRUE and
# C_Sign needs C_Login(CKU_CONTEXT_SPECIFIC) with FAULTP11_PIN, here a PIN of its own (KEY_PIN,
# not the token's login PIN). The recovery key is ITLRecovery on itl-svc (made above).
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || fail "$FAULT not built"
KEY_PIN="keypin-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$KEY_PIN" >"$T/key.pin" && chmod 0600 "$T/key.pin"
svc_config "$T/keypin.yaml" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status, unlock] }"
sed -i "s|^  module: $ITL_MODULE|  module: $FAULT|; s|^  recovery: { label: ITLRecovery }|  recovery: { label: ITLRecovery, unlock: manual, unlock-max: 10m }|" \
    "$T/keypin.yaml"
grep -q "module: $FAULT" "$T/keypin.yaml" && grep -q "unlock: manual" "$T/keypin.yaml" ||
    fail "the key-PIN config: $(cat "$T/keypin.yaml")"
FAULTP11_MODULE=$ITL_MODULE FAULTP11_QUIRKS=always-auth FAULTP11_PIN=$KEY_PIN \
    FAULTP11_STATS=$T/fstats svc_start "$T/keypin.yaml"
# How often the module was sent this PIN (faultp11 records the SHA-256 of every C_Login's PIN).
pin_sent() { grep -c "^login_pin_sha256 $(printf '%s' "$1" | sha256sum | cut -d' ' -f1)\$" "$T/fstats"; }
[ "$(unlock_state with)" = key-pin ] && [ "$(unlock_state state)" = locked ] ||
    fail "key-PIN mode at start: with '$(unlock_state with)', state '$(unlock_state state)'"
refused_locked "reset (key PIN, locked)" "$CLI" --socket "$S" reset "$T/ITL2.tlv" -o "$T/out/ka.tlv"
rc=0
"$CLI" --socket "$S" unlock --key recovery --pin-file "$T/wrong.pin" >"$T/kwrong.log" 2>&1 || rc=$?
[ "$rc" -eq 4 ] && grep -q "CKR_PIN_INCORRECT" "$T/kwrong.log" &&
    grep -q "will not send this PIN again" "$T/kwrong.log" ||
    fail "key PIN, wrong: exit $rc (want 4, CKR_PIN_INCORRECT): $(cat "$T/kwrong.log")"
rc=0
"$CLI" --socket "$S" unlock --key recovery --pin-file "$T/wrong.pin" >"$T/kwrong2.log" 2>&1 || rc=$?
[ "$rc" -eq 4 ] && grep -q "rejected by the recovery key before: the service does not send it again" "$T/kwrong2.log" ||
    fail "key PIN, the same wrong PIN again: exit $rc: $(cat "$T/kwrong2.log")"
[ "$(pin_sent "$WRONG")" -eq 1 ] || fail "the wrong PIN reached the token $(pin_sent "$WRONG") times, want once"
"$CLI" --socket "$S" unlock --key recovery --for 5m --pin-file "$T/key.pin" >"$T/kunlock.log" 2>&1 ||
    fail "unlock with the key's own PIN: $(cat "$T/kunlock.log")"
[ "$(unlock_state state)" = unlocked ] || fail "key PIN: status does not show unlocked"
"$CLI" --socket "$S" reset "$T/ITL2.tlv" -o "$T/out/ka.tlv" >"$T/kreset.log" 2>&1 ||
    fail "reset with the key's own PIN unlocked: $(cat "$T/kreset.log")"
md=$(wire split "$T/out/ka.tlv" "$T/sig.bin" "$T/signed.bin") || fail "split ka.tlv"
openssl dgst "-$md" -verify "$T/rec2.pub" -signature "$T/sig.bin" "$T/signed.bin" >/dev/null ||
    fail "openssl: the key-PIN reset is not signed by the recovery key"
[ "$(pin_sent "$KEY_PIN")" -ge 2 ] || fail "the key's PIN was not sent for the test and the reset signatures"
"$CLI" --socket "$S" lock --key recovery >/dev/null 2>&1 || fail "lock (key PIN)"
sent=$(pin_sent "$KEY_PIN")
refused_locked "reset (key PIN, after lock)" "$CLI" --socket "$S" reset "$T/ITL2.tlv" -o "$T/out/kb.tlv"
[ "$(pin_sent "$KEY_PIN")" -eq "$sent" ] || fail "the key's PIN was sent after the lock"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd (key PIN) exit $SVC_RC after SIGTERM"
for f in "$T/log/audit.log" "$T/signd.log" "$T"/*.log; do
    grep -qF "$KEY_PIN" "$f" && fail "the key's PIN appears in $f"
done
ok "(a) the key's own PIN (CKA_ALWAYS_AUTHENTICATE, context login): locked at start, a wrong PIN refused and sent to the token once only (faultp11's PIN hashes), unlock -> reset verified by openssl, lock -> refused and the PIN no longer sent; the PIN in no log"
