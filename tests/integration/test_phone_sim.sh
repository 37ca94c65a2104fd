#!/bin/bash
# The phone simulator (tests/phone/) against a real tftpd-hpa on a loopback port: first install,
# an ITL that stays current, one accepted directly, one via TVS, one rejected ("Trust List
# Update Failed", the old ITL kept), a config accepted and one signed by an untrusted key
# ("Verification Failed"); the DeviceTLInfo alarms it writes have the sample's shape and our
# parser reads them. Runs under flock /tmp/itl-system.lock (it starts a TFTP server).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tftp.sh"
. "$(dirname "$0")/lib_cluster.sh"
cd "$WORK"
SIM=$ITL_SRC/tests/phone/phone-sim
export ITL_BUILD

mkcert CM1 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert CM2 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US/L=regenerated"
mkcert ITLRecovery "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert TVS1 "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US"
mkcert TVS2 "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US/L=regenerated"
mkcert Rogue "/CN=rogue.example/O=Elsewhere/C=US"

cluster_token T1 phone-sim-cm1 CM1:CallManager ITLRecovery:ITLRecovery
cluster_token T2 phone-sim-cm2 CM2:CallManager
cluster_token TR phone-sim-rogue Rogue:CallManager

mkdir itl cfg
"${T1[@]}" build --sast label:CallManager --ccm-tftp CM1.pem --tvs TVS1.pem \
    --sast ITLRecovery.pem --timestamp 1700000000 -o itl/A.tlv >/dev/null || die "build A"
"${T1[@]}" build --sast label:CallManager --ccm-tftp CM1.pem --tvs TVS1.pem \
    --sast ITLRecovery.pem --timestamp 1700000500 -o itl/A2.tlv >/dev/null || die "build A2"
"${T2[@]}" build --sast label:CallManager --ccm-tftp CM2.pem --tvs TVS1.pem \
    --sast ITLRecovery.pem --timestamp 1700001000 -o itl/B.tlv >/dev/null || die "build B"
openssl_verify itl/B.tlv CM2.pem || die "openssl rejects the ITL B signed by CM2"
printf '<device><fullConfig>true</fullConfig></device>\n' >cfg/SEP0000000000AA.cnf.xml
for t in 1 2 R; do
    mkdir cfg/$t
    eval 'tok=("${T'$t'[@]}")'
    "${tok[@]}" sign cfg/SEP0000000000AA.cnf.xml --out-dir cfg/$t --timestamp 1700000000 \
        >/dev/null || die "sign the config with token $t"
done
openssl_verify cfg/R/SEP0000000000AA.cnf.xml.sgn Rogue.pem || die "openssl rejects the rogue config"

mkdir srv
chmod 755 srv
tftp_start "$WORK/srv"
serve() { # ITL config-dir (or -)
    rm -f srv/*
    [ "$1" = - ] || install -m 0644 "itl/$1.tlv" srv/ITLFile.tlv
    [ "$2" = - ] || install -m 0644 "cfg/$2/SEP0000000000AA.cnf.xml.sgn" srv/
}
phone() { # name [installed ITL]: a fresh phone directory
    rm -rf "ph/$1"
    mkdir -p "ph/$1"
    [ $# -lt 2 ] || cp "itl/$2.tlv" "ph/$1/ITLFile.tlv"
}
boot() { # name [model args]: boot, $OUT is its result line
    local p=$1
    shift
    expect_exit 0 "$SIM" --server "$TFTP_SERVER" "$@" ph/$p
}
want() { # name expected-result-words...
    local p=$1 w
    shift
    for w in "$@"; do
        grep -q -- "$w" <<<"$OUT" || die "$p: result lacks '$w': $OUT"
    done
}
holds() { # name ITL
    cmp -s "ph/$1/ITLFile.tlv" "itl/$2.tlv" || die "$1 does not hold $2"
}

# ---- the server: tftp-hpa fetches a file, and a missing one is a failure ----
serve A 1
tftp_fetch ITLFile.tlv got.tlv || die "tftp-hpa could not fetch from in.tftpd"
cmp -s got.tlv itl/A.tlv || die "the fetched ITL differs from the served one"
tftp_fetch nothere.tlv none.tlv 2>/dev/null && die "a missing file counted as fetched"
[ -e none.tlv ] && die "tftp_fetch left the empty file of a missing one"
( TFTP_PID="" && tftp_start "$WORK/no-such-dir" ) 2>start.err &&
    die "tftp_start succeeded on a directory that does not exist"
grep -q "in.tftpd did not start" start.err || die "a server that cannot start is not named: $(cat start.err)"
ok "tftpd-hpa on 127.0.0.1:$TFTP_PORT serves its own directory; a missing file is a failure; a server that cannot start fails the test"

# ---- first install, then current ----
mkdir ph
phone SEP0000000000AA
boot SEP0000000000AA
want first "^SEP0000000000AA itl=first-install config=accept sha1=$(sha1sum itl/A.tlv | cut -c1-40)$"
holds SEP0000000000AA A
grep -q "Trust List Updated (first install)" ph/SEP0000000000AA/status.log ||
    die "first install not in the status messages"
boot SEP0000000000AA
want current "itl=current config=accept"
ok "a phone without an ITL installs the served one; booting again keeps it (current)"

# ---- accepted directly: a newer ITL signed by a key the installed one holds ----
serve A2 1
boot SEP0000000000AA
want direct "itl=accept config=accept sha1=$(sha1sum itl/A2.tlv | cut -c1-40)"
holds SEP0000000000AA A2
ok "a newer ITL signed by the installed ITL's CallManager key is installed"

# ---- CallManager regenerated: rejected without TVS, accepted via TVS, not with a new TVS ----
serve B 2
phone SEP0000000000AA A
boot SEP0000000000AA
want reject "itl=reject config=reject sha1=$(sha1sum itl/A.tlv | cut -c1-40)"
holds SEP0000000000AA A
grep -q "^Trust List Update Failed: " ph/SEP0000000000AA/status.log ||
    die "no 'Trust List Update Failed' in the status messages"
grep -q "^Verification Failed: " ph/SEP0000000000AA/status.log ||
    die "the config signed by the new key is not 'Verification Failed'"
boot SEP0000000000AA --tvs-cert TVS1.pem --tvs-trust CM2.pem --tvs-trust ITLRecovery.pem
want tvs "itl=accept-via-tvs config=accept sha1=$(sha1sum itl/B.tlv | cut -c1-40)"
holds SEP0000000000AA B
phone SEP0000000000AA A
boot SEP0000000000AA --tvs-cert TVS2.pem --tvs-trust CM2.pem
want wrong-order "itl=reject config=reject"
holds SEP0000000000AA A
grep -q "TVS service's certificate" ph/SEP0000000000AA/status.log ||
    die "the reject with a regenerated TVS does not say TVS is unreachable"
ok "new CallManager key: rejected (old ITL kept), via TVS accepted, with TVS regenerated too rejected"

# ---- config signed by an untrusted key ----
serve A R
phone SEP0000000000AA A
boot SEP0000000000AA
want rogue "itl=current config=reject"
grep -q "^Verification Failed: .*rogue.example" ph/SEP0000000000AA/status.log ||
    die "the rogue config's reject does not name its signer: $(cat ph/SEP0000000000AA/status.log)"
serve A 1
boot SEP0000000000AA
want trusted "itl=current config=accept"
ok "a config signed by a key outside the ITL is rejected; the cluster's is accepted"

# ---- nothing served; an ITL that is no ITL ----
serve - -
boot SEP0000000000AA
want absent "itl=not-served config=absent sha1=$(sha1sum itl/A.tlv | cut -c1-40)"
cp cfg/1/SEP0000000000AA.cnf.xml.sgn srv/ITLFile.tlv
chmod 644 srv/ITLFile.tlv
boot SEP0000000000AA
want malformed "itl=malformed"
holds SEP0000000000AA A
ok "no files served: ITL kept, config absent; a signed config served as ITLFile.tlv is refused"

# ---- the alarm: the sample's fields in the sample's order and form; our parser reads it ----
/usr/bin/python3 - /work/shared/samples/DeviceTLInfo-alarm.xml \
    ph/SEP0000000000AA/DeviceTLInfo.xml "$(sha1sum itl/A.tlv | cut -c1-40)" <<'PY' ||
import re, sys, xml.etree.ElementTree as ET
def fields(p):
    root = ET.parse(p).getroot()
    assert root.tag == "x-cisco-alarm" and root.find("Alarm").get("Name") == "DeviceTLInfo"
    return [(s.get("name"), s.text or "") for s in root.iter("String")]
sample, ours = fields(sys.argv[1]), dict(fields(sys.argv[2]))
assert [n for n, _ in sample] == [n for n, _ in fields(sys.argv[2])], (sample, ours)
form = re.compile(r"^([0-9A-F]{2} ){20}$")
assert form.match(dict(sample)["ITL_Signature"]) and form.match(ours["ITL_Signature"]), ours
assert ours["ITL_Signature"].replace(" ", "").lower() == sys.argv[3], ours
assert ours["DeviceName"] == "SEP0000000000AA" and ours["CTL_Signature"] == "Not Installed"
PY
    die "the alarm differs from the sample's shape: $(cat ph/SEP0000000000AA/DeviceTLInfo.xml)"
serve A 1
boot SEP0000000000AA --tftp-server cucm-pub.example --ip 10.1.20.57
grep -q '<String name="ITL_TFTP_Server">cucm-pub.example</String>' ph/SEP0000000000AA/DeviceTLInfo.xml ||
    die "--tftp-server is not the alarm's ITL_TFTP_Server"
grep -q '<String name="IPv4Address">10.1.20.57</String>' ph/SEP0000000000AA/DeviceTLInfo.xml ||
    die "--ip is not the alarm's IPv4Address"
expect_exit 1 "$SIM" --server "$TFTP_SERVER" --ip '<x>' ph/SEP0000000000AA
grep -q "no <, >, &, quotes" <<<"$ERR" || die "markup in --ip is not refused: $ERR"
mkdir hist && cp itl/A.tlv itl/A2.tlv hist/
expect_exit 0 "$BIN" coverage --reports ph/SEP0000000000AA/DeviceTLInfo.xml --history hist \
    --current itl/A.tlv
grep -q "^SEP0000000000AA .* current$" <<<"$OUT" || die "coverage does not read the alarm: $OUT"
[ -z "$ERR" ] || die "coverage warned about the simulator's alarm: $ERR"
phone SEP0000000000BB
serve - -
boot SEP0000000000BB
want none "itl=not-served config=absent sha1=none"
grep -q '<String name="ITL_Signature">Not Installed</String>' ph/SEP0000000000BB/DeviceTLInfo.xml ||
    die "a phone without an ITL does not report Not Installed"
ok "DeviceTLInfo.xml: the sample's fields, order and hash form; itl-sign coverage reads it"

# ---- usage errors; the server stops ----
mkdir -p ph/notaphone
expect_exit 2 "$SIM" --server "$TFTP_SERVER" ph/notaphone
grep -q "named SEP<MAC>" <<<"$ERR" || die "a badly named phone directory is not explained: $ERR"
expect_exit 2 "$SIM" ph/SEP0000000000AA
pid=$TFTP_PID
tftp_stop
kill -0 "$pid" 2>/dev/null && die "in.tftpd $pid still runs after tftp_stop"
ok "phone-sim usage errors; tftp_stop ends the server"
