# shellcheck shell=bash
# Helpers of the hardening tests (issue 9: test_faults, test_crash, test_load, test_secrets).
# Source lib.sh first, then this file; it brings in lib_service.sh (svc_* helpers, $T, wire.py).
#
#   hard_init                 svc_init + both cleanups (lib.sh's $WORK and the service's $T);
#                             $T/hard.py (the load client below)
#   hard_keys                 a SoftHSM2 token with the TFTP (CallManager) and ITL Recovery keys
#                             made by `itl-sign key generate`; their certificates as $T/tftp.pem,
#                             $T/recovery.pem, public keys for hard.py as $T/tftp.pub,
#                             $T/recovery.pub; $T/ITLFile.tlv (both SAST, CallManager as
#                             CCM+TFTP) is the ITL a phone holds: outputs are checked with
#                             `itl-sign verify --trust $T/ITLFile.tlv`
#   hard_start CONFIG         svc_start, polling readiness faster (for many restarts)
#   hard_sleep_ms MS          sleep without starting a process (trial loops on a busy machine)
#   hard_verify_saved DIR     `itl-sign verify --trust $T/ITLFile.tlv` of the outputs hard.py kept
#   hard_rss PID / hard_fds PID     VmRSS in kB / number of open file descriptors
#   hard_settle_fds MAX       the service's fd count, once connections are reaped
#   hard_quiet_fds            the service's fd count once it holds still (a baseline)
#   hard_json_lines FILE      every line of FILE parses as a JSON object (prints the count)
#   hard_alive                the service ($SVC_PID on $SOCK) still runs and answers status
#   STRESS                    1: the long variants
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib_service.sh"

STRESS=${STRESS:-0}

hard_init() {
    svc_init
    # A FIFO nobody writes to: `read -t` on it is a sleep that forks nothing.
    mkfifo "$T/.never" && exec {HARD_SLEEP_FD}<>"$T/.never"
    # lib.sh and lib_service.sh each set an EXIT trap; run both cleanups.
    cleanup_hooks+=("svc_cleanup")
    trap cleanup EXIT
    hard_write_py "$T/hard.py"
}

hard_keys() {
    svc_make_token
    "$CLI" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=itl-sign-test" \
        --cert-out "$T/tftp.pem" >"$T/keygen.log" 2>&1 || fail "key generate CallManager: $(cat "$T/keygen.log")"
    "$CLI" "${TOK[@]}" key generate --label ITLRecovery \
        --subject "CN=ITLRECOVERY_cucm-pub,O=itl-sign-test" --cert-out "$T/recovery.pem" \
        >>"$T/keygen.log" 2>&1 || fail "key generate ITLRecovery: $(cat "$T/keygen.log")"
    hard_pubkey "$T/tftp.pem" "$T/tftp.pub"
    hard_pubkey "$T/recovery.pem" "$T/recovery.pub"
    "$CLI" "${TOK[@]}" build --sast label:CallManager --sast label:ITLRecovery \
        --ccm-tftp label:CallManager -o "$T/ITLFile.tlv" >>"$T/keygen.log" 2>&1 ||
        fail "build ITLFile.tlv: $(cat "$T/keygen.log")"
    hard_selfcheck
}

# hard_selfcheck: hard.py's verifier accepts a good signature and rejects a wrong key and a
# flipped byte (a verifier that accepts everything would make every load test pass).
hard_selfcheck() {
    "$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[200] ^= 1
open(sys.argv[2], "wb").write(b)' "$T/ITLFile.tlv" "$T/flipped.tlv" || fail "flipped.tlv"
    "$PY" "$T/hard.py" verify "$T/tftp.pub" "$T/ITLFile.tlv" || fail "hard.py rejects a good signature"
    ! "$PY" "$T/hard.py" verify "$T/recovery.pub" "$T/ITLFile.tlv" 2>/dev/null ||
        fail "hard.py accepts a signature with the wrong key"
    ! "$PY" "$T/hard.py" verify "$T/tftp.pub" "$T/flipped.tlv" 2>/dev/null ||
        fail "hard.py accepts a modified file"
}

# hard_verify_saved DIR: every output kept by --save-every passes `itl-sign verify --trust` of
# $T/ITLFile.tlv (the phone's view); prints how many.
hard_verify_saved() {
    local f n=0
    for f in "$1"/saved/*; do
        [ -e "$f" ] || continue
        "$CLI" verify "$f" --trust "$T/ITLFile.tlv" >/dev/null 2>"$T/verify.err" ||
            fail "itl-sign verify --trust ITLFile.tlv rejects $f: $(cat "$T/verify.err")"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || fail "no saved output in $1 to verify"
    echo "$n"
}

# hard_pubkey CERT.pem OUT: the certificate's RSA key as "MODULUS-HEX EXPONENT" for hard.py.
hard_pubkey() {
    local n e
    n=$(openssl x509 -in "$1" -noout -modulus | sed 's/^Modulus=//') || fail "modulus of $1"
    e=$(openssl x509 -in "$1" -noout -text | sed -n 's/.*Exponent: \([0-9]*\).*/\1/p' | head -n 1)
    if [ -z "$n" ] || [ -z "$e" ]; then fail "no RSA public key in $1"; fi
    echo "$n $e" >"$2"
}

# hard_start CONFIG: svc_start for tests that restart the service hundreds of times: readiness
# is polled with the C client every 10 ms instead of a Python ping every 100 ms.
hard_start() {
    local cfg=$1 sock
    sock=$(sed -n 's/^  path: //p' "$cfg" | head -n 1)
    "$SIGND" --config "$cfg" --foreground >>"$T/signd.log" 2>&1 &
    SVC_PID=$!
    for _ in $(seq 1 6000); do
        [ -S "$sock" ] && "$CLI" --socket "$sock" status >/dev/null 2>&1 && return 0
        kill -0 "$SVC_PID" 2>/dev/null || { wait "$SVC_PID"; fail "itl-signd exited during startup (rc $?)"; }
        hard_sleep_ms 10
    done
    fail "itl-signd did not answer on $sock within 60 s"
}

hard_sleep_ms() {
    local s
    printf -v s '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
    read -r -t "$s" -u "$HARD_SLEEP_FD" _ || true
}

# hard_settle_fds MAX: the service's fd count once it is back to MAX (connections are reaped
# asynchronously), or the count after 30 s (a guard for a busy host, not a timing check).
hard_settle_fds() {
    local n
    for _ in $(seq 1 600); do
        n=$(hard_fds "$SVC_PID")
        [ "$n" -le "$1" ] && break
        hard_sleep_ms 50
    done
    echo "$n"
}

# hard_quiet_fds: the service's fd count once it held still for 10 samples 50 ms apart (the
# connections of a finished round reaped), 30 s at most. A baseline: if a connection is still
# being reaped, the baseline is only higher, and later comparisons only laxer.
hard_quiet_fds() {
    local n prev=-1 same=0
    for _ in $(seq 1 600); do
        n=$(hard_fds "$SVC_PID")
        if [ "$n" -eq "$prev" ]; then same=$((same + 1)); else same=0; fi
        [ "$same" -ge 10 ] && break
        prev=$n
        hard_sleep_ms 50
    done
    echo "$n"
}

hard_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hard_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

hard_json_lines() {
    "$PY" - "$1" <<'EOF'
import json, sys
n = 0
with open(sys.argv[1], "rb") as f:
    for n, line in enumerate(f, 1):
        if not line.endswith(b"\n"):
            raise SystemExit("%s:%d: torn last line (no newline): %r" % (sys.argv[1], n, line[:80]))
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise SystemExit("%s:%d: not JSON (%s): %r" % (sys.argv[1], n, e, line[:80]))
        if not isinstance(obj, dict):
            raise SystemExit("%s:%d: not a JSON object" % (sys.argv[1], n))
print(n)
EOF
}

# shellcheck disable=SC2153 # SOCK is set by the test that sources this file
hard_alive() {
    kill -0 "$SVC_PID" 2>/dev/null || fail "itl-signd (pid $SVC_PID) exited"
    timeout 20 "$CLI" --socket "$SOCK" status >"$T/alive.json" 2>"$T/alive.err" ||
        fail "itl-signd does not answer a status request: $(cat "$T/alive.err")"
}

# The load client: one connection (reopened when the service closes it), requests in
# sequence, every reply checked. Protocol framing comes from wire.py (lib_service.sh), so
# there is one hand-written Python encoder in the tests.
#
#   hard.py run SOCK ID OUTDIR [options]      prints one JSON summary line; writes OUTDIR/ID.jsonl
#     --requests N        requests to send (default 100)
#     --until FILE        instead: keep going until FILE exists
#     --mix OP:W,...      weights of sign, reset, status, malformed (default sign:1)
#     --expect N          status every well-formed request must get (default: 0, verified)
#     --no-rule           no access rule names the peer: malformed frames are denied (5) too
#     --allow S,...       statuses also accepted for sign/reset (each with a non-empty message)
#     --tftp PUB --recovery PUB --itl FILE   keys to verify with (hard_pubkey), the ITL to reset
#     --pace MS           sleep between requests
#     --save-every N      keep every Nth signed output in OUTDIR/saved/ (for itl-sign verify)
#   hard.py check OUTDIR   the summaries of all clients of a run: totals as JSON
#   hard.py verify PUB FILE...   every file's signature verifies with PUB (exit 1 naming the file)
hard_write_py() {
    cat >"$1" <<'EOF'
import json, os, random, re, socket, struct, sys, time

WIRE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire.py")
W = {"__name__": "wire"}
src = open(WIRE).read()
if src.rstrip().endswith("\nmain()"):
    src = src.rstrip()[: -len("main()")]
exec(compile(src, WIRE, "exec"), W)

STATUS_NAMES = {0: "ok", 1: "usage", 2: "input", 3: "token", 4: "token-not-present",
                5: "denied", 6: "audit", 7: "protocol", 8: "internal", 9: "busy"}


# PKCS#1 v1.5 verification by hand (RFC 8017 8.2.2): python3-cryptography takes seconds to
# import on a loaded CI machine; this is a few lines and independent of the C code under test.
DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def load_key(path):
    """A public key file written by hard_pubkey: the modulus in hex, the exponent in decimal."""
    n_hex, e = open(path).read().split()
    return int(n_hex, 16), int(e)


def verify(key, blob):
    import hashlib
    n, e = key
    sig, signed, digest = W["split"](blob)
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        raise ValueError("signature of %d bytes for a %d-byte modulus" % (len(sig), k))
    em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    t = DIGEST_INFO[digest] + hashlib.new(digest, signed).digest()
    if em != b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t:
        raise ValueError("the %s signature does not verify" % digest)


class Client:
    def __init__(self, path):
        self.path, self.s, self.reconnects = path, None, 0

    def conn(self):
        if self.s is None:
            self.s = W["connect"](self.path)
            self.s.settimeout(60)
            self.reconnects += 1
        return self.s

    def drop(self):
        if self.s is not None:
            self.s.close()
            self.s = None

    def call(self, frame):
        """Sends FRAME, returns the reply fields; retries once on a connection the service
        had closed between requests (timeout, restart) - that is the documented client duty."""
        for attempt in (0, 1):
            s = self.conn()
            try:
                try:
                    s.sendall(frame)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a refusal may be waiting: the service answers, then closes
                return W["reply"](s)
            except (BrokenPipeError, ConnectionResetError, EOFError):
                self.drop()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def run(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("sock"); ap.add_argument("id"); ap.add_argument("outdir")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--until")
    ap.add_argument("--mix", default="sign:1")
    ap.add_argument("--expect", type=int, default=0)
    # No access rule names this peer: every connection is denied (5) at accept, before any
    # frame of it is read, malformed ones included.
    ap.add_argument("--no-rule", action="store_true")
    ap.add_argument("--allow", default="")
    ap.add_argument("--tftp"); ap.add_argument("--recovery"); ap.add_argument("--itl")
    ap.add_argument("--pace", type=float, default=0)
    ap.add_argument("--save-every", type=int, default=0)
    a = ap.parse_args(argv)
    allow = {int(x) for x in a.allow.split(",") if x}
    mix = []
    for part in a.mix.split(","):
        op, w = part.split(":")
        mix += [op] * int(w)
    keys = {}
    if a.expect == 0:
        if a.tftp:
            keys["sign"] = load_key(a.tftp)
        if a.recovery:
            keys["reset"] = load_key(a.recovery)
    itl = open(a.itl, "rb").read() if a.itl else b""
    kinds = sorted(W["MALFORMED"])
    rnd = random.Random(a.id)
    c = Client(a.sock)
    log = open(os.path.join(a.outdir, "%s.jsonl" % a.id), "w")
    summary = {"id": a.id, "requests": 0, "ok": 0, "verified": 0, "allowed": 0, "expected": 0,
               "unexpected": 0, "by_status": {}, "messages": {}, "max_latency_s": 0.0}
    i = 0
    # --until also ends when the file's directory is gone (the test ended and removed its temp
    # dir) or after 10 minutes: a failed test must not leave clients looping forever.
    deadline = time.time() + 600
    def going():
        if not a.until:
            return i < a.requests
        return (not os.path.exists(a.until) and os.path.isdir(os.path.dirname(a.until) or ".")
                and time.time() < deadline)
    while going():
        op = mix[i % len(mix)]
        rec = {"i": i, "op": op, "t0": time.time()}
        problem = None
        try:
            if op == "malformed":
                kind = kinds[rnd.randrange(len(kinds))]
                rec["kind"] = kind
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(60)
                s.connect(a.sock)
                try:
                    s.sendall(W["MALFORMED"][kind]())
                    s.shutdown(socket.SHUT_WR)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # answered (and closed) before all of it was read
                r = W["reply"](s)
                s.close()
            elif op == "sign":
                data = ("<device><name>SEP%s%06d</name><c>%s</c></device>\n"
                        % (a.id, i, "x" * rnd.randrange(1, 2000))).encode()
                r = c.call(W["request"](W["OPS"]["sign"], "SEP%s%06d.cnf.xml" % (a.id, i), data))
            elif op == "reset":
                data = itl
                r = c.call(W["request"](W["OPS"]["reset"], "ITLFile.tlv", data))
            elif op == "status":
                r = c.call(W["request"](W["OPS"]["status"]))
            else:
                raise SystemExit("unknown op " + op)
            st = r[0x41][0]
            msg = W["text"](r, 0x42)
            rec.update(status=st, msg=msg)
            want = 7 if op == "malformed" and not a.no_rule else a.expect
            if st == want and want == 0:
                if op in ("sign", "reset"):
                    out = r.get(0x46, b"")
                    if op in keys:
                        verify(keys[op], out)
                        summary["verified"] += 1
                    if op == "sign" and not out.endswith(data):
                        problem = "the signed output does not end with the input"
                    if a.save_every and i % a.save_every == 0:
                        os.makedirs(os.path.join(a.outdir, "saved"), exist_ok=True)
                        ext = "sgn" if op == "sign" else "tlv"
                        with open(os.path.join(a.outdir, "saved", "%s-%d.%s" % (a.id, i, ext)), "wb") as f:
                            f.write(out)
                elif op == "status":
                    json.loads(W["text"](r, 0x4a))
            elif st == want:
                if not msg:
                    problem = "status %d without a message" % st
            elif st in allow and op in ("sign", "reset") and msg:
                summary["allowed"] += 1
            else:
                problem = "status %d (%s), want %d: %s" % (st, STATUS_NAMES.get(st, "?"), want, msg)
        except Exception as e:  # a verification failure, a dead connection, a bad reply
            problem = "%s: %s" % (type(e).__name__, e)
            c.drop()
        rec["t1"] = time.time()
        lat = rec["t1"] - rec["t0"]
        summary["max_latency_s"] = max(summary["max_latency_s"], round(lat, 3))
        summary["requests"] += 1
        key = str(rec.get("status", "none"))
        summary["by_status"][key] = summary["by_status"].get(key, 0) + 1
        if problem:
            rec["problem"] = problem
            summary["unexpected"] += 1
        elif rec.get("status") == 0:
            summary["ok"] += 1
        else:
            summary["expected"] += 1
        if rec.get("status", 0) != 0 or problem:
            # one entry per kind of message, not per file
            m = re.sub(r"SEP[^ :]*\.cnf\.xml", "SEP*.cnf.xml", problem or rec.get("msg", ""))
            summary["messages"][m] = summary["messages"].get(m, 0) + 1
        log.write(json.dumps(rec) + "\n")
        log.flush()
        i += 1
        if a.pace:
            time.sleep(a.pace / 1000.0)
    summary["reconnects"] = c.reconnects
    log.close()
    with open(os.path.join(a.outdir, "%s.summary" % a.id), "w") as f:
        json.dump(summary, f)
    print(json.dumps(summary))


def check(outdir):
    tot = {"clients": 0, "requests": 0, "ok": 0, "verified": 0, "allowed": 0, "expected": 0,
           "unexpected": 0, "max_latency_s": 0.0, "by_status": {}, "messages": {}}
    for name in sorted(os.listdir(outdir)):
        if not name.endswith(".summary"):
            continue
        s = json.load(open(os.path.join(outdir, name)))
        tot["clients"] += 1
        for k in ("requests", "ok", "verified", "allowed", "expected", "unexpected"):
            tot[k] += s[k]
        tot["max_latency_s"] = max(tot["max_latency_s"], s["max_latency_s"])
        for k, v in s["by_status"].items():
            tot["by_status"][k] = tot["by_status"].get(k, 0) + v
        for k, v in s["messages"].items():
            tot["messages"][k] = tot["messages"].get(k, 0) + v
    print(json.dumps(tot, sort_keys=True))


def verify_files(pub, files):
    key = load_key(pub)
    for f in files:
        try:
            verify(key, open(f, "rb").read())
        except Exception as e:
            raise SystemExit("%s: %s" % (f, e))


if sys.argv[1] == "run":
    run(sys.argv[2:])
elif sys.argv[1] == "verify":
    verify_files(sys.argv[2], sys.argv[3:])
elif sys.argv[1] == "check":
    check(sys.argv[2])
else:
    raise SystemExit("usage: hard.py run|check ...")
EOF
}
