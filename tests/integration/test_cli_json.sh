#!/bin/bash
# --json on every command (issue 17, "Scripting"): a success and a failure of each, stdout holds
# exactly one JSON document (json.loads of the whole of it), a failure is
# {"error":{"code":N,"class":"...","message":"..."}} with N the exit code, and names in every
# command are spelled one way (the certificate's own order, as the ITL holds it).
. "$(dirname "$0")/lib.sh"
cd "$WORK"
PY=/usr/bin/python3

# check NAME WANT_RC [error|doc]: validate $WORK/NAME.json (stdout of the run)
check() {
    "$PY" - "$WORK/$1.json" "$2" "$3" <<'PY' || die "$1: stdout is not the expected JSON document: $(head -c 600 "$WORK/$1.json")"
import json, sys
path, rc, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path, encoding="utf-8").read()
doc = json.loads(text)            # the whole stdout: exactly one document
if kind == "error":
    assert set(doc) == {"error"}, doc
    e = doc["error"]
    assert set(e) == {"code", "class", "message"}, e
    assert e["code"] == rc and rc != 0, (e, rc)
    assert isinstance(e["class"], str) and e["class"], e
    assert isinstance(e["message"], str) and e["message"], e
else:
    assert not (isinstance(doc, dict) and "error" in doc), doc
PY
}
# jrun NAME WANT_RC KIND CMD...: run with --json, stdout to NAME.json, check exit code and document
jrun() {
    local name=$1 want=$2 kind=$3 rc=0
    shift 3
    "$@" >"$WORK/$name.json" 2>"$WORK/$name.err" || rc=$?
    [ "$rc" -eq "$want" ] || die "$name: expected exit $want, got $rc: $(cat "$WORK/$name.err")"
    check "$name" "$want" "$kind"
    RUNS=$((RUNS + 1))
}
RUNS=0
J=("$BIN" --json)

new_token itl-sign-json
T=("${TOK[@]}")
jrun gen-tftp 0 doc "${J[@]}" "${T[@]}" key generate --label CallManager \
    --subject "CN=cucm-pub,OU=tac,O=itl-sign,C=US" --cert-out tftp.pem
jrun gen-fail 2 error "${J[@]}" "${T[@]}" key generate --label X --subject "CN=x,Q"
printf 'p12-secret' >p12.pass && chmod 600 p12.pass
printf 'wrong' >bad.pass && chmod 600 bad.pass
openssl req -x509 -newkey rsa:2048 -nodes -keyout rec.key -out rec.pem -days 365 \
    -subj "/CN=ITLRECOVERY_cucm-pub/OU=tac/O=itl-sign/C=US" 2>/dev/null
openssl pkcs12 -export -inkey rec.key -in rec.pem -out rec.p12 -passout file:p12.pass
jrun import 0 doc "${J[@]}" "${T[@]}" key import --p12 rec.p12 --p12-pass-file p12.pass \
    --label ITLRecovery
jrun import-fail 3 error "${J[@]}" "${T[@]}" key import --p12 rec.p12 --p12-pass-file bad.pass \
    --label Other
jrun list 0 doc "${J[@]}" "${T[@]}" key list
jrun list-fail 4 error "${J[@]}" --module "$ITL_MODULE" --token "pkcs11:token=no-such-token" \
    --pin-file "$ITL_PIN_FILE" key list
jrun export 0 doc "${J[@]}" "${T[@]}" key export-cert --label CallManager
jrun export-fail 4 error "${J[@]}" "${T[@]}" key export-cert --label NoSuchKey
"$PY" - "$WORK/export.json" tftp.pem <<'PY' || die "export-cert --json does not carry the PEM"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pem"] == open(sys.argv[2]).read(), d
PY
cat >cfg.yaml <<EOF
node: { name: cucm-pub, role: publisher }
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { backup: "off" }
access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }
state-dir: $WORK/state
audit-log: $WORK/audit.log
EOF
mkdir -m 0700 state
jrun attest 0 doc "${J[@]}" "${T[@]}" --config cfg.yaml key attest-backup --key recovery \
    --p12 rec.p12 --p12-pass-file p12.pass
jrun attest-fail 2 error "${J[@]}" "${T[@]}" key attest-backup --key recovery --p12 rec.p12 \
    --p12-pass-file p12.pass
ok "key generate, import, list, export-cert, attest-backup: documents and error documents"

# ---- one spelling of a certificate name: key list says what the ITL and the messages say ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout tvs.key -out tvs.pem -days 30 \
    -subj "/CN=TVS/O=test" 2>/dev/null
jrun build 0 doc "${J[@]}" "${T[@]}" build --sast label:CallManager --sast rec.pem \
    --tvs tvs.pem --timestamp 1700000000 -o ITLFile.tlv
jrun build-fail 4 error "${J[@]}" "${T[@]}" build --sast no-such.pem -o x.tlv
jrun show 0 doc "${J[@]}" show ITLFile.tlv
"$PY" - "$WORK/list.json" "$WORK/show.json" "$WORK/build.json" <<'PY' || die "certificate names are spelled differently across commands"
import json, sys
keys = {k["label"]: k for k in json.load(open(sys.argv[1]))}
show = json.load(open(sys.argv[2]))
build = json.load(open(sys.argv[3]))
subjects = [r["subject"] for r in show["records"]]
for label in ("CallManager", "ITLRecovery"):
    s = keys[label]["subject"]
    assert s in subjects, (s, subjects)          # key list == the ITL's record
    assert s.startswith("CN="), s                # the certificate's own order, CN first
cm = keys["CallManager"]["subject"]
assert cm == "CN=cucm-pub;OU=tac;O=itl-sign;C=US", cm
assert cm in build["message"], build            # and the build's message names it the same way
assert build["outputs"] == [{"path": "ITLFile.tlv", "bytes": build["outputs"][0]["bytes"],
                             "written": True}], build
PY
ok "one spelling: key list, show and build name the certificate CN=cucm-pub;OU=tac;O=itl-sign;C=US"

jrun reset 0 doc "${J[@]}" "${T[@]}" reset ITLFile.tlv -o reset.tlv --timestamp 1700000100
jrun reset-fail 3 error "${J[@]}" "${T[@]}" reset no-such.tlv -o reset2.tlv
jrun verify 0 doc "${J[@]}" verify reset.tlv --trust ITLFile.tlv
jrun verify-fail 3 error "${J[@]}" verify no-such.tlv
jrun show-fail 3 error "${J[@]}" show no-such.tlv

printf '<device><n>1</n></device>\n' >SEP000000000001.cnf.xml
jrun sign 0 doc "${J[@]}" "${T[@]}" sign SEP000000000001.cnf.xml
jrun sign-fail 3 doc "${J[@]}" "${T[@]}" sign no-such.cnf.xml
jrun sign-usage 2 error "${J[@]}" "${T[@]}" sign
"$PY" - "$WORK/sign.json" "$WORK/sign-fail.json" <<'PY' || die "sign --json: per-file results"
import json, sys
ok, bad = (json.load(open(p)) for p in sys.argv[1:3])
assert ok["signed"] == 1 and ok["failed"] == 0 and ok["skipped"] == 0, ok
f = ok["files"][0]
assert f == {"file": "SEP000000000001.cnf.xml", "output": "SEP000000000001.cnf.xml.sgn",
             "status": "signed", "message": f["message"], "warnings": []}, f
assert "CN=cucm-pub;OU=tac" in f["message"], f
b = bad["files"][0]
assert bad["failed"] == 1 and b["status"] == "failed" and b["output"] is None, bad
assert "no-such.cnf.xml" in b["message"], b
PY
jrun strip 0 doc "${J[@]}" strip SEP000000000001.cnf.xml.sgn -o stripped.xml
cmp stripped.xml SEP000000000001.cnf.xml || die "strip --json -o wrote other bytes"
jrun strip-fail 2 error "${J[@]}" strip SEP000000000001.cnf.xml.sgn

openssl req -x509 -newkey rsa:2048 -nodes -keyout phone.key -out phone.pem -days 30 \
    -subj "/CN=SEP001122334455" 2>/dev/null
printf '<device><fullConfig>true</fullConfig></device>\n' >SEP001122334455.cnf.xml
mkdir enc
jrun encrypt 0 doc "${J[@]}" "${T[@]}" encrypt SEP001122334455.cnf.xml --phone-cert phone.pem -o enc
jrun encrypt-fail 2 error "${J[@]}" "${T[@]}" encrypt SEP001122334455.cnf.xml
jrun decrypt 0 doc "${J[@]}" decrypt enc/SEP001122334455.cnf.xml.enc.sgn --phone-key phone.key \
    -o dec.xml
cmp dec.xml SEP001122334455.cnf.xml || die "decrypt --json -o wrote other bytes"
jrun decrypt-fail 2 error "${J[@]}" decrypt enc/SEP001122334455.cnf.xml.enc.sgn \
    --phone-key phone.key
jrun status 0 doc "${J[@]}" "${T[@]}" status
jrun status-fail 7 error "${J[@]}" --socket "$WORK/no-such-socket" status
ok "reset, build, sign, encrypt, decrypt, show, verify, strip, status: documents and error documents"

# ---- errors before a command runs: still one document ----
jrun unknown-command 2 error "${J[@]}" no-such-command
jrun unknown-option 2 error "$BIN" show ITLFile.tlv --json --no-such-option
jrun pin-refused 2 error "$BIN" --json --pin=1234 status
grep -q 1234 "$WORK/pin-refused.json" && die "the refused --pin value is in the JSON document"
"$PY" - "$WORK/unknown-option.json" <<'PY' || die "the error document does not name the option"
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert e["class"] == "usage" and "--no-such-option" in e["message"], e
PY
ok "unknown command, unknown option, --pin: error documents (class usage), the PIN never in them"
echo "figures: $RUNS runs with --json, every stdout one JSON document"
echo "all passed"
