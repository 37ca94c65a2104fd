/* SPDX-License-Identifier: MIT */
/* The two time formats the project prints, both UTC. */
#include "common/common.h"

#include <stdio.h>

/* Years 0 to 9999 only: RFC 3339 has four-digit years, and the text must fit TIME_ISO_LEN. */
static int utc_tm(time_t t, struct tm *tm)
{
    return gmtime_r(&t, tm) && tm->tm_year >= -1900 && tm->tm_year <= 9999 - 1900 ? 0 : -1;
}

const char *time_iso(time_t t, char out[TIME_ISO_LEN])
{
    struct tm tm;

    if (utc_tm(t, &tm) != 0 || strftime(out, TIME_ISO_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, TIME_ISO_LEN, "-");
    return out;
}

const char *time_human(time_t t, char *out, size_t size)
{
    struct tm tm;

    if (size == 0)
        return out;
    if (utc_tm(t, &tm) != 0 || strftime(out, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, size, "%lld", (long long)t);
    return out;
}
