#!/bin/bash
# Key operations through itl-signd (op 5 key, docs/protocol.md "Key operations"): generate,
# csr, attach-cert and delete run in the service's engine with the `key` access right, its
# policy and state, and the service writes their audit records; a peer without the right is
# refused for each; the role key replaced through the service is the one it signs with next.
. "$(dirname "$0")/lib_service.sh"
svc_init
svc_need_root "it switches uids with setpriv"
svc_make_token
svc_test_user
svc_make_keys

ACCESS="access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }
  - { user: $TEST_USER, allow: [sign, status] }"
CFG=$T/itl-signd.yaml
svc_config "$CFG" "$ACCESS"
mkdir -p "$T/run" "$T/out" && chmod 0755 "$T/run"
sed -i 's/mode: "0660"/mode: "0666"/' "$CFG"
svc_start "$CFG"
S=$T/run/socket
K=("$CLI" --socket "$S")
as_user() { setpriv --reuid="$TEST_USER" --regid="$(id -g "$TEST_USER")" --clear-groups "$@"; }
uid=$(id -u "$TEST_USER")

# run EXPECTED NAME CMD...: stdout/stderr in $T/NAME.out / .err
run() {
    local want=$1 name=$2 rc=0
    shift 2
    "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want: $(cat "$T/$name.out" "$T/$name.err")"
}
has() { grep -qF -- "$2" "$T/$1" || fail "$1 lacks '$2': $(cat "$T/$1")"; }

# ---- allowed: each operation through the service ----
run 0 gen "${K[@]}" key generate --label Spare --subject "CN=spare,O=test" --cert-out "$T/spare.pem"
has gen.out "generated key 'Spare' (RSA 2048)"
openssl verify -CAfile "$T/spare.pem" "$T/spare.pem" >/dev/null 2>&1 || fail "generated cert"
run 0 csr "${K[@]}" key csr --label Spare --subject "CN=spare,O=test" -o "$T/spare.csr"
openssl req -in "$T/spare.csr" -verify -noout 2>/dev/null || fail "the service's CSR does not verify"
cmp -s <(openssl req -in "$T/spare.csr" -noout -pubkey) <(openssl x509 -in "$T/spare.pem" -noout -pubkey) ||
    fail "the CSR's key is not the token key"
ITL_USER_PIN=$(cat "$ITL_PIN_FILE") pkcs11-tool --module "$ITL_MODULE" --token-label itl-svc --login \
    --pin env:ITL_USER_PIN --keypairgen --key-type rsa:2048 --label Vendor --id 0a0b \
    >/dev/null 2>&1 || fail "pkcs11-tool keypairgen"
run 0 attach "${K[@]}" key attach-cert --label Vendor --self-signed --subject "CN=vendor" \
    -o "$T/vendor.pem"
has attach.out "certificate stored for key 'Vendor' (self-signed)"
openssl verify -CAfile "$T/vendor.pem" "$T/vendor.pem" >/dev/null 2>&1 || fail "attached cert"
run 0 delete "${K[@]}" key delete --label Vendor
has delete.out "deleted key 'Vendor': 1 private, 1 public, 1 certificate object(s)"
ok "generate, csr (openssl req -verify), attach-cert, delete through itl-signd"

# ---- denied: a peer without the key right, for each ----
for op in "generate --label X --subject CN=x" "csr --label Spare --subject CN=x -o $T/out/x.csr" \
    "attach-cert --label Spare --self-signed --subject CN=x --replace" "delete --label Spare"; do
    # shellcheck disable=SC2086
    run 5 denied as_user "${K[@]}" key $op
    has denied.err "refused by policy rule 'access'"
done
[ ! -e "$T/out/x.csr" ] || fail "a denied csr left a file"
[ "$(grep "\"uid\":$uid," "$T/log/audit.log" | grep '"op":"key ' | grep -c '"result":"denied"')" -eq 4 ] ||
    fail "the 4 denied key operations are not audited: $(cat "$T/log/audit.log")"
run 0 spare-kept "$CLI" "${TOK[@]}" key export-cert --label Spare
ok "a peer without the key right is refused each key operation, each audited"

# ---- the role keys: policy in the service ----
run 5 del-rec "${K[@]}" key delete --label ITLRecovery
has del-rec.err "refused by policy rule 'backup'"
grep '"op":"key delete"' "$T/log/audit.log" | grep '"key":"ITLRecovery"' | grep -q '"rule":"backup"' ||
    fail "the refused recovery delete is not audited with its rule"
mkdir -p "$T/in"
printf '<device><name>SEP001122334455</name></device>\n' >"$T/in/SEP001122334455.cnf.xml"
run 0 del-tftp "${K[@]}" key delete --label tftp
has del-tftp.out "deleted key 'CallManager'"
run 4 sign-gone "${K[@]}" sign "$T/in/SEP001122334455.cnf.xml" --out-dir "$T/out"
run 0 gen-tftp "${K[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=new" \
    --cert-out "$T/tftp-new.pem"
run 0 sign-new "${K[@]}" sign "$T/in/SEP001122334455.cnf.xml" --out-dir "$T/out"
"$PY" - "$T/out/SEP001122334455.cnf.xml.sgn" "$T/tftp-new.pem" <<'EOF' || fail "the service did not sign with the new TFTP key"
import subprocess, sys
# the .sgn header names the signer; the new certificate's serial must be in it
serial = subprocess.check_output(["openssl", "x509", "-in", sys.argv[2], "-noout", "-serial"]).decode().strip().split("=")[1]
data = open(sys.argv[1], "rb").read()
sys.exit(0 if bytes.fromhex(serial) in data else 1)
EOF
# the hold the new key started: a second replacement within the hour is refused
run 5 gen-again "${K[@]}" key delete --label CallManager
has gen-again.err "refused by policy rule 'regen-hold'"
ok "role keys: recovery delete refused (backup), TFTP replaced through the service and used at once, the hold then refuses"

# ---- one writer: one record per operation, by the service (the client has no --config: it
# knows no audit log) ----
for want in '"op":"key generate".*"key":"Spare".*"result":"ok"' \
    '"op":"key attach-cert".*"key":"Vendor".*"result":"ok"' \
    '"op":"key delete".*"key":"Vendor".*"result":"ok"' '"op":"key csr".*"key":"Spare".*"result":"ok"'; do
    [ "$(grep -c "$want" "$T/log/audit.log")" -eq 1 ] || fail "not exactly one record of $want"
done
n=$(grep -c '"op":"key ' "$T/log/audit.log")
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd exit $SVC_RC"
ok "$n key records in the service's audit log, exactly one per operation"
