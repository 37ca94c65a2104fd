#!/bin/bash
# itl-sign plan (issue 15): what each phone would do with a proposed ITL. ITLs built with this
# tree's `build` on a throwaway SoftHSM2 token; each classic mistake of the seeds caught, a
# correct rotation predicted safe, verdicts checked phone by phone; coverage's TVS verdict.
. "$(dirname "$0")/lib.sh"
cd "$WORK"

printf 'p12 pass' >p12.pass && chmod 600 p12.pass
mkcert() { # name subject
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 365 \
        -subj "$2" 2>/dev/null || die "openssl req $1"
}
# A token per signing key, labelled CallManager (the TFTP key) as on its cluster; its TOK array
# is kept as TOK_<name>, its SoftHSM2 configuration as CONF_<name>.
key_token() { # name
    new_token itl-plan-$1
    openssl pkcs12 -export -inkey $1.key -in $1.pem -out $1.p12 -passout file:p12.pass ||
        die "openssl pkcs12 $1"
    expect_exit 0 "$BIN" "${TOK[@]}" key import --p12 $1.p12 --p12-pass-file p12.pass \
        --label CallManager
    eval "TOK_$1=(\"\${TOK[@]}\")"
    eval "CONF_$1=\$SOFTHSM2_CONF"
}
mkcert CM1 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert CM2 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US/L=regenerated"
mkcert TVS1 "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US"
mkcert TVS2 "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US/L=regenerated"
mkcert R1 "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert R2 "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco/C=US/L=regenerated"
mkcert T2 "/CN=tftp2.example/OU=TAC/O=Cisco/C=US"
mkcert OLD "/CN=old-cucm.example/OU=TAC/O=Cisco/C=US"
for k in CM1 CM2 T2 OLD; do key_token $k; done

build() { # signer out records...
    local signer=$1 out=$2
    local -n tok=TOK_$signer conf=CONF_$signer
    shift 2
    expect_exit 0 env SOFTHSM2_CONF="$conf" "$BIN" "${tok[@]}" build --signer tftp "$@" --timestamp 1700000000 -o "$out"
}
mkdir hist
# what phones hold
build CM1 hist/held-current.tlv --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem --sast R1.pem
build CM1 hist/held-norecovery.tlv --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem
build OLD hist/held-old.tlv --sast OLD.pem --ccm-tftp OLD.pem
# proposed ITLs
build CM1 new-same-key.tlv --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem --sast R1.pem \
    --capf CM2.pem
build CM2 new-cm-regen.tlv --sast CM2.pem --ccm-tftp CM2.pem --tvs TVS1.pem --sast R1.pem
build CM2 new-both-regen.tlv --sast CM2.pem --ccm-tftp CM2.pem --tvs TVS2.pem --sast R1.pem
build T2 new-tftp-key.tlv --sast T2.pem --ccm-tftp T2.pem --sast R1.pem
build CM1 new-recovery.tlv --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem --sast R2.pem

sha() { sha1sum "$1" | cut -c1-40 | tr a-f A-F | sed 's/../& /g'; }
{
    echo "DeviceName,ITL_Signature"
    echo "SEP000000000001,$(sha hist/held-current.tlv)"
    echo "SEP000000000002,$(sha hist/held-norecovery.tlv)"
    echo "SEP000000000003,$(sha hist/held-old.tlv)"
    echo "SEP000000000004,Not Installed"
    echo "SEP000000000005,00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF 00 11 22 33"
} >fleet.csv
{
    echo "DeviceName,ITL_Signature"
    echo "SEP000000000001,$(sha hist/held-current.tlv)"
    echo "SEP000000000002,$(sha hist/held-norecovery.tlv)"
} >cluster.csv

# plan NEW REPORTS: the JSON document in plan.json, the exit status in $RC
plan() {
    RC=0
    "$BIN" plan --json --new "$1" --reports "$2" --history hist "${@:3}" >plan.json \
        2>plan.err || RC=$?
}
# check "DEVICE=action/outcome ..." [mistake ids present] against plan.json
check() {
    /usr/bin/python3 - plan.json "$@" <<'PY' || die "plan $NEW: $(cat plan.json plan.err)"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["command"] == "plan"
phones = {p["device"]: p for p in d["phones"]}
want_mistakes = set()
for arg in sys.argv[2:]:
    if "=" not in arg:
        want_mistakes.add(arg)
        continue
    dev, verdict = arg.split("=")
    action, outcome = verdict.split("/")
    p = phones["SEP00000000000" + dev]
    assert p["action"] == action, (dev, p)
    assert p["outcome"] == outcome, (dev, p)
    assert p["reasons"] and all(isinstance(r, str) and r for r in p["reasons"]), p
got = {m["mistake"] for m in d["mistakes"]}
assert got == want_mistakes, (got, want_mistakes)
for m in d["mistakes"]:
    assert m["phones"] > 0 and m["message"] and m["installed_files"], m
s = d["summary"]
assert s["phones"] == len(d["phones"])
assert s["accept"] + s["accept-via-tvs"] + s["reject"] == s["phones"], s
assert sum(s[k] for k in ("current", "stranded", "rescuable by reset", "unknown ITL")) == s["phones"]
PY
}

# ---- a correct rotation: same key, one more record: every known phone accepts directly ----
NEW=new-same-key.tlv
plan $NEW cluster.csv
[ $RC -eq 0 ] || die "plan of a safe ITL: exit $RC: $(cat plan.err)"
check 1=accept/current 2=accept/current
ok "plan: the same signer with one more record is safe (accept, exit 0)"

# ---- CallManager regenerated, TVS kept: TVS vouches for the new signer ----
NEW=new-cm-regen.tlv
plan $NEW cluster.csv
[ $RC -eq 0 ] || die "plan of a CallManager regeneration: exit $RC: $(cat plan.err)"
check 1=accept-via-tvs/current 2=accept-via-tvs/current
ok "plan: CallManager regenerated alone: accept-via-tvs, exit 0"

# ---- the whole fleet against the same ITL: old, unknown and empty phones ----
plan $NEW fleet.csv
[ $RC -eq 8 ] || die "plan with a stranded and an unknown phone: exit $RC"
check 1=accept-via-tvs/current 2=accept-via-tvs/current 3=reject/stranded \
    4=accept/current 5=reject/unknown\ ITL new-signer-without-sast
ok "plan: an old cluster's ITL stranded, an unknown hash unknown, Not Installed accepts: exit 8"

# ---- classic mistake 1: CallManager and TVS regenerated together ----
NEW=new-both-regen.tlv
plan $NEW cluster.csv
[ $RC -eq 8 ] || die "plan of CallManager+TVS regenerated: exit $RC"
check 1=reject/rescuable\ by\ reset 2=reject/stranded callmanager-and-tvs-regenerated
grep -q "TVS" <<<"$(python3 -c 'import json;print(json.load(open("plan.json"))["phones"][0]["reasons"])')" ||
    die "the reason does not name TVS: $(cat plan.json)"
ok "plan: CallManager and TVS regenerated together caught; rescuable vs stranded by recovery SAST"

# ---- classic mistake 2: a new TFTP key no SAST of the phones' ITL signs for ----
NEW=new-tftp-key.tlv
plan $NEW cluster.csv
[ $RC -eq 8 ] || die "plan of a new TFTP key: exit $RC"
check 1=reject/rescuable\ by\ reset 2=reject/stranded new-signer-without-sast
ok "plan: a new TFTP key without a SAST signing for it caught"

# ---- classic mistake 3: a recovery SAST that differs from the phones' ----
NEW=new-recovery.tlv
plan $NEW cluster.csv
[ $RC -eq 0 ] || die "plan of a changed recovery SAST: exit $RC (every phone accepts)"
check 1=accept/current 2=accept/current recovery-sast-changed
python3 - plan.json <<'PY' || die "the recovery mistake is not on the phone holding R1: $(cat plan.json)"
import json, sys
d = json.load(open(sys.argv[1]))
p = {x["device"]: x for x in d["phones"]}
assert p["SEP000000000001"]["mistakes"] == ["recovery-sast-changed"], p
assert p["SEP000000000002"]["mistakes"] == [], p  # it never had a recovery SAST
assert d["mistakes"][0]["installed_files"] == ["held-current.tlv"], d["mistakes"]
PY
ok "plan: a changed recovery SAST caught on the phones that held the old one"

# ---- a phone with a CTL whose CCM+TFTP record is the new key takes it (docs/trust.md R3) ----
build CM1 hist/CTLFile.tlv --filename CTLFile.tlv --sast CM1.pem --ccm-tftp CM2.pem
{
    echo "DeviceName,ITL_Signature,CTL_Signature"
    echo "SEP000000000001,$(sha hist/held-current.tlv),Not Installed"
    echo "SEP000000000002,$(sha hist/held-norecovery.tlv),$(sha hist/CTLFile.tlv)"
} >ctl.csv
NEW=new-both-regen.tlv
plan $NEW ctl.csv
[ $RC -eq 0 ] || die "plan with a CTL phone: exit $RC"
check 1=reject/rescuable\ by\ reset 2=accept/current callmanager-and-tvs-regenerated
grep -q "but its CTL CTLFile.tlv does" plan.json || die "the CTL is not named: $(cat plan.json)"
expect_exit 8 "$BIN" coverage --reports ctl.csv --history hist --current new-both-regen.tlv
grep -q "SEP000000000002 .* updates directly$" <<<"$OUT" || die "coverage through the CTL: $OUT"
grep -q "SEP000000000001 .* rescuable by reset$" <<<"$OUT" || die "coverage without a CTL: $OUT"
ok "plan, coverage: a phone whose CTL holds the new CCM+TFTP key accepts what its ITL rejects"

# ---- text output: the table, the mistake named, the summary ----
expect_exit 8 "$BIN" plan --new new-both-regen.tlv --reports cluster.csv --history hist
for want in "SEP000000000001 *held-current.tlv *reject *rescuable by reset" \
    "SEP000000000002 *held-norecovery.tlv *reject *stranded" \
    "MISTAKE callmanager-and-tvs-regenerated (2 phones" "never regenerate CallManager.pem" \
    "^stranded  *1$" "^total  *2$"; do
    grep -q "$want" <<<"$OUT" || die "plan text lacks '$want': $OUT"
done
ok "plan: text table, mistake and summary"

# ---- --tvs-cert: the certificate TVS really presents decides ----
plan new-cm-regen.tlv cluster.csv --tvs-cert TVS2.pem
[ $RC -eq 8 ] || die "plan with a TVS presenting TVS2: exit $RC"
NEW="new-cm-regen.tlv --tvs-cert TVS2.pem"
check 1=reject/rescuable\ by\ reset 2=reject/stranded callmanager-and-tvs-regenerated
ok "plan --tvs-cert: a TVS certificate the phones do not hold: no TVS path"

# ---- --current: looked up like a history file ----
mkdir emptyhist
expect_exit 8 "$BIN" plan --json --new new-same-key.tlv --reports cluster.csv --history emptyhist \
    --current hist/held-current.tlv
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); p={x["device"]:x for x in d["phones"]}; assert p["SEP000000000001"]["outcome"]=="current"; assert p["SEP000000000002"]["outcome"]=="unknown ITL"' "$OUT" ||
    die "plan --current: $OUT"

# ---- usage and input errors ----
expect_exit 2 "$BIN" plan --reports cluster.csv --history hist
expect_exit 3 "$BIN" plan --new nothere.tlv --reports cluster.csv --history hist
expect_exit 3 "$BIN" plan --new CM1.pem --reports cluster.csv --history hist
expect_exit 3 "$BIN" plan --new new-same-key.tlv --reports cluster.csv --history nothere
grep -q "No such file or directory" <<<"$ERR" || die "the history error lacks strerror: $ERR"
ok "plan: --current, usage and input errors (strerror in the history error)"

# ---- coverage: updates via TVS (issue 15 left it unproduced) ----
expect_exit 0 "$BIN" coverage --reports cluster.csv --history hist --current new-cm-regen.tlv
grep -q "SEP000000000001 .* updates via TVS$" <<<"$OUT" || die "coverage via TVS: $OUT"
grep -q "^updates via TVS  *2$" <<<"$OUT" || die "coverage via TVS summary: $OUT"
expect_exit 0 "$BIN" coverage --reports cluster.csv --history hist --current new-cm-regen.tlv \
    --tvs-cert TVS1.pem
grep -q "SEP000000000002 .* updates via TVS$" <<<"$OUT" || die "coverage --tvs-cert TVS1: $OUT"
expect_exit 8 "$BIN" coverage --reports cluster.csv --history hist --current new-cm-regen.tlv \
    --tvs-cert TVS2.pem
grep -q "SEP000000000001 .* rescuable by reset$" <<<"$OUT" || die "coverage --tvs-cert TVS2: $OUT"
expect_exit 3 "$BIN" coverage --reports cluster.csv --history nothere --current new-cm-regen.tlv
grep -q "cannot open history directory nothere: No such file or directory" <<<"$ERR" ||
    die "coverage history error: $ERR"
ok "coverage: updates via TVS with the new ITL's TVS record or --tvs-cert; none with another TVS"

# ---- plan --build: the proposed ITL as build's own arguments, signed by nobody ----
# same NEW.tlv REPORTS BUILD-ARGS...: plan --build predicts what plan --new predicts for the ITL
# built and signed for real: the same exit status, phones array and mistakes.
same() {
    local new=$1 reports=$2 rc_new=0 rc_build=0
    shift 2
    "$BIN" plan --json --new "$new" --reports "$reports" --history hist >pn.json 2>pn.err || rc_new=$?
    "$BIN" plan --json --reports "$reports" --history hist --build "$@" --timestamp 1700000000 \
        >pb.json 2>pb.err || rc_build=$?
    [ $rc_new -eq $rc_build ] || die "plan --build $*: exit $rc_build, --new $new: $rc_new: $(cat pb.err)"
    /usr/bin/python3 - pn.json pb.json <<'PY' || die "plan --build $* differs from --new $new"
import json, sys
n, b = (json.load(open(f)) for f in sys.argv[1:])
assert n["phones"] and n["phones"] == b["phones"], (n["phones"], b["phones"])
assert n["mistakes"] == b["mistakes"] and n["summary"] == b["summary"], (n, b)
PY
}
same new-same-key.tlv fleet.csv --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem --sast R1.pem \
    --capf CM2.pem
same new-cm-regen.tlv fleet.csv --sast CM2.pem --ccm-tftp CM2.pem --tvs TVS1.pem --sast R1.pem
same new-both-regen.tlv fleet.csv --sast CM2.pem --ccm-tftp CM2.pem --tvs TVS2.pem --sast R1.pem
grep -q callmanager-and-tvs-regenerated pb.json || die "plan --build: mistake 1 not named"
same new-both-regen.tlv ctl.csv --sast CM2.pem --ccm-tftp CM2.pem --tvs TVS2.pem --sast R1.pem
same new-tftp-key.tlv fleet.csv --sast T2.pem --ccm-tftp T2.pem --sast R1.pem
grep -q new-signer-without-sast pb.json || die "plan --build: mistake 2 not named"
same new-recovery.tlv fleet.csv --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem --sast R2.pem
grep -q recovery-sast-changed pb.json || die "plan --build: mistake 3 not named"
ok "plan --build: each classic mistake predicted phone for phone as plan --new of the signed ITL"

# The signer is the first --sast: R1 first is an ITL R1 signs, which every phone holding R1
# takes directly (a reset); the phone without R1 does not.
expect_exit 8 "$BIN" plan --json --reports cluster.csv --history hist --build --sast R1.pem \
    --ccm-tftp CM2.pem --tvs TVS2.pem --sast CM2.pem
python3 -c 'import json,sys; p={x["device"]:x for x in json.loads(sys.argv[1])["phones"]}; assert p["SEP000000000001"]["action"]=="accept" and p["SEP000000000002"]["action"]=="reject"' "$OUT" ||
    die "plan --build with R1 first: $OUT"
ok "plan --build: the first --sast is the signer it is judged by"

# A label without a token: said clearly, exit 2; with --token the certificate comes from the
# token (no PIN given: no login) and the prediction is the one for the file.
expect_exit 2 "$BIN" plan --reports cluster.csv --history hist --build --sast label:CallManager \
    --ccm-tftp CM2.pem
grep -q "label of a certificate on a token; give --token URI" <<<"$ERR" || die "label without token: $ERR"
expect_exit 2 "$BIN" plan --reports cluster.csv --history hist --build --sast CM9.pem
grep -q "CM9.pem: no such file" <<<"$ERR" || die "missing file: $ERR"
same new-cm-regen.tlv fleet.csv --sast CM2.pem --ccm-tftp CM2.pem --tvs TVS1.pem --sast R1.pem
cp pb.json pb-file.json
SOFTHSM2_CONF=$CONF_CM2 "$BIN" plan --json --reports fleet.csv --history hist "${TOK_CM2[@]}" \
    --build --sast label:CallManager --ccm-tftp label:CallManager --tvs TVS1.pem --sast R1.pem \
    --timestamp 1700000000 >pb.json 2>pb.err || [ $? -eq 8 ] || die "plan --build --token: $(cat pb.err)"
python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); assert a["phones"]==b["phones"]' pb-file.json pb.json ||
    die "plan --build with the token's certificate differs: $(cat pb.json pb.err)"
# --config: the config's token (token.uri, module, pin-file), not its service
cat >plan.yaml <<EOF2
node: { name: cucm-pub, role: publisher }
token:
  module: ${TOK_CM2[1]}
  uri: "${TOK_CM2[3]}"
  pin-file: ${TOK_CM2[5]}
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
state-dir: $WORK/plan-state
audit-log: $WORK/plan-audit.log
EOF2
[ "${TOK_CM2[0]} ${TOK_CM2[2]} ${TOK_CM2[4]}" = "--module --token --pin-file" ] || die "TOK layout: ${TOK_CM2[*]}"
SOFTHSM2_CONF=$CONF_CM2 "$BIN" plan --json --reports fleet.csv --history hist --config plan.yaml \
    --build --sast label:CallManager --ccm-tftp label:CallManager --tvs TVS1.pem --sast R1.pem \
    --timestamp 1700000000 >pb.json 2>pb.err || [ $? -eq 8 ] || die "plan --build --config: $(cat pb.err)"
python3 -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); assert a["phones"]==b["phones"]' pb-file.json pb.json ||
    die "plan --build with the config's token differs: $(cat pb.json pb.err)"
ok "plan --build: label:NAME needs --token or --config (said so), and from the token predicts as the file"

# Usage: --new and --build together, neither, and build's signing-only options.
expect_exit 2 "$BIN" plan --new new-same-key.tlv --reports cluster.csv --history hist --build --sast CM1.pem
expect_exit 2 "$BIN" plan --reports cluster.csv --history hist --build --ccm-tftp CM1.pem
grep -q "no --sast" <<<"$ERR" || die "no --sast: $ERR"
expect_exit 2 "$BIN" plan --reports cluster.csv --history hist --build --sast CM1.pem --signer tftp
grep -q "signed by nobody" <<<"$ERR" || die "--signer: $ERR"
ok "plan --build: usage errors"
