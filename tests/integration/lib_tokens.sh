# shellcheck shell=bash
# What every token suite runs (sourced after lib.sh by tests/integration/test_token_*.sh):
#   suite NAME MODULE URI PIN-FILE [INIT-ARGS]   key generate / list / import, build, reset,
#                                                sign (openssl checks every signature), then
#                                                service_signs_once
#   engine_signs NAME MODULE PIN-FILE CERT URI   the OpenSSL pkcs11 engine signs with a pasted URI
#   p11tool_signs NAME MODULE PIN-FILE URI       p11tool --test-sign with a pasted URI
#   service_signs_once NAME MODULE URI PIN-FILE INIT-ARGS KEYS-DIR   itl-signd signs one file

# Under ASan: no leak check here. openCryptoki, NSS and tpm2-pkcs11 leak in back ends they
# dlclose at C_Finalize, so LSan reports them from "<unknown module>", which no suppression
# can name. Memory errors (ASan) and UBSan stay on; our own code's leaks are checked by every
# SoftHSM2 suite.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
# suite NAME MODULE URI PIN-FILE [INIT-ARGS]: everything a user does with a token.
# IMPORT_REFUSED=1: the token takes no private key from outside; key import must say so.
# EXPECT_REDUCED=1: the token refuses the full sign-only template (the retry must be reported).
suite() {
    local name=$1 module=$2 uri=$3 pin=$4 init_args=${5:-} d
    local G=(--module "$module" --token "$uri" --pin-file "$pin")
    d=$WORK/$name
    mkdir -p "$d/cfg" "$d/out"
    expect_exit 0 "$BIN" "${G[@]}" key generate --label CallManager \
        --subject "CN=cucm-pub,O=itl-sign $name" --cert-out "$d/tftp.pem"
    <<<"$OUT" grep -q "usage:    private=sign public=verify (sign-only)" ||
        die "$name: generated key not reported sign-only: $OUT $ERR"
    if [ "${EXPECT_REDUCED:-0}" = 1 ]; then
        <<<"$ERR" grep -q "refused the sign-only key template" ||
            die "$name: the token was expected to refuse the full template: $ERR"
        ok "$name: the token refused the sign-only template; generated again and switched off"
    fi
    expect_exit 0 "$BIN" "${G[@]}" key generate --label ITLRecovery \
        --subject "CN=ITLRECOVERY_cucm-pub,O=itl-sign $name" --cert-out "$d/recovery.pem"
    expect_exit 0 "$BIN" "${G[@]}" key list
    [ "$(<<<"$OUT" grep -c 'usage:    private=sign public=verify (sign-only)')" -eq 2 ] ||
        die "$name: key list does not show two sign-only keys: $OUT"
    [ "$(<<<"$OUT" grep -c "pkcs11:.*;object=.*;type=private$")" -eq 2 ] ||
        die "$name: key list does not print each key's pkcs11: URI: $OUT"
    ok "$name: key generate x2 (sign-only: private=sign public=verify), key list shows the usage and each key's pkcs11: URI"

    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/imp.key" -out "$d/imp.pem" \
        -subj "/CN=imported/O=test" -days 30 2>/dev/null || die "openssl req"
    printf 'p12-pass' >"$d/p12.pass"
    chmod 600 "$d/p12.pass"
    openssl pkcs12 -export -inkey "$d/imp.key" -in "$d/imp.pem" -out "$d/imp.p12" \
        -passout "file:$d/p12.pass" || die "openssl pkcs12"
    if [ "${IMPORT_REFUSED:-0}" = 1 ]; then
        expect_exit 2 "$BIN" "${G[@]}" key import --p12 "$d/imp.p12" --label Imported \
            --p12-pass-file "$d/p12.pass"
        <<<"$ERR" grep -q "does not accept a private key from outside" ||
            die "$name: refused import without the plain message: $ERR"
        <<<"$ERR" grep -q "itl-sign key generate" || die "$name: no way out named: $ERR"
        expect_exit 0 "$BIN" "${G[@]}" key list
        <<<"$OUT" grep -q '^Imported' && die "$name: a refused import left objects: $OUT"
        ok "$name: key import refused plainly, with the way out, nothing left behind"
    else
        expect_exit 0 "$BIN" "${G[@]}" key import --p12 "$d/imp.p12" --label Imported \
            --p12-pass-file "$d/p12.pass"
        <<<"$OUT" grep -q "usage:    private=sign public=verify (sign-only)" ||
            die "$name: imported key not sign-only: $OUT"
        ok "$name: key import of a .p12 (sign-only)"
    fi

    openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -out "$d/TVS.pem" -days 30 \
        -subj "/CN=TVS/O=test" 2>/dev/null
    expect_exit 0 "$BIN" "${G[@]}" build --sast label:CallManager --sast "$d/recovery.pem" \
        --ccm-tftp "$d/tftp.pem" --tvs "$d/TVS.pem" --timestamp 1700000000 -o "$d/ITL.tlv"
    openssl_verify "$d/ITL.tlv" "$d/tftp.pem" || die "$name: openssl rejects the built ITL"
    expect_exit 0 "$BIN" "${G[@]}" reset "$d/ITL.tlv" -o "$d/reset.tlv" --timestamp 1700000100
    openssl_verify "$d/reset.tlv" "$d/recovery.pem" || die "$name: openssl rejects the reset ITL"
    expect_exit 0 "$BIN" verify "$d/reset.tlv" --trust "$d/ITL.tlv"
    printf '<device><name>SEP001122334455</name></device>\n' >"$d/cfg/SEP001122334455.cnf.xml"
    expect_exit 0 "$BIN" "${G[@]}" sign "$d/cfg/SEP001122334455.cnf.xml" --out-dir "$d/out"
    openssl_verify "$d/out/SEP001122334455.cnf.xml.sgn" "$d/tftp.pem" ||
        die "$name: openssl rejects the signed config"
    ok "$name: build, reset, sign: every signature verified by openssl dgst -verify"
    # A module given by path without init args: the key's printed URI pasted into the OpenSSL
    # pkcs11 engine (ENGINE_PASTE=1, the default) or p11tool (P11TOOL_PASTE=1) signs (NSS needs
    # its init args, which neither can pass), and selects the key as --token.
    if [ "${module#/}" != "$module" ] && [ -z "$init_args" ]; then
        expect_exit 0 "$BIN" "${G[@]}" --json key list
        PASTE_URI=$(/usr/bin/python3 -c 'import json, sys
print({k["label"]: k for k in json.loads(sys.argv[1])}["CallManager"]["uri"]["private"])' "$OUT")
        [ "${ENGINE_PASTE:-1}" = 1 ] && engine_signs "$name" "$module" "$pin" "$d/tftp.pem" "$PASTE_URI"
        [ "${P11TOOL_PASTE:-0}" = 1 ] && p11tool_signs "$name" "$module" "$pin" "$PASTE_URI"
        expect_exit 0 "$BIN" --module "$module" --token "$PASTE_URI" --pin-file "$pin" key list
        [ "$(<<<"$OUT" grep -c '^[A-Za-z]')" -eq 1 ] && <<<"$OUT" grep -q '^CallManager$' ||
            die "$name: the printed URI as --token does not select CallManager alone: $OUT"
        ok "$name: the printed URI as --token selects that key alone"
    fi

    service_signs_once "$name" "$module" "$uri" "$pin" "$init_args" "$d"
}

# engine_signs NAME MODULE PIN-FILE CERT URI: `openssl dgst -engine pkcs11` signs with the key
# URI names (the PIN from the file via -passin, not argv); openssl verifies with CERT.
engine_signs() {
    local name=$1 module=$2 pin=$3 cert=$4 uri=$5 d=$WORK/$1-engine
    mkdir -p "$d"
    printf 'openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = p11\n[p11]\nengine_id = pkcs11\ndynamic_path = /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so\nMODULE_PATH = %s\n' \
        "$module" >"$d/openssl.cnf"
    printf 'pasted URI\n' >"$d/msg"
    OPENSSL_CONF=$d/openssl.cnf openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$uri" \
        -passin "file:$pin" -out "$d/sig" "$d/msg" </dev/null >"$d/log" 2>&1 ||
        die "$name: the pkcs11 engine cannot sign with $uri: $(tail -n 5 "$d/log")"
    openssl x509 -in "$cert" -pubkey -noout >"$d/pub"
    openssl dgst -sha256 -verify "$d/pub" -signature "$d/sig" "$d/msg" >/dev/null ||
        die "$name: openssl rejects the engine's signature with $uri"
    ok "$name: the key's printed URI pasted into openssl dgst -engine pkcs11 signs; openssl verifies"
}

# p11tool_signs NAME MODULE PIN-FILE URI: p11tool --test-sign (sign, verify with the token's public
# key) with the key URI names; the PIN from the environment (GNUTLS_PIN), not argv.
p11tool_signs() {
    local name=$1 module=$2 pin=$3 uri=$4
    GNUTLS_PIN=$(cat "$pin") p11tool --provider "$module" --login --test-sign "$uri" \
        >"$WORK/$name-p11tool.log" 2>&1 || die "$name: p11tool --test-sign $uri: $(tail -n 5 "$WORK/$name-p11tool.log")"
    grep -q "Verifying against public key in the token... ok" "$WORK/$name-p11tool.log" ||
        die "$name: p11tool --test-sign did not verify: $(cat "$WORK/$name-p11tool.log")"
    ok "$name: the key's printed URI pasted into p11tool --test-sign signs and verifies"
}

# service_signs_once NAME MODULE URI PIN-FILE INIT-ARGS KEYS-DIR: itl-signd on this token signs
# one config file (KEYS-DIR: where suite left tftp.pem and cfg/). TFTP_LABEL: the TFTP key's label
# (default CallManager).
service_signs_once() {
    local name=$1 module=$2 uri=$3 pin=$4 init_args=$5 keys=$6 d=$WORK/$1-svc pid i
    mkdir -p "$d/run" "$d/state" "$d/log" "$d/out"
    {
        echo "node: { name: cucm-pub, role: publisher }"
        echo "token:"
        echo "  module: $module"
        echo "  uri: \"$uri\""
        echo "  pin-file: $pin"
        echo "  pool-size: 2"
        [ -z "$init_args" ] || echo "  init-args: \"$init_args\""
        echo "keys:"
        echo "  recovery: { label: ITLRecovery }"
        echo "  tftp: { label: ${TFTP_LABEL:-CallManager} }"
        echo "policy: { backup: \"off\" }"
        echo "socket: { path: $d/run/socket, mode: \"0660\", timeout: 5s }"
        echo "state-dir: $d/state"
        echo "audit-log: $d/log/audit.log"
        echo "access:"
        echo "  - { user: root, allow: [sign, status] }"
    } >"$d/signd.yaml"
    "$DAEMON" --config "$d/signd.yaml" --foreground >"$d/signd.log" 2>&1 &
    pid=$!
    cleanup_hooks+=("kill $pid 2>/dev/null")
    for i in $(seq 1 300); do
        [ -S "$d/run/socket" ] && break
        kill -0 "$pid" 2>/dev/null || die "$name: itl-signd exited at startup: $(tail -n 5 "$d/signd.log")"
        sleep 0.1
    done
    [ -S "$d/run/socket" ] || die "$name: itl-signd opened no socket in 30 s: $(tail -n 5 "$d/signd.log")"
    expect_exit 0 "$BIN" --socket "$d/run/socket" sign "$keys/cfg/SEP001122334455.cnf.xml" \
        --out-dir "$d/out"
    openssl_verify "$d/out/SEP001122334455.cnf.xml.sgn" "$keys/tftp.pem" ||
        die "$name: openssl rejects the service's signature"
    kill -TERM "$pid"
    wait "$pid" || die "$name: itl-signd did not stop cleanly: $(tail -n 5 "$d/signd.log")"
    ok "$name: itl-signd (module $module${init_args:+ with token.init-args}) signed a config file, openssl verifies it"
}

