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
. "$(dirname "$0")/lib_tokens.sh"
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

ock_up
P11TOOL_PASTE=1 suite opencryptoki "$OCK_MODULE" "pkcs11:token=itl-ock" "$WORK/ock.pin"

nss_up
NSS_URI="pkcs11:token=NSS%20Certificate%20DB"
# By path without init args, softokn has no DB: said plainly, not a crash.
expect_exit 4 "$BIN" --module "$NSS_MODULE" --token "$NSS_URI" key list
ok "NSS by path without init args refused: ${ERR:0:160}"
# The URI's module-name= selects the registered module (with its x-init-reserved) ...
expect_exit 0 "$BIN" --token "$NSS_URI?module-name=itl-sign-test-nss" --pin-file nss.pin key list
# ... and a module-name= that contradicts --module is refused, never ignored.
expect_exit 2 "$BIN" --module "$NSS_MODULE" --token "$NSS_URI?module-name=itl-sign-test-nss" key list
<<<"$ERR" grep -q "module-name=itl-sign-test-nss" || die "unclear refusal: $ERR"
ok "NSS: module-name= in the URI loads the p11-kit registration; contradicting --module is refused"
suite nss itl-sign-test-nss "$NSS_URI" "$WORK/nss.pin"
# The CLI's module name above; the service takes softokn by path with token.init-args.
service_signs_once nss-path "$NSS_MODULE" "$NSS_URI" "$WORK/nss.pin" "$NSS_ARGS" "$WORK/nss"
