/* SPDX-License-Identifier: MIT */
/* Names of operations and roles, durations, message text. */
#include "policy/internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const char *pol_yaml_version(void)
{
    return yaml_get_version_string();
}

static const char *const op_names[POL_OP_COUNT] = {
    [POL_OP_RESET] = "reset",     [POL_OP_BUILD] = "build",   [POL_OP_SIGN] = "sign",
    [POL_OP_ENCRYPT] = "encrypt", [POL_OP_STATUS] = "status", [POL_OP_KEY] = "key",
    [POL_OP_UNLOCK] = "unlock",
};

static const char *const key_role_names[POL_KEY_COUNT] = {
    [POL_KEY_RECOVERY] = "recovery",
    [POL_KEY_TFTP] = "tftp",
};

const char *pol_op_name(enum pol_op op)
{
    if ((unsigned)op >= POL_OP_COUNT)
        return "?";
    return op_names[op];
}

int pol_op_from_name(const char *name)
{
    for (int i = 0; name && i < POL_OP_COUNT; i++)
        if (strcmp(name, op_names[i]) == 0)
            return i;
    return -1;
}

const char *pol_key_role_name(enum pol_key_role role)
{
    if ((unsigned)role >= POL_KEY_COUNT)
        return "?";
    return key_role_names[role];
}

int pol_key_role_from_name(const char *name)
{
    for (int i = 0; name && i < POL_KEY_COUNT; i++)
        if (strcmp(name, key_role_names[i]) == 0)
            return i;
    return -1;
}

long pol_parse_duration(const char *text)
{
    long value = 0, unit = 1;
    const char *p = text;

    if (!text || !isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (value > (LONG_MAX - (*p - '0')) / 10)
            return -1;
        value = value * 10 + (*p - '0');
    }
    switch (*p) {
    case '\0':
        return value;
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (p[1] != '\0' || value > LONG_MAX / unit)
        return -1;
    return value * unit;
}

void pol_duration_words(long seconds, char *out, size_t size)
{
    static const struct {
        long seconds;
        const char *name;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (seconds != 0 && seconds % units[i].seconds != 0)
            continue;
        long n = seconds / units[i].seconds;
        if (seconds == 0 && units[i].seconds != 1)
            continue;
        snprintf(out, size, "%ld %s%s", n, units[i].name, n == 1 ? "" : "s");
        return;
    }
}

void pol_strlcatf(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strnlen(buf, size);
    va_list ap;
    int n;

    if (used + 1 >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= size - used && size > 4)
        memcpy(buf + size - 4, "...", 4);
}

void pol_printable(const char *in, size_t max, char *out, size_t size)
{
    size_t i = 0;
    if (size == 0)
        return;
    for (; in && in[i] && i < max && i + 1 < size; i++)
        out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
    if (in && in[i] && i >= max && size > i + 3)
        memcpy(out + i, "...", 4);
}
