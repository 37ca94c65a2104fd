#!/bin/bash
# Inputs read as root (issue 12): a root batch `sign` of a directory where another user planted
# a symbolic link to a root-only file must not publish that file signed. Every command opens
# its inputs through one helper: no final symbolic link (unless --follow-symlinks), regular
# files only (a FIFO neither hangs nor is read). Outputs are never wider than their input
# (its mode, narrowed by the umask). Runs as root.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "runs as root (the attack is on root's batch sign)"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
mode_of() { stat -c %a "$1"; }
umask 022
chmod 0711 "$WORK"

new_token itl-inputs-root
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=itl-sign-test" \
    --cert-out "$WORK/tftp.pem" >"$WORK/gen.log" 2>&1 || die "key generate: $(cat "$WORK/gen.log")"

# A root-only secret, and a TFTP config dir another user (nobody) can write to.
mkdir -m 0700 "$WORK/secret"
SECRET="root-only-$RANDOM$RANDOM-do-not-publish"
printf '%s\n' "$SECRET" >"$WORK/secret/shadow" && chmod 0600 "$WORK/secret/shadow"
TFTP=$WORK/tftp
mkdir -m 0777 "$TFTP" && chmod 0777 "$TFTP"
printf '<device><name>a</name></device>\n' >"$TFTP/SEP00000000000A.cnf.xml"
printf '<device><name>b</name></device>\n' >"$TFTP/SEP00000000000B.cnf.xml"
chmod 0644 "$TFTP/SEP00000000000A.cnf.xml"
chmod 0600 "$TFTP/SEP00000000000B.cnf.xml"
# The planted link: a name like the others, pointing at the secret.
as_nobody ln -s "$WORK/secret/shadow" "$TFTP/SEP00000000000C.cnf.xml" || die "nobody cannot plant the link"
[ "$(stat -c %U "$TFTP/SEP00000000000C.cnf.xml")" = nobody ] || die "the link is not nobody's"

no_secret_published() {
    if grep -rlF -- "$SECRET" "$TFTP" "$WORK/out" 2>/dev/null | grep -v "^$WORK/secret/"; then
        die "the root-only file was published, signed: $(grep -rlF -- "$SECRET" "$TFTP" "$WORK/out")"
    fi
}

# ---- the batch: the link is refused, the regular files are signed ----
mkdir -p "$WORK/out"
expect_exit 8 "$BIN" "${TOK[@]}" sign "$TFTP"/*.cnf.xml
[[ $ERR == *"SEP00000000000C.cnf.xml is a symbolic link"*"--follow-symlinks"* ]] ||
    die "the refusal does not name the link and the option: $ERR"
[ ! -e "$TFTP/SEP00000000000C.cnf.xml.sgn" ] || die "a .sgn was made from the planted link"
no_secret_published
[ -s "$TFTP/SEP00000000000A.cnf.xml.sgn" ] && [ -s "$TFTP/SEP00000000000B.cnf.xml.sgn" ] ||
    die "the regular configs were not signed"
ok "root batch sign refuses the planted link (exit 8), signs the others; the secret is nowhere: $ERR"

# ---- output modes: the input's, never wider, and the umask narrows them ----
[ "$(mode_of "$TFTP/SEP00000000000A.cnf.xml.sgn")" = 644 ] ||
    die "0644 input gave $(mode_of "$TFTP/SEP00000000000A.cnf.xml.sgn")"
[ "$(mode_of "$TFTP/SEP00000000000B.cnf.xml.sgn")" = 600 ] ||
    die "a 0600 input gave a $(mode_of "$TFTP/SEP00000000000B.cnf.xml.sgn") .sgn"
(umask 077 && "$BIN" "${TOK[@]}" sign "$TFTP/SEP00000000000A.cnf.xml" --out-dir "$WORK/out" >/dev/null) ||
    die "sign under umask 077"
[ "$(mode_of "$WORK/out/SEP00000000000A.cnf.xml.sgn")" = 600 ] ||
    die "umask 077 gave $(mode_of "$WORK/out/SEP00000000000A.cnf.xml.sgn")"
# replacing an existing wider output narrows it too
chmod 0666 "$TFTP/SEP00000000000B.cnf.xml.sgn"
"$BIN" "${TOK[@]}" sign "$TFTP/SEP00000000000B.cnf.xml" >/dev/null || die "re-sign B"
[ "$(mode_of "$TFTP/SEP00000000000B.cnf.xml.sgn")" = 600 ] || die "re-signing kept a wider output"
ok "outputs get the input's mode under the umask (0644 -> 644, 0600 -> 600, umask 077 -> 600)"

# ---- a FIFO among the inputs neither hangs nor is read; directories and devices refused ----
mkfifo "$TFTP/SEP00000000000D.cnf.xml"
expect_exit 3 timeout 60 "$BIN" "${TOK[@]}" sign "$TFTP/SEP00000000000D.cnf.xml"
[[ $ERR == *"is a FIFO, not a regular file"* ]] || die "FIFO input: $ERR"
expect_exit 3 "$BIN" show /dev/zero
[[ $ERR == *"not a regular file"* ]] || die "device input: $ERR"
rm -f "$TFTP/SEP00000000000D.cnf.xml"
ok "FIFO and device inputs are refused at once (exit 3)"

# ---- every command's inputs go through the same helper ----
ln -s "$WORK/secret/shadow" "$WORK/link.sgn"
ln -s "$TFTP/SEP00000000000A.cnf.xml.sgn" "$WORK/sgn-link.sgn"
ln -s "$WORK/tftp.pem" "$WORK/cert-link.pem"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/k.key" -out "$WORK/k.pem" -days 30 \
    -subj "/CN=k" 2>/dev/null || die "openssl req"
printf 'pw' >"$WORK/p12.pass" && chmod 600 "$WORK/p12.pass"
openssl pkcs12 -export -inkey "$WORK/k.key" -in "$WORK/k.pem" -out "$WORK/k.p12" \
    -passout "file:$WORK/p12.pass" || die "openssl pkcs12"
ln -s "$WORK/k.p12" "$WORK/p12-link.p12"
expect_exit 3 "$BIN" show "$WORK/sgn-link.sgn"
expect_exit 3 "$BIN" verify "$WORK/sgn-link.sgn" --cert "$WORK/tftp.pem"
expect_exit 3 "$BIN" verify "$TFTP/SEP00000000000A.cnf.xml.sgn" --cert "$WORK/cert-link.pem"
expect_exit 3 "$BIN" strip "$WORK/sgn-link.sgn" -o "$WORK/stripped"
expect_exit 3 "$BIN" "${TOK[@]}" reset "$WORK/link.sgn" -o "$WORK/reset.tlv"
expect_exit 3 "$BIN" "${TOK[@]}" encrypt "$WORK/link.sgn" --phone-cert "$WORK/k.pem" -o "$WORK/out"
expect_exit 3 "$BIN" "${TOK[@]}" encrypt "$TFTP/SEP00000000000A.cnf.xml" --phone-cert "$WORK/cert-link.pem" \
    -o "$WORK/out"
rc=0
"$BIN" "${TOK[@]}" build --sast "$WORK/cert-link.pem" -o "$WORK/b.tlv" >/dev/null 2>"$WORK/build.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "symbolic link" "$WORK/build.err" || die "build read a --sast PEM through a link (rc $rc)"
expect_exit 3 "$BIN" "${TOK[@]}" key import --p12 "$WORK/p12-link.p12" --p12-pass-file "$WORK/p12.pass" \
    --label Linked
[[ $ERR == *"symbolic link"* ]] || die "key import: $ERR"
[ ! -e "$WORK/stripped" ] && [ ! -e "$WORK/reset.tlv" ] && [ ! -e "$WORK/b.tlv" ] || die "an output was made from a link"
no_secret_published
ok "show, verify (file and --cert), strip, reset, encrypt (file and --phone-cert), build --sast, key import --p12 refuse links"

# ---- --follow-symlinks: the admin's own links, on purpose; the output is still no wider ----
ln -s "$TFTP/SEP00000000000B.cnf.xml" "$WORK/mine.cnf.xml"
expect_exit 0 "$BIN" "${TOK[@]}" --follow-symlinks sign "$WORK/mine.cnf.xml" --out-dir "$WORK/out"
[ "$(mode_of "$WORK/out/mine.cnf.xml.sgn")" = 600 ] || die "a followed 0600 target gave $(mode_of "$WORK/out/mine.cnf.xml.sgn")"
expect_exit 0 "$BIN" --follow-symlinks show "$WORK/sgn-link.sgn"
ok "--follow-symlinks reads through links, and the output takes the target's mode"

# ---- strip and decrypt: what they write is no wider than what they read, decrypt is private ----
"$BIN" strip "$TFTP/SEP00000000000B.cnf.xml.sgn" -o "$WORK/out/b.xml" || die "strip"
[ "$(mode_of "$WORK/out/b.xml")" = 600 ] || die "strip of a 0600 .sgn gave $(mode_of "$WORK/out/b.xml")"
"$BIN" "${TOK[@]}" encrypt "$TFTP/SEP00000000000A.cnf.xml" --phone-cert "$WORK/k.pem" -o "$WORK/out" \
    >/dev/null || die "encrypt"
"$BIN" decrypt "$WORK/out/SEP00000000000A.cnf.xml.enc.sgn" --phone-key "$WORK/k.key" -o "$WORK/out/a.plain" ||
    die "decrypt"
[ "$(mode_of "$WORK/out/a.plain")" = 600 ] || die "decrypted plaintext is $(mode_of "$WORK/out/a.plain")"
ok "strip keeps the input's mode; decrypt writes the plaintext 0600"
