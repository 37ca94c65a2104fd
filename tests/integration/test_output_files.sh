#!/bin/bash
# Outputs never have a partial file under any name (issue 12): the content is written to an
# unnamed file (O_TMPFILE) and only named once complete and synced.
#   - RLIMIT_FSIZE (ulimit -f) below the output's size: exit 6, the old output untouched, no
#     partial file and no temporary in the output directory (the process must not die of
#     SIGXFSZ either);
#   - SIGKILL at random points of batch signs, over fresh and existing outputs: every file in
#     the output directory, hidden temporaries included, is a complete signed file, and each
#     output is byte for byte the old one or the new one.
# CI: 40 kill trials; STRESS=1: 200.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
N_KILL=40
[ "${STRESS:-0}" = 1 ] && N_KILL=200
new_token itl-output-files
"$BIN" "${TOK[@]}" key generate --label CallManager --subject "CN=cucm-pub,O=itl-sign-test" \
    --cert-out "$WORK/tftp.pem" >"$WORK/gen.log" 2>&1 || die "key generate: $(cat "$WORK/gen.log")"

# ---- RLIMIT_FSIZE: a 3 MB config, a 1 MiB file size limit ----
mkdir -p "$WORK/in" "$WORK/out"
"$PY" -c 'import sys; sys.stdout.write("<device>" + "x" * (3 << 20) + "</device>\n")' \
    >"$WORK/in/SEPBIG000000000.cnf.xml"
printf '<device>old</device>\n' >"$WORK/in/old.cnf.xml"
"$BIN" "${TOK[@]}" sign "$WORK/in/old.cnf.xml" >/dev/null || die "sign the old output"
cp "$WORK/in/old.cnf.xml.sgn" "$WORK/out/SEPBIG000000000.cnf.xml.sgn"
cp "$WORK/out/SEPBIG000000000.cnf.xml.sgn" "$WORK/old.sgn"
for target in existing fresh; do
    [ "$target" = fresh ] && rm -f "$WORK/out/SEPBIG000000000.cnf.xml.sgn"
    rc=0
    (ulimit -f 1024 && exec "$BIN" "${TOK[@]}" sign "$WORK/in/SEPBIG000000000.cnf.xml" \
        --out-dir "$WORK/out") >/dev/null 2>"$WORK/fsize.err" || rc=$?
    [ "$rc" -eq 6 ] || die "RLIMIT_FSIZE ($target output): exit $rc, want 6: $(cat "$WORK/fsize.err")"
    grep -q "File too large" "$WORK/fsize.err" || die "the error does not say why: $(cat "$WORK/fsize.err")"
    left=$(ls -A "$WORK/out")
    if [ "$target" = existing ]; then
        [ "$left" = SEPBIG000000000.cnf.xml.sgn ] || die "RLIMIT_FSIZE left files behind: $left"
        cmp -s "$WORK/out/SEPBIG000000000.cnf.xml.sgn" "$WORK/old.sgn" || die "the old output changed"
    else
        [ -z "$left" ] || die "RLIMIT_FSIZE left files behind: $left"
    fi
done
ok "RLIMIT_FSIZE below the output size: exit 6, old output untouched, no partial or temporary file"
# and without the limit it is written
"$BIN" "${TOK[@]}" sign "$WORK/in/SEPBIG000000000.cnf.xml" --out-dir "$WORK/out" >/dev/null ||
    die "the big config does not sign without a limit"
[ "$(ls -A "$WORK/out")" = SEPBIG000000000.cnf.xml.sgn ] || die "stray files: $(ls -A "$WORK/out")"
"$BIN" verify "$WORK/out/SEPBIG000000000.cnf.xml.sgn" --cert "$WORK/tftp.pem" >/dev/null ||
    die "the big output does not verify"
ok "the same file signs without the limit, and only its output is in the directory"

# ---- SIGKILL at random points of batch signs ----
for f in a b c d e; do
    "$PY" -c 'import sys; sys.stdout.write("<device><name>%s</name>%s</device>\n" % (sys.argv[1], "y" * 200000))' \
        "$f" >"$WORK/in/SEP00000000000$f.cnf.xml"
done
# The outputs a trial starts from (old) and the ones it writes (new): each output found after a
# kill must be byte for byte one of the two (the batch writer stages all, then renames).
mkdir -p "$WORK/old" "$WORK/out"
"$BIN" "${TOK[@]}" sign "$WORK"/in/SEP00000000000?.cnf.xml --out-dir "$WORK/old" --timestamp 1000 \
    >/dev/null || die "old outputs"
t0=$(date +%s%N)
"$BIN" "${TOK[@]}" sign "$WORK"/in/SEP00000000000?.cnf.xml --out-dir "$WORK/out" --timestamp 2000 \
    >/dev/null || die "timing run"
RUN_MS=$((($(date +%s%N) - t0) / 1000000))
WINDOW=$((20 + RUN_MS))
TOKENS=$(dirname "$SOFTHSM2_CONF")/tokens
cp -a "$TOKENS" "$TOKENS.good"
killed=0
for i in $(seq 1 "$N_KILL"); do
    d=$WORK/kill/$i
    mkdir -p "$d"
    # Every other trial over existing outputs: the replace path (temporary link, rename).
    [ $((i % 2)) -eq 0 ] && cp "$WORK"/old/SEP00000000000?.cnf.xml.sgn "$d/"
    "$BIN" "${TOK[@]}" sign "$WORK"/in/SEP00000000000?.cnf.xml --out-dir "$d" --timestamp 2000 \
        >/dev/null 2>"$WORK/trial.err" &
    pid=$!
    ms=$((RANDOM % WINDOW))
    sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
    kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    # A run that finished (exit 0) has written every output: all five are the new ones.
    if [ "$rc" = 0 ]; then
        echo "$i" >>"$WORK/completed"
    elif [ "$rc" = 137 ]; then
        # A kill during C_Login can leave SoftHSM2's token.object half rewritten (the next
        # process finds no token): the token is put back, it is not what this test is about.
        rm -rf "$TOKENS" && cp -a "$TOKENS.good" "$TOKENS"
    else
        die "trial $i: sign exited $rc: $(cat "$WORK/trial.err")"
    fi
done
touch "$WORK/completed"
"$PY" - "$WORK/kill" "$WORK/in" "$WORK/old" "$WORK/out" "$WORK/completed" >"$WORK/check.out" 2>&1 <<'EOF' ||
import os, re, sys
root, inputs, olds, news, completed = sys.argv[1:]
completed = set(open(completed).read().split())
payload = {f: open(os.path.join(inputs, f), "rb").read() for f in os.listdir(inputs)}
def outputs(d):
    return {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d) if f.endswith(".sgn")}
old, new = outputs(olds), outputs(news)
files = temps = olds_kept = 0
for trial in os.listdir(root):
    for name in os.listdir(os.path.join(root, trial)):
        m = re.fullmatch(r"\.?(SEP00000000000[a-e]\.cnf\.xml)\.sgn(\.tmp\.\w+)?", name)
        if not m:
            raise SystemExit("trial %s: unexpected file %s" % (trial, name))
        data = open(os.path.join(root, trial, name), "rb").read()
        # A .sgn is header + the whole payload: a partial file does not end with it.
        if not data.endswith(payload[m.group(1)]) or len(data) <= len(payload[m.group(1)]):
            raise SystemExit("trial %s: %s is partial (%d bytes)" % (trial, name, len(data)))
        files += 1
        temps += bool(m.group(2))
        if m.group(2):
            continue
        final = m.group(1) + ".sgn"
        if data != new[final] and not (int(trial) % 2 == 0 and data == old[final]):
            raise SystemExit("trial %s: %s is neither the old nor the new output" % (trial, name))
        olds_kept += data != new[final]
for trial in completed:
    for name, data in new.items():
        if not name.startswith("SEP00000000000"):
            continue
        p = os.path.join(root, trial, name)
        if not os.path.exists(p) or open(p, "rb").read() != data:
            raise SystemExit("trial %s exited 0 but %s is not the new output" % (trial, name))
print("%d files complete, %d of them hidden temporaries, %d old ones kept, the rest new; %d runs "
      "finished, each with all five new outputs" % (files, temps, olds_kept, len(completed)))
EOF
    die "after SIGKILL: $(cat "$WORK/check.out")"
n=0
for f in "$WORK"/kill/*/*.sgn "$WORK"/kill/*/.*.tmp.*; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    [ $((n % 10)) -eq 1 ] || continue # a sample: the check above read every file
    "$BIN" verify "$f" --cert "$WORK/tftp.pem" >/dev/null 2>"$WORK/verify.err" ||
        die "$f does not verify: $(cat "$WORK/verify.err")"
done
ok "$N_KILL SIGKILL trials ($killed killed before exit): no partial file under any name ($(cat "$WORK/check.out"); a sample verifies)"
