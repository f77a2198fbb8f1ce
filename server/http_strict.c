/* http_strict: strict request parsing on top of libmicrohttpd (RFC 9112): one Host, one
 * framing header, no NUL in the head, no %00 or %2F in the target */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "host.h"
#include "http_conn.h"

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The unescape callback (for the target's path and query): %XX decoded as MHD does, but
 * a NUL or a slash written as %00 or %2F marks the request bad (400): it could only be
 * meant to make the path read as another one. A NUL is never written into the string. */
size_t http_strict_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	struct conn *cn = http_conn(c);
	char *w = s;

	for (const char *r = s; *r != '\0';) {
		int hi = r[0] == '%' ? hex_digit(r[1]) : -1, lo = hi >= 0 ? hex_digit(r[2]) : -1;

		if (lo < 0) {
			*w++ = *r++;
			continue;
		}
		if ((hi == 0 && lo == 0) || (hi == 2 && lo == 0xf)) {
			if (cn != NULL)
				cn->bad_target = true;
		}
		*w++ = hi == 0 && lo == 0 ? '?' : (char)(hi * 16 + lo);
		r += 3;
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* MHD's URI log callback, called with the request target before MHD changes it (and after
 * it cut the request line at the space before the version): where the target's first NUL
 * is, for head_has_nul(). */
void *http_strict_uri_seen(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct conn *cn = http_conn(c);

	(void)cls;
	if (cn != NULL) {
		cn->uri = uri;
		cn->uri_len = uri != NULL ? strlen(uri) : 0;
	}
	return NULL;
}

/* A NUL byte in the request head. libmicrohttpd 0.9.75 parses the head in place in its read
 * buffer and hands out C strings, measured with strlen(): "Host: a\0b" is read as "a". But
 * the strings it hands out lie in the buffer in the order of the head, and what it leaves
 * between two of them is only what it overwrote with NULs (the space after the method and
 * before the version, each colon and line end, blanks it skipped): any other byte between
 * the end of one string and the start of the next is what followed a NUL inside a method,
 * target, version, header name or value. The head is [method, method + its size). */
struct nul_scan {
	uintptr_t start, end; /* the head */
	const char *from;     /* the end of the string before, NULL when not in the head */
	bool bad;
};

static bool in_head(const struct nul_scan *s, const char *p)
{
	return p != NULL && (uintptr_t)p >= s->start && (uintptr_t)p <= s->end;
}

/* Whether [from, to) holds only separators MHD wrote or skipped. */
static bool separators_only(const struct nul_scan *s, const char *from, const char *to)
{
	if (!in_head(s, from) || !in_head(s, to) || (uintptr_t)to < (uintptr_t)from)
		return true; /* not in the buffer (a folded line MHD copied): nothing to compare */
	for (const char *p = from; p < to; p++)
		if (*p != '\0' && *p != ' ' && *p != '\t')
			return false;
	return true;
}

static void scan_next(struct nul_scan *s, const char *str)
{
	if (!separators_only(s, s->from, str))
		s->bad = true;
	s->from = in_head(s, str) ? str + strlen(str) : NULL;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	struct nul_scan *s = cls;

	(void)kind;
	scan_next(s, key);
	if (value != NULL)
		scan_next(s, value);
	return MHD_YES;
}

static bool head_has_nul(struct MHD_Connection *c, const struct conn *cn, const char *method,
                         const char *version)
{
	const union MHD_ConnectionInfo *size =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct nul_scan s = {(uintptr_t)method, 0, NULL, false};

	if (size == NULL || cn == NULL || cn->uri == NULL)
		return false;
	s.end = s.start + size->header_size;
	scan_next(&s, method);
	if (!separators_only(&s, s.from, cn->uri))
		s.bad = true;
	s.from = in_head(&s, cn->uri) ? cn->uri + cn->uri_len : NULL;
	scan_next(&s, version);
	MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &s);
	if (!separators_only(&s, s.from, (const char *)s.end))
		s.bad = true; /* after the last header: its line end and the empty line */
	return s.bad;
}

struct framing {
	unsigned hosts, lengths, encodings;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
	struct framing *f = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		f->hosts++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->lengths++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		f->encodings++;
	return MHD_YES;
}

/* What a strict reading of RFC 9112 refuses with 400, decided once the head is read (before
 * any body, so that a body never becomes a request): not exactly one Host (none only in
 * HTTP/1.0), a Host with a NUL, space, userinfo or bad port, several Content-Length or
 * Transfer-Encoding fields or both kinds at once, a target with %00 or %2F, a NUL byte
 * anywhere in the head. */
bool http_strict_malformed(struct MHD_Connection *c, const struct conn *cn, const char *method,
                           const char *version)
{
	struct framing f = {0, 0, 0};
	const char *host = NULL;
	size_t len = 0;

	if ((cn != NULL && cn->bad_target) || head_has_nul(c, cn, method, version))
		return true;
	MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &f);
	if (f.hosts > 1 || f.lengths > 1 || f.encodings > 1 || (f.lengths != 0 && f.encodings != 0))
		return true;
	if (f.hosts == 0)
		return strcmp(version, MHD_HTTP_VERSION_1_0) != 0;
	if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST,
	                                  strlen(MHD_HTTP_HEADER_HOST), &host, &len) != MHD_YES ||
	    host == NULL)
		return true;
	return strlen(host) != len || !host_well_formed(host, len);
}
