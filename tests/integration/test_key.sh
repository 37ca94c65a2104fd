#!/bin/bash
# itl-sign key import | generate | list | export-cert against a throwaway SoftHSM2 token.
# Prints "ok: ..." per passing check; exits non-zero on the first failure.
set -u
ITL_SRC=${ITL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
ITL_BUILD=${ITL_BUILD:-$ITL_SRC/build}
BIN=${ITL_SIGN:-$ITL_BUILD/itl-sign}
PY=/usr/bin/python3 # Debian's, not a pyenv shim (pkcs11-notes P10)

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
[ -x "$BIN" ] || fail "$BIN not built"

work=$(mktemp -d "${TMPDIR:-/tmp}/itl-key.XXXXXX")
trap 'rm -rf "$work"' EXIT
eval "$("$ITL_SRC/softhsm-conf/make-token.sh" "$work/token" itl-key-test)" || fail "make-token.sh"
PIN=$(cat "$ITL_PIN_FILE")
log=$work/all-output.log
G=(--module "$ITL_MODULE" --token "$ITL_TOKEN_URI")

# run EXPECTED_RC NAME CMD...: output in $work/NAME.out (stdout) and $work/NAME.err (stderr)
run() {
    local want=$1 name=$2 rc
    shift 2
    "$@" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    cat "$work/$name.out" "$work/$name.err" >>"$log"
    [ "$rc" -eq "$want" ] || { cat "$work/$name.err" >&2; fail "$name: exit $rc, expected $want"; }
}
has() { grep -qF -- "$2" "$work/$1" || { cat "$work/$1" >&2; fail "$1 lacks: $2"; }; }

# ---- generate ----
run 0 gen "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key generate --label ITLRecovery \
    --subject "CN=ITLRECOVERY_pub,OU=VTG,O=Cisco,L=RTP,ST=NC,C=US" --days 30 --cert-out "$work/gen.pem"
has gen.out "local=yes always_sensitive=yes never_extractable=yes extractable=no sensitive=yes"
openssl verify -CAfile "$work/gen.pem" "$work/gen.pem" >/dev/null 2>&1 || fail "generated cert does not verify"
# encoded in the order given, CN first in the DER as CUCM's certificates (oneline prints the DER
# order, RFC 2253 reverses it)
openssl x509 -in "$work/gen.pem" -noout -subject -nameopt oneline | grep -qx \
    "subject=CN = ITLRECOVERY_pub, OU = VTG, O = Cisco, L = RTP, ST = NC, C = US" || fail "subject order"
openssl x509 -in "$work/gen.pem" -noout -subject -nameopt RFC2253 | grep -qx \
    "subject=C=US,ST=NC,L=RTP,O=Cisco,OU=VTG,CN=ITLRECOVERY_pub" || fail "subject"
# captured, not piped: grep -q exits at its match, and under pipefail a writer still writing fails
gen_text=$(openssl x509 -in "$work/gen.pem" -noout -text)
<<<"$gen_text" grep -q "CA:TRUE" || fail "basicConstraints"
<<<"$gen_text" grep -q "Digital Signature, Certificate Sign" ||
    fail "keyUsage"
ok "generate: key on the token, self-signed CA cert verifies, --cert-out written"

run 2 gen-again "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key generate --label ITLRecovery \
    --subject CN=x
has gen-again.err "refusing to overwrite"
ok "generate refuses an existing label (exit 2)"

run 2 gen-bad "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key generate --label X --subject "CN=x,Q"
has gen-bad.err "subject component 2 ('Q') is not KEY=VALUE"
ok "generate names the bad subject component"

# ---- import ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tftp.key" -out "$work/tftp.pem" \
    -subj "/C=US/O=Cisco/CN=cucm-pub" -days 365 2>/dev/null || fail "openssl req"
printf 'p12:pass word' >"$work/p12.pass"
chmod 600 "$work/p12.pass"
openssl pkcs12 -export -inkey "$work/tftp.key" -in "$work/tftp.pem" -out "$work/tftp.p12" \
    -passout "file:$work/p12.pass" || fail "openssl pkcs12"
# global options after the subcommand, password through a file descriptor
run 0 import "$BIN" key import --p12 "$work/tftp.p12" --label CallManager --id 0a:0b:0c \
    --p12-pass-fd 3 "${G[@]}" --pin-file "$ITL_PIN_FILE" 3<"$work/p12.pass"
has import.out "imported key 'CallManager' into token 'itl-key-test': RSA 2048, id 0a0b0c"
has import.out "never LOCAL / ALWAYS_SENSITIVE"
has import.out "LOCAL=no ALWAYS_SENSITIVE=no NEVER_EXTRACTABLE=no"
ok "import: .p12 into the token, provenance reported"

run 2 import-again "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key import --p12 "$work/tftp.p12" \
    --label CallManager --p12-pass-file "$work/p12.pass"
has import-again.err "already has 3 object(s) labelled 'CallManager'"
printf 'wrong' >"$work/bad.pass"
chmod 600 "$work/bad.pass"
# A wrong .p12 password is bad input (3), as is a file that is no .p12: not a usage error (2).
run 3 import-badpass "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key import --p12 "$work/tftp.p12" \
    --label Other --p12-pass-file "$work/bad.pass"
has import-badpass.err "wrong password for the .p12"
printf 'not a pkcs12 file' >"$work/junk.p12"
run 3 import-junk "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key import --p12 "$work/junk.p12" \
    --label Other --p12-pass-file "$work/p12.pass"
has import-junk.err "not a PKCS#12"
chmod 644 "$work/p12.pass"
run 2 import-passmode "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key import --p12 "$work/tftp.p12" \
    --label Other --p12-pass-file "$work/p12.pass"
has import-passmode.err "chmod 600"
ok "import refuses an existing label, a wrong password, a readable password file"

# ---- list ----
run 0 list "$BIN" "${G[@]}" --pin-fd 4 key list --json 4<"$ITL_PIN_FILE"
$PY - "$work/list.out" <<'EOF' || fail "key list --json content"
import json, sys
keys = json.load(open(sys.argv[1]))
assert [k["label"] for k in keys] == ["CallManager", "ITLRecovery"], keys
cm, rec = keys
assert cm["id"] == "0a0b0c" and cm["bits"] == 2048 and cm["key_type"] == "RSA"
assert cm["local"] is False and cm["always_sensitive"] is False and cm["never_extractable"] is False
assert cm["sensitive"] is True and cm["extractable"] is False
assert cm["subject"] == "C=US;O=Cisco;CN=cucm-pub"  # the DER order, as ITLs spell it
assert rec["local"] is True and rec["never_extractable"] is True and rec["always_sensitive"] is True
assert rec["has_private"] and rec["has_public"] and rec["has_cert"]
EOF
ok "list --json: both keys with their protection attributes (PIN from --pin-fd)"

run 0 list-text "$BIN" "${G[@]}" --pin-file "$ITL_PIN_FILE" key list
has list-text.out "subject:  C=US;O=Cisco;CN=cucm-pub"
has list-text.out "local=no always_sensitive=no never_extractable=no extractable=no sensitive=yes"
ok "list (text)"

# ---- export-cert ----
run 0 export "$BIN" "${G[@]}" key export-cert --label ITLRecovery
cmp -s "$work/export.out" "$work/gen.pem" || fail "export-cert PEM differs from --cert-out"
run 0 export-der "$BIN" "${G[@]}" key export-cert --label CallManager --der -o "$work/cm.der"
openssl x509 -in "$work/tftp.pem" -outform DER -out "$work/tftp.der"
cmp -s "$work/cm.der" "$work/tftp.der" || fail "export-cert DER differs from the imported cert"
[ "$(stat -c %a "$work/cm.der")" = 644 ] || fail "export-cert mode"
ok "export-cert: PEM to stdout, DER with -o, byte-identical to the originals"

run 4 export-missing "$BIN" "${G[@]}" key export-cert --label Nope
has export-missing.err "no certificate labelled 'Nope'"
ok "export-cert of a missing label: exit 4"

# ---- errors ----
printf 'not-the-pin' >"$work/wrong.pin"
chmod 600 "$work/wrong.pin"
run 4 wrongpin "$BIN" "${G[@]}" --pin-file "$work/wrong.pin" key list
has wrongpin.err "CKR_PIN_INCORRECT"
grep -q "not-the-pin" "$work/wrongpin.err" && fail "wrong PIN echoed"
ok "wrong PIN: exit 4, CKR_PIN_INCORRECT named, PIN not echoed"

chmod 644 "$work/wrong.pin"
run 2 pinmode "$BIN" "${G[@]}" --pin-file "$work/wrong.pin" key list
has pinmode.err "mode 0644"
ok "PIN file readable by others: refused"

run 4 nomatch "$BIN" --module "$ITL_MODULE" --token "pkcs11:token=no-such-token" \
    --pin-file "$ITL_PIN_FILE" key list
has nomatch.err "no token matches pkcs11:token=no-such-token; tokens present: token='itl-key-test'"
ok "URI matching no token: the tokens present are listed"

run 4 nomodule "$BIN" --module /nonexistent/libpkcs11.so --token "$ITL_TOKEN_URI" \
    --pin-file "$ITL_PIN_FILE" key list
has nomodule.err "/nonexistent/libpkcs11.so: no such file"
run 4 dirmodule "$BIN" --module /usr/lib --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE" key list
has dirmodule.err "not a regular file"
ok "module path missing / not a regular file"

# (a made-up PIN: the real one never goes into an argv)
run 2 pinvalue "$BIN" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI?pin-value=97531" key list
has pinvalue.err "pin-value"
grep -q 97531 "$work/pinvalue.err" && fail "pin-value echoed"
run 4 nopin "$BIN" "${G[@]}" key list </dev/null
has nopin.err "needs a PIN"
ok "pin-value in the URI refused; no PIN and no terminal: clear error"

run 2 attest "$BIN" "${G[@]}" key attest-backup
has attest.err "usage: itl-sign"
run 2 attest2 "$BIN" "${G[@]}" key attest-backup --key recovery --p12 x.p12 --p12-pass-file x.pass
has attest2.err "give --config"
ok "attest-backup: usage without a backup; refuses to run without --config (it records policy state)"

grep -qF -- "$PIN" "$log" && fail "the PIN appeared in some output"
ok "the PIN never appears in any output"
