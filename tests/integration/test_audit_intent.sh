#!/bin/bash
# A single sign request's audit record pair (issue 18; docs/config.md "Audit log"): the intent
# record ("result":"signing") is written and flushed while the token signs, the outcome record
# follows. Through the fault module C_Sign takes 3 s: before the token answers, the intent
# record is in the log and an fdatasync of the log has returned (strace on the service); a
# SIGKILL of the service then leaves that record as the last line (complete JSON, naming the
# file and its SHA-256) and no signature is released. Without the delay a request leaves the
# pair, with the same in_sha256, and the outcome's out_sha256 is the released file's. No timing
# is measured (the 3 s only give the checks room). Runs as root (strace attaches).
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "strace attaches to itl-signd"
command -v strace >/dev/null || fail "strace is missing (tools/install-deps.sh installs it)"
svc_init
svc_make_token
svc_make_keys
"$CLI" "${TOK[@]}" key export-cert --label CallManager >"$T/tftp.pem" 2>"$T/export.err" ||
    fail "export-cert: $(cat "$T/export.err")"
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || fail "$FAULT not built"
export FAULTP11_MODULE=$ITL_MODULE FAULTP11_CONTROL=$T/control FAULTP11_STATS=$T/stats
ITL_MODULE=$FAULT
mkdir -p "$T/run" "$T/state" "$T/log" "$T/out"
svc_config "$T/cfg.yaml" "access:
  - { user: root, allow: [sign, status] }"
S=$T/run/socket
LOG=$T/log/audit.log
printf '<device><name>slow</name></device>\n' >"$T/SEP000000000001.cnf.xml"
printf '<device><name>fast</name></device>\n' >"$T/SEP000000000002.cnf.xml"

records() { # FILE: the audit records naming FILE, as "result in_sha256 out_sha256" lines
    "$PY" - "$LOG" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)  # every line must be complete JSON
    if r.get("file") == sys.argv[2]:
        print(r["result"], r["in_sha256"], r["out_sha256"] or "-")
PY
}

# ---- the token is slow: the intent record is durable before it answers ----
printf 'C_Sign delay 3s\n' >"$T/control"
svc_start "$T/cfg.yaml"
strace -f -p "$SVC_PID" -e trace=fdatasync -o "$T/trace" 2>"$T/strace.err" &
STRACE_PID=$!
for _ in $(seq 1 300); do
    grep -q attached "$T/strace.err" 2>/dev/null && break
    sleep 0.1
done
grep -q attached "$T/strace.err" || fail "strace did not attach: $(cat "$T/strace.err")"
"$CLI" --socket "$S" sign "$T/SEP000000000001.cnf.xml" --out-dir "$T/out" >"$T/slow.out" 2>&1 &
CLIENT=$!
for _ in $(seq 1 100); do
    grep -q '"result":"signing"' "$LOG" 2>/dev/null && grep -q 'fdatasync(.*= 0' "$T/trace" && break
    sleep 0.02
done
grep -q '"result":"signing"' "$LOG" || fail "no intent record while the token signs: $(cat "$LOG")"
grep -q 'fdatasync(.*= 0' "$T/trace" || fail "the intent record was not flushed while the token signs: $(cat "$T/trace")"
kill -0 "$CLIENT" 2>/dev/null || fail "the client finished before the 3 s signature: $(cat "$T/slow.out")"
[ ! -e "$T/out/SEP000000000001.cnf.xml.sgn" ] || fail "a signature was written before the token answered"
kill -KILL "$SVC_PID"
wait "$SVC_PID" 2>/dev/null
SVC_PID=""
kill "$STRACE_PID" 2>/dev/null
wait "$STRACE_PID" 2>/dev/null
rc=0
wait "$CLIENT" || rc=$?
[ "$rc" -ne 0 ] || fail "the client succeeded although the service was killed before the token answered"
[ ! -e "$T/out/SEP000000000001.cnf.xml.sgn" ] || fail "a signature was released by a killed service"
want=$(sha256sum "$T/SEP000000000001.cnf.xml" | cut -d' ' -f1)
[ "$(records SEP000000000001.cnf.xml)" = "signing $want -" ] ||
    fail "after the kill: want one intent record with the input's SHA-256, got: $(records SEP000000000001.cnf.xml)"
[ "$(tail -n 1 "$LOG" | grep -c '"result":"signing"')" = 1 ] || fail "the intent record is not the last line: $(tail -n 2 "$LOG")"
ok "C_Sign 3 s: the intent record is written and fdatasync'd before the token answers; SIGKILL then: no signature released, the record (file, in_sha256) is the log's last line"

# ---- a normal request: the pair, then the released file matches the outcome ----
: >"$T/control.new" && mv "$T/control.new" "$T/control"
svc_start "$T/cfg.yaml"
"$CLI" --socket "$S" sign "$T/SEP000000000002.cnf.xml" --out-dir "$T/out" >"$T/fast.out" 2>&1 ||
    fail "sign: $(cat "$T/fast.out")"
out=$T/out/SEP000000000002.cnf.xml.sgn
"$CLI" verify "$out" --cert "$T/tftp.pem" >/dev/null ||
    fail "the signature does not verify"
in_sha=$(sha256sum "$T/SEP000000000002.cnf.xml" | cut -d' ' -f1)
out_sha=$(sha256sum "$out" | cut -d' ' -f1)
svc_stop # the outcome record is durable at the latest when the service stops
got=$(records SEP000000000002.cnf.xml)
[ "$got" = "signing $in_sha -
ok $in_sha $out_sha" ] || fail "want the pair signing/ok with the input's and output's SHA-256, got: $got"
ok "one request: intent then outcome record, the same in_sha256, out_sha256 of the released file; the signature verifies"
echo "all passed"
