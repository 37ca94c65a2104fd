#!/bin/sh
# Install what itl-sign needs on Debian 12, or print the exact command when not root.
#   install-deps.sh          everything: build, runtime, tests, sanitizers, packaging
#   install-deps.sh --demo   only what `make demo` needs: build and runtime packages
set -eu
DEMO_PKGS="build-essential pkg-config libp11-kit-dev p11-kit libssl-dev openssl libyaml-dev
libexpat1-dev libsystemd-dev softhsm2 opensc util-linux"
PKGS="build-essential pkg-config libp11-kit-dev p11-kit libssl-dev openssl libyaml-dev libexpat1-dev check
softhsm2 libengine-pkcs11-openssl opensc clang libclang-rt-14-dev valgrind util-linux clang-format
libsystemd-dev systemd debhelper devscripts lintian
opencryptoki libnss3-tools swtpm tpm2-abrmd libtss2-tcti-tabrmd0 libtpm2-pkcs11-1
libtpm2-pkcs11-tools tpm2-tools dbus-daemon strace gnuplot-nox acl gnutls-bin tftpd-hpa tftp-hpa"

# tpm2-pkcs11 registers itself with p11-kit, so every program on the p11-kit proxy would try to
# reach a TPM when it starts (stderr noise; retries without one). itl-sign loads it by path
# (tests/integration/test_token_tpm.sh): keep it out of the proxy unless the admin configured it.
quiet_tpm2_module() {
    [ -f /usr/share/p11-kit/modules/tpm2_pkcs11.module ] || return 0
    [ ! -e /etc/pkcs11/modules/tpm2_pkcs11.module ] || return 0
    [ "$(id -u)" -eq 0 ] || return 0
    mkdir -p /etc/pkcs11/modules
    printf '# itl-sign install-deps.sh: loaded by path only\nmodule: libtpm2_pkcs11.so\nenable-in: itl-sign-none\n' \
        >/etc/pkcs11/modules/tpm2_pkcs11.module
}

[ "${1:-}" = "--demo" ] && PKGS=$DEMO_PKGS

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { quiet_tpm2_module; exit 0; }

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
quiet_tpm2_module
