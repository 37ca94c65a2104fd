#!/bin/bash
# itl-sign coverage (issue 15): phones' DeviceTLInfo reports (alarm XML and CSV) against a
# history of ITLs; every verdict, the table, --json, --csv and the exit codes.
. "$(dirname "$0")/lib.sh"
cd "$WORK"

new_token itl-coverage-test
printf 'p12 pass' >p12.pass && chmod 600 p12.pass
mkcert() { # name subject
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 365 \
        -subj "$2" 2>/dev/null || die "openssl req $1"
}
mkcert CallManager "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert ITLRecovery "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert OldCM "/CN=old-cucm.example/OU=TAC/O=Cisco/C=US"
mkcert TVS "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US"
import_key() { # name [label]
    local n=$1 label=${2:-$1}
    openssl pkcs12 -export -inkey $n.key -in $n.pem -out $n.p12 -passout file:p12.pass ||
        die "openssl pkcs12 $n"
    expect_exit 0 "$BIN" "${TOK[@]}" key import --p12 $n.p12 --p12-pass-file p12.pass --label "$label"
}
import_key CallManager
import_key ITLRecovery
NEW_TOK=("${TOK[@]}")

mkdir hist
common=(--ccm-tftp CallManager.pem --tvs TVS.pem --sast ITLRecovery.pem)
expect_exit 0 "$BIN" "${NEW_TOK[@]}" build --sast label:CallManager "${common[@]}" \
    --timestamp 1700000500 -o hist/ITLFile-current.tlv
expect_exit 0 "$BIN" "${NEW_TOK[@]}" build --sast label:CallManager "${common[@]}" \
    --timestamp 1700000000 -o hist/ITLFile-older.tlv
# the old cluster's key lives in a token of its own (as on the old cluster)
new_token itl-coverage-old
import_key OldCM CallManager # the old cluster's CallManager key
OLD_TOK=("${TOK[@]}")
expect_exit 0 "$BIN" "${OLD_TOK[@]}" build --sast label:CallManager --ccm-tftp OldCM.pem \
    --sast ITLRecovery.pem --timestamp 1600000000 -o hist/ITLFile-oldkey-recovery.tlv
expect_exit 0 "$BIN" "${OLD_TOK[@]}" build --sast label:CallManager --ccm-tftp OldCM.pem \
    --timestamp 1500000000 -o hist/ITLFile-oldkey.tlv
ln -s ITLFile-older.tlv hist/ITLFile-link.tlv
cp hist/ITLFile-current.tlv current.tlv

sha() { # file -> "1B A1 ..." as a phone reports it
    sha1sum "$1" | cut -c1-40 | tr a-f A-F | sed 's/../& /g'
}
alarm() { # device signature
    cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<x-cisco-alarm>
<Alarm Name="DeviceTLInfo">
<ParameterList>
<String name="DeviceName">$1</String>
<String name="CTL_Signature">Not Installed</String>
<String name="CTL_TFTP_Server">N/A</String>
<String name="ITL_Signature">$2</String>
<String name="ITL_TFTP_Server">cucm-pub.example</String>
<String name="StatusCode">3</String>
</ParameterList>
</Alarm>
</x-cisco-alarm>
XML
}
{
    alarm SEP000000000001 "$(sha hist/ITLFile-current.tlv)"
    alarm SEP000000000002 "$(sha hist/ITLFile-older.tlv)"
    echo "Dec  3 10:00:00 cucm garbage between documents"
    alarm SEP000000000003 "$(sha hist/ITLFile-oldkey-recovery.tlv)"
} >reports.xml
{
    echo "DeviceName,ITL_Signature"
    echo "SEP000000000004,$(sha hist/ITLFile-oldkey.tlv)"
    echo "SEP000000000005,00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF 00 11 22 33"
    echo "SEP000000000006,Not Installed"
    echo "SEP000000000007,ZZ not hex"
} >reports.csv

# ---- text: every verdict, the table, the symlink and the bad line warned, exit 8 ----
expect_exit 8 "$BIN" coverage --reports reports.xml --reports reports.csv --history hist \
    --current current.tlv
for want in "SEP000000000001 .* current$" "SEP000000000002 .* updates directly$" \
    "SEP000000000003 .* rescuable by reset$" \
    "SEP000000000004 .* stranded (needs manual ITL delete)$" \
    "SEP000000000005 .* unknown ITL$" "SEP000000000006 .* unknown ITL$" \
    "^current  *1$" "^unknown ITL  *2$" "^total  *6$"; do
    grep -q "$want" <<<"$OUT" || die "coverage text lacks '$want': $OUT"
done
grep -q "SEP000000000007" <<<"$OUT" && die "a bad report line became a phone: $OUT"
grep -q "reports.csv:5" <<<"$ERR" ||
    die "the bad CSV line is not warned with its line number: $OUT"
grep -q "ITLFile-link.tlv: not a regular file, skipped" <<<"$ERR" ||
    die "the symlink in the history is not named: $OUT"
ok "coverage: current, updates directly, rescuable by reset, stranded, unknown; exit 8"

# ---- only phones that take the ITL: exit 0 ----
{
    alarm SEP000000000001 "$(sha hist/ITLFile-current.tlv)"
    alarm SEP000000000002 "$(sha hist/ITLFile-older.tlv)"
} >good.xml
expect_exit 0 "$BIN" coverage --reports good.xml --history hist --current current.tlv
ok "coverage: every phone current or updating directly: exit 0"

# ---- --json: one document, validated ----
"$BIN" coverage --json --reports reports.xml --reports reports.csv --history hist \
    --current current.tlv >cov.json 2>/dev/null
[ $? -eq 8 ] || die "coverage --json: exit not 8"
/usr/bin/python3 - cov.json <<'PY' || die "coverage --json: $(cat cov.json)"
import json, sys
d = json.load(open(sys.argv[1]))
v = {p["device"]: p for p in d["phones"]}
assert len(v) == 6, v
assert v["SEP000000000001"]["verdict"] == "current"
assert v["SEP000000000002"]["verdict"] == "updates directly"
assert v["SEP000000000002"]["trusts_signer"] is True
assert v["SEP000000000002"]["itl_file"] == "ITLFile-older.tlv"
assert v["SEP000000000003"]["verdict"] == "rescuable by reset"
assert v["SEP000000000003"]["has_recovery_sast"] is True
assert v["SEP000000000003"]["trusts_signer"] is False
assert v["SEP000000000004"]["verdict"] == "stranded (needs manual ITL delete)"
assert v["SEP000000000004"]["has_recovery_sast"] is False
assert v["SEP000000000006"]["itl_sha1"] is None
assert v["SEP000000000005"]["itl_file"] is None
s = d["summary"]
assert s["current"] == 1 and s["updates directly"] == 1 and s["updates via TVS"] == 0
assert s["rescuable by reset"] == 1 and s["stranded (needs manual ITL delete)"] == 1
assert s["unknown ITL"] == 2
PY
ok "coverage --json: a valid document with every phone and the summary"

# ---- --csv ----
expect_exit 8 "$BIN" coverage --csv --reports reports.csv --history hist --current current.tlv
grep -q "^device,itl_sha1,itl_file,signer,verdict,has_recovery_sast,trusts_signer$" <<<"$OUT" ||
    die "no CSV header: $OUT"
grep -q "^SEP000000000004,.*,ITLFile-oldkey.tlv,.*,stranded (needs manual ITL delete),no,no$" \
    <<<"$OUT" || die "CSV stranded row: $OUT"

# ---- usage ----
expect_exit 2 "$BIN" coverage --reports reports.csv --history hist
expect_exit 3 "$BIN" coverage --reports reports.csv --history hist --current nothere.tlv
ok "coverage --csv and usage errors"
