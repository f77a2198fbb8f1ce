/* test_policy: the strict RFC 8461 parser (SPEC.md section 4 cases 1-15), lint, render, id */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define B(s) s, sizeof(s) - 1

#define BASE "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n"
#define BASE_CANON "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"

static const struct {
	const char *body;
	size_t len;
	const char *canon; /* expected policy_render() of the parsed policy */
	size_t n_warnings; /* from the parser (duplicates) */
} valid_cases[] = {
    /* 1 */
    {B(BASE), BASE_CANON, 0},
    /* 2: CRLF, mixed, and no final terminator */
    {B("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"), BASE_CANON,
     0},
    {B("version: STSv1\nmode: enforce\r\nmx: mx1.example.com\nmax_age: 604800\r\n"), BASE_CANON, 0},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800"), BASE_CANON, 0},
    /* free order, trailing whitespace, no or several spaces after ':' */
    {B("max_age:604800 \t\nmx:\tmx1.example.com\r\nmode:   enforce  \nversion: STSv1\t"),
     BASE_CANON, 0},
    /* 8: bounds and leading zeros */
    {B("version: STSv1\nmode: none\nmx: a.example\nmax_age: 31557600\n"),
     "version: STSv1\r\nmode: none\r\nmx: a.example\r\nmax_age: 31557600\r\n", 0},
    {B("version: STSv1\nmode: none\nmx: a.example\nmax_age: 0\n"),
     "version: STSv1\r\nmode: none\r\nmx: a.example\r\nmax_age: 0\r\n", 0},
    {B("version: STSv1\nmode: testing\nmx: a.example\nmax_age: 0000086400\n"),
     "version: STSv1\r\nmode: testing\r\nmx: a.example\r\nmax_age: 86400\r\n", 0},
    /* 9: mode none needs no mx */
    {B("version: STSv1\nmode: none\nmax_age: 86400\n"),
     "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n", 0},
    /* 10: the first duplicate wins (with a warning), mx lines accumulate in order */
    {B("version: STSv1\nmode: testing\nmode: enforce\nmx: b.example\nmx: a.example\n"
       "max_age: 86400\nmax_age: 1\nversion: STSv1\n"),
     "version: STSv1\r\nmode: testing\r\nmx: b.example\r\nmx: a.example\r\nmax_age: "
     "86400\r\n",
     3},
    /* 11: extension fields are validated and dropped; 6: "Mode" is an extension */
    {B("version: STSv1\nfoo_bar.x-1: any value \xc3\xbc\nmode: enforce\nMode: none\n"
       "mx: mx1.example.com\nmax_age: 604800\nreport-uri: https://r.example/x?a=b:c\n"
       "x: 1\n0123456789abcdef0123456789abcdef: v\n"),
     BASE_CANON, 0},
    /* 12 */
    {B("version: STSv1\nmode: enforce\nmx: MX.Example.COM\nmx: *.example.net\n"
       "mx: xn--bcher-kva.example\nmx: mail.example.com\nmax_age: 604800\n"),
     "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmx: *.example.net\r\n"
     "mx: xn--bcher-kva.example\r\nmx: mail.example.com\r\nmax_age: 604800\r\n",
     0},
};

START_TEST(test_parse_valid)
{
	struct diag d;
	diag_init(&d);
	struct policy p;
	int r = policy_parse(&p, valid_cases[_i].body, valid_cases[_i].len, &d, "t.txt");
	if (r != 0)
		diag_print(&d, stderr);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_eq(d.n_warnings, valid_cases[_i].n_warnings);

	/* Canonical render, and render -> parse -> render is a fixed point. */
	size_t len = 0;
	char *canon = policy_render(&p, &len);
	ck_assert_ptr_nonnull(canon);
	ck_assert_str_eq(canon, valid_cases[_i].canon);
	ck_assert_uint_eq(len, strlen(valid_cases[_i].canon));
	struct policy again;
	ck_assert_int_eq(policy_parse(&again, canon, len, &d, "t.txt"), 0);
	char *canon2 = policy_render(&again, NULL);
	ck_assert_str_eq(canon2, canon);
	ck_assert_uint_eq(d.n_warnings, valid_cases[_i].n_warnings);
	free(canon2);
	free(canon);
	policy_finish(&again);
	policy_finish(&p);
	diag_finish(&d);
}
END_TEST

static const struct {
	const char *body;
	size_t len;
	size_t n_errors;
	unsigned line;   /* of the first error */
	const char *msg; /* the first error message contains this */
} invalid_cases[] = {
    /* 3: bare CR */
    {B("version: STSv1\rmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 1, "bare CR"},
    {B(BASE "x: y\r"), 1, 5, "bare CR"},
    /* 4: blank lines */
    {B("version: STSv1\nmode: enforce\n\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 3,
     "blank line not allowed"},
    {B("version: STSv1\nmode: enforce\n \t\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 3,
     "blank line"},
    {B(BASE "\n"), 1, 5, "blank line at the end"},
    {B("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n\r\n"), 1, 5,
     "blank line at the end"},
    /* 5: leading whitespace, whitespace before ':' */
    {B("version: STSv1\n mode: enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 2,
     "leading whitespace"},
    {B("\tversion: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 1,
     "leading whitespace"},
    {B("version: STSv1\nmode : enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 2,
     "whitespace before ':'"},
    /* 6: "Mode" is an extension, so the mode is missing */
    {B("version: STSv1\nMode: enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 0,
     "missing 'mode' field (line 2 differs only in case"},
    {B("version: STSv1\nMode: enforce\nMODE: enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1,
     0, "missing 'mode' field (line 2 differs"},
    /* 7 */
    {B("version: STSv1\nmode: Enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 2,
     "mode must be 'enforce', 'testing' or 'none', not 'Enforce'"},
    {B("version: STSv2\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 1,
     "version must be 'STSv1', not 'STSv2'"},
    {B("mode: enforce\nmx: mx1.example.com\nmax_age: 604800\n"), 1, 0, "missing 'version' field"},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\n"), 1, 0, "missing 'max_age' field"},
    /* 8 */
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 31557601\n"), 1, 4,
     "max_age 31557601 exceeds 31557600"},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 12345678901\n"), 1, 4,
     "more than 10 digits"},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: +86400\n"), 1, 4,
     "max_age '+86400' is not a decimal number"},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: -1\n"), 1, 4,
     "max_age '-1' is not"},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 86400s\n"), 1, 4,
     "max_age '86400s' is not"},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age:\n"), 1, 4, "max_age is empty"},
    {B("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 9999999999\n"), 1, 4,
     "max_age 9999999999 exceeds"},
    /* 9 */
    {B("version: STSv1\nmode: enforce\nmax_age: 604800\n"), 1, 2,
     "mode enforce requires at least one mx"},
    {B("version: STSv1\nmax_age: 604800\nmode: testing\n"), 1, 3,
     "mode testing requires at least one mx"},
    /* 11: extension names and values */
    {B(BASE "a23456789012345678901234567890123: x\n"), 1, 5, "longer than 32 characters"},
    {B(BASE "-foo: x\n"), 1, 5, "invalid field name '-foo'"},
    {B(BASE "foo bar: x\n"), 1, 5, "invalid field name 'foo bar'"},
    {B(BASE "foo:\n"), 1, 5, "field 'foo' has an empty value"},
    {B(BASE "foo: a\tb\n"), 1, 5, "field 'foo' has an invalid value"},
    {B(BASE "foo: \xc3\n"), 1, 5, "field 'foo' has an invalid value"},
    {B(BASE "foo: \xed\xa0\x80\n"), 1, 5, "invalid value"},
    {B(BASE "just text\n"), 1, 5, "expected 'name: value', got 'just text'"},
    {B(BASE ": value\n"), 1, 5, "field name missing"},
    /* 13: an empty mx (and the only one) */
    {B("version: STSv1\nmode: enforce\nmx:\nmax_age: 604800\n"), 2, 3,
     "invalid mx '': empty value"},
    /* 14: byte-order mark, NUL, control characters */
    {B("\xef\xbb\xbf" BASE), 1, 1, "byte-order mark"},
    {B("version: STSv1\nmode: enforce\0\nmx: mx1.example.com\nmax_age: 604800\n"), 2, 2,
     "control character 0x00 at column 14"},
    {B(BASE "x: \x01\n"), 1, 5, "control character 0x01"},
    {B(BASE "x: a\x7f\n"), 1, 5, "control character 0x7f"},
    {B(BASE "\x1b[1m: x\n"), 1, 5, "control character 0x1b at column 1"},
    /* 15 */
    {B(""), 1, 0, "empty policy body"},
    {B("\n"), 4, 1, "blank line at the end"},
};

START_TEST(test_parse_invalid)
{
	struct diag d;
	diag_init(&d);
	struct policy p;
	int r = policy_parse(&p, invalid_cases[_i].body, invalid_cases[_i].len, &d, "t.txt");
	ck_assert_int_eq(r, -1);
	if (d.n_errors != invalid_cases[_i].n_errors)
		diag_print(&d, stderr);
	ck_assert_uint_eq(d.n_errors, invalid_cases[_i].n_errors);
	ck_assert_uint_ge(d.n, 1);
	ck_assert_int_eq(d.v[0].level, DIAG_ERROR);
	ck_assert_str_eq(d.v[0].file, "t.txt");
	ck_assert_uint_eq(d.v[0].line, invalid_cases[_i].line);
	ck_assert_msg(strstr(d.v[0].msg, invalid_cases[_i].msg), "'%s' lacks '%s'", d.v[0].msg,
	              invalid_cases[_i].msg);
	diag_finish(&d);
}
END_TEST

static const char *const mx_valid_cases[][2] = {
    {"mail.example.com", "mail.example.com"},
    {"*.example.net", "*.example.net"},
    {"xn--bcher-kva.example", "xn--bcher-kva.example"},
    {"MX.Example.COM", "mx.example.com"},
    {"localhost", "localhost"},
    {"a-b.1x.example", "a-b.1x.example"},
    {"123.example", "123.example"},
};

START_TEST(test_mx_valid)
{
	const char *mx = mx_valid_cases[_i][0];
	ck_assert(policy_mx_valid(mx, strlen(mx)));
	char body[512];
	int n = snprintf(body, sizeof(body),
	                 "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 604800\n", mx);
	ck_assert(n > 0 && (size_t)n < sizeof(body));
	struct diag d;
	diag_init(&d);
	struct policy p;
	ck_assert_int_eq(policy_parse(&p, body, (size_t)n, &d, NULL), 0);
	ck_assert_uint_eq(p.n_mx, 1);
	ck_assert_str_eq(p.mx[0], mx_valid_cases[_i][1]);
	policy_finish(&p);

	policy_init(&p);
	ck_assert_int_eq(policy_add_mx(&p, mx), 0);
	ck_assert_str_eq(p.mx[0], mx_valid_cases[_i][1]);
	policy_finish(&p);
	diag_finish(&d);
}
END_TEST

static const char *const mx_invalid_cases[][2] = {
    {"*", "bare '*'"},
    {"*.", "'*.' must be followed by a domain"},
    {"mail.*.com", "'*' is only allowed as a leading '*.'"},
    {"*example.com", "'*' is only allowed"},
    {"*.*.example.com", "'*' is only allowed"},
    {"mail.example.com.", "trailing dot"},
    {"-mx.example.com", "label starts with '-'"},
    {"mx-.example.com", "label ends with '-'"},
    {"mx_1.example.com", "'_' is not allowed"},
    {"b\xc3\xbc"
     "cher.example",
     "non-ASCII"},
    {"a..b", "empty label"},
    {".a.example", "empty label"},
    {"mx 1.example.com", "only letters, digits"},
    {"a@b.example", "only letters, digits"},
    {"", "empty value"},
};

START_TEST(test_mx_invalid)
{
	const char *mx = mx_invalid_cases[_i][0];
	ck_assert(!policy_mx_valid(mx, strlen(mx)));
	char body[512];
	int n = snprintf(body, sizeof(body),
	                 "version: STSv1\nmode: enforce\nmx: ok.example\nmx: %s\n"
	                 "max_age: 604800\n",
	                 mx);
	ck_assert(n > 0 && (size_t)n < sizeof(body));
	struct diag d;
	diag_init(&d);
	struct policy p;
	ck_assert_int_eq(policy_parse(&p, body, (size_t)n, &d, NULL), -1);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_uint_eq(d.v[0].line, 4);
	ck_assert_ptr_nonnull(strstr(d.v[0].msg, "invalid mx"));
	ck_assert_msg(strstr(d.v[0].msg, mx_invalid_cases[_i][1]), "'%s' lacks '%s'", d.v[0].msg,
	              mx_invalid_cases[_i][1]);

	/* policy_add_mx refuses it and leaves the policy as it was. */
	policy_init(&p);
	ck_assert_int_eq(policy_add_mx(&p, mx), -1);
	ck_assert_uint_eq(p.n_mx, 0);
	ck_assert_ptr_null(p.mx);
	policy_finish(&p);
	diag_finish(&d);
}
END_TEST

/* 13: DNS length limits, 63 per label and 253 in total. */
static const struct {
	size_t label; /* length of the first label */
	size_t total; /* total length, padded with "a." labels before "example" */
	bool valid;
} length_cases[] = {
    {63, 0, true},
    {64, 0, false},
    {0, 253, true},
    {0, 254, false},
};

START_TEST(test_mx_lengths)
{
	char s[300];
	size_t len = 0;
	if (length_cases[_i].label) {
		memset(s, 'a', length_cases[_i].label);
		len = length_cases[_i].label;
		memcpy(s + len, ".example", 9);
		len += 8;
	} else {
		/* "a.a. ... .example" padded at the front to the exact total. */
		size_t pad = length_cases[_i].total - 7;
		for (size_t i = 0; i < pad; i += 2)
			memcpy(s + i, "a.", 2);
		if (pad % 2) {
			memmove(s + 1, s, pad);
			s[0] = 'b';
		}
		memcpy(s + pad, "example", 8);
		len = pad + 7;
		ck_assert_uint_eq(len, length_cases[_i].total);
	}
	ck_assert_uint_eq(strlen(s), len);
	ck_assert_int_eq(policy_mx_valid(s, len), length_cases[_i].valid);
	ck_assert(!policy_mx_valid(s, len + 1) || length_cases[_i].valid);
}
END_TEST

START_TEST(test_every_error_reported)
{
	static const char body[] = "version: STSv2\nmode: enforce\nmx: mail.*.com\n"
	                           "max_age: 31557601\nmx: ok.example\n";
	struct diag d;
	diag_init(&d);
	struct policy p;
	ck_assert_int_eq(policy_parse(&p, body, sizeof(body) - 1, &d, "body.txt"), -1);
	ck_assert_uint_eq(d.n_errors, 3);
	ck_assert_uint_eq(d.n, 3);
	ck_assert_uint_eq(d.v[0].line, 1);
	ck_assert_uint_eq(d.v[1].line, 3);
	ck_assert_uint_eq(d.v[2].line, 4);
	ck_assert_str_eq(d.v[0].msg, "version must be 'STSv1', not 'STSv2'");
	ck_assert_str_eq(d.v[1].msg,
	                 "invalid mx 'mail.*.com': '*' is only allowed as a leading '*.'");
	ck_assert_str_eq(d.v[2].msg, "max_age 31557601 exceeds 31557600");
	diag_finish(&d);
}
END_TEST

/* Line numbers count LF or CRLF lines, whatever the mix. */
START_TEST(test_error_lines_mixed_terminators)
{
	static const char body[] = "version: STSv1\r\nmode: enforce\nfoo:\r\nmx: x_y.example\n"
	                           "max_age: 604800\r\n\r\n";
	struct diag d;
	diag_init(&d);
	struct policy p;
	ck_assert_int_eq(policy_parse(&p, body, sizeof(body) - 1, &d, NULL), -1);
	ck_assert_uint_eq(d.n_errors, 4);
	ck_assert_uint_eq(d.v[0].line, 3);
	ck_assert_uint_eq(d.v[1].line, 4);
	ck_assert_uint_eq(d.v[2].line, 6);
	ck_assert_ptr_nonnull(strstr(d.v[2].msg, "blank line at the end"));
	ck_assert_uint_eq(d.v[3].line, 2);
	ck_assert_str_eq(d.v[3].msg, "mode enforce requires at least one mx");
	diag_finish(&d);
}
END_TEST

START_TEST(test_ret_untouched_on_failure)
{
	static char sentinel_mx[] = "sentinel.example";
	char *mx_list[] = {sentinel_mx};
	struct policy p = {.mode = POLICY_MODE_TESTING, .max_age = 4242, .mx = mx_list, .n_mx = 1};
	struct policy before = p;
	ck_assert_int_eq(
	    policy_parse(&p, B("version: STSv1\nmode: enforce\nmax_age: 1\n"), NULL, NULL), -1);
	ck_assert_mem_eq(&p, &before, sizeof(p));
	ck_assert_int_eq(policy_parse(&p, B(""), NULL, NULL), -1);
	ck_assert_mem_eq(&p, &before, sizeof(p));

	enum policy_mode mode = POLICY_MODE_TESTING;
	ck_assert_int_eq(policy_mode_parse("Enforce", &mode), -1);
	ck_assert_int_eq(mode, POLICY_MODE_TESTING);
	ck_assert_int_eq(policy_mode_parse("enforce", &mode), 0);
	ck_assert_int_eq(mode, POLICY_MODE_ENFORCE);
	ck_assert_str_eq(policy_mode_name(POLICY_MODE_NONE), "none");
}
END_TEST

/* A body of exactly POLICY_BODY_MAX bytes is fine, one more byte is not. */
START_TEST(test_body_size_limit)
{
	size_t max = POLICY_BODY_MAX;
	char *body = malloc(max + 2);
	ck_assert_ptr_nonnull(body);
	size_t head = strlen(BASE "x-pad: ");
	memcpy(body, BASE "x-pad: ", head);
	memset(body + head, 'a', max + 1 - head);
	body[max] = '\n';
	struct diag d;
	diag_init(&d);
	struct policy p;
	ck_assert_int_eq(policy_parse(&p, body, max, &d, NULL), 0);
	policy_finish(&p);
	ck_assert_int_eq(policy_parse(&p, body, max + 1, &d, NULL), -1);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_str_eq(d.v[0].msg, "policy body of 65537 bytes exceeds 65536 bytes");
	diag_finish(&d);
	free(body);
}
END_TEST

/* Known SHA-256 vectors: the id is the first 32 lowercase hex digits. */
START_TEST(test_id_vectors)
{
	char id[POLICY_ID_MAX + 1];
	policy_id("", 0, id);
	ck_assert_str_eq(id, "e3b0c44298fc1c149afbf4c8996fb924");
	policy_id("abc", 3, id);
	ck_assert_str_eq(id, "ba7816bf8f01cfea414140de5dae2223");
	ck_assert(policy_id_valid(id));
}
END_TEST

static const struct {
	enum policy_mode mode;
	uint32_t max_age;
	const char *mx[3];
} id_variants[] = {
    {POLICY_MODE_ENFORCE, 604800, {"a.example", "b.example", NULL}},
    {POLICY_MODE_TESTING, 604800, {"a.example", "b.example", NULL}},
    {POLICY_MODE_NONE, 604800, {"a.example", "b.example", NULL}},
    {POLICY_MODE_ENFORCE, 604801, {"a.example", "b.example", NULL}},
    {POLICY_MODE_ENFORCE, 604800, {"b.example", "a.example", NULL}},
    {POLICY_MODE_ENFORCE, 604800, {"a.example", NULL, NULL}},
    {POLICY_MODE_ENFORCE, 604800, {"a.example", "c.example", NULL}},
    {POLICY_MODE_ENFORCE, 604800, {"a.example", "b.example", "c.example"}},
    {POLICY_MODE_ENFORCE, 604800, {"a.example", "*.b.example", NULL}},
};

static void variant_id(size_t i, char id[POLICY_ID_MAX + 1])
{
	struct policy p;
	policy_init(&p);
	p.mode = id_variants[i].mode;
	p.max_age = id_variants[i].max_age;
	for (size_t j = 0; j < 3 && id_variants[i].mx[j]; j++)
		ck_assert_int_eq(policy_add_mx(&p, id_variants[i].mx[j]), 0);
	size_t len;
	char *body = policy_render(&p, &len);
	ck_assert_ptr_nonnull(body);
	policy_id(body, len, id);
	free(body);
	policy_finish(&p);
}

/* 16: any change to mode, max_age, an mx or mx order changes the id; same body, same id. */
START_TEST(test_id_changes)
{
	char id[POLICY_ID_MAX + 1], again[POLICY_ID_MAX + 1];
	variant_id((size_t)_i, id);
	variant_id((size_t)_i, again);
	ck_assert_str_eq(id, again);
	ck_assert_uint_eq(strlen(id), 32);
	ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 32);
	ck_assert(policy_id_valid(id));
	for (size_t j = 0; j < N(id_variants); j++) {
		if (j == (size_t)_i)
			continue;
		char other[POLICY_ID_MAX + 1];
		variant_id(j, other);
		ck_assert_str_ne(id, other);
	}
}
END_TEST

/* 18: configured ids */
static const struct {
	const char *id;
	bool valid;
} id_valid_cases[] = {
    {"20240601T120000", true},
    {"abc123", true},
    {"A", true},
    {"0123456789abcdef0123456789ABCDEF", true},
    {"0123456789abcdef0123456789ABCDEF0", false},
    {"2024-06-01", false},
    {"", false},
    {"a.b", false},
    {"a_b", false},
    {"a b", false},
    {"\xc3\xbc", false},
};

START_TEST(test_id_valid)
{
	ck_assert_int_eq(policy_id_valid(id_valid_cases[_i].id), id_valid_cases[_i].valid);
}
END_TEST

static const struct {
	const char *pattern;
	const char *host;
	bool match;
} match_cases[] = {
    {"*.example.com", "mail.example.com", true},
    {"*.example.com", "MAIL.Example.COM", true},
    {"*.Example.com", "mail.example.com", true},
    {"*.example.com", "mail.example.com.", true},
    {"*.example.com", "example.com", false},
    {"*.example.com", "a.b.example.com", false},
    {"*.example.com", ".example.com", false},
    {"*.example.com", "mail.example.org", false},
    {"*.example.com", "mailexample.com", false},
    {"mail.example.com", "MAIL.EXAMPLE.COM", true},
    {"mail.example.com", "mail.example.com.", true},
    {"mail.example.com", "mx.example.com", false},
    {"mail.example.com", "a.mail.example.com", false},
    {"mail.example.com", "mail.example.co", false},
};

START_TEST(test_mx_match)
{
	ck_assert_int_eq(policy_mx_match(match_cases[_i].pattern, match_cases[_i].host),
	                 match_cases[_i].match);
}
END_TEST

static const struct {
	enum policy_mode mode;
	uint32_t max_age;
	const char *mx[2];
	const char *domain;
	size_t n_warnings;
	const char *msg; /* the first warning contains this */
} lint_cases[] = {
    {POLICY_MODE_ENFORCE, 604800, {"mail.example.com", NULL}, "example.com", 0, NULL},
    {POLICY_MODE_NONE, 86400, {"mail.example.com", NULL}, "example.com", 0, NULL},
    {POLICY_MODE_TESTING, 604800, {"mail.example.com", NULL}, NULL, 1, "mode testing"},
    {POLICY_MODE_ENFORCE, 0, {"mail.example.com", NULL}, NULL, 1, "max_age 0 is under a day"},
    {POLICY_MODE_NONE, 86399, {"mail.example.com", NULL}, NULL, 1, "max_age 86399 is under a day"},
    {POLICY_MODE_ENFORCE,
     86400,
     {"mail.example.com", NULL},
     NULL,
     1,
     "mode enforce with max_age 86400 under a week"},
    {POLICY_MODE_ENFORCE, 604799, {"mail.example.com", NULL}, NULL, 1, "under a week"},
    {POLICY_MODE_TESTING, 86400, {"mail.example.com", NULL}, NULL, 1, "mode testing"},
    {POLICY_MODE_NONE,
     86400,
     {NULL, NULL},
     "example.com",
     1,
     "mode none without mx: some senders, e.g. Stalwart, reject"},
    {POLICY_MODE_ENFORCE,
     604800,
     {"*.com", NULL},
     NULL,
     1,
     "mx '*.com' is a wildcard directly under the public suffix 'com'"},
    {POLICY_MODE_ENFORCE,
     604800,
     {"mail.example.com", "*.co.uk"},
     NULL,
     1,
     "public suffix 'co.uk'"},
    {POLICY_MODE_ENFORCE,
     604800,
     {"*.example.com", NULL},
     "example.com",
     1,
     "matches every host directly under example.com"},
    {POLICY_MODE_ENFORCE, 604800, {"*.example.com", NULL}, "Example.COM", 1, "matches every host"},
    {POLICY_MODE_ENFORCE, 604800, {"*.example.com", NULL}, NULL, 0, NULL},
    {POLICY_MODE_ENFORCE, 604800, {"*.mx.example.com", NULL}, "example.com", 0, NULL},
    {POLICY_MODE_ENFORCE, 604800, {"*.example.co.uk", NULL}, "other.example", 0, NULL},
    {POLICY_MODE_TESTING, 3600, {"*.com", NULL}, NULL, 3, "mode testing"},
};

START_TEST(test_lint)
{
	struct policy p;
	policy_init(&p);
	p.mode = lint_cases[_i].mode;
	p.max_age = lint_cases[_i].max_age;
	for (size_t j = 0; j < 2 && lint_cases[_i].mx[j]; j++)
		ck_assert_int_eq(policy_add_mx(&p, lint_cases[_i].mx[j]), 0);
	struct diag d;
	diag_init(&d);
	policy_lint(&p, lint_cases[_i].domain, &d, "m.conf", 7);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_eq(d.n_warnings, lint_cases[_i].n_warnings);
	if (lint_cases[_i].msg) {
		ck_assert_int_eq(d.v[0].level, DIAG_WARNING);
		ck_assert_str_eq(d.v[0].file, "m.conf");
		ck_assert_uint_eq(d.v[0].line, 7);
		ck_assert_msg(strstr(d.v[0].msg, lint_cases[_i].msg), "'%s' lacks '%s'", d.v[0].msg,
		              lint_cases[_i].msg);
	}
	diag_finish(&d);
	policy_finish(&p);
}
END_TEST

/* Cases 8 and 9: valid bodies that the linter then warns about. */
START_TEST(test_parse_then_lint)
{
	static const char *const bodies[] = {
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0\n",
	    "version: STSv1\nmode: none\nmax_age: 86400\n",
	};
	struct diag d;
	diag_init(&d);
	struct policy p;
	ck_assert_int_eq(policy_parse(&p, bodies[_i], strlen(bodies[_i]), &d, NULL), 0);
	policy_lint(&p, "example.com", &d, NULL, 0);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_eq(d.n_warnings, 1);
	policy_finish(&p);
	diag_finish(&d);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_parse_valid, 0, N(valid_cases));
	tcase_add_loop_test(tc, test_parse_invalid, 0, N(invalid_cases));
	tcase_add_loop_test(tc, test_mx_valid, 0, N(mx_valid_cases));
	tcase_add_loop_test(tc, test_mx_invalid, 0, N(mx_invalid_cases));
	tcase_add_loop_test(tc, test_mx_lengths, 0, N(length_cases));
	tcase_add_test(tc, test_every_error_reported);
	tcase_add_test(tc, test_error_lines_mixed_terminators);
	tcase_add_test(tc, test_ret_untouched_on_failure);
	tcase_add_test(tc, test_body_size_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("id");
	tcase_add_test(tc, test_id_vectors);
	tcase_add_loop_test(tc, test_id_changes, 0, N(id_variants));
	tcase_add_loop_test(tc, test_id_valid, 0, N(id_valid_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("match-lint");
	tcase_add_loop_test(tc, test_mx_match, 0, N(match_cases));
	tcase_add_loop_test(tc, test_lint, 0, N(lint_cases));
	tcase_add_loop_test(tc, test_parse_then_lint, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
