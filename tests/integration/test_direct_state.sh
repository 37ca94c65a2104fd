#!/bin/bash
# Direct mode trusts the state directory only as the service does (issue 12): `itl-sign --token
# --config` refuses a state dir writable by others or by a foreign group, and a state.json that
# belongs to another user, so a forged attestation cannot pass `backup: require`; a state.json
# that vanished after the first write is an error naming it, so deleting it cannot clear the
# regeneration hold. Root's direct mode on the state of a `run-as` service user works, and what
# root creates there goes to that user. Runs as root (it writes as nobody with setpriv).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "runs as root (it acts as the user nobody with setpriv)"
PY=/usr/bin/python3
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
chmod 0711 "$WORK" # nobody reaches the dirs below by name, nothing else

new_token itl-direct-state
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=itl-sign-test" \
    --cert-out "$WORK/tftp.pem" >"$WORK/gen.log" 2>&1 || die "key generate: $(cat "$WORK/gen.log")"
"$BIN" "${TOK[@]}" key generate --label ITLRecovery --subject "CN=ITLRECOVERY_cucm-pub" \
    --cert-out "$WORK/recovery.pem" >>"$WORK/gen.log" 2>&1 || die "key generate: $(cat "$WORK/gen.log")"
"$BIN" "${TOK[@]}" build --sast label:CallManager --sast label:ITLRecovery --ccm-tftp label:CallManager \
    -o "$WORK/ITLFile.tlv" >>"$WORK/gen.log" 2>&1 || die "build: $(cat "$WORK/gen.log")"
REC_SHA=$(openssl x509 -in "$WORK/recovery.pem" -outform DER | sha256sum | cut -d' ' -f1)

# config NAME STATE-DIR [YAML...]: a config with backup: require, an hour of regeneration hold.
config() {
    local name=$1 state=$2
    shift 2
    cat >"$WORK/$name.yaml" <<EOF
node: { name: cucm-pub, role: publisher }
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: ${TFTP_LABEL:-CallManager} }
policy: { backup: ${BACKUP:-require}, regen-hold: 1h }
access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }
state-dir: $state
audit-log: $WORK/log/audit.log
$*
EOF
}
mkdir -p "$WORK/log"
# A state.json with an attestation of the token's recovery key that no backup ever proved.
forge() {
    "$PY" - "$1" "$REC_SHA" <<'EOF'
import json, sys
json.dump({"version": 1, "generation": 7, "last_backup_warning": 0, "last_regen": None,
           "attestations": [{"key": "recovery", "cert_sha256": sys.argv[2], "kind": "p12",
                             "identity": "sha256:" + "00" * 32, "time": 1, "uid": 0}]},
          open(sys.argv[1], "w"))
EOF
}
reset_with() { "$BIN" "${TOK[@]}" --config "$WORK/$1.yaml" reset "$WORK/ITLFile.tlv" -o "$WORK/$1.out.tlv"; }

# ---- the rule is in force: no attestation, no recovery signature ----
mkdir -m 0750 "$WORK/safe"
config safe "$WORK/safe"
expect_exit 5 reset_with safe
[[ $ERR == *"backed up"* || $ERR == *"backup"* ]] || die "backup: require refusal does not say why: $ERR"
ok "backup: require refuses the recovery key without an attestation"

# ---- 1. a world-writable state dir: anyone forges the attestation ----
mkdir -m 0777 "$WORK/open"
chmod 0777 "$WORK/open" # whatever the umask
as_nobody "$PY" -c 'import sys; sys.exit(0)' || die "setpriv cannot run as nobody"
as_nobody bash -c "$(declare -f forge); REC_SHA=$REC_SHA PY=$PY; forge '$WORK/open/state.json'" ||
    die "nobody could not write the forged state"
config open "$WORK/open"
expect_exit 5 reset_with open
[[ $ERR == *"state directory $WORK/open"*"writable by others"*"chmod o-w"* ]] ||
    die "the refusal does not name the world-writable state dir and the fix: $ERR"
[ ! -e "$WORK/open.out.tlv" ] || die "an ITL signed by the recovery key was written"
ok "a world-writable state dir is refused in direct mode (forged attestation not honoured): $ERR"

# ---- 2. a state dir writable by a group that is not the service's ----
mkdir -m 0770 "$WORK/group" && chgrp nogroup "$WORK/group" && chmod 0770 "$WORK/group"
as_nobody bash -c "$(declare -f forge); REC_SHA=$REC_SHA PY=$PY; forge '$WORK/group/state.json'" ||
    die "nobody (group nogroup) could not write the forged state"
config group "$WORK/group"
expect_exit 5 reset_with group
[[ $ERR == *"writable by group nogroup"*"chmod g-w"* ]] || die "group-writable state dir: $ERR"
ok "a state dir writable by a foreign group is refused"

# ---- 3. a safe dir, but state.json belongs to another user (who rewrites it in place) ----
mkdir -m 0750 "$WORK/owned"
forge "$WORK/owned/state.json"
chown nobody "$WORK/owned/state.json" && chmod 0644 "$WORK/owned/state.json"
config owned "$WORK/owned"
expect_exit 5 reset_with owned
[[ $ERR == *"state file $WORK/owned/state.json belongs to user nobody"*"chown"* ]] ||
    die "a state.json of another user: $ERR"
chown root "$WORK/owned/state.json" && chmod 0666 "$WORK/owned/state.json"
expect_exit 5 reset_with owned
[[ $ERR == *"state file"*"writable by others"* ]] || die "a world-writable state.json: $ERR"
ok "a state.json owned by another user, or writable by others, is refused"

# ---- 4. deleting state.json does not clear the regeneration hold ----
mkdir -m 0750 "$WORK/hold"
BACKUP=off TFTP_LABEL=TFTP2 config hold1 "$WORK/hold"
BACKUP=off TFTP_LABEL=TFTP3 config hold2 "$WORK/hold"
expect_exit 0 "$BIN" "${TOK[@]}" --config "$WORK/hold1.yaml" key generate --label TFTP2 --subject CN=tftp2
expect_exit 5 "$BIN" "${TOK[@]}" --config "$WORK/hold2.yaml" key generate --label TFTP3 --subject CN=tftp3
[[ $ERR == *"regenerat"* || $ERR == *"hold"* ]] || die "the hold refusal does not say so: $ERR"
ok "the regeneration hold refuses a second TFTP key within the hour"
rm -f "$WORK/hold/state.json"
expect_exit 5 "$BIN" "${TOK[@]}" --config "$WORK/hold2.yaml" key generate --label TFTP3 --subject CN=tftp3
[[ $ERR == *"$WORK/hold/state.json is missing"*"restore"* ]] ||
    die "a vanished state.json is not named as the error: $ERR"
expect_exit 5 "$BIN" "${TOK[@]}" --config "$WORK/hold2.yaml" reset "$WORK/ITLFile.tlv" -o "$WORK/x.tlv"
ok "a state.json deleted after the first write is an error naming it (fail closed): hold kept"

# ---- 5. root on the state of a run-as service user: trusted, and what root makes goes to it ----
mkdir -m 0750 "$WORK/svc" && chown nobody:nogroup "$WORK/svc"
BACKUP=off TFTP_LABEL=TFTP4 config svc "$WORK/svc" "run-as: { user: nobody }"
BACKUP=off TFTP_LABEL=TFTP4 config nosvc "$WORK/svc"
expect_exit 5 "$BIN" "${TOK[@]}" --config "$WORK/nosvc.yaml" key generate --label TFTP4 --subject CN=t4
[[ $ERR == *"belongs to user nobody"* ]] || die "a state dir of a user the config does not name: $ERR"
expect_exit 0 "$BIN" "${TOK[@]}" --config "$WORK/svc.yaml" key generate --label TFTP4 --subject CN=t4
for f in state.json state.lock; do
    [ "$(stat -c %U "$WORK/svc/$f")" = nobody ] || die "$f made by root is not the service user's"
done
as_nobody cat "$WORK/svc/state.json" >/dev/null || die "the service user cannot read the state root wrote"
ok "root's direct mode trusts the run-as user's state dir, and gives it what it creates"

# ---- 6. every key operation that writes state, as root on a state dir of the service user ----
# Without run-as naming that user: refused, naming the dir and its owner, nothing written. With
# it: done, and every file root made there is the user's (the service can read its state).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/rec2.key" -out "$WORK/rec2.pem" \
    -subj "/CN=ITLRECOVERY_cucm-pub/O=imported" -days 30 2>/dev/null || die "openssl req"
printf 'p12-pass' >"$WORK/p12.pass" && chmod 600 "$WORK/p12.pass"
openssl pkcs12 -export -inkey "$WORK/rec2.key" -in "$WORK/rec2.pem" -out "$WORK/rec2.p12" \
    -passout "file:$WORK/p12.pass" || die "openssl pkcs12"
# key_op NAME: the operation's arguments; each runs on its own state dir (no regeneration hold
# between them), with its own key labels.
key_op() {
    case $1 in
    generate) echo key generate --label TFTP6 --subject CN=t6 ;;
    import) echo key import --p12 "$WORK/rec2.p12" --p12-pass-file "$WORK/p12.pass" --label REC6 ;;
    attest-backup) echo key attest-backup --key recovery --p12 "$WORK/rec2.p12" --p12-pass-file "$WORK/p12.pass" ;;
    delete) echo key delete --label TFTP6 ;;
    esac
}
op_config() { # op_config NAME DIR [YAML]: tftp TFTP6, recovery REC6, no backup rule, no hold
    cat >"$WORK/$1.yaml" <<EOF
node: { name: cucm-pub, role: publisher }
keys:
  recovery: { label: REC6 }
  tftp: { label: TFTP6 }
policy: { backup: "off", regen-hold: 0 }
access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }
state-dir: $2
audit-log: $WORK/log-$1/audit.log
${3:-}
EOF
    mkdir -p -m 0750 "$WORK/log-$1"
}
for op in generate import attest-backup delete; do
    d=$WORK/svc-$op
    mkdir -m 0750 "$d" && chown nobody:nogroup "$d"
    op_config "no-$op" "$d"
    op_config "as-$op" "$d" "run-as: { user: nobody }"
    # shellcheck disable=SC2046
    expect_exit 5 "$BIN" "${TOK[@]}" --config "$WORK/no-$op.yaml" $(key_op "$op")
    [[ $ERR == *"$d"*"belongs to user nobody"* ]] ||
        die "key $op as root on nobody's state dir without run-as: not refused naming $d and its owner: $ERR"
    [ -z "$(find "$d" -mindepth 1)" ] || die "key $op refused but left $(find "$d" -mindepth 1)"
    # shellcheck disable=SC2046
    expect_exit 0 "$BIN" "${TOK[@]}" --config "$WORK/as-$op.yaml" $(key_op "$op")
    [ -n "$(find "$d" -mindepth 1)" ] || die "key $op wrote no state (is it an operation that writes state?)"
    left=$(find "$d" -mindepth 1 ! -user nobody)
    [ -z "$left" ] || die "key $op as root left files the service user does not own: $left"
    [ ! -e "$d/state.json" ] || as_nobody cat "$d/state.json" >/dev/null ||
        die "key $op: the service user cannot read the state root wrote"
done
ok "key generate, import, attest-backup, delete as root on the service user's state dir: refused naming the dir and owner without run-as; with it, every file made is the user's"
