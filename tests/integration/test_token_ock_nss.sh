#!/bin/bash
# Tokens other than SoftHSM2 (issue 16): openCryptoki's soft token and NSS softokn, brought up
# here and torn down after. On each: key generate (sign-only usage), key list, key import,
# build / reset / sign checked with openssl(1), and itl-signd signing once.
#   openCryptoki: pkcsslotd started as this test's own instance (stopped after; one that is
#     already running is used and left alone), the soft-token slot initialised with pkcsconf.
#   NSS: a fresh DB (certutil -N); the CLI loads softokn through a p11-kit registration whose
#     x-init-reserved carries configdir=..., the service by path with token.init-args.
# A token that cannot be brought up fails the test (no skip). Runs as root (the system paths of
# openCryptoki and p11-kit's /etc/pkcs11/modules are fixed).
. "$(dirname "$0")/lib.sh"
cd "$WORK"
[ "$(id -u)" -eq 0 ] || die "runs as root (openCryptoki's /var/lib/opencryptoki, /etc/pkcs11)"
for c in pkcsslotd pkcsconf certutil openssl; do
    command -v "$c" >/dev/null || die "$c missing: tools/install-deps.sh installs it"
done
OCK_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
NSS_MODULE=/usr/lib/x86_64-linux-gnu/libsoftokn3.so
[ -f "$OCK_MODULE" ] || die "$OCK_MODULE missing (package opencryptoki)"
[ -f "$NSS_MODULE" ] || die "$NSS_MODULE missing (package libnss3)"

# ---- openCryptoki ----
SWTOK=/var/lib/opencryptoki/swtok
MARK=$SWTOK/.itl-sign-test # the soft token is ours to re-initialise
ock_up() {
    local pid slot i
    # (zombies of earlier runs do not count: a container's init may never reap them)
    pid=$(ps -C pkcsslotd -o pid=,stat= | awk '$2 !~ /^Z/ { print $1; exit }')
    # Re-initialising the soft token under a daemon that has it in shared memory fails in 3.8.1
    # (CKR_FUNCTION_FAILED at the SO login): the test needs its own instance.
    [ -z "$pid" ] || die "a pkcsslotd runs already (pid $pid): stop it (systemctl stop pkcsslotd); this test starts and stops its own"
    # Only a soft token this test made (marked) is wiped; the daemon is down, so its shared
    # memory goes too. An initialised one of someone else's is refused below.
    if [ -e "$MARK" ]; then
        rm -rf "${SWTOK:?}"/* "$MARK" /dev/shm/var.lib.opencryptoki.swtok
    fi
    install -d -g pkcs11 -m 0770 "$SWTOK/TOK_OBJ" /var/lock/opencryptoki \
        /var/lock/opencryptoki/swtok /var/log/opencryptoki
    /usr/sbin/pkcsslotd || die "pkcsslotd did not start"
    # It forks into the background: its pid file may come a moment later.
    for i in $(seq 1 50); do
        pid=$(ps -C pkcsslotd -o pid=,stat= | awk '$2 !~ /^Z/ { print $1; exit }')
        [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] || die "pkcsslotd is not running after its start"
    cleanup_hooks+=("kill $pid; rm -f /var/run/pkcsslotd.pid")
    ok "openCryptoki: pkcsslotd started (pid $pid), ours to stop"
    slot=$(pkcsconf -t 2>/dev/null | awk '/^Token #/ { s = $2; sub(/#/, "", s) } /Model: IBM SoftTok/ { print s; exit }')
    [ -n "$slot" ] || die "no openCryptoki soft-token slot (pkcsconf -t: $(pkcsconf -t 2>&1 | head -n 3))"
    if pkcsconf -t -c "$slot" | grep -q 'Flags:.*[|(]TOKEN_INITIALIZED'; then
        die "openCryptoki's soft token (slot $slot) is initialised and not this test's: refusing to re-initialise it"
    fi
    touch "$MARK"
    # Test PINs only: pkcsconf takes them as arguments. 87654321 is the soft token's initial SO PIN.
    echo itl-ock | pkcsconf -c "$slot" -I -S 87654321 >/dev/null || die "pkcsconf -I (init token)"
    pkcsconf -c "$slot" -P -S 87654321 -n 55667788 || die "pkcsconf -P (SO PIN)"
    pkcsconf -c "$slot" -u -S 55667788 -n 11112222 || die "pkcsconf -u (init user PIN)"
    pkcsconf -c "$slot" -p -U 11112222 -n 24681357 || die "pkcsconf -p (user PIN)"
    printf '24681357' >ock.pin
    chmod 600 ock.pin
    OCK_VERSION=$(dpkg-query -W -f='${Version}' opencryptoki)
    ok "openCryptoki $OCK_VERSION: soft token in slot $slot initialised (SO PIN, user PIN)"
}

# ---- NSS softokn ----
NSS_ARGS="configdir='sql:$WORK/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
NSS_REG=/etc/pkcs11/modules/itl-sign-test-nss.module
nss_up() {
    mkdir -p nssdb
    printf 'nss-pin-1357' >nss.pin
    chmod 600 nss.pin
    certutil -N -d "sql:$WORK/nssdb" -f nss.pin || die "certutil -N (new NSS DB)"
    [ ! -e "$NSS_REG" ] || die "$NSS_REG exists: another run of this test? remove it"
    [ -d /etc/pkcs11/modules ] || { mkdir -p /etc/pkcs11/modules; cleanup_hooks+=("rmdir /etc/pkcs11/modules /etc/pkcs11 2>/dev/null"); }
    # Only itl-sign and itl-signd see it (enable-in), only while this test runs.
    printf 'module: %s\nx-init-reserved: %s\nenable-in: itl-sign,itl-signd\n' "$NSS_MODULE" "$NSS_ARGS" >"$NSS_REG"
    cleanup_hooks=("rm -f $NSS_REG" "${cleanup_hooks[@]}")
    NSS_VERSION=$(dpkg-query -W -f='${Version}' libnss3)
    ok "NSS $NSS_VERSION: DB made with certutil -N, registered with p11-kit as itl-sign-test-nss"
}

# suite NAME MODULE URI PIN-FILE [INIT-ARGS]: everything a user does with a token.
suite() {
    local name=$1 module=$2 uri=$3 pin=$4 init_args=${5:-} d
    local G=(--module "$module" --token "$uri" --pin-file "$pin")
    d=$WORK/$name
    mkdir -p "$d/cfg" "$d/out"
    expect_exit 0 "$BIN" "${G[@]}" key generate --label CallManager \
        --subject "CN=cucm-pub,O=itl-sign $name" --cert-out "$d/tftp.pem"
    echo "$OUT" | grep -q "usage:    private=sign public=verify (sign-only)" ||
        die "$name: generated key not reported sign-only: $OUT $ERR"
    expect_exit 0 "$BIN" "${G[@]}" key generate --label ITLRecovery \
        --subject "CN=ITLRECOVERY_cucm-pub,O=itl-sign $name" --cert-out "$d/recovery.pem"
    expect_exit 0 "$BIN" "${G[@]}" key list
    [ "$(echo "$OUT" | grep -c 'usage:    private=sign public=verify (sign-only)')" -eq 2 ] ||
        die "$name: key list does not show two sign-only keys: $OUT"
    ok "$name: key generate x2 (sign-only: private=sign public=verify), key list shows the usage"

    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/imp.key" -out "$d/imp.pem" \
        -subj "/CN=imported/O=test" -days 30 2>/dev/null || die "openssl req"
    printf 'p12-pass' >"$d/p12.pass"
    chmod 600 "$d/p12.pass"
    openssl pkcs12 -export -inkey "$d/imp.key" -in "$d/imp.pem" -out "$d/imp.p12" \
        -passout "file:$d/p12.pass" || die "openssl pkcs12"
    expect_exit 0 "$BIN" "${G[@]}" key import --p12 "$d/imp.p12" --label Imported \
        --p12-pass-file "$d/p12.pass"
    echo "$OUT" | grep -q "usage:    private=sign public=verify (sign-only)" ||
        die "$name: imported key not sign-only: $OUT"
    ok "$name: key import of a .p12 (sign-only)"

    openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -out "$d/TVS.pem" -days 30 \
        -subj "/CN=TVS/O=test" 2>/dev/null
    expect_exit 0 "$BIN" "${G[@]}" build --sast label:CallManager --sast "$d/recovery.pem" \
        --ccm-tftp "$d/tftp.pem" --tvs "$d/TVS.pem" --timestamp 1700000000 -o "$d/ITL.tlv"
    openssl_verify "$d/ITL.tlv" "$d/tftp.pem" || die "$name: openssl rejects the built ITL"
    expect_exit 0 "$BIN" "${G[@]}" reset "$d/ITL.tlv" -o "$d/reset.tlv" --timestamp 1700000100
    openssl_verify "$d/reset.tlv" "$d/recovery.pem" || die "$name: openssl rejects the reset ITL"
    expect_exit 0 "$BIN" verify "$d/reset.tlv" --trust "$d/ITL.tlv"
    printf '<device><name>SEP001122334455</name></device>\n' >"$d/cfg/SEP001122334455.cnf.xml"
    expect_exit 0 "$BIN" "${G[@]}" sign "$d/cfg/SEP001122334455.cnf.xml" --out-dir "$d/out"
    openssl_verify "$d/out/SEP001122334455.cnf.xml.sgn" "$d/tftp.pem" ||
        die "$name: openssl rejects the signed config"
    ok "$name: build, reset, sign: every signature verified by openssl dgst -verify"

    service_signs_once "$name" "$module" "$uri" "$pin" "$init_args" "$d"
}

# service_signs_once NAME MODULE URI PIN-FILE INIT-ARGS KEYS-DIR: itl-signd on this token signs
# one config file (KEYS-DIR: where suite left tftp.pem and cfg/).
service_signs_once() {
    local name=$1 module=$2 uri=$3 pin=$4 init_args=$5 keys=$6 d=$WORK/$1-svc pid i
    mkdir -p "$d/run" "$d/state" "$d/log" "$d/out"
    {
        echo "node: { name: cucm-pub, role: publisher }"
        echo "token:"
        echo "  module: $module"
        echo "  uri: \"$uri\""
        echo "  pin-file: $pin"
        echo "  pool-size: 2"
        [ -z "$init_args" ] || echo "  init-args: \"$init_args\""
        echo "keys:"
        echo "  recovery: { label: ITLRecovery }"
        echo "  tftp: { label: CallManager }"
        echo "policy: { backup: \"off\" }"
        echo "socket: { path: $d/run/socket, mode: \"0660\", timeout: 5s }"
        echo "state-dir: $d/state"
        echo "audit-log: $d/log/audit.log"
        echo "access:"
        echo "  - { user: root, allow: [sign, status] }"
    } >"$d/signd.yaml"
    "$DAEMON" --config "$d/signd.yaml" --foreground >"$d/signd.log" 2>&1 &
    pid=$!
    cleanup_hooks+=("kill $pid 2>/dev/null")
    for i in $(seq 1 300); do
        [ -S "$d/run/socket" ] && break
        kill -0 "$pid" 2>/dev/null || die "$name: itl-signd exited at startup: $(tail -n 5 "$d/signd.log")"
        sleep 0.1
    done
    [ -S "$d/run/socket" ] || die "$name: itl-signd opened no socket in 30 s: $(tail -n 5 "$d/signd.log")"
    expect_exit 0 "$BIN" --socket "$d/run/socket" sign "$keys/cfg/SEP001122334455.cnf.xml" \
        --out-dir "$d/out"
    openssl_verify "$d/out/SEP001122334455.cnf.xml.sgn" "$keys/tftp.pem" ||
        die "$name: openssl rejects the service's signature"
    kill -TERM "$pid"
    wait "$pid" || die "$name: itl-signd did not stop cleanly: $(tail -n 5 "$d/signd.log")"
    ok "$name: itl-signd (module $module${init_args:+ with token.init-args}) signed a config file, openssl verifies it"
}

ock_up
suite opencryptoki "$OCK_MODULE" "pkcs11:token=itl-ock" "$WORK/ock.pin"

nss_up
NSS_URI="pkcs11:token=NSS%20Certificate%20DB"
# By path without init args, softokn has no DB: said plainly, not a crash.
expect_exit 4 "$BIN" --module "$NSS_MODULE" --token "$NSS_URI" key list
ok "NSS by path without init args refused: ${ERR:0:160}"
# The URI's module-name= selects the registered module (with its x-init-reserved) ...
expect_exit 0 "$BIN" --token "$NSS_URI?module-name=itl-sign-test-nss" --pin-file nss.pin key list
# ... and a module-name= that contradicts --module is refused, never ignored.
expect_exit 2 "$BIN" --module "$NSS_MODULE" --token "$NSS_URI?module-name=itl-sign-test-nss" key list
echo "$ERR" | grep -q "module-name=itl-sign-test-nss" || die "unclear refusal: $ERR"
ok "NSS: module-name= in the URI loads the p11-kit registration; contradicting --module is refused"
suite nss itl-sign-test-nss "$NSS_URI" "$WORK/nss.pin"
# The CLI's module name above; the service takes softokn by path with token.init-args.
service_signs_once nss-path "$NSS_MODULE" "$NSS_URI" "$WORK/nss.pin" "$NSS_ARGS" "$WORK/nss"
