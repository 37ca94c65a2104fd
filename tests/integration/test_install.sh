#!/bin/bash
# make install / make uninstall (issue 17): the tree under DESTDIR, the installed binaries, the
# unit as systemd-analyze sees it, the example config against the unit and tmpfiles.d, and
# nothing left after uninstall.
. "$(dirname "$0")/lib.sh"

mk() { make --no-print-directory -s -C "$ITL_SRC" BUILD="$ITL_BUILD" "$@"; }

# ---- 1. a package-style install: PREFIX=/usr into DESTDIR
D=$WORK/dest
mk install DESTDIR="$D" PREFIX=/usr UNITDIR=/lib/systemd/system >"$WORK/install.log" 2>&1 ||
    die "make install failed: $(cat "$WORK/install.log")"
want=(
    usr/bin/itl-sign usr/sbin/itl-signd
    usr/share/man/man1/itl-sign.1 usr/share/man/man8/itl-signd.8
    lib/systemd/system/itl-signd.service lib/systemd/system/itl-signd.socket
    usr/lib/tmpfiles.d/itl-signd.conf usr/lib/sysusers.d/itl-signd.conf
    etc/itl-sign/itl-signd.yaml etc/logrotate.d/itl-sign
    usr/share/doc/itl-sign/README.md usr/share/doc/itl-sign/config.md
    usr/share/doc/itl-sign/itl-signd.yaml.example
    usr/share/bash-completion/completions/itl-sign
)
for f in "${want[@]}"; do
    [ -f "$D/$f" ] || die "make install did not install /$f"
done
(cd "$D" && find . -type f | sed 's|^\./||' | sort) >"$WORK/tree"
extra=$(printf '%s\n' "${want[@]}" | sort | comm -13 - "$WORK/tree" | grep -v '^usr/share/doc/itl-sign/' || true)
[ -z "$extra" ] || die "make install put unexpected files: $extra"
[ "$(stat -c %a "$D/usr/sbin/itl-signd")" = 755 ] || die "itl-signd is not mode 0755"
comp=$D/usr/share/bash-completion/completions/itl-sign
cmp -s "$comp" "$ITL_SRC/tools/itl-sign.bash-completion" || die "the installed completion differs"
[ "$(stat -c %a "$comp")" = 644 ] || die "the bash completion is not 0644"
bash -n "$comp" || die "the installed bash completion is not valid bash"
[ "$(stat -c %a "$D/lib/systemd/system/itl-signd.service")" = 644 ] || die "the unit is not 0644"
grep -q '^ExecStart=/usr/sbin/itl-signd --config /etc/itl-sign/itl-signd.yaml --foreground$' \
    "$D/lib/systemd/system/itl-signd.service" || die "the installed unit does not run /usr/sbin/itl-signd"
cmp -s "$ITL_SRC/etc/itl-signd.yaml.example" "$D/etc/itl-sign/itl-signd.yaml" ||
    die "the installed config is not the example"
ok "make install DESTDIR PREFIX=/usr: ${#want[@]} files where they belong ($(wc -l <"$WORK/tree") in all)"

# The installed binaries run.
expect_exit 0 "$D/usr/bin/itl-sign" --version
<<<"$OUT" grep -q '^itl-sign [0-9]' || die "itl-sign --version printed: $OUT"
expect_exit 0 "$D/usr/sbin/itl-signd" --version
<<<"$OUT" grep -q '^itl-signd [0-9]' || die "itl-signd --version printed: $OUT"
ok "the installed itl-sign and itl-signd answer --version"

# The installed itl-signd checks the installed config, pointed at a throwaway token and this
# test's directories (the unit's user and directories need a system: tests/package/test_deb.sh).
# Without its run-as line: as root, --check-config would check this token and these dirs as
# itl-sign (test_check_user.sh tests that; test_deb.sh runs the check as itl-sign).
new_token itl-install
mkdir -m 0750 "$WORK/run" "$WORK/state" "$WORK/log"
sed -e "s|^  module: .*|  module: $ITL_MODULE|" -e "s|^  uri: .*|  uri: \"$ITL_TOKEN_URI\"|" \
    -e "s|^  pin-file: .*|  pin-file: $ITL_PIN_FILE|" -e "s|^  path: /run/itl-sign/socket|  path: $WORK/run/socket|" \
    -e '/^  owner: /d' -e '/^  group: /d' -e "s|^state-dir: .*|state-dir: $WORK/state|" \
    -e "s|^audit-log: .*|audit-log: $WORK/log/audit.log|" -e '/^run-as: /d' \
    "$D/etc/itl-sign/itl-signd.yaml" >"$WORK/check.yaml"
expect_exit 0 "$D/usr/sbin/itl-signd" --config "$WORK/check.yaml" --check-config
[ "$OUT" = "config OK" ] || die "--check-config printed: $OUT"
chmod 0644 "$ITL_PIN_FILE"
expect_exit 1 "$D/usr/sbin/itl-signd" --config "$WORK/check.yaml" --check-config
[[ $ERR == *"$ITL_PIN_FILE has mode 0644"* ]] || die "--check-config on a readable PIN file said: $ERR"
chmod 0600 "$ITL_PIN_FILE"
ok "the installed itl-signd --check-config passes the installed config (and refuses a readable PIN file)"

# An admin's changed config survives install and uninstall.
echo "# changed" >>"$D/etc/itl-sign/itl-signd.yaml"
mk install DESTDIR="$D" PREFIX=/usr UNITDIR=/lib/systemd/system >/dev/null 2>&1 || die "second make install"
tail -n 1 "$D/etc/itl-sign/itl-signd.yaml" | grep -q '^# changed$' || die "make install overwrote a changed config"
mk uninstall DESTDIR="$D" PREFIX=/usr UNITDIR=/lib/systemd/system >"$WORK/uninstall.log" 2>&1 ||
    die "make uninstall failed: $(cat "$WORK/uninstall.log")"
grep -q "kept $D/etc/itl-sign/itl-signd.yaml" "$WORK/uninstall.log" || die "uninstall did not say it kept the config"
left=$(cd "$D" && find . -type f -o -type l | sed 's|^\./||')
[ "$left" = etc/itl-sign/itl-signd.yaml ] || die "after uninstall, left: $left"
rm "$D/etc/itl-sign/itl-signd.yaml"
# Unchanged: uninstall removes it too, and our own directories.
mk install DESTDIR="$D" PREFIX=/usr UNITDIR=/lib/systemd/system >/dev/null 2>&1 || die "third make install"
mk uninstall DESTDIR="$D" PREFIX=/usr UNITDIR=/lib/systemd/system >/dev/null 2>&1 || die "second make uninstall"
left=$(cd "$D" && find . -type f -o -type l)
[ -z "$left" ] || die "after uninstall, left: $left"
[ ! -e "$D/usr/share/doc/itl-sign" ] && [ ! -e "$D/etc/itl-sign" ] || die "uninstall left our directories"
ok "make uninstall removes every file (a changed config stays, and it says so)"

# ---- 2. the unit as systemd reads it: installed with PREFIX inside the work dir, so its
# ExecStart= names a binary that exists here (systemd is not PID 1 on this machine).
P=$WORK/prefix
mk install PREFIX="$P/usr" SYSCONFDIR="$P/etc" >/dev/null 2>&1 || die "make install PREFIX=$P/usr"
unit=$P/usr/lib/systemd/system/itl-signd.service
grep -q "^ExecStart=$P/usr/sbin/itl-signd --config $P/etc/itl-sign/itl-signd.yaml --foreground\$" "$unit" ||
    die "the unit was not given the installed paths: $(grep ^ExecStart= "$unit")"
MANPATH=$P/usr/share/man systemd-analyze verify "$unit" "$P/usr/lib/systemd/system/itl-signd.socket" \
    >"$WORK/verify.log" 2>&1 || die "systemd-analyze verify: $(cat "$WORK/verify.log")"
[ ! -s "$WORK/verify.log" ] || die "systemd-analyze verify complained: $(cat "$WORK/verify.log")"
# The check can fail: a unit whose daemon is missing does not verify.
sed "s|$P/usr/sbin/itl-signd|$P/usr/sbin/no-such-daemon|" "$unit" >"$WORK/itl-signd.service"
MANPATH=$P/usr/share/man systemd-analyze verify "$WORK/itl-signd.service" >/dev/null 2>&1 &&
    die "systemd-analyze verify passed a unit without its daemon"
ok "systemd-analyze verify passes the installed units (and fails one without its daemon)"
mk uninstall PREFIX="$P/usr" SYSCONFDIR="$P/etc" >/dev/null 2>&1 || die "make uninstall PREFIX=$P/usr"

# ---- 3. the example config, the unit and tmpfiles.d agree
svc=$ITL_SRC/signer/itl-signd.service cfg=$ITL_SRC/etc/itl-signd.yaml.example tmpf=$ITL_SRC/signer/tmpfiles.conf
unit_val() { sed -n "s/^$1=//p" "$svc"; }
cfg_val() { sed -n "s/^ *$1: *//p" "$cfg" | head -n 1; }
grep -q '^Type=notify$' "$svc" || die "the unit is not Type=notify"
[ "$(unit_val User)" = itl-sign ] || die "the unit's User= is not itl-sign"
grep -q '^u *itl-sign ' "$ITL_SRC/signer/sysusers.conf" || die "sysusers.conf does not create itl-sign"
cred=$(unit_val LoadCredential)           # pin:/etc/itl-sign/pin
[ "$(cfg_val pin-file)" = "/run/credentials/itl-signd.service/${cred%%:*}" ] ||
    die "token.pin-file $(cfg_val pin-file) is not the unit's credential ${cred%%:*}"
[ "$(cfg_val state-dir)" = "/var/lib/$(unit_val StateDirectory)" ] || die "state-dir is not the unit's StateDirectory="
[ "$(dirname "$(cfg_val audit-log)")" = "/var/log/$(unit_val LogsDirectory)" ] || die "audit-log is not in the unit's LogsDirectory="
sock=$(sed -n '/^socket:/,/^[a-z]/s/^  path: //p' "$cfg")
[ "$(dirname "$sock")" = "/run/$(unit_val RuntimeDirectory)" ] || die "socket.path $sock is not in the unit's RuntimeDirectory="
grep -q "^ListenStream=$sock\$" "$ITL_SRC/signer/itl-signd.socket" || die "itl-signd.socket does not listen on $sock"
# run-as, if present, is the unit's user: a no-op under User=, the right drop when root starts it.
if grep -q '^run-as:' "$cfg"; then
    grep -Eq "^run-as: \{ user: $(unit_val User), group: $(unit_val Group) \}" "$cfg" ||
        die "the example's run-as is not the unit's User=/Group=: $(grep '^run-as:' "$cfg")"
fi
for d in "/run/$(unit_val RuntimeDirectory)" "/var/lib/$(unit_val StateDirectory)" "/var/log/$(unit_val LogsDirectory)"; do
    grep -Eq "^d +$d +0750 +itl-sign +itl-sign" "$tmpf" || die "tmpfiles.conf does not make $d 0750 itl-sign"
done
for p in /run/itl-sign /var/lib/itl-sign /var/log/itl-sign; do
    grep -q "^$p\$" <(unit_val ReadWritePaths | tr ' ' '\n') || die "ReadWritePaths= lacks $p"
done
# The exit codes that must not restart: the daemon's non-retryable ones (itl-signd.c, itl-signd.8).
[ "$(unit_val RestartPreventExitStatus)" = "1 2 3" ] || die "RestartPreventExitStatus= is not 1 2 3"
grep -q 'SIGND_EXIT_PIN = 3' "$ITL_SRC/signer/itl-signd.c" || die "itl-signd's PIN exit code is no longer 3"
ok "the example config, the unit, itl-signd.socket, sysusers and tmpfiles name the same user, credential and directories"
