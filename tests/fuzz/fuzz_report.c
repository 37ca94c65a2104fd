/* SPDX-License-Identifier: MIT */
/*
 * The phone report parser (format/report.c): DeviceTLInfo alarms through expat, dumps, CSV.
 * Properties: no crash, no leak; every report has a DeviceName and lines that only grow.
 */
#include "format/itl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_report(void *ctx, const struct itl_report *r)
{
    long *last = ctx;

    if (!r->device[0] || r->line < *last || memchr(r->device, '\0', sizeof r->device) == NULL)
        abort();
    *last = r->line;
    return 0;
}

static void on_warn(void *ctx, long line, const char *msg)
{
    (void)ctx;
    if (line < 1 || !msg[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct itl_error err;
    long last = 0;

    if (size > 256 * 1024)
        return 0;
    itl_reports_parse((const char *)data, size, on_report, on_warn, &last, &err);
    return 0;
}
