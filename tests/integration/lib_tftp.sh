# shellcheck shell=bash
# A real TFTP server for the tests: Debian's tftpd-hpa (in.tftpd), started by the test in the
# foreground on a free loopback port, serving a directory of its own, stopped when the test ends.
# No system service and no port 69: the tftpd-hpa package's own service (which its postinst may
# start on port 69) is neither used nor touched. Source after lib.sh.
#
#   tftp_start DIR    serve DIR (chroot, read-only) on 127.0.0.1:$TFTP_PORT; sets TFTP_PID,
#                     TFTP_PORT, TFTP_SERVER=127.0.0.1:$TFTP_PORT; fails the test if it cannot
#   tftp_stop         SIGTERM the server and wait for it (also run at exit)
#   tftp_fetch NAME OUT   one file with Debian's tftp client (tftp-hpa); 0 only if it came
#
# tftpd-hpa serves only files that everyone may read (it runs without --permissive): the tests
# publish with mode 0644, as an admin's TFTP directory has them.
TFTPD=${TFTPD:-/usr/sbin/in.tftpd}
TFTP_CLIENT=${TFTP_CLIENT:-/usr/bin/tftp}
TFTP_PID=""
TFTP_PORT=""
TFTP_SERVER=""

# A UDP port on the loopback that nothing holds right now (the kernel picks it).
tftp_free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Does a TFTP server answer on the port? Asked in the protocol itself: a read request for a
# file nobody has gets "Error code 1: File not found" from a running in.tftpd.
tftp_answers() {
    printf 'rexmt 1\ntimeout 1\nget .itl-probe %s\nquit\n' "$WORK/.tftp-probe" |
        "$TFTP_CLIENT" 127.0.0.1 "$1" 2>&1 | grep -q "Error code 1"
    local rc=$?
    rm -f "$WORK/.tftp-probe"
    return $rc
}

tftp_start() {
    local dir=$1 try i up user_args=()
    [ -x "$TFTPD" ] || die "no $TFTPD: install tftpd-hpa (tools/install-deps.sh)"
    [ -x "$TFTP_CLIENT" ] || die "no $TFTP_CLIENT: install tftp-hpa (tools/install-deps.sh)"
    # As root in.tftpd drops to "nobody" unless told otherwise; the test's own user keeps the
    # temp directory (mode 0700) readable to it. A non-root user cannot change users at all.
    [ "$(id -u)" -eq 0 ] && user_args=(-u "$(id -un)")
    for try in 1 2 3 4 5; do
        TFTP_PORT=$(tftp_free_port) || die "no free UDP port on 127.0.0.1"
        "$TFTPD" -L -a "127.0.0.1:$TFTP_PORT" -s "${user_args[@]}" "$dir" \
            >"$WORK/tftpd.log" 2>&1 &
        TFTP_PID=$!
        up=0
        for i in $(seq 1 20); do
            kill -0 "$TFTP_PID" 2>/dev/null || break # it could not bind: the port was taken
            tftp_answers "$TFTP_PORT" && up=1 && break
        done
        if [ $up = 1 ]; then
            TFTP_SERVER=127.0.0.1:$TFTP_PORT
            cleanup_hooks+=("tftp_stop")
            return 0
        fi
        # the port was taken between the probe and the bind: another one
        kill "$TFTP_PID" 2>/dev/null
        wait "$TFTP_PID" 2>/dev/null
        TFTP_PID=""
    done
    die "in.tftpd did not start on a loopback port: $(cat "$WORK/tftpd.log")"
}

tftp_stop() {
    [ -n "$TFTP_PID" ] || return 0
    kill -TERM "$TFTP_PID" 2>/dev/null
    wait "$TFTP_PID" 2>/dev/null
    TFTP_PID=""
}

# tftp-hpa exits 0 even when the server has no such file (it prints "Error code 1: File not
# found" and leaves an empty file): success is a file that arrived with bytes in it.
tftp_fetch() {
    local name=$1 out=$2 msg
    rm -f "$out"
    msg=$("$TFTP_CLIENT" -m binary 127.0.0.1 "$TFTP_PORT" -c get "$name" "$out" 2>&1)
    if [ ! -s "$out" ] || grep -q "Error code\|timed out" <<<"$msg"; then
        rm -f "$out"
        echo "$msg" >&2
        return 1
    fi
}
