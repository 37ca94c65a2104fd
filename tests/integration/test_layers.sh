#!/bin/bash
# SPDX-License-Identifier: MIT
# The shape of the code, checked the way a reviewer would (docs/design.md):
#   - a layer includes only itself, the layers below it, and their one public header each;
#     common/ includes nothing of ours;
#   - no two files of one layer call each other (a circle means one concern in two files),
#     read off the built objects' symbol tables, so a call hidden behind a macro still counts;
#   - no product source file is over 600 lines.
. "$(dirname "$0")/lib.sh"

cd "$ITL_SRC" || die "no source tree at $ITL_SRC"

# What each layer may include besides itself: the public headers of the layers below.
declare -A BELOW=(
    [common]=""
    [format]="common/common.h"
    [pkcs11]="common/common.h"
    [policy]="common/common.h"
    [signer]="common/common.h format/itl.h pkcs11/token.h policy/policy.h"
    [tools]="common/common.h format/itl.h pkcs11/token.h policy/policy.h signer/signer.h"
)
LAYERS="common format pkcs11 policy signer tools"

bad=0
for layer in $LAYERS; do
    for f in $(git ls-files --cached --others --exclude-standard "$layer/*.c" "$layer/*.h"); do
        while read -r inc; do
            case $inc in
            "$layer"/*) continue ;;
            esac
            allowed=0
            for h in ${BELOW[$layer]}; do
                [ "$inc" = "$h" ] && allowed=1
            done
            if [ $allowed = 0 ]; then
                echo "  $f includes \"$inc\": $layer/ may include only ${BELOW[$layer]:-nothing of ours}" >&2
                bad=$((bad + 1))
            fi
        done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
    done
done
[ $bad = 0 ] || die "$bad include(s) across the layering"
ok "every layer includes only itself and the public headers below it; common/ includes nothing of ours"

# Circles between the files of a layer, from the objects: a.o uses what b.o defines and back.
defined() { nm --defined-only "$1" | awk '$2 ~ /^[TDBRC]$/ {print $3}' | sort -u; }
undefined() { nm -u "$1" | awk '{print $2}' | sort -u; }
circles=0
for layer in common format pkcs11 policy signer; do
    objs=$(ls "$ITL_BUILD/$layer"/*.o 2>/dev/null | grep -v itl-signd)
    [ -n "$objs" ] || die "no objects of $layer/ in $ITL_BUILD (build first)"
    for a in $objs; do
        for b in $objs; do
            [[ $a < $b ]] || continue
            ab=$(comm -12 <(undefined "$a") <(defined "$b") | head -3 | tr '\n' ' ')
            ba=$(comm -12 <(undefined "$b") <(defined "$a") | head -3 | tr '\n' ' ')
            if [ -n "$ab" ] && [ -n "$ba" ]; then
                echo "  $layer: $(basename "$a" .o).c calls ${ab}of $(basename "$b" .o).c," \
                    "which calls ${ba}back" >&2
                circles=$((circles + 1))
            fi
        done
    done
done
[ $circles = 0 ] || die "$circles circle(s) between files of one layer"
ok "no two files of a layer call each other"

long=0
for f in $(git ls-files --cached --others --exclude-standard 'common/*.[ch]' 'format/*.[ch]' 'pkcs11/*.[ch]' 'policy/*.[ch]' \
    'signer/*.[ch]' 'tools/*.[ch]'); do
    n=$(wc -l <"$f")
    if [ "$n" -gt 600 ]; then
        echo "  $f: $n lines (split it by concern)" >&2
        long=$((long + 1))
    fi
done
[ $long = 0 ] || die "$long product file(s) over 600 lines"
ok "no product source file over 600 lines"
