#!/bin/bash
# itl-sign publish (issue 15): the phone model first (refusals with reasons), then every target
# or none (a failure in the second target, a kill at every point), the history copy by SHA-1,
# the hook once after all renames, a configs batch, a hostile symlink, --dry-run, --json, audit.
. "$(dirname "$0")/lib.sh"
cd "$WORK"

printf 'p12 pass' >p12.pass && chmod 600 p12.pass
mkcert() { # name subject
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 365 \
        -subj "$2" 2>/dev/null || die "openssl req $1"
}
key_token() { # name: a token whose CallManager (TFTP) key is this one
    new_token itl-publish-$1
    openssl pkcs12 -export -inkey $1.key -in $1.pem -out $1.p12 -passout file:p12.pass ||
        die "openssl pkcs12 $1"
    expect_exit 0 "$BIN" "${TOK[@]}" key import --p12 $1.p12 --p12-pass-file p12.pass \
        --label CallManager
    eval "TOK_$1=(\"\${TOK[@]}\")"
    eval "CONF_$1=\$SOFTHSM2_CONF"
}
mkcert CM1 "/CN=cucm-pub.example/OU=TAC/O=Cisco/C=US"
mkcert OLD "/CN=other-cluster.example/OU=TAC/O=Cisco/C=US"
mkcert TVS1 "/CN=cucm-pub.example-tvs/OU=TAC/O=Cisco/C=US"
mkcert R1 "/CN=ITLRECOVERY_cucm-pub.example/OU=TAC/O=Cisco/C=US"
key_token CM1
key_token OLD
with() { # key command...
    local -n tok=TOK_$1 conf=CONF_$1
    shift
    env SOFTHSM2_CONF="$conf" "$BIN" "${tok[@]}" "$@"
}
mkdir old new bad
expect_exit 0 with CM1 build --signer tftp --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem \
    --sast R1.pem --timestamp 1700000000 -o old/ITLFile.tlv
expect_exit 0 with CM1 build --signer tftp --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem \
    --sast R1.pem --capf OLD.pem --timestamp 1700000100 -o new/ITLFile.tlv
expect_exit 0 with OLD build --signer tftp --sast OLD.pem --ccm-tftp OLD.pem \
    --timestamp 1700000200 -o bad/ITLFile.tlv
OLD_SHA=$(sha1sum old/ITLFile.tlv | cut -c1-40)
NEW_SHA=$(sha1sum new/ITLFile.tlv | cut -c1-40)

fresh() { # two TFTP roots serving the old ITL
    rm -rf tftp1 tftp2 hist hook.log
    mkdir tftp1 tftp2 hist
    cp old/ITLFile.tlv tftp1/ && cp old/ITLFile.tlv tftp2/
}
same() { cmp -s "$1" "$2"; }
clean_dir() { # no journal, backup, temporary or marker left
    local left
    left=$(ls -A "$1" | grep -v '^ITLFile.tlv$' | grep -v '\.sgn$' || true)
    [ -z "$left" ] || die "$1 keeps $left"
}
HOOK=(--then "$ITL_SRC/tests/integration/publish_hook.sh $WORK/hook.log $WORK/tftp1 $WORK/tftp2")

# ---- refusal with the phone model's reasons; the hook is not run ----
fresh
expect_exit 5 "$BIN" publish bad/ITLFile.tlv --to tftp1 --to tftp2 --history hist "${HOOK[@]}"
grep -q "would reject" <<<"$ERR$OUT" || die "no refusal reason: $ERR $OUT"
grep -q "is no record of the installed ITL" <<<"$OUT" || die "the phone model's reason: $OUT"
same tftp1/ITLFile.tlv old/ITLFile.tlv && same tftp2/ITLFile.tlv old/ITLFile.tlv ||
    die "a refused publish changed a target"
[ ! -e hook.log ] || die "the hook ran on a refusal"
[ -z "$(ls hist)" ] || die "a refused publish wrote the history"
expect_exit 2 "$BIN" publish bad/ITLFile.tlv --to tftp1 --force
ok "publish: refused with the phone model's reason, nothing written, no hook; no --force"

# ---- two targets updated together, the history copy, the hook once after all renames ----
fresh
expect_exit 0 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 --history hist "${HOOK[@]}"
same tftp1/ITLFile.tlv new/ITLFile.tlv && same tftp2/ITLFile.tlv new/ITLFile.tlv ||
    die "not every target is new"
same hist/$NEW_SHA.tlv new/ITLFile.tlv || die "no history copy named by SHA-1: $(ls hist)"
[ "$(grep -c run hook.log)" -eq 1 ] || die "the hook ran $(grep -c run hook.log) times"
grep -q "^run tftp1=$NEW_SHA tftp2=$NEW_SHA$" hook.log || die "the hook ran before all renames: $(cat hook.log)"
clean_dir tftp1 && clean_dir tftp2
expect_exit 0 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 "${HOOK[@]}"
grep -q "holds these bytes already" <<<"$OUT" || die "an unchanged publish: $OUT"
[ "$(grep -c run hook.log)" -eq 1 ] || die "the hook ran for an unchanged publish"
ok "publish: both targets new, history copy <sha1>.tlv, hook once after both renames"

# ---- --dry-run writes nothing ----
fresh
before=$(cd tftp1 && ls -la --time-style=full-iso; cd ../tftp2 && ls -la --time-style=full-iso)
expect_exit 0 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 --history hist --dry-run "${HOOK[@]}"
grep -q "nothing written" <<<"$OUT" || die "dry-run: $OUT"
after=$(cd tftp1 && ls -la --time-style=full-iso; cd ../tftp2 && ls -la --time-style=full-iso)
[ "$before" = "$after" ] && [ -z "$(ls hist)" ] && [ ! -e hook.log ] || die "--dry-run wrote something"
ok "publish --dry-run: nothing written, no hook"

# ---- a failure in the second target leaves both old ----
fresh
chmod 0555 tftp2
if [ "$(id -u)" -eq 0 ]; then chattr +i tftp2 2>/dev/null || true; fi
expect_exit 6 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 "${HOOK[@]}"
chattr -i tftp2 2>/dev/null || true
chmod 0755 tftp2
grep -q "every target as it was" <<<"$ERR" || die "the failure message: $ERR"
same tftp1/ITLFile.tlv old/ITLFile.tlv && same tftp2/ITLFile.tlv old/ITLFile.tlv ||
    die "an unwritable second target left the first one new"
clean_dir tftp1 && clean_dir tftp2
[ ! -e hook.log ] || die "the hook ran after a failed publish"
ok "publish: an unwritable second target: both old, nothing left behind, no hook"

cc -shared -fPIC -O1 -o fsfault.so "$ITL_SRC/tests/integration/fsfault.c" -ldl || die "cc fsfault"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
for n in 1 2; do
    fresh
    expect_exit 6 env LD_PRELOAD=$WORK/fsfault.so FSFAULT_FAIL_RENAME=$n \
        "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 "${HOOK[@]}"
    same tftp1/ITLFile.tlv old/ITLFile.tlv && same tftp2/ITLFile.tlv old/ITLFile.tlv ||
        die "rename $n failed: not both old"
    clean_dir tftp1 && clean_dir tftp2
done
ok "publish: the first or the second rename fails: both targets rolled back to old"

# ---- a kill at every point: each target old or new, and all the same after recovery ----
fresh
env LD_PRELOAD=$WORK/fsfault.so FSFAULT_COUNT=$WORK/calls \
    "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 >/dev/null 2>&1 || die "counting run"
CALLS=$(cat calls)
[ "$CALLS" -gt 10 ] || die "only $CALLS file system calls counted"
# publish, killed with SIGKILL at the Nth file system call (the bash notice silenced)
killed_at() {
    local rc=0
    { env LD_PRELOAD=$WORK/fsfault.so FSFAULT_KILL_AT=$1 \
        "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 >/dev/null 2>&1; } 2>/dev/null || rc=$?
    [ $rc -eq 137 ] || die "kill at call $1: exit $rc"
}
mixed=0 back=0 forward=0
for n in $(seq 1 "$CALLS"); do
    fresh
    killed_at $n
    for t in tftp1 tftp2; do
        same $t/ITLFile.tlv old/ITLFile.tlv || same $t/ITLFile.tlv new/ITLFile.tlv ||
            die "kill at call $n: $t/ITLFile.tlv is neither old nor new"
    done
    same tftp1/ITLFile.tlv tftp2/ITLFile.tlv || mixed=$((mixed + 1))
    expect_exit 0 "$BIN" publish --recover --to tftp1 --to tftp2
    same tftp1/ITLFile.tlv tftp2/ITLFile.tlv || die "kill at call $n: not the same after recovery"
    if same tftp1/ITLFile.tlv new/ITLFile.tlv; then forward=$((forward + 1)); else back=$((back + 1)); fi
    clean_dir tftp1 && clean_dir tftp2
done
[ $mixed -gt 0 ] || die "no kill point left the targets mixed: the test does not reach the renames"
[ $back -gt 0 ] && [ $forward -gt 0 ] || die "recovery: $back rolled back, $forward forward: one kind never reached"
# the next publish repairs by itself, then publishes
fresh
killed_at $((CALLS / 2))
expect_exit 0 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2
grep -q "interrupted publish was" <<<"$ERR" || die "the recovery is not reported: $ERR"
same tftp1/ITLFile.tlv new/ITLFile.tlv && same tftp2/ITLFile.tlv new/ITLFile.tlv || die "after repair"
ok "publish: killed at each of $CALLS points: old or new ($mixed mixed), all the same after recovery ($back old, $forward new)"

# ---- a journal another user wrote is never followed; nor one naming a directory not given ----
fresh
killed_at $((CALLS / 2))
expect_exit 2 "$BIN" publish --recover --to tftp2
grep -q "also wrote .*tftp1: give every one of its target directories" <<<"$ERR" ||
    die "a journal naming a directory not given: $ERR"
chown nobody tftp1/.itl-swap.journal
expect_exit 5 "$BIN" publish --recover --to tftp1 --to tftp2
grep -q "is not a journal this user wrote (owner uid $(id -u nobody)" <<<"$ERR" ||
    die "a foreign journal: $ERR"
chown root tftp1/.itl-swap.journal
expect_exit 0 "$BIN" publish --recover --to tftp1 --to tftp2
same tftp1/ITLFile.tlv tftp2/ITLFile.tlv || die "after the refused recoveries"
ok "publish --recover: a journal of another user, or naming a directory not given, is refused"

# ---- the name phones ask for is the file's FILENAME ----
fresh
cp new/ITLFile.tlv ITLFile-new.tlv
expect_exit 0 "$BIN" publish ITLFile-new.tlv --to tftp1
same tftp1/ITLFile.tlv new/ITLFile.tlv && [ ! -e tftp1/ITLFile-new.tlv ] || die "FILENAME not used"
ok "publish: the target name is the ITL's FILENAME (ITLFile.tlv), not the source's name"

# ---- a trust list whose FILENAME no phone fetches is refused: it would land beside ----
# ITLFile.tlv, where no phone asks, and look like a first publish.
expect_exit 0 with CM1 build --signer tftp --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem \
    --sast R1.pem --capf OLD.pem --timestamp 1700000100 --filename ITL-x.tlv -o ITL-x.tlv
expect_exit 0 with CM1 build --signer tftp --sast CM1.pem --ccm-tftp CM1.pem \
    --timestamp 1700000100 --filename CTLSEP001122334455.tlv -o CTLSEP001122334455.tlv
fresh
before=$(ls -lA tftp1 tftp2)
for f in ITL-x.tlv CTLSEP001122334455.tlv; do
    expect_exit 5 "$BIN" publish $f --to tftp1 --to tftp2 --history hist "${HOOK[@]}"
    fix=ITLFile.tlv
    [ $f = ITL-x.tlv ] || fix=CTLFile.tlv
    grep -qF "its FILENAME field is \"$f\", a name no phone fetches" <<<"$ERR" ||
        die "publish $f: the field and value not named: $ERR"
    grep -qF "itl-sign build --filename $fix" <<<"$ERR" || die "publish $f: no fix: $ERR"
    grep -qF "nothing published" <<<"$ERR" || die "publish $f: $ERR"
    [ "$(ls -lA tftp1 tftp2)" = "$before" ] || die "publish $f wrote into a target"
    [ -z "$(ls -A hist)" ] && [ ! -e hook.log ] || die "publish $f: history or hook"
    expect_exit 5 "$BIN" publish $f --to tftp1 --dry-run
done
same tftp1/ITLFile.tlv old/ITLFile.tlv && same tftp2/ITLFile.tlv old/ITLFile.tlv || die "targets changed"
ok "publish: a FILENAME no phone fetches (ITL-x.tlv, CTLSEP<MAC>.tlv) is refused, naming the fix; nothing written"

# build -o NAME.tlv: FILENAME is the name phones fetch (ITLFile.tlv, CTLFile.tlv for a CTL...
# name), with a warning; --filename is kept as given; -o ITLFile.tlv writes no warning.
expect_exit 0 with CM1 build --signer tftp --sast CM1.pem --ccm-tftp CM1.pem --tvs TVS1.pem \
    --sast R1.pem --capf OLD.pem --timestamp 1700000100 -o ITL-y.tlv
grep -qF "FILENAME is ITLFile.tlv, the name phones fetch, not ITL-y.tlv (-o)" <<<"$ERR" ||
    die "build -o ITL-y.tlv: no warning: $ERR"
expect_exit 0 with CM1 build --signer tftp --sast CM1.pem --ccm-tftp CM1.pem \
    --timestamp 1700000100 -o CTL-new.tlv
grep -qF "FILENAME is CTLFile.tlv" <<<"$ERR" || die "build -o CTL-new.tlv: $ERR"
mkdir -p new2
expect_exit 0 with CM1 build --signer tftp --sast CM1.pem --ccm-tftp CM1.pem \
    --timestamp 1700000100 -o new2/ITLFile.tlv
[ -z "$ERR" ] || die "build -o ITLFile.tlv warns: $ERR"
for pair in ITL-y.tlv:ITLFile.tlv CTL-new.tlv:CTLFile.tlv ITL-x.tlv:ITL-x.tlv new2/ITLFile.tlv:ITLFile.tlv; do
    python3 - "${pair%%:*}" "${pair#*:}" <<'PY' || die "FILENAME of ${pair%%:*}"
import sys
b, want = open(sys.argv[1], "rb").read(), sys.argv[2].encode() + b"\0"
field = b"\x0e" + len(want).to_bytes(2, "big") + want  # tag 14 FILENAME
assert field in b[: int.from_bytes(b[8:10], "big")], (sys.argv[1], want)
PY
done
same ITL-y.tlv new/ITLFile.tlv || die "build -o ITL-y.tlv and -o new/ITLFile.tlv differ"
fresh
expect_exit 0 "$BIN" publish ITL-y.tlv --to tftp1
same tftp1/ITLFile.tlv ITL-y.tlv && [ ! -e tftp1/ITL-y.tlv ] || die "ITL-y.tlv not published as ITLFile.tlv"
ok "build -o ITL-y.tlv: FILENAME ITLFile.tlv (CTLFile.tlv for CTL-new.tlv) with a warning; publish serves it where phones fetch"

# ---- a hostile symlink in a target is never followed or replaced ----
fresh
echo "secret" >victim
rm tftp2/ITLFile.tlv
ln -s "$WORK/victim" tftp2/ITLFile.tlv
expect_exit 5 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2
grep -q "tftp2/ITLFile.tlv is not a regular file" <<<"$ERR" || die "symlink not named: $ERR"
[ "$(cat victim)" = "secret" ] && [ -L tftp2/ITLFile.tlv ] || die "the symlink was followed"
same tftp1/ITLFile.tlv old/ITLFile.tlv || die "the first target changed"
ok "publish: a symlink planted in a target: refused, its target untouched"

# ---- --reports and --allow-stranded ----
fresh
cp old/ITLFile.tlv hist/
sha() { sha1sum "$1" | cut -c1-40 | tr a-f A-F | sed 's/../& /g'; }
{
    echo "DeviceName,ITL_Signature"
    echo "SEP000000000001,$(sha old/ITLFile.tlv)"
    echo "SEP000000000002,$(sha bad/ITLFile.tlv)"
} >reports.csv
cp bad/ITLFile.tlv hist/bad.tlv # a phone still holds another cluster's ITL: stranded
expect_exit 5 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 --history hist --reports reports.csv
grep -q "1 phones of the reports would be stranded (--allow-stranded 0)" <<<"$OUT" || die "$OUT"
expect_exit 0 "$BIN" publish new/ITLFile.tlv --to tftp1 --to tftp2 --history hist \
    --reports reports.csv --allow-stranded 1
same tftp1/ITLFile.tlv new/ITLFile.tlv || die "--allow-stranded 1 did not publish"
expect_exit 2 "$BIN" publish new/ITLFile.tlv --to tftp1 --allow-stranded 1
ok "publish --reports: 1 stranded refused, --allow-stranded 1 publishes"

# ---- --json ----
fresh
expect_exit 0 "$BIN" publish --json new/ITLFile.tlv --to tftp1 --to tftp2 --history hist
python3 - "$OUT" "$NEW_SHA" "$OLD_SHA" <<'PY' || die "publish --json: $OUT"
import json, sys
d = json.loads(sys.argv[1])
assert d["command"] == "publish" and d["status"] == "ok" and d["dry_run"] is False
assert d["sha1"] == sys.argv[2]
assert [t["action"] for t in d["targets"]] == ["accept", "accept"]
assert all(t["current_sha1"] == sys.argv[3] and t["outcome"] == "current" for t in d["targets"])
assert d["history"].endswith(sys.argv[2] + ".tlv") and d["hook_exit"] is None
PY
fresh
expect_exit 5 "$BIN" publish --json bad/ITLFile.tlv --to tftp1
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["status"]=="refused"; assert d["targets"][0]["action"]=="reject"; assert d["targets"][0]["reasons"]' "$OUT" ||
    die "publish --json refusal: $OUT"
ok "publish --json: the published and the refused document"

# ---- the hook's failure is reported (exit 8), after the files are in place ----
fresh
expect_exit 8 "$BIN" publish new/ITLFile.tlv --to tftp1 --then "false"
grep -q "the hook \`false\` failed (exit 1)" <<<"$ERR" || die "hook failure: $ERR"
same tftp1/ITLFile.tlv new/ITLFile.tlv || die "published before the hook"
expect_exit 0 "$BIN" publish new/ITLFile.tlv --to tftp2 --then-shell "echo shell >$WORK/shell.log"
[ "$(cat shell.log)" = "shell" ] || die "--then-shell"
ok "publish: a failing hook exits 8 with the files published; --then-shell"

# ---- a configs batch, all or none ----
fresh
mkdir cfg cfgbad
for m in 0011 0022 0033; do echo "<device>$m</device>" >cfg/SEP00000000$m.cnf.xml; done
expect_exit 0 with CM1 sign cfg/SEP000000000011.cnf.xml cfg/SEP000000000022.cnf.xml \
    cfg/SEP000000000033.cnf.xml
rm cfg/*.cnf.xml
cp old/ITLFile.tlv tftp1/ && cp old/ITLFile.tlv tftp2/
expect_exit 0 "$BIN" publish cfg --to tftp1 --to tftp2 "${HOOK[@]}"
for t in tftp1 tftp2; do
    for f in cfg/*.sgn; do same $f $t/$(basename $f) || die "$t lacks $f"; done
done
[ "$(grep -c run hook.log)" -eq 1 ] || die "the hook did not run once for the batch"
echo "<device>x</device>" >cfgbad/SEP000000000044.cnf.xml
expect_exit 0 with OLD sign cfgbad/SEP000000000044.cnf.xml
rm cfgbad/*.xml
cp cfg/*.sgn cfgbad/
expect_exit 5 "$BIN" publish cfgbad --to tftp1 --to tftp2
grep -q "SEP000000000044.cnf.xml.sgn: " <<<"$OUT" || die "the refused config is not named: $OUT"
[ ! -e tftp1/SEP000000000044.cnf.xml.sgn ] || die "a refused batch wrote a file"
for n in 1 4; do
    rm -f tftp1/*.sgn tftp2/*.sgn
    expect_exit 6 env LD_PRELOAD=$WORK/fsfault.so FSFAULT_FAIL_RENAME=$n "$BIN" publish cfg \
        --to tftp1 --to tftp2
    [ -z "$(ls tftp1/*.sgn tftp2/*.sgn 2>/dev/null)" ] || die "rename $n failed: a config stayed"
    clean_dir tftp1 && clean_dir tftp2
done
ok "publish configs: 3 .sgn in both targets, hook once; a foreign-signed one refuses the batch; a failed rename leaves none"

# ---- audit: one record per publish in the log --config names ----
fresh
mkdir -p audit && chmod 0700 audit
cat >publish.yaml <<YAML
audit-log: $WORK/audit/audit.log
state-dir: $WORK/audit
YAML
expect_exit 0 "$BIN" --config publish.yaml publish new/ITLFile.tlv --to tftp1 --to tftp2
expect_exit 5 "$BIN" --config publish.yaml publish bad/ITLFile.tlv --to tftp1
cp old/ITLFile.tlv tftp1/ && cp old/ITLFile.tlv tftp2/
killed_at $((CALLS / 2))
expect_exit 0 "$BIN" --config publish.yaml publish --recover --to tftp1 --to tftp2
[ "$(wc -l <audit/audit.log)" -eq 3 ] || die "audit records: $(cat audit/audit.log)"
grep -q '"rule":"recover".*rolled back' audit/audit.log || die "recovery not audited: $(cat audit/audit.log)"
python3 - audit/audit.log "$(sha256sum new/ITLFile.tlv | cut -c1-64)" <<'PY' || die "audit: $(cat audit/audit.log)"
import json, sys
ok, denied, recovered = [json.loads(l) for l in open(sys.argv[1])]
assert ok["op"] == "publish" and ok["result"] == "ok", ok
assert sys.argv[2] in json.dumps(ok), ok
assert denied["op"] == "publish" and denied["result"] == "denied" and denied["rule"] == "phone-model", denied
PY
ok "publish --config: one audit record per publish (ok with the file's SHA-256, denied with its rule, a recovery)"
