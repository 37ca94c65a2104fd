#!/bin/bash
# itl-signd --check-config run as root checks what the run-as user will need (issue 17): the
# state and audit directories, and SoftHSM2's own files (SOFTHSM2_CONF, its tokendir, the token
# files; a group the user is not in is named with the fix); each problem names the user and the
# path. After the privilege drop, a failing C_Initialize says which user could not read what.
# A throwaway user and group, made under flock /tmp/itl-system.lock and removed afterwards.
# Runs as root. It takes /tmp/itl-system.lock itself, only around useradd/groupadd/usermod/userdel
# (so the long part runs unlocked): do not wrap it in another flock of that file (it would wait).
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it creates a user and switches to it"
svc_init
svc_make_token
U=itlchk$$
G=itlchkg$$
(flock 9 && useradd --system --no-create-home --shell /usr/sbin/nologin "$U" && groupadd --system "$G") \
    9>/tmp/itl-system.lock || fail "useradd $U / groupadd $G"
remove_user() {
    (flock 9 && userdel "$U" && groupdel "$G") 9>/tmp/itl-system.lock 2>/dev/null
    svc_cleanup
}
trap remove_user EXIT

CFG=$T/itl-signd.yaml
mkdir -m 0700 "$T/state" "$T/log"
svc_config "$CFG" "run-as: { user: $U }
access:
  - { user: root, allow: [status] }"
chmod 0644 "$CFG"
conf=$SOFTHSM2_CONF
tokendir=$T/token/tokens
# As make-token.sh leaves it: root's, 0600/0700: the user can read none of it.
check() {
    rc=0
    "$SIGND" --config "$CFG" --check-config >"$T/check.out" 2>"$T/check.err" || rc=$?
}

check
[ "$rc" -eq 1 ] || fail "--check-config as root passed what $U cannot use: rc $rc: $(cat "$T/check.out" "$T/check.err")"
for want in \
    "state directory $T/state is not readable, writable and searchable (rwx) by $U (root:root 0700)" \
    "audit log directory $T/log is not readable, writable and searchable (rwx) by $U (root:root 0700)" \
    "the SoftHSM2 config (SOFTHSM2_CONF) $conf cannot be reached by $U: $T/token is not searchable by $U (root:root 0700)"; do
    grep -qF "itl-signd: $CFG: $want" "$T/check.err" || fail "missing: '$want' in: $(cat "$T/check.err")"
done
grep -qF "note: token.pin-file $ITL_PIN_FILE is not readable by $U" "$T/check.out" ||
    fail "no note about the PIN file $U cannot read: $(cat "$T/check.out")"
chmod 0711 "$T/token"
check
grep -qF "the SoftHSM2 config (SOFTHSM2_CONF) $conf is not readable by $U (root:root 0600)" "$T/check.err" ||
    fail "the unreadable SoftHSM2 config is not named: $(cat "$T/check.err")"
ok "--check-config as root: the state dir, audit dir, SoftHSM2 config (and the dir above it that $U cannot enter) named with $U, owner and mode (exit 1); the PIN file read before the drop is a note"

# ---- the token dir is group G's, and the user is not in G: the fix is named ----
chown "$U" "$T/state" "$T/log"
chgrp "$G" "$conf" && chmod 0640 "$conf"
chgrp -R "$G" "$tokendir" && chmod -R g+rwX "$tokendir"
check
[ "$rc" -eq 1 ] || fail "--check-config passed with $U outside group $G"
grep -qF "the SoftHSM2 config (SOFTHSM2_CONF) $conf is not readable by $U (root:$G 0640; group $G has that access: add $U to it, e.g. SupplementaryGroups=$G in the unit, or usermod -aG $G $U)" \
    "$T/check.err" || fail "the group fix is not named: $(cat "$T/check.err")"
ok "a SoftHSM2 config of group $G that $U is not in: the message says to add $U to $G (SupplementaryGroups=, usermod -aG)"

# ---- in the group: the config and the tokendir pass ----
(flock 9 && usermod -aG "$G" "$U") 9>/tmp/itl-system.lock || fail "usermod -aG $G $U"
check
[ "$rc" -eq 0 ] && [ "$(cat "$T/check.out" | grep -v '^note:')" = "config OK" ] ||
    fail "--check-config with everything in place: rc $rc: $(cat "$T/check.out" "$T/check.err")"
ok "with $U in $G and its dirs: config OK"

# ---- a token file the user cannot write ----
f=$(find "$tokendir" -type f | head -n 1)
[ -n "$f" ] || fail "no token file in $tokendir"
chmod g-w "$f"
check
[ "$rc" -eq 1 ] && grep -qF "SoftHSM2 token file $f is not readable and writable by $U" "$T/check.err" ||
    fail "a read-only token file: rc $rc: $(cat "$T/check.err")"
chmod g+w "$f"
ok "a token file $U cannot write is named"

# ---- after the drop: C_Initialize fails, and the message says why ----
chmod 0600 "$conf"
rc=0
out=$(timeout 60 "$SIGND" --config "$CFG" --foreground 2>&1) || rc=$?
[ "$rc" -eq 4 ] || fail "itl-signd with a SoftHSM2 config $U cannot read: exit $rc (want 4): $out"
[[ $out == *"C_Initialize"*"as user $U: the SoftHSM2 config (SOFTHSM2_CONF) $conf is not readable by $U"* ]] ||
    fail "the C_Initialize failure does not say what $U could not read: $out"
ok "after the drop to $U, C_Initialize fails (exit 4) and the message says $conf is not readable by $U"
