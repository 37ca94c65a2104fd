#!/bin/bash
# Crash safety (issue 9.3): SIGKILL at a random point (0-50 ms after the start, plus the
# command's own run time measured once, so kills land before, during and after the writes)
#   - of `itl-sign --token ... sign` of three files over existing outputs,
#   - of `itl-sign --token ... reset -o` over an existing output,
#   - of itl-signd while clients sign through it (audit writes), together with a direct-mode
#     `key generate` / `key attest-backup --config` (state and audit writes).
# Afterwards every output path holds either the old complete file or a new file whose
# signature verifies and whose payload is this trial's input; any other file there is a
# temporary (*.tmp.*) that never took a final name; every copy of the state file taken after a
# kill parses as JSON (and `itl-sign status --config` reads the final one); every line of the
# audit log is a complete JSON object.
# CI: 100 + 60 + 40 trials; STRESS=1: 500 + 300 + 200. The kill windows come from one timing
# run; when the host's load changed since and the kills all fell on one side of the end of
# the runs, more trials follow with the window adapted (never a failure for a busy host).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_hardening.sh"

svc_need_root "like test_service.sh"
hard_init
hard_keys
N_SIGN=100 N_RESET=60 N_SVC=40
[ "$STRESS" = 1 ] && N_SIGN=500 N_RESET=300 N_SVC=200
SOCK=$T/run/socket
CFG=$T/crash.yaml
svc_config "$CFG" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }"
TR=$T/trials
mkdir -p "$TR" "$T/old"

# ---- old outputs: complete files made before any trial, over different inputs ----
for f in a b c; do
    printf '<device><name>old-%s</name></device>\n' "$f" >"$T/old/SEP00000000000$f.cnf.xml"
done
"$CLI" "${TOK[@]}" sign "$T"/old/*.cnf.xml --out-dir "$T/old" >/dev/null 2>&1 || fail "old outputs"
"$CLI" "${TOK[@]}" reset "$T/ITLFile.tlv" -o "$T/old/ITL.tlv" --timestamp 1600000000 >/dev/null 2>&1 ||
    fail "old reset output"

# ---- a second token for the key trials: key generation writes the token's own files, which a
# SIGKILL may leave half-written; that is SoftHSM2's business, not the signing token's ----
"$ITL_SRC/softhsm-conf/make-token.sh" "$T/token2" itl-crash-keys >/dev/null || fail "second token"
CONF2=$T/token2/softhsm2.conf
TOK2=(--module "$ITL_MODULE" --token "pkcs11:token=itl-crash-keys" --pin-file "$T/token2/user.pin")
printf 'crash-p12-pass' >"$T/p12.pass" && chmod 600 "$T/p12.pass"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/crashrec.key" -out "$T/crashrec.pem" -days 30 \
    -subj "/CN=ITLRECOVERY_crash/O=itl-sign-test" 2>/dev/null || fail "crash recovery cert"
openssl pkcs12 -export -inkey "$T/crashrec.key" -in "$T/crashrec.pem" -out "$T/crashrec.p12" \
    -passout "file:$T/p12.pass" || fail "crash .p12"
cat >"$T/keys.yaml" <<EOF
node: { name: cucm-pub, role: publisher }
keys:
  recovery: { label: CrashRecovery }
  tftp: { label: CrashTFTP }
policy: { backup: "off", regen-hold: 0 }
access:
  - { user: root, allow: [reset, build, sign, encrypt, status, key] }
state-dir: $T/state
audit-log: $T/log/audit.log
EOF
# The import runs in the engine of direct mode, which writes the audit log (its directory is
# the service's to create; made here as the service would).
mkdir -p "$T/log"
SOFTHSM2_CONF=$CONF2 "$CLI" "${TOK2[@]}" --config "$T/keys.yaml" key import --p12 "$T/crashrec.p12" \
    --p12-pass-file "$T/p12.pass" --label CrashRecovery >"$T/import.log" 2>&1 ||
    fail "import of the crash recovery key: $(cat "$T/import.log")"

# SoftHSM2 rewrites its token.object in place on C_Login: a SIGKILL at that moment leaves it
# empty and the token uninitialised (a SoftHSM2 file-backend limitation; an HSM keeps its state
# itself). The token files are put back after every trial and the damage is counted.
cp -a "$T/token/tokens" "$T/tokens1.pristine"
cp -a "$T/token2/tokens" "$T/tokens2.pristine"
softhsm_damage=0
# restore_tokens DIR PRISTINE [always]: put the token files back when a kill emptied one (or
# always: the key trials add keys). Globs and tests only: no process unless there is work.
restore_tokens() {
    local f damaged=0
    for f in "$1"/*/*.object; do [ -s "$f" ] || damaged=1; done
    softhsm_damage=$((softhsm_damage + damaged))
    if [ "$damaged" = 1 ] || [ -n "${3:-}" ]; then
        rm -rf "$1" && cp -a "$2" "$1"
    fi
}

t0=$(date +%s%N)
SOFTHSM2_CONF=$CONF2 "$CLI" "${TOK2[@]}" --config "$T/keys.yaml" key generate --label CrashTFTP \
    --subject "CN=crash-timing" >"$T/keytiming.log" 2>&1 || fail "key generate: $(cat "$T/keytiming.log")"
GEN_MS=$((($(date +%s%N) - t0) / 1000000))
t0=$(date +%s%N)
SOFTHSM2_CONF=$CONF2 "$CLI" "${TOK2[@]}" --config "$T/keys.yaml" key attest-backup --key recovery \
    --p12 "$T/crashrec.p12" --p12-pass-file "$T/p12.pass" >"$T/attesttiming.log" 2>&1 ||
    fail "key attest-backup: $(cat "$T/attesttiming.log")"
ATTEST_MS=$((($(date +%s%N) - t0) / 1000000))
# A third more than the run time: some key commands complete, most are cut somewhere inside.
GEN_WINDOW=$((50 + GEN_MS * 4 / 3)) ATTEST_WINDOW=$((50 + ATTEST_MS * 4 / 3))

restore_tokens "$T/token2/tokens" "$T/tokens2.pristine" always # without CrashTFTP

# The commands' run time, measured once: kill points spread over the whole of it.
mkdir -p "$T/old-again"
t0=$(date +%s%N)
"$CLI" "${TOK[@]}" sign "$T"/old/*.cnf.xml --out-dir "$T/old-again" >/dev/null 2>&1 || fail "timing run"
RUN_MS=$((($(date +%s%N) - t0) / 1000000))
[ "$RUN_MS" -lt 900 ] || RUN_MS=900
WINDOW=$((50 + RUN_MS))

# new_trial KIND: $trial is a fresh dir holding the old outputs and this trial's inputs.
n=0
new_trial() {
    n=$((n + 1))
    trial=$TR/$n
    mkdir -p "$trial/in" "$trial/out"
    echo "$1" >"$trial/kind"
    case $1 in
    sign | svc)
        for f in a b c; do
            printf '<device><name>%s-%s</name><trial>%d</trial></device>\n' "$1" "$f" "$n" \
                >"$trial/in/SEP00000000000$f.cnf.xml"
        done
        cp "$T"/old/*.sgn "$trial/out/" ;;
    reset) cp "$T/old/ITL.tlv" "$trial/out/ITL.tlv" ;;
    esac
}
# reap PID RC-FILE: waits for PID and records its exit status (137: SIGKILL ended it).
reap() {
    local rc=0
    wait "$1" 2>/dev/null || rc=$?
    echo "$rc" >"$2"
}

# sign_trial WINDOW / reset_trial WINDOW: the CLI killed 0..WINDOW ms after its start.
sign_trial() {
    new_trial sign
    "$CLI" "${TOK[@]}" sign "$trial"/in/*.cnf.xml --out-dir "$trial/out" >/dev/null 2>&1 &
    pid=$!
    hard_sleep_ms $((RANDOM % $1))
    kill -KILL "$pid" 2>/dev/null
    reap "$pid" "$trial/rc"
    restore_tokens "$T/token/tokens" "$T/tokens1.pristine"
}
reset_trial() {
    new_trial reset
    "$CLI" "${TOK[@]}" reset "$T/ITLFile.tlv" -o "$trial/out/ITL.tlv" --timestamp $((1700000000 + n)) \
        >/dev/null 2>&1 &
    pid=$!
    hard_sleep_ms $((RANDOM % $1))
    kill -KILL "$pid" 2>/dev/null
    reap "$pid" "$trial/rc"
    restore_tokens "$T/token/tokens" "$T/tokens1.pristine"
}
# svc_trial I WINDOW GEN_WINDOW ATTEST_WINDOW: the service while it signs and audits, killed
# 0..WINDOW ms in, and a key command (attest-backup for even I, else generate) killed 0..its
# window in.
svc_trial() {
    local key_window
    hard_start "$CFG"
    new_trial svc
    "$CLI" --quiet --socket "$SOCK" sign "$trial"/in/*.cnf.xml --out-dir "$trial/out" --jobs 2 \
        >/dev/null 2>&1 &
    client=$!
    if [ $(($1 % 2)) -eq 0 ]; then
        echo attest >"$trial/keyop"
        key_window=$4
        SOFTHSM2_CONF=$CONF2 "$CLI" "${TOK2[@]}" --config "$T/keys.yaml" key attest-backup \
            --key recovery --p12 "$T/crashrec.p12" --p12-pass-file "$T/p12.pass" >/dev/null 2>&1 &
    else
        echo generate >"$trial/keyop"
        key_window=$3
        SOFTHSM2_CONF=$CONF2 "$CLI" "${TOK2[@]}" --config "$T/keys.yaml" key generate \
            --label CrashTFTP --subject "CN=crash-$n" >/dev/null 2>&1 &
    fi
    keycmd=$!
    # Two kill points, independent, each within its victim's run time.
    d_svc=$((RANDOM % $2)) d_key=$((RANDOM % key_window))
    if [ "$d_svc" -le "$d_key" ]; then
        hard_sleep_ms "$d_svc"; kill -KILL "$SVC_PID"
        hard_sleep_ms $((d_key - d_svc)); kill -KILL "$keycmd" 2>/dev/null
    else
        hard_sleep_ms "$d_key"; kill -KILL "$keycmd" 2>/dev/null
        hard_sleep_ms $((d_svc - d_key)); kill -KILL "$SVC_PID"
    fi
    reap "$SVC_PID" "$trial/svc.rc"
    SVC_PID=""
    reap "$keycmd" "$trial/key.rc"
    reap "$client" "$trial/rc"
    [ -f "$T/state/state.json" ] && cp "$T/state/state.json" "$trial/state.json"
    restore_tokens "$T/token/tokens" "$T/tokens1.pristine"
    restore_tokens "$T/token2/tokens" "$T/tokens2.pristine" always
}
# seen KIND FILE RC [KEYOP]: some trial of KIND (with that key command) has RC in FILE.
seen() {
    local d k v op
    for d in "$TR"/*/; do
        read -r k <"$d/kind" && [ "$k" = "$1" ] || continue
        [ -f "$d/$2" ] && read -r v <"$d/$2" && [ "$v" = "$3" ] || continue
        [ -z "${4:-}" ] || { read -r op <"$d/keyop" && [ "$op" = "$4" ]; } && return 0
    done
    return 1
}
# cover KIND WINDOW-VAR: the kill points must land on both sides of the end of the run (some
# trials killed, some finished), or the test proved little. The windows were sized from one
# timing run; on a host whose load changed since, more trials follow with the window halved
# (all finished) or doubled (all killed): at most as many again as were planned plus 20 (the
# doublings from 1 ms to a minute), a guard.
cover() {
    local kind=$1 var=$2 extra=0 max=$(($3 + 20))
    while ! { seen "$kind" rc 137 && seen "$kind" rc 0; }; do
        [ "$extra" -lt "$max" ] || break
        if seen "$kind" rc 0; then
            printf -v "$var" %d $(((${!var} + 1) / 2))
        else
            printf -v "$var" %d $((${!var} * 2))
        fi
        "${kind}_trial" "${!var}"
        extra=$((extra + 1))
    done
    extra_trials=$((extra_trials + extra))
}
extra_trials=0

start=$(date +%s.%N)
# ---- 1. the CLI signing three files ----
SIGN_WINDOW=$WINDOW RESET_WINDOW=$WINDOW
for i in $(seq 1 "$N_SIGN"); do sign_trial "$SIGN_WINDOW"; done
cover sign SIGN_WINDOW "$N_SIGN"
# ---- 2. the CLI resetting an ITL over an existing output ----
for i in $(seq 1 "$N_RESET"); do reset_trial "$RESET_WINDOW"; done
cover reset RESET_WINDOW "$N_RESET"
cli_secs=$(elapsed "$start")

# ---- 3. the service while it signs and audits, and a key command writing state and audit ----
cp "$T/state/state.json" "$TR/state-before.json" || fail "no state file after the timing runs"
start=$(date +%s.%N)
for i in $(seq 1 "$N_SVC"); do svc_trial "$i" "$WINDOW" "$GEN_WINDOW" "$ATTEST_WINDOW"; done
# Each key command must have finished (written the state) in some trial, and the service must
# have signed in one: else more trials, the windows doubled (up to N_SVC + 20 more).
i=$N_SVC
while ! { seen svc key.rc 0 generate && seen svc key.rc 0 attest && seen svc rc 0; }; do
    [ "$i" -lt $((2 * N_SVC + 20)) ] || break
    i=$((i + 1))
    seen svc key.rc 0 generate || GEN_WINDOW=$((GEN_WINDOW * 2))
    seen svc key.rc 0 attest || ATTEST_WINDOW=$((ATTEST_WINDOW * 2))
    seen svc rc 0 || WINDOW=$((WINDOW * 2))
    svc_trial "$i" "$WINDOW" "$GEN_WINDOW" "$ATTEST_WINDOW"
    extra_trials=$((extra_trials + 1))
done
svc_secs=$(elapsed "$start")

# ---- the checks ----
HARD_PY=$T/hard.py "$PY" - "$TR" "$T/old" "$T/tftp.pub" "$T/recovery.pub" "$T/ITLFile.tlv" >"$T/check.out" 2>&1 <<'EOF' ||
import collections, json, os, re, sys
sys.argv, args = sys.argv[:1], sys.argv[1:]
tr, old, tftp, recovery, itl = args
sys.path.insert(0, os.path.dirname(os.environ["HARD_PY"]))
H = {"__name__": "hard", "__file__": os.environ["HARD_PY"]}
src = open(os.environ["HARD_PY"]).read()
exec(compile(src.split("\nif sys.argv[1] ==")[0], "hard.py", "exec"), H)
keys = {"sign": H["load_key"](tftp), "svc": H["load_key"](tftp), "reset": H["load_key"](recovery)}
itl_bytes = open(itl, "rb").read()

def records(b):  # the bytes after HEADERLENGTH: every record of an ITL
    return b[int.from_bytes(b[8:10], "big"):]  # HEADERLENGTH is the value of the second TLV

count = collections.Counter()
temps = 0
new_files = []
# state.json's "generation" counts its writes: which trials wrote it, as the kills fell
generation = json.load(open(tr + "/state-before.json"))["generation"]
for name in sorted((f for f in os.listdir(tr) if f.isdigit()), key=int):
    d = os.path.join(tr, name)
    kind = open(d + "/kind").read().strip()
    killed = open(d + "/rc").read().strip() == "137" or (
        kind == "svc" and open(d + "/svc.rc").read().strip() == "137")
    count[kind + (" killed" if killed else " finished")] += 1
    if kind == "reset":
        expect = {"ITL.tlv": None}
    else:
        expect = {f + ".sgn": open(d + "/in/" + f, "rb").read() for f in os.listdir(d + "/in")}
    states = set()
    for f in os.listdir(d + "/out"):
        if f in expect:
            continue
        if re.search(r"\.tmp\.", f):
            temps += 1
            continue
        raise SystemExit("trial %s: a stray file in the output dir: %s" % (name, f))
    for f, data in expect.items():
        path = d + "/out/" + f
        if not os.path.exists(path):
            raise SystemExit("trial %s: %s is gone (neither old nor new)" % (name, f))
        b = open(path, "rb").read()
        if b == open(os.path.join(old, f), "rb").read():
            states.add("old")
            continue
        try:
            H["verify"](keys[kind], b)
        except Exception as e:
            raise SystemExit("trial %s (%s): %s is neither the old file nor a verified new one: %s"
                             % (name, kind, f, e))
        if kind == "reset" and records(b) != records(itl_bytes):
            raise SystemExit("trial %s: %s verifies but its records are not the input's" % (name, f))
        if kind != "reset" and not b.endswith(data):
            raise SystemExit("trial %s: %s verifies but does not carry this trial's input" % (name, f))
        states.add("new")
        new_files.append(path if kind == "reset" else "")
    count[kind + " outputs " + "+".join(sorted(states))] += 1
    if os.path.exists(d + "/state.json"):
        try:
            state = json.load(open(d + "/state.json"))
        except ValueError as e:
            raise SystemExit("trial %s: the state file does not parse: %s" % (name, e))
        count["state copies parsed"] += 1
        if state["generation"] > generation:
            count["state written by " + open(d + "/keyop").read().strip()] += state["generation"] - generation
            generation = state["generation"]
    if kind == "svc":
        count["key %s %s" % (open(d + "/keyop").read().strip(),
                             "completed" if open(d + "/key.rc").read().strip() == "0" else "killed/failed")] += 1
print(json.dumps({"counts": count, "temps": temps}, sort_keys=True))
with open(tr + "/new-resets", "w") as f:
    f.write("".join(p + "\n" for p in new_files if p))
EOF
    fail "crash trials: $(cat "$T/check.out")"
counts=$(cat "$T/check.out")
get() { "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["counts"].get(sys.argv[2], 0) if sys.argv[2] != "temps" else d["temps"])' "$counts" "$1"; }
trials=$((N_SIGN + N_RESET + N_SVC + extra_trials))
figures "crash: trials $trials ($extra_trials added to cover both sides of the runs' end; sign $N_SIGN: $(get "sign killed") killed / $(get "sign finished") finished; reset $N_RESET: $(get "reset killed") killed / $(get "reset finished") finished; service $N_SVC) in ${cli_secs}s + ${svc_secs}s, kill windows 0-${WINDOW} ms (CLI, service), 0-${GEN_WINDOW} ms (key generate), 0-${ATTEST_WINDOW} ms (attest-backup)"
figures "crash outputs: sign old $(get "sign outputs old") / new $(get "sign outputs new") / mixed $(get "sign outputs new+old"); reset old $(get "reset outputs old") / new $(get "reset outputs new"); service old $(get "svc outputs old") / new $(get "svc outputs new") / mixed $(get "svc outputs new+old")"
figures "crash state writers: key generate $(get "key generate completed") completed / $(get "key generate killed/failed") killed, $(get "state written by generate") state writes; attest-backup $(get "key attest completed") completed / $(get "key attest killed/failed") killed, $(get "state written by attest") state writes; leftover temporaries: outputs $(get temps); SoftHSM2 token files emptied by a kill (restored): $softhsm_damage"
[ "$n" -eq "$trials" ] || fail "$n trials run, want $trials"
# The kill points must have covered both sides of the writes, or the test proved little.
for kind in sign reset; do
    [ "$(get "$kind killed")" -gt 0 ] || fail "no $kind trial was killed before it finished"
    [ "$(($(get "$kind outputs new") + $(get "$kind outputs new+old")))" -gt 0 ] ||
        fail "no $kind trial wrote a new output before the kill"
done
[ "$(get "svc outputs new") $(get "svc outputs new+old")" != "0 0" ] || fail "no service trial signed anything"
[ "$(get "state written by generate")" -gt 0 ] || fail "no key generate wrote the state before its kill"
[ "$(get "state written by attest")" -gt 0 ] || fail "no key attest-backup wrote the state before its kill"
ok "$trials SIGKILL trials: every output path holds the old file or a new one that verifies and carries its trial's input; leftover temporaries never took a final name"

# The reset outputs a phone would be asked to take: itl-sign's own verdict, with the installed ITL.
m=0
while read -r f; do
    [ -n "$f" ] || continue
    "$CLI" verify "$f" --trust "$T/ITLFile.tlv" >/dev/null 2>"$T/verify.err" ||
        fail "itl-sign verify --trust rejects $f: $(cat "$T/verify.err")"
    m=$((m + 1))
done <"$TR/new-resets"
ok "itl-sign verify --trust ITLFile.tlv accepts all $m reset outputs written before a kill"

# ---- state and audit after everything ----
"$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/state/state.json" || fail "state.json does not parse"
SOFTHSM2_CONF=$CONF2 "$CLI" "${TOK2[@]}" --config "$T/keys.yaml" status >"$T/status.out" 2>&1 ||
    fail "itl-sign status --config cannot read the state: $(cat "$T/status.out")"
state_tmps=$(find "$T/state" -name '.state.json.*' | wc -l)
audit_lines=$(hard_json_lines "$T/log/audit.log") || fail "audit log: $audit_lines"
ok "state.json parses ($(get "state copies parsed") copies taken after kills, and itl-sign status --config reads it); all $audit_lines audit lines are complete JSON objects"
figures "crash files: leftover temporaries: outputs $(get temps), state $state_tmps; audit lines $audit_lines"
