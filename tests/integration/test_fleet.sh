#!/bin/bash
# A fleet of 200 simulated phones (tests/phone/) on a real tftpd-hpa: their DeviceTLInfo alarms
# feed `itl-sign coverage` and `itl-sign plan`, whose verdicts (coverage) and action and outcome
# (plan) must match what each phone then does when it fetches what `itl-sign publish` put in the
# TFTP root, phone for phone; then the seeds' two key rotations: CallManager first and TVS later
# (the right order: nobody stranded, no mistake named), and both at once (the wrong order:
# publish refuses it, plan names the mistake; put in place anyway, every phone refuses and
# `utils itl reset` rescues exactly those holding the ITLRecovery SAST).
# Runs under flock /tmp/itl-system.lock (it starts a TFTP server). docs/fleet.md describes it.
# The phones' writes are committed once per batch (a syncfs each, tests/phone/README.md): on a
# disk shared with busy builds that wait is most of the run time, and a simulated phone's flash
# need not outlive the host. So the test works in RAM (tmpfs) when the host has one.
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_tftp.sh"
. "$(dirname "$0")/lib_cluster.sh"
cd "$WORK"
SIM=$ITL_SRC/tests/phone/phone-sim
PY=/usr/bin/python3
export ITL_BUILD
SECONDS=0

# ---- the cluster's keys, then and now ----
mkcert CM0 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US/L=before-2023" # regenerated since
mkcert CM1 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US"               # the CallManager key now
mkcert CM2 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US/L=rotated"     # the rotation's new key
mkcert ITLRecovery "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert TVS1 "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US"
mkcert TVS2 "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US/L=rotated"
mkcert Foreign "/CN=cucm.other-cluster.example/O=Other/C=US"
cluster_token T0 fleet-cm0 CM0:CallManager ITLRecovery:ITLRecovery
cluster_token T1 fleet-cm1 CM1:CallManager ITLRecovery:ITLRecovery
cluster_token T2 fleet-cm2 CM2:CallManager ITLRecovery:ITLRecovery
cluster_token TF fleet-foreign Foreign:CallManager

# The ITLs phones may hold: history/ is every ITL this cluster ever served (coverage's input);
# the foreign one came with phones moved from another cluster and is in no history.
mkdir history itl
build() { # token-array-name out timestamp records...
    local t=$1 out=$2 ts=$3
    shift 3
    eval 'local tok=("${'"$t"'[@]}")'
    "${tok[@]}" build --sast label:CallManager "$@" --timestamp "$ts" --filename ITLFile.tlv \
        -o "$out" >/dev/null 2>itl-sign.err || die "build $out: $(cat itl-sign.err)"
}
build T1 history/ITL-current.tlv 1700000500 --ccm-tftp CM1.pem --tvs TVS1.pem --sast ITLRecovery.pem
build T1 history/ITL-old.tlv 1700000000 --ccm-tftp CM1.pem --tvs TVS1.pem --sast ITLRecovery.pem
build T1 history/ITL-norecovery.tlv 1690000000 --ccm-tftp CM1.pem --tvs TVS1.pem
build T0 history/ITL-regen.tlv 1680000000 --ccm-tftp CM0.pem --tvs TVS1.pem --sast ITLRecovery.pem
build TF itl/ITL-foreign.tlv 1650000000 --ccm-tftp Foreign.pem
# the rotations' ITLs, all signed by the new CallManager key CM2
build T2 itl/right-1.tlv 1710000000 --ccm-tftp CM2.pem --tvs TVS1.pem --sast ITLRecovery.pem
build T2 itl/right-2.tlv 1710000600 --ccm-tftp CM2.pem --tvs TVS2.pem --sast ITLRecovery.pem
build T2 itl/wrong.tlv 1710000000 --ccm-tftp CM2.pem --tvs TVS2.pem --sast ITLRecovery.pem
"${T2[@]}" reset itl/wrong.tlv -o itl/wrong-reset.tlv --timestamp 1710000900 >/dev/null 2>&1 ||
    die "reset the wrong order's ITL with the recovery key"
openssl_verify itl/wrong-reset.tlv ITLRecovery.pem || die "openssl rejects the reset ITL"
openssl_verify itl/right-1.tlv CM2.pem || die "openssl rejects the rotated ITL"

# ---- 200 phones: 120 current, 30 old, 20 without the recovery SAST, 20 from CM0, 10 foreign ----
mkdir fleet cfg
group_of() { # index
    if [ "$1" -lt 120 ]; then echo current
    elif [ "$1" -lt 150 ]; then echo old
    elif [ "$1" -lt 170 ]; then echo norecovery
    elif [ "$1" -lt 190 ]; then echo regen
    else echo foreign; fi
}
for i in $(seq 0 199); do
    dev=$(printf 'SEP%012X' $((0x0050560000 + i)))
    mkdir fleet/$dev
    echo "$dev $(group_of $i)" >>groups.txt
    printf '<device><deviceName>%s</deviceName></device>\n' $dev >cfg/$dev.cnf.xml
done
phones_of() { awk -v g="$1" '$2 == g {print "fleet/" $1}' groups.txt; }

mkdir srv pubhist
chmod 755 srv
tftp_start "$WORK/srv"
# How the fleet came to be: each ITL simply put in the TFTP root (no check), as CUCM does.
serve_raw() { # ITL
    rm -rf srv/* srv/.[!.]*
    install -m 0644 "$1" srv/ITLFile.tlv
}
# From here on files reach the phones through `itl-sign publish`: the phone
# model checked against the ITL the root holds now, all or none, a copy kept in pubhist/.
publish() { # ITL token-array-name: the ITL, then the 200 configs signed with that token's key
    expect_exit 0 "$BIN" publish "$1" --to srv --history pubhist
    sign_configs "$2"
}
sign_configs() { # token-array-name
    eval 'local tok=("${'"$1"'[@]}")'
    rm -rf cfg-signed && mkdir cfg-signed
    "${tok[@]}" sign cfg --out-dir cfg-signed --timestamp 1710000000 >/dev/null 2>itl-sign.err ||
        die "sign the fleet's configs: $(cat itl-sign.err)"
    expect_exit 0 "$BIN" publish cfg-signed --to srv
}
boot() { # results-file fleet-dir [phone-sim options]: every phone of the fleet boots
    local out=$1 dir=$2
    shift 2
    boot_phones "$out" 200 "$@" "$dir"/SEP*
}
boot_phones() { # results-file count [phone-sim options] phone-dir...
    local out=$1 n=$2
    shift 2
    "$SIM" --server "$TFTP_SERVER" --batch 25 --jobs 4 "$@" >"$out" ||
        die "phone-sim failed: $(tail -3 "$out")"
    [ "$(wc -l <"$out")" -eq "$n" ] || die "$out: $(wc -l <"$out") phones booted, not $n"
}
rejecters() { # results-file fleet-dir: the phones that refused the ITL, to boot them again
    awk -v d="$2" '$2 == "itl=reject" {print d "/" $1}' "$1"
}
reports() { # fleet-dir out: the alarms as an RTMT dump (syslog lines between them)
    local f
    for f in "$1"/SEP*/DeviceTLInfo.xml; do
        echo "Dec  4 10:00:00 cucm-pub CiscoSyslog: DeviceTLInfo alarm received"
        cat "$f"
    done >"$2"
}

# ---- the fleet's history, fetched for real: each group installed its ITL on its first boot ----
for g in current old norecovery regen; do
    serve_raw history/ITL-$g.tlv
    "$SIM" --server "$TFTP_SERVER" --batch 25 $(phones_of $g) >>boot0.txt || die "first boot $g"
done
serve_raw itl/ITL-foreign.tlv
"$SIM" --server "$TFTP_SERVER" $(phones_of foreign) >>boot0.txt || die "first boot foreign"
[ "$(grep -c ' itl=first-install ' boot0.txt)" -eq 200 ] ||
    die "not every phone installed its first ITL: $(grep -v first-install boot0.txt | head -3)"
reports fleet reports0.xml
ok "200 phones installed their ITLs over TFTP (120 current, 30 old, 20 without recovery, 20 CM0, 10 foreign)"

# Phone for phone: what coverage and plan said before the publish against what each phone did
# (tests/phone/compare_fleet.py says what each verdict means for a phone).
compare() { # compare_fleet.py options
    $PY "$ITL_SRC/tests/phone/compare_fleet.py" "$@"
}
no_mistakes() { # plan.json...: the right order makes none of the seeds' mistakes
    local f
    for f in "$@"; do
        $PY -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(d["summary"]["mistakes"] != 0)' \
            "$f" || die "plan names a mistake in the right order: $(cat "$f")"
    done
}
# The simulator against the known mix: "group=itl-result ..." for every phone of each group.
expect_groups() { # results group=result...
    local out=$1 spec g want n
    shift
    for spec in "$@"; do
        g=${spec%%=*} want=${spec#*=}
        n=$(join <(sort "$out") <(sort groups.txt) | awk -v g="$g" -v w="itl=$want" \
            '$NF == g && $2 != w' | wc -l)
        [ "$n" -eq 0 ] || die "$n phones of group $g did not do itl=$want: $(join <(sort "$out") \
            <(sort groups.txt) | awk -v g="$g" '$NF == g' | head -2)"
    done
}
# Before the publish: coverage and plan on the alarms, with the certificate TVS will present.
predict() { # name reports new-ITL tvs-cert: cov-NAME.json and plan-NAME.json
    local rc
    "$BIN" coverage --json --reports "$2" --history history --current "$3" --tvs-cert "$4" \
        >cov-$1.json 2>predict.err
    rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 8 ] || die "coverage exit $rc: $(cat predict.err)"
    [ ! -s predict.err ] || die "coverage warned about the simulator's alarms: $(cat predict.err)"
    "$BIN" plan --json --new "$3" --reports "$2" --history history --tvs-cert "$4" \
        >plan-$1.json 2>predict.err
    rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 8 ] || die "plan exit $rc: $(cat predict.err)"
    [ ! -s predict.err ] || die "plan warned about the simulator's alarms: $(cat predict.err)"
}
# The TVS service the phones reach: the certificate it presents, and the cluster's certificate
# store it vouches from (the records of the ITL being published, as plan models it).
tvs_args() { # tvs-cert store-cert...
    TVS=(--tvs-cert "$1")
    shift
    local c
    for c in "$@"; do TVS+=(--tvs-trust "$c"); done
}

# ---- the current ITL republished: coverage and plan predict each phone ----
cp -a fleet fleet-a
predict a reports0.xml history/ITL-current.tlv TVS1.pem
tvs_args TVS1.pem CM1.pem TVS1.pem ITLRecovery.pem
serve_raw history/ITL-current.tlv
sign_configs T1
boot boot-a.txt fleet-a "${TVS[@]}"
"${T1[@]}" reset history/ITL-current.tlv -o itl/current-reset.tlv --timestamp 1700000900 \
    >/dev/null 2>&1 || die "reset the current ITL"
publish itl/current-reset.tlv T1
boot_phones boot-a-reset.txt 10 "${TVS[@]}" $(rejecters boot-a.txt fleet-a)
compare --coverage cov-a.json --plan plan-a.json --boot boot-a.txt --reset boot-a-reset.txt ||
    die "coverage or plan mispredicted the fleet"
expect_groups boot-a.txt current=current old=accept norecovery=accept regen=accept-via-tvs \
    foreign=reject
ok "coverage and plan predicted all 200 phones: current, directly, via TVS (the CM0 ITLs), unknown"

# ---- right order, step 1: CallManager regenerated, TVS kept: every phone of ours via TVS ----
cp -a fleet fleet-right
serve_raw history/ITL-current.tlv
predict r1 reports0.xml itl/right-1.tlv TVS1.pem
tvs_args TVS1.pem CM2.pem TVS1.pem ITLRecovery.pem
publish itl/right-1.tlv T2
boot boot-r1.txt fleet-right "${TVS[@]}"
compare --coverage cov-r1.json --plan plan-r1.json --boot boot-r1.txt ||
    die "coverage or plan mispredicted step 1"
expect_groups boot-r1.txt current=accept-via-tvs old=accept-via-tvs \
    norecovery=accept-via-tvs regen=accept-via-tvs foreign=reject
[ "$(grep -c ' config=accept ' boot-r1.txt)" -eq 190 ] || die "not 190 configs accepted after step 1"
reports fleet-right reports-r1.xml
# publish kept its copy by SHA-1: that is the history the next prediction looks phones up in
r1_sha=$(sha1sum itl/right-1.tlv | cut -c1-40)
cp pubhist/$r1_sha.tlv history/ || die "publish kept no copy of right-1 in its history"
# ---- step 2, later: TVS regenerated; the phones hold the CM2 ITL now and take it directly ----
predict r2 reports-r1.xml itl/right-2.tlv TVS2.pem
tvs_args TVS2.pem CM2.pem TVS2.pem ITLRecovery.pem
publish itl/right-2.tlv T2
boot boot-r2.txt fleet-right "${TVS[@]}"
"${T2[@]}" reset itl/right-2.tlv -o itl/right-2-reset.tlv --timestamp 1710000900 >/dev/null 2>&1 ||
    die "reset right-2"
publish itl/right-2-reset.tlv T2
boot_phones boot-r2-reset.txt 10 "${TVS[@]}" $(rejecters boot-r2.txt fleet-right)
compare --coverage cov-r2.json --plan plan-r2.json --boot boot-r2.txt --reset boot-r2-reset.txt ||
    die "coverage or plan mispredicted step 2"
no_mistakes plan-r1.json plan-r2.json
expect_groups boot-r2.txt current=accept old=accept norecovery=accept regen=accept foreign=reject
rm -f history/$r1_sha.tlv
ok "right order: CallManager first (190 via TVS), TVS later (190 directly): nobody of ours stranded"

# ---- wrong order: CallManager and TVS regenerated together; TVS2 is in no phone's ITL ----
cp -a fleet fleet-wrong
serve_raw history/ITL-current.tlv
predict w reports0.xml itl/wrong.tlv TVS2.pem
tvs_args TVS2.pem CM2.pem TVS2.pem ITLRecovery.pem
# publish refuses it (a phone holding the root's ITL would reject it); CUCM would not ask
expect_exit 5 "$BIN" publish itl/wrong.tlv --to srv --history pubhist
cmp -s srv/ITLFile.tlv history/ITL-current.tlv || die "a refused publish changed the root"
grep -q "TVS" <<<"$ERR$OUT" || die "publish's refusal does not say TVS cannot vouch: $ERR"
serve_raw itl/wrong.tlv
sign_configs T2
boot boot-w.txt fleet-wrong "${TVS[@]}"
grep -q "^Trust List Update Failed: .*TVS" fleet-wrong/$(head -1 groups.txt | cut -d' ' -f1)/status.log ||
    die "a phone's status messages do not say why TVS could not help"
# The reset, checked against the phones' fresh alarms: exactly the 20 without the recovery SAST
# stay stranded, so publish refuses it with --allow-stranded 19 and takes it with 20.
reports fleet-wrong reports-w.xml
expect_exit 5 "$BIN" publish itl/wrong-reset.tlv --to srv --history history --reports reports-w.xml \
    --tvs-cert TVS2.pem --allow-stranded 19
cmp -s srv/ITLFile.tlv itl/wrong.tlv || die "a refused publish changed the root"
grep -q "20.*stranded\|stranded.*20" <<<"$OUT$ERR" || die "the refusal does not count 20 stranded: $OUT$ERR"
expect_exit 0 "$BIN" publish itl/wrong-reset.tlv --to srv --history history --reports reports-w.xml \
    --tvs-cert TVS2.pem --allow-stranded 20
rm -f history/$(sha1sum itl/wrong-reset.tlv | cut -c1-40).tlv # publish's copy: not a past ITL
sign_configs T2
boot boot-w-reset.txt fleet-wrong "${TVS[@]}"
compare --coverage cov-w.json --plan plan-w.json --boot boot-w.txt --reset boot-w-reset.txt ||
    die "coverage or plan mispredicted the wrong order"
expect_groups boot-w.txt current=reject old=reject norecovery=reject regen=reject foreign=reject
expect_groups boot-w-reset.txt current=accept old=accept norecovery=reject regen=accept \
    foreign=reject
$PY - cov-w.json <<'PY' || die "coverage's wrong-order summary: $(cat cov-w.json)"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert s["rescuable by reset"] == 170 and s["stranded (needs manual ITL delete)"] == 20, s
assert s["unknown ITL"] == 10 and s["current"] == 0, s
PY
$PY - plan-w.json <<'PY' || die "plan does not name the wrong order's mistake: $(cat plan-w.json)"
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["mistake"]: x["phones"] for x in d["mistakes"]}
assert m.get("callmanager-and-tvs-regenerated") == 190, m
named = [p["device"] for p in d["phones"] if "callmanager-and-tvs-regenerated" in p["mistakes"]]
assert len(named) == 190, len(named)
PY
ok "wrong order: all 200 refuse, as plan said (190 named callmanager-and-tvs-regenerated); the reset (publish --allow-stranded 20, refused at 19) rescues the 170 predicted, 20 stay stranded"
echo "figures: fleet: 200 phones, $(cat boot*.txt | wc -l) phone boots over TFTP in ${SECONDS}s (all of the test)"
