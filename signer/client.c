/* SPDX-License-Identifier: MIT */
/* The client side of the itl-signd protocol: one connection, requests answered in order. */
#include "signer/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Replies carry a signed file; allow the largest request plus headers. */
#define CLIENT_MAX_REPLY (SGN_WIRE_DEFAULT_MAX * 2 + 65536)

struct sgn_client {
    int fd;
};

int sgn_client_connect(const char *socket_path, struct sgn_client **out, char *err, size_t err_size)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct sgn_client *c;
    int fd;

    if (strlen(socket_path) >= sizeof addr.sun_path) {
        snprintf(err, err_size, "socket path too long: %s", socket_path);
        return -1;
    }
    strcpy(addr.sun_path, socket_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_size, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            snprintf(err, err_size,
                     "cannot reach itl-signd at %s: %s (is the service running? use --socket, or "
                     "--token for direct mode)",
                     socket_path, strerror(e));
        else if (e == EACCES)
            snprintf(err, err_size,
                     "cannot reach itl-signd at %s: permission denied (ask to be added to the "
                     "socket's group)",
                     socket_path);
        else
            snprintf(err, err_size, "cannot reach itl-signd at %s: %s", socket_path, strerror(e));
        return -1;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

/* 0 ok, -1 error, 1 the peer closed before the first byte. */
static int recv_all(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return got == 0 ? 1 : -1;
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int sgn_client_call(struct sgn_client *c, const struct sgn_request *req, struct sgn_result *r,
                    char **status_json, char *err, size_t err_size)
{
    uint8_t *frame = NULL, hdr[SGN_WIRE_HEADER_LEN], *payload;
    size_t frame_len, len;
    int rc;

    memset(r, 0, sizeof *r);
    if (sgn_wire_encode_request(req, &frame, &frame_len) != 0) {
        snprintf(err, err_size, "cannot encode the request (out of memory or too large)");
        return -1;
    }
    rc = sgn_send_all(c->fd, frame, frame_len);
    free(frame);
    if (rc != 0) {
        snprintf(err, err_size, "the service closed the connection while sending: %s",
                 strerror(errno));
        return -1;
    }
    rc = recv_all(c->fd, hdr, sizeof hdr);
    if (rc != 0) {
        snprintf(err, err_size, "the service closed the connection without a reply");
        return -1;
    }
    if (sgn_wire_header(hdr, SGN_FRAME_REPLY, CLIENT_MAX_REPLY, &len, err, err_size) != 0)
        return -1;
    payload = malloc(len ? len : 1);
    if (!payload) {
        snprintf(err, err_size, "out of memory for a reply of %zu bytes", len);
        return -1;
    }
    if (recv_all(c->fd, payload, len) != 0) {
        free(payload);
        snprintf(err, err_size, "the reply was cut short (%zu bytes announced)", len);
        return -1;
    }
    rc = sgn_wire_decode_reply(payload, len, r, status_json, err, err_size);
    free(payload);
    return rc;
}

void sgn_client_close(struct sgn_client *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}
