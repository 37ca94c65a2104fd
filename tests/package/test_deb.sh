#!/bin/bash
# The Debian package (issue 17): dpkg-buildpackage -us -uc -b on a copy of the tree, lintian
# without errors; then, as root on this machine: apt-get install ./itl-sign_*.deb, the README's
# service recipe on a throwaway SoftHSM2 token with itl-signd started as the unit starts it (as
# the itl-sign user, the PIN as a credential file, the unit's directories), one file signed
# through it by a second user, and the package purged again.
#   tests/package/test_deb.sh [--build-only]   (make deb, make deb-check)
# The package is always purged on exit; the itl-sign user stays (Debian never removes one).
set -u
set -o pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/itl-deb.XXXXXX")
chmod 0755 "$W"
PY=/usr/bin/python3
SVC_PID=""
INSTALLED=""
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; [ -f "$W/signd.log" ] && tail -n 20 "$W/signd.log" >&2; exit 1; }
cleanup() {
    [ -n "$SVC_PID" ] && kill -TERM "$SVC_PID" 2>/dev/null && wait "$SVC_PID" 2>/dev/null
    if [ -n "$INSTALLED" ]; then
        apt-get purge -y -qq itl-sign >/dev/null 2>&1
        rm -rf /run/credentials/itl-signd.service /run/itl-sign /var/lib/itl-sign /var/log/itl-sign /etc/itl-sign
    fi
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
start=$(date +%s)

# ---- build, in a copy: debian/rules clean removes build/ and build-asan/
mkdir "$W/src"
(cd "$SRC" && tar --exclude='./build' --exclude='./build-*' --exclude='./demo-out' --exclude='./.git' -cf - .) |
    tar -xf - -C "$W/src" || fail "copying the tree"
(cd "$W/src" && DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -us -uc -b) \
    >"$W/build.log" 2>&1 || { tail -n 40 "$W/build.log"; fail "dpkg-buildpackage -us -uc -b"; }
deb=$(ls "$W"/itl-sign_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "dpkg-buildpackage made no itl-sign_*.deb"
ok "dpkg-buildpackage -us -uc -b: $(basename "$deb") ($(stat -c %s "$deb") bytes, $(($(date +%s) - start)) s)"
lintian --fail-on error "$W"/itl-sign_*.changes >"$W/lintian.log" 2>&1 || { cat "$W/lintian.log"; fail "lintian reports errors"; }
grep -q '^E:' "$W/lintian.log" && { cat "$W/lintian.log"; fail "lintian reports errors"; }
ok "lintian: no errors ($(grep -c '^W:' "$W/lintian.log") warnings)"
# What the package holds.
dpkg-deb -c "$deb" >"$W/contents"
for f in ./usr/bin/itl-sign ./usr/sbin/itl-signd ./lib/systemd/system/itl-signd.service \
    ./lib/systemd/system/itl-signd.socket ./usr/lib/sysusers.d/itl-signd.conf \
    ./usr/lib/tmpfiles.d/itl-signd.conf ./etc/itl-sign/itl-signd.yaml ./etc/logrotate.d/itl-sign \
    ./usr/share/man/man8/itl-signd.8.gz ./usr/share/man/man1/itl-sign.1.gz \
    ./usr/share/bash-completion/completions/itl-sign; do
    grep -q " $f\$" "$W/contents" || fail "the package lacks $f"
done
dpkg-deb -e "$deb" "$W/control"
for c in /etc/itl-sign/itl-signd.yaml /etc/logrotate.d/itl-sign; do
    grep -qx "$c" "$W/control/conffiles" || fail "$c is not a conffile"
done
grep -q 'systemd-sysusers' "$W/control/postinst" || fail "postinst does not run systemd-sysusers"
[ "$(grep -n systemd-sysusers "$W/control/postinst" | head -n 1 | cut -d: -f1)" -lt \
    "$(grep -n systemd-tmpfiles "$W/control/postinst" | head -n 1 | cut -d: -f1)" ] ||
    fail "postinst runs systemd-tmpfiles before systemd-sysusers creates the user"
ok "the package holds the binaries, units, sysusers, tmpfiles, man pages; /etc files are conffiles; the unit is not enabled"
if [ "${1:-}" = --build-only ]; then
    cp "$deb" "$SRC/" && ok "copied $(basename "$deb") to $SRC"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || fail "installing the package needs root"
# ---- install (over nothing: a run that was killed may have left the package and its edited config)
if dpkg-query -W -f='${Status}' itl-sign 2>/dev/null | grep -q 'ok installed\|config-files'; then
    apt-get purge -y -qq itl-sign >/dev/null 2>&1 || fail "purging an itl-sign already installed"
fi
rm -rf /etc/itl-sign /run/credentials/itl-signd.service /run/itl-sign /var/lib/itl-sign /var/log/itl-sign
INSTALLED=1
apt-get install -y -qq "$deb" >"$W/apt.log" 2>&1 || { cat "$W/apt.log"; fail "apt-get install $deb"; }
getent passwd itl-sign >/dev/null || fail "installing did not create the itl-sign user"
[ "$(stat -c '%a %U %G' /etc/itl-sign)" = "750 root itl-sign" ] || fail "/etc/itl-sign is $(stat -c '%a %U %G' /etc/itl-sign)"
for d in /run/itl-sign /var/lib/itl-sign /var/log/itl-sign; do
    [ "$(stat -c '%a %U %G' "$d")" = "750 itl-sign itl-sign" ] || fail "$d is $(stat -c '%a %U %G' "$d" 2>&1)"
done
[ -e /etc/systemd/system/multi-user.target.wants/itl-signd.service ] && fail "the unit was enabled"
ok "apt-get install: the itl-sign user, /etc/itl-sign 0750 root:itl-sign, the unit's directories; the unit stays disabled"

# ---- the recipe: a token the service user can use, the PIN, the config, a client user
"$SRC/softhsm-conf/make-token.sh" "$W/token" itl-deb >"$W/token.env" || fail "make-token.sh"
eval "$(cat "$W/token.env")"
TOK=(--module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")
/usr/bin/itl-sign "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=deb" >"$W/key.log" 2>&1 ||
    { cat "$W/key.log"; fail "key generate CallManager"; }
/usr/bin/itl-sign "${TOK[@]}" key generate --label ITLRecovery --subject "CN=ITLRECOVERY_cucm-pub,O=deb" >>"$W/key.log" 2>&1 ||
    { cat "$W/key.log"; fail "key generate ITLRecovery"; }
chown -R itl-sign:itl-sign "$W/token" # the service user's token (SoftHSM2 keeps it in files)
install -m 0600 "$ITL_PIN_FILE" /etc/itl-sign/pin
CLIENT=itlsvc-test
id "$CLIENT" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$CLIENT" ||
    id "$CLIENT" >/dev/null 2>&1 || fail "useradd $CLIENT"
sed -i -e "s|^  module: .*|  module: $ITL_MODULE|" -e "s|^  uri: .*|  uri: \"$ITL_TOKEN_URI\"|" \
    -e "s|^  - { user: tftp, .*|  - { user: $CLIENT, allow: [sign, status] }|" /etc/itl-sign/itl-signd.yaml
grep -q "user: $CLIENT" /etc/itl-sign/itl-signd.yaml || fail "could not add the access rule for $CLIENT"
# As systemd does for LoadCredential=pin:/etc/itl-sign/pin (on ramfs: the user's file, 0400).
install -d -o itl-sign -g itl-sign -m 0500 /run/credentials/itl-signd.service
install -o itl-sign -g itl-sign -m 0400 /etc/itl-sign/pin /run/credentials/itl-signd.service/pin
as_service() { setpriv --reuid=itl-sign --regid=itl-sign --init-groups env SOFTHSM2_CONF="$SOFTHSM2_CONF" "$@"; }
out=$(as_service /usr/sbin/itl-signd --config /etc/itl-sign/itl-signd.yaml --check-config 2>&1) ||
    fail "--check-config as itl-sign: $out"
[ "$out" = "config OK" ] || fail "--check-config printed: $out"
ok "itl-signd --check-config as itl-sign on the installed config: config OK"

# ---- start it as the unit does (Type=notify: wait for READY=1), sign through it, stop it
cat >"$W/ready.py" <<'PY'
import os, socket, sys
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
open(sys.argv[2], "w").close()
n.settimeout(120)  # a guard, not an assertion
while True:
    msg = n.recv(4096).decode().split("\n")
    print("\n".join(msg), flush=True)
    if "READY=1" in msg or any(m.startswith("STATUS=failed") for m in msg):
        break
PY
"$PY" "$W/ready.py" "$W/notify.sock" "$W/notify.bound" >"$W/notify.out" 2>&1 &
rp=$!
while [ ! -e "$W/notify.bound" ]; do kill -0 $rp 2>/dev/null || fail "ready.py"; sleep 0.1; done
# setpriv and env exec: $! is itl-signd itself.
NOTIFY_SOCKET=$W/notify.sock setpriv --reuid=itl-sign --regid=itl-sign --init-groups \
    env SOFTHSM2_CONF="$SOFTHSM2_CONF" /usr/sbin/itl-signd --config /etc/itl-sign/itl-signd.yaml --foreground \
    >"$W/signd.log" 2>&1 &
SVC_PID=$!
wait $rp || fail "ready.py failed: $(cat "$W/notify.out")"
grep -qx 'READY=1' "$W/notify.out" || fail "no READY=1 from the installed itl-signd: $(cat "$W/notify.out")"
[ "$(stat -c '%U %a' /run/itl-sign/socket)" = "itl-sign 660" ] || fail "socket: $(stat -c '%U %a' /run/itl-sign/socket)"
mkdir "$W/out" && chown "$CLIENT" "$W/out"
printf '<device><loadInformation>P0030801SR</loadInformation></device>\n' >"$W/SEP001122334455.cnf.xml"
chmod 0644 "$W/SEP001122334455.cnf.xml"
as_client() { setpriv --reuid="$CLIENT" --regid=itl-sign --clear-groups "$@"; }
as_client /usr/bin/itl-sign --socket /run/itl-sign/socket sign "$W/SEP001122334455.cnf.xml" --out-dir "$W/out" \
    >"$W/sign.log" 2>&1 || fail "sign through the service as $CLIENT: $(cat "$W/sign.log")"
[ -s "$W/out/SEP001122334455.cnf.xml.sgn" ] || fail "no signed file: $(ls -l "$W/out")"
/usr/bin/itl-sign show "$W/out/SEP001122334455.cnf.xml.sgn" >"$W/show.log" 2>&1 || fail "show: $(cat "$W/show.log")"
grep -q '"op":"sign"' /var/log/itl-sign/audit.log || fail "no sign record in the audit log"
[ "$(stat -c %U /var/log/itl-sign/audit.log)" = itl-sign ] || fail "the audit log is not itl-sign's"
kill -TERM "$SVC_PID"
wait "$SVC_PID"
rc=$?
SVC_PID=""
[ "$rc" -eq 0 ] || fail "itl-signd stopped with $rc"
ok "the installed itl-signd as itl-sign: READY=1, $CLIENT signed a config through /run/itl-sign/socket, audited, stopped with 0"

# ---- purge
apt-get purge -y -qq itl-sign >"$W/purge.log" 2>&1 || { cat "$W/purge.log"; fail "apt-get purge itl-sign"; }
INSTALLED=""
for f in /usr/sbin/itl-signd /usr/bin/itl-sign /lib/systemd/system/itl-signd.service /etc/itl-sign/itl-signd.yaml \
    /etc/logrotate.d/itl-sign; do
    [ -e "$f" ] && fail "$f is still there after purge"
done
rm -rf /run/credentials/itl-signd.service /run/itl-sign /var/lib/itl-sign /var/log/itl-sign /etc/itl-sign
ok "apt-get purge removes the package and its conffiles ($(($(date +%s) - start)) s in all)"
