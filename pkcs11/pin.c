/* SPDX-License-Identifier: MIT */
/*
 * PINs: byte strings with a length (they may contain ':' or even NUL), held in one locked page
 * that is excluded from core dumps and wiped on release. Read from a private file, a file
 * descriptor, or the terminal without echo; never from argv.
 */
#include "pkcs11/internal.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>

#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>

#include <openssl/crypto.h>

#define PIN_PAGE 4096

static int pin_alloc(struct tok_pin *pin, struct itl_error *err)
{
    void *page = NULL;

    pin->bytes = NULL;
    pin->len = 0;
    if (posix_memalign(&page, PIN_PAGE, PIN_PAGE) != 0)
        return err_set(err, ITL_E_USAGE, "out of memory for the PIN");
    memset(page, 0, PIN_PAGE); /* bytes[len] is always a NUL: PKCS12_parse wants a C string */
    /* Best effort: without CAP_IPC_LOCK the RLIMIT_MEMLOCK default still allows one page. */
    (void)mlock(page, PIN_PAGE);
#ifdef MADV_DONTDUMP
    (void)madvise(page, PIN_PAGE, MADV_DONTDUMP);
#endif
    pin->bytes = page;
    return 0;
}

void tok_pin_wipe(struct tok_pin *pin)
{
    if (!pin || !pin->bytes)
        return;
    OPENSSL_cleanse(pin->bytes, PIN_PAGE);
    (void)munlock(pin->bytes, PIN_PAGE);
    free(pin->bytes);
    pin->bytes = NULL;
    pin->len = 0;
}

/* Drops trailing CR/LF and checks the length; `what` names the source for messages. */
static int pin_finish(struct tok_pin *pin, const char *what, struct itl_error *err)
{
    while (pin->len > 0 && (pin->bytes[pin->len - 1] == '\n' || pin->bytes[pin->len - 1] == '\r'))
        pin->len--;
    if (pin->len == 0) {
        tok_pin_wipe(pin);
        return err_set(err, ITL_E_USAGE, "%s is empty: it should hold the PIN", what);
    }
    if (pin->len >= TOK_PIN_MAX) {
        tok_pin_wipe(pin);
        return err_set(err, ITL_E_USAGE, "%s holds more than %d bytes: that is not a PIN", what,
                       TOK_PIN_MAX - 1);
    }
    OPENSSL_cleanse(pin->bytes + pin->len, PIN_PAGE - pin->len);
    return 0;
}

/* Reads fd to EOF into a fresh PIN (no stdio: nothing stays in a library buffer). */
static int pin_read_fd(int fd, struct tok_pin *pin, const char *what, struct itl_error *err)
{
    if (pin_alloc(pin, err) != 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, pin->bytes + pin->len, PIN_PAGE - pin->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            tok_pin_wipe(pin);
            return err_set(err, ITL_E_USAGE, "cannot read %s: %s", what, strerror(e));
        }
        if (n == 0)
            break;
        pin->len += (size_t)n;
        if (pin->len == PIN_PAGE) {
            tok_pin_wipe(pin);
            return err_set(err, ITL_E_USAGE, "%s holds more than %d bytes: that is not a PIN", what,
                           TOK_PIN_MAX - 1);
        }
    }
    return pin_finish(pin, what, err);
}

/* "uid 1001 (alice)" for messages. */
static void describe_uid(uid_t uid, char *out, size_t size)
{
    char name[256], number[16];

    /* ids_user_name() gives the number itself when passwd has no name for it. */
    snprintf(number, sizeof number, "%u", (unsigned)uid);
    if (strcmp(ids_user_name(uid, name, sizeof name), number) == 0)
        snprintf(out, size, "uid %u", (unsigned)uid);
    else
        snprintf(out, size, "uid %u (%s)", (unsigned)uid, name);
}

/* ---- systemd credentials ----
 * LoadCredential= with User= gives the service a file owned by root, mode 0400, and an access
 * ACL entry user:<service user>:r-- (stat then shows the ACL mask as group bits: 0440). That is
 * one reader named by root, nobody else, so it is accepted like a 0600 file. The ACL is read
 * from the opened descriptor in the kernel's own format (linux/posix_acl_xattr.h), so no
 * library is needed and no name is looked up twice. */

enum secret_acl { ACL_NONE, ACL_ONE_READER, ACL_WIDER };

static enum secret_acl secret_acl_check(int fd, uid_t *reader)
{
    unsigned char
        raw[sizeof(struct posix_acl_xattr_header) + 32 * sizeof(struct posix_acl_xattr_entry)];
    struct posix_acl_xattr_header hdr;
    unsigned mask = ACL_READ | ACL_WRITE | ACL_EXECUTE, group_class = 0, n_users = 0;
    ssize_t len = fgetxattr(fd, "system.posix_acl_access", raw, sizeof raw);

    if (len < 0)
        return errno == ERANGE ? ACL_WIDER : ACL_NONE; /* ENODATA, ENOTSUP: mode bits only */
    if ((size_t)len < sizeof hdr ||
        ((size_t)len - sizeof hdr) % sizeof(struct posix_acl_xattr_entry))
        return ACL_WIDER;
    memcpy(&hdr, raw, sizeof hdr);
    if (le32toh(hdr.a_version) != POSIX_ACL_XATTR_VERSION)
        return ACL_WIDER;
    /* The mask limits named users, the owning group and named groups: read it first. */
    for (size_t off = sizeof hdr; off < (size_t)len; off += sizeof(struct posix_acl_xattr_entry)) {
        struct posix_acl_xattr_entry e;
        memcpy(&e, raw + off, sizeof e);
        if (le16toh(e.e_tag) == ACL_MASK)
            mask = le16toh(e.e_perm);
    }
    for (size_t off = sizeof hdr; off < (size_t)len; off += sizeof(struct posix_acl_xattr_entry)) {
        struct posix_acl_xattr_entry e;
        unsigned perm;

        memcpy(&e, raw + off, sizeof e);
        perm = le16toh(e.e_perm);
        switch (le16toh(e.e_tag)) {
        case ACL_USER:
            if ((perm & mask) != ACL_READ || (perm & (ACL_WRITE | ACL_EXECUTE)))
                return ACL_WIDER;
            *reader = (uid_t)le32toh(e.e_id);
            n_users++;
            break;
        case ACL_GROUP_OBJ:
        case ACL_GROUP:
            group_class |= perm & mask;
            break;
        case ACL_OTHER:
            if (perm)
                return ACL_WIDER;
            break;
        default: /* ACL_USER_OBJ: the owner, checked by the caller; ACL_MASK: read above */
            break;
        }
    }
    if (n_users == 0)
        return ACL_NONE;
    return n_users == 1 && !group_class && !(mask & (ACL_WRITE | ACL_EXECUTE)) ? ACL_ONE_READER
                                                                               : ACL_WIDER;
}

/* A mode with group bits is fine only as a systemd credential: root's file, no bit for others,
 * read alone in the group class, and an ACL with exactly one named reader. */
static int secret_credential_ok(int fd, const struct stat *st)
{
    uid_t reader;

    if (st->st_uid != 0 || (st->st_mode & S_IRWXO) || (st->st_mode & S_IRWXG) != S_IRGRP)
        return 0;
    return secret_acl_check(fd, &reader) == ACL_ONE_READER;
}

/* The owner and mode of an opened secret: whoever else owns it or may write it chooses what we
 * send to the token; whoever may read it learns the secret. */
static int secret_stat_ok(int fd, const char *path, const char *what, struct itl_error *err)
{
    struct stat st;
    char owner[300], reader[300];

    if (fstat(fd, &st) != 0)
        return err_set(err, ITL_E_USAGE, "cannot stat %s %s: %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(err, ITL_E_USAGE,
                       "%s %s is not a regular file (a FIFO, device or directory): give a file "
                       "that holds the secret, or pass it on a descriptor",
                       what, path);
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        describe_uid(st.st_uid, owner, sizeof owner);
        describe_uid(geteuid(), reader, sizeof reader);
        return err_set(err, ITL_E_USAGE,
                       "%s %s belongs to %s, neither root nor %s that reads it: its owner "
                       "could change it; chown it to root or to %s",
                       what, path, owner, reader, reader);
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) && !secret_credential_ok(fd, &st)) {
        uid_t acl_reader;
        if (secret_acl_check(fd, &acl_reader) != ACL_NONE)
            return err_set(err, ITL_E_USAGE,
                           "%s %s has mode %04o with an ACL that lets more than one user (or a "
                           "group) read it, or someone change it: only a systemd credential's "
                           "ACL is accepted (root's file, one named user with read); see getfacl "
                           "%s, or run setfacl -b %s && chmod 600 %s",
                           what, path, (unsigned)(st.st_mode & 07777), path, path, path);
        return err_set(err, ITL_E_USAGE,
                       "%s %s has mode %04o: other users could read or change it; "
                       "run chmod 600 %s",
                       what, path, (unsigned)(st.st_mode & 07777), path);
    }
    return 0;
}

int tok_secret_open(const char *path, const char *what, struct itl_error *err)
{
    int fd, flags;

    /* O_NONBLOCK: opening a FIFO (or a tty, a device) must not wait for a writer; O_NOFOLLOW: a
     * symbolic link is a name that whoever owns it may point at another file. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
        return err_set(err, ITL_E_USAGE,
                       "%s %s is a symbolic link: give the path of the file itself", what, path);
    if (fd < 0)
        return err_set(err, ITL_E_USAGE, "cannot open %s %s: %s", what, path, strerror(errno));
    if (secret_stat_ok(fd, path, what, err) != 0) {
        close(fd);
        return -1;
    }
    /* A regular file: reads do not block; back to ordinary reads for what follows. */
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, ITL_E_USAGE, "%s %s: %s", what, path, strerror(e));
    }
    return fd;
}

int tok_pin_from_file(const char *path, struct tok_pin *pin, struct itl_error *err)
{
    char what[600];
    int fd, rc;

    fd = tok_secret_open(path, "PIN file", err);
    if (fd < 0)
        return -1;
    snprintf(what, sizeof what, "PIN file %s", path);
    rc = pin_read_fd(fd, pin, what, err);
    close(fd);
    return rc;
}

int tok_pin_from_fd(int fd, struct tok_pin *pin, struct itl_error *err)
{
    char what[64];
    int rc;

    snprintf(what, sizeof what, "the PIN on file descriptor %d", fd);
    if (fd < 0)
        return err_set(err, ITL_E_USAGE, "file descriptor %d is not valid", fd);
    rc = pin_read_fd(fd, pin, what, err);
    close(fd);
    return rc;
}

int tok_pin_set(struct tok_pin *pin, const void *bytes, size_t len, struct itl_error *err)
{
    if (len >= TOK_PIN_MAX)
        return err_set(err, ITL_E_USAGE, "a PIN of %zu bytes is too long (at most %d)", len,
                       TOK_PIN_MAX - 1);
    if (pin_alloc(pin, err) != 0)
        return -1;
    if (len)
        memcpy(pin->bytes, bytes, len);
    pin->len = len;
    return 0;
}

int tok_pin_copy(struct tok_pin *dst, const struct tok_pin *src, struct itl_error *err)
{
    return tok_pin_set(dst, src->bytes, src->len, err);
}

/* ---- Prompt ---- */

static volatile sig_atomic_t prompt_signal;

static void prompt_on_signal(int sig)
{
    prompt_signal = sig;
}

static const int prompt_signals[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTSTP};
#define N_PROMPT_SIGNALS (sizeof prompt_signals / sizeof prompt_signals[0])

/* Reads one line from the terminal into the PIN, byte by byte so nothing is read ahead. */
static int prompt_read_line(int tty, struct tok_pin *pin, struct itl_error *err)
{
    for (;;) {
        unsigned char c;
        ssize_t n = read(tty, &c, 1);
        if (n < 0 && errno == EINTR && !prompt_signal)
            continue;
        if (n < 0 || prompt_signal)
            return err_set(err, ITL_E_USAGE, "no PIN read from the terminal");
        if (n == 0 || c == '\n')
            return 0;
        if (pin->len + 1 >= PIN_PAGE)
            return err_set(err, ITL_E_USAGE, "the PIN typed is too long");
        pin->bytes[pin->len++] = c;
    }
}

int tok_pin_prompt(const char *prompt, struct tok_pin *pin, struct itl_error *err)
{
    struct sigaction sa, saved[N_PROMPT_SIGNALS];
    struct termios old, quiet;
    int tty, rc;

    tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0)
        return err_set(err, ITL_E_USAGE,
                       "no terminal to ask for the PIN on: give --pin-file or --pin-fd");
    if (tcgetattr(tty, &old) != 0) {
        close(tty);
        return err_set(err, ITL_E_USAGE, "cannot switch the terminal's echo off");
    }
    if (pin_alloc(pin, err) != 0) {
        close(tty);
        return -1;
    }
    /* A signal while echo is off must not leave the terminal silent: restore, then re-raise. */
    prompt_signal = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prompt_on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
        sigaction(prompt_signals[i], &sa, &saved[i]);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    (void)tcsetattr(tty, TCSAFLUSH, &quiet);
    if (write(tty, prompt, strlen(prompt)) < 0) {
        /* the prompt is a courtesy; reading still works */
    }
    rc = prompt_read_line(tty, pin, err);
    (void)tcsetattr(tty, TCSAFLUSH, &old);
    if (write(tty, "\n", 1) < 0) {
        /* as above */
    }
    close(tty);
    for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
        sigaction(prompt_signals[i], &saved[i], NULL);
    if (prompt_signal) {
        tok_pin_wipe(pin);
        raise(prompt_signal);
        return err_set(err, ITL_E_USAGE, "interrupted while reading the PIN");
    }
    if (rc != 0) {
        tok_pin_wipe(pin);
        return -1;
    }
    return pin_finish(pin, "the PIN typed", err);
}

/* ---- Login guards ---- */

int tok_login_guard(const CK_TOKEN_INFO *info, struct itl_error *err)
{
    char label[33];

    tok_padded_to_str(info->label, sizeof info->label, label, sizeof label);
    if (info->flags & CKF_USER_PIN_LOCKED)
        return err_set(err, ITL_E_PIN,
                       "token '%s': the user PIN is locked (CKF_USER_PIN_LOCKED) after too many "
                       "wrong PINs; the security officer must unlock it before anyone can log in",
                       label);
    if (info->flags & CKF_USER_PIN_FINAL_TRY)
        return err_set(err, ITL_E_PIN,
                       "token '%s': one more wrong PIN locks it (CKF_USER_PIN_FINAL_TRY); "
                       "refusing to try a PIN automatically: check the PIN, then log in once "
                       "with the token's own tool to reset the counter",
                       label);
    if (info->flags & CKF_USER_PIN_TO_BE_CHANGED)
        return err_set(err, ITL_E_PIN,
                       "token '%s': the user PIN must be changed before use "
                       "(CKF_USER_PIN_TO_BE_CHANGED); change it with the token's own tool "
                       "(e.g. pkcs11-tool --change-pin)",
                       label);
    if ((info->flags & CKF_LOGIN_REQUIRED) && !(info->flags & CKF_USER_PIN_INITIALIZED))
        return err_set(err, ITL_E_PIN,
                       "token '%s': the user PIN was never set (CKF_USER_PIN_INITIALIZED is "
                       "clear); initialise it (pkcs11-tool --init-pin)",
                       label);
    return 0;
}
