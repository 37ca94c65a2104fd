#!/bin/bash
# Pipelined requests on one connection (docs/protocol.md, revision 1.1): twenty sign requests
# sent in one write are answered in order, each ok, and their audit records share flushes
# (fdatasync counted with strace on the service: fewer than one per request); a group that ends
# in a malformed frame gets its held replies first, then the protocol error. No timing is
# measured. Runs as root (strace attaches to the service).
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "strace attaches to itl-signd"
command -v strace >/dev/null || fail "strace is missing (tools/install-deps.sh installs it)"
svc_init
svc_make_token
svc_make_keys
mkdir -p "$T/run" "$T/state" "$T/log"
svc_config "$T/cfg.yaml" "access:
  - { user: root, allow: [sign, status] }"
svc_start "$T/cfg.yaml"
S=$T/run/socket

cat >"$T/pipe.py" <<'PYEOF'
import os, socket, sys, types
wire = types.ModuleType("wire")
src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire.py")).read()
exec(compile(src.rsplit("\nmain()", 1)[0], "wire.py", "exec"), wire.__dict__)

path, mode = sys.argv[1], sys.argv[2]
names = ["SEP0000000000%02d.cnf.xml" % i for i in range(20 if mode == "group" else 5)]
frames = b"".join(wire.request(wire.OPS["sign"], n, b"<device>%s</device>\n" % n.encode())
                  for n in names)
if mode == "bad-end":
    frames += wire.MALFORMED["unknown-field"]()
s = wire.connect(path)
s.sendall(frames)  # one write: every request is waiting before the first is answered
for n in names:
    r = wire.reply(s)
    if r[0x41][0] != 0:
        raise SystemExit("%s: status %d: %s" % (n, r[0x41][0], wire.text(r, 0x42)))
    if wire.text(r, 0x47) != n + ".sgn":
        raise SystemExit("reply for %s names %s: out of order" % (n, wire.text(r, 0x47)))
if mode == "bad-end":
    r = wire.reply(s)
    if r[0x41][0] != 7:
        raise SystemExit("the malformed frame got status %d, want 7" % r[0x41][0])
    if s.recv(1) != b"":
        raise SystemExit("the connection stayed open after the protocol error")
print(len(names))
PYEOF

# strace attached to every thread of the service; its "attached" lines say it is ready.
strace -f -p "$SVC_PID" -e trace=fdatasync -o "$T/trace" 2>"$T/strace.err" &
STRACE_PID=$!
for _ in $(seq 1 300); do
    grep -q attached "$T/strace.err" 2>/dev/null && break
    sleep 0.1
done
grep -q attached "$T/strace.err" || fail "strace did not attach: $(cat "$T/strace.err")"
n=$("$PY" "$T/pipe.py" "$S" group) || fail "pipelined group: $n"
kill -INT "$STRACE_PID"
wait "$STRACE_PID" 2>/dev/null || true
flushes=$(grep -c 'fdatasync(' "$T/trace" || true)
[ "$(audit_count '"op":"sign".*"result":"ok"')" = 20 ] ||
    fail "audit log: $(audit_count '"op":"sign"') sign records, want 20"
if [ "$flushes" -lt 1 ] || [ "$flushes" -ge 20 ]; then
    fail "20 pipelined requests made $flushes audit flushes (want at least 1, fewer than 20)"
fi
ok "20 pipelined sign requests on one connection: answered in order, 20 audit records, $flushes fdatasync"

"$PY" "$T/pipe.py" "$S" bad-end >/dev/null || fail "pipelined group ending in a malformed frame"
[ "$(audit_count '"op":"protocol"')" = 1 ] || fail "the malformed frame is not audited once"
[ "$(audit_count '"op":"sign".*"result":"ok"')" = 25 ] || fail "the 5 held requests are not audited"
ok "a group ending in a malformed frame: the 5 held replies first, then status 7, then closed"

svc_stop
[ "$SVC_RC" = 0 ] || fail "itl-signd exited $SVC_RC"
