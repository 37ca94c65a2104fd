#!/bin/bash
# Token quirks in the service and through the config (issue 16), on the faultp11 wrapper over
# SoftHSM2 (tests/faultp11/quirks.c; its stats count context logins and each C_SignInit's
# mechanism):
#   - always-auth, pool-size 4, 4 concurrent clients x 50 files: every .sgn verifies with
#     openssl, one C_Login(CKU_CONTEXT_SPECIFIC) per C_Sign, no request fails;
#   - one-session (ulMaxSessionCount = 1), 4 concurrent clients: serialized on the login
#     session, all succeed, all verify;
#   - no-raw-rsa: `token.mechanism: hash` from the config (direct mode via --config, and the
#     service) signs with CKM_SHA1_RSA_PKCS; `mechanism: raw` fails naming CKM_RSA_PKCS and
#     token.mechanism; `raw` on the plain token is CKM_RSA_PKCS.
. "$(dirname "$0")/lib.sh"
cd "$WORK"

new_token itl-sign-quirks-svc
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" \
    --cert-out tftp.pem >/dev/null || die "key generate CallManager"
"$BIN" "${TOK[@]}" key generate --label ITLRecovery --subject "CN=ITLRECOVERY_cucm-pub,O=test" \
    --cert-out recovery.pem >/dev/null || die "key generate ITLRecovery"
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || die "$FAULT not built"
FAULTP11_PIN=$(cat "$ITL_PIN_FILE")
export FAULTP11_MODULE=$ITL_MODULE FAULTP11_PIN
openssl x509 -in tftp.pem -pubkey -noout >tftp.pub || die "openssl x509 -pubkey"
CLIENTS=4
PER_CLIENT=50

# fstat KEY [NAME]: a number from the fault module's stats file ($STATS), 0 when absent.
fstat() {
    awk -v k="$1" -v n="${2:-}" '$1 == k && (n == "" ? NF == 2 : $2 == n) { print $NF; f = 1 }
        END { if (!f) print 0 }' "$STATS"
}

# verify_all DIR...: every .sgn under DIR verifies with openssl against tftp.pem (the signed
# bytes split off by one python run, then openssl dgst per file).
verify_all() {
    local n=0 s
    /usr/bin/python3 - "$@" <<'PY' || die "splitting the .sgn files failed"
import glob, os, sys
for d in sys.argv[1:]:
    for f in glob.glob(os.path.join(d, '*.sgn')):
        b = open(f, 'rb').read()
        pos = 0
        while True:
            tag, n = b[pos], int.from_bytes(b[pos + 1:pos + 3], 'big')
            if tag == 12:
                break
            pos += 3 + n
        open(f + '.tbs', 'wb').write(b[:pos] + b[pos + 3 + n:])
        open(f + '.sig', 'wb').write(b[pos + 3:pos + 3 + n])
PY
    for s in $(find "$@" -name '*.sgn'); do
        openssl dgst -sha1 -verify tftp.pub -signature "$s.sig" "$s.tbs" >/dev/null ||
            die "openssl rejects $s"
        n=$((n + 1))
    done
    VERIFIED=$n
}

# config NAME QUIRKS POOL [MECHANISM]: a service config in $WORK/NAME that loads the wrapper.
config() {
    local d=$WORK/$1
    mkdir -p "$d/run" "$d/state" "$d/log"
    cat >"$d/signd.yaml" <<YAML
node: { name: cucm-pub, role: publisher }
token:
  module: $FAULT
  uri: "$ITL_TOKEN_URI"
  pin-file: $ITL_PIN_FILE
  pool-size: $3
${4:+  mechanism: $4}
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { backup: "off" }
socket: { path: $d/run/socket, mode: "0660", timeout: 30s }
state-dir: $d/state
audit-log: $d/log/audit.log
access:
  - { user: root, allow: [sign, status] }
YAML
    CFG=$d/signd.yaml
    SOCK=$d/run/socket
    STATS=$d/stats
    QUIRKS=$2
}

# start: itl-signd on $CFG with the quirks $QUIRKS; waits for its socket.
start() {
    local i
    FAULTP11_QUIRKS=$QUIRKS FAULTP11_STATS=$STATS "$DAEMON" --config "$CFG" --foreground \
        >"$CFG.log" 2>&1 &
    SVC=$!
    cleanup_hooks+=("kill $SVC 2>/dev/null")
    for i in $(seq 1 300); do
        [ -S "$SOCK" ] && return 0
        kill -0 "$SVC" 2>/dev/null || die "itl-signd exited at startup: $(tail -n 5 "$CFG.log")"
        sleep 0.1
    done
    die "itl-signd opened no socket in 30 s: $(tail -n 5 "$CFG.log")"
}

stop() {
    kill -TERM "$SVC"
    wait "$SVC" || die "itl-signd did not stop cleanly: $(tail -n 5 "$CFG.log")"
}

# clients NAME: $CLIENTS itl-sign processes at once, $PER_CLIENT files each, through $SOCK.
# --jobs 2 each: all are root, and socket.max-connections-per-uid (16) would refuse the default
# (4 x CPUs connections per client) once 4 clients overlap.
clients() {
    local c i pids=() rc=0
    for c in $(seq 1 $CLIENTS); do
        mkdir -p "$WORK/$1/c$c"
        for i in $(seq 1 $PER_CLIENT); do
            printf '<device><c>%s</c><n>%s</n></device>\n' "$c" "$i" \
                >"$WORK/$1/c$c/SEP$(printf '%06d%06d' "$c" "$i").cnf.xml"
        done
    done
    for c in $(seq 1 $CLIENTS); do
        "$BIN" --socket "$SOCK" sign --jobs 2 "$WORK/$1/c$c"/*.cnf.xml >"$WORK/$1/c$c.out" 2>&1 &
        pids+=($!)
    done
    for c in $(seq 1 $CLIENTS); do
        wait "${pids[$((c - 1))]}" || {
            rc=$?
            die "$1: client $c failed (exit $rc): $(tail -n 3 "$WORK/$1/c$c.out"); itl-signd: $(tail -n 15 "$CFG.log")"
        }
    done
    verify_all "$WORK/$1"/c*
    [ "$VERIFIED" -eq $((CLIENTS * PER_CLIENT)) ] ||
        die "$1: $VERIFIED signatures, not $((CLIENTS * PER_CLIENT))"
}

# ---- CKA_ALWAYS_AUTHENTICATE, pool-size 4, concurrent clients ----
config always always-auth 4
start
clients always
stop
signs=$(fstat calls C_Sign)
[ "$(fstat context_logins)" -eq "$signs" ] ||
    die "always-auth: $(fstat context_logins) context logins for $signs C_Sign calls"
[ "$signs" -ge $((CLIENTS * PER_CLIENT)) ] || die "always-auth: only $signs C_Sign calls"
[ "$(fstat errors C_Sign)" -eq 0 ] && [ "$(fstat injected C_Sign)" -eq 0 ] ||
    die "always-auth: a C_Sign failed: $(grep C_Sign "$STATS")"
[ "$(fstat quirk_refusals)" -eq 0 ] || die "always-auth: $(fstat quirk_refusals) C_Sign without its context login"
ok "always-auth, pool-size 4: $CLIENTS clients x $PER_CLIENT files at once, all $VERIFIED verified by openssl, $signs C_Sign each after its own CKU_CONTEXT_SPECIFIC login"

# ---- ulMaxSessionCount = 1, pool-size 4, concurrent clients ----
config one one-session 4
start
clients one
stop
grep -q "allows one session (ulMaxSessionCount = 1): pool-size 4 is clamped to 1" "$CFG.log" ||
    die "one-session: no warning that pool-size is clamped: $(tail -n 5 "$CFG.log")"
[ "$(fstat quirk_refusals)" -eq 0 ] ||
    die "one-session: a second session was tried ($(fstat quirk_refusals) refused)"
ok "ulMaxSessionCount = 1, pool-size 4 (clamped, warned): $CLIENTS clients x $PER_CLIENT files at once serialized on the login session, all $VERIFIED verified, no second session opened"

# ---- token.mechanism from the config, on a token without raw CKM_RSA_PKCS ----
printf '<device><name>SEP001122334455</name></device>\n' >one.cnf.xml
config mech-hash no-raw-rsa 2 hash
mkdir -p "$WORK/mech-hash/direct"
cp one.cnf.xml "$WORK/mech-hash/direct/SEP001122334455.cnf.xml"
expect_exit 0 env FAULTP11_QUIRKS=no-raw-rsa FAULTP11_STATS="$STATS" "$BIN" --config "$CFG" \
    --direct sign "$WORK/mech-hash/direct/SEP001122334455.cnf.xml"
verify_all "$WORK/mech-hash/direct"
[ "$(fstat sign_mechanism CKM_SHA1_RSA_PKCS)" -eq 1 ] && [ "$(fstat sign_mechanism CKM_RSA_PKCS)" -eq 0 ] ||
    die "mechanism: hash (direct, --config): not CKM_SHA1_RSA_PKCS: $(grep sign_mechanism "$STATS")"
start
CLIENTS=2 PER_CLIENT=5 clients mech-hash
stop
[ "$(fstat sign_mechanism CKM_SHA1_RSA_PKCS)" -eq 11 ] && [ "$(fstat sign_mechanism CKM_RSA_PKCS)" -eq 0 ] ||
    die "mechanism: hash (service): $(grep sign_mechanism "$STATS")"
ok "token.mechanism: hash in the config, no raw RSA: direct mode via --config and the service sign with CKM_SHA1_RSA_PKCS (fault-module stats), openssl verifies"

config mech-raw no-raw-rsa 2 raw
mkdir -p "$WORK/mech-raw/direct"
cp one.cnf.xml "$WORK/mech-raw/direct/SEP001122334455.cnf.xml"
expect_exit 4 env FAULTP11_QUIRKS=no-raw-rsa FAULTP11_STATS="$STATS" "$BIN" --config "$CFG" \
    --direct sign "$WORK/mech-raw/direct/SEP001122334455.cnf.xml"
<<<"$ERR" grep -q "CKM_RSA_PKCS" && <<<"$ERR" grep -q "token.mechanism" ||
    die "mechanism: raw (direct) does not name CKM_RSA_PKCS and token.mechanism: $ERR"
start
expect_exit 4 "$BIN" --socket "$SOCK" sign "$WORK/mech-raw/direct/SEP001122334455.cnf.xml"
<<<"$ERR" grep -q "CKM_RSA_PKCS" && <<<"$ERR" grep -q "token.mechanism" ||
    die "mechanism: raw (service) does not name CKM_RSA_PKCS and token.mechanism: $ERR"
stop
[ ! -e "$WORK/mech-raw/direct/SEP001122334455.cnf.xml.sgn" ] || die "a refused signature left a file"
[ "$(fstat sign_mechanism CKM_RSA_PKCS)" -eq 0 ] || die "raw: a CKM_RSA_PKCS sign went through"
ok "token.mechanism: raw on a token without it: direct (--config) and service fail (exit 4) naming CKM_RSA_PKCS and token.mechanism, no file left"

config mech-plain "" 2 raw
mkdir -p "$WORK/mech-plain/direct"
cp one.cnf.xml "$WORK/mech-plain/direct/SEP001122334455.cnf.xml"
expect_exit 0 env FAULTP11_STATS="$STATS" "$BIN" --config "$CFG" --direct \
    sign "$WORK/mech-plain/direct/SEP001122334455.cnf.xml"
verify_all "$WORK/mech-plain/direct"
[ "$(fstat sign_mechanism CKM_RSA_PKCS)" -eq 1 ] && [ "$(fstat sign_mechanism CKM_SHA1_RSA_PKCS)" -eq 0 ] ||
    die "mechanism: raw on the plain token: $(grep sign_mechanism "$STATS")"
ok "token.mechanism: raw in the config on a token that has it: CKM_RSA_PKCS (fault-module stats)"
echo "all passed"
