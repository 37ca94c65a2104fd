#!/bin/bash
# The PIN as a systemd credential (issue 17): LoadCredential= with User= makes a file owned by
# root, mode 0400, with an ACL entry user:<service user>:r-- (stat shows 0440). That file is
# accepted (pkcs11/pin.c: one named reader, nothing for the group class or others), by the
# service user and by root; a PIN file with any other group or other access, or a wider ACL,
# is still refused, naming the file. Files under /dev/shm (tmpfs has ACLs); setfacl from `acl`.
# The PIN is proved read by a login (key list). Runs as root (setpriv, chown).
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it makes files for another uid and switches to it"
command -v setfacl >/dev/null || fail "setfacl missing (apt-get install acl; tools/install-deps.sh)"
svc_init
svc_make_token
svc_test_user
PIN=$(cat "$ITL_PIN_FILE")
UGID=$(id -g "$TEST_USER")
# The test user logs in to the token itself: give it the token's files.
chown -R "$TEST_USER" "$T/token"
C=$(mktemp -d /dev/shm/itl-cred.XXXXXX)
chmod 0755 "$C"
trap 'rm -rf "$C"; svc_cleanup' EXIT

# mkpin NAME MODE [setfacl ARGS]: a root-owned copy of the PIN.
mkpin() {
    local f=$C/$1 mode=$2
    shift 2
    install -m "$mode" -o root -g root "$ITL_PIN_FILE" "$f"
    [ $# -eq 0 ] || setfacl "$@" "$f" || fail "setfacl $* $f"
}
as_user() { setpriv --reuid="$TEST_USER" --regid="$UGID" --clear-groups "$@"; }
key_list() {
    "$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$1" key list
}

# ---- the credential as systemd makes it ----
mkpin cred 0400 -m "u:$TEST_USER:r"
[ "$(stat -c %a "$C/cred")" = 440 ] || fail "setfacl did not make the mode 0440 ($(stat -c %a "$C/cred"))"
out=$(as_user env SOFTHSM2_CONF="$SOFTHSM2_CONF" "$CLI" --module "$ITL_MODULE" \
    --token "$ITL_TOKEN_URI" --pin-file "$C/cred" key list 2>&1) ||
    fail "$TEST_USER cannot log in with the credential: $out"
out=$(key_list "$C/cred" 2>&1) || fail "root cannot log in with the credential: $out"
# itl-signd --check-config as the service user, as ExecStartPre runs it under User=.
mkdir -p "$T/svc" && chown "$TEST_USER:$UGID" "$T/svc" && chmod 0750 "$T/svc"
cat >"$T/svc/itl-signd.yaml" <<EOF
token: { module: $ITL_MODULE, uri: "$ITL_TOKEN_URI", pin-file: $C/cred }
socket: { path: $T/svc/socket }
state-dir: $T/svc/state
audit-log: $T/svc/audit.log
EOF
chmod 0644 "$T/svc/itl-signd.yaml"
out=$(as_user "$SIGND" --config "$T/svc/itl-signd.yaml" --check-config 2>&1) ||
    fail "--check-config as $TEST_USER refused the credential: $out"
ok "a credential as LoadCredential= makes it (root's, 0400 + user:$TEST_USER:r--, shown 0440): $TEST_USER and root log in with it, --check-config passes"

# ---- still refused ----
# check NAME WANT: refused for root and for the test user, naming the file and WANT, no PIN
check_refused() {
    local name=$1 want=$2 rc out who
    for who in root user; do
        rc=0
        if [ "$who" = root ]; then
            out=$(key_list "$C/$name" 2>&1) || rc=$?
        else
            out=$(as_user env SOFTHSM2_CONF="$SOFTHSM2_CONF" "$CLI" --module "$ITL_MODULE" \
                --token "$ITL_TOKEN_URI" --pin-file "$C/$name" key list 2>&1) || rc=$?
        fi
        [ "$rc" -ne 0 ] || fail "$name was accepted ($who)"
        [[ $out == *"$C/$name"*"$want"* ]] || fail "$name ($who): '$out' (want '$want')"
        [[ $out != *"$PIN"* ]] || fail "$name ($who): the PIN is in the message"
    done
}
mkpin wide-group 0400 -m "u:$TEST_USER:r,g:$UGID:r"
check_refused wide-group "an ACL that lets more than one user (or a group) read it"
mkpin two-users 0400 -m "u:$TEST_USER:r,u:nobody:r"
check_refused two-users "an ACL that lets more than one user"
mkpin writer 0400 -m "u:$TEST_USER:rw"
check_refused writer "or someone change it"
mkpin owning-group 0440 -m "u:$TEST_USER:r"
chgrp "$UGID" "$C/owning-group"
check_refused owning-group "ACL"
install -m 0444 -o root -g root "$ITL_PIN_FILE" "$C/world"
setfacl -m "u:$TEST_USER:r" "$C/world"
check_refused world "mode 0444"
install -m 0440 -o root -g "$UGID" "$ITL_PIN_FILE" "$C/group"
check_refused group "mode 0440: other users could read or change it"
ok "refused with the file named and the PIN never shown: an ACL granting a group, two users or write, the owning group's read, others' read, a plain 0440 group file"
