# Shared helpers of the integration tests (bash). Source it first.
#   ok MSG          a passing check (printed as "ok: MSG")
#   die MSG         fail the test
#   expect_exit N CMD...   run CMD, require exit status N; its stderr is in $ERR, stdout in $OUT
#   new_token LABEL        a throwaway SoftHSM2 token: sets SOFTHSM2_CONF, ITL_MODULE, ITL_TOKEN_URI,
#                          ITL_PIN_FILE and the array TOK=(--module .. --token .. --pin-file ..)
#   signed_bytes FILE OUT  the bytes a trust file's signature covers, computed here independently
#   openssl_verify FILE CERT [sha1|sha256|sha512]   verify FILE's signature with the openssl CLI
set -u
set -o pipefail
ITL_SRC=${ITL_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ITL_BUILD=${ITL_BUILD:-$ITL_SRC/build}
export ITL_SRC ITL_BUILD # the tests' Python helpers import tests/integration/der.py
export PYTHONDONTWRITEBYTECODE=1 # ... and leave no __pycache__ in the tree
BIN=$ITL_BUILD/itl-sign
DAEMON=$ITL_BUILD/itl-signd
WORK=$(mktemp -d "${TMPDIR:-/tmp}/itl-it.XXXXXX")
cleanup_hooks=()
cleanup() {
    for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok: $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

expect_exit() {
    local want=$1; shift
    local rc=0
    OUT=$("$@" 2>"$WORK/.stderr") || rc=$?
    ERR=$(cat "$WORK/.stderr")
    [ "$rc" -eq "$want" ] || die "expected exit $want, got $rc from: $* (stderr: $ERR)"
}

new_token() {
    local dir
    dir=$(mktemp -d "$WORK/token.XXXXXX")
    eval "$("$ITL_SRC/softhsm-conf/make-token.sh" "$dir" "$1")"
    TOK=(--module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")
}

# The header is a flat run of TLVs up to the SIGNATURE (tag 12); containers (3, 7, 9) are
# stepped over whole, so the walk never needs to know what is inside them.
signed_bytes() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
b = open(sys.argv[1], 'rb').read()
pos = 0
while True:
    tag = b[pos]
    n = int.from_bytes(b[pos + 1:pos + 3], 'big')
    if tag == 12:
        break
    pos += 3 + n
open(sys.argv[2], 'wb').write(b[:pos] + b[pos + 3 + n:])
open(sys.argv[2] + '.sig', 'wb').write(b[pos + 3:pos + 3 + n])
PY
}

openssl_verify() {
    local file=$1 cert=$2 md=${3:-sha1}
    signed_bytes "$file" "$WORK/.signed"
    openssl x509 -in "$cert" -pubkey -noout > "$WORK/.pub.pem"
    openssl dgst -"$md" -verify "$WORK/.pub.pem" -signature "$WORK/.signed.sig" "$WORK/.signed" >/dev/null
}
