/* SPDX-License-Identifier: MIT */
/*
 * common: what every layer needs and none owns. It includes nothing of ours; format, pkcs11,
 * policy, signer and tools all build on it.
 *
 *   errors   one error type for the project: a class (what the caller does about it), the
 *            PKCS#11 return value when there is one, and a message that each layer prefixes in
 *            place ("reading /etc/x: line 3: ...") instead of copying between buffers
 *   buf      a growable byte buffer with a size limit and a sticky failure flag (writers check
 *            once, at the end), and a bounds-checked reader over bytes someone else owns
 *            (OpenSSH's sshbuf is the model)
 *   json     JSON strings with the audit log's rules: valid UTF-8 kept, everything else escaped
 *   hex      lower- or upper-case hex with an optional separator, and its inverse
 *   files    read with a limit, write-all, durable atomic replace of a file in a directory
 *   ids      user and group lookups by name or number, thread-safe
 *   time     the two time formats the project prints
 *
 * Functions that can fail return 0 on success and -1 on failure with *err filled in (err may be
 * NULL when the caller only needs the verdict).
 */
#ifndef ITL_COMMON_COMMON_H
#define ITL_COMMON_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* ---- Errors ---- */

#define ITL_ERROR_LEN 1024

/* What the caller does about a failure; the CLI turns it into an exit code, the service into
 * a wire status. */
enum itl_errclass {
    ITL_E_NONE = 0,
    ITL_E_USAGE,     /* bad argument, option, URI, configuration or file name */
    ITL_E_INPUT,     /* malformed bytes, or not what the operation needs */
    ITL_E_DENIED,    /* a rule said no */
    ITL_E_IO,        /* a file or directory could not be read or written */
    ITL_E_MODULE,    /* a PKCS#11 module cannot be loaded or initialised */
    ITL_E_NO_TOKEN,  /* no token matches, or it is not present right now: retry later */
    ITL_E_AMBIGUOUS, /* several tokens or objects match */
    ITL_E_PIN,       /* wrong PIN, locked, final try, must change: never retried */
    ITL_E_NO_KEY,    /* key or certificate not found */
    ITL_E_MECHANISM, /* mechanism not supported or forbidden */
    ITL_E_VERIFY,    /* a signature did not verify */
    ITL_E_DEVICE,    /* another PKCS#11 failure */
    ITL_E_INTERNAL,  /* out of memory, a broken invariant */
};

struct itl_error {
    enum itl_errclass cls;
    unsigned long ckr; /* the CK_RV when the failure came from a PKCS#11 module, else 0 */
    char msg[ITL_ERROR_LEN];
};

/* Set class and message (ckr is reset to 0); returns -1 so callers can `return err_set(...)`.
 * A message longer than the buffer ends in "...". */
int err_set(struct itl_error *err, enum itl_errclass cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int err_setv(struct itl_error *err, enum itl_errclass cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Like err_set, with errno's text appended: "<message>: <strerror(errnum)>"; class ITL_E_IO. */
int err_errno(struct itl_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Put text in front of the message, in place, keeping class and ckr; returns -1. */
int err_prefix(struct itl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Put text after the message, in place, keeping class and ckr; returns -1. For context that
 * reads after the cause ("(<cause>); nothing was released" with err_prefix). */
int err_suffix(struct itl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct itl_error *err);
/* "usage", "input", ... for logs and the wire. */
const char *err_class_name(enum itl_errclass cls);
/* Format into a fixed text field (a message, a path for messages); text cut to fit ends in
 * "..." so nobody takes it for the whole. size must be at least 4. */
void text_printf(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Growable buffer ---- */

/* The largest buffer any caller may grow, unless it sets a smaller limit. */
#define BUF_MAX ((size_t)1 << 30)

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit; /* growing past this fails the buffer; 0 = BUF_MAX */
    int failed;   /* sticky: out of memory or over the limit; later writes do nothing */
    int wipe;     /* zero the memory before freeing or moving it (secrets) */
};

/* A zeroed struct buf is an empty buffer with limit BUF_MAX; these set the options. */
void buf_init(struct buf *b, size_t limit);
void buf_init_secret(struct buf *b, size_t limit);
void buf_put(struct buf *b, const void *data, size_t n);
void buf_put_u8(struct buf *b, uint8_t v);
void buf_put_u16(struct buf *b, uint16_t v); /* big-endian */
void buf_put_u32(struct buf *b, uint32_t v); /* big-endian */
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reserve n bytes at the end and return them (NULL once failed); len grows by n. */
uint8_t *buf_append_space(struct buf *b, size_t n);
/* Overwrite 2 bytes at `at` (already written) big-endian. */
void buf_patch_u16(struct buf *b, size_t at, uint16_t v);
/* The buffer's bytes NUL-terminated (not counted in len), or NULL once failed. */
const char *buf_str(struct buf *b);
/* Hand the bytes to the caller (free() them; NUL-terminated beyond *len); the buffer is empty
 * again. NULL once failed, and then the buffer's memory is already released. */
uint8_t *buf_take(struct buf *b, size_t *len);
/* Empty, and no longer failed, keeping options and memory (wiped if secret). */
void buf_reset(struct buf *b);
/* Release the memory (wiped first if the buffer is secret); the options stay, so a buffer
 * reused after buf_free is still limited and still secret. */
void buf_free(struct buf *b);

/* A bounds-checked reader over bytes the caller owns. Every read past the end fails and sets
 * the sticky `failed`; a parser checks once. */
struct reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    int failed;
};

void rd_init(struct reader *r, const void *data, size_t len);
size_t rd_left(const struct reader *r);
int rd_u8(struct reader *r, uint8_t *v);
int rd_u16(struct reader *r, uint16_t *v); /* big-endian */
int rd_u32(struct reader *r, uint32_t *v); /* big-endian */
/* On failure *v is 0 (and *p NULL), and every later read fails too. rd_left is 0 once failed.
 * Point *p at the next n bytes and step over them. */
int rd_bytes(struct reader *r, size_t n, const uint8_t **p);
int rd_skip(struct reader *r, size_t n);

/* Big-endian loads from memory the caller has checked. */
uint16_t load_u16(const uint8_t *p);
uint32_t load_u32(const uint8_t *p);

/* ---- JSON ---- */

/* Append s (n bytes) as a quoted JSON string: valid UTF-8 is kept as is (overlong forms,
 * surrogates and code points above U+10FFFF are not valid); " and \ as \" and \\, newline and
 * tab as \n and \t; other control bytes, DEL and bytes that are not valid UTF-8 as \u00XX per
 * byte (an invalid byte bb as \u00bb), so every byte of the input can be read back from the
 * record (valid characters are never escaped) and the line stays one line. */
void json_string(struct buf *b, const char *s, size_t n);
/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are not valid). */
size_t utf8_sequence(const unsigned char *s, size_t n);
void json_cstring(struct buf *b, const char *s); /* NUL-terminated; NULL is written as null */
void json_hex(struct buf *b, const uint8_t *data, size_t n); /* "0a1b..." */

/* ---- Hex ---- */

/* out needs 2n+1 bytes without a separator, 3n with one (sep = 0: none); a smaller out gets
 * as many whole bytes as fit, NUL-terminated. Returns out. */
char *hex_lower(const uint8_t *data, size_t n, char sep, char *out, size_t out_size);
char *hex_upper(const uint8_t *data, size_t n, char sep, char *out, size_t out_size);
/* One hex digit of either case: its value 0-15, or -1. */
int hex_digit(int c);
/* Exactly 2n hex digits (either case, no separator) into n bytes; -1 on anything else. */
int hex_decode(const char *hex, uint8_t *out, size_t n);

/* ---- Files ---- */

#define FILE_NOFOLLOW 1u /* refuse a symlink as the last path component */

/* Open a regular file for reading (a FIFO, device, directory or socket is refused without
 * blocking on it); its stat goes in *st when st is not NULL. */
int file_open_regular(const char *path, unsigned flags, struct stat *st, struct itl_error *err);
/* Read a whole regular file of at most `limit` bytes into a new malloc'd buffer (NUL-terminated
 * beyond *len, so text can be parsed in place). Errors name the path. */
int file_read(const char *path, unsigned flags, size_t limit, uint8_t **out, size_t *len,
              struct itl_error *err);
/* The same from an open descriptor; `name` is used in messages. */
int file_read_fd(int fd, const char *name, size_t limit, uint8_t **out, size_t *len,
                 struct itl_error *err);
/* write(2) until done, through EINTR and short writes; -1 with errno set. */
int file_write_all(int fd, const void *data, size_t n);
/* Replace dirfd/name with exactly these bytes, or leave it as it was: an unnamed O_TMPFILE
 * (or, where the file system has none, a hidden ".NAME.tmp.XXXXXX"), fsync (not fdatasync: the
 * owner must be durable too), linked in place, the directory fsync'd. `name` is one path
 * component of at most 200 bytes. When uid/gid are not -1 the file is given to them before it
 * appears. */
int file_replace_at(int dirfd, const char *name, const void *data, size_t n, mode_t mode, uid_t uid,
                    gid_t gid, struct itl_error *err);
/* The same with the directory named in messages and the directory fsync optional: what
 * file_replace_in writes, and where. */
struct file_target {
    int dirfd;
    const char *dir;  /* for messages only; NULL: the name alone */
    const char *name; /* one path component */
    mode_t mode;
    uid_t uid;       /* (uid_t)-1: the writer's */
    gid_t gid;       /* (gid_t)-1: the writer's */
    int no_dir_sync; /* a batch syncs the directory once at the end (file_sync_dir_of) */
};
int file_replace_in(const struct file_target *t, const void *data, size_t n, struct itl_error *err);
/* The same for a path: its directory is opened, then file_replace_at. */
int file_replace(const char *path, const void *data, size_t n, mode_t mode, struct itl_error *err);
/* file_replace without the directory fsync, for a batch that calls file_sync_dir_of once at
 * the end: the new names are durable only after that. */
int file_replace_no_dir_sync(const char *path, const void *data, size_t n, mode_t mode,
                             struct itl_error *err);
/* fsync the directory holding path; on failure errno is kept for the caller to look at. */
int file_sync_dir_of(const char *path, struct itl_error *err);

/* A staged batch write (file_stage.c): many outputs made durable with a constant number of
 * flushes instead of one per file. file_stage_add writes each file's bytes to an unnamed file
 * in its directory (O_TMPFILE; a hidden temporary where there is none) without syncing it;
 * file_stage_commit makes every staged file durable with one syncfs(2) per file system, then
 * gives each its name (replacing an old file atomically), then fsyncs each directory once.
 * A crash or kill at any point leaves each output old or new, never partial. Adds from
 * several threads are safe, and may go on while another thread commits (they join the next
 * commit). Each staged file holds a descriptor until its commit: commit when
 * file_stage_pending reaches what the descriptor limit allows. */
struct file_stage;
struct file_stage *file_stage_new(void);
/* Stage `path` (its directory must exist) with exactly these bytes; `tag` comes back in the
 * commit's callback. Nothing has the name yet. */
int file_stage_add(struct file_stage *s, const char *path, const void *data, size_t n, mode_t mode,
                   void *tag, struct itl_error *err);
size_t file_stage_pending(struct file_stage *s);
/* Called once per staged file after the commit, with err NULL when the file is durable under
 * its name, else why not (the old file, if any, is still there unless err says the directory
 * could not be synced). */
typedef void (*file_stage_done_fn)(void *ctx, void *tag, const char *path,
                                   const struct itl_error *err);
/* Commit what is staged; returns how many files failed (0: all durable). */
size_t file_stage_commit(struct file_stage *s, file_stage_done_fn done, void *ctx);
/* How many device flushes (syncfs, fsync) the commits issued: for tests and the bench. */
unsigned long file_stage_flushes(struct file_stage *s);
/* Discards what is still staged (nothing gets a name) and frees s. */
void file_stage_free(struct file_stage *s);

/* ---- Users and groups ---- */

/* A user by name, or by number when `name` is all digits (the name is tried first); the user
 * must exist: its primary group goes in *gid (gid may be NULL). "no such user" is ITL_E_USAGE. */
int ids_user(const char *name, uid_t *uid, gid_t *gid, struct itl_error *err);
/* A group by name, or by number when all digits (a number needs no group entry). */
int ids_group(const char *name, gid_t *gid, struct itl_error *err);
/* The user's name, or its number as text when it has none. Returns out. */
const char *ids_user_name(uid_t uid, char *out, size_t size);
const char *ids_group_name(gid_t gid, char *out, size_t size);
/* 1 if `user` (with primary group `primary`) is a member of `gid`, 0 if not, -1 on error
 * (getgrouplist: the group database's member lists). */
int ids_user_in_group(const char *user, gid_t primary, gid_t gid);

/* ---- Time ---- */

#define TIME_ISO_LEN 21 /* "2026-12-02T22:01:10Z" */

/* RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ"; "-" for a time that cannot be shown (a year outside
 * 0..9999). Returns out. */
const char *time_iso(time_t t, char out[TIME_ISO_LEN]);
/* "YYYY-MM-DD HH:MM:SS UTC" for people; the number of seconds as text when it cannot be
 * shown. Returns out. */
const char *time_human(time_t t, char *out, size_t size);

#endif
