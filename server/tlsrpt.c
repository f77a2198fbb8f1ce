/* tlsrpt: TLS-RPT reports, inflated and parsed strictly, checked against the tenants */
#include "tlsrpt.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#define ZLIB_CONST
#include <zlib.h>

#include "buf.h"
#include "diag.h"

#define WHERE_MAX 96
#define TOKEN_MAX 64
#define POLICY_STRINGS_MAX 1000
#define MX_HOSTS_MAX 1000
#define REASON_MAX 256

static const char *const result_names[] = {
    [TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
    [TLSRPT_RESULT_CERTIFICATE_HOST_MISMATCH] = "certificate-host-mismatch",
    [TLSRPT_RESULT_CERTIFICATE_EXPIRED] = "certificate-expired",
    [TLSRPT_RESULT_CERTIFICATE_NOT_TRUSTED] = "certificate-not-trusted",
    [TLSRPT_RESULT_VALIDATION_FAILURE] = "validation-failure",
    [TLSRPT_RESULT_TLSA_INVALID] = "tlsa-invalid",
    [TLSRPT_RESULT_DNSSEC_INVALID] = "dnssec-invalid",
    [TLSRPT_RESULT_DANE_REQUIRED] = "dane-required",
    [TLSRPT_RESULT_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
    [TLSRPT_RESULT_STS_POLICY_INVALID] = "sts-policy-invalid",
    [TLSRPT_RESULT_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
    [TLSRPT_RESULT_UNKNOWN] = "unknown",
};

static const char *const policy_type_names[] = {
    [TLSRPT_POLICY_STS] = "sts",
    [TLSRPT_POLICY_TLSA] = "tlsa",
    [TLSRPT_POLICY_NO_POLICY_FOUND] = "no-policy-found",
};

const char *tlsrpt_result_name(enum tlsrpt_result result)
{
	return result <= TLSRPT_RESULT_UNKNOWN ? result_names[result] : "unknown";
}

const char *tlsrpt_policy_type_name(enum tlsrpt_policy_type type)
{
	return type <= TLSRPT_POLICY_NO_POLICY_FOUND ? policy_type_names[type] : "?";
}

static void set_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* a message cut short is still a message */
	if (vsnprintf(err, size, fmt, ap) < 0 && size > 0)
		err[0] = '\0';
	va_end(ap);
}

int tlsrpt_content_type(const char *value, enum tlsrpt_encoding *ret_encoding)
{
	static const struct {
		const char *name;
		enum tlsrpt_encoding encoding;
	} types[] = {
	    {"application/tlsrpt+gzip", TLSRPT_ENCODING_GZIP},
	    {"application/tlsrpt+json", TLSRPT_ENCODING_JSON},
	};
	size_t len;

	if (value == NULL)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	len = strcspn(value, ";");
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i].name) == len && strncasecmp(value, types[i].name, len) == 0) {
			*ret_encoding = types[i].encoding;
			return 0;
		}
	return -1;
}

int tlsrpt_inflate(const void *in, size_t in_len, size_t max_out, char **ret, size_t *ret_len,
                   char *err, size_t err_size)
{
	z_stream z;
	char *out = NULL;
	size_t cap, len = 0, members = 0, after = 0;
	int ret_code = -1, zr;

	if (in_len == 0) {
		set_err(err, err_size, "empty body");
		return -1;
	}
	if (in_len > TLSRPT_GZIP_MAX) {
		set_err(err, err_size, "compressed body of %zu bytes exceeds %u bytes", in_len,
		        TLSRPT_GZIP_MAX);
		return -1;
	}
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		set_err(err, err_size, "out of memory");
		return -1;
	}
	/* One byte more than max_out tells a bomb from a body of exactly max_out bytes. */
	cap = in_len < (64u << 10) ? (256u << 10) : 4 * in_len;
	if (cap > max_out + 1)
		cap = max_out + 1;
	if ((out = malloc(cap + 1)) == NULL) {
		set_err(err, err_size, "out of memory");
		goto out;
	}
	z.next_in = (const Bytef *)in;
	z.avail_in = (uInt)in_len;
	for (;;) {
		if (len == cap) {
			size_t grown = 2 * cap > max_out + 1 ? max_out + 1 : 2 * cap;
			char *v = realloc(out, grown + 1);

			if (v == NULL) {
				set_err(err, err_size, "out of memory");
				goto out;
			}
			out = v;
			cap = grown;
		}
		z.next_out = (Bytef *)(out + len);
		z.avail_out = (uInt)(cap - len);
		zr = inflate(&z, Z_NO_FLUSH);
		len = cap - z.avail_out;
		if (len > max_out) {
			set_err(err, err_size, "more than %zu bytes once decompressed: refused",
			        max_out);
			goto out;
		}
		if (zr == Z_STREAM_END) {
			members++;
			if ((after = z.avail_in) == 0)
				break;
			/* What follows a member must be another member (RFC 1952 §2.2); gunzip
			 * ignores trailing garbage, a report body does not have any. */
			if (inflateReset(&z) != Z_OK) {
				set_err(err, err_size, "gzip: cannot restart");
				goto out;
			}
			continue;
		}
		if (zr == Z_DATA_ERROR) {
			if (members > 0)
				set_err(err, err_size,
				        "gzip: %zu bytes after member %zu are not a gzip member",
				        after, members);
			else
				set_err(err, err_size, "gzip: %s",
				        z.msg != NULL ? z.msg : "bad data");
			goto out;
		}
		if (zr == Z_MEM_ERROR) {
			set_err(err, err_size, "out of memory");
			goto out;
		}
		if ((zr == Z_OK || zr == Z_BUF_ERROR) && z.avail_in == 0 && z.avail_out > 0) {
			set_err(err, err_size, "gzip: truncated (the input ends inside member %zu)",
			        members + 1);
			goto out;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			set_err(err, err_size, "gzip: error %d", zr);
			goto out;
		}
	}
	out[len] = '\0';
	*ret = out;
	*ret_len = len;
	out = NULL;
	ret_code = 0;
out:
	free(out);
	inflateEnd(&z);
	return ret_code;
}

/* Bounds nesting and the number of values before jansson builds anything, so that a
 * document of [[[[... or of millions of tiny values costs nothing. 0 / -1. */
static int prescan(const char *s, size_t len, char *err, size_t err_size)
{
	size_t depth = 0, values = 1;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = false;
			continue;
		}
		switch (s[i]) {
		case '"':
			in_string = true;
			break;
		case '[':
		case '{':
			if (++depth > TLSRPT_DEPTH_MAX) {
				set_err(err, err_size, "JSON nested deeper than %d levels",
				        TLSRPT_DEPTH_MAX);
				return -1;
			}
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		case ',':
			if (++values > TLSRPT_VALUES_MAX) {
				set_err(err, err_size, "JSON of more than %d values",
				        TLSRPT_VALUES_MAX);
				return -1;
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

struct parser {
	char *err;
	size_t err_size;
	struct tlsrpt_report *r;
	size_t n_failures; /* so far, all policies */
};

static int fail(struct parser *p, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, const char *where, const char *fmt, ...)
{
	char msg[TLSRPT_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	set_err(p->err, p->err_size, "%s: %s", where, msg);
	return -1;
}

static void where_of(char out[WHERE_MAX], const char *parent, const char *key)
{
	if (snprintf(out, WHERE_MAX, "%s%s%s", parent, parent[0] != '\0' ? "." : "", key) >=
	    WHERE_MAX)
		memcpy(out + WHERE_MAX - 4, "...", 4);
}

/* "parent[i]", cut with "..." when too long for WHERE_MAX. */
static void item_of(char out[WHERE_MAX], const char *parent, size_t i)
{
	if (snprintf(out, WHERE_MAX, "%s[%zu]", parent, i) >= WHERE_MAX)
		memcpy(out + WHERE_MAX - 4, "...", 4);
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a fractional number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* o[key] of type type; NULL (and an error unless optional) when absent or of another type;
 * *ret_absent tells an absent optional member from an error. */
static const json_t *member(struct parser *p, const json_t *o, const char *parent, const char *key,
                            json_type type, bool optional, bool *ret_absent)
{
	static const char *const wanted[] = {
	    [JSON_OBJECT] = "an object",   [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
	    [JSON_INTEGER] = "an integer", [JSON_REAL] = "a number",  [JSON_TRUE] = "a boolean",
	    [JSON_FALSE] = "a boolean",    [JSON_NULL] = "null",
	};
	const json_t *v = json_object_get(o, key);
	char where[WHERE_MAX];

	*ret_absent = false;
	where_of(where, parent, key);
	if (v == NULL) {
		if (optional) {
			*ret_absent = true;
			return NULL;
		}
		fail(p, where, "missing");
		return NULL;
	}
	if (json_typeof(v) != type) {
		fail(p, where, "%s where %s is required", type_name(v), wanted[type]);
		return NULL;
	}
	return v;
}

/* Text for a report field: 1..max bytes, no control characters (jansson has checked the
 * UTF-8 and refuses \u0000). */
static bool text_ok(const char *s, size_t len, size_t max, const char **ret_why)
{
	if (len == 0) {
		*ret_why = "empty";
		return false;
	}
	if (len > max) {
		*ret_why = "too long";
		return false;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			*ret_why = "contains a control character";
			return false;
		}
	return true;
}

/* A copy of string o[key] (1..max bytes of text) into *ret; absent and optional: NULL. */
static int get_text(struct parser *p, const json_t *o, const char *parent, const char *key,
                    bool optional, size_t max, char **ret)
{
	bool absent;
	const json_t *v = member(p, o, parent, key, JSON_STRING, optional, &absent);
	const char *why;
	char where[WHERE_MAX];

	if (v == NULL) {
		*ret = NULL;
		return absent ? 0 : -1;
	}
	if (!text_ok(json_string_value(v), json_string_length(v), max, &why)) {
		where_of(where, parent, key);
		return fail(p, where, "%s", why);
	}
	if ((*ret = strdup(json_string_value(v))) == NULL)
		return fail(p, "report", "out of memory");
	return 0;
}

static int get_count(struct parser *p, const json_t *o, const char *parent, const char *key,
                     uint64_t *ret)
{
	bool absent;
	const json_t *v = member(p, o, parent, key, JSON_INTEGER, false, &absent);
	char where[WHERE_MAX];

	if (v == NULL)
		return -1;
	where_of(where, parent, key);
	if (json_integer_value(v) < 0)
		return fail(p, where, "negative (%" JSON_INTEGER_FORMAT ")", json_integer_value(v));
	if (json_integer_value(v) > TLSRPT_COUNT_MAX)
		return fail(p, where, "absurd (%" JSON_INTEGER_FORMAT ")", json_integer_value(v));
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int digits(const char *s, size_t n, int *ret)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static long long days_from_civil(int y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* An RFC 3339 date-time (§5.6: full-date "T" full-time, fractions of a second ignored,
 * "Z" or a numeric offset) into *ret. 0 / -1. */
static int rfc3339(const char *s, time_t *ret)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	size_t i = 19;

	if (strlen(s) < 20 || digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || digits(s + 8, 2, &d) < 0 || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) < 0 || s[13] != ':' || digits(s + 14, 2, &mi) < 0 ||
	    s[16] != ':' || digits(s + 17, 2, &sec) < 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	if (s[i] == '.') {
		size_t start = ++i;

		while (s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start)
			return -1;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0') {
		sign = 0;
	} else if ((s[i] == '+' || s[i] == '-') && strlen(s + i) == 6 &&
	           digits(s + i + 1, 2, &oh) == 0 && s[i + 3] == ':' &&
	           digits(s + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59) {
		sign = s[i] == '+' ? 1 : -1;
	} else {
		return -1;
	}
	if (sec == 60) /* a leap second counts as the last second of its minute */
		sec = 59;
	*ret = (time_t)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	                sign * (oh * 3600 + om * 60));
	return 0;
}

void tlsrpt_day(time_t t, char out[11])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    snprintf(out, 11, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) != 10)
		memcpy(out, "0000-00-00", 11);
}

/* A domain or host name as sent: lowercased, one trailing dot dropped, then it must be a
 * valid host name (A-labels, no wildcard). NULL when invalid or out of memory. */
static char *host_name(const char *s)
{
	size_t len = strlen(s);
	char *copy;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > TLSRPT_DOMAIN_MAX || s[0] == '*' || !policy_mx_valid(s, len))
		return NULL;
	if ((copy = strndup(s, len)) == NULL)
		return NULL;
	for (char *c = copy; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return copy;
}

static bool ip_valid(const char *s)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

static int parse_date_range(struct parser *p, const json_t *root)
{
	bool absent;
	const json_t *dr = member(p, root, "", "date-range", JSON_OBJECT, false, &absent);
	const json_t *v;

	if (dr == NULL)
		return -1;
	if ((v = member(p, dr, "date-range", "start-datetime", JSON_STRING, false, &absent)) ==
	        NULL ||
	    rfc3339(json_string_value(v), &p->r->start) < 0)
		return v == NULL
		           ? -1
		           : fail(p, "date-range.start-datetime", "not an RFC 3339 date-time");
	if ((v = member(p, dr, "date-range", "end-datetime", JSON_STRING, false, &absent)) ==
	        NULL ||
	    rfc3339(json_string_value(v), &p->r->end) < 0)
		return v == NULL ? -1
		                 : fail(p, "date-range.end-datetime", "not an RFC 3339 date-time");
	if (p->r->start >= p->r->end)
		return fail(p, "date-range", "start-datetime is not before end-datetime");
	if (p->r->end - p->r->start > TLSRPT_SPAN_MAX)
		return fail(p, "date-range", "spans more than %d days", TLSRPT_SPAN_MAX / 86400);
	return 0;
}

/* A string array o[key] of at most max entries of 1..TLSRPT_NAME_MAX bytes of text. */
static int get_strings(struct parser *p, const json_t *o, const char *parent, const char *key,
                       bool optional, size_t max, char ***ret, size_t *ret_n)
{
	bool absent;
	const json_t *a = member(p, o, parent, key, JSON_ARRAY, optional, &absent), *v;
	char where[WHERE_MAX], item[WHERE_MAX];
	const char *why;
	size_t i;

	if (a == NULL)
		return absent ? 0 : -1;
	where_of(where, parent, key);
	if (json_array_size(a) > max)
		return fail(p, where, "more than %zu entries", max);
	if (json_array_size(a) == 0)
		return 0;
	if ((*ret = calloc(json_array_size(a), sizeof(**ret))) == NULL)
		return fail(p, where, "out of memory");
	json_array_foreach(a, i, v)
	{
		item_of(item, where, i);
		if (!json_is_string(v))
			return fail(p, item, "%s where a string is required", type_name(v));
		if (!text_ok(json_string_value(v), json_string_length(v), TLSRPT_NAME_MAX, &why))
			return fail(p, item, "%s", why);
		if (((*ret)[i] = strdup(json_string_value(v))) == NULL)
			return fail(p, item, "out of memory");
		(*ret_n)++;
	}
	return 0;
}

/* The mode line of an sts policy-string, and the id this server gives the policy. */
static void sts_mode_and_id(struct tlsrpt_policy *pol)
{
	struct policy parsed;
	struct diag d;
	struct buf b;
	char *body;
	size_t len;

	for (size_t i = 0; i < pol->n_strings; i++) {
		const char *s = pol->strings[i];
		enum policy_mode mode;
		char value[8];
		size_t n;

		if (strncasecmp(s, "mode:", 5) != 0)
			continue;
		s += 5;
		while (*s == ' ' || *s == '\t')
			s++;
		n = strcspn(s, " \t");
		if (n < sizeof(value) && s[n + strspn(s + n, " \t")] == '\0') {
			memcpy(value, s, n);
			value[n] = '\0';
			if (policy_mode_parse(value, &mode) == 0)
				snprintf(pol->mode, sizeof(pol->mode), "%s",
				         policy_mode_name(mode));
		}
		break;
	}

	buf_init(&b);
	for (size_t i = 0; i < pol->n_strings; i++)
		buf_printf(&b, "%s\r\n", pol->strings[i]);
	if (b.failed || b.len == 0) {
		buf_finish(&b);
		return;
	}
	diag_init(&d);
	if (policy_parse(&parsed, b.data, b.len, &d, "policy-string") == 0) {
		if ((body = policy_render(&parsed, &len)) != NULL) {
			policy_id(body, len, pol->id);
			free(body);
		}
		policy_finish(&parsed);
	}
	diag_finish(&d);
	buf_finish(&b);
}

static int parse_failure(struct parser *p, const json_t *o, const char *parent,
                         struct tlsrpt_failure *f)
{
	char *result = NULL;

	if (!json_is_object(o))
		return fail(p, parent, "%s where an object is required", type_name(o));
	if (get_text(p, o, parent, "result-type", false, TOKEN_MAX, &result) < 0)
		return -1;
	f->result_type = result;
	f->result = TLSRPT_RESULT_UNKNOWN;
	for (int i = 0; i < TLSRPT_RESULT_UNKNOWN; i++)
		if (strcmp(result, result_names[i]) == 0)
			f->result = (enum tlsrpt_result)i;
	for (const char *c = result; *c != '\0'; c++)
		if ((unsigned char)*c > 0x7e || *c == ' ')
			return fail(p, parent, "result-type: not a token");
	if (f->result == TLSRPT_RESULT_UNKNOWN)
		p->r->n_unknown++;

	if (get_text(p, o, parent, "sending-mta-ip", true, TLSRPT_NAME_MAX, &f->sending_mta_ip) <
	        0 ||
	    get_text(p, o, parent, "receiving-ip", true, TLSRPT_NAME_MAX, &f->receiving_ip) < 0 ||
	    get_text(p, o, parent, "receiving-mx-hostname", true, TLSRPT_NAME_MAX,
	             &f->receiving_mx_hostname) < 0 ||
	    get_text(p, o, parent, "receiving-mx-helo", true, TLSRPT_TEXT_MAX,
	             &f->receiving_mx_helo) < 0 ||
	    get_text(p, o, parent, "additional-information", true, TLSRPT_TEXT_MAX,
	             &f->additional_information) < 0 ||
	    get_text(p, o, parent, "failure-reason-code", true, REASON_MAX,
	             &f->failure_reason_code) < 0 ||
	    get_count(p, o, parent, "failed-session-count", &f->failed_session_count) < 0)
		return -1;
	if (f->sending_mta_ip != NULL && !ip_valid(f->sending_mta_ip))
		return fail(p, parent, "sending-mta-ip: not an IP address");
	if (f->receiving_ip != NULL && !ip_valid(f->receiving_ip))
		return fail(p, parent, "receiving-ip: not an IP address");
	if (f->receiving_mx_hostname != NULL) {
		char *host = host_name(f->receiving_mx_hostname);

		if (host == NULL)
			return fail(p, parent, "receiving-mx-hostname: not a host name");
		free(f->receiving_mx_hostname);
		f->receiving_mx_hostname = host;
	}
	return 0;
}

static int parse_policy(struct parser *p, const json_t *o, const char *parent,
                        struct tlsrpt_policy *pol)
{
	char where[WHERE_MAX], item[WHERE_MAX];
	const json_t *po, *v, *summary, *details;
	char *type = NULL, *domain = NULL;
	bool absent;
	size_t i;
	int ret = -1;

	if (!json_is_object(o))
		return fail(p, parent, "%s where an object is required", type_name(o));
	if ((po = member(p, o, parent, "policy", JSON_OBJECT, false, &absent)) == NULL)
		return -1;
	where_of(where, parent, "policy");
	if (get_text(p, po, where, "policy-type", false, TOKEN_MAX, &type) < 0)
		goto out;
	for (i = 0; i <= TLSRPT_POLICY_NO_POLICY_FOUND; i++)
		if (strcmp(type, policy_type_names[i]) == 0)
			break;
	if (i > TLSRPT_POLICY_NO_POLICY_FOUND) {
		fail(p, where, "policy-type: not sts, tlsa or no-policy-found");
		goto out;
	}
	pol->type = (enum tlsrpt_policy_type)i;
	/* A sender that found no policy has none to quote. */
	if (get_strings(p, po, where, "policy-string", pol->type == TLSRPT_POLICY_NO_POLICY_FOUND,
	                POLICY_STRINGS_MAX, &pol->strings, &pol->n_strings) < 0 ||
	    get_strings(p, po, where, "mx-host", true, MX_HOSTS_MAX, &pol->mx_hosts,
	                &pol->n_mx_hosts) < 0 ||
	    get_text(p, po, where, "policy-domain", false, TLSRPT_NAME_MAX, &domain) < 0)
		goto out;
	if ((pol->domain = host_name(domain)) == NULL) {
		fail(p, where, "policy-domain: not a domain name");
		goto out;
	}
	if (pol->type == TLSRPT_POLICY_STS)
		sts_mode_and_id(pol);

	if ((summary = member(p, o, parent, "summary", JSON_OBJECT, false, &absent)) == NULL)
		goto out;
	where_of(where, parent, "summary");
	if (get_count(p, summary, where, "total-successful-session-count", &pol->successful) < 0 ||
	    get_count(p, summary, where, "total-failure-session-count", &pol->failed) < 0)
		goto out;

	details = member(p, o, parent, "failure-details", JSON_ARRAY, true, &absent);
	if (details == NULL && !absent)
		goto out;
	where_of(where, parent, "failure-details");
	if (details != NULL && json_array_size(details) > 0) {
		if (json_array_size(details) > TLSRPT_FAILURES_MAX - p->n_failures) {
			fail(p, where, "more than %d failure details in the report",
			     TLSRPT_FAILURES_MAX);
			goto out;
		}
		if ((pol->failures = calloc(json_array_size(details), sizeof(*pol->failures))) ==
		    NULL) {
			fail(p, where, "out of memory");
			goto out;
		}
		json_array_foreach(details, i, v)
		{
			item_of(item, where, i);
			pol->n_failures++;
			if (parse_failure(p, v, item, &pol->failures[i]) < 0)
				goto out;
		}
		p->n_failures += pol->n_failures;
	}
	ret = 0;
out:
	free(type);
	free(domain);
	return ret;
}

struct tlsrpt_report *tlsrpt_parse(const char *json, size_t len, char *err, size_t err_size)
{
	struct parser p = {.err = err, .err_size = err_size};
	const json_t *policies, *v;
	json_error_t jerr;
	json_t *root = NULL;
	bool absent;
	size_t i;

	if (len == 0) {
		set_err(err, err_size, "empty report");
		return NULL;
	}
	if (len > TLSRPT_JSON_MAX) {
		set_err(err, err_size, "report of %zu bytes exceeds %u bytes", len,
		        TLSRPT_JSON_MAX);
		return NULL;
	}
	if (prescan(json, len, err, err_size) < 0)
		return NULL;
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		set_err(err, err_size, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
		        jerr.column);
		return NULL;
	}
	if ((p.r = calloc(1, sizeof(*p.r))) == NULL) {
		set_err(err, err_size, "out of memory");
		goto fail;
	}
	if (!json_is_object(root)) {
		fail(&p, "report", "%s where an object is required", type_name(root));
		goto fail;
	}
	if (get_text(&p, root, "", "organization-name", false, TLSRPT_NAME_MAX,
	             &p.r->organization) < 0 ||
	    get_text(&p, root, "", "report-id", false, TLSRPT_NAME_MAX, &p.r->report_id) < 0 ||
	    get_text(&p, root, "", "contact-info", false, TLSRPT_NAME_MAX, &p.r->contact) < 0 ||
	    parse_date_range(&p, root) < 0)
		goto fail;
	if ((policies = member(&p, root, "", "policies", JSON_ARRAY, false, &absent)) == NULL)
		goto fail;
	if (json_array_size(policies) == 0) {
		fail(&p, "policies", "empty");
		goto fail;
	}
	if (json_array_size(policies) > TLSRPT_POLICIES_MAX) {
		fail(&p, "policies", "more than %d entries", TLSRPT_POLICIES_MAX);
		goto fail;
	}
	if ((p.r->policies = calloc(json_array_size(policies), sizeof(*p.r->policies))) == NULL) {
		fail(&p, "policies", "out of memory");
		goto fail;
	}
	json_array_foreach(policies, i, v)
	{
		char where[WHERE_MAX];

		item_of(where, "policies", i);
		p.r->n_policies++;
		if (parse_policy(&p, v, where, &p.r->policies[i]) < 0)
			goto fail;
	}
	json_decref(root);
	return p.r;
fail:
	json_decref(root);
	tlsrpt_free(p.r);
	return NULL;
}

struct tlsrpt_report *tlsrpt_read(const void *body, size_t len, enum tlsrpt_encoding encoding,
                                  char *err, size_t err_size)
{
	struct tlsrpt_report *r;
	char *json;
	size_t json_len;

	if (encoding == TLSRPT_ENCODING_JSON)
		return tlsrpt_parse(body, len, err, err_size);
	if (tlsrpt_inflate(body, len, TLSRPT_JSON_MAX, &json, &json_len, err, err_size) < 0)
		return NULL;
	r = tlsrpt_parse(json, json_len, err, err_size);
	free(json);
	return r;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void tlsrpt_free(struct tlsrpt_report *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_policies; i++) {
		struct tlsrpt_policy *pol = &r->policies[i];

		free(pol->domain);
		free_strings(pol->strings, pol->n_strings);
		free_strings(pol->mx_hosts, pol->n_mx_hosts);
		for (size_t k = 0; k < pol->n_failures; k++) {
			struct tlsrpt_failure *f = &pol->failures[k];

			free(f->result_type);
			free(f->sending_mta_ip);
			free(f->receiving_mx_hostname);
			free(f->receiving_mx_helo);
			free(f->receiving_ip);
			free(f->additional_information);
			free(f->failure_reason_code);
		}
		free(pol->failures);
	}
	free(r->policies);
	free(r->organization);
	free(r->report_id);
	free(r->contact);
	free(r);
}

int tlsrpt_check_tenant(const struct tlsrpt_report *r,
                        bool (*served)(void *arg, const char *domain), void *arg, char *err,
                        size_t err_size)
{
	for (size_t i = 0; i < r->n_policies; i++)
		if (!served(arg, r->policies[i].domain)) {
			set_err(err, err_size,
			        "policies[%zu].policy.policy-domain: %s is not served here", i,
			        r->policies[i].domain);
			return -1;
		}
	return 0;
}
