/* SPDX-License-Identifier: MIT */
/*
 * The client side of the itl-signd protocol: one connection, requests answered in order. Every
 * request has a deadline (connect, send and reply together): a stopped or wedged service costs
 * the caller the timeout, never forever.
 */
#include "signer/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Replies carry a signed file; allow the largest request plus headers. */
#define CLIENT_MAX_REPLY (SGN_WIRE_DEFAULT_MAX * 2 + 65536)

struct sgn_client {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    unsigned timeout_ms;
    size_t max_request;
};

static void timeout_err(const struct sgn_client *c, const char *what, struct itl_error *err)
{
    err_set(err, ITL_E_IO,
            "itl-signd at %s did not %s within %u.%03u s (is the service stopped or "
            "overloaded? --timeout SECONDS waits longer)",
            c->path, what, c->timeout_ms / 1000, c->timeout_ms % 1000);
}

/* Bounds a blocking connect(): a unix socket whose listener stopped accepting (backlog full)
 * makes connect() wait for room, for SO_SNDTIMEO at most (then EAGAIN). */
static void set_send_timeout(int fd, unsigned timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void connect_err(const char *socket_path, int e, struct itl_error *err)
{
    if (e == ENOENT || e == ECONNREFUSED)
        err_set(err, ITL_E_IO,
                "cannot reach itl-signd at %s: %s (is the service running? use --socket, or "
                "--token for direct mode)",
                socket_path, strerror(e));
    else if (e == EACCES)
        err_set(err, ITL_E_IO,
                "cannot reach itl-signd at %s: permission denied (ask to be added to the "
                "socket's group)",
                socket_path);
    else
        err_errno(err, e, "cannot reach itl-signd at %s", socket_path);
}

int sgn_client_connect(const char *socket_path, const struct sgn_client_opts *opts,
                       struct sgn_client **out, struct itl_error *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct sgn_client *c;
    int fd;

    if (strlen(socket_path) >= sizeof addr.sun_path) {
        err_set(err, ITL_E_USAGE, "socket path too long: %s", socket_path);
        return -1;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        err_set(err, ITL_E_INTERNAL, "out of memory");
        return -1;
    }
    strcpy(addr.sun_path, socket_path);
    strcpy(c->path, socket_path);
    c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : SGN_CLIENT_DEFAULT_TIMEOUT_MS;
    c->max_request =
        opts && opts->max_request_bytes ? opts->max_request_bytes : SGN_WIRE_DEFAULT_MAX;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err_errno(err, errno, "socket");
        free(c);
        return -1;
    }
    set_send_timeout(fd, c->timeout_ms);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        if (e == EAGAIN)
            timeout_err(c, "accept the connection", err);
        else
            connect_err(socket_path, e, err);
        free(c);
        return -1;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

static int read_reply(struct sgn_client *c, long long deadline, struct sgn_result *r,
                      char **status_json, struct itl_error *err)
{
    uint8_t hdr[SGN_WIRE_HEADER_LEN], *payload;
    enum sgn_recv_end end;
    size_t len, got;
    int rc;

    end = sgn_recv_until(c->fd, hdr, sizeof hdr, deadline, &got);
    if (end == SGN_RECV_TIMEOUT) {
        timeout_err(c, "reply", err);
        return -1;
    }
    if (end != SGN_RECV_OK) {
        err_set(err, ITL_E_IO, "the service closed the connection without a reply");
        return -1;
    }
    if (sgn_wire_header(hdr, SGN_FRAME_REPLY, CLIENT_MAX_REPLY, &len, err) != 0)
        return -1;
    payload = malloc(len ? len : 1);
    if (!payload) {
        err_set(err, ITL_E_INTERNAL, "out of memory for a reply of %zu bytes", len);
        return -1;
    }
    end = sgn_recv_until(c->fd, payload, len, deadline, &got);
    if (end != SGN_RECV_OK) {
        free(payload);
        if (end == SGN_RECV_TIMEOUT)
            timeout_err(c, "finish its reply", err);
        else
            err_set(err, ITL_E_IO, "the reply was cut short (%zu bytes announced)", len);
        return -1;
    }
    rc = sgn_wire_decode_reply(payload, len, r, status_json, err);
    free(payload);
    return rc;
}

/* Encodes and sends one request frame by `deadline`. -1 with err; *send_errno is the errno of
 * a failed send (0 when nothing was sent: encoding, size). */
static int send_request(struct sgn_client *c, const struct sgn_request *req, long long deadline,
                        int *send_errno, struct itl_error *err)
{
    uint8_t *frame = NULL;
    size_t frame_len;
    int rc;

    *send_errno = 0;
    if (sgn_wire_encode_request(req, &frame, &frame_len) != 0) {
        err_set(err, ITL_E_INTERNAL, "cannot encode the request (out of memory or too large)");
        return -1;
    }
    /* The service would refuse it from its header: say so without sending megabytes. */
    if (frame_len - SGN_WIRE_HEADER_LEN > c->max_request) {
        err_set(err, ITL_E_INPUT,
                "the request is %zu bytes, more than the %zu the service takes "
                "(socket.max-request-bytes)",
                frame_len - SGN_WIRE_HEADER_LEN, c->max_request);
        free(frame);
        return -1;
    }
    rc = sgn_send_until(c->fd, frame, frame_len, deadline);
    *send_errno = rc != 0 ? errno : 0;
    if (req->op == POL_OP_UNLOCK) /* it carries the PIN */
        OPENSSL_cleanse(frame, frame_len);
    free(frame);
    if (rc != 0 && *send_errno == ETIMEDOUT)
        timeout_err(c, "take the request", err);
    else if (rc != 0)
        err_errno(err, *send_errno, "the service closed the connection while we sent the request");
    return rc;
}

int sgn_client_call(struct sgn_client *c, const struct sgn_request *req, struct sgn_result *r,
                    char **status_json, struct itl_error *err)
{
    long long deadline = sgn_now_ms() + c->timeout_ms;
    int send_errno;

    memset(r, 0, sizeof *r);
    if (status_json)
        *status_json = NULL;
    if (send_request(c, req, deadline, &send_errno, err) != 0) {
        struct itl_error reply_err;
        /* The service may have refused the request from its header ("too large") and closed:
         * that reply is already waiting, and says more than EPIPE. */
        if (send_errno && send_errno != ETIMEDOUT &&
            read_reply(c, deadline, r, status_json, &reply_err) == 0)
            return 0;
        return -1;
    }
    return read_reply(c, deadline, r, status_json, err);
}

int sgn_client_send(struct sgn_client *c, const struct sgn_request *req, struct itl_error *err)
{
    int send_errno;

    if (send_request(c, req, sgn_now_ms() + c->timeout_ms, &send_errno, err) == 0)
        return 0;
    /* Closed while we sent: the service may have refused the request from its header ("too
     * large") and its reply is waiting; the caller takes it with sgn_client_recv. */
    return send_errno && send_errno != ETIMEDOUT ? 1 : -1;
}

int sgn_client_recv(struct sgn_client *c, struct sgn_result *r, char **status_json,
                    struct itl_error *err)
{
    memset(r, 0, sizeof *r);
    if (status_json)
        *status_json = NULL;
    return read_reply(c, sgn_now_ms() + c->timeout_ms, r, status_json, err);
}

void sgn_client_close(struct sgn_client *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}
