#!/bin/bash
# Secrets (issue 9.5). With a distinctive PIN on the token:
#   - the PIN is not in /proc/PID/cmdline or /proc/PID/environ of itl-signd, nor of itl-sign in
#     direct mode (--pin-file and --pin-fd) while they run;
#   - it is not in the stdout/stderr of any command, including wrong-PIN errors (and the wrong
#     PIN is not echoed either), nor in the daemon log, the audit log or the state file;
#   - itl-signd is non-dumpable: its own (unprivileged) user cannot read its /proc/PID/environ
#     or /proc/PID/mem nor attach a debugger, while a control process of that user can be read;
#     a crash leaves no core file where a control process does leave one;
#   - keys made (key generate) or imported (key import --p12) by itl-sign are CKA_SENSITIVE and
#     not CKA_EXTRACTABLE, as pkcs11-tool (an independent PKCS#11 client), the C helper
#     tests/hardening/p11attrs.c and `key list --json` report; C_GetAttributeValue of
#     CKA_PRIVATE_EXPONENT and CKA_PRIME_1 is refused (CKR_ATTRIBUTE_SENSITIVE).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_hardening.sh"

svc_need_root "it switches uids with setpriv"
hard_init
hard_keys
svc_test_user
USER2=$TEST_USER

# ---- a distinctive PIN: nothing else in the tests contains it ----
NEWPIN="Pin-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')-Zq7"
OLDPIN=$(cat "$ITL_PIN_FILE")
P11_OLD=$OLDPIN P11_NEW=$NEWPIN pkcs11-tool --module "$ITL_MODULE" --token-label itl-svc --login \
    --pin env:P11_OLD --change-pin --new-pin env:P11_NEW >"$T/chpin.log" 2>&1 ||
    fail "pkcs11-tool --change-pin: $(cat "$T/chpin.log")"
printf '%s' "$NEWPIN" >"$ITL_PIN_FILE"
WRONGPIN="Wrong-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')-Xy3"
printf '%s' "$WRONGPIN" >"$T/wrong.pin" && chmod 600 "$T/wrong.pin"
# Every command's output lands in $T/out/; they are all searched at the end.
mkdir -p "$T/out" "$T/work"
nout=0
run() { # run NAME CMD...: stdout and stderr kept in $T/out/NAME-N.*; the exit status in $rc
    local name=$1
    shift
    nout=$((nout + 1))
    last=$T/out/$name-$nout
    rc=0
    "$@" >"$last.stdout" 2>"$last.stderr" || rc=$?
}
run_ok() { # run_ok NAME CMD...: run, and it must succeed
    run "$@"
    [ "$rc" -eq 0 ] || fail "$1 (exit $rc): $(cat "$last.stderr")"
}
no_pin_in() { # no_pin_in WHAT FILE...: neither PIN (nor the wrong one) in these files
    local f
    for f in "${@:2}"; do
        [ -e "$f" ] || fail "$1: $f missing"
        ! grep -qaF -e "$NEWPIN" -e "$WRONGPIN" "$f" || fail "$1: a PIN appears in $f"
    done
}
no_pin_in_proc() { # no_pin_in_proc WHAT PID: /proc/PID/cmdline and environ (read as root)
    local f
    for f in cmdline environ; do
        tr '\0' '\n' <"/proc/$2/$f" >"$T/proc.$f" || fail "$1: cannot read /proc/$2/$f"
        [ -s "$T/proc.$f" ] || [ "$f" = environ ] || fail "$1: empty /proc/$2/$f"
        no_pin_in "$1 /proc/PID/$f" "$T/proc.$f"
    done
}

# ---- itl-sign, direct mode, while it runs: slowed by the fault module so /proc can be read ----
# The sign is inspected once the fault module's stats show the login: the five signatures
# (1 s each, two workers) are still ahead. Outputs are no signal: a batch publishes them
# together at the end (staged writes).
FAULT=$ITL_BUILD/tests/libfaultp11.so
[ -f "$FAULT" ] || fail "$FAULT not built"
for i in 1 2 3 4 5; do echo "<device><n>$i</n></device>" >"$T/work/SEP00000000000$i.cnf.xml"; done
printf 'C_Sign always delay 1000ms\n' >"$T/slow.control"
seen=0
for how in pin-file pin-fd; do
    rm -f "$T"/work/*.sgn "$T/stats.$how"
    if [ "$how" = pin-file ]; then
        FAULTP11_MODULE=$ITL_MODULE FAULTP11_CONTROL=$T/slow.control MARKER_ENV=visible \
            FAULTP11_STATS=$T/stats.$how \
            "$CLI" --module "$FAULT" --token "$ITL_TOKEN_URI" --pin-file "$ITL_PIN_FILE" \
            sign "$T"/work/*.cnf.xml --out-dir "$T/work" >"$T/out/slow-$how.stdout" 2>"$T/out/slow-$how.stderr" &
    else
        FAULTP11_MODULE=$ITL_MODULE FAULTP11_CONTROL=$T/slow.control MARKER_ENV=visible \
            FAULTP11_STATS=$T/stats.$how \
            "$CLI" --module "$FAULT" --token "$ITL_TOKEN_URI" --pin-fd 3 \
            sign "$T"/work/*.cnf.xml --out-dir "$T/work" 3<"$ITL_PIN_FILE" \
            >"$T/out/slow-$how.stdout" 2>"$T/out/slow-$how.stderr" &
    fi
    pid=$!
    # Logged in: five signatures (1 s each) keep it running while /proc is read. A 60 s
    # guard, not a time the host must meet.
    for _ in $(seq 1 600); do
        grep -q '^login_attempts [1-9]' "$T/stats.$how" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        hard_sleep_ms 100
    done
    kill -0 "$pid" 2>/dev/null || fail "itl-sign ($how) ended before it could be inspected"
    no_pin_in_proc "itl-sign --$how" "$pid"
    grep -q MARKER_ENV=visible "$T/proc.environ" || fail "the environ check read the wrong process"
    wait "$pid" || fail "itl-sign sign ($how): $(cat "$T/out/slow-$how.stderr")"
    seen=$((seen + 1))
done
ok "itl-sign in direct mode (--pin-file and --pin-fd), inspected while signing: the PIN is not in /proc/PID/cmdline or environ"

# ---- every command's output, and wrong PINs ----
W=$T/work
run_ok key-list "$CLI" "${TOK[@]}" key list --json
run_ok key-list-text "$CLI" "${TOK[@]}" key list
run_ok sign "$CLI" "${TOK[@]}" sign "$W/SEP000000000001.cnf.xml" --out-dir "$W"
run_ok build "$CLI" "${TOK[@]}" build --sast label:CallManager --sast label:ITLRecovery -o "$W/ITL2.tlv"
run_ok reset "$CLI" "${TOK[@]}" reset "$T/ITLFile.tlv" -o "$W/reset.tlv"
run_ok status "$CLI" "${TOK[@]}" status
run_ok show "$CLI" show "$W/reset.tlv"
run_ok verify "$CLI" verify "$W/reset.tlv" --trust "$T/ITLFile.tlv"
run_ok pin-fd "$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-fd 3 key list 3<"$ITL_PIN_FILE"
for cmd in "key list" "sign $W/SEP000000000002.cnf.xml --out-dir $W" "status"; do
    # shellcheck disable=SC2086 # the words of cmd are the arguments
    run wrong-pin "$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-file "$T/wrong.pin" $cmd
    [ "$rc" -ne 0 ] || fail "'$cmd' with a wrong PIN succeeded"
    grep -q 'PIN' "$last.stderr" || fail "'$cmd' with a wrong PIN: the error does not say so: $(cat "$last.stderr")"
done
run wrong-pin-fd "$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI" --pin-fd 3 key list 3<"$T/wrong.pin"
[ "$rc" -ne 0 ] || fail "a wrong PIN on fd 3 succeeded"
# The PIN in the token URI is refused or at least not echoed.
run pin-in-uri "$CLI" --module "$ITL_MODULE" --token "$ITL_TOKEN_URI;pin-value=$WRONGPIN" key list
no_pin_in "command output" "$T"/out/*
ok "$nout commands (key list, sign, build, reset, status, show, verify, --pin-fd, wrong PINs by file, fd and URI): neither the PIN nor the wrong PIN in any stdout or stderr; wrong-PIN errors say it is the PIN"

# ---- the service: /proc, the daemon log, the audit log, the state file ----
SOCK=$T/run/socket
svc_config "$T/svc.yaml" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }"
svc_start "$T/svc.yaml"
no_pin_in_proc "itl-signd" "$SVC_PID"
run_ok svc-sign "$CLI" --socket "$SOCK" sign "$W/SEP000000000003.cnf.xml" --out-dir "$W"
run_ok svc-reset "$CLI" --socket "$SOCK" reset "$T/ITLFile.tlv" -o "$W/reset2.tlv"
run_ok svc-status "$CLI" --socket "$SOCK" status
run svc-denied setpriv --reuid=nobody --regid=nogroup --clear-groups "$CLI" --socket "$SOCK" status
wire raw "$SOCK" garbage >/dev/null || fail "malformed frame"
# Direct mode with --config writes the same state and audit log: a key generation and an
# attestation by .p12 (the imported key is checked below).
sed -i 's/policy: { backup: "off" }/policy: { backup: "off", regen-hold: 0 }/' "$T/svc.yaml"
printf 'p12-%s' "$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" >"$T/p12.pass" && chmod 600 "$T/p12.pass"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/imp.key" -out "$T/imp.pem" -days 30 \
    -subj "/CN=ITLRECOVERY_imported/O=itl-sign-test" 2>/dev/null || fail "openssl req"
openssl pkcs12 -export -inkey "$T/imp.key" -in "$T/imp.pem" -out "$T/imp.p12" -passout "file:$T/p12.pass" ||
    fail "openssl pkcs12"
run_ok key-import "$CLI" "${TOK[@]}" --config "$T/svc.yaml" key import --p12 "$T/imp.p12" \
    --p12-pass-file "$T/p12.pass" --label Imported
run_ok key-generate "$CLI" "${TOK[@]}" --config "$T/svc.yaml" key generate --label Generated --subject "CN=generated"
sed -i 's/label: ITLRecovery/label: Imported/' "$T/svc.yaml"
run_ok attest "$CLI" "${TOK[@]}" --config "$T/svc.yaml" key attest-backup --key recovery --p12 "$T/imp.p12" \
    --p12-pass-file "$T/p12.pass"
[ -s "$T/state/state.json" ] || fail "no state file was written"
no_pin_in_proc "itl-signd after serving" "$SVC_PID"
svc_stop
# A service that cannot log in says why, without the PIN it tried.
cp "$T/wrong.pin" "$T/svc-wrong.pin"
sed "s|pin-file: .*|pin-file: $T/svc-wrong.pin|" "$T/svc.yaml" >"$T/svc-wrong.yaml"
rc=0
timeout 120 "$SIGND" --config "$T/svc-wrong.yaml" --foreground >"$T/out/signd-wrong-pin.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "itl-signd started with a wrong PIN"
[ "$rc" -ne 124 ] || fail "itl-signd with a wrong PIN neither exited nor served within 120 s"
grep -qi 'pin' "$T/out/signd-wrong-pin.log" || fail "itl-signd's wrong-PIN error: $(cat "$T/out/signd-wrong-pin.log")"
no_pin_in "service files" "$T/signd.log" "$T/log/audit.log" "$T/state/state.json" "$T"/out/*
! grep -rqaF -e "$NEWPIN" -e "$WRONGPIN" "$T/state" "$T/log" || fail "a PIN in the state dir or the log dir"
ok "itl-signd: PIN not in /proc/PID/cmdline or environ (before and after serving), nor in its log, the audit log ($(wc -l <"$T/log/audit.log") lines), the state file, or its wrong-PIN error"

# ---- non-dumpable ----
# Started as root, serving as $USER2: a process of $USER2 may read a dumpable process of its
# own (the control), but not the service.
chown -R "$USER2" "$T/token" && chmod 0755 "$T/token"
chown root "$ITL_PIN_FILE" # read as root before the drop: root's or the reader's only
svc_config "$T/drop.yaml" "access:
  - { user: root, allow: [status] }
run-as: { user: $USER2 }"
sed -i "s|$T/state|$T/state-drop|; s|$T/log/|$T/log-drop/|; s|$T/run/socket|$T/run-drop/socket|" "$T/drop.yaml"
svc_start "$T/drop.yaml"
as_user2() { setpriv --reuid="$USER2" --regid="$(id -g "$USER2")" --clear-groups "$@"; }
setpriv --reuid="$USER2" --regid="$(id -g "$USER2")" --clear-groups sleep 30 & # not as_user2: $! must be sleep
control=$!
for i in $(seq 1 600); do # setpriv has switched and exec'd (a 30 s guard)
    [ "$(stat -c %u "/proc/$control/environ" 2>/dev/null)" = "$(id -u "$USER2")" ] && break
    hard_sleep_ms 50
done
as_user2 cat "/proc/$control/environ" >/dev/null 2>&1 ||
    fail "control: $USER2 cannot read its own process's environ (the check would prove nothing)"
[ "$(stat -c %u "/proc/$SVC_PID/status")" = 0 ] || fail "/proc/PID of the service belongs to uid $(stat -c %u "/proc/$SVC_PID/status"), not root: it is dumpable"
grep -q "^Uid:.*$(id -u "$USER2")" "/proc/$SVC_PID/status" || fail "the service did not switch to $USER2"
! as_user2 cat "/proc/$SVC_PID/environ" >/dev/null 2>&1 || fail "$USER2 can read the service's environ"
! as_user2 dd if="/proc/$SVC_PID/mem" bs=1 count=1 skip=4194304 of=/dev/null 2>/dev/null ||
    fail "$USER2 can read the service's memory"
if command -v gdb >/dev/null; then
    as_user2 timeout 20 gdb -nx -batch -p "$SVC_PID" -ex 'info proc' >"$T/gdb.out" 2>&1
    grep -qiE 'not permitted|could not attach|ptrace: ' "$T/gdb.out" ||
        fail "gdb attached to the service as $USER2: $(head -5 "$T/gdb.out")"
fi
kill "$control" 2>/dev/null
wait "$control" 2>/dev/null
ok "itl-signd (serving as $USER2) is non-dumpable: /proc/PID owned by root, $USER2 cannot read its environ or memory nor attach gdb, while it can read a process of its own"

# A crash of the service writes no core file (core_pattern is a plain name here: the core of a
# dumpable process lands in its working directory; that is the control).
pattern=$(cat /proc/sys/kernel/core_pattern)
core_note="core_pattern '$pattern' is not a plain file name: checked by /proc and ptrace only"
if [[ $pattern != \|* ]] && [[ $pattern != */* ]]; then
    mkdir -p "$T/cores-control" "$T/cores-svc"
    chmod 0777 "$T/cores-control" "$T/cores-svc"
    (cd "$T/cores-control" && ulimit -c unlimited && exec sleep 30) &
    control=$!
    # The control has set its limit and become `sleep` (a 30 s guard); a core is written
    # before the parent's wait returns.
    for _ in $(seq 1 600); do
        [ "$(cat "/proc/$control/comm" 2>/dev/null)" = sleep ] && break
        hard_sleep_ms 50
    done
    kill -SEGV "$control"
    wait "$control" 2>/dev/null
    if [ -n "$(ls -A "$T/cores-control")" ]; then
        # The service itself: started as root in that directory, allowed to dump by the shell.
        svc_stop
        (cd "$T/cores-svc" && ulimit -c unlimited && exec "$SIGND" --config "$T/drop.yaml" --foreground \
            >>"$T/signd.log" 2>&1) &
        SVC_PID=$!
        # Serving (chdir'd, non-dumpable): a 60 s guard for a busy host.
        up=0
        for _ in $(seq 1 600); do wire ping "$T/run-drop/socket" >/dev/null 2>&1 && up=1 && break; hard_sleep_ms 100; done
        [ "$up" = 1 ] || fail "itl-signd (run-as $USER2, in $T/cores-svc) did not serve within 60 s"
        # A core goes to the crashing process's working directory, wherever the service chdir'd.
        cwd=$(readlink "/proc/$SVC_PID/cwd") || fail "the service's cwd"
        cores_before=$(find "$cwd" -maxdepth 1 -name 'core*' | wc -l)
        kill -SEGV "$SVC_PID"
        wait "$SVC_PID" 2>/dev/null
        SVC_PID=""
        [ -z "$(ls -A "$T/cores-svc")" ] || fail "itl-signd left a core file: $(ls "$T/cores-svc")"
        [ "$(find "$cwd" -maxdepth 1 -name 'core*' | wc -l)" -eq "$cores_before" ] ||
            fail "itl-signd left a core file in its working directory $cwd"
        core_note="SIGSEGV: a dumpable control process left a core in its directory, itl-signd none"
    else
        core_note="the control process left no core file here (container limits): checked by /proc and ptrace only"
    fi
fi
ok "core files: $core_note"

# ---- keys: sensitive, non-extractable, private parts unreadable ----
export P11PIN=$NEWPIN
pkcs11-tool --module "$ITL_MODULE" --token-label itl-svc --login --pin env:P11PIN -O >"$T/objects.txt" 2>&1 ||
    fail "pkcs11-tool -O: $(cat "$T/objects.txt")"
"$PY" - "$T/objects.txt" <<'EOF' || fail "pkcs11-tool's view of the private keys"
import re, sys
text = open(sys.argv[1]).read()
keys = {}
for block in re.split(r"\n(?=\S)", text):
    if not block.startswith("Private Key Object"):
        continue
    label = re.search(r"label:\s*(.*)", block).group(1).strip()
    access = re.search(r"Access:\s*(.*)", block).group(1)
    keys[label] = [a.strip() for a in access.split(",")]
want = {"CallManager", "ITLRecovery", "Generated", "Imported"}
if not want <= set(keys):
    raise SystemExit("private keys found: %s, want %s" % (sorted(keys), sorted(want)))
for label, access in keys.items():
    if "sensitive" not in access:
        raise SystemExit("%s is not sensitive: Access: %s" % (label, ", ".join(access)))
    if "extractable" in access:
        raise SystemExit("%s is extractable: %s" % (label, ", ".join(access)))
    if label != "Imported" and not {"always sensitive", "never extractable", "local"} <= set(access):
        raise SystemExit("%s (generated on the token): Access: %s" % (label, ", ".join(access)))
print(len(keys))
EOF
# pkcs11-tool --read-object --type privkey does not try ("not (yet) supported", exit 0), so the
# private parts are asked for directly: C_GetAttributeValue must refuse even their length.
# shellcheck disable=SC2046 # pkg-config prints several flags
cc -std=c11 -D_GNU_SOURCE -O1 -Wall -Wextra -Werror $(pkg-config --cflags p11-kit-1) \
    -o "$WORK/p11attrs" "$ITL_SRC/tests/hardening/p11attrs.c" -ldl || fail "building p11attrs"
"$WORK/p11attrs" "$ITL_MODULE" itl-svc >"$T/attrs.txt" 2>&1 || fail "p11attrs: $(cat "$T/attrs.txt")"
for label in CallManager ITLRecovery Generated Imported; do
    grep -qx "$label sensitive=1 extractable=0 private_exponent=CKR_ATTRIBUTE_SENSITIVE prime_1=CKR_ATTRIBUTE_SENSITIVE" \
        "$T/attrs.txt" || fail "C_GetAttributeValue on $label: $(grep "^$label " "$T/attrs.txt")"
done
"$CLI" "${TOK[@]}" key list --json >"$T/keys.json" || fail "key list --json"
"$PY" - "$T/keys.json" <<'EOF' || fail "itl-sign key list --json: $(cat "$T/keys.json")"
import json, sys
keys = {k["label"]: k for k in json.load(open(sys.argv[1])) if k.get("has_private")}
for label in ("CallManager", "ITLRecovery", "Generated", "Imported"):
    k = keys[label]
    assert k["sensitive"] is True and k["extractable"] is False, k
EOF
unset P11PIN
ok "private keys generated (CallManager, ITLRecovery, Generated) and imported (Imported): sensitive and not extractable per pkcs11-tool, C_GetAttributeValue (CKA_PRIVATE_EXPONENT, CKA_PRIME_1: CKR_ATTRIBUTE_SENSITIVE) and key list --json"
figures "secrets: commands checked $nout, processes inspected in /proc 4 (2 itl-sign, itl-signd twice), keys checked 4"
