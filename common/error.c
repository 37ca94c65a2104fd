/* SPDX-License-Identifier: MIT */
/* The project's one error type: a class, the CK_RV when there is one, a message. */
#include "common/common.h"

#include <stdio.h>
#include <string.h>

/* A message cut to fit ends in "..." so nobody takes it for the whole story. */
static void mark_truncated(char *msg)
{
    memcpy(msg + ITL_ERROR_LEN - 4, "...", 4);
}

int err_setv(struct itl_error *err, enum itl_errclass cls, const char *fmt, va_list ap)
{
    if (!err)
        return -1;
    err->cls = cls;
    err->ckr = 0;
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (n < 0)
        snprintf(err->msg, sizeof err->msg, "(message could not be formatted)");
    else if ((size_t)n >= sizeof err->msg)
        mark_truncated(err->msg);
    return -1;
}

int err_set(struct itl_error *err, enum itl_errclass cls, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_setv(err, cls, fmt, ap);
    va_end(ap);
    return -1;
}

int err_errno(struct itl_error *err, int errnum, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return -1;
    va_start(ap, fmt);
    err_setv(err, ITL_E_IO, fmt, ap);
    va_end(ap);
    return err_suffix(err, ": %s", strerror(errnum));
}

int err_suffix(struct itl_error *err, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return -1;
    size_t used = strnlen(err->msg, sizeof err->msg - 1);
    va_start(ap, fmt);
    int n = vsnprintf(err->msg + used, sizeof err->msg - used, fmt, ap);
    va_end(ap);
    if (n < 0)
        err->msg[used] = '\0';
    else if ((size_t)n >= sizeof err->msg - used)
        mark_truncated(err->msg);
    return -1;
}

int err_prefix(struct itl_error *err, const char *fmt, ...)
{
    char head[ITL_ERROR_LEN];
    va_list ap;

    if (!err)
        return -1;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    size_t hlen = (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;
    size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
    int cut = hlen + mlen > sizeof err->msg - 1;
    if (hlen > sizeof err->msg - 1)
        hlen = sizeof err->msg - 1;
    if (hlen + mlen > sizeof err->msg - 1)
        mlen = sizeof err->msg - 1 - hlen;
    memmove(err->msg + hlen, err->msg, mlen);
    memcpy(err->msg, head, hlen);
    err->msg[hlen + mlen] = '\0';
    if (cut)
        mark_truncated(err->msg);
    return -1;
}

void err_clear(struct itl_error *err)
{
    if (!err)
        return;
    err->cls = ITL_E_NONE;
    err->ckr = 0;
    err->msg[0] = '\0';
}

const char *err_class_name(enum itl_errclass cls)
{
    static const char *const names[] = {
        [ITL_E_NONE] = "none",
        [ITL_E_USAGE] = "usage",
        [ITL_E_INPUT] = "input",
        [ITL_E_DENIED] = "denied",
        [ITL_E_IO] = "io",
        [ITL_E_MODULE] = "module",
        [ITL_E_NO_TOKEN] = "no-token",
        [ITL_E_AMBIGUOUS] = "ambiguous",
        [ITL_E_PIN] = "pin",
        [ITL_E_NO_KEY] = "no-key",
        [ITL_E_MECHANISM] = "mechanism",
        [ITL_E_VERIFY] = "verify",
        [ITL_E_DEVICE] = "device",
        [ITL_E_INTERNAL] = "internal",
    };
    if ((unsigned)cls >= sizeof names / sizeof names[0] || !names[cls])
        return "?";
    return names[cls];
}

void text_printf(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(out, size, "?");
    else if ((size_t)n >= size)
        memcpy(out + size - 4, "...", 4);
}
