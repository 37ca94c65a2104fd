#!/bin/bash
# Slow and greedy peers against itl-signd (issue 12): a peer without access rules cannot hold
# connection slots (it is denied at accept); one uid with rules cannot take every slot
# (socket.max-connections-per-uid); a frame must arrive whole within socket.timeout of its
# first byte, however slowly it trickles; request buffers grow with the bytes that arrive and
# are bounded per uid and in all (socket.max-pending-bytes), not by the lengths peers announce;
# SIGTERM does not wait for frames still arriving. The admin (root, all rights) is served
# throughout. Waits are deadlock guards only; no timing is measured. Runs as root.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it switches uids with setpriv"
svc_init
svc_make_token
svc_test_user
mkdir -p "$T/run" "$T/out" && chmod 0755 "$T/run" && chmod 0777 "$T/out"
S=$T/run/socket
# Prefixes, not functions: a peer started in the background must be the process $! names.
AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
AS_USER=(setpriv --reuid="$TEST_USER" --regid="$(id -g "$TEST_USER")" --clear-groups)

# The peers, framed as wire.py frames them (imported from it).
cat >"$T/slow.py" <<'PYEOF'
import os, select, socket, sys, time, types
# wire.py's framing, without running its command line (its last line calls main()).
wire = types.ModuleType("wire")
src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire.py")).read()
exec(compile(src.rsplit("\nmain()", 1)[0], "wire.py", "exec"), wire.__dict__)

def header(length):
    return wire.frame(b"", length=length)

def outcome(s, wait):
    """The status of a reply that arrives within `wait` seconds, 'held' if none, 'closed'."""
    s.settimeout(wait)
    try:
        return str(wire.reply(s)[0x41][0])
    except socket.timeout:
        return "held"
    except (EOFError, OSError):
        return "closed"
    finally:
        s.settimeout(20)

def report(path, results):
    counts = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    with open(path + ".tmp", "w") as f:
        f.write(" ".join("%s=%d" % kv for kv in sorted(counts.items())) + "\n")
    os.rename(path + ".tmp", path)

def keep(conns, act):
    """Keep the held connections alive (one action a second) until killed."""
    while conns:
        time.sleep(1)
        for s in list(conns):
            try:
                act(s)
            except OSError:
                conns.remove(s)

def hold(path, n, mode, out):
    """n connections: 'trickle' starts a 4 MiB frame and sends one byte a second;
    'requests' sends a status request a second (a busy but well-formed client)."""
    conns, results, opened = [], [], []
    for _ in range(n):
        s = wire.connect(path)
        try:  # a refusal may be sent, and the connection closed, before we send
            s.sendall(header(4 << 20) if mode == "trickle" else wire.request(wire.OPS["status"]))
        except OSError:
            pass
        opened.append(s)
    # A frame that was started gets no reply unless refused: 10 s for all of them together
    # (a deadlock guard: refusals come at once).
    until = time.time() + 10
    for s in opened:
        if mode == "trickle":
            r = outcome(s, max(0.01, until - time.time()))
        else:
            r = outcome(s, 20)
            r = "held" if r == "0" else r
        results.append(r)
        if r == "held":
            conns.append(s)
    report(out, results)
    if mode == "trickle":
        keep(conns, lambda s: s.send(b"x"))
    else:
        keep(conns, lambda s: (s.sendall(wire.request(wire.OPS["status"])), wire.reply(s)))

def cut(path, guard):
    """A 1000-byte frame, one byte every half second: how does it end?"""
    s = wire.connect(path)
    s.sendall(header(1000))
    end, sent = time.time() + guard, 0
    while time.time() < end and sent < 999:
        if select.select([s], [], [], 0.5)[0]:
            print("closed", outcome(s, 5), "after", sent, "bytes")
            return
        try:
            s.send(b"x")
            sent += 1
        except OSError:
            print("closed", outcome(s, 5), "after", sent, "bytes")
            return
    print("open after", sent, "bytes")

def bulk(path, n, send, out):
    """n frames announcing 4 MiB, `send` bytes of each sent, then one byte a second."""
    conns, results = [], []
    for _ in range(n):
        s = wire.connect(path)
        try:
            s.sendall(header(4 << 20) + b"x" * send)
            conns.append(s)
            results.append("sent")
        except OSError:
            results.append("refused")
    report(out, results)
    keep(conns, lambda s: s.send(b"x"))

if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "hold":
        hold(path, int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "cut":
        cut(path, float(sys.argv[3]))
    elif cmd == "bulk":
        bulk(path, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
PYEOF
chmod 0644 "$T/slow.py" "$T/wire.py"

PEERS=""
# Until the service serves only the asking connection: the peers' threads have ended.
wait_quiet() {
    local _
    for _ in $(seq 1 300); do
        "$CLI" --socket "$S" status 2>/dev/null |
            "$PY" -c 'import json, sys; sys.exit(json.load(sys.stdin)["connections"] != 1)' &&
            return 0
        sleep 0.1
    done
    fail "the service still holds connections of stopped peers after 30 s"
}
start_peer() { "$@" & PEERS="$PEERS $!"; }
stop_peers() {
    local p
    for p in $PEERS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    PEERS=""
}
trap 'stop_peers; svc_cleanup' EXIT
wait_file() { # FILE: the peer's report, 60 s at most (a deadlock guard)
    local _
    for _ in $(seq 1 600); do [ -s "$1" ] && { cat "$1"; return 0; }; sleep 0.1; done
    fail "no report in $1 within 60 s"
}
admin_status() { # the admin is served (exit 0), within a deadlock guard
    local rc=0 out
    out=$(timeout 60 "$CLI" --socket "$S" status 2>&1 >/dev/null) || rc=$?
    [ "$rc" -eq 0 ] || fail "$1: the admin's status failed (exit $rc): $out"
}

ACCESS="access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }
  - { user: $TEST_USER, allow: [status] }"

# ---- run 1: socket.timeout 3 s, 20 slots ----
svc_config "$T/a.yaml" "$ACCESS"
sed -i -e 's/mode: "0660"/mode: "0666"/' \
    -e 's/^  timeout: 5s/  timeout: 3s\n  max-connections: 20/' "$T/a.yaml"
grep -q 'max-connections: 20' "$T/a.yaml" || fail "could not set max-connections"
svc_start "$T/a.yaml"

# A peer with no rule opens every slot and trickles frames: each gets `denied` at once.
start_peer "${AS_NOBODY[@]}" "$PY" "$T/slow.py" hold "$S" 20 trickle "$T/out/nobody"
got=$(wait_file "$T/out/nobody")
# Denied (5) each; busy (9) when it opens them faster than they are denied (its connections
# count against max-connections-per-uid until then). Never held, never without a reply.
[[ $got =~ ^5=[0-9]+( 9=[0-9]+)?$ ]] ||
    fail "a peer without rules: $got (want only 5 and 9: every connection refused at once)"
admin_status "20 connections of a peer without rules"
stop_peers
wait_quiet
grep -q '"uid":65534,.*"op":"connection".*"result":"denied"' "$T/log/audit.log" ||
    fail "the denied connections of uid 65534 are not audited"
ok "a peer without rules holds no slot: 20 connections refused at accept ($got), the admin served"

# A peer with a rule keeps 20 connections busy with requests: 16 of them get a slot.
start_peer "${AS_USER[@]}" "$PY" "$T/slow.py" hold "$S" 20 requests "$T/out/user"
got=$(wait_file "$T/out/user")
[ "$got" = "9=4 held=16" ] ||
    fail "one uid with rules asked for 20 slots: $got (want held=16 9=4: max-connections-per-uid)"
admin_status "16 busy connections of one uid"
stop_peers
wait_quiet
ok "one uid with rules gets socket.max-connections-per-uid (16) of 20 slots; the admin is served"

# A frame trickling one byte every half second is cut at its deadline (3 s after its first
# byte), however often bytes arrive.
out=$("${AS_USER[@]}" "$PY" "$T/slow.py" cut "$S" 60) || fail "the trickling peer failed: $out"
[[ $out == "closed 7 after "* ]] ||
    fail "a frame trickling 2 bytes a second: '$out' (want closed with status 7 before 60 s)"
grep -q '"op":"protocol".*not complete within socket.timeout' "$T/log/audit.log" ||
    fail "the cut frame is not audited as such"
admin_status "after a trickled frame"
ok "a trickled frame is cut at its absolute deadline ($out), audited; the admin is served"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd exited $SVC_RC"

# ---- run 2: socket.timeout 120 s (longer than the 45 s SIGTERM guard: a service that waited
# for a trickling frame to reach its deadline would fail); large frames half sent, then trickled ----
svc_config "$T/b.yaml" "$ACCESS"
sed -i -e 's/mode: "0660"/mode: "0666"/' -e 's/^  timeout: 5s/  timeout: 120s/' "$T/b.yaml"
svc_start "$T/b.yaml"
admin_status "before the large frames"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$SVC_PID/status"; }
before=$(rss)
# 40 frames announce 4 MiB and send 3 MiB each (120 MiB if each were kept): one uid may hold
# a quarter of socket.max-pending-bytes (64 MiB by default), 16 MiB.
start_peer "${AS_USER[@]}" "$PY" "$T/slow.py" bulk "$S" 40 $((3 << 20)) "$T/out/bulk"
got=$(wait_file "$T/out/bulk")
after=$(rss)
grow=$(((after - before) / 1024))
figures "VmRSS $((before / 1024)) MiB before, $((after / 1024)) MiB with 40 half-sent 4 MiB frames ($got)"
[ "$grow" -lt 60 ] ||
    fail "40 half-sent frames grew VmRSS by $grow MiB (want < 60 MiB: 16 MiB per uid and slack)"
[[ $got == *refused=* ]] || fail "no frame was refused for the byte budget: $got"
grep -q 'socket.max-pending-bytes' "$T/log/audit.log" || fail "the refusals are not audited"
admin_status "with half-sent frames of another uid"
ok "memory: half-sent frames grew VmRSS by $grow MiB (< 60), the rest refused busy; the admin is served"

# SIGTERM while those frames still trickle in: the service does not wait for them.
kill -TERM "$SVC_PID"
for _ in $(seq 1 450); do kill -0 "$SVC_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SVC_PID" 2>/dev/null; then
    kill -KILL "$SVC_PID"
    wait "$SVC_PID" 2>/dev/null
    SVC_PID=""
    fail "itl-signd still running 45 s after SIGTERM with frames trickling in"
fi
wait "$SVC_PID"
rc=$?
SVC_PID=""
stop_peers
[ "$rc" -eq 0 ] || fail "itl-signd exited $rc after SIGTERM"
ok "SIGTERM with half-sent frames trickling in: exit 0 within the 45 s guard (the baseline waits for every trickling frame)"
