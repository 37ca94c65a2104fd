#!/bin/bash
# itl-signd under systemd's protocols without systemd as PID 1 (issue 17): Type=notify, as the
# unit runs it, sends READY=1 only once the socket listens and the token is logged in, and never
# after a rejected PIN; STATUS= says what it does; on the journal stream (JOURNAL_STREAM) every
# log line carries its syslog priority, elsewhere none.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_init
svc_make_token
svc_make_keys
svc_config "$T/good.yaml"

# notify.py CONFIG LOG JOURNAL: runs itl-signd --foreground with NOTIFY_SOCKET on a datagram
# socket it reads. JOURNAL=yes: stderr is LOG and JOURNAL_STREAM names it, as systemd sets it;
# JOURNAL=other: JOURNAL_STREAM names some other file. At READY=1 it connects to the service's
# socket and sends a status request (wire.py ping) before anything else; then SIGTERM. Prints
# one line per notification ("msg: ..."), then "ready-socket: ok|refused", "exit: N".
cat >"$T/notify.py" <<'PY'
import os, signal, socket, subprocess, sys
cfg, log, journal = sys.argv[1:4]
sock_path = [l.split(": ", 1)[1].strip() for l in open(cfg) if l.startswith("  path: ")][0]
here = os.path.dirname(os.path.abspath(__file__))
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if os.path.exists(os.path.join(here, "notify.sock")):
    os.unlink(os.path.join(here, "notify.sock"))
n.bind(os.path.join(here, "notify.sock"))
n.settimeout(60)  # a guard against a hang, not an assertion
env = dict(os.environ, NOTIFY_SOCKET=os.path.join(here, "notify.sock"))
err = open(log, "wb")
if journal == "yes":
    st = os.fstat(err.fileno())
    env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
elif journal == "other":
    st = os.stat(cfg)
    env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
else:
    env.pop("JOURNAL_STREAM", None)
p = subprocess.Popen([os.environ["SIGND"], "--config", cfg, "--foreground"], env=env,
                     stdout=err, stderr=err)
ready = False
while True:
    try:
        data = n.recv(4096).decode()
    except socket.timeout:
        print("timeout"); break
    for line in data.split("\n"):
        print("msg: " + line, flush=True)
    if "READY=1" in data.split("\n") and not ready:
        ready = True
        rc = subprocess.call([sys.executable, os.path.join(here, "wire.py"), "ping", sock_path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print("ready-socket: " + ("ok" if rc == 0 else "refused"), flush=True)
        p.send_signal(signal.SIGTERM)
    if "STOPPING=1" in data.split("\n") or any(l.startswith("STATUS=failed") for l in data.split("\n")):
        break
print("exit: %d" % p.wait(timeout=120), flush=True)
PY
export SIGND

# ---- a good PIN, on the journal stream
"$PY" "$T/notify.py" "$T/good.yaml" "$T/good.log" yes >"$T/good.out" 2>&1 || fail "notify.py: $(cat "$T/good.out")"
grep -q '^ready-socket: ok$' "$T/good.out" || fail "at READY=1 the socket did not answer: $(cat "$T/good.out")"
grep -q '^exit: 0$' "$T/good.out" || fail "itl-signd did not stop with 0: $(cat "$T/good.out") $(cat "$T/good.log")"
# Order: logging in, then READY=1 with the serving status, then STOPPING=1.
order=$(grep -E '^msg: (STATUS=logging in|READY=1|STATUS=serving on|STOPPING=1)' "$T/good.out" | cut -c6-15 | tr '\n' ' ')
[ "$order" = "STATUS=log STATUS=ser READY=1 STOPPING=1 " ] || fail "notifications out of order: $order ($(cat "$T/good.out"))"
grep -q "^msg: STATUS=serving on $T/run/socket: token 'itl-svc'" "$T/good.out" || fail "STATUS= does not name the socket and token: $(cat "$T/good.out")"
# READY=1 came after the login: the "serving" line (written once logged in) precedes it in the log.
grep -q '^<5>itl-signd .* serving on .*token .itl-svc.' "$T/good.log" || fail "no '<5>... serving on' line: $(cat "$T/good.log")"
bad=$(grep -v '^<[0-7]>' "$T/good.log" || true)
[ -z "$bad" ] || fail "log lines without a priority on the journal stream: $bad"
ok "READY=1 after the login and with the socket answering; STATUS= logging in, serving, then STOPPING=1; every journal line has its priority"

# ---- a wrong PIN: no READY=1, exit 3, an error-priority line
printf 'not-the-pin-%s' "$RANDOM" >"$T/wrong.pin" && chmod 0600 "$T/wrong.pin"
sed "s|pin-file: .*|pin-file: $T/wrong.pin|" "$T/good.yaml" >"$T/wrong.yaml"
"$PY" "$T/notify.py" "$T/wrong.yaml" "$T/wrong.log" yes >"$T/wrong.out" 2>&1 || fail "notify.py: $(cat "$T/wrong.out")"
grep -q '^msg: READY=1$' "$T/wrong.out" && fail "READY=1 after a rejected PIN: $(cat "$T/wrong.out")"
grep -q '^exit: 3$' "$T/wrong.out" || fail "wrong PIN: not exit 3: $(cat "$T/wrong.out")"
grep -q '^msg: STATUS=failed to start: login to ' "$T/wrong.out" || fail "no failure STATUS=: $(cat "$T/wrong.out")"
grep -q '^<3>login to ' "$T/wrong.log" || fail "the rejected login is not logged at priority 3 (err): $(cat "$T/wrong.log")"
grep -q "$(cat "$T/wrong.pin")" "$T/wrong.out" "$T/wrong.log" && fail "the PIN is in a notification or the log"
ok "wrong PIN: no READY=1, STATUS= says why, exit 3, logged as <3>"

# ---- outside the journal: plain lines, as before (JOURNAL_STREAM of another file, or none)
for j in other none; do
    "$PY" "$T/notify.py" "$T/good.yaml" "$T/$j.log" "$j" >"$T/$j.out" 2>&1 || fail "notify.py ($j): $(cat "$T/$j.out")"
    grep -q '^exit: 0$' "$T/$j.out" || fail "($j) itl-signd did not stop with 0: $(cat "$T/$j.out")"
    grep -q '^itl-signd: itl-signd .* serving on ' "$T/$j.log" || fail "($j) no plain 'serving on' line: $(cat "$T/$j.log")"
    grep -q '^<[0-7]>' "$T/$j.log" && fail "($j) priority prefixes off the journal stream: $(cat "$T/$j.log")"
done
ok "stderr that is not the journal stream gets plain lines"
