#!/bin/bash
# One-shot `itl-sign --token … sign FILE` (issue 18): the PKCS#11 calls one signature costs,
# counted by the fault module's stats (deterministic: no timing), and the key checks the fewer
# calls must keep: the one-call attribute read falls back to one attribute at a time when the
# token refuses the template (CKR_ATTRIBUTE_TYPE_INVALID), a duplicate label is refused naming
# both CKA_IDs, the certificate is paired by CKA_ID (none: refused) and its modulus compared.
. "$(dirname "$0")/lib.sh"
cd "$WORK"

# What one one-shot sign may call in all (35 before issue 18, bench/oneshot needs 16): initialize,
# one slot list, token info per slot (2 here: the token and SoftHSM2's free slot), one session,
# login, two searches of 4 calls (key by label, certificate by CKA_ID), one attribute read of the
# key, one of the certificate, mechanism info, sign init, sign, logout, close, finalize.
MAX_CALLS=22

new_token itl-sign-calls
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" \
    --cert-out tftp.pem >/dev/null || die "key generate CallManager"
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || die "$FAULT not built"
FT=(--module "$FAULT" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")
export FAULTP11_MODULE=$ITL_MODULE FAULTP11_CONTROL=$WORK/control
: >"$WORK/control"

calls() { # STATS [FUNCTION]: the calls of FUNCTION (all functions without one)
    awk -v f="${2:-}" '$1 == "calls" && (f == "" || $2 == f) { n += $3 } END { print n + 0 }' "$1"
}
p11() { # pkcs11-tool on the test token (its PIN in the environment, never in argv)
    ITL_USER_PIN=$(cat "$ITL_PIN_FILE") pkcs11-tool --module "$ITL_MODULE" \
        --token-label itl-sign-calls --login --pin env:ITL_USER_PIN "$@" 2>"$WORK/p11.err" ||
        { cat "$WORK/p11.err" >&2; die "pkcs11-tool $*"; }
}
sign_counted() { # WANT-EXIT NAME: one one-shot sign of NAME.cnf.xml, counted in NAME.stats
    printf '<device><n>%s</n></device>\n' "$2" >"$2.cnf.xml"
    rm -f "$2.stats"
    expect_exit "$1" env FAULTP11_STATS="$WORK/$2.stats" "$BIN" "${FT[@]}" sign "$2.cnf.xml"
    ! grep -q '^schedule_error' "$2.stats" || die "$2: the schedule did not parse: $(cat "$2.stats")"
}

# ---- the count ----
sign_counted 0 plain
openssl_verify plain.cnf.xml.sgn tftp.pem || die "plain: openssl does not verify the signature"
n=$(calls plain.stats)
[ "$n" -gt 10 ] || die "plain: only $n PKCS#11 calls counted: is the fault module in the path?"
[ "$n" -le "$MAX_CALLS" ] || die "plain: $n PKCS#11 calls for one signature, at most $MAX_CALLS: $(grep ^calls plain.stats)"
[ "$(calls plain.stats C_GetAttributeValue)" -le 2 ] ||
    die "plain: the key's attributes are not read in one call: $(grep ^calls plain.stats)"
[ "$(calls plain.stats C_OpenSession)" -eq 1 ] ||
    die "plain: a one-shot sign opened more than its login session: $(grep ^calls plain.stats)"
[ "$(calls plain.stats C_Sign)" -eq 1 ] || die "plain: not exactly one C_Sign"
ok "one-shot sign: $n PKCS#11 calls (at most $MAX_CALLS; 2 C_GetAttributeValue, 1 session), the signature verifies with openssl"

# ---- a token that refuses the whole template: one attribute at a time, the same signature ----
printf 'C_GetAttributeValue after 0 count 1 rv CKR_ATTRIBUTE_TYPE_INVALID\n' >control.new
mv control.new control
sign_counted 0 fallback
: >control.new && mv control.new control
[ "$(awk '$1 == "injected" && $2 == "C_GetAttributeValue" { print $3 }' fallback.stats)" = 1 ] ||
    die "fallback: the refusal was not injected: $(cat fallback.stats)"
[ "$(calls fallback.stats C_GetAttributeValue)" -eq 6 ] ||
    die "fallback: expected the refused template + 4 single reads + the certificate: $(grep ^calls fallback.stats)"
openssl_verify fallback.cnf.xml.sgn tftp.pem || die "fallback: the signature does not verify"
ok "CKR_ATTRIBUTE_TYPE_INVALID on the template: type, id, modulus, always-authenticate read one by one, signed and verified"

# ---- the key checks ----
id_of() { # LABEL CLASS: the CKA_ID pkcs11-tool lists for that object
    p11 -O --type "$2" --label "$1" >"$WORK/obj.txt"
    awk '$1 == "ID:" { print $2; exit }' "$WORK/obj.txt"
}
cm_id=$(id_of CallManager privkey)
[ -n "$cm_id" ] || die "no CKA_ID for CallManager"

p11 --keypairgen --key-type rsa:2048 --label CallManager --id 0a0b0c --usage-sign >/dev/null
sign_counted 4 duplicate
grep -q "refusing to guess" <<<"$ERR" || die "duplicate label: not refused: $ERR"
grep -q "$cm_id" <<<"$ERR" && grep -q "0a0b0c" <<<"$ERR" || die "duplicate label: both ids not named: $ERR"
p11 --delete-object --type privkey --id 0a0b0c >/dev/null
p11 --delete-object --type pubkey --id 0a0b0c >/dev/null
ok "two private keys labelled CallManager: refused, naming both CKA_IDs ($cm_id, 0a0b0c)"

# The certificate with the key's CKA_ID is the only pairing: without it, refused.
p11 --read-object --type cert --id "$cm_id" -o "$WORK/cm.der" >/dev/null
p11 --delete-object --type cert --id "$cm_id" >/dev/null
sign_counted 4 nocert
grep -q "no certificate with the same CKA_ID" <<<"$ERR" || die "no certificate: wrong refusal: $ERR"
ok "no certificate with the key's CKA_ID: refused, naming the pairing"

# Another key's certificate under this key's CKA_ID: the modulus comparison refuses it.
"$BIN" "${TOK[@]}" key generate --label Other --subject "CN=other,O=test" \
    --cert-out other.pem >/dev/null || die "key generate Other"
openssl x509 -in other.pem -outform DER -out other.der
p11 --write-object other.der --type cert --id "$cm_id" --label CallManager >/dev/null
sign_counted 4 wrongcert
grep -q "belongs to another key (its modulus differs)" <<<"$ERR" || die "foreign certificate: not refused by modulus: $ERR"
[ ! -e wrongcert.cnf.xml.sgn ] || die "foreign certificate: a signature file was written"
p11 --delete-object --type cert --id "$cm_id" >/dev/null
p11 --write-object "$WORK/cm.der" --type cert --id "$cm_id" --label CallManager >/dev/null
sign_counted 0 restored
openssl_verify restored.cnf.xml.sgn tftp.pem || die "restored: the signature does not verify"
ok "another key's certificate under the key's CKA_ID: refused (modulus differs); its own back: signs and verifies"
echo "all passed"
