#!/bin/bash
# The config key `itl` through itl-signd (issue 14): `itl-sign --config FILE sign` reads the ITL
# FILE names itself and sends it as --itl would, so a config signed through the service gets the
# ITL's record names, byte for byte as an explicit --itl run; --itl wins; the service ignores
# the key for a client that does not send it (docs/config.md "itl").
. "$(dirname "$0")/lib_service.sh"
svc_init
svc_make_token
svc_make_keys

CFG=$T/itl-signd.yaml
svc_config "$CFG" "access:
  - { user: root, allow: [reset, build, sign, encrypt, status] }"
mkdir -p "$T/run" "$T/state" "$T/log" "$T/a" "$T/b" "$T/c" && chmod 0750 "$T/state"
# an ITL whose names are ','-joined (the certutils layout): not the certificates' own bytes
"$CLI" "${TOK[@]}" build --layout certutils --sast label:CallManager --sast label:ITLRecovery \
    -o "$T/comma.tlv" >"$T/build.log" 2>&1 || fail "build: $(cat "$T/build.log")"
cp "$CFG" "$T/client.yaml"
echo "itl: $T/comma.tlv" >>"$T/client.yaml"
svc_start "$CFG"
S=$T/run/socket
for d in a b c; do printf '<device><n>1</n></device>\n' >"$T/$d/SEP000000000001.cnf.xml"; done

run() { # run EXPECTED NAME CMD...
    local want=$1 name=$2 rc=0
    shift 2
    "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "$name: exit $rc, want $want: $(cat "$T/$name.out" "$T/$name.err")"
}
signer_name() { "$CLI" show "$1" | sed -n 's/^4 SIGNERNAME [0-9]* //p'; }

run 0 explicit "$CLI" --socket "$S" sign --itl "$T/comma.tlv" --timestamp 1700000000 "$T/a/SEP000000000001.cnf.xml"
run 0 default "$CLI" --config "$T/client.yaml" sign --timestamp 1700000000 "$T/b/SEP000000000001.cnf.xml"
cmp "$T/a/SEP000000000001.cnf.xml.sgn" "$T/b/SEP000000000001.cnf.xml.sgn" ||
    fail "through the service, the config's itl did not give the bytes of an explicit --itl"
[[ $(signer_name "$T/b/SEP000000000001.cnf.xml.sgn") == CN=cucm-pub,O=test ]] ||
    fail "not the ITL's ','-joined name: $(signer_name "$T/b/SEP000000000001.cnf.xml.sgn")"
run 0 plain "$CLI" --config "$CFG" sign --timestamp 1700000000 "$T/c/SEP000000000001.cnf.xml"
[[ $(signer_name "$T/c/SEP000000000001.cnf.xml.sgn") == "CN=cucm-pub;O=test" ]] ||
    fail "the service used an ITL nobody sent: $(signer_name "$T/c/SEP000000000001.cnf.xml.sgn")"
ok "through itl-signd: the client's config itl gives the ITL's names, byte for byte as --itl; none without it"
sed -i "s|^itl: .*|itl: $T/missing.tlv|" "$T/client.yaml"
rm -f "$T/c/SEP000000000001.cnf.xml.sgn"
run 3 missing "$CLI" --config "$T/client.yaml" sign "$T/c/SEP000000000001.cnf.xml"
grep -q "config key 'itl' of $T/client.yaml: .*missing.tlv" "$T/missing.err" ||
    fail "a missing config itl: $(cat "$T/missing.err")"
[ ! -e "$T/c/SEP000000000001.cnf.xml.sgn" ] || fail "signed although the config's itl is missing"
ok "a missing itl named in the config: exit 3, the error names the key, nothing signed"
svc_stop
echo "all passed"
