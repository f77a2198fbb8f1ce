/* listing: whether files exist, with one readdir per directory instead of one access(2)
 * per file (a million access(2) calls in one directory cost seconds) */
#ifndef MTASTSD_LISTING_H
#define MTASTSD_LISTING_H

#include <stdbool.h>
#include <stddef.h>

#include "hash.h"

struct listing_dir;

struct listing {
	struct hash dirs; /* directory -> struct listing_dir */
	struct listing_dir **v;
	size_t n;
};

/* 0 / -1 (out of memory). */
int listing_init(struct listing *l);
void listing_finish(struct listing *l);

/* Whether path exists, as its directory was when first listed through l. A path without
 * a directory, or a directory that cannot be listed, falls back to access(2). */
bool listing_has(struct listing *l, const char *path);

#endif
