/* SPDX-License-Identifier: MIT */
/* itl-signd's log: stderr in the foreground, syslog (daemon facility) once detached. When
 * stderr is systemd's journal stream (JOURNAL_STREAM names its device and inode), each line
 * starts with its syslog priority, "<3>...", which the journal turns into the entry's
 * priority (journalctl -p err) and drops from the text. */
#include "signer/server.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static int log_to_syslog;
static int log_to_journal;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;

/* JOURNAL_STREAM=DEV:INODE is inherited by children whose stderr went elsewhere: only a stderr
 * that is that very stream gets the prefixes (systemd.exec(5), $JOURNAL_STREAM). */
static void detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char tail;

    if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return;
    if (fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        log_to_journal = 1;
}

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
    pthread_once(&journal_once, detect_journal);
    if (log_to_syslog)
        syslog(priority, "%s", line);
    else if (log_to_journal)
        fprintf(stderr, "<%d>%s\n", LOG_PRI(priority), line);
    else
        fprintf(stderr, "itl-signd: %s\n", line);
}
