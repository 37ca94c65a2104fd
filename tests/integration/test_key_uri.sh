#!/bin/bash
# `key list` (issue 16): each object's pkcs11: URI (p11_kit_uri_format: token, object, id, type),
# pasted into the OpenSSL pkcs11 engine (libp11; the PIN from a file via -passin, not argv), signs
# what openssl verifies with the key's certificate; p11tool exports and test-signs with it; the
# URI also selects the key in itl-sign.
# An imported key is reported as imported (text and --json) even where the token claims
# CKA_LOCAL / CKA_ALWAYS_SENSITIVE (faultp11 quirk claims-local).
. "$(dirname "$0")/lib.sh"
cd "$WORK"
ENGINE=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
[ -f "$ENGINE" ] || die "$ENGINE missing (package libengine-pkcs11-openssl)"

new_token itl-uri
expect_exit 0 "$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" \
    --cert-out tftp.pem
openssl req -x509 -newkey rsa:2048 -nodes -keyout imp.key -out imp.pem -subj "/CN=imported" \
    -days 30 2>/dev/null || die "openssl req"
printf 'p12-pass' >p12.pass
chmod 600 p12.pass
openssl pkcs12 -export -inkey imp.key -in imp.pem -out imp.p12 -passout file:p12.pass ||
    die "openssl pkcs12"
expect_exit 0 "$BIN" "${TOK[@]}" key import --p12 imp.p12 --label ITLRecovery \
    --p12-pass-file p12.pass

expect_exit 0 "$BIN" "${TOK[@]}" key list
for kind in private public cert; do
    [ "$(<<<"$OUT" grep -c "pkcs11:.*token=itl-uri;.*object=.*;type=$kind$")" -eq 2 ] ||
        die "key list: not two $kind URIs: $OUT"
done
<<<"$OUT" grep -q "origin:   generated on the token (CKA_LOCAL)" || die "generated key's origin: $OUT"
<<<"$OUT" grep -q "origin:   imported (CKA_ID is the SHA-1 of its public key" ||
    die "imported key's origin: $OUT"
expect_exit 0 "$BIN" "${TOK[@]}" --json key list
/usr/bin/python3 - "$OUT" >uris <<'PY' || die "key list --json: $OUT"
import json, sys
keys = {k["label"]: k for k in json.loads(sys.argv[1])}
cm, rec = keys["CallManager"], keys["ITLRecovery"]
assert cm["origin"] == "generated" and cm["origin_basis"] == "cka_local", cm
assert rec["origin"] == "imported" and rec["origin_basis"] == "cka_id_rule", rec
for k in (cm, rec):
    for kind in ("private", "public", "cert"):
        u = k["uri"][kind]
        assert u.startswith("pkcs11:") and ("type=" + kind) in u and "id=%" in u, u
        assert "object=" + k["label"] in u, u
print(cm["uri"]["private"])
print(rec["uri"]["private"])
PY
JSON_LIST=$OUT
CM_URI=$(sed -n 1p uris)
REC_URI=$(sed -n 2p uris)
ok "key list: a private, public and cert pkcs11: URI per key (text and --json); origin generated (CKA_LOCAL) / imported (CKA_ID rule)"

# Pasted into the OpenSSL pkcs11 engine, as a user would; the PIN from a file (-passin).
cat >openssl.cnf <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $ITL_MODULE
CNF
printf 'message for the engine\n' >msg
for pair in "CallManager:$CM_URI:tftp.pem" "ITLRecovery:$REC_URI:imp.pem"; do
    label=${pair%%:*}
    rest=${pair#*:}
    cert=${rest##*:}
    uri=${rest%:*}
    OPENSSL_CONF=$WORK/openssl.cnf openssl dgst -sha256 -engine pkcs11 -keyform engine \
        -sign "$uri" -passin "file:$ITL_PIN_FILE" -out "$label.sig" msg </dev/null \
        >engine.log 2>&1 || die "the pkcs11 engine cannot sign with $uri: $(cat engine.log)"
    openssl x509 -in "$cert" -pubkey -noout >"$label.pub"
    openssl dgst -sha256 -verify "$label.pub" -signature "$label.sig" msg >/dev/null ||
        die "openssl rejects the engine's signature with $label's URI"
done
ok "the printed private-key URIs pasted into openssl dgst -engine pkcs11 (PIN via -passin file:): both signatures verify with the keys' certificates"

# And into p11tool (GnuTLS): the cert URI exports the key's certificate; the private-key URI
# passes p11tool's sign-and-verify test (the PIN from the environment, GNUTLS_PIN).
command -v p11tool >/dev/null || die "p11tool missing (package gnutls-bin: tools/install-deps.sh)"
CM_CERT_URI=$(/usr/bin/python3 -c 'import json, sys
print({k["label"]: k for k in json.loads(sys.argv[1])}["CallManager"]["uri"]["cert"])' "$JSON_LIST")
p11tool --provider "$ITL_MODULE" --export "$CM_CERT_URI" >p11tool.pem 2>p11tool.log ||
    die "p11tool --export $CM_CERT_URI: $(cat p11tool.log)"
cmp -s <(openssl x509 -in p11tool.pem -outform DER) <(openssl x509 -in tftp.pem -outform DER) ||
    die "p11tool exported another certificate for $CM_CERT_URI"
GNUTLS_PIN=$(cat "$ITL_PIN_FILE") p11tool --provider "$ITL_MODULE" --login --test-sign "$CM_URI" \
    >p11tool.log 2>&1 || die "p11tool --test-sign $CM_URI: $(cat p11tool.log)"
grep -q "Verifying against public key in the token... ok" p11tool.log ||
    die "p11tool --test-sign did not verify: $(cat p11tool.log)"
ok "p11tool: the printed cert URI exports the certificate, the private-key URI signs and verifies (--test-sign, PIN by GNUTLS_PIN)"

# The URI is a token URI for itl-sign too: it selects exactly that key.
expect_exit 0 "$BIN" --module "$ITL_MODULE" --token "$CM_URI" --pin-file "$ITL_PIN_FILE" key list
[ "$(<<<"$OUT" grep -c '^[A-Za-z]')" -eq 1 ] && <<<"$OUT" grep -q '^CallManager$' ||
    die "the printed URI as --token does not select CallManager alone: $OUT"
ok "the printed URI given as --token selects that key alone"

# A token that claims LOCAL / ALWAYS_SENSITIVE for every key: the imported one is still
# reported as imported (itl-sign's CKA_ID rule), the claim shown as the token's.
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || die "$FAULT not built"
export FAULTP11_MODULE=$ITL_MODULE
expect_exit 0 env FAULTP11_QUIRKS=claims-local "$BIN" --module "$FAULT" --token "$ITL_TOKEN_URI" \
    --pin-file "$ITL_PIN_FILE" key list
<<<"$OUT" sed -n '/^ITLRecovery$/,/^[A-Z]/p' >rec.txt
grep -q "local=yes always_sensitive=yes" rec.txt || die "claims-local did not take: $(cat rec.txt)"
grep -q "origin:   imported (CKA_ID is the SHA-1 of its public key: itl-sign key import's rule); it existed outside the token, whatever always_sensitive says" rec.txt ||
    die "the imported key is not reported as imported under the token's claim: $(cat rec.txt)"
expect_exit 0 env FAULTP11_QUIRKS=claims-local "$BIN" --module "$FAULT" --token "$ITL_TOKEN_URI" \
    --pin-file "$ITL_PIN_FILE" --json key list
/usr/bin/python3 - "$OUT" <<'PY' || die "key list --json under claims-local: $OUT"
import json, sys
rec = {k["label"]: k for k in json.loads(sys.argv[1])}["ITLRecovery"]
assert rec["always_sensitive"] is True and rec["local"] is True, rec
assert rec["origin"] == "imported" and rec["origin_basis"] == "cka_id_rule", rec
PY
ok "a token claiming CKA_LOCAL and CKA_ALWAYS_SENSITIVE: the imported key is reported imported (text and --json)"
echo "all passed"
