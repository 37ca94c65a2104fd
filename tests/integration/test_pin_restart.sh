#!/bin/bash
# itl-signd's exit codes decide what systemd does next (itl-signd.service, Restart=on-failure):
# a PIN the token rejected must end in a code the unit lists in RestartPreventExitStatus, or
# systemd resends the same wrong PIN every RestartSec until the token locks; a token that is not
# present yet must end in a retryable code. Runs as root or not; builds nothing.
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_init
svc_make_token
UNIT=$ITL_SRC/signer/itl-signd.service
PIN_EXIT=3
TOKEN_EXIT=4

# The codes systemd will not restart on, as the unit lists them.
prevent=$(sed -n 's/^RestartPreventExitStatus=//p' "$UNIT")
[ -n "$prevent" ] || fail "$UNIT has no RestartPreventExitStatus="
listed() { [[ " $prevent " == *" $1 "* ]]; }

# A wrong PIN: mode 0600, owned by us, just not the token's.
printf 'not-the-pin-%s' "$RANDOM" >"$T/wrong.pin" && chmod 0600 "$T/wrong.pin"
WRONG=$(cat "$T/wrong.pin")
svc_config "$T/wrong.yaml"
sed -i "s|pin-file: .*|pin-file: $T/wrong.pin|" "$T/wrong.yaml"
for mode in --foreground daemon; do
    rc=0
    args=(--config "$T/wrong.yaml")
    [ "$mode" = daemon ] || args+=(--foreground)
    out=$(timeout 30 "$SIGND" "${args[@]}" 2>&1) || rc=$?
    [ "$rc" -eq "$PIN_EXIT" ] ||
        fail "wrong PIN ($mode): exit $rc, want $PIN_EXIT (PIN rejected, not retryable): $out"
    [[ $out == *"login"* ]] && [[ $out != *"$WRONG"* ]] ||
        fail "wrong PIN ($mode): the message does not name the login, or shows the PIN: $out"
done
listed "$PIN_EXIT" ||
    fail "RestartPreventExitStatus=$prevent does not list $PIN_EXIT: systemd would resend the wrong PIN"
ok "wrong PIN: exit $PIN_EXIT in the foreground and daemonized; the unit does not restart on it ($prevent)"

# A token that is not there (yet): retryable.
svc_config "$T/absent.yaml"
sed -i 's|uri: .*|uri: "pkcs11:token=not-plugged-in"|' "$T/absent.yaml"
rc=0
out=$(timeout 30 "$SIGND" --config "$T/absent.yaml" --foreground 2>&1) || rc=$?
[ "$rc" -eq "$TOKEN_EXIT" ] || fail "token absent: exit $rc, want $TOKEN_EXIT (retryable): $out"
[[ $out == *"not-plugged-in"* ]] || fail "token absent: the message does not name the token: $out"
listed "$TOKEN_EXIT" &&
    fail "RestartPreventExitStatus=$prevent lists $TOKEN_EXIT: a token plugged in later is never picked up"
ok "token absent: exit $TOKEN_EXIT, which the unit retries"

# The right PIN still starts and stops cleanly (the codes above are not a broken start).
svc_config "$T/good.yaml"
svc_start "$T/good.yaml"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "the right PIN: exit $SVC_RC after SIGTERM"
ok "the right PIN: serves, exit 0 after SIGTERM"
