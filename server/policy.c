/* policy: strict RFC 8461 §3.2 policy parser, linter, canonical renderer and ids */
#include "policy.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define EXT_NAME_MAX 32
#define MAX_AGE_DIGITS 10
#define LABEL_MAX 63
#define DOMAIN_MAX 253
#define DAY 86400u
#define WEEK 604800u
#define SHOW_MAX 80

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool equal_ci(const char *a, const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

static bool equal(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* s[0..len) made safe for a message: printable ASCII as is, other bytes as \xNN,
 * cut with "..." when long. */
static const char *show(char out[SHOW_MAX], const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (o + 8 > SHOW_MAX) {
			memcpy(out + o, "...", 4);
			return out;
		}
		if (c >= 0x20 && c < 0x7f) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		}
	}
	out[o] = '\0';
	return out;
}

/* Why s[0..len) is not a valid mx pattern, or NULL when it is. */
static const char *mx_problem(const char *s, size_t len)
{
	if (len == 0)
		return "empty value";
	if (len == 1 && s[0] == '*')
		return "a bare '*' is not allowed";
	if (len > DOMAIN_MAX)
		return "longer than 253 characters";
	size_t i = 0;
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		if (len == 2)
			return "'*.' must be followed by a domain";
		i = 2;
	}
	if (s[len - 1] == '.')
		return "trailing dot not allowed";
	size_t label = i;
	for (; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (i == label)
				return "empty label";
			if (i - label > LABEL_MAX)
				return "label longer than 63 characters";
			if (s[label] == '-')
				return "label starts with '-'";
			if (s[i - 1] == '-')
				return "label ends with '-'";
			label = i + 1;
			continue;
		}
		unsigned char c = (unsigned char)s[i];
		if (c == '*')
			return "'*' is only allowed as a leading '*.'";
		if (c >= 0x80)
			return "non-ASCII characters (use the A-label form, xn--...)";
		if (c == '_')
			return "'_' is not allowed in a host name";
		if (!is_alnum(c) && c != '-')
			return "only letters, digits, '-' and '.' are allowed";
	}
	return NULL;
}

bool policy_mx_valid(const char *s, size_t len)
{
	return mx_problem(s, len) == NULL;
}

static int add_mx(struct policy *p, const char *s, size_t len)
{
	char **mx = reallocarray(p->mx, p->n_mx + 1, sizeof(*mx));
	if (!mx)
		return -1;
	p->mx = mx;
	char *copy = malloc(len + 1);
	if (!copy)
		return -1;
	for (size_t i = 0; i < len; i++)
		copy[i] = lower(s[i]);
	copy[len] = '\0';
	p->mx[p->n_mx++] = copy;
	return 0;
}

int policy_add_mx(struct policy *p, const char *pattern)
{
	size_t len = strlen(pattern);
	if (!policy_mx_valid(pattern, len))
		return -1;
	return add_mx(p, pattern, len);
}

void policy_init(struct policy *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = POLICY_MODE_NONE;
}

void policy_finish(struct policy *p)
{
	for (size_t i = 0; i < p->n_mx; i++)
		free(p->mx[i]);
	free(p->mx);
	policy_init(p);
}

const char *policy_mode_name(enum policy_mode mode)
{
	switch (mode) {
	case POLICY_MODE_ENFORCE:
		return "enforce";
	case POLICY_MODE_TESTING:
		return "testing";
	case POLICY_MODE_NONE:
		return "none";
	}
	return NULL;
}

static int mode_parse(const char *s, size_t len, enum policy_mode *ret_mode)
{
	static const enum policy_mode modes[] = {POLICY_MODE_ENFORCE, POLICY_MODE_TESTING,
	                                         POLICY_MODE_NONE};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (equal(s, len, policy_mode_name(modes[i]))) {
			*ret_mode = modes[i];
			return 0;
		}
	}
	return -1;
}

int policy_mode_parse(const char *s, enum policy_mode *ret_mode)
{
	return mode_parse(s, strlen(s), ret_mode);
}

/* Parser state: the first occurrence of each single-valued field wins. */
enum field {
	FIELD_VERSION,
	FIELD_MODE,
	FIELD_MAX_AGE,
	N_FIELDS,
};

static const char *const field_names[N_FIELDS] = {"version", "mode", "max_age"};

struct parser {
	struct diag *d;
	const char *file;
	size_t n_errors;
	unsigned seen[N_FIELDS];      /* line of the first occurrence, 0: none */
	unsigned case_miss[N_FIELDS]; /* line of a name differing only in case */
	bool mode_valid;
	struct policy p;
};

#define parse_error(ps, line, ...)                                                                 \
	((ps)->n_errors++, (ps)->d ? diag_error((ps)->d, (ps)->file, (line), __VA_ARGS__) : (void)0)

/* Length of the well-formed UTF-8 sequence (RFC 3629) at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* ext-value = vchar [*(SP / vchar) vchar], vchar including UTF-8; the caller trimmed
 * surrounding whitespace. */
static bool ext_value_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len;) {
		if ((u[i] >= 0x21 && u[i] <= 0x7e) || u[i] == ' ') {
			i++;
			continue;
		}
		size_t n = utf8_seq(u + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

static void parse_extension(struct parser *ps, unsigned line, const char *name, size_t name_len,
                            const char *value, size_t value_len)
{
	char shown[SHOW_MAX];
	if (name_len > EXT_NAME_MAX) {
		parse_error(ps, line, "field name '%s' is longer than %d characters",
		            show(shown, name, name_len), EXT_NAME_MAX);
		return;
	}
	bool name_ok = is_alnum((unsigned char)name[0]);
	for (size_t i = 1; i < name_len && name_ok; i++) {
		unsigned char c = (unsigned char)name[i];
		name_ok = is_alnum(c) || c == '_' || c == '-' || c == '.';
	}
	if (!name_ok) {
		parse_error(ps, line, "invalid field name '%s'", show(shown, name, name_len));
		return;
	}
	for (int f = 0; f < N_FIELDS; f++)
		if (!ps->case_miss[f] && strlen(field_names[f]) == name_len &&
		    equal_ci(name, field_names[f], name_len))
			ps->case_miss[f] = line;
	if (!ext_value_valid(value, value_len))
		parse_error(ps, line, "field '%s' has an %s value", show(shown, name, name_len),
		            value_len ? "invalid" : "empty");
}

static void parse_max_age(struct parser *ps, unsigned line, const char *v, size_t len)
{
	char shown[SHOW_MAX];
	size_t digits = 0;
	while (digits < len && is_digit((unsigned char)v[digits]))
		digits++;
	if (len == 0) {
		parse_error(ps, line, "max_age is empty");
	} else if (digits != len) {
		parse_error(ps, line, "max_age '%s' is not a decimal number of seconds",
		            show(shown, v, len));
	} else if (len > MAX_AGE_DIGITS) {
		parse_error(ps, line, "max_age '%s' has more than %d digits", show(shown, v, len),
		            MAX_AGE_DIGITS);
	} else {
		uint64_t n = 0;
		for (size_t i = 0; i < len; i++)
			n = n * 10 + (uint64_t)(v[i] - '0');
		if (n > POLICY_MAX_AGE_MAX)
			parse_error(ps, line, "max_age %" PRIu64 " exceeds %u", n,
			            POLICY_MAX_AGE_MAX);
		else if (!ps->seen[FIELD_MAX_AGE])
			ps->p.max_age = (uint32_t)n;
	}
}

/* Records the first occurrence of a single-valued field; false for a later duplicate. */
static bool first_occurrence(struct parser *ps, enum field f, unsigned line)
{
	if (!ps->seen[f])
		return true;
	if (ps->d)
		diag_warn(ps->d, ps->file, line,
		          "duplicate '%s' field ignored (the first one, on line %u, wins)",
		          field_names[f], ps->seen[f]);
	return false;
}

static void parse_field(struct parser *ps, unsigned line, const char *name, size_t name_len,
                        const char *v, size_t len)
{
	char shown[SHOW_MAX];
	if (equal(name, name_len, "version")) {
		if (!equal(v, len, "STSv1"))
			parse_error(ps, line, "version must be 'STSv1', not '%s'",
			            show(shown, v, len));
		if (first_occurrence(ps, FIELD_VERSION, line))
			ps->seen[FIELD_VERSION] = line;
	} else if (equal(name, name_len, "mode")) {
		enum policy_mode mode;
		bool valid = mode_parse(v, len, &mode) == 0;
		if (!valid)
			parse_error(ps, line,
			            "mode must be 'enforce', 'testing' or 'none', not '%s'",
			            show(shown, v, len));
		if (first_occurrence(ps, FIELD_MODE, line)) {
			ps->seen[FIELD_MODE] = line;
			ps->mode_valid = valid;
			if (valid)
				ps->p.mode = mode;
		}
	} else if (equal(name, name_len, "max_age")) {
		parse_max_age(ps, line, v, len);
		if (first_occurrence(ps, FIELD_MAX_AGE, line))
			ps->seen[FIELD_MAX_AGE] = line;
	} else if (equal(name, name_len, "mx")) {
		const char *why = mx_problem(v, len);
		if (why)
			parse_error(ps, line, "invalid mx '%s': %s", show(shown, v, len), why);
		else if (add_mx(&ps->p, v, len) < 0)
			parse_error(ps, line, "out of memory");
	} else {
		parse_extension(ps, line, name, name_len, v, len);
	}
}

/* One line without its terminator; never empty. */
static void parse_line(struct parser *ps, unsigned line, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			parse_error(ps, line, "control character 0x%02x at column %zu", c, i + 1);
			return;
		}
	}
	size_t start = 0;
	while (start < len && is_wsp((unsigned char)s[start]))
		start++;
	if (start == len) {
		parse_error(ps, line, "blank line (only whitespace) not allowed");
		return;
	}
	/* Report, then parse the rest anyway, so one mistake gives one error. */
	if (start > 0)
		parse_error(ps, line, "leading whitespace not allowed");
	const char *name = s + start;
	const char *colon = memchr(name, ':', len - start);
	if (!colon) {
		char shown[SHOW_MAX];
		parse_error(ps, line, "expected 'name: value', got '%s'",
		            show(shown, name, len - start));
		return;
	}
	size_t name_len = (size_t)(colon - name);
	if (name_len > 0 && is_wsp((unsigned char)name[name_len - 1])) {
		parse_error(ps, line, "whitespace before ':' not allowed");
		while (name_len > 0 && is_wsp((unsigned char)name[name_len - 1]))
			name_len--;
	}
	if (name_len == 0) {
		parse_error(ps, line, "field name missing before ':'");
		return;
	}
	const char *v = colon + 1;
	size_t v_len = len - (size_t)(v - s);
	while (v_len > 0 && is_wsp((unsigned char)v[0])) {
		v++;
		v_len--;
	}
	while (v_len > 0 && is_wsp((unsigned char)v[v_len - 1]))
		v_len--;
	parse_field(ps, line, name, name_len, v, v_len);
}

static bool only_terminators(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

static void parse_lines(struct parser *ps, const char *body, size_t len)
{
	size_t pos = 0;
	unsigned line = 1;
	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		parse_error(ps, line, "byte-order mark not allowed");
		pos = 3;
	}
	while (pos < len) {
		size_t end = pos;
		while (end < len && body[end] != '\n' && body[end] != '\r')
			end++;
		bool bare_cr =
		    end < len && body[end] == '\r' && (end + 1 == len || body[end + 1] != '\n');
		size_t next = end == len ? len : end + 1;
		if (end < len && body[end] == '\r' && !bare_cr)
			next = end + 2;
		if (end == pos && only_terminators(body + pos, len - pos)) {
			parse_error(ps, line,
			            "blank line at the end (only one final line "
			            "terminator is allowed)");
			return;
		}
		if (end == pos)
			parse_error(ps, line, "blank line not allowed");
		else
			parse_line(ps, line, body + pos, end - pos);
		/* A bare CR ends the field for recovery but not the numbered line. */
		if (bare_cr)
			parse_error(ps, line, "bare CR: lines must end in LF or CRLF");
		else if (end < len)
			line++;
		pos = next;
	}
}

int policy_parse(struct policy *ret, const char *body, size_t len, struct diag *d, const char *file)
{
	struct parser ps = {.d = d, .file = file};
	policy_init(&ps.p);
	if (len == 0) {
		parse_error(&ps, 0, "empty policy body");
		return -1;
	}
	if (len > POLICY_BODY_MAX) {
		parse_error(&ps, 0, "policy body of %zu bytes exceeds %d bytes", len,
		            POLICY_BODY_MAX);
		return -1;
	}
	parse_lines(&ps, body, len);

	for (int f = 0; f < N_FIELDS; f++) {
		if (ps.seen[f])
			continue;
		if (ps.case_miss[f])
			parse_error(&ps, 0,
			            "missing '%s' field (line %u differs only in case: field "
			            "names are case-sensitive)",
			            field_names[f], ps.case_miss[f]);
		else
			parse_error(&ps, 0, "missing '%s' field", field_names[f]);
	}
	if (ps.mode_valid && ps.p.mode != POLICY_MODE_NONE && ps.p.n_mx == 0)
		parse_error(&ps, ps.seen[FIELD_MODE], "mode %s requires at least one mx",
		            policy_mode_name(ps.p.mode));

	if (ps.n_errors) {
		policy_finish(&ps.p);
		return -1;
	}
	*ret = ps.p;
	return 0;
}

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl_data;

/* Loaded once and kept for the life of the process (the system list if newer than the
 * built-in one). */
static void psl_load(void)
{
	psl_ctx_t *latest = psl_latest(NULL);
	psl_data = latest ? latest : psl_builtin();
}

static bool is_public_suffix(const char *domain)
{
	pthread_once(&psl_once, psl_load);
	if (!psl_data)
		return strchr(domain, '.') == NULL;
	return psl_is_public_suffix(psl_data, domain) != 0;
}

#define lint_warn(d, file, line, ...) ((d) ? diag_warn((d), (file), (line), __VA_ARGS__) : (void)0)

void policy_lint(const struct policy *p, const char *domain, struct diag *d, const char *file,
                 unsigned line)
{
	if (p->mode == POLICY_MODE_TESTING)
		lint_warn(d, file, line,
		          "mode testing: senders only report failures and still deliver "
		          "without TLS");
	if (p->max_age < DAY)
		lint_warn(d, file, line,
		          "max_age %" PRIu32 " is under a day (%u); RFC 8461 expects weeks",
		          p->max_age, DAY);
	else if (p->mode == POLICY_MODE_ENFORCE && p->max_age < WEEK)
		lint_warn(d, file, line,
		          "mode enforce with max_age %" PRIu32 " under a week (%u); prefer "
		          "weeks (RFC 8461 §10.2)",
		          p->max_age, WEEK);
	if (p->mode == POLICY_MODE_NONE && p->n_mx == 0)
		lint_warn(d, file, line,
		          "mode none without mx: some senders, e.g. Stalwart, reject a policy "
		          "without mx; keep the mx lines");
	for (size_t i = 0; i < p->n_mx; i++) {
		const char *mx = p->mx[i];
		size_t len = strlen(mx);
		if (len < 3 || mx[0] != '*' || mx[1] != '.' || len - 2 > DOMAIN_MAX)
			continue;
		char under[DOMAIN_MAX + 1];
		for (size_t j = 2; j <= len; j++)
			under[j - 2] = lower(mx[j]);
		if (is_public_suffix(under))
			lint_warn(d, file, line,
			          "mx '%s' is a wildcard directly under the public suffix '%s'", mx,
			          under);
		else if (domain && strlen(domain) == len - 2 && equal_ci(domain, under, len - 2))
			lint_warn(d, file, line,
			          "mx '%s' matches every host directly under %s, not only its "
			          "mail servers (RFC 8461 §10.4)",
			          mx, domain);
	}
}

char *policy_render(const struct policy *p, size_t *ret_len)
{
	const char *mode = policy_mode_name(p->mode);
	if (!mode)
		return NULL;
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "version: STSv1\r\nmode: %s\r\n", mode);
	for (size_t i = 0; i < p->n_mx; i++) {
		buf_puts(&b, "mx: ");
		size_t start = b.len;
		if (buf_puts(&b, p->mx[i]) == 0)
			for (size_t j = start; j < b.len; j++)
				b.data[j] = lower(b.data[j]);
		buf_puts(&b, "\r\n");
	}
	buf_printf(&b, "max_age: %" PRIu32 "\r\n", p->max_age);
	return buf_steal(&b, ret_len);
}

void policy_id(const char *body, size_t len, char ret_id[POLICY_ID_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[32];
	/* SHA-256 cannot fail short of a broken library; an empty id then fails
	 * policy_id_valid() instead of publishing garbage. */
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, len ? body : "", len, digest) < 0) {
		ret_id[0] = '\0';
		return;
	}
	for (size_t i = 0; i < POLICY_ID_MAX / 2; i++) {
		ret_id[2 * i] = hex[digest[i] >> 4];
		ret_id[2 * i + 1] = hex[digest[i] & 0xf];
	}
	ret_id[POLICY_ID_MAX] = '\0';
}

bool policy_id_valid(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > POLICY_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum((unsigned char)id[i]))
			return false;
	return true;
}

bool policy_mx_match(const char *pattern, const char *host)
{
	size_t plen = strlen(pattern);
	size_t hlen = strlen(host);
	/* MX targets from DNS often carry the root's trailing dot. */
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (plen == 0 || hlen == 0)
		return false;
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		const char *dot = memchr(host, '.', hlen);
		if (!dot || dot == host || memchr(host, '*', (size_t)(dot - host)))
			return false;
		size_t rest = hlen - (size_t)(dot + 1 - host);
		return rest == plen - 2 && equal_ci(dot + 1, pattern + 2, rest);
	}
	return hlen == plen && equal_ci(pattern, host, plen);
}
