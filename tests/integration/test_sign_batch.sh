#!/bin/bash
# Batch `sign` for everyday use (issue 17, "Scripting"): directories, --files-from and -0 (stdin
# too), hostile names (newlines, leading dashes), one summary line, each warning once, and a
# progress bar only on a terminal (a pty from script(1)).
. "$(dirname "$0")/lib.sh"
cd "$WORK"

new_token itl-sign-batch
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" \
    --cert-out tftp.pem >/dev/null || die "key generate CallManager"
cfg() { printf '<device><n>%s</n></device>\n' "$2" >"$1"; }

# ---- a directory: its regular files; the others skipped, each with its reason ----
mkdir -p dir/sub out
for i in $(seq -w 1 30); do cfg "dir/SEP0000000000$i.cnf.xml" "$i"; done
cfg dir/.hidden.cnf.xml hidden
cfg dir/sub/inner.cnf.xml inner
ln -s SEP000000000001.cnf.xml dir/link.cnf.xml
"$BIN" "${TOK[@]}" sign dir/SEP000000000001.cnf.xml >/dev/null || die "sign one file"
expect_exit 0 "$BIN" "${TOK[@]}" sign dir
[ "$(echo "$ERR" | tail -n 1)" = "itl-sign: 30 signed, 0 failed, 3 skipped" ] ||
    die "summary line of a directory: $ERR"
[ "$(<<<"$OUT" grep -c '^signed: dir/SEP0000000000[0-3][0-9].cnf.xml.sgn$')" -eq 30 ] ||
    die "not one line per signed file: $OUT"
for i in $(seq -w 1 30); do
    "$BIN" verify "dir/SEP0000000000$i.cnf.xml.sgn" --cert tftp.pem >/dev/null ||
        die "dir/SEP0000000000$i.cnf.xml.sgn does not verify"
done
[ ! -e dir/.hidden.cnf.xml.sgn ] && [ ! -e dir/sub/inner.cnf.xml.sgn ] && [ ! -e dir/link.cnf.xml.sgn ] ||
    die "a hidden file, a subdirectory's file or a symbolic link was signed"
expect_exit 0 "$BIN" --json "${TOK[@]}" sign dir --out-dir out
/usr/bin/python3 - <<PY "$OUT" || die "the skipped entries and their reasons: $(echo "$OUT" | head -c 400)"
import json, sys
d = json.loads(sys.argv[1])
skipped = {f["file"]: f["message"] for f in d["files"] if f["status"] == "skipped"}
# the 30 outputs of the first run are skipped now too: each is the .sgn of a file signed here
assert d["signed"] == 30 and d["skipped"] == 32 and d["failed"] == 0, {k: d[k] for k in ("signed", "skipped", "failed")}
assert all(skipped["dir/SEP0000000000%02d.cnf.xml.sgn" % i].startswith("the .sgn of another file") for i in range(1, 31)), skipped
assert skipped["dir/sub"] == "not a regular file" and skipped["dir/link.cnf.xml"] == "not a regular file", skipped
PY
ok "a directory: 30 signed, the old .sgn, the subdirectory and the symbolic link skipped with reasons, hidden files ignored"

# ---- failures: exit 8 and the summary says so ----
expect_exit 8 "$BIN" "${TOK[@]}" sign dir/SEP000000000002.cnf.xml missing.cnf.xml --out-dir out
<<<"$ERR" grep -qx "itl-sign: missing.cnf.xml: cannot open missing.cnf.xml: No such file or directory" ||
    die "the failing file is not named once: $ERR"
[ "$(echo "$ERR" | tail -n 1)" = "itl-sign: 1 signed, 1 failed, 0 skipped" ] || die "summary: $ERR"
ok "a failure: exit 8, named, and counted in the summary"

# ---- --files-from, -0, stdin, hostile names ----
mkdir hostile
nl_name=$'hostile/new\nline.cnf.xml'
cfg "$nl_name" nl
cfg hostile/-rf.cnf.xml dash
cfg "hostile/with space.cnf.xml" space
printf '%s\0' "$nl_name" hostile/-rf.cnf.xml "hostile/with space.cnf.xml" >list0
# A phone's FILENAME is printable ASCII without spaces: those two are refused, each on one line
# (the newline escaped), and the others are signed.
expect_exit 8 "$BIN" "${TOK[@]}" sign --files-from - -0 <list0
[ -f hostile/-rf.cnf.xml.sgn ] || die "-0 from stdin: the leading-dash name was not signed: $ERR"
[ ! -e "$nl_name.sgn" ] && [ ! -e "hostile/with space.cnf.xml.sgn" ] || die "a refused name was written"
[ "$(echo "$OUT")" = "signed: hostile/-rf.cnf.xml.sgn" ] || die "stdout of -0: $OUT"
<<<"$ERR" grep -qF 'itl-sign: hostile/new\nline.cnf.xml: sign: FILENAME' ||
    die "the newline is not escaped in the error: $ERR"
<<<"$ERR" grep -q "^line" && die "a newline in a name split the error line: $ERR"
<<<"$ERR" grep -q "has byte 0x20 at offset 4" || die "the space is not named: $ERR"
[ "$(echo "$ERR" | tail -n 1)" = "itl-sign: 1 signed, 2 failed, 0 skipped" ] || die "summary: $ERR"
rm hostile/*.sgn
cfg hostile/plain.cnf.xml plain
printf 'hostile/-rf.cnf.xml\n\nhostile/plain.cnf.xml\n' >list
expect_exit 0 "$BIN" "${TOK[@]}" sign --files-from list --out-dir out
[ -f out/-rf.cnf.xml.sgn ] && [ -f out/plain.cnf.xml.sgn ] || die "--files-from FILE"
[ "$(echo "$ERR" | tail -n 1)" = "itl-sign: 2 signed, 0 failed, 0 skipped" ] || die "an empty line is a name: $ERR"
( cd hostile && "$BIN" "${TOK[@]}" sign -- -rf.cnf.xml >/dev/null ) || die "sign -- -rf.cnf.xml"
[ -f hostile/-rf.cnf.xml.sgn ] || die "a leading dash after -- is a file name"
expect_exit 2 "$BIN" "${TOK[@]}" sign -0 dir/SEP000000000003.cnf.xml
<<<"$ERR" grep -q -- "-0 separates the names of --files-from" || die "-0 alone: $ERR"
expect_exit 3 "$BIN" "${TOK[@]}" sign --files-from no-such-list
ok "--files-from FILE and - with -0: a leading dash signed, a newline or a space refused by name on one line each"

# ---- each warning once: 6 files signed by an expired certificate under policy.expired: warn ----
new_token itl-sign-expired
openssl req -new -newkey rsa:2048 -nodes -keyout exp.key -subj "/CN=expired-tftp" -out exp.csr 2>/dev/null
openssl x509 -req -in exp.csr -signkey exp.key -days -1 -out exp.pem 2>/dev/null
printf 'p' >p.pass && chmod 600 p.pass
openssl pkcs12 -export -inkey exp.key -in exp.pem -out exp.p12 -passout file:p.pass
"$BIN" "${TOK[@]}" key import --p12 exp.p12 --p12-pass-file p.pass --label CallManager >/dev/null ||
    die "import the expired certificate"
cat >warn.yaml <<EOF
node: { name: cucm-pub, role: publisher }
keys:
  recovery: { label: ITLRecovery }
  tftp: { label: CallManager }
policy: { backup: "off", expired: warn }
access:
  - { user: root, allow: [sign] }
state-dir: $WORK/state
audit-log: $WORK/audit.log
EOF
mkdir -m 0700 state
mkdir warn
for i in 1 2 3 4 5 6; do cfg "warn/SEP00000000000$i.cnf.xml" "$i"; done
expect_exit 0 "$BIN" "${TOK[@]}" --config warn.yaml sign warn
[ "$(<<<"$ERR" grep -c 'warning: ')" -eq 1 ] || die "the warning is not given once: $ERR"
<<<"$ERR" grep -q "warning: the signer certificate (CallManager) expired at .* (6 files)" ||
    die "the warning does not say how many files: $ERR"
ok "each warning once: $(<<<"$ERR" grep warning:)"

# ---- the progress bar: on a terminal only ----
new_token itl-sign-progress
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=test" >/dev/null
mkdir many
for i in $(seq -w 1 40); do cfg "many/SEP0000000000$i.cnf.xml" "$i"; done
cmd=$(printf '%q ' "$BIN" "${TOK[@]}" sign many --out-dir out)
script -qec "$cmd" /dev/null >pty.out </dev/null || die "sign on a pty failed: $(cat pty.out)"
grep -q '40/40 files' pty.out || die "no progress bar on a terminal: $(cat -v pty.out | head -5)"
grep -q '\[########################################\]' pty.out || die "the bar is not full at the end"
grep -q '^signed: ' pty.out && die "per-file lines under the progress bar"
grep -q "40 signed, 0 failed, 0 skipped" pty.out || die "no summary on the terminal"
expect_exit 0 "$BIN" "${TOK[@]}" sign many --out-dir out
<<<"$ERR" grep -q 'files' && <<<"$ERR" grep -q '/40' && die "a progress bar without a terminal: $ERR"
[ "$(<<<"$OUT" grep -c '^signed: ')" -eq 40 ] || die "without a terminal, not one line per file"
ok "progress bar on a pty (40/40, full), none when stdout/stderr are not terminals"

# ---- --dry-run: the decision and the names, no C_Sign (the fault module counts), no file ----
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || die "$FAULT not built"
mkdir dry
for i in 1 2 3; do cfg "dry/SEP00000000000$i.cnf.xml" "$i"; done
FT=(--module "$FAULT" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE")
export FAULTP11_MODULE=$ITL_MODULE FAULTP11_STATS=$WORK/dry.stats
expect_exit 0 "$BIN" "${FT[@]}" sign --dry-run dry
[ "$(<<<"$OUT" grep -c '^would write: dry/SEP00000000000[1-3].cnf.xml.sgn$')" -eq 3 ] || die "dry run: $OUT"
ls dry/*.sgn 2>/dev/null && die "--dry-run wrote a file"
grep -q '^calls C_Sign' "$WORK/dry.stats" && die "--dry-run signed: $(grep C_Sign "$WORK/dry.stats")"
grep -q '^calls C_Login' "$WORK/dry.stats" || die "the dry run did not reach the token: $(cat "$WORK/dry.stats")"
expect_exit 0 "$BIN" --json "${FT[@]}" sign --dry-run dry/SEP000000000001.cnf.xml
echo "$OUT" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); f=d["files"][0]; assert d["dry_run"] and f["status"]=="would-sign" and "dry run: the policy allows" in f["message"], d' ||
    die "--dry-run --json: $OUT"
"$BIN" "${FT[@]}" sign dry/SEP000000000001.cnf.xml >/dev/null || die "a real sign"
grep -q '^calls C_Sign 1$' "$WORK/dry.stats" || die "the fault module does not count C_Sign: $(cat "$WORK/dry.stats")"
ok "--dry-run: 3 would be written, nothing written, no C_Sign (then a real sign counts 1)"
echo "all passed"
