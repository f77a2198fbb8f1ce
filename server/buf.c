/* buf: a growable, always NUL-terminated byte string for rendering text */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void buf_finish(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Makes room for extra more bytes plus the terminating NUL. */
static int reserve(struct buf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (extra > SIZE_MAX - b->len - 1)
		goto fail;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	char *data = realloc(b->data, cap);
	if (!data)
		goto fail;
	b->data = data;
	b->cap = cap;
	return 0;
fail:
	b->failed = true;
	return -1;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (reserve(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	if (reserve(b, 0) < 0)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto fail;
	if ((size_t)n >= b->cap - b->len) {
		/* Did not fit: grow to the exact size and format again. */
		if (reserve(b, (size_t)n) < 0)
			return -1;
		va_start(ap, fmt);
		int m = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (m != n)
			goto fail;
	}
	b->len += (size_t)n;
	return 0;
fail:
	b->data[b->len] = '\0';
	b->failed = true;
	return -1;
}

int buf_json_string(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (buf_append(b, "\"", 1) < 0)
		return -1;
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
			continue;
		buf_append(b, s + start, i - start);
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			buf_append(b, esc, sizeof(esc));
		} else {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
			buf_append(b, esc, sizeof(esc));
		}
		start = i + 1;
	}
	buf_append(b, s + start, len - start);
	return buf_append(b, "\"", 1);
}

char *buf_steal(struct buf *b, size_t *ret_len)
{
	if (b->failed) {
		buf_finish(b);
		return NULL;
	}
	/* Nothing appended yet: still hand out an empty string, not NULL. */
	if (!b->data && buf_append(b, "", 0) < 0) {
		buf_finish(b);
		return NULL;
	}
	char *data = b->data;
	if (ret_len)
		*ret_len = b->len;
	memset(b, 0, sizeof(*b));
	return data;
}
