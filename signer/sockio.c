/* SPDX-License-Identifier: MIT */
/*
 * Socket I/O with an absolute deadline, shared by the client and the service. A per-call
 * timeout (SO_RCVTIMEO) starts again with every byte, so a peer that sends or reads one byte
 * at a time holds the other side for ever; these functions give up at a fixed time instead.
 */
#include "signer/internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

long long sgn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` until the deadline: 1 ready, 0 the deadline passed, -1 error. */
static int wait_fd(int fd, short events, long long deadline_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        long long left = deadline_ms - sgn_now_ms();
        int n;

        if (left <= 0)
            return 0;
        n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0)
            return 1;
    }
}

int sgn_send_until(int fd, const uint8_t *p, size_t n, long long deadline_ms)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            int ready = wait_fd(fd, POLLOUT, deadline_ms);
            if (ready <= 0) {
                if (ready == 0)
                    errno = ETIMEDOUT;
                return -1;
            }
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

enum sgn_recv_end sgn_recv_until(int fd, uint8_t *p, size_t n, long long deadline_ms, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = recv(fd, p + *got, n - *got, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            int ready = wait_fd(fd, POLLIN, deadline_ms);
            if (ready == 0)
                return SGN_RECV_TIMEOUT;
            if (ready < 0)
                return SGN_RECV_ERROR;
            continue;
        }
        if (r == 0)
            return SGN_RECV_EOF;
        if (r < 0)
            return errno == ECONNRESET ? SGN_RECV_EOF : SGN_RECV_ERROR;
        *got += (size_t)r;
    }
    return SGN_RECV_OK;
}
