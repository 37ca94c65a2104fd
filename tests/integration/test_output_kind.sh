#!/bin/bash
# The operation decides the kind of its output (issue 12, critical): a peer allowed only to
# `sign` sends the records of an ITL it made itself (its own certificate as SAST and CCM+TFTP)
# with `--filename ITLFile.tlv`; on 721ee2a it got back, signed by the TFTP key, a file that
# `itl-sign show` reads as an ITL and that `verify --trust` of the cluster's ITL accepts.
# Here: that request and its variants (names an ITL reader accepts, a whole ITL, a .sgn whose
# FILENAME says .tlv, encrypt, build and reset tricked into the other kind) are refused with
# rule output-kind, through itl-signd (a sign-only uid and root) and in direct mode, and no
# output of `sign` is ever read as an ITL/CTL. Runs as root (CI); builds nothing.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it switches uids with setpriv"
svc_init
svc_make_token
svc_test_user
svc_make_keys

ACCESS="access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }
  - { user: $TEST_USER, allow: [sign, status] }"
CFG=$T/itl-signd.yaml
svc_config "$CFG" "$ACCESS"
mkdir -p "$T/run" && chmod 0755 "$T/run"
sed -i 's/mode: "0660"/mode: "0666"/' "$CFG"
svc_start "$CFG"
S=$T/run/socket

# The cluster's ITL, as an admin builds it: the TFTP certificate is a SAST there.
"$CLI" --socket "$S" build --sast label:ITLRecovery --sast label:CallManager \
    --ccm-tftp label:CallManager -o "$T/ITLFile.tlv" >/dev/null 2>"$T/build.err" ||
    fail "build the cluster ITL: $(cat "$T/build.err")"

# The attacker's own certificate and the records of an ITL made of it (SAST, CCM+TFTP).
mkdir -p "$T/evil" && chmod 0777 "$T/evil"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/evil/key.pem" -out "$T/evil/cert.pem" \
    -subj "/CN=evil/O=attacker" -days 30 2>/dev/null || fail "openssl req"
"$PY" - "$T/evil/cert.pem" "$T/evil/records.bin" <<'EOF' || fail "write the forged records"
import struct, sys
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

def tlv(tag, v):
    return struct.pack(">BH", tag, len(v)) + v

def name(n):
    return ";".join(a.rfc4514_string() for a in reversed(list(n))).encode() + b"\0"

c = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
der = c.public_bytes(Encoding.DER)
serial = c.serial_number.to_bytes((c.serial_number.bit_length() + 7) // 8, "big")
out = b""
for function in (0, 2):  # SAST, CCM+TFTP
    body = (tlv(2, b"\0") + tlv(3, name(c.subject)) + tlv(4, struct.pack(">H", function)) +
            tlv(5, name(c.issuer)) + tlv(6, serial) +
            tlv(7, c.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1)) +
            tlv(8, c.signature) + tlv(9, der))
    out += tlv(1, struct.pack(">H", 5 + len(body))) + body
open(sys.argv[2], "wb").write(out)
EOF
chmod 0644 "$T/evil/records.bin"

as_user() { setpriv --reuid="$TEST_USER" --regid="$(id -g "$TEST_USER")" --clear-groups "$@"; }

# refused WHAT RC CMD...: CMD exits RC, says why (output-kind wording), leaves no output.
refused() {
    local what=$1 want=$2 rc=0
    shift 2
    rm -rf "$T/out" && mkdir -p "$T/out" && chmod 0777 "$T/out"
    "$@" >"$T/cmd.out" 2>"$T/cmd.err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "$what: exit $rc, want $want: $(cat "$T/cmd.err")"
    [ -z "$(ls -A "$T/out")" ] || fail "$what: refused but left $(ls "$T/out")"
}

# ---- the attack, exactly: a sign-only peer, the records, --filename ITLFile.tlv ----
refused "sign-only peer, forged ITL records, --filename ITLFile.tlv" 5 \
    as_user "$CLI" --socket "$S" sign "$T/evil/records.bin" --filename ITLFile.tlv --out-dir "$T/out"
grep -q "records.bin is an ITL/CTL, ITL/CTL records" "$T/cmd.err" &&
    grep -q "sign makes signed configs (.sgn) only" "$T/cmd.err" ||
    fail "the refusal does not say why: $(cat "$T/cmd.err")"
grep -q "\"op\":\"sign\".*\"result\":\"denied\".*\"rule\":\"output-kind\"" "$T/log/audit.log" ||
    fail "the refusal is not audited with rule output-kind"
ok "a sign-only peer's forged ITL records with --filename ITLFile.tlv: $(cat "$T/cmd.err")"

# ---- the same bytes as root (every right), and the other ways in ----
refused "root, the records, --filename ITLFile.tlv" 5 \
    "$CLI" --socket "$S" sign "$T/evil/records.bin" --filename ITLFile.tlv --out-dir "$T/out"
cp "$T/evil/records.bin" "$T/evil/ITLFile.tlv"
refused "the records in a file named ITLFile.tlv" 5 \
    "$CLI" --socket "$S" sign "$T/evil/ITLFile.tlv" --out-dir "$T/out"
# On 721ee2a a whole ITL given to sign was "re-signed" as a .sgn that kept FILENAME ITLFile.tlv.
cp "$T/ITLFile.tlv" "$T/evil/real.tlv"
refused "sign of the cluster's ITL itself" 5 \
    "$CLI" --socket "$S" sign "$T/evil/real.tlv" --out-dir "$T/out"
refused "encrypt of the records" 5 \
    "$CLI" --socket "$S" encrypt "$T/evil/records.bin" --phone-cert "$T/evil/cert.pem" -o "$T/out"
ok "root cannot either: the records under any name, the real ITL through sign, encrypt of records"

# A config whose FILENAME an ITL/CTL reader would take: every spelling is refused.
printf '<device><fullConfig>true</fullConfig></device>\n' >"$T/evil/SEP001122334455.cnf.xml"
n=0
for name in ITLFile.tlv ITLFILE.TLV "ITLFile.tlv " ITLFile.tlv. ITLFile.tlv.sgn CTLFile.tlv \
    CTLSEP001122334455.tlv ITLSEP001122334455.sgn itlfile.sgn x.TlV.sgn dir/ITLFile.tlv \
    'dir\ITLFile.sgn' ../SEP1.cnf.xml.sgn /etc/SEP1.cnf.xml.sgn a//b.sgn ./a.sgn SEP1.cnf.xml \
    SEP1.cnf.xml.SGN SEP1.cnf.xml.sgn. SEP1.cnf.xml.enc.sgn; do
    refused "--filename '$name'" 5 \
        as_user "$CLI" --socket "$S" sign "$T/evil/SEP001122334455.cnf.xml" --filename "$name" \
        --out-dir "$T/out"
    grep -q "FILENAME" "$T/cmd.err" || fail "--filename '$name': unclear: $(cat "$T/cmd.err")"
    n=$((n + 1))
done
ok "$n FILENAMEs an ITL/CTL reader could accept, or that leave their directory, are refused"
cp "$T/evil/SEP001122334455.cnf.xml" "$T/evil/ITLFile.tlv"
refused "a config named ITLFile.tlv" 5 \
    "$CLI" --socket "$S" sign "$T/evil/ITLFile.tlv" --out-dir "$T/out"
ok "a config named ITLFile.tlv (FILENAME ITLFile.tlv.sgn): $(cat "$T/cmd.err")"
refused "sign-only peer, --key recovery" 5 \
    as_user "$CLI" --socket "$S" sign "$T/evil/SEP001122334455.cnf.xml" --key recovery \
    --out-dir "$T/out"
grep -q "may not sign config files" "$T/cmd.err" || fail "--key recovery: $(cat "$T/cmd.err")"
ok "sign cannot choose the recovery key (policy.recovery-signs): $(cat "$T/cmd.err")"

# A .sgn-shaped file whose FILENAME says .tlv: re-signing would keep that FILENAME.
"$PY" - "$T/evil/SEP001122334455.cnf.xml" "$T/evil/fake.sgn" <<'EOF' || fail "fake.sgn"
import struct, sys
def tlv(tag, v):
    return struct.pack(">BH", tag, len(v)) + v
rest = tlv(8, b"\x01") + tlv(12, b"\x00" * 128) + tlv(14, b"ITLFile.tlv\0")
hl = 10 + len(rest)
pad = (4 - hl % 4) % 4
head = tlv(1, b"\x01\x00") + tlv(2, struct.pack(">H", hl + pad)) + rest + b"\x0d" * pad
open(sys.argv[2], "wb").write(head + open(sys.argv[1], "rb").read())
EOF
refused "re-sign of a .sgn whose FILENAME is ITLFile.tlv" 5 \
    "$CLI" --socket "$S" sign "$T/evil/fake.sgn" --out-dir "$T/out"
ok "a .sgn whose FILENAME is ITLFile.tlv is not re-signed: $(cat "$T/cmd.err")"

# ---- build and reset never make a .sgn ----
refused "build --filename SEP1.cnf.xml.sgn" 5 \
    "$CLI" --socket "$S" build --sast label:CallManager --filename SEP1.cnf.xml.sgn -o "$T/out/b"
"$PY" - "$T/ITLFile.tlv" "$T/evil/renamed.tlv" <<'EOF' || fail "renamed.tlv"
import sys
b = open(sys.argv[1], "rb").read()
assert b.count(b"ITLFile.tlv\0") == 1
open(sys.argv[2], "wb").write(b.replace(b"ITLFile.tlv\0", b"ITLFile.sgn\0"))
EOF
refused "reset of an ITL whose FILENAME is ITLFile.sgn" 5 \
    "$CLI" --socket "$S" reset "$T/evil/renamed.tlv" -o "$T/out/r.tlv"
grep -q "reset keeps its FILENAME" "$T/cmd.err" || fail "reset: unclear: $(cat "$T/cmd.err")"
"$CLI" --socket "$S" sign "$T/evil/SEP001122334455.cnf.xml" --out-dir "$T/evil" >/dev/null \
    2>"$T/cmd.err" || fail "sign a config: $(cat "$T/cmd.err")"
rc=0
"$CLI" --socket "$S" reset "$T/evil/SEP001122334455.cnf.xml.sgn" -o "$T/out/r.tlv" \
    >/dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ ! -e "$T/out/r.tlv" ] || fail "reset of a .sgn: exit $rc"
ok "build with a .sgn FILENAME and reset of a .sgn-named ITL or of a .sgn are refused"

# ---- direct mode: the same engine, the same refusal ----
refused "direct mode: the records, --filename ITLFile.tlv" 5 \
    "$CLI" "${TOK[@]}" sign "$T/evil/records.bin" --filename ITLFile.tlv --out-dir "$T/out"
grep -q "sign makes signed configs (.sgn) only" "$T/cmd.err" ||
    fail "direct mode: unclear: $(cat "$T/cmd.err")"
refused "direct mode: sign of the ITL" 5 \
    "$CLI" "${TOK[@]}" sign "$T/evil/real.tlv" --out-dir "$T/out"
ok "direct mode refuses the same requests: $(cat "$T/cmd.err")"

# ---- what sign still does, and what its outputs are to show and verify ----
mkdir -p "$T/good"
"$CLI" --socket "$S" sign "$T/evil/SEP001122334455.cnf.xml" --out-dir "$T/good" >/dev/null \
    2>"$T/cmd.err" || fail "sign: $(cat "$T/cmd.err")"
"$CLI" --socket "$S" sign "$T/evil/SEP001122334455.cnf.xml" --filename New_Zealand/g3-tones.xml.sgn \
    --out-dir "$T/good" >/dev/null 2>"$T/cmd.err" || fail "sign with a locale FILENAME: $(cat "$T/cmd.err")"
"$CLI" --socket "$S" sign "$T/good/SEP001122334455.cnf.xml.sgn" --out-dir "$T/good" >/dev/null \
    2>"$T/cmd.err" || fail "re-sign: $(cat "$T/cmd.err")"
for f in "$T"/good/* "$T/evil/SEP001122334455.cnf.xml.sgn"; do
    "$CLI" show "$f" >"$T/show.out" 2>&1 || fail "show $f: $(cat "$T/show.out")"
    ! grep -q "ITL file" "$T/show.out" || fail "show reads $f as an ITL: $(cat "$T/show.out")"
    "$CLI" verify "$f" --trust "$T/ITLFile.tlv" >/dev/null 2>&1 || fail "verify --trust $f"
done
ok "sign still signs configs, locale paths and re-signs; show and verify --trust read every output as a .sgn"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd exited $SVC_RC"
echo "all passed"
