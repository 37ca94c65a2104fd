#!/bin/bash
# Policy through the CLI in direct mode (--token --config) and through itl-signd: the same
# rules, the same messages (issue 7).
. "$(dirname "$0")/lib.sh"
cd "$WORK"

new_token itl-sign-policy
mkdir -p state
# The recovery key comes from a .p12 (the CUCM migration path), so a second token and the .p12
# itself can later prove they hold the same key.
printf 'p12-secret' > p12.pass && chmod 600 p12.pass
openssl req -x509 -newkey rsa:2048 -nodes -keyout rec.key -out rec.pem -days 365 \
    -subj "/CN=ITLRECOVERY_pub/O=itl-sign" 2>/dev/null
openssl pkcs12 -export -inkey rec.key -in rec.pem -out rec.p12 -passout file:p12.pass
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 365 \
    -subj "/CN=ITLRECOVERY_other/O=itl-sign" 2>/dev/null
openssl pkcs12 -export -inkey other.key -in other.pem -out other.p12 -passout file:p12.pass

write_config() { # role backup hold
    cat > itl-signd.yaml <<EOF
node: { name: cucm-pub, role: $1 }
token:
  module: $ITL_MODULE
  uri: "$ITL_TOKEN_URI"
  pin-file: $ITL_PIN_FILE
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { regen-hold: $3, backup: $2, max-itl-bytes: 65535 }
access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }
socket: { path: $WORK/sock, mode: "0660" }
state-dir: $WORK/state
audit-log: $WORK/audit.log
EOF
}
write_config publisher warn 5m
C=(--config itl-signd.yaml)

# ---- regen hold ----
expect_exit 0 "$BIN" "${TOK[@]}" "${C[@]}" key import --p12 rec.p12 --p12-pass-file p12.pass \
    --label ITLRecovery
expect_exit 5 "$BIN" "${TOK[@]}" "${C[@]}" key generate --label CallManager --subject "CN=cucm-pub"
<<<"$ERR" grep -q "ITLRecovery certificate was modified in the last 5 minutes" ||
    die "regen hold: message not in CUCM's style: $ERR"
<<<"$ERR" grep -q "re-try" || die "regen hold: no retry time: $ERR"
ok "regen hold refuses a second regeneration: $ERR"
grep -q '"rule":"regen-hold"' audit.log || die "the regen-hold denial is not audited"
# The hold is over once regen-hold has passed (a hold of 1 s here): then the backup rule speaks,
# since the TFTP key may not be replaced while the recovery key has no attested backup.
write_config publisher warn 1s
sleep 1.1
expect_exit 5 "$BIN" "${TOK[@]}" "${C[@]}" key generate --label CallManager --subject "CN=cucm-pub"
<<<"$ERR" grep -qi "backed up\|backup" || die "TFTP replacement without a recovery backup: $ERR"
ok "TFTP key refused while the recovery key has no attested backup: $ERR"
write_config publisher off 1s
expect_exit 0 "$BIN" "${TOK[@]}" "${C[@]}" key generate --label CallManager --subject "CN=cucm-pub" \
    --cert-out tftp.pem
ok "with backup: off, the TFTP key is generated"
write_config publisher warn 1s

# ---- backup: warn, then require, then attested ----
"$BIN" "${TOK[@]}" "${C[@]}" build --sast label:CallManager --sast label:ITLRecovery -o ITL.tlv \
    >/dev/null 2>&1 || die "build"
expect_exit 0 "$BIN" "${TOK[@]}" "${C[@]}" reset ITL.tlv -o reset.tlv
<<<"$ERR" grep -q "has not been backed up" || die "backup: warn gives no warning: $ERR"
ok "backup: warn: the reset works and carries CUCM's warning"
write_config publisher require 1s
expect_exit 5 "$BIN" "${TOK[@]}" "${C[@]}" reset ITL.tlv -o reset2.tlv
<<<"$ERR" grep -qi "backup" || die "backup: require: unclear denial: $ERR"
[ ! -e reset2.tlv ] || die "a denied reset left a file"
ok "backup: require refuses the recovery key until attested: $ERR"

# Attestation by .p12: a different key fails, the right one passes.
expect_exit 1 "$BIN" "${TOK[@]}" "${C[@]}" key attest-backup --key recovery --p12 other.p12 \
    --p12-pass-file p12.pass
ok "attestation with a different .p12 fails: $ERR"
expect_exit 0 "$BIN" "${TOK[@]}" "${C[@]}" key attest-backup --key recovery --p12 rec.p12 \
    --p12-pass-file p12.pass
expect_exit 0 "$BIN" "${TOK[@]}" "${C[@]}" reset ITL.tlv -o reset3.tlv
ok "after the .p12 attestation, the recovery key signs"
expect_exit 0 "$BIN" "${TOK[@]}" "${C[@]}" status
<<<"$OUT" grep -q '"recovery_backup_attested":true' || die "status does not show the attestation: $OUT"
ok "status shows the attestation"

# Attestation by a second token: same key passes, different key fails.
primary=("${TOK[@]}")
primary_conf=$SOFTHSM2_CONF
primary_vars=("$ITL_MODULE" "$ITL_TOKEN_URI" "$ITL_PIN_FILE")
new_token backup-good
"$BIN" "${TOK[@]}" key import --p12 rec.p12 --p12-pass-file p12.pass --label ITLRecovery >/dev/null
good_uri=$ITL_TOKEN_URI good_pin=$ITL_PIN_FILE
# A second token in the same SoftHSM2 configuration: one module sees both.
cat "$SOFTHSM2_CONF" > /dev/null
backup_dir=$(dirname "$SOFTHSM2_CONF")
cp -r "$backup_dir/tokens/." "$(dirname "$primary_conf")/tokens/"
new_token backup-bad
"$BIN" "${TOK[@]}" key import --p12 other.p12 --p12-pass-file p12.pass --label ITLRecovery >/dev/null
cp -r "$(dirname "$SOFTHSM2_CONF")/tokens/." "$(dirname "$primary_conf")/tokens/"
bad_uri=$ITL_TOKEN_URI bad_pin=$ITL_PIN_FILE
export SOFTHSM2_CONF=$primary_conf
expect_exit 1 "$BIN" "${primary[@]}" "${C[@]}" key attest-backup --key recovery \
    --backup-token "$bad_uri" --backup-pin-file "$bad_pin"
ok "attestation by a token holding a different key fails: $ERR"
expect_exit 0 "$BIN" "${primary[@]}" "${C[@]}" key attest-backup --key recovery \
    --backup-token "$good_uri" --backup-pin-file "$good_pin"
<<<"$OUT" grep -q "label=backup-good" || die "attestation does not name the backup token: $OUT"
ok "attestation by a second token holding the same key: $OUT"
TOK=("${primary[@]}")
ITL_MODULE=${primary_vars[0]} ITL_TOKEN_URI=${primary_vars[1]} ITL_PIN_FILE=${primary_vars[2]}

# A new recovery key voids the attestation: regenerate the recovery role (a config naming a new
# label), then the original certificate's attestation is gone from the state.
sed 's/recovery: { label: ITLRecovery }/recovery: { label: ITLRecovery2 }/' itl-signd.yaml > new-recovery.yaml
sleep 1.1
expect_exit 0 "$BIN" "${TOK[@]}" --config new-recovery.yaml key generate --label ITLRecovery2 \
    --subject "CN=ITLRECOVERY2"
expect_exit 0 "$BIN" "${TOK[@]}" "${C[@]}" status
<<<"$OUT" grep -q '"recovery_backup_attested":false' ||
    die "the attestation survived a recovery key regeneration: $OUT"
ok "a new recovery key voids the attestation"

# The service gives CUCM's ITLRecoveryCertBackup line once a day while the recovery key is not
# backed up; the state remembers it across restarts.
start_daemon() { # config log
    "$DAEMON" --config "$1" --foreground 2>"$2" &
    pid=$!
    # Serving, not only bound: a SIGTERM before the signals are taken over would kill it.
    for _ in $(seq 1 1200); do grep -q "serving on" "$2" && break; sleep 0.05; done # 60 s guard
    grep -q "serving on" "$2" || die "itl-signd did not start: $(cat "$2")"
    kill "$pid"
    wait "$pid" || die "itl-signd failed: $(cat "$2")"
}
start_daemon new-recovery.yaml reminder1.log
grep -q "ITLRecoveryCertBackup: This cluster has an ITLRecovery certificate that has not been backed up" \
    reminder1.log || die "no daily backup line at start: $(cat reminder1.log)"
start_daemon new-recovery.yaml reminder2.log
grep -q "ITLRecoveryCertBackup" reminder2.log && die "the daily backup line repeated within a day"
ok "the daily ITLRecoveryCertBackup line is given once, not again after a restart"

# ---- publisher-only ----
write_config subscriber off 1s
expect_exit 5 "$BIN" "${TOK[@]}" "${C[@]}" reset ITL.tlv -o sub.tlv
<<<"$ERR" grep -q "This is not a Publisher Node" || die "publisher-only: $ERR"
ok "publisher-only in direct mode: $ERR"

# ---- the same refusal through the service ----
"$DAEMON" --config itl-signd.yaml --foreground 2>daemon.log &
pid=$!
cleanup_hooks+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null")
for _ in $(seq 1 1200); do [ -S sock ] && break; sleep 0.05; done # 60 s guard (ASan, busy host)
[ -S sock ] || die "itl-signd did not start: $(cat daemon.log)"
expect_exit 5 "$BIN" --socket sock reset ITL.tlv -o sub.tlv
<<<"$ERR" grep -q "This is not a Publisher Node" || die "publisher-only via the service: $ERR"
ok "publisher-only through itl-signd: $ERR"
printf '<device/>\n' > SEP000000000001.cnf.xml
expect_exit 0 "$BIN" --socket sock sign SEP000000000001.cnf.xml --out-dir .
ok "the TFTP key still signs on a subscriber"
kill "$pid"; wait "$pid" || die "itl-signd exited with an error on SIGTERM: $(cat daemon.log)"
grep -q '"rule":"publisher-only"' audit.log || die "publisher-only denial not audited"
ok "every policy decision is in the audit log ($(wc -l < audit.log) lines)"
echo "all passed"
