#!/bin/bash
# SPDX-License-Identifier: MIT
# itl-sign show | verify | strip against the real sample and against files in CUCM's layout and
# .sgn files written here by an independent producer (Python for the bytes, openssl for the
# signatures), so the C parser is not checked only against the C builder.
. "$(dirname "$0")/lib.sh"

SAMPLE=$ITL_SRC/tests/unit/fixtures/ITLFile-certutils-sample.tlv
[ -x "$BIN" ] || die "no $BIN (build first)"
[ -f "$SAMPLE" ] || die "no $SAMPLE"

# mkfile.py: writes trust files from certificates (DER), signing with the openssl CLI.
#   mkfile.py cucm OUT KEY SIGNER_INDEX NAME1 CERT1 ROLE1 [NAME2 CERT2 ROLE2 ...]
#       an ITL in CUCM's layout: 4,5,6 signer info, ';' names, DNSNAME "\0", records in tag
#       order; ROLE "capf" or "tvs" writes a record without CERTIFICATE (CERTHASH + HASH
#       ALGORITHM; tvs also without SIGNATURE), and a 33-byte CCM+TFTP placeholder is appended.
#   mkfile.py sgn OUT KEY NAME CERT PAYLOAD FILENAME DIGEST
cat >"$WORK/mkfile.py" <<'PY'
import hashlib, os, struct, subprocess, sys

sys.path.insert(0, os.environ['ITL_SRC'] + '/tests/integration')
from der import der, children  # noqa: E402

def cert_fields(c):
    _, s, e = der(c, 0)
    tbs, alg, sig = children(c, s, e)
    f = children(c, tbs[1], tbs[2])
    if f[0][0] == 0xa0:
        f = f[1:]
    serial = c[f[0][1]:f[0][2]].lstrip(b'\0') or b'\0'
    spki = children(c, f[5][1], f[5][2])
    pubkey = c[spki[1][1] + 1:spki[1][2]]
    return serial, pubkey, c[sig[1] + 1:sig[2]]

def modulus_bytes(pubkey):  # RSAPublicKey ::= SEQUENCE { modulus INTEGER, ... }
    _, s, e = der(pubkey, 0)
    n = children(pubkey, s, e)[0]
    return len(pubkey[n[1]:n[2]].lstrip(b'\0'))

def tlv(tag, v):
    return struct.pack('>BH', tag, len(v)) + v

def s(text):
    return text.encode() + b'\0'

def header(name, serial, digest, modulus_code, filename, version, extra=b''):
    info = tlv(4, s(name)) + tlv(5, serial) + tlv(6, s(name))
    head = tlv(1, version) + tlv(2, b'\0\0') + tlv(3, b'')[:1] + struct.pack('>H', len(info)) + info
    head += b'\x07\x00\x0f' + tlv(8, bytes([digest])) + b'\x09\x00\x08' + tlv(10, b'\0') + tlv(11, bytes([modulus_code]))
    return head, tlv(14, s(filename)) + tlv(15, struct.pack('>I', 1700000000)) + extra

def sign_and_write(out, key, head, tail, body, digest, siglen):
    while (len(head) + len(tail) + 3 + siglen) % 4:
        tail += b'\x0d'
    hl = len(head) + len(tail) + 3 + siglen
    head = head[:8] + struct.pack('>H', hl) + head[10:]
    open(out + '.msg', 'wb').write(head + tail + body)
    md = {1: 'sha1', 2: 'sha256', 3: 'sha512'}[digest]
    subprocess.run(['openssl', 'dgst', '-' + md, '-sign', key, '-out', out + '.sig', out + '.msg'], check=True)
    sig = open(out + '.sig', 'rb').read()
    assert len(sig) == siglen
    open(out, 'wb').write(head + tlv(12, sig) + tail + body)

def record(name, cert, role):
    serial, pubkey, sigval = cert_fields(cert)
    r = tlv(2, b'\0') + tlv(3, s(name)) + tlv(4, struct.pack('>H', role)) + tlv(5, s(name))
    r += tlv(6, serial) + tlv(7, pubkey)
    if role == 4:    # CAPF, as in the seed dumps: no CERTIFICATE, a SHA-1 CERTHASH
        r += tlv(8, sigval) + tlv(11, hashlib.sha1(cert).digest()) + tlv(12, b'\x01')
    elif role == 21:  # TVS without SIGNATURE and CERTIFICATE (format.md section 6)
        r += tlv(11, hashlib.sha1(cert).digest()) + tlv(12, b'\x01')
    else:
        r += tlv(8, sigval) + tlv(9, cert)
    return tlv(1, struct.pack('>H', len(r) + 5)) + r

ROLES = {'sast': 0, 'ccm': 1, 'ccm-tftp': 2, 'tftp': 3, 'capf': 4, 'tvs': 21, 'app': 7, 'x99': 99}
mode, out, key = sys.argv[1:4]
if mode == 'cucm':
    signer = int(sys.argv[4])
    items = sys.argv[5:]
    entries = [(items[i], open(items[i + 1], 'rb').read(), ROLES[items[i + 2]]) for i in range(0, len(items), 3)]
    body = b''.join(record(n, c, r) for n, c, r in entries)
    # the 33-byte non-secure placeholder: RECORDLENGTH + DNSNAME(13) + FUNCTION + IPADDRESS
    ph = tlv(2, s('10.48.47.153')) + tlv(4, struct.pack('>H', 2)) + tlv(10, bytes([10, 48, 47, 153]))
    body += tlv(1, struct.pack('>H', len(ph) + 5)) + ph
    name, cert, _ = entries[signer]
    serial, pubkey, _ = cert_fields(cert)
    siglen = modulus_bytes(pubkey)
    head, tail = header(name, serial, 1, {128: 1, 256: 2}[siglen], 'ITLFile.tlv', b'\x01\x02')
    sign_and_write(out, key, head, tail, body, 1, siglen)
elif mode == 'sgn':
    name, cert, payload, filename, digest = sys.argv[4:9]
    cert = open(cert, 'rb').read()
    serial, pubkey, _ = cert_fields(cert)
    siglen = modulus_bytes(pubkey)
    head, tail = header(name, serial, int(digest), {128: 1, 256: 2}[siglen], filename, b'\x01\x00')
    sign_and_write(out, key, head, tail, open(payload, 'rb').read(), int(digest), siglen)
PY
mk() { /usr/bin/python3 "$WORK/mkfile.py" "$@" || die "mkfile.py $*"; }
has() { grep -qxF -- "$1" <<<"$OUT" || die "missing line '$1' in:
$OUT"; }
has_re() { grep -qE -- "$1" <<<"$OUT" || die "no line matching '$1' in:
$OUT"; }

# ---- the sample ----
expect_exit 0 "$BIN" show "$SAMPLE"
has "Length of ITL file: 10370"
has "Version: 1.2"
has "HeaderLength: 388 (BYTES)"
has "28 SIGNERVERSION 2 1.0"
has "3 SIGNERID 2 71"
has "4 SIGNERNAME 23 CN=SAST,O=SAST,OU=SAST"
has "5 SERIALNUMBER 16 6B:A5:DE:3A:26:0B:06:93:37:C7:5B:38:BE:3C:2D:74"
has "8 DIGESTALGORITHM 1 SHA-1"
has "12 SIGNATURE 256"
has "af a0 9d 65 7a c7 65 23"
has "14 FILENAME 12 ITLFile.tlv"
has "15 TIMESTAMP 4 2025-12-30 17:25:42 UTC"
has "ITL Record #:5"
has "4 FUNCTION 2 System Administrator Security Token"
has "4 FUNCTION 2 CCM"
has "4 FUNCTION 2 APP-SERVER"
has "This etoken was used to sign the ITL file."
has "The ITL file was verified successfully."
[ "$(grep -c '^ITL Record #:' <<<"$OUT")" -eq 5 ] || die "not 5 records"
# The certificate's SHA-1 as CUCM prints it, computed here from the bytes at the record's offset.
sha=$(dd if="$SAMPLE" bs=1 skip=$((388 + 5 + 26 + 26 + 19 + 5 + 273 + 259 + 3)) count=868 2>/dev/null |
    openssl dgst -sha1 -r | cut -c1-40 | tr a-f A-F | sed 's/../& /g; s/ $//')
has "9 CERTIFICATE 868 $sha (SHA1 Hash HEX)"
ok "show prints the sample like CUCM's show itl and verifies it"

expect_exit 0 "$BIN" show --json "$SAMPLE"
/usr/bin/python3 - "$OUT" <<'PY' || die "show --json"
import json, sys
d = json.loads(sys.argv[1])
assert d['kind'] == 'tlv' and d['length'] == 10370 and d['header_length'] == 388
assert d['verified'] is True and d['signer_record'] == 1 and d['digest_name'] == 'SHA-1'
assert [r['function'] for r in d['records']] == [0, 1, 1, 7, 7]
assert d['records'][0]['signer'] and not d['records'][1]['signer']
assert all(r['consistent'] for r in d['records'])
assert d['signer']['order'] == 'name,issuer,serial' and d['signer_version'] == '1.0'
PY
ok "show --json is one JSON document with the same facts"

expect_exit 0 "$BIN" verify "$SAMPLE"
has_re "verified: signed by record #1 \(SAST CN=SAST,O=SAST,OU=SAST\)"
expect_exit 0 "$BIN" verify "$SAMPLE" --trust "$SAMPLE"
has "accepted: signed by record #1 (SAST CN=SAST,O=SAST,OU=SAST) of $SAMPLE"
ok "verify accepts the sample, alone and against itself"

# ---- damaged samples ----
cp "$SAMPLE" "$WORK/tampered.tlv"
printf '\x00' | dd of="$WORK/tampered.tlv" bs=1 seek=10000 conv=notrunc 2>/dev/null
expect_exit 1 "$BIN" show "$WORK/tampered.tlv"
has_re "^The ITL file could not be verified: the SHA-1 signature does not verify with the key of CN=SAST;O=SAST;OU=SAST"
expect_exit 1 "$BIN" verify "$WORK/tampered.tlv"
ok "a changed byte: show and verify exit 1"

head -c 300 "$SAMPLE" >"$WORK/short.tlv"
expect_exit 3 "$BIN" show "$WORK/short.tlv"
grep -q "HEADERLENGTH 388 runs past the end of the file (300 bytes)" <<<"$ERR" || die "short: $ERR"
cp "$SAMPLE" "$WORK/fn.tlv"
printf '\x01\x2c' | dd of="$WORK/fn.tlv" bs=1 seek=$((0x16f)) conv=notrunc 2>/dev/null
expect_exit 3 "$BIN" verify "$WORK/fn.tlv"
[ "$ERR" = "itl-sign: $WORK/fn.tlv: offset 0x16e: FILENAME length 300 runs past the end of the header (388 bytes)" ] ||
    die "FILENAME message: $ERR"
cp "$SAMPLE" "$WORK/digest.tlv"
printf '\x07' | dd of="$WORK/digest.tlv" bs=1 seek=$((0x5f)) conv=notrunc 2>/dev/null
expect_exit 3 "$BIN" show "$WORK/digest.tlv"
has_re "could not be verified: offset 0x5c: DIGESTALGORITHM code 7 is unknown"
printf 'not a trust file at all' >"$WORK/junk.tlv"
expect_exit 3 "$BIN" show "$WORK/junk.tlv"
grep -q "expected VERSION (tag 1), found tag 110" <<<"$ERR" || die "junk: $ERR"
expect_exit 3 "$BIN" show "$WORK/does-not-exist.tlv"
ok "malformed files: exit 3 with the offset and the field"

# ---- CUCM's layout, from an independent producer ----
mkcert() { # name subject bits
    openssl req -x509 -newkey rsa:"$3" -nodes -keyout "$WORK/$1.key" -out "$WORK/$1.pem" \
        -subj "$2" -days 365 -sha256 2>/dev/null || die "openssl req $1"
    openssl x509 -in "$WORK/$1.pem" -outform DER -out "$WORK/$1.der"
}
mkcert pub "/CN=cucm-pub.example/OU=TAC/O=Cisco" 1024
mkcert rec "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco" 2048
mkcert capf "/CN=CAPF-75638ad9/OU=TAC/O=Cisco" 1024
mkcert tvs "/CN=cucm-sub.example/OU=TAC/O=Cisco" 2048
mkcert rogue "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco" 2048
PUB="CN=cucm-pub.example;OU=TAC;O=Cisco" REC="CN=ITLRECOVERY_cucm-pub.example;OU=TAC;O=Cisco"
CAPF="CN=CAPF-75638ad9;OU=TAC;O=Cisco" TVS="CN=cucm-sub.example;OU=TAC;O=Cisco"
entries=("$PUB" "$WORK/pub.der" sast "$PUB" "$WORK/pub.der" tftp "$CAPF" "$WORK/capf.der" capf
    "$TVS" "$WORK/tvs.der" tvs "$REC" "$WORK/rec.der" sast "$PUB" "$WORK/pub.der" x99)
mk cucm "$WORK/installed.tlv" "$WORK/pub.key" 0 "${entries[@]}"
expect_exit 0 "$BIN" show "$WORK/installed.tlv"
serial=$(openssl x509 -in "$WORK/pub.pem" -noout -serial | cut -d= -f2)
has "3 SIGNERID 2 $((3 + ${#PUB} + 1 + 3 + ${#serial} / 2 + 3 + ${#PUB} + 1))"
has "5 SERIALNUMBER $((${#serial} / 2)) $(sed 's/../&:/g; s/:$//' <<<"$serial")"
has "4 SIGNERNAME $((${#PUB} + 1)) $PUB"
has "6 CANAME $((${#PUB} + 1)) $PUB"
has "2 DNSNAME 1 "
has "4 FUNCTION 2 TFTP"
has "4 FUNCTION 2 CAPF"
has "4 FUNCTION 2 TVS"
has "4 FUNCTION 2 UNKNOWN (99)"
has "12 HASH ALGORITHM 1 SHA-1"
capf_sha=$(openssl dgst -sha1 -r "$WORK/capf.der" | cut -c1-40 | tr a-f A-F | sed 's/../& /g; s/ $//')
has "11 CERTHASH 20 $capf_sha"
has "1 RECORDLENGTH 2 33"
has "2 DNSNAME 13 10.48.47.153"
has "10 IPADDRESS 4 10.48.47.153"
has "4 FUNCTION 2 CCM+TFTP"
has "This etoken was used to sign the ITL file."
has "This etoken was not used to sign the ITL file."
has "The ITL file was verified successfully."
[ "$(grep -c '^ITL Record #:' <<<"$OUT")" -eq 7 ] || die "not 7 records"
[ "$(grep -c '^8 SIGNATURE' <<<"$OUT")" -eq 5 ] || die "the TVS and placeholder records have no tag 8"
ok "a CUCM-layout ITL (DNSNAME, CERTHASH records, no tag 8, 33-byte placeholder) shows like the seeds"

# ---- verify --trust: what a phone holding installed.tlv would accept ----
mk cucm "$WORK/reset.tlv" "$WORK/rec.key" 0 "$REC" "$WORK/rec.der" sast "$PUB" "$WORK/pub.der" tftp
expect_exit 0 "$BIN" verify "$WORK/reset.tlv" --trust "$WORK/installed.tlv"
has "accepted: signed by record #5 (SAST $REC) of $WORK/installed.tlv"
has_re "^rule: a new ITL signed by a SAST record of the installed ITL \\(docs/trust.md R1"
mk cucm "$WORK/rogue.tlv" "$WORK/rogue.key" 0 "$REC" "$WORK/rogue.der" sast
expect_exit 0 "$BIN" verify "$WORK/rogue.tlv"  # valid on its own...
expect_exit 1 "$BIN" verify "$WORK/rogue.tlv" --trust "$WORK/installed.tlv"  # ...but not trusted
has_re "^rejected: "
mk cucm "$WORK/bytvs.tlv" "$WORK/tvs.key" 0 "$TVS" "$WORK/tvs.der" sast
expect_exit 1 "$BIN" verify "$WORK/bytvs.tlv" --trust "$WORK/installed.tlv"
has "rejected: the signer $TVS is record #4 of the installed ITL as TVS, and a phone takes a new ITL only from its SAST, TFTP or CCM+TFTP records"
ok "verify --trust accepts the recovery signer and rejects an unknown or non-SAST one"

# ---- .sgn ----
printf '<device>\n  <fullConfig>true</fullConfig>\n</device>\n' >"$WORK/SEP001122334455.cnf.xml"
mk sgn "$WORK/SEP001122334455.cnf.xml.sgn" "$WORK/pub.key" "$PUB" "$WORK/pub.der" \
    "$WORK/SEP001122334455.cnf.xml" SEP001122334455.cnf.xml.sgn 3
expect_exit 0 "$BIN" show "$WORK/SEP001122334455.cnf.xml.sgn"
has "Version: 1.0"
has "8 DIGESTALGORITHM 1 SHA-512"
has "14 FILENAME 28 SEP001122334455.cnf.xml.sgn"
has "Payload: $(stat -c %s "$WORK/SEP001122334455.cnf.xml") bytes"
has_re "^The signature was not checked: "
expect_exit 0 "$BIN" show "$WORK/SEP001122334455.cnf.xml.sgn" --cert "$WORK/pub.pem"
has "The signed file was verified successfully with $WORK/pub.pem."
expect_exit 0 "$BIN" show "$WORK/SEP001122334455.cnf.xml.sgn" --trust "$WORK/installed.tlv"
has "The signed file was verified successfully with record #2 (TFTP) of $WORK/installed.tlv."
expect_exit 1 "$BIN" show "$WORK/SEP001122334455.cnf.xml.sgn" --cert "$WORK/rec.pem"
expect_exit 2 "$BIN" verify "$WORK/SEP001122334455.cnf.xml.sgn"
grep -q "give --cert PEM or --trust ITL" <<<"$ERR" || die "verify .sgn without cert: $ERR"
expect_exit 0 "$BIN" verify "$WORK/SEP001122334455.cnf.xml.sgn" --trust "$WORK/installed.tlv"
has "accepted: signed by record #2 (TFTP $PUB) of $WORK/installed.tlv"
mk cucm "$WORK/sastonly.tlv" "$WORK/pub.key" 0 "$PUB" "$WORK/pub.der" sast
expect_exit 1 "$BIN" verify "$WORK/SEP001122334455.cnf.xml.sgn" --trust "$WORK/sastonly.tlv"
has "rejected: the signer $PUB is record #1 of the installed ITL as System Administrator Security Token, and a phone takes a new config only from its TFTP or CCM+TFTP records"
expect_exit 2 "$BIN" verify "$WORK/SEP001122334455.cnf.xml.sgn" --trust "$WORK/SEP001122334455.cnf.xml.sgn"
grep -q -- "--trust needs an ITL or CTL (.tlv)" <<<"$ERR" || die "verify --trust .sgn: $ERR"
expect_exit 1 "$BIN" verify "$WORK/SEP001122334455.cnf.xml.sgn" --cert "$WORK/tvs.pem"
expect_exit 2 "$BIN" verify "$WORK/SEP001122334455.cnf.xml.sgn" --cert "$WORK/tvs.pem" --trust "$WORK/installed.tlv"
ok "a .sgn: shown, verified with --cert or --trust, rejected with the wrong certificate"

"$BIN" strip "$WORK/SEP001122334455.cnf.xml.sgn" >"$WORK/stripped" || die "strip to stdout"
cmp -s "$WORK/stripped" "$WORK/SEP001122334455.cnf.xml" || die "strip: not the original bytes"
expect_exit 0 "$BIN" strip "$WORK/SEP001122334455.cnf.xml.sgn" -o "$WORK/out.xml"
cmp -s "$WORK/out.xml" "$WORK/SEP001122334455.cnf.xml" || die "strip -o: not the original bytes"
ls "$WORK"/out.xml.tmp.* >/dev/null 2>&1 && die "strip left a temp file"
expect_exit 3 "$BIN" strip "$SAMPLE"
grep -q "not a .sgn" <<<"$ERR" || die "strip of an ITL: $ERR"
expect_exit 6 "$BIN" strip "$WORK/SEP001122334455.cnf.xml.sgn" -o "$WORK/no-such-dir/out.xml"
ok "strip gives the original bytes back (stdout and -o), refuses an ITL"

for c in show verify strip; do
    expect_exit 0 "$BIN" "$c" --help
    grep -q "^usage: itl-sign $c" <<<"$OUT" || die "$c --help"
done
expect_exit 2 "$BIN" show
expect_exit 2 "$BIN" show --no-such-option "$SAMPLE"
ok "--help for show, verify and strip; usage errors exit 2"
