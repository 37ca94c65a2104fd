#!/bin/bash
# itl-sign key attach-cert | csr | delete against a throwaway SoftHSM2 token: a key put on the
# token by another tool (pkcs11-tool, as tpm2_ptool does on a TPM) gets its certificate and
# signs; a CSR verifies and carries the token key; delete removes a key of no role and refuses
# a role key with the rule named. Prints "ok: ..." per passing check.
set -u
ITL_SRC=${ITL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
ITL_BUILD=${ITL_BUILD:-$ITL_SRC/build}
BIN=${ITL_SIGN:-$ITL_BUILD/itl-sign}

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
[ -x "$BIN" ] || fail "$BIN not built"

work=$(mktemp -d "${TMPDIR:-/tmp}/itl-keyops.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
eval "$("$ITL_SRC/softhsm-conf/make-token.sh" "$work/token" itl-keyops)" || fail "make-token.sh"
G=(--module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")

run() {
    local want=$1 name=$2 rc
    shift 2
    "$@" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    [ "$rc" -eq "$want" ] || { cat "$work/$name.out" "$work/$name.err" >&2; fail "$name: exit $rc, expected $want"; }
}
has() { grep -qF -- "$2" "$work/$1" || { cat "$work/$1" >&2; fail "$1 lacks: $2"; }; }

# A key pair made by another tool: no certificate (test token: its PIN in the environment).
vendor_key() { # LABEL ID
    ITL_USER_PIN=$(cat "$ITL_PIN_FILE") pkcs11-tool --module "$ITL_MODULE" --token-label itl-keyops \
        --login --pin env:ITL_USER_PIN --keypairgen --key-type rsa:2048 --label "$1" --id "$2" \
        --usage-sign >/dev/null 2>"$work/p11tool.err" || { cat "$work/p11tool.err" >&2; fail "pkcs11-tool keypairgen"; }
}
pubkey_of_token() { # LABEL OUT: the token's public key as PEM
    ITL_USER_PIN=$(cat "$ITL_PIN_FILE") pkcs11-tool --module "$ITL_MODULE" --token-label itl-keyops \
        --login --pin env:ITL_USER_PIN --read-object --type pubkey --label "$1" -o "$work/pub.der" \
        2>/dev/null || fail "pkcs11-tool read pubkey"
    openssl pkey -pubin -inform DER -in "$work/pub.der" -out "$2" 2>/dev/null || fail "pubkey DER"
}

# ---- attach-cert --self-signed on a key without a certificate ----
vendor_key Vendor 0a0b
run 4 sign-nocert "$BIN" "${G[@]}" key export-cert --label Vendor
run 0 attach "$BIN" "${G[@]}" key attach-cert --label Vendor --self-signed \
    --subject "CN=cucm-pub,O=Cisco,C=US" -o "$work/vendor.crt"
has attach.out "certificate stored for key 'Vendor' (self-signed)"
pubkey_of_token Vendor "$work/vendor-pub.pem"
openssl x509 -in "$work/vendor.crt" -noout -pubkey >"$work/cert-pub.pem" || fail "cert pubkey"
cmp -s "$work/vendor-pub.pem" "$work/cert-pub.pem" || fail "the certificate's key is not the token's"
openssl verify -CAfile "$work/vendor.crt" "$work/vendor.crt" >/dev/null 2>&1 ||
    fail "self-signed certificate does not verify"
run 0 export "$BIN" "${G[@]}" key export-cert --label Vendor -o "$work/exported.pem"
cmp -s <(openssl x509 -in "$work/exported.pem" -outform DER) <(openssl x509 -in "$work/vendor.crt" -outform DER) ||
    fail "exported certificate differs"
run 0 list "$BIN" --json "${G[@]}" key list
grep -q '"id":"0a0b"' "$work/list.out" || fail "list: key id 0a0b"
ok "attach-cert --self-signed: certificate with the key's CKA_ID, its public key the token's"

run 2 attach-again "$BIN" "${G[@]}" key attach-cert --label Vendor --self-signed --subject CN=x
has attach-again.err "already has a certificate: give --replace"
ok "attach-cert refuses a key that has a certificate"

# ---- csr, then a CA's certificate attached with --replace ----
run 0 csr "$BIN" "${G[@]}" key csr --label Vendor --subject "CN=cucm-pub,OU=VTG,O=Cisco,C=US" \
    -o "$work/req.pem"
openssl req -in "$work/req.pem" -verify -noout 2>"$work/verify.err" || { cat "$work/verify.err"; fail "csr does not verify"; }
grep -q "verify OK\|Certificate request self-signature verify OK" "$work/verify.err" || fail "openssl req -verify said: $(cat "$work/verify.err")"
openssl req -in "$work/req.pem" -noout -pubkey >"$work/req-pub.pem" || fail "req pubkey"
cmp -s "$work/vendor-pub.pem" "$work/req-pub.pem" || fail "the request's key is not the token's"
openssl req -in "$work/req.pem" -noout -subject -nameopt oneline | grep -qx \
    "subject=CN = cucm-pub, OU = VTG, O = Cisco, C = US" || fail "csr subject"
ok "csr: PKCS#10 verifies (openssl req -verify), its key is the token key"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" \
    -subj "/CN=Test CA" -days 30 2>/dev/null || fail "CA"
openssl x509 -req -in "$work/req.pem" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 30 -out "$work/ca-signed.pem" 2>/dev/null || fail "CA signing"
run 0 attach-ca "$BIN" "${G[@]}" key attach-cert --label Vendor --cert "$work/ca-signed.pem" --replace
run 0 export2 "$BIN" "${G[@]}" key export-cert --label Vendor -o "$work/exported2.pem"
cmp -s <(openssl x509 -in "$work/exported2.pem" -outform DER) <(openssl x509 -in "$work/ca-signed.pem" -outform DER) ||
    fail "the CA-signed certificate is not the one on the token"
run 0 list2 "$BIN" --json "${G[@]}" key list
[ "$(grep -o '"id":"0a0b"' "$work/list2.out" | wc -l)" -eq 1 ] || fail "--replace left two certificates"
ok "attach-cert --cert --replace stores the CA's certificate in place of the old one"

# a certificate of another key is refused
run 2 attach-wrong "$BIN" "${G[@]}" key attach-cert --label Vendor --cert "$work/ca.pem" --replace
has attach-wrong.err "the certificate's public key is not the one of key 'Vendor'"
run 4 attach-nokey "$BIN" "${G[@]}" key attach-cert --label Nope --self-signed --subject CN=x
has attach-nokey.err "no private key labelled 'Nope'"
run 2 attach-usage "$BIN" "${G[@]}" key attach-cert --label Vendor --self-signed
ok "attach-cert refuses another key's certificate, a missing key, a missing --subject"

# ---- delete ----
run 0 delete "$BIN" "${G[@]}" key delete --label Vendor
has delete.out "deleted key 'Vendor': 1 private, 1 public, 1 certificate object(s)"
run 0 list3 "$BIN" --json "${G[@]}" key list
grep -q '"id":"0a0b"' "$work/list3.out" && fail "delete left objects of 0a0b"
run 4 delete-again "$BIN" "${G[@]}" key delete --label Vendor
has delete-again.err "no private key labelled 'Vendor'"
ok "delete: private, public and certificate objects gone"

# a role key: refused without --config, and by the rule with it
run 0 gen-rec "$BIN" "${G[@]}" key generate --label ITLRecovery --subject CN=ITLRECOVERY_pub
run 5 delete-role-noconf "$BIN" "${G[@]}" key delete --label ITLRecovery
has delete-role-noconf.err "give --config"
mkdir -m 700 "$work/state"
cat >"$work/itl.yaml" <<EOF
node: { name: cucm-pub, role: publisher }
token: { module: $ITL_MODULE, uri: "$ITL_TOKEN_URI", pin-file: $ITL_PIN_FILE }
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { regen-hold: 0s, backup: warn }
access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }
socket: { path: $work/sock }
state-dir: $work/state
audit-log: $work/audit.log
EOF
run 5 delete-role "$BIN" "${G[@]}" --config "$work/itl.yaml" key delete --label ITLRecovery
has delete-role.err "key delete: refused by policy rule 'backup'"
has delete-role.err "has no attested backup"
grep -q '"result":"denied"' "$work/audit.log" && grep -q '"rule":"backup"' "$work/audit.log" ||
    fail "the refused delete is not in the audit log: $(cat "$work/audit.log")"
run 0 still "$BIN" "${G[@]}" key export-cert --label ITLRecovery
ok "delete of the recovery key without an attested backup is refused (rule backup), audited"

vendor_key Spare 0c0d
run 0 delete-audited "$BIN" "${G[@]}" --config "$work/itl.yaml" key delete --label Spare
grep '"op":"key delete"' "$work/audit.log" | grep '"key":"Spare"' | grep -q '"result":"ok"' ||
    fail "delete not audited: $(cat "$work/audit.log")"
ok "delete of a key of no role with --config is audited"

# the TFTP key: refused while the recovery key has no attested backup (backup: warn) ...
run 0 gen-tftp "$BIN" "${G[@]}" key generate --label CallManager --subject CN=cucm-pub
run 5 delete-tftp "$BIN" "${G[@]}" --config "$work/itl.yaml" key delete --label CallManager
has delete-tftp.err "key delete: refused by policy rule 'backup'"
# ... and allowed where policy allows it (backup: off, no hold)
sed -i 's/backup: warn/backup: off/' "$work/itl.yaml"
run 0 delete-tftp-ok "$BIN" "${G[@]}" --config "$work/itl.yaml" key delete --label CallManager
has delete-tftp-ok.out "deleted key 'CallManager'"
ok "delete of the TFTP key follows the replacement rules (refused: backup; allowed: backup off)"

# --direct: the token, module and PIN file come from --config; the key access rule applies
run 0 direct-csr "$BIN" --direct --config "$work/itl.yaml" key csr --label ITLRecovery \
    --subject CN=x -o "$work/direct.csr"
openssl req -in "$work/direct.csr" -verify -noout 2>/dev/null || fail "--direct csr"
run 2 direct-noconf "$BIN" --direct key csr --label ITLRecovery --subject CN=x -o "$work/y.csr"
has direct-noconf.err "--direct takes the token from the config"
sed -i 's/allow: \[reset, build, sign, encrypt, status, key\]/allow: [sign, status]/' "$work/itl.yaml"
run 5 direct-denied "$BIN" --direct --config "$work/itl.yaml" key csr --label ITLRecovery \
    --subject CN=x -o "$work/z.csr"
has direct-denied.err "refused by policy rule 'access'"
[ ! -e "$work/z.csr" ] || fail "a denied csr wrote its file"
ok "--direct takes token.uri/module/pin-file from --config; the key access rule applies in direct mode"
