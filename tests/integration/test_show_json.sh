#!/bin/bash
# SPDX-License-Identifier: MIT
# itl-sign show --json: UTF-8 names kept as UTF-8 (not one escape per byte), bytes that are not
# UTF-8 escaped as \u00XX, EC (P-256, P-384) and RSA 1024-4096 records; decoded with Python's
# json and compared with what Python reads from the certificates themselves.
. "$(dirname "$0")/lib.sh"

SAMPLE=$ITL_SRC/tests/unit/fixtures/ITLFile-certutils-sample.tlv
[ -x "$BIN" ] || die "no $BIN (build first)"
PY=/usr/bin/python3

new_token show-json
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=itl-sign-test" \
    --cert-out "$WORK/cm.pem" >"$WORK/keygen.log" 2>&1 || die "key generate: $(cat "$WORK/keygen.log")"

# mkcert NAME SUBJECT KEYSPEC...: a self-signed certificate with a UTF-8 subject.
mkcert() {
    local name=$1 subj=$2
    shift 2
    openssl req -x509 -utf8 -nodes -newkey "$@" -keyout "$WORK/$name.key" -out "$WORK/$name.pem" \
        -subj "$subj" -days 30 2>/dev/null || die "openssl req $name"
}
mkcert rsa1024 "/C=CH/O=Zürich/CN=ünïcode" rsa:1024
mkcert rsa2048 "/O=Straße GmbH/CN=rsa2048.example" rsa:2048
mkcert rsa3072 "/O=日本/CN=rsa3072.example" rsa:3072
mkcert rsa4096 "/O=Ελλάδα/CN=rsa4096.example" rsa:4096
mkcert p256 "/O=Zürich/CN=p256 ✓" ec -pkeyopt ec_paramgen_curve:P-256
mkcert p384 "/O=Québec/CN=p384.example" ec -pkeyopt ec_paramgen_curve:P-384
"$BIN" "${TOK[@]}" build --sast label:CallManager --ccm "$WORK/rsa1024.pem" --tftp "$WORK/rsa2048.pem" \
    --capf "$WORK/rsa3072.pem" --tvs "$WORK/rsa4096.pem" --app-server "$WORK/p256.pem" \
    --app-server "$WORK/p384.pem" -o "$WORK/ITLFile.tlv" >"$WORK/build.log" 2>&1 ||
    die "build: $(cat "$WORK/build.log")"
for c in cm rsa1024 rsa2048 rsa3072 rsa4096 p256 p384; do
    openssl x509 -in "$WORK/$c.pem" -outform DER -out "$WORK/$c.der" || die "DER of $c"
done

expect_exit 0 "$BIN" show --json "$WORK/ITLFile.tlv"
printf '%s' "$OUT" >"$WORK/show.json"
$PY - "$WORK" <<'PY' || die "show --json of the UTF-8 / EC / RSA ITL"
import hashlib, json, os, re, sys
w = sys.argv[1]
raw = open(w + '/show.json', 'rb').read()
d = json.loads(raw)

sys.path.insert(0, os.environ['ITL_SRC'] + '/tests/integration')
from der import der, children  # noqa: E402

def facts(c):  # serial, PKCS#1 RSAPublicKey / EC point, signatureValue
    _, s, e = der(c, 0)
    tbs, _, sig = children(c, s, e)
    f = children(c, tbs[1], tbs[2])
    if f[0][0] == 0xa0:
        f = f[1:]
    spki = children(c, f[5][1], f[5][2])
    return c[f[0][1]:f[0][2]].lstrip(b'\0'), c[spki[1][1] + 1:spki[1][2]], c[sig[1] + 1:sig[2]]

def parts(name):  # a name's components, in whatever order and with whichever separator
    return sorted(re.split('[;,]', name))

want = [('cm', 0, ['CN=cucm-pub', 'O=itl-sign-test']), ('rsa1024', 1, ['C=CH', 'O=Zürich', 'CN=ünïcode']),
        ('rsa2048', 3, ['O=Straße GmbH', 'CN=rsa2048.example']), ('rsa3072', 4, ['O=日本', 'CN=rsa3072.example']),
        ('rsa4096', 21, ['O=Ελλάδα', 'CN=rsa4096.example']), ('p256', 7, ['O=Zürich', 'CN=p256 ✓']),
        ('p384', 7, ['O=Québec', 'CN=p384.example'])]
recs = d['records']
assert len(recs) == len(want), len(recs)
for r, (c, role, names) in zip(recs, want):
    cert = open('%s/%s.der' % (w, c), 'rb').read()
    serial, pub, sig = facts(cert)
    assert r['function'] == role, (c, r['function'])
    assert parts(r['subject']) == sorted(names) and parts(r['issuer']) == sorted(names), (c, r['subject'])
    assert r['serial'] == ':'.join('%02X' % b for b in serial), (c, r['serial'])
    assert r['public_key_length'] == len(pub) and r['signature_length'] == len(sig), c
    assert r['certificate_length'] == len(cert), c
    assert r['certificate_sha1'] == hashlib.sha1(cert).hexdigest().upper(), c
    assert r['consistent'] is True and r['problem'] is None, (c, r['problem'])
# the key sizes: RSA modulus n/8 bytes of signature, EC points of 65 and 97 bytes
assert [r['signature_length'] for r in recs[:5]] == [256, 128, 256, 384, 512], [r['signature_length'] for r in recs]
assert [r['public_key_length'] for r in recs[5:]] == [65, 97]
assert 64 <= recs[5]['signature_length'] <= 72 and 96 <= recs[6]['signature_length'] <= 104
assert d['verified'] is True and d['signer_record'] == 1 and d['inconsistent_records'] == 0
# UTF-8 is written as UTF-8, not one \u00XX per byte (which decodes as 'ZÃ¼rich')
assert 'Zürich'.encode() in raw and b'\\u00c3' not in raw and 'ZÃ¼rich' not in json.dumps(d, ensure_ascii=False)
PY
ok "show --json: UTF-8 names (Zürich, ünïcode, 日本, Ελλάδα, ✓), RSA 1024-4096 and EC P-256/P-384 records as the certificates say"

expect_exit 0 "$BIN" show "$WORK/ITLFile.tlv"
grep -q "^3 SUBJECTNAME [0-9]* .*O=Zürich" <<<"$OUT" || die "show: the UTF-8 name is not printed as UTF-8"
grep -q "^7 PUBLICKEY 97$" <<<"$OUT" || die "show: the P-384 point"
expect_exit 0 "$BIN" show --cucm "$WORK/ITLFile.tlv"
grep -q "$(printf '^3\tSUBJECTNAME\t[0-9]*\t.*CN=ünïcode')" <<<"$OUT" || die "show --cucm: the UTF-8 name"
grep -qF "$(printf '8\tSIGNATURE\t512\t')" <<<"$OUT" || die "show --cucm: the 4096-bit record"
ok "show and show --cucm print the UTF-8 names as UTF-8 and every key size"

# Bytes that are not UTF-8: a lone 0xFF and a lead byte without its continuation, in the
# sample's first record name ("CN=SAST,..." at offset 396); the signature breaks (exit 1) but
# the JSON says what the bytes are.
cp "$SAMPLE" "$WORK/bad-utf8.tlv"
printf '\xff\xc3' | dd of="$WORK/bad-utf8.tlv" bs=1 seek=399 conv=notrunc 2>/dev/null
expect_exit 1 "$BIN" show --json "$WORK/bad-utf8.tlv"
$PY -c 'import json, sys
raw = sys.argv[1]
assert "\"CN=\\u00ff\\u00c3ST,O=SAST,OU=SAST\"" in raw, raw[:600]
d = json.loads(raw)
assert d["records"][0]["subject"] == "CN=\u00ff\u00c3ST,O=SAST,OU=SAST"
assert d["verified"] is False' "$OUT" || die "show --json of bytes that are not UTF-8"
expect_exit 1 "$BIN" show "$WORK/bad-utf8.tlv"
ok "bytes that are not UTF-8: \\u00XX each in --json, valid JSON"
