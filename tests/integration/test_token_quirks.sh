#!/bin/bash
# Tokens CI has no hardware for, through the faultp11 wrapper over SoftHSM2 (FAULTP11_QUIRKS,
# tests/faultp11/quirks.c): a PIN pad gets a NULL PIN, a one-session token signs on its login
# session, a token without raw CKM_RSA_PKCS signs with CKM_SHAx_RSA_PKCS under token.mechanism
# auto/hash (byte-identical to raw: PKCS#1 v1.5 is deterministic), a CKA_ALWAYS_AUTHENTICATE key
# gets its context login before each signature. A violated quirk fails the operation.
. "$(dirname "$0")/lib.sh"
cd "$WORK"

new_token itl-sign-quirks
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" \
    --cert-out tftp.pem >/dev/null || die "key generate CallManager"
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || die "$FAULT not built"
FT=(--module "$FAULT" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")
FAULTP11_PIN=$(cat "$ITL_PIN_FILE")
export FAULTP11_MODULE=$ITL_MODULE FAULTP11_PIN
mkdir ref
for i in 1 2 3 4 5; do printf '<device><n>%s</n></device>\n' "$i" >"ref/SEP00000000000$i.cnf.xml"; done
expect_exit 0 "$BIN" "${TOK[@]}" sign ref --timestamp 1700000000
verify_like_ref() { # DIR: every .sgn verifies and equals the plain SoftHSM2 one byte for byte
    local f
    for f in ref/*.cnf.xml; do
        local b=${f#ref/}
        "$BIN" verify "$1/$b.sgn" --cert tftp.pem >/dev/null || die "$1/$b.sgn does not verify"
        cmp -s "$1/$b.sgn" "ref/$b.sgn" || die "$1/$b.sgn differs from the raw-RSA signature"
    done
}
run_quirk() { # QUIRKS DIR [ARGS]: sign the five configs into DIR through the wrapper
    local q=$1 d=$2
    shift 2
    mkdir -p "$d"
    cp ref/*.cnf.xml "$d/"
    expect_exit 0 env FAULTP11_QUIRKS="$q" "$BIN" "${FT[@]}" "$@" sign "$d"/*.cnf.xml \
        --timestamp 1700000000
    verify_like_ref "$d"
}

run_quirk pinpad pinpad
echo "$ERR" | grep -q "PIN pad" || die "no warning that the configured PIN is not used: $ERR"
ok "PIN pad: logged in with a NULL PIN (the wrapper refuses any other), 5 configs signed, the PIN file's PIN not sent"
# The PIN file is not even read on a PIN pad: one that cannot be read (missing; a directory)
# is no error, and the warning comes once. The same file fails on the plain token.
for bad in "$WORK/no-such.pin" "$WORK/ref"; do
    mkdir -p pinpad-unreadable && cp ref/SEP000000000001.cnf.xml pinpad-unreadable/
    expect_exit 0 env FAULTP11_QUIRKS=pinpad "$BIN" --module "$FAULT" --token "$ITL_TOKEN_URI" \
        --pin-file "$bad" sign pinpad-unreadable/SEP000000000001.cnf.xml
    [ "$(<<<"$ERR" grep -c "PIN pad")" -eq 1 ] || die "PIN pad: not one warning: $ERR"
    <<<"$ERR" grep -q "ignored and not read" || die "PIN pad: the warning does not say so: $ERR"
    "$BIN" verify pinpad-unreadable/SEP000000000001.cnf.xml.sgn --cert tftp.pem >/dev/null ||
        die "PIN pad: the signature with an unreadable PIN file does not verify"
    rm -r pinpad-unreadable
    "$BIN" --module "$FAULT" --token "$ITL_TOKEN_URI" --pin-file "$bad" \
        sign ref/SEP000000000001.cnf.xml 2>plain.err && die "the plain token signed without a PIN"
    grep -q "PIN file $bad" plain.err || die "plain token: no PIN file error: $(cat plain.err)"
done
mkdir -p pp-cfg/state pinpad-config
"$BIN" "${TOK[@]}" key generate --label ITLRecovery --subject "CN=ITLRECOVERY_cucm-pub,O=test" \
    >/dev/null 2>&1 || die "key generate ITLRecovery"
cp ref/SEP000000000001.cnf.xml pinpad-config/
cat >pp-cfg/itl.yaml <<YAML
node: { name: cucm-pub, role: publisher }
token: { module: $FAULT, uri: "$ITL_TOKEN_URI", pin-file: $WORK/no-such.pin }
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { backup: "off" }
access:
  - { user: root, allow: [sign] }
socket: { path: $WORK/pp-cfg/sock }
state-dir: $WORK/pp-cfg/state
audit-log: $WORK/pp-cfg/audit.log
YAML
expect_exit 0 env FAULTP11_QUIRKS=pinpad "$BIN" --config pp-cfg/itl.yaml --direct \
    sign pinpad-config/SEP000000000001.cnf.xml
[ "$(<<<"$ERR" grep -c "PIN pad")" -eq 1 ] && <<<"$ERR" grep -q "token.pin-file" ||
    die "PIN pad, token.pin-file: not one warning naming it: $ERR"
"$BIN" verify pinpad-config/SEP000000000001.cnf.xml.sgn --cert tftp.pem >/dev/null ||
    die "PIN pad: the signature with a missing token.pin-file does not verify"
ok "PIN pad: an unreadable PIN file (missing, a directory) is not read: signs, one warning (--pin-file, and token.pin-file via --config); the plain token fails on it"

run_quirk one-session one
ok "ulMaxSessionCount = 1: a batch of 5 signs on the login session"

run_quirk no-raw-rsa noraw-auto
run_quirk no-raw-rsa noraw-hash --mechanism hash
mkdir noraw-raw && cp ref/SEP000000000001.cnf.xml noraw-raw/
expect_exit 4 env FAULTP11_QUIRKS=no-raw-rsa "$BIN" "${FT[@]}" --mechanism raw sign noraw-raw/SEP000000000001.cnf.xml
echo "$ERR" | grep -q "token.mechanism" || die "raw on a token without CKM_RSA_PKCS does not name token.mechanism: $ERR"
[ ! -e noraw-raw/SEP000000000001.cnf.xml.sgn ] || die "a failed signature left a file"
ok "no raw CKM_RSA_PKCS: auto and hash sign byte-identical files, raw fails naming token.mechanism"

run_quirk always-auth always
ok "CKA_ALWAYS_AUTHENTICATE: a context login before each of 5 signatures"
echo "all passed"
