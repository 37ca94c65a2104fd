#!/bin/bash
# The CUCM fixture (issue 14): CallManager and ITLRecovery keys migrated from .p12 files into a
# token; configs signed with the migrated CallManager key, ITLs built in the CUCM layout and a
# reset are all accepted by `verify --trust` of the installed ITL, their names byte for byte in
# CUCM's order (the certificate's own, ';'-joined); --itl copies a record's name bytes; TVS.
. "$(dirname "$0")/lib.sh"
cd "$WORK"

new_token itl-trust-test
printf 'p12 pass' >p12.pass && chmod 600 p12.pass
# CUCM encodes its certificates CN first: the names below are in that (DER) order
mkcert() { # name subject
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 365 \
        -subj "$2" 2>/dev/null || die "openssl req $1"
}
mkcert CallManager "/CN=cucm-pub.example/OU=TAC/O=Cisco/L=RTP/ST=nc/C=US"
mkcert ITLRecovery "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco/L=RTP/ST=nc/C=US"
mkcert TVS "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US"
mkcert NewCallManager "/CN=cucm-pub.example/OU=TAC/O=Cisco/L=RTP/ST=nc/C=US"
for n in CallManager ITLRecovery; do
    openssl pkcs12 -export -inkey $n.key -in $n.pem -out $n.p12 -passout file:p12.pass ||
        die "openssl pkcs12 $n"
    expect_exit 0 "$BIN" "${TOK[@]}" key import --p12 $n.p12 --p12-pass-file p12.pass --label $n
done
ok "CallManager and ITLRecovery migrated from .p12"

CM_NAME="CN=cucm-pub.example;OU=TAC;O=Cisco;L=RTP;ST=nc;C=US"
CM_COMMA="CN=cucm-pub.example,OU=TAC,O=Cisco,L=RTP,ST=nc,C=US"

# ---- the installed ITL, in the CUCM layout (CallManager signs, as CUCM 8+ does) ----
expect_exit 0 "$BIN" "${TOK[@]}" build --layout cucm --sast label:CallManager \
    --ccm-tftp CallManager.pem --tvs TVS.pem --sast ITLRecovery.pem --timestamp 1700000000 \
    -o installed.tlv
expect_exit 0 "$BIN" show installed.tlv
grep -q "^4 SIGNERNAME [0-9]* $CM_NAME\$" <<<"$OUT" || die "SIGNERNAME is not CUCM's order: $OUT"
grep -q "^3 SUBJECTNAME [0-9]* $CM_NAME\$" <<<"$OUT" || die "SUBJECTNAME is not CUCM's order"
ok "build --layout cucm: names in the certificate's own order, ';'-joined ($CM_NAME)"

# ---- configs signed with the migrated CallManager key: every one accepted ----
mkdir -p cfg
for i in $(seq -w 1 40); do
    printf '<device><fullConfig>true</fullConfig><n>%s</n></device>\n' "$i" \
        >cfg/SEP0011223344$i.cnf.xml
done
expect_exit 0 "$BIN" "${TOK[@]}" sign --jobs 2 cfg/*.cnf.xml
bad=0
for f in cfg/*.sgn; do
    "$BIN" verify "$f" --trust installed.tlv >v.out 2>&1 || bad=$((bad + 1))
done
[ "$bad" -eq 0 ] || die "$bad of 40 configs signed with the migrated key are rejected: $(cat v.out)"
expect_exit 0 "$BIN" verify cfg/SEP001122334401.cnf.xml.sgn --trust installed.tlv
grep -q "^accepted: signed by record #2 (CCM+TFTP $CM_NAME) of installed.tlv" <<<"$OUT" ||
    die "not accepted by the CCM+TFTP record: $OUT"
grep -q "^rule: a config signed by a TFTP or CCM+TFTP record" <<<"$OUT" || die "no rule: $OUT"
grep -q "^note:" <<<"$OUT" && die "byte-equal names gave a note: $OUT"
ok "40 of 40 configs signed with the migrated CallManager key accepted by verify --trust"

# ---- a new ITL in the CUCM layout and a reset: accepted ----
expect_exit 0 "$BIN" "${TOK[@]}" build --layout cucm --sast label:CallManager \
    --ccm-tftp CallManager.pem --tvs TVS.pem --sast ITLRecovery.pem --timestamp 1700000500 \
    -o new.tlv
expect_exit 0 "$BIN" verify new.tlv --trust installed.tlv
grep -q "^accepted: signed by record #1 (SAST $CM_NAME)" <<<"$OUT" || die "new ITL: $OUT"
expect_exit 0 "$BIN" "${TOK[@]}" reset installed.tlv -o reset.tlv --timestamp 1700000600
expect_exit 0 "$BIN" verify reset.tlv --trust installed.tlv
grep -q "^accepted: signed by record #4 (SAST CN=ITLRECOVERY_cucm-pub.example;OU=TAC" <<<"$OUT" ||
    die "reset: $OUT"
ok "a new CUCM-layout ITL and a reset ITL accepted by the installed ITL"

# ---- installed ITL with ','-joined names (certutils): accepted with a note; --itl: same bytes ----
expect_exit 0 "$BIN" "${TOK[@]}" build --layout certutils --sast label:CallManager \
    --ccm-tftp CallManager.pem --sast ITLRecovery.pem --timestamp 1700000000 -o comma.tlv
expect_exit 0 "$BIN" verify cfg/SEP001122334401.cnf.xml.sgn --trust comma.tlv
grep -q "^note: .*$CM_NAME.*$CM_COMMA" <<<"$OUT" || die "the names differ in bytes, unsaid: $OUT"
mkdir -p known
cp cfg/SEP001122334401.cnf.xml known/
expect_exit 0 "$BIN" "${TOK[@]}" sign --itl comma.tlv known/SEP001122334401.cnf.xml
expect_exit 0 "$BIN" show known/SEP001122334401.cnf.xml.sgn
grep -q "^4 SIGNERNAME [0-9]* $CM_COMMA\$" <<<"$OUT" || die "--itl did not copy the name: $OUT"
expect_exit 0 "$BIN" verify known/SEP001122334401.cnf.xml.sgn --trust comma.tlv
grep -q "^note:" <<<"$OUT" && die "--itl names still differ: $OUT"
expect_exit 3 "$BIN" "${TOK[@]}" sign --itl known/SEP001122334401.cnf.xml.sgn \
    known/SEP001122334401.cnf.xml
grep -q "not the ITL or CTL the phones hold" <<<"$ERR" || die "--itl .sgn: $ERR"
ok "a ','-named installed ITL: accepted with both names said; sign --itl copies its bytes"

# ---- `itl:` in --config is the --itl default (issue 14); --itl on the command line wins ----
mkdir -p dflt/state dflt/log dflt/a dflt/b dflt/c && chmod 0750 dflt/state
itl_config() { # FILE ITL
    cat >"$1" <<EOF
node: { name: cucm-pub, role: publisher }
keys: { recovery: { label: ITLRecovery }, tftp: { label: CallManager } }
policy: { backup: "off" }
access:
  - { user: $(id -un), allow: [reset, build, sign, encrypt, status] }
state-dir: $WORK/dflt/state
audit-log: $WORK/dflt/log/audit.log
itl: $2
EOF
}
itl_config dflt/itl.yaml "$WORK/comma.tlv"
for d in a b c; do cp cfg/SEP001122334401.cnf.xml dflt/$d/; done
expect_exit 0 "$BIN" "${TOK[@]}" sign --itl comma.tlv --timestamp 1700000700 dflt/a/SEP001122334401.cnf.xml
expect_exit 0 "$BIN" "${TOK[@]}" --config "$WORK/dflt/itl.yaml" sign --timestamp 1700000700 \
    dflt/b/SEP001122334401.cnf.xml
cmp dflt/a/SEP001122334401.cnf.xml.sgn dflt/b/SEP001122334401.cnf.xml.sgn ||
    die "signed with the config's itl: not the bytes of an explicit --itl run"
expect_exit 0 "$BIN" show dflt/b/SEP001122334401.cnf.xml.sgn
grep -q "^4 SIGNERNAME [0-9]* $CM_COMMA\$" <<<"$OUT" || die "the config's itl did not give its names: $OUT"
expect_exit 0 "$BIN" "${TOK[@]}" --config "$WORK/dflt/itl.yaml" sign --itl installed.tlv \
    --timestamp 1700000700 dflt/c/SEP001122334401.cnf.xml
expect_exit 0 "$BIN" show dflt/c/SEP001122334401.cnf.xml.sgn
grep -q "^4 SIGNERNAME [0-9]* $CM_NAME\$" <<<"$OUT" || die "--itl on the command line did not win: $OUT"
itl_config dflt/gone.yaml "$WORK/no-such-ITLFile.tlv"
rm -f dflt/c/SEP001122334401.cnf.xml.sgn
expect_exit 3 "$BIN" "${TOK[@]}" --config "$WORK/dflt/gone.yaml" sign dflt/c/SEP001122334401.cnf.xml
[[ $ERR == *"config key 'itl' of $WORK/dflt/gone.yaml"*"no-such-ITLFile.tlv"* ]] ||
    die "a missing config itl is not named with its key: $ERR"
[ ! -e dflt/c/SEP001122334401.cnf.xml.sgn ] || die "signed although the config's itl is missing"
ok "config key itl: the --itl default (byte for byte as --itl), --itl wins, a missing one names the key"

# ---- re-signing a .sgn keeps its signer-info order (4,6,5 as certutils 4.13 writes) ----
signer_order() { # the tags inside SIGNERID (3) of a signed file
    /usr/bin/python3 - "$1" <<'PY'
import sys
b = open(sys.argv[1], 'rb').read()
pos = 0
while b[pos] != 3:
    pos += 3 + int.from_bytes(b[pos + 1:pos + 3], 'big')
end, pos, tags = pos + 3 + int.from_bytes(b[pos + 1:pos + 3], 'big'), pos + 3, []
while pos < end:
    tags.append(str(b[pos]))
    pos += 3 + int.from_bytes(b[pos + 1:pos + 3], 'big')
print(",".join(tags))
PY
}
mkdir -p order
/usr/bin/python3 - cfg/SEP001122334402.cnf.xml.sgn order/SEP001122334402.cnf.xml.sgn <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
pos = 0
while b[pos] != 3:
    pos += 3 + int.from_bytes(b[pos + 1:pos + 3], 'big')
end, p, kids = pos + 3 + int.from_bytes(b[pos + 1:pos + 3], 'big'), pos + 3, {}
while p < end:
    n = 3 + int.from_bytes(b[p + 1:p + 3], 'big')
    kids[b[p]] = bytes(b[p:p + n])
    p += n
b[pos + 3:end] = kids[4] + kids[6] + kids[5]
open(sys.argv[2], 'wb').write(bytes(b))
PY
[ "$(signer_order order/SEP001122334402.cnf.xml.sgn)" = "4,6,5" ] || die "the 4,6,5 input"
[ "$(signer_order cfg/SEP001122334402.cnf.xml.sgn)" = "4,5,6" ] || die "sign writes 4,5,6"
expect_exit 0 "$BIN" "${TOK[@]}" sign order/SEP001122334402.cnf.xml.sgn
[ "$(signer_order order/SEP001122334402.cnf.xml.sgn)" = "4,6,5" ] ||
    die "re-signing changed the signer-info order to $(signer_order order/SEP001122334402.cnf.xml.sgn)"
expect_exit 0 "$BIN" verify order/SEP001122334402.cnf.xml.sgn --trust installed.tlv
ok "re-signing a 4,6,5 .sgn keeps 4,6,5 and is accepted"

# ---- TVS: CallManager.pem regenerated, TVS.pem kept (seed 001) ----
mkdir -p tvs
printf '<device/>\n' >tvs/SEP001122334499.cnf.xml
openssl pkcs12 -export -inkey NewCallManager.key -in NewCallManager.pem -out NewCallManager.p12 \
    -passout file:p12.pass || die "openssl pkcs12 NewCallManager"
new_token itl-trust-new # the rebuilt server: a new CallManager key under the same label
expect_exit 0 "$BIN" "${TOK[@]}" key import --p12 NewCallManager.p12 --p12-pass-file p12.pass \
    --label CallManager
expect_exit 0 "$BIN" "${TOK[@]}" sign tvs/SEP001122334499.cnf.xml
expect_exit 1 "$BIN" verify tvs/SEP001122334499.cnf.xml.sgn --trust installed.tlv
expect_exit 0 "$BIN" verify tvs/SEP001122334499.cnf.xml.sgn --trust installed.tlv \
    --tvs-cert TVS.pem --tvs-trusts NewCallManager.pem
grep -q "^accepted via TVS: TVS.pem trusts the signer; the phone reaches TVS through record #3" \
    <<<"$OUT" || die "via TVS: $OUT"
expect_exit 1 "$BIN" verify tvs/SEP001122334499.cnf.xml.sgn --trust installed.tlv \
    --tvs-cert NewCallManager.pem --tvs-trusts NewCallManager.pem
grep -q "no TVS record of the installed ITL holds the TVS service's certificate" <<<"$OUT" ||
    die "TVS regenerated too: $OUT"
expect_exit 2 "$BIN" verify tvs/SEP001122334499.cnf.xml.sgn --trust installed.tlv \
    --tvs-cert TVS.pem
ok "TVS: a regenerated CallManager accepted through the TVS record, not when TVS.pem changed too"

# ---- the verdict in --json (show and verify): path, records, rule, note, reason ----
trust_json() { # FILE EXPECTED-PATH: decode $OUT and check its "trust" object
    /usr/bin/python3 - "$OUT" "$1" <<'PY'
import json, sys
d, want = json.loads(sys.argv[1]), sys.argv[2]
t = d["trust"]
assert t["installed"] == "installed.tlv", t
assert t["path"] == want, t
if want == "direct":
    assert d["verified"] is True and t["accepted"] is True, d
    assert t["record"] == 2 and t["tvs_record"] is None, t
    assert t["rule"].startswith("a config signed by a TFTP or CCM+TFTP record"), t
    assert t["note"] is None and t["reason"] is None, t
elif want == "tvs":
    assert d["verified"] is True and t["tvs_record"] == 3, t
    assert t["rule"] and t["reason"] is None, t
else:
    assert d["verified"] is False and t["accepted"] is False and t["rule"] is None, t
    assert "no TVS record of the installed ITL holds" in t["reason"], t
    assert t["reason"] == d["reason"], d
PY
}
for cmd in show verify; do
    expect_exit 0 "$BIN" "$cmd" --json cfg/SEP001122334401.cnf.xml.sgn --trust installed.tlv
    trust_json direct || die "$cmd --json of an accepted config: $OUT"
done
expect_exit 0 "$BIN" verify --json tvs/SEP001122334499.cnf.xml.sgn --trust installed.tlv \
    --tvs-cert TVS.pem --tvs-trusts NewCallManager.pem
trust_json tvs || die "verify --json via TVS: $OUT"
expect_exit 1 "$BIN" verify --json tvs/SEP001122334499.cnf.xml.sgn --trust installed.tlv \
    --tvs-cert NewCallManager.pem --tvs-trusts NewCallManager.pem
trust_json none || die "verify --json of a rejected config: $OUT"
expect_exit 0 "$BIN" show --json installed.tlv
/usr/bin/python3 -c 'import json, sys; assert json.loads(sys.argv[1])["trust"] is None' "$OUT" ||
    die "show --json without --trust has a trust verdict: $OUT"
ok "show/verify --json: the verdict's path (direct, tvs, none), record, rule, note and reason"
