#!/bin/sh
# make-token.sh DIR [LABEL]: a throwaway SoftHSM2 token in DIR.
#
# Writes DIR/softhsm2.conf (private SOFTHSM2_CONF), DIR/tokens/, DIR/user.pin and DIR/so.pin
# (mode 0600, random, no newline) and prints the lines to eval:
#   SOFTHSM2_CONF=DIR/softhsm2.conf; ITL_MODULE=...; ITL_TOKEN_URI=pkcs11:token=LABEL
# The token is found by label afterwards, never by slot number (SoftHSM2 renumbers slots).
set -eu
dir=${1:?usage: make-token.sh DIR [LABEL]}
label=${2:-itl-sign-test}
here=$(cd "$(dirname "$0")" && pwd)

module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
         /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so; do
    [ -f "$m" ] && module=$m && break
done
[ -n "$module" ] || { echo "make-token.sh: libsofthsm2.so not found (apt-get install softhsm2)" >&2; exit 1; }

umask 077
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.in" > "$dir/softhsm2.conf"
# Random PINs: a test that leaks one into a log is caught by searching for it.
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$dir/user.pin"
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > "$dir/so.pin"
chmod 600 "$dir/user.pin" "$dir/so.pin"

# The PINs go through the environment of pkcs11-tool (env:VAR), never through argv, where any
# local user could read them in /proc/PID/cmdline.
export SOFTHSM2_CONF="$dir/softhsm2.conf"
ITL_SO_PIN=$(cat "$dir/so.pin") ITL_USER_PIN=$(cat "$dir/user.pin")
export ITL_SO_PIN ITL_USER_PIN
pkcs11-tool --module "$module" --slot-index 0 --init-token --label "$label" \
    --so-pin env:ITL_SO_PIN >/dev/null 2>"$dir/init.log" ||
    { cat "$dir/init.log" >&2; exit 1; }
pkcs11-tool --module "$module" --token-label "$label" --login --login-type so \
    --so-pin env:ITL_SO_PIN --init-pin --new-pin env:ITL_USER_PIN >/dev/null 2>"$dir/init.log" ||
    { cat "$dir/init.log" >&2; exit 1; }
rm -f "$dir/init.log"
unset ITL_SO_PIN ITL_USER_PIN

echo "SOFTHSM2_CONF=$dir/softhsm2.conf; export SOFTHSM2_CONF"
echo "ITL_MODULE=$module"
echo "ITL_TOKEN_URI=pkcs11:token=$label"
echo "ITL_PIN_FILE=$dir/user.pin"
