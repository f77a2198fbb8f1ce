/* buf: a growable byte string for rendering text */
#ifndef MTASTSD_BUF_H
#define MTASTSD_BUF_H

#include <stddef.h>
#include <stdbool.h>

struct buf {
	char *data; /* always NUL-terminated once anything was appended */
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: later appends are no-ops */
};

void buf_init(struct buf *b);
void buf_finish(struct buf *b);
/* Each returns 0, or -1 (and sets b->failed) on allocation failure. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
int buf_json_string(struct buf *b, const char *s, size_t len);
/* Returns the data (caller frees) and resets b; NULL if b->failed. */
char *buf_steal(struct buf *b, size_t *ret_len);

#endif
