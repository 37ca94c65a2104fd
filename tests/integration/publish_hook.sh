#!/bin/bash
# The --then hook of test_publish.sh: records that it ran, and the SHA-1 of the ITL in each
# target at that moment (so the test sees it ran once, after every rename).
log=$1
shift
line=run
for d in "$@"; do
    line="$line $(basename "$d")=$(sha1sum "$d/ITLFile.tlv" | cut -c1-40)"
done
echo "$line" >>"$log"
