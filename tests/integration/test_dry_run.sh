#!/bin/bash
# --dry-run (issue 17): reset and build in direct mode, and sign through itl-signd, take the
# policy decision and stop there: no C_Sign (the fault module counts the calls), no file
# written, state.json byte for byte as before (no regeneration hold started, nothing recorded),
# an audit line with the result "dry-run"; the reply names what would be written.
. "$(dirname "$0")/lib_service.sh"
svc_init
svc_make_token
svc_make_keys

FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || fail "$FAULT not built"
export FAULTP11_MODULE=$ITL_MODULE FAULTP11_STATS=$T/fault.stats
CFG=$T/itl-signd.yaml
svc_config "$CFG" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }"
mkdir -p "$T/run" "$T/state" "$T/log" "$T/out" && chmod 0750 "$T/state"
FT=("$CLI" --module "$FAULT" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE" --config "$CFG")
BUILD_ARGS=(build --sast label:CallManager --sast label:ITLRecovery --ccm-tftp label:CallManager)

# run EXPECTED NAME CMD...: stdout/stderr in $T/NAME.out / .err
run() {
    local want=$1 name=$2 rc=0
    shift 2
    "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want: $(cat "$T/$name.out" "$T/$name.err")"
}
no_sign() { # no_sign WHAT: the fault module saw a login but no C_Sign
    grep -q '^calls C_Sign' "$T/fault.stats" && fail "$1 signed: $(grep C_Sign "$T/fault.stats")"
    grep -q '^calls C_Login' "$T/fault.stats" || fail "$1 did not reach the token: $(cat "$T/fault.stats")"
    return 0
}
state_sum() { if [ -f "$T/state/state.json" ]; then sha256sum <"$T/state/state.json"; else echo none; fi; }
audit_last() { tail -n 1 "$T/log/audit.log"; }

# ---- an ITL to reset from (a real build, not counted) ----
run 0 build0 "$CLI" "${TOK[@]}" "${BUILD_ARGS[@]}" -o "$T/ITLFile.tlv"

# ---- build --dry-run, direct ----
rm -f "$T/fault.stats"
before=$(state_sum)
run 0 build-dry "${FT[@]}" "${BUILD_ARGS[@]}" --dry-run -o "$T/out/ITLFile.tlv"
grep -qx "would write: $T/out/ITLFile.tlv" "$T/build-dry.out" || fail "build --dry-run: $(cat "$T/build-dry.out")"
[ ! -e "$T/out/ITLFile.tlv" ] || fail "build --dry-run wrote $T/out/ITLFile.tlv"
no_sign "build --dry-run"
[ "$(state_sum)" = "$before" ] || fail "build --dry-run changed state.json"
audit_last | grep -q '"op":"build".*"result":"dry-run"\|"result":"dry-run".*"op":"build"' ||
    fail "build --dry-run audit line: $(audit_last)"
ok "build --dry-run: would write named, nothing written, no C_Sign, state unchanged, audited dry-run"

# ---- reset --dry-run, direct: no hold started, nothing recorded ----
rm -f "$T/fault.stats"
before=$(state_sum)
run 0 reset-dry "${FT[@]}" reset --dry-run "$T/ITLFile.tlv" -o "$T/out/reset.tlv"
grep -qx "would write: $T/out/reset.tlv" "$T/reset-dry.out" || fail "reset --dry-run: $(cat "$T/reset-dry.out")"
[ ! -e "$T/out/reset.tlv" ] || fail "reset --dry-run wrote $T/out/reset.tlv"
no_sign "reset --dry-run"
[ "$(state_sum)" = "$before" ] || fail "reset --dry-run changed state.json"
audit_last | grep -q '"result":"dry-run"' || fail "reset --dry-run audit line: $(audit_last)"
audit_last | grep -q '"op":"reset"' || fail "reset --dry-run audit line names no reset: $(audit_last)"
# the same reset for real signs once and writes (so the checks above could fail)
rm -f "$T/fault.stats"
run 0 reset-real "${FT[@]}" reset "$T/ITLFile.tlv" -o "$T/out/reset.tlv"
[ -s "$T/out/reset.tlv" ] || fail "the real reset wrote nothing"
grep -q '^calls C_Sign 1$' "$T/fault.stats" || fail "the fault module does not count C_Sign: $(cat "$T/fault.stats")"
ok "reset --dry-run: nothing written, no C_Sign, state.json byte-identical, audited (a real reset: 1 C_Sign)"

# ---- sign --dry-run through the service ----
printf '<device><n>1</n></device>\n' >"$T/SEP000000000001.cnf.xml"
sed -i "s|  module: .*|  module: $FAULT|" "$CFG"
rm -f "$T/fault.stats"
svc_start "$CFG"
S=$T/run/socket
before=$(state_sum)
lines=$(wc -l <"$T/log/audit.log")
run 0 svc-dry "$CLI" --socket "$S" sign --dry-run "$T/SEP000000000001.cnf.xml"
grep -qx "would write: $T/SEP000000000001.cnf.xml.sgn" "$T/svc-dry.out" ||
    fail "sign --dry-run through the service: $(cat "$T/svc-dry.out" "$T/svc-dry.err")"
[ ! -e "$T/SEP000000000001.cnf.xml.sgn" ] || fail "sign --dry-run through the service wrote the .sgn"
[ "$(state_sum)" = "$before" ] || fail "sign --dry-run through the service changed state.json"
[ "$(wc -l <"$T/log/audit.log")" -gt "$lines" ] || fail "the service audited nothing for the dry run"
audit_last | grep -q '"result":"dry-run"' || fail "service dry-run audit line: $(audit_last)"
run 0 svc-dry-json "$CLI" --json --socket "$S" sign --dry-run "$T/SEP000000000001.cnf.xml"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); f=d["files"][0]; assert d["dry_run"] and f["status"]=="would-sign" and "would be written" in f["message"], d' \
    "$T/svc-dry-json.out" || fail "service --dry-run --json: $(cat "$T/svc-dry-json.out")"
no_sign "sign --dry-run through the service"
run 0 svc-real "$CLI" --socket "$S" sign "$T/SEP000000000001.cnf.xml"
[ -s "$T/SEP000000000001.cnf.xml.sgn" ] || fail "the real sign through the service wrote nothing"
svc_stop
grep -q '^calls C_Sign 1$' "$T/fault.stats" || fail "the service's C_Sign is not counted: $(cat "$T/fault.stats")"
ok "sign --dry-run through itl-signd: the reply names the .sgn, nothing written, no C_Sign, state unchanged"
echo "all passed"
