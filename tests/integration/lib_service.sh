# shellcheck shell=bash
# Helpers for the itl-signd integration tests (sourced by tests/integration/test_service.sh).
#
#   svc_init                  temp dir $T (removed on exit), binaries, python helper
#   svc_need_root WHY         fail unless running as root (WHY says what needs it)
#   svc_test_user             the unprivileged peer itlsvc-test (created once, kept): TEST_USER
#   svc_make_token            a SoftHSM2 token in $T/token: sets SOFTHSM2_CONF, ITL_MODULE,
#                             ITL_TOKEN_URI, ITL_PIN_FILE and TOK=(--module .. --token .. --pin-file ..)
#   svc_make_keys             the TFTP (CallManager) and ITL Recovery keys on that token
#   svc_config FILE [YAML]    a service config for the temp dir (+ extra YAML lines)
#   svc_start CONFIG [ARGS]   start itl-signd --foreground in the background: SVC_PID, $T/signd.log
#   svc_stop                  SIGTERM, wait; the exit code in SVC_RC
#   wire ARGS...              the raw-protocol helper ($T/wire.py)
#   ok / fail / figures       test output
#   SVC_EXTRA_PIDS            more service pids (daemon mode) to stop on exit
set -u

ITL_SRC=${ITL_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ITL_BUILD=${ITL_BUILD:-$ITL_SRC/build}
SIGND=${ITL_SIGND:-$ITL_BUILD/itl-signd}
CLI=${ITL_CLI:-$ITL_BUILD/itl-sign}
PY=/usr/bin/python3 # Debian's, not a pyenv shim (shared/pkcs11-notes.md P10)
SVC_PID=""
SVC_RC=""

ok() { echo "ok: $*"; }
figures() { echo "figures: $*"; }
fail() {
    echo "FAIL: $*" >&2
    if [ -n "${T:-}" ] && [ -f "$T/signd.log" ]; then
        echo "--- itl-signd log (last 30 lines) ---" >&2
        tail -n 30 "$T/signd.log" >&2
    fi
    exit 1
}

svc_cleanup() {
    local p
    for p in ${SVC_EXTRA_PIDS:-}; do kill -TERM "$p" 2>/dev/null; done
    if [ -n "$SVC_PID" ] && kill -0 "$SVC_PID" 2>/dev/null; then
        kill -TERM "$SVC_PID" 2>/dev/null
        wait "$SVC_PID" 2>/dev/null
    fi
    [ -n "${T:-}" ] && [ -z "${KEEP_TMP:-}" ] && rm -rf "$T"
    return 0
}

svc_init() {
    [ -x "$SIGND" ] || fail "$SIGND not built (make BUILD=... all)"
    [ -x "$CLI" ] || fail "$CLI not built"
    [ -x "$PY" ] || fail "$PY missing"
    T=$(mktemp -d "${TMPDIR:-/tmp}/itl-svc.XXXXXX")
    # Reachable by the unprivileged test user (the socket's own mode decides the rest).
    chmod 0755 "$T"
    trap svc_cleanup EXIT
    svc_write_wire_py "$T/wire.py"
}

svc_need_root() {
    [ "$(id -u)" -eq 0 ] || fail "runs as root ($1)"
}

# Kept afterwards: test runs that overlap must not delete it under each other.
svc_test_user() {
    TEST_USER=itlsvc-test
    id "$TEST_USER" >/dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin "$TEST_USER" ||
        id "$TEST_USER" >/dev/null 2>&1 || fail "useradd $TEST_USER"
}

svc_make_token() {
    local out
    out=$("$ITL_SRC/softhsm-conf/make-token.sh" "$T/token" itl-svc) || fail "make-token.sh failed"
    eval "$out"
    export SOFTHSM2_CONF ITL_MODULE ITL_TOKEN_URI ITL_PIN_FILE
    TOK=(--module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")
}

# The cluster's two keys, made by `itl-sign key generate` (sensitive, sign-only) as an admin does.
svc_make_keys() {
    "$CLI" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" \
        >"$T/keygen.log" 2>&1 || { cat "$T/keygen.log"; fail "key generate CallManager"; }
    "$CLI" "${TOK[@]}" key generate --label ITLRecovery --subject "CN=ITLRECOVERY_cucm-pub,O=test" \
        >>"$T/keygen.log" 2>&1 || { cat "$T/keygen.log"; fail "key generate ITLRecovery"; }
}

# svc_config FILE [EXTRA-YAML]: socket in $T/run, state in $T/state, audit log in $T/log.
svc_config() {
    local file=$1 extra=${2:-}
    cat >"$file" <<EOF
node: { name: cucm-pub, role: publisher }
token:
  module: $ITL_MODULE
  uri: "$ITL_TOKEN_URI"
  pin-file: $ITL_PIN_FILE
  pool-size: 2
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { backup: "off" }
socket:
  path: $T/run/socket
  mode: "0660"
  timeout: 5s
state-dir: $T/state
audit-log: $T/log/audit.log
$extra
EOF
}

# svc_start CONFIG [more itl-signd args]: waits until the socket answers (a 60 s guard: ASan
# on a busy host starts slowly).
svc_start() {
    local cfg=$1 i sock
    shift
    sock=$(sed -n 's/^  path: //p' "$cfg" | head -n 1)
    "$SIGND" --config "$cfg" --foreground "$@" >>"$T/signd.log" 2>&1 &
    SVC_PID=$!
    for i in $(seq 1 600); do
        [ -S "$sock" ] && "$PY" "$T/wire.py" ping "$sock" >/dev/null 2>&1 && return 0
        kill -0 "$SVC_PID" 2>/dev/null || { wait "$SVC_PID"; fail "itl-signd exited during startup (rc $?)"; }
        sleep 0.1
    done
    fail "itl-signd did not open $sock within 60 s"
}

svc_stop() {
    kill -TERM "$SVC_PID" || fail "itl-signd (pid $SVC_PID) is not running"
    wait "$SVC_PID"
    SVC_RC=$?
    SVC_PID=""
}

wire() { "$PY" "$T/wire.py" "$@"; }

# Seconds since a `date +%s.%N` value, two decimals.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# The audit log's lines, optionally only those matching a pattern.
audit_count() { grep -c -- "${1:-.}" "$T/log/audit.log" 2>/dev/null || true; }

# The raw-protocol helper: frames built by hand, so a test does not trust the C encoder to
# check the C decoder. Subcommands:
#   ping SOCK                     a status request; exit 0 when any reply arrives
#   raw SOCK KIND                 send a malformed frame, print the reply's status byte
#   request SOCK OP [FILE]        one well-formed request, print "status message"
#   split FILE.sgn SIG SIGNED     write the signature and the signed bytes (format.md §4);
#                                 print the digest code
svc_write_wire_py() {
    cat >"$1" <<'EOF'
import socket, struct, sys

OPS = {"reset": 0, "build": 1, "sign": 2, "encrypt": 3, "status": 4, "key": 5}

def field(tag, value):
    return struct.pack(">BI", tag, len(value)) + value

def frame(payload, magic=b"ITLS", version=1, ftype=1, length=None):
    n = len(payload) if length is None else length
    return magic + bytes([version, ftype]) + b"\0\0" + struct.pack(">I", n) + payload

def request(op, name=None, data=None):
    p = field(0x01, bytes([op]))
    if name:
        p += field(0x02, name.encode() + b"\0")
    if data is not None:
        p += field(0x03, data)
    return frame(p)

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed after %d of %d bytes" % (len(b), n))
        b += c
    return b

def reply(s):
    h = recv_exact(s, 12)
    if h[:4] != b"ITLS" or h[4] != 1 or h[5] != 2:
        raise ValueError("bad reply header %r" % h)
    p = recv_exact(s, struct.unpack(">I", h[8:])[0])
    fields, i = {}, 0
    while i < len(p):
        tag, n = struct.unpack(">BI", p[i:i + 5])
        fields[tag] = p[i + 5:i + 5 + n]
        i += 5 + n
    return fields

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    return s

def text(fields, tag):
    return fields.get(tag, b"\0")[:-1].decode(errors="replace")

MALFORMED = {
    # a header that is not ours at all
    "garbage": lambda: b"GET / HTTP/1.0\r\n\r\n",
    "version": lambda: frame(field(0x01, b"\x04"), version=9),
    "type": lambda: frame(field(0x01, b"\x04"), ftype=2),
    # announces 1 GiB: refused from the header, before anything is allocated
    "oversize": lambda: frame(b"", length=1 << 30),
    # announces 100 bytes, sends 10, then half-closes
    "truncated": lambda: frame(b"\x01\x00\x00\x00\x01\x04" + b"\0" * 4, length=100),
    "short-header": lambda: b"ITLS\x01",
    # a field that runs past the end of the payload
    "field": lambda: frame(b"\x03\x00\x00\x10\x00abc"),
    "unknown-field": lambda: frame(field(0x01, b"\x04") + field(0x3f, b"x")),
    "no-op": lambda: frame(field(0x02, b"a.xml\0")),
    "bad-op": lambda: frame(field(0x01, b"\x63")),
    "bad-string": lambda: frame(field(0x01, b"\x02") + field(0x02, b"no-nul")),
}

def main():
    cmd = sys.argv[1]
    if cmd == "ping":
        s = connect(sys.argv[2])
        s.sendall(request(OPS["status"]))
        reply(s)
    elif cmd == "raw":
        s = connect(sys.argv[2])
        try:
            s.sendall(MALFORMED[sys.argv[3]]())
            s.shutdown(socket.SHUT_WR)
        except BrokenPipeError:
            pass  # the service may answer and close before it read everything
        r = reply(s)
        print(r[0x41][0], text(r, 0x42))
        try:
            rest = s.recv(1)
        except ConnectionResetError:  # we sent bytes the service never read
            rest = b""
        if rest != b"":
            raise SystemExit("the connection stayed open after a protocol error")
    elif cmd == "request":
        s = connect(sys.argv[2])
        data = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else None
        name = sys.argv[4].rsplit("/", 1)[-1] if len(sys.argv) > 4 else None
        s.sendall(request(OPS[sys.argv[3]], name, data))
        r = reply(s)
        print(r[0x41][0], text(r, 0x42))
    elif cmd == "split":
        sig, signed, digest = split(open(sys.argv[2], "rb").read())
        open(sys.argv[3], "wb").write(sig)
        open(sys.argv[4], "wb").write(signed)
        print(digest)
    elif cmd == "verify":
        verify(sys.argv[2], sys.argv[3:])
    elif cmd == "limits":
        limits(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) / 1000.0)
    else:
        raise SystemExit("unknown command " + cmd)

def split(b):
    """The signature, the bytes it covers (format.md section 4) and the digest name."""
    i, end, digest, sig_at = 0, None, None, None
    while end is None or i < end:
        tag = b[i]
        if tag == 13:  # padding: one byte, no length
            i += 1
            continue
        n = struct.unpack(">H", b[i + 1:i + 3])[0]
        if tag == 2:
            end = struct.unpack(">H", b[i + 3:i + 5])[0]
        if tag in (3, 7, 9, 16, 17, 21):  # containers: walk into them
            i += 3
            continue
        if tag == 8:
            digest = b[i + 3]
        if tag == 12:
            sig_at = (i, n)
        i += 3 + n
    s, n = sig_at
    return b[s + 3:s + 3 + n], b[:s] + b[s + 3 + n:], {1: "sha1", 2: "sha256", 3: "sha512"}[digest]

def verify(cert_path, files):
    """Every file's signature with the certificate's key (OpenSSL via python3-cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    key = x509.load_der_x509_certificate(open(cert_path, "rb").read()).public_key()
    algs = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}
    for f in files:
        sig, signed, digest = split(open(f, "rb").read())
        try:
            key.verify(sig, signed, padding.PKCS1v15(), algs[digest]())
        except Exception:
            raise SystemExit("%s: the signature does not verify" % f)
    print("verified", len(files))

def limits(path, max_conns, timeout):
    """max_conns connections are served; one more is answered busy (9) and closed; idle
    connections are closed by the service after about `timeout` seconds."""
    import time
    held = []
    for _ in range(max_conns):
        s = connect(path)
        s.sendall(request(OPS["status"]))
        if reply(s)[0x41][0] != 0:
            raise SystemExit("a connection under the limit was not served")
        held.append(s)
    extra = connect(path)
    st = reply(extra)[0x41][0]
    if st != 9:
        raise SystemExit("connection %d over the limit got status %d, want 9" % (max_conns + 1, st))
    if extra.recv(1) != b"":
        raise SystemExit("the refused connection stayed open")
    # The service closes idle connections (within 60 timeouts: a guard against a hang,
    # generous for a busy host).
    t0 = time.time()
    for s in held:
        s.settimeout(max(timeout * 60, 30))
        try:
            if s.recv(1) != b"":
                raise SystemExit("an idle connection received data")
        except socket.timeout:
            raise SystemExit("an idle connection stayed open %.0fs, timeout %.1fs" % (time.time() - t0, timeout))
    # The closed connections' threads are reaped asynchronously: until then the service may
    # still answer busy (9). A connection is served again within 30 s.
    deadline = time.time() + 30
    while True:
        s = connect(path)
        s.sendall(request(OPS["status"]))
        st = reply(s)[0x41][0]
        s.close()
        if st == 0:
            break
        if st != 9 or time.time() > deadline:
            raise SystemExit("no connection served after the idle ones were closed (status %d)" % st)
        time.sleep(0.05)

main()
EOF
}
