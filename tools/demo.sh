#!/bin/bash
# make demo: the whole job on a throwaway SoftHSM2 token, in demo-out/.
#   keys on the token (recovery imported from a .p12, the way CUCM's ITLRecovery.p12 migrates;
#   TFTP generated on the token) -> an ITL -> show -> reset with the recovery key -> show ->
#   would a phone accept it? -> a signed config -> an encrypted config.
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

step "Done. Files in $out:"
ls -l "$out" "$out/enc"
