/* SPDX-License-Identifier: MIT */
/* What the files of common/ share and nobody else uses: the temporaries of the atomic writer
 * (file.c), which the staged batch writer (file_stage.c) publishes the same way. */
#ifndef ITL_COMMON_INTERNAL_H
#define ITL_COMMON_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#define FILE_NAME_MAX_BYTES 200
#define FILE_TMP_NAME_SIZE (FILE_NAME_MAX_BYTES + 32)

/* A file with no name in the directory (O_TMPFILE); -1 where the file system has none. */
int file_open_unnamed(int dirfd, mode_t mode);
/* A hidden ".NAME.tmp.XXXXXX" created exclusively, its name in tmp: the fallback. */
int file_open_named_temp(int dirfd, const char *name, mode_t mode, char *tmp, size_t tmp_size);
/* The complete, synced unnamed file fd gets the name `name` (replacing a file of that name);
 * tmp is scratch space. 0, or -1 with errno. */
int file_publish_unnamed(int fd, int dirfd, const char *name, char *tmp, size_t tmp_size);
/* "a/b/c" into "a/b" and "c" ("c" into "." and "c"); -1 for a path naming a directory. */
int file_split_path(const char *path, char *dir, size_t dir_size, char *name, size_t name_size);

#endif
