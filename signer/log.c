/* SPDX-License-Identifier: MIT */
/* itl-signd's log: stderr in the foreground, syslog (daemon facility) once detached. */
#include "signer/server.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static int log_to_syslog;

void srv_log_use_syslog(void)
{
    openlog("itl-signd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_to_syslog = 1;
}

void srv_log(int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* Messages can quote peer-supplied text: one line, no terminal control characters. */
    for (char *p = line; *p; p++)
        if (iscntrl((unsigned char)*p))
            *p = '?';
    if (log_to_syslog)
        syslog(priority, "%s", line);
    else
        fprintf(stderr, "itl-signd: %s\n", line);
}
