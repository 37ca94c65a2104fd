#!/bin/sh
# Install what itl-sign needs on Debian 12, or print the exact command when not root.
set -eu
PKGS="build-essential pkg-config libp11-kit-dev p11-kit libssl-dev openssl libyaml-dev check
softhsm2 libengine-pkcs11-openssl opensc clang libclang-rt-14-dev valgrind util-linux clang-format
strace"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "itl-sign: missing Debian packages:$missing" >&2
    echo "run as root:  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
