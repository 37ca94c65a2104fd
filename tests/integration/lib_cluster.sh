# shellcheck shell=bash
# Keys and certificates of a simulated CUCM cluster for the phone tests (test_phone_sim.sh,
# test_fleet.sh). Source after lib.sh, in $WORK.
#
#   mkcert NAME SUBJECT       a self-signed RSA-2048 certificate NAME.pem and its key NAME.key
#   cluster_token VAR LABEL NAME:KEYLABEL...
#                             a throwaway SoftHSM2 token holding the keys of NAME.key under
#                             KEYLABEL (CallManager is the TFTP key, ITLRecovery the recovery
#                             key); VAR becomes an array that runs itl-sign on it:
#                             "${VAR[@]}" build ...  (each token keeps its own SOFTHSM2_CONF)
printf 'p12 pass' >"$WORK/p12.pass" && chmod 600 "$WORK/p12.pass"

mkcert() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 365 \
        -subj "$2" 2>/dev/null || die "openssl req $1"
}

cluster_token() {
    local var=$1 label=$2 spec name
    shift 2
    new_token "$label"
    for spec in "$@"; do
        name=${spec%%:*}
        openssl pkcs12 -export -inkey "$name.key" -in "$name.pem" -out "$name.p12" \
            -passout file:"$WORK/p12.pass" || die "openssl pkcs12 $name"
        expect_exit 0 "$BIN" "${TOK[@]}" key import --p12 "$name.p12" \
            --p12-pass-file "$WORK/p12.pass" --label "${spec#*:}"
    done
    eval "$var"'=(env SOFTHSM2_CONF="$SOFTHSM2_CONF" "$BIN" "${TOK[@]}")'
}
