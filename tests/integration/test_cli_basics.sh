#!/bin/bash
# Everyday command-line behaviour (issue 17, "Scripting and everyday use"):
#   - --pin is refused by itl-sign (as a global option and after a command name, as '--pin V',
#     '--pin=V' and a bare '--pin') and by itl-signd: exit 2, a message that names the options
#     that work, and the value never echoed;
#   - --version of both binaries names the itl-sign version and the OpenSSL, p11-kit and
#     libyaml versions they run with.
. "$(dirname "$0")/lib.sh"

# ---- --pin: refused, the value never printed
SECRET="Pin-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')-Qx9"
check_pin_refusal() { # WHAT: $OUT/$ERR of a refused --pin
    <<<"$ERR" grep -q 'PIN never goes on the command line' || die "$1: no refusal: $ERR"
    [[ $OUT$ERR != *"$SECRET"* ]] || die "$1 echoed the PIN: $ERR"
}
for form in "--pin $SECRET" "--pin=$SECRET"; do
    # shellcheck disable=SC2086 # split on purpose: the two words of '--pin V'
    expect_exit 2 "$BIN" $form show x.tlv
    check_pin_refusal "itl-sign $form show"
    <<<"$ERR" grep -q -- '--pin-file PATH, --pin-fd N or token.pin-file' ||
        die "the refusal does not name the options that work: $ERR"
    # shellcheck disable=SC2086
    expect_exit 2 "$BIN" sign $form x.cnf.xml
    check_pin_refusal "itl-sign sign $form"
    # shellcheck disable=SC2086
    expect_exit 2 "$BIN" key list $form
    check_pin_refusal "itl-sign key list $form"
    # shellcheck disable=SC2086
    expect_exit 2 "$DAEMON" --config /nonexistent.yaml $form
    check_pin_refusal "itl-signd $form"
    <<<"$ERR" grep -q 'token.pin-file' || die "itl-signd does not name token.pin-file: $ERR"
done
expect_exit 2 "$BIN" --pin
check_pin_refusal "itl-sign --pin (no value)"
# An abbreviation getopt finds ambiguous (--pin-file, --pin-fd, --pin): named, value not echoed.
expect_exit 2 "$BIN" "--pi=$SECRET" show x.tlv
[[ $OUT$ERR != *"$SECRET"* ]] || die "itl-sign --pi=V echoed the value: $ERR"
<<<"$ERR" grep -q "option '--pi'" || die "itl-sign --pi=V: the option is not named: $ERR"
expect_exit 2 "$BIN" show "--pi=$SECRET" x.tlv
[[ $OUT$ERR != *"$SECRET"* ]] || die "itl-sign show --pi=V echoed the value: $ERR"
expect_exit 2 "$BIN" -Z show
<<<"$ERR" grep -q "unknown option '-Z'" || die "itl-sign -Z: $ERR"
expect_exit 2 "$BIN" status --pin
check_pin_refusal "itl-sign status --pin (no value)"
# The options that do work are unchanged: --pin-file is not taken for --pin.
expect_exit 2 "$BIN" --pin-fd x show
<<<"$ERR" grep -q "not a file descriptor number" || die "--pin-fd x: $ERR"
ok "--pin is refused (exit 2) by itl-sign and itl-signd, the PIN never echoed"

# ---- --version: itl-sign and the libraries
for prog in "$BIN" "$DAEMON"; do
    expect_exit 0 "$prog" --version
    name=$(basename "$prog")
    <<<"$OUT" grep -q "^$name [0-9][0-9.]*" || die "$name --version: no own version: $OUT"
    <<<"$OUT" grep -q '^OpenSSL [0-9]\+\.[0-9]\+\.[0-9]\+' || die "$name: no OpenSSL: $OUT"
    <<<"$OUT" grep -q '^p11-kit [0-9]\+\.[0-9]\+\.[0-9]\+' || die "$name: no p11-kit: $OUT"
    <<<"$OUT" grep -q '^libyaml [0-9]\+\.[0-9]\+\.[0-9]\+' || die "$name: no libyaml: $OUT"
done
want_ssl=$(openssl version | awk '{print $2}')
<<<"$OUT" grep -q "^OpenSSL $want_ssl" || die "OpenSSL is not the one installed ($want_ssl): $OUT"
ok "--version names itl-sign, OpenSSL, p11-kit and libyaml with their versions"

# ---- bash completion: valid bash, and it offers what the commands take
COMP=$ITL_SRC/tools/itl-sign.bash-completion
bash -n "$COMP" || die "tools/itl-sign.bash-completion is not valid bash"
complete_words() { # complete_words WORD...: what completing the last word offers, one a line
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _itl_sign
             printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@"
}
offered=$(complete_words itl-sign "")
for c in show verify strip reset build sign encrypt decrypt status key unlock lock; do
    grep -qx "$c" <<<"$offered" || die "completion does not offer the command $c: $offered"
done
offered=$(complete_words itl-sign key "")
for c in import generate list export-cert attest-backup; do
    grep -qx "$c" <<<"$offered" || die "completion does not offer key $c: $offered"
done
offered=$(complete_words itl-sign --)
grep -qx -- --pin-file <<<"$offered" || die "completion does not offer --pin-file: $offered"
! grep -qx -- --pin <<<"$offered" || die "completion offers --pin"
# Every option a command's --help names is offered after that command.
for c in show verify strip reset build sign encrypt decrypt status unlock lock "key import" "key generate" \
    "key list" "key export-cert" "key attest-backup"; do
    # shellcheck disable=SC2086 # "key import" is two words
    want=$("$BIN" $c --help 2>&1 | grep -o -- '--[a-z0-9][a-z0-9-]*' | sort -u)
    # shellcheck disable=SC2086
    offered=$(complete_words itl-sign $c --)
    for o in $want; do
        grep -qx -- "$o" <<<"$offered" || die "completion of 'itl-sign $c' lacks $o"
    done
done
offered=$(complete_words itl-sign sign --digest "")
[ "$(echo $offered)" = "sha1 sha256 sha512" ] || die "--digest completes to: $offered"
ok "bash completion: valid, offers every command, key subcommand and each command's options"
