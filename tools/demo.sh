#!/bin/bash
# make demo: the whole job on a throwaway SoftHSM2 token, in demo-out/.
#   keys on the token (recovery imported from a .p12, the way CUCM's ITLRecovery.p12 migrates;
#   TFTP generated on the token) -> an ITL -> show -> reset with the recovery key -> show ->
#   would a phone accept it? -> a signed config -> an encrypted config -> the same token behind
#   itl-signd on a temporary socket: a file signed through it, a denied peer, status, stop.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
bin=$PWD/$BUILD/itl-sign
out=$PWD/demo-out
rm -rf "$out"
mkdir -p "$out"
cd "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "A throwaway SoftHSM2 token"
eval "$("$OLDPWD/softhsm-conf/make-token.sh" "$out/token" itl-sign-demo)"
tok=(--module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")
echo "token: $ITL_TOKEN_URI (SOFTHSM2_CONF=$SOFTHSM2_CONF)"

step "CUCM's ITLRecovery.p12 (made here) moves into the token"
umask 077
od -An -N12 -tx1 /dev/urandom | tr -d ' \n' > p12.pass
openssl req -x509 -newkey rsa:2048 -nodes -keyout recovery.key.pem -out recovery.pem -days 1825 \
    -subj "/CN=ITLRECOVERY_cucm-pub/OU=demo/O=itl-sign/C=US" 2>/dev/null
openssl pkcs12 -export -inkey recovery.key.pem -in recovery.pem -out ITLRecovery.p12 \
    -passout file:p12.pass -name ITLRecovery
shred -u recovery.key.pem 2>/dev/null || rm -f recovery.key.pem
umask 022
run "$bin" "${tok[@]}" key import --p12 ITLRecovery.p12 --p12-pass-file p12.pass --label ITLRecovery

step "The TFTP (CallManager) key is generated on the token"
run "$bin" "${tok[@]}" key generate --label CallManager --subject "CN=cucm-pub,OU=demo,O=itl-sign,C=US" \
    --cert-out callmanager.pem
run "$bin" "${tok[@]}" key list

step "TVS and CAPF certificates (ordinary files)"
for n in TVS CAPF; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$n.key.pem" -out "$n.pem" -days 365 \
        -subj "/CN=$n-cucm-pub/OU=demo/O=itl-sign/C=US" 2>/dev/null
done
echo "TVS.pem CAPF.pem"

step "Build the ITL, signed by the TFTP key"
run "$bin" "${tok[@]}" build --sast label:CallManager --sast label:ITLRecovery \
    --ccm-tftp label:CallManager --tvs TVS.pem --capf CAPF.pem -o ITLFile.tlv
run "$bin" show ITLFile.tlv

step "utils itl reset: re-sign it with the recovery key"
run "$bin" "${tok[@]}" reset ITLFile.tlv -o ITLFile-reset.tlv
run "$bin" show ITLFile-reset.tlv

step "Would a phone holding the original ITL accept the reset one?"
run "$bin" verify ITLFile-reset.tlv --trust ITLFile.tlv

step "Sign a phone config with the TFTP key"
cat > SEP001122334455.cnf.xml <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<device>
  <fullConfig>true</fullConfig>
  <loadInformation>sip88xx.14-2-1-0001-14</loadInformation>
  <ipAddressMode>0</ipAddressMode>
  <capfAuthMode>0</capfAuthMode>
  <capfList><capf><phonePort>3804</phonePort><processNodeName>cucm-pub</processNodeName></capf></capfList>
  <devicePool><name>Default</name></devicePool>
</device>
XML
run "$bin" "${tok[@]}" sign SEP001122334455.cnf.xml
run "$bin" verify SEP001122334455.cnf.xml.sgn --trust ITLFile.tlv

step "Encrypt it for the phone (its LSC certificate)"
mkdir -p enc
openssl req -x509 -newkey rsa:2048 -nodes -keyout phone.key.pem -out phone.pem -days 365 \
    -subj "/CN=SEP001122334455/O=itl-sign demo phone" 2>/dev/null
run "$bin" "${tok[@]}" encrypt SEP001122334455.cnf.xml --phone-cert phone.pem -o enc
run "$bin" decrypt enc/SEP001122334455.cnf.xml.enc.sgn --phone-key phone.key.pem -o decrypted.cnf.xml
cmp SEP001122334455.cnf.xml decrypted.cnf.xml && echo "decrypted config is identical to the original"

step "The signing service: itl-signd on a temporary socket, owning the token"
# The socket lives in a directory every user can reach (the demo tree may be under a private
# home); the access rules, not the socket's mode, decide who may ask for what.
run_dir=$(mktemp -d /tmp/itl-demo.XXXXXX)
chmod 0755 "$run_dir"
sock=$run_dir/socket
signd_pid=""
stop_service() {
    if [ -n "$signd_pid" ] && kill -0 "$signd_pid" 2>/dev/null; then
        kill -TERM "$signd_pid"
        wait "$signd_pid" || true
    fi
    signd_pid=""
    rm -rf "$run_dir"
}
trap stop_service EXIT
me=$(id -un)
cat > itl-signd.yaml <<EOF
node: { name: cucm-pub, role: publisher }
token:
  module: $ITL_MODULE
  uri: "$ITL_TOKEN_URI"
  pin-file: $ITL_PIN_FILE
  pool-size: 2
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { backup: "off" }
access:
  - { user: $me, allow: [sign, status] }
socket: { path: $sock, mode: "0666" }
state-dir: $out/state
audit-log: $out/log/audit.log
EOF
sed -n '/^access:/,/^socket:/p' itl-signd.yaml | sed '$d'
signd=$OLDPWD/$BUILD/itl-signd
echo "\$ $signd --config itl-signd.yaml --foreground &"
"$signd" --config itl-signd.yaml --foreground 2> itl-signd.log &
signd_pid=$!
for _ in $(seq 1 300); do # a 30 s guard: it is up in well under a second
    [ -S "$sock" ] && "$bin" --socket "$sock" status >/dev/null 2>&1 && break
    kill -0 "$signd_pid" 2>/dev/null || { cat itl-signd.log; echo "itl-signd did not start" >&2; exit 1; }
    sleep 0.1
done
grep serving itl-signd.log || cat itl-signd.log

step "Sign through the service (no PIN, no token options: the service has both)"
mkdir -p svc-out
run "$bin" --socket "$sock" sign SEP001122334455.cnf.xml --out-dir svc-out
run "$bin" verify svc-out/SEP001122334455.cnf.xml.sgn --trust ITLFile.tlv

step "A peer the access rules do not allow is refused"
if [ "$(id -u)" -eq 0 ]; then
    # Another uid (nobody), with a copy of the client it can execute.
    cp "$bin" "$run_dir/itl-sign"
    echo "\$ setpriv --reuid=nobody --regid=nogroup --clear-groups itl-sign --socket $sock status"
    rc=0
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$run_dir/itl-sign" --socket "$sock" status || rc=$?
    echo "(exit $rc: no access rule names uid $(id -u nobody); the service answered 'denied' and audited it)"
else
    # Not root: no other uid to ask from. The rule for $me allows sign and status, not reset.
    echo "\$ $bin --socket $sock reset ITLFile.tlv -o svc-out/ITLFile-reset.tlv"
    rc=0
    "$bin" --socket "$sock" reset ITLFile.tlv -o svc-out/ITLFile-reset.tlv || rc=$?
    echo "(exit $rc: the rule for $me allows [sign, status], not reset; the denial is audited)"
fi
[ "$rc" -eq 5 ] || { echo "the denied request exited $rc, not 5" >&2; exit 1; }

step "itl-sign status: the service, its token, its keys, its policy"
run "$bin" --socket "$sock" status

step "Stop the service (SIGTERM: requests in progress finish, the token is logged out)"
stop_service
tail -n 1 itl-signd.log
echo "audit log ($out/log/audit.log), the last records:"
tail -n 3 "$out/log/audit.log"

step "Done. Files in $out:"
ls -l "$out" "$out/enc"
