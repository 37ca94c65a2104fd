#!/bin/bash
# itl-sign against a service that does not answer, and against one that refuses a request from
# its size: the client gives up at its deadline (--timeout, exit 7, a message naming the socket)
# and prints the service's own refusal, not "Broken pipe". Builds nothing.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_init

# ---- a "service" that accepts and never answers (it reads everything, says nothing) ----
cat >"$T/mute.py" <<'PYEOF'
import os, socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
open(sys.argv[2], "w").close()  # ready
def drain(c):
    while c.recv(65536):
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
PYEOF
"$PY" "$T/mute.py" "$T/mute.sock" "$T/mute.ready" &
SVC_EXTRA_PIDS=$! # stopped by svc_cleanup
for _ in $(seq 1 600); do [ -e "$T/mute.ready" ] && break; sleep 0.1; done
[ -e "$T/mute.ready" ] || fail "the mute service did not start"

# The bound is a deadlock guard only: the baseline client waits forever, and timeout(1) ends it.
rc=0
out=$(timeout 60 "$CLI" --socket "$T/mute.sock" --timeout 2 status 2>&1) || rc=$?
[ "$rc" -eq 7 ] || fail "a service that never answers: exit $rc, want 7 (124: still waiting): $out"
[[ $out == *"$T/mute.sock"*"within 2.000 s"*"--timeout"* ]] ||
    fail "the timeout message does not name the socket, the limit and --timeout: $out"
ok "a service that never answers: exit 7 after --timeout 2, naming the socket and the option"

rc=0
out=$("$CLI" --socket "$T/mute.sock" --timeout 0 status 2>&1) || rc=$?
[ "$rc" -eq 2 ] && [[ $out == *"--timeout"* ]] || fail "--timeout 0: exit $rc: $out"
ok "--timeout 0 is a usage error naming the option"

# ---- a real service with a small request limit: its "too large" reply is printed ----
svc_make_token
svc_config "$T/small.yaml" "access:
  - { user: root, allow: [sign, status] }"
sed -i 's|^  timeout: 5s|  timeout: 5s\n  max-request-bytes: 65536|' "$T/small.yaml"
grep -q 'max-request-bytes: 65536' "$T/small.yaml" || fail "could not set max-request-bytes"
svc_start "$T/small.yaml"
mkdir -p "$T/in" "$T/out"
# 3 MiB: far more than the socket buffer, so the client is still sending when the service
# refuses the header and closes (EPIPE on the baseline).
head -c $((3 << 20)) /dev/zero | tr '\0' 'x' >"$T/in/big.cnf.xml"
rc=0
out=$(timeout 60 "$CLI" --socket "$T/run/socket" sign "$T/in/big.cnf.xml" --out-dir "$T/out" 2>&1) ||
    rc=$?
[[ $out != *"Broken pipe"* ]] || fail "an oversize request printed 'Broken pipe': $out"
[[ $out == *"exceeds the limit of 65536 bytes"* ]] ||
    fail "an oversize request: the service's reply is not printed (exit $rc): $out"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "an oversize request: exit $rc"
ok "an oversize request: the service's 'exceeds the limit' reply is printed (exit $rc), not EPIPE"

# The client that knows the limit (the same --config) says so before sending a byte.
rc=0
out=$(timeout 60 "$CLI" --config "$T/small.yaml" sign "$T/in/big.cnf.xml" --out-dir "$T/out" 2>&1) ||
    rc=$?
[[ $out == *"more than the 65536"*"socket.max-request-bytes"* ]] ||
    fail "with --config, the client did not name the limit (exit $rc): $out"
ok "with the service's --config, the client refuses the request itself, naming socket.max-request-bytes"

# The service is fine afterwards.
wire ping "$T/run/socket" || fail "the service stopped answering"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd exited $SVC_RC"
