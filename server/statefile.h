/* statefile: small files under state_dir, written whole or not at all, read with a cap */
#ifndef MTASTSD_STATEFILE_H
#define MTASTSD_STATEFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with data: a temp file beside it (created with mode), fsync, rename over
 * path, fsync of the directory, so that a reader (another replica too) sees the old or the
 * new file, never a part. Safe from several threads and processes at once (the last
 * rename wins). 0, or -1 with errno set and nothing changed. */
int statefile_write(const char *path, const void *data, size_t len, mode_t mode);

/* Reads the regular file path, of at most max bytes, into *ret (NUL-terminated; caller
 * frees) and its length into *ret_len. A FIFO or device is refused without blocking. 0, or
 * -1 with errno (ENOENT: no such file; EFBIG: larger than max; EINVAL: not a regular file)
 * and *ret untouched. */
int statefile_read(const char *path, size_t max, char **ret, size_t *ret_len);

/* Creates directory path and its missing parents with mode (existing ones are left as
 * they are). 0, or -1 with errno. */
int statefile_mkdirs(const char *path, mode_t mode);

#endif
