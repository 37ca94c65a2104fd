#!/bin/bash
# reset | build | sign | encrypt in direct mode (--token) on SoftHSM2, checked with openssl(1)
# and with `itl-sign verify --trust` (issue 5).
. "$(dirname "$0")/lib.sh"
cd "$WORK"

new_token itl-sign-test
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,OU=test,O=itl-sign" \
    --cert-out tftp.pem >/dev/null || die "key generate CallManager"
"$BIN" "${TOK[@]}" key generate --label ITLRecovery \
    --subject "CN=ITLRECOVERY_cucm-pub,OU=test,O=itl-sign" --cert-out recovery.pem >/dev/null ||
    die "key generate ITLRecovery"
for n in TVS CAPF OTHER; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout $n.key -out $n.pem -days 30 \
        -subj "/CN=$n/O=test" 2>/dev/null
done
ok "token with the TFTP and recovery keys"

# ---- build, in both layouts ----
for layout in cucm certutils; do
    expect_exit 0 "$BIN" "${TOK[@]}" build --layout $layout --sast label:CallManager \
        --sast recovery.pem --ccm-tftp tftp.pem --tvs TVS.pem --capf CAPF.pem \
        --timestamp 1700000000 -o ITL-$layout.tlv
    openssl_verify ITL-$layout.tlv tftp.pem || die "openssl rejects the $layout ITL"
    expect_exit 0 "$BIN" verify ITL-$layout.tlv
done
ok "build (cucm and certutils layouts) verifies with openssl dgst -verify"
[ "$(head -c 16 ITL-certutils.tlv | od -An -tx1 | tr -d ' \n' | cut -c21-26)" = "1c0002" ] ||
    die "certutils layout lacks tag 28 after HEADERLENGTH"
ok "certutils layout carries tag 28"

# ---- reset ----
records_of() { # the bytes after HEADERLENGTH: every record
    local hl
    hl=$(od -An -tu1 -j8 -N2 "$1" | awk '{print $1*256+$2}')
    tail -c +$((hl + 1)) "$1"
}
for layout in cucm certutils; do
    expect_exit 0 "$BIN" "${TOK[@]}" reset ITL-$layout.tlv -o reset-$layout.tlv --timestamp 1700000100
    cmp <(records_of ITL-$layout.tlv) <(records_of reset-$layout.tlv) ||
        die "reset changed a record ($layout)"
    openssl_verify reset-$layout.tlv recovery.pem || die "openssl rejects the reset $layout ITL"
    "$BIN" show reset-$layout.tlv > show.txt || die "show of the reset ITL failed"
    grep -q "ITLRECOVERY_cucm-pub" <(grep -i signername show.txt) ||
        die "header signer is not the recovery certificate: $(grep -i signername show.txt)"
    expect_exit 0 "$BIN" "${TOK[@]}" reset ITL-$layout.tlv -o again-$layout.tlv --timestamp 1700000100
    cmp reset-$layout.tlv again-$layout.tlv || die "the same reset twice differs ($layout)"
done
ok "reset: records byte-identical, signer = recovery, openssl verifies, reproducible"
SOURCE_DATE_EPOCH=1700000100 "$BIN" "${TOK[@]}" reset ITL-cucm.tlv -o sde.tlv >/dev/null
cmp sde.tlv reset-cucm.tlv || die "SOURCE_DATE_EPOCH is not honoured"
ok "SOURCE_DATE_EPOCH gives the same bytes as --timestamp"

# ---- verify --trust: a phone's answer ----
expect_exit 0 "$BIN" verify reset-cucm.tlv --trust ITL-cucm.tlv
<<<"$OUT" grep -qi "record" || die "verify --trust does not say which record matched: $OUT"
expect_exit 0 "$BIN" "${TOK[@]}" build --sast label:CallManager --tvs TVS.pem -o no-recovery.tlv
expect_exit 1 "$BIN" verify reset-cucm.tlv --trust no-recovery.tlv
ok "verify --trust: reset accepted against the original, rejected without the recovery SAST"

# ---- refusals ----
expect_exit 5 "$BIN" "${TOK[@]}" reset no-recovery.tlv -o x.tlv
<<<"$ERR" grep -q "not a SAST record" || die "missing recovery record: unclear error: $ERR"
[ ! -e x.tlv ] || die "a refused reset left a file"
ok "reset refused when the recovery certificate is not a SAST of the ITL: $ERR"
expect_exit 5 "$BIN" "${TOK[@]}" build --sast OTHER.pem --tvs TVS.pem -o y.tlv
ok "build refused when the signer is not one of the --sast: $ERR"
printf 'not an ITL at all' > junk.tlv
expect_exit 3 "$BIN" "${TOK[@]}" reset junk.tlv -o x.tlv
ok "reset of a non-ITL: $ERR"
args=()
for i in $(seq 1 40); do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -out big$i.pem -days 30 \
        -subj "/CN=tvs-$i.example.com/OU=voice/O=itl-sign/L=Somewhere/ST=State/C=US" 2>/dev/null
    args+=(--tvs big$i.pem)
done
expect_exit 5 "$BIN" "${TOK[@]}" build --sast label:CallManager "${args[@]}" -o big.tlv
<<<"$ERR" grep -q "65535" || die "oversize ITL: unclear error: $ERR"
[ ! -e big.tlv ] || die "a refused build left a file"
ok "ITL over 64 KB refused: $ERR"
new_token_dir=$WORK/empty
( new_token empty-token
  expect_exit 4 "$BIN" "${TOK[@]}" reset ITL-cucm.tlv -o x.tlv
  <<<"$ERR" grep -qi "ITLRecovery" || die "token without the key: unclear error: $ERR"
  ok "token without the key: $ERR" ) || exit 1
( new_token wrong-pin
  printf 'not-the-pin' > bad.pin; chmod 600 bad.pin
  expect_exit 4 "$BIN" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file bad.pin \
      sign ITL-cucm.tlv
  <<<"$ERR" grep -q "CKR_PIN_INCORRECT" || die "wrong PIN: unclear error: $ERR"
  ok "wrong PIN: $ERR" ) || exit 1

# ---- sign: batch of 1,000, one unreadable ----
mkdir -p cfg out
for i in $(seq -w 0 999); do
    printf '<device><fullConfig>true</fullConfig><n>%s</n></device>\n' "$i" > cfg/SEP0000000$i.cnf.xml
done
chmod 000 cfg/SEP0000000500.cnf.xml
mv cfg/SEP0000000500.cnf.xml cfg/SEP0000000500.cnf.xml.unreadable
mkfifo cfg/SEP0000000500.cnf.xml # a FIFO where a file was expected: refused as an input
expect_exit 8 "$BIN" --quiet "${TOK[@]}" sign cfg/*.cnf.xml --out-dir out
<<<"$ERR" grep -q "SEP0000000500.cnf.xml" || die "the failing file is not named: $ERR"
[ "$(ls out | wc -l)" -eq 999 ] || die "expected 999 outputs, got $(ls out | wc -l)"
for f in out/SEP0000000001.cnf.xml.sgn out/SEP0000000999.cnf.xml.sgn; do
    openssl_verify "$f" tftp.pem || die "openssl rejects $f"
done
bad=0
for f in out/*.sgn; do "$BIN" verify "$f" --trust ITL-cucm.tlv >/dev/null 2>&1 || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] || die "$bad signed configs do not verify"
"$BIN" strip out/SEP0000000042.cnf.xml.sgn -o stripped.xml
cmp stripped.xml cfg/SEP0000000042.cnf.xml || die "strip does not give the original back"
ok "batch sign: 999 of 1,000 written and verified, the bad one named: $(echo "$ERR" | head -1)"
echo "figures: batch sign 1000 files, 999 ok, 1 reported"

# A .sgn given to sign is re-signed, not wrapped twice.
expect_exit 0 "$BIN" "${TOK[@]}" sign out/SEP0000000042.cnf.xml.sgn --out-dir .
"$BIN" strip SEP0000000042.cnf.xml.sgn -o restripped.xml
cmp restripped.xml cfg/SEP0000000042.cnf.xml || die "re-signing a .sgn wrapped it twice"
ok "re-signing a .sgn keeps one layer"

# ---- output failures leave nothing behind ----
expect_exit 6 "$BIN" "${TOK[@]}" sign cfg/SEP0000000001.cnf.xml cfg/SEP0000000002.cnf.xml \
    --out-dir "$WORK/no/such/dir"
<<<"$ERR" grep -q "no/such/dir" || die "missing output directory not named: $ERR"
: > notadir
expect_exit 6 "$BIN" "${TOK[@]}" sign cfg/SEP0000000001.cnf.xml --out-dir notadir
ok "output directory missing / not a directory: $(echo "$ERR" | head -1)"
mkdir full
head -c 100000 /dev/urandom | base64 > full/big.xml
( trap '' XFSZ; ulimit -f 8; "$BIN" "${TOK[@]}" sign full/big.xml --out-dir full ) 2>full.err &&
    die "sign succeeded despite RLIMIT_FSIZE"
grep -q "File too large" full.err || die "disk full: unclear error: $(cat full.err)"
ls full | grep -q '\.tmp\.' && die "a partial temp file was left: $(ls full)"
[ ! -e full/big.xml.sgn ] || die "a partial output was left"
ok "disk full (RLIMIT_FSIZE): $(head -1 full.err), nothing left behind"

# ---- encrypt ----
cat > SEP001122334455.cnf.xml <<'XML'
<device><fullConfig>true</fullConfig><loadInformation>sip88xx.14-2-1</loadInformation>
<ipAddressMode>0</ipAddressMode><capfAuthMode>0</capfAuthMode><capfList><capf><phonePort>3804</phonePort></capf></capfList></device>
XML
openssl req -x509 -newkey rsa:2048 -nodes -keyout phone.key -out phone.pem -days 30 \
    -subj "/CN=SEP001122334455" 2>/dev/null
mkdir enc
expect_exit 0 "$BIN" "${TOK[@]}" encrypt SEP001122334455.cnf.xml --phone-cert phone.pem -o enc
openssl_verify enc/SEP001122334455.cnf.xml.enc.sgn tftp.pem || die "openssl rejects the .enc.sgn"
openssl_verify enc/SEP001122334455.cnf.xml.sgn tftp.pem || die "openssl rejects the short .sgn"
"$BIN" decrypt enc/SEP001122334455.cnf.xml.enc.sgn --phone-key phone.key -o dec.xml
cmp dec.xml SEP001122334455.cnf.xml || die "decrypt does not give the plaintext back"
short=$("$BIN" strip enc/SEP001122334455.cnf.xml.sgn)
<<<"$short" grep -q "<encrConfig>true</encrConfig>" ||
    die "the short config lacks encrConfig"
want=$(openssl x509 -in phone.pem -outform DER | md5sum | cut -c1-32)
<<<"$short" grep -q "$want" || die "certHash is not the MD5 of the phone cert"
ok "encrypt: .enc.sgn + short .sgn verify, decrypt round-trips, certHash = MD5(phone cert)"
echo "all passed"
