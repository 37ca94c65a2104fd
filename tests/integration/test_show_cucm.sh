#!/bin/bash
# SPDX-License-Identifier: MIT
# itl-sign show --cucm against CUCM's own `show itl` dumps (tests/integration/cucm_dumps/, from
# the seeds) and the certutils sample; the checksum block in text and --json.
#
# The seeds' files are not public, so the ITLs are written here (Python for the bytes, openssl
# for keys, certificates and signatures) with the seeds' records: the same names, serial
# numbers, roles, key sizes, DNSNAME length, and certificates padded to the same DER length,
# so every length CUCM printed comes out the same. What depends on the key material (the
# checksums, the signature bytes, certificate hashes) is compared in shape with the seeds and
# in value with the bytes written here.
. "$(dirname "$0")/lib.sh"

DUMPS=$ITL_SRC/tests/integration/cucm_dumps
SAMPLE=$ITL_SRC/tests/unit/fixtures/ITLFile-certutils-sample.tlv
[ -x "$BIN" ] || die "no $BIN (build first)"
PY=/usr/bin/python3

# ---- certificates with the seeds' subjects, serials, key sizes and DER lengths ----
printf '[req]\ndistinguished_name=dn\n[dn]\n' >"$WORK/min.cnf"
# mkcert NAME SUBJECT BITS SERIAL [DER_LENGTH]: a self-signed certificate, padded with an
# nsComment extension to exactly DER_LENGTH bytes when given.
mkcert() {
    local name=$1 subj=$2 bits=$3 serial=$4 want=${5:-} pad=8 len try
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:"$bits" -out "$WORK/$name.key" 2>/dev/null ||
        die "genpkey $name"
    for try in 1 2 3 4 5; do
        openssl req -x509 -new -config "$WORK/min.cnf" -key "$WORK/$name.key" -subj "$subj" \
            -set_serial "$serial" -days 3650 -sha1 -addext "nsComment=$(head -c "$pad" /dev/zero | tr '\0' x)" \
            -outform DER -out "$WORK/$name.der" 2>/dev/null || die "openssl req $name"
        len=$(stat -c %s "$WORK/$name.der")
        [ -z "$want" ] || [ "$len" -eq "$want" ] && return 0
        pad=$((pad + want - len))
        [ "$pad" -gt 0 ] || die "$name: the certificate is over $want bytes without padding"
    done
    die "$name: could not make a $want-byte certificate (last $len)"
}
DN=/C=US/ST=nc/L=rtp/O=cisco/OU=tac
mkcert pub "$DN/CN=test10pub.joemar2.lab" 1024 0x614052E91EE97C779B7B5E810AB146A5 684
mkcert rec "$DN/CN=ITLRECOVERY_test10pub.joe2.lab" 1024 0x6E3F65C297B3E01FE74281AB52CC55DC 692
mkcert capf "$DN/CN=CAPF-75638ad9" 1024 0x42BF37779B16AF1CD23088C217249DAA
mkcert tvs "$DN/CN=test10pub.joemar2.lab" 1024 0x765984D8B730606336E5C7B6A7DDB9D6
mkcert sub "$DN/CN=test10sub.joemar2.lab" 2048 0x67D1A19EF8AB91E6C0A610352630EE02
ok "certificates with the seeds' serials, key sizes and certificate lengths (684, 692)"

# mkitl.py OUT SIGNER(pub|rec): the seeds' six records in CUCM's layout (tags in numeric order,
# a 2-byte DNSNAME, CAPF/TVS records with CERTHASH + HASH ALGORITHM and no CERTIFICATE), the
# header 1,2,3{4,5,6},7{8,9{10,11}},12,14,15 and 0x0D padding, signed with openssl; OUT.json
# holds what the dump must show for values that depend on the keys.
cat >"$WORK/mkitl.py" <<'PY'
import hashlib, json, os, struct, subprocess, sys

work, out, signer = sys.argv[1], sys.argv[2], sys.argv[3]

sys.path.insert(0, os.environ['ITL_SRC'] + '/tests/integration')
from der import der, children  # noqa: E402

def cert_fields(c):
    _, s, e = der(c, 0)
    tbs, _, sig = children(c, s, e)
    f = children(c, tbs[1], tbs[2])
    if f[0][0] == 0xa0:
        f = f[1:]
    spki = children(c, f[5][1], f[5][2])
    return c[f[0][1]:f[0][2]].lstrip(b'\0'), c[spki[1][1] + 1:spki[1][2]], c[sig[1] + 1:sig[2]]

def tlv(tag, v):
    return struct.pack('>BH', tag, len(v)) + v

def s(text):
    return text.encode() + b'\0'

tail = ';OU=tac;O=cisco;L=rtp;ST=nc;C=US'
PUB, REC = 'CN=test10pub.joemar2.lab' + tail, 'CN=ITLRECOVERY_test10pub.joe2.lab' + tail
CAPF, SUB = 'CN=CAPF-75638ad9' + tail, 'CN=test10sub.joemar2.lab' + tail
rows = [(PUB, 'pub', 0, True), (PUB, 'pub', 3, True), (CAPF, 'capf', 4, False),
        (PUB, 'tvs', 21, False), (REC, 'rec', 0, True), (SUB, 'sub', 21, False)]
filename, dns, ip = 'ITLFile.tlv', lambda c: b'\0\0', None
if signer == 'ctl':  # TAC 118893's CUCM 10.5 CTL: DNSNAME and IPADDRESS in every record
    signer, filename, ip = 'pub', 'CTLFile.tlv', bytes([10, 48, 47, 150])
    rows = [(PUB, 'pub', 0, True), (PUB, 'pub', 2, True), (CAPF, 'capf', 4, True), (SUB, 'sub', 2, True)]
    dns = lambda c: s({'pub': 'test10pub', 'capf': 'test10pub', 'sub': 'test10sub'}[c])
certs = {n: open('%s/%s.der' % (work, n), 'rb').read() for n in ('pub', 'rec', 'capf', 'tvs', 'sub')}
body, hashes = b'', []
for name, c, role, with_cert in rows:
    serial, pubkey, sigval = cert_fields(certs[c])
    r = tlv(2, dns(c)) + tlv(3, s(name)) + tlv(4, struct.pack('>H', role)) + tlv(5, s(name))
    r += tlv(6, serial) + tlv(7, pubkey) + tlv(8, sigval)
    r += tlv(9, certs[c]) if with_cert else tlv(11, hashlib.sha1(certs[c]).digest()) + tlv(12, b'\1')
    r += tlv(10, ip) if ip else b''
    body += tlv(1, struct.pack('>H', len(r) + 5)) + r
    hashes.append(hashlib.sha1(certs[c]).hexdigest().upper())

name = PUB if signer == 'pub' else REC
serial, _, _ = cert_fields(certs[signer])
info = tlv(4, s(name)) + tlv(5, serial) + tlv(6, s(name))
head = tlv(1, b'\1\2') + tlv(2, b'\0\0') + struct.pack('>BH', 3, len(info)) + info
head += b'\x07\x00\x0f' + tlv(8, b'\1') + b'\x09\x00\x08' + tlv(10, b'\0') + tlv(11, b'\1')
rest = tlv(14, s(filename)) + tlv(15, struct.pack('>I', 1393439067))
while (len(head) + len(rest) + 3 + 128) % 4:
    rest += b'\x0d'
hl = len(head) + len(rest) + 3 + 128
head = head[:8] + struct.pack('>H', hl) + head[10:]
open(out + '.msg', 'wb').write(head + rest + body)
subprocess.run(['openssl', 'dgst', '-sha1', '-sign', '%s/%s.key' % (work, signer), '-out',
                out + '.sig', out + '.msg'], check=True)
sig = open(out + '.sig', 'rb').read()
data = head + tlv(12, sig) + rest + body
open(out, 'wb').write(data)
json.dump({'md5': hashlib.md5(data).hexdigest(), 'sha1': hashlib.sha1(data).hexdigest(),
           'signature': sig.hex(), 'hashes': hashes, 'rec_name': REC}, open(out + '.json', 'w'))
PY

# check.py DUMP OUTPUT FACTS: every line of the seed dump against show --cucm's (see
# cucm_dumps/README.md for the line kinds); blank lines are not compared.
cat >"$WORK/check.py" <<'PY'
import json, re, sys

dump, output, facts = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
want = [l.rstrip('\n') for l in open(dump) if l.strip() and not l.startswith('#')]
have = [' '.join(l.split()) for l in open(output) if l.strip()]
sig = bytes.fromhex(facts['signature'])
values = iter(['%s(MD5)' % facts['md5'], '%s(SHA1)' % facts['sha1']])
hashes = iter(facts['hashes'])
shape = lambda t: re.sub(r'[0-9A-Fa-f]', 'h', t)
i = 0

def fail(msg):
    sys.exit('line %d: %s\n  ours: %s' % (i + 1, msg, have[i] if i < len(have) else '(end)'))

for w in want:
    kind, text = w[0], w[2:]
    if i >= len(have):
        fail('the dump ends before: ' + w)
    if kind == '=':
        if have[i] != text:
            fail('the seed has: ' + text)
    elif kind == 'n':  # same tag, name, length; the name is the one this test wrote
        if have[i].split()[:3] != text.split()[:3] or have[i].split()[3] != facts['rec_name']:
            fail('the seed has (but for the name): ' + text)
    elif kind == '-':
        if not re.fullmatch(r'[-_ ]+', have[i]):
            fail('the seed has a rule here')
    elif kind == '~':
        if 'CERTIFICATE' in text or 'CERTHASH' in text:
            value = ' '.join(text.split()[:3]) + ' ' + ' '.join(re.findall('..', next(hashes)))
            value += ' (SHA1 Hash HEX)' if 'CERTIFICATE' in text else ''
        else:
            value = next(values)
        if shape(have[i]) != shape(text):
            fail('not the shape of the seed line: ' + text)
        if have[i] != value:
            fail('not the value of the bytes written: ' + value)
    elif kind == 'S':  # the seed shows int(text) rows; ours must be all len/8 of them
        rows = []
        while i < len(have) and re.fullmatch(r'[0-9a-f]{1,2}( [0-9a-f]{1,2})*', have[i]):
            rows.append(have[i].split())
            i += 1
        n = int(text)
        if len(rows) != len(sig) // 8 or not len(sig) // 8 - 1 <= n <= len(rows):
            fail('%d signature rows, the seed %d, the signature %d bytes' % (len(rows), n, len(sig)))
        tokens = [t for r in rows for t in r]
        if any(len(r) != 8 for r in rows) or any(len(t) == 2 and t[0] == '0' for t in tokens):
            fail('signature rows: eight "%x" bytes a row, no leading zero')
        if bytes(int(t, 16) for t in tokens) != sig:
            fail('the signature rows are not the file\'s signature')
        continue
    i += 1
if i != len(have):
    fail('lines the seed does not have')
print('%d lines compared' % len(want))
PY

# ---- the seeds' two dumps: before and after `utils itl reset` ----
for which in before:pub:1393439067 after:rec:1393439686; do
    IFS=: read -r dump signer mtime <<<"$which"
    f=$WORK/ITLFile-$dump.tlv
    $PY "$WORK/mkitl.py" "$WORK" "$f" "$signer" || die "mkitl.py $dump"
    touch -d "@$mtime" "$f"
    # The seeds' CUCM printed Pacific time; PST8PDT needs no zoneinfo file.
    OUT=$(TZ=PST8PDT "$BIN" show --cucm "$f" 2>"$WORK/err") || die "show --cucm $dump: $(cat "$WORK/err")"
    [ -s "$WORK/err" ] && die "show --cucm $dump wrote to stderr: $(cat "$WORK/err")"
    printf '%s\n' "$OUT" >"$WORK/$dump.out"
    res=$($PY "$WORK/check.py" "$DUMPS/test10pub-$dump.txt" "$WORK/$dump.out" "$f.json") ||
        die "show --cucm differs from the seed dump ($dump): $res"
    ok "show --cucm matches the seed's show itl $dump the reset line by line ($res)"
done

# ---- a CTL in CUCM 10.5's layout (TAC 118893): the CTL words, DNSNAME printed, IPADDRESS not ----
$PY "$WORK/mkitl.py" "$WORK" "$WORK/CTLFile.tlv" ctl || die "mkitl.py ctl"
expect_exit 0 "$BIN" show --cucm "$WORK/CTLFile.tlv"
for line in "The checksum value of the CTL file:" "Length of CTL file: $(stat -c %s "$WORK/CTLFile.tlv")" \
    "Parse CTL File" "CTL Record #:4" "This etoken was used to sign the CTL file." \
    "$(printf '2\tDNSNAME\t\t10\ttest10pub')" "$(printf '2\tDNSNAME\t\t10\ttest10sub')" \
    "$(printf '10\tIPADDRESS\t4\t')" "$(printf '4\tFUNCTION\t2\tCCM+TFTP')" \
    "The CTL file was verified successfully."; do
    grep -qxF -- "$line" <<<"$OUT" || die "show --cucm of a CTL: no line '$line' in:
$OUT"
done
[ "$(grep -cxF "$(printf '10\tIPADDRESS\t4\t')" <<<"$OUT")" -eq 4 ] || die "an IPADDRESS line per record"
grep -q "ITL" <<<"$OUT" && die "show --cucm of a CTL says ITL"
ok "a CTL: CUCM's CTL words, DNSNAME printed, IPADDRESS with its length only (as TAC 118893's show ctl)"

# ---- the columns: tabs at 8-column stops, as CUCM 10.5's show ctl (TAC 118893) lines up ----
out=$WORK/before.out
grep -qxF "$(printf 'BYTEPOS\tTAG\t\tLENGTH\tVALUE')" "$out" || die "no BYTEPOS header with CUCM's tabs"
grep -qxF -- "$(printf -- '-------\t---\t\t------\t-----')" "$out" || die "no column rule with CUCM's tabs"
grep -qxF "$(printf 'Version:\t1.2')" "$out" || die "Version line"
grep -qxF "$(printf 'HeaderLength:\t324 (BYTES)')" "$out" || die "HeaderLength line"
grep -qxF "$(printf '6\tCANAME\t\t57\tCN=test10pub.joemar2.lab;OU=tac;O=cisco;L=rtp;ST=nc;C=US')" "$out" ||
    die "CANAME is not followed by two tabs"
grep -qxF "$(printf '2\tDNSNAME\t\t2\t')" "$out" || die "DNSNAME: not blank or not two tabs"
grep -A1 -xF "Parse ITL File" "$out" | tail -1 | grep -qx -- '-\{16\}' || die "the rule under Parse ITL File"
[ "$(grep -A1 '^ITL Record #:' "$out" | grep -cx -- '----')" -eq 6 ] || die "the rule under each record"
# Every TLV line: the length starts at column 24 (names under 16 characters) or 32.
expand -t8 "$out" | $PY -c '
import re, sys
n = 0
for line in sys.stdin:
    m = re.match(r"(\d+) +([A-Z][A-Z ]*?[A-Z]) +(\d+)", line)
    if not m or not line.startswith(m.group(1) + " " * (8 - len(m.group(1)))):
        continue
    col = 24 if len(m.group(2)) < 16 else 32
    assert line.index(m.group(3), 8 + len(m.group(2))) == col, line
    n += 1
assert n > 60, n
' || die "columns not at CUCM's tab stops"
grep -q PADDING "$out" && die "a PADDING line (CUCM prints none)"
ok "CUCM's columns: tabs, two after names under 8 characters, no PADDING line"

# ---- the certutils sample: what its facts (samples/README.md) allow, byte for byte ----
# The expected dump is written here from the facts and a walk of the bytes, whole: every line,
# tab and blank line (the layout rules of docs/format.md "show --cucm").
expect_exit 0 env TZ=UTC "$BIN" show --cucm "$SAMPLE"
printf '%s\n' "$OUT" >"$WORK/sample.out"
$PY - "$SAMPLE" "$WORK/sample.out" <<'PY' || die "show --cucm of the sample"
import hashlib, os, struct, sys, time
data, out = open(sys.argv[1], 'rb').read(), open(sys.argv[2]).read()
assert len(data) == 10370
sig = data[107 + 3:107 + 3 + 256]
assert hashlib.sha1(data[:107] + data[107 + 259:]).hexdigest() == 'fef024dcb9386583eea1a6bcb0d7d5dc49762cb2'
mtime = time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime(os.stat(sys.argv[1]).st_mtime))
cols = ['BYTEPOS\tTAG\t\tLENGTH\tVALUE', '-------\t---\t\t------\t-----']
want = ['The checksum value of the ITL file:', '%s(MD5)' % hashlib.md5(data).hexdigest(),
        '%s(SHA1)' % hashlib.sha1(data).hexdigest(), '', 'Length of ITL file: 10370',
        'The ITL File was last modified on ' + mtime, '', 'Parse ITL File', '-' * 16, '',
        'Version:\t1.2', 'HeaderLength:\t388 (BYTES)', ''] + cols + [
        '28\tSIGNERVERSION\t2\t', '3\tSIGNERID\t2\t71', '4\tSIGNERNAME\t23\tCN=SAST,O=SAST,OU=SAST',
        '6\tCANAME\t\t23\tCN=SAST,O=SAST,OU=SAST',
        '5\tSERIALNUMBER\t16\t6B:A5:DE:3A:26:0B:06:93:37:C7:5B:38:BE:3C:2D:74',
        '7\tSIGNATUREINFO\t2\t15', '8\tDIGESTALGORTITHM\t1\t', '9\tSIGNATUREALGOINFO\t2\t8',
        '10\tSIGNATUREALGORTITHM\t1\t', '11\tSIGNATUREMODULUS\t1\t', '12\tSIGNATURE\t256\t']
want += [''.join('%-4x' % b for b in sig[i:i + 7]) + '%x' % sig[i + 7] for i in range(0, 256, 8)]
want += ['14\tFILENAME\t12\t', '15\tTIMESTAMP\t4\t']
names = {1: 'RECORDLENGTH', 3: 'SUBJECTNAME', 4: 'FUNCTION', 5: 'ISSUERNAME', 6: 'SERIALNUMBER',
         7: 'PUBLICKEY', 8: 'SIGNATURE', 9: 'CERTIFICATE'}
roles = {0: 'System Administrator Security Token', 1: 'CCM', 7: 'APP-SERVER'}
pos, n = 388, 0
while pos < len(data):  # the records, walked here
    n += 1
    length = struct.unpack('>H', data[pos + 3:pos + 5])[0]
    want += ['', 'ITL Record #:%d' % n, '----'] + cols
    p, role = pos, None
    while p < pos + length:
        tag, l = data[p], struct.unpack('>H', data[p + 1:p + 3])[0]
        v = data[p + 3:p + 3 + l]
        value = {1: lambda: str(struct.unpack('>H', v)[0]), 3: lambda: v[:-1].decode(),
                 5: lambda: v[:-1].decode(), 4: lambda: roles[struct.unpack('>H', v)[0]],
                 6: lambda: ':'.join('%02X' % b for b in v),
                 9: lambda: ' '.join('%02X' % b for b in hashlib.sha1(v).digest()) + ' (SHA1 Hash HEX)'}
        want.append('%d\t%s\t%d\t%s' % (tag, names[tag], l, value.get(tag, lambda: '')()))
        role = struct.unpack('>H', v)[0] if tag == 4 else role
        p += 3 + l
    if role == 0:
        want.append('This etoken was %sused to sign the ITL file.' % ('' if n == 1 else 'not '))
    pos += length
assert n == 5 and pos == 10370
want += ['', 'The ITL file was verified successfully.']
have = out.split('\n')[:-1]
for i, (h, w) in enumerate(zip(have, want)):
    assert h == w, 'line %d: %r, the facts say %r' % (i + 1, h, w)
assert len(have) == len(want), (len(have), len(want))
print('%d lines' % len(want))
PY
ok "show --cucm of the certutils sample, byte for byte as its facts and its bytes say"

# ---- the checksum block in the default output and in --json ----
md5=$(md5sum "$SAMPLE" | cut -c1-32) sha1=$(sha1sum "$SAMPLE" | cut -c1-40)
expect_exit 0 "$BIN" show "$SAMPLE"
[ "$(head -3 <<<"$OUT")" = "The checksum value of the ITL file:
${md5}(MD5)
${sha1}(SHA1)" ] || die "default show: the checksum block does not come first: $(head -3 <<<"$OUT")"
expect_exit 0 "$BIN" show --json "$SAMPLE"
$PY -c 'import json, sys; d = json.loads(sys.argv[1])
assert d["checksum"] == {"md5": sys.argv[2], "sha1": sys.argv[3]}, d["checksum"]' "$OUT" "$md5" "$sha1" ||
    die "show --json: checksum"
ok "the checksum block: first in show's text, \"checksum\" in --json (md5sum and sha1sum agree)"

# ---- what --cucm refuses ----
expect_exit 2 "$BIN" show --cucm --json "$SAMPLE"
grep -q -- "--cucm and --json are alternatives" <<<"$ERR" || die "--cucm --json: $ERR"
printf '<x/>\n' >"$WORK/SEP1.cnf.xml"
$PY - "$WORK" <<'PY' || die "a .sgn"
import struct, subprocess, sys
w = sys.argv[1]
def tlv(t, v): return struct.pack('>BH', t, len(v)) + v
head = tlv(1, b'\1\0') + tlv(2, b'\0\0') + tlv(3, tlv(4, b'CN=x\0') + tlv(5, b'\1') + tlv(6, b'CN=x\0'))
head += tlv(7, tlv(8, b'\1') + tlv(9, tlv(10, b'\0') + tlv(11, b'\1')))
rest = tlv(14, b'SEP1.cnf.xml.sgn\0') + tlv(15, b'\0\0\0\1')
while (len(head) + len(rest) + 131) % 4: rest += b'\x0d'
hl = len(head) + len(rest) + 131
head = head[:8] + struct.pack('>H', hl) + head[10:]
open(w + '/SEP1.cnf.xml.sgn', 'wb').write(head + tlv(12, bytes(128)) + rest + open(w + '/SEP1.cnf.xml', 'rb').read())
PY
expect_exit 2 "$BIN" show --cucm "$WORK/SEP1.cnf.xml.sgn"
grep -q -- "--cucm prints ITL/CTL files only" <<<"$ERR" || die "--cucm of a .sgn: $ERR"
cd "$WORK" || die "cd $WORK"
expect_exit 3 "$BIN" show -- --cucm
grep -q -- "--cucm" <<<"$ERR" || die "show -- --cucm: $ERR"
ok "--cucm refuses --json and a .sgn; after -- it is a file name"
