#!/bin/bash
# PIN and password files (issue 12): one rule in the CLI, in itl-signd and in --check-config
# (pkcs11/pin.c tok_secret_open). A FIFO is refused at once instead of hanging the open; a
# symbolic link is refused; a file owned by neither root nor the reading user is refused; a mode
# with group/other access is refused. Every refusal names the file and never shows the PIN.
# `timeout` is only a deadlock guard: a hang shows up as exit 124. Runs as root (CI).
set -u
set -o pipefail
. "$(dirname "$0")/lib_service.sh"

svc_need_root "it chowns a PIN file to another uid"
GUARD=30
svc_init
svc_make_token
PIN=$(cat "$ITL_PIN_FILE")
CFG=$T/itl-signd.yaml
svc_config "$CFG" "access:
  - { user: root, allow: [status] }"

mkfifo -m 0600 "$T/fifo.pin"
ln -s "$ITL_PIN_FILE" "$T/link.pin"
cp "$ITL_PIN_FILE" "$T/other.pin" && chmod 0600 "$T/other.pin" && chown 65534 "$T/other.pin"
cp "$ITL_PIN_FILE" "$T/loose.pin" && chmod 0604 "$T/loose.pin"

# expect_refused WHAT RC OUT PATTERN: refused (not hung, not accepted), names it, no PIN
expect_refused() {
    local what=$1 rc=$2 out=$3 pattern=$4
    [ "$rc" -ne 124 ] || fail "$what hung (killed by the ${GUARD}s guard)"
    [ "$rc" -ne 0 ] || fail "$what was accepted: $out"
    [[ $out == *$pattern* ]] || fail "$what: rc $rc, '$out' (want '$pattern')"
    [[ $out != *"$PIN"* ]] || fail "$what: the PIN is in the message"
}

for kind in fifo link other loose; do
    case $kind in
    fifo) want="not a regular file" ;;
    link) want="symbolic link" ;;
    other) want="belongs to uid 65534" ;;
    loose) want="mode 0604" ;;
    esac
    file=$T/$kind.pin
    sed "s|pin-file: .*|pin-file: $file|" "$CFG" >"$T/$kind.yaml"

    rc=0
    out=$(timeout "$GUARD" "$SIGND" --config "$T/$kind.yaml" --check-config 2>&1) || rc=$?
    expect_refused "--check-config with a $kind PIN file" "$rc" "$out" "token.pin-file $file"
    [[ $out == *"$want"* ]] || fail "--check-config, $kind: '$out' (want '$want')"

    rc=0
    out=$(timeout "$GUARD" "$SIGND" --config "$T/$kind.yaml" --foreground 2>&1) || rc=$?
    expect_refused "itl-signd with a $kind PIN file" "$rc" "$out" "$file"
    [[ $out == *"$want"* ]] || fail "itl-signd, $kind: '$out' (want '$want')"
    [ "$rc" -eq 3 ] || fail "itl-signd, $kind PIN file: exit $rc (want 3: not retried by systemd)"
    [ ! -S "$T/run/socket" ] || fail "itl-signd served with a $kind PIN file"

    rc=0
    out=$(timeout "$GUARD" "$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" \
        --pin-file "$file" key list 2>&1) || rc=$?
    expect_refused "itl-sign --pin-file with a $kind file" "$rc" "$out" "$file"
    [[ $out == *"$want"* ]] || fail "itl-sign, $kind: '$out' (want '$want')"
    ok "$kind PIN file: refused by --check-config, itl-signd and itl-sign ('$want')"
done

# A .p12 password file follows the same rule (key import --p12-pass-file).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k.pem" -out "$T/c.pem" -subj /CN=ITLRecovery \
    -days 30 2>/dev/null || fail "openssl req"
printf 'p12pass' >"$T/p12.pass" && chmod 0600 "$T/p12.pass"
openssl pkcs12 -export -inkey "$T/k.pem" -in "$T/c.pem" -out "$T/r.p12" -passout file:"$T/p12.pass" ||
    fail "openssl pkcs12"
mkfifo -m 0600 "$T/p12.fifo"
rc=0
out=$(timeout "$GUARD" "$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE" \
    key import --p12 "$T/r.p12" --label ITLRecovery --p12-pass-file "$T/p12.fifo" 2>&1) || rc=$?
expect_refused "key import --p12-pass-file FIFO" "$rc" "$out" "not a regular file"
ok "key import --p12-pass-file: a FIFO is refused at once"

# And a good file still works everywhere.
out=$("$SIGND" --config "$CFG" --check-config 2>&1) || fail "--check-config with the PIN file: $out"
"$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE" key list \
    >"$T/list.log" 2>&1 || fail "key list with the PIN file: $(cat "$T/list.log")"
svc_start "$CFG"
svc_stop
[ "$SVC_RC" -eq 0 ] || fail "itl-signd with its PIN file exited $SVC_RC"
ok "a root-owned 0600 PIN file: --check-config OK, itl-sign and itl-signd log in"
