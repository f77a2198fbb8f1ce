/* test_tlsrpt: reports as Google and Microsoft send them parse into the struct; every
 * hostile body (bad JSON, wrong types, bad counts, another tenant's domain, gzip bombs,
 * truncated or padded gzip) is refused with a clear reason */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define ZLIB_CONST
#include <zlib.h>

#include "tlsrpt.h"

/* Reads tests/tlsrpt/NAME into a NUL-terminated buffer (caller frees). */
static char *fixture(const char *name, size_t *ret_len)
{
	char path[512], *data;
	FILE *f;
	long len;

	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/tlsrpt/%s", TESTS_SRCDIR, name),
	                 (int)sizeof(path));
	ck_assert_ptr_nonnull(f = fopen(path, "rb"));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	ck_assert_int_gt(len = ftell(f), 0);
	rewind(f);
	ck_assert_ptr_nonnull(data = malloc((size_t)len + 1));
	ck_assert_uint_eq(fread(data, 1, (size_t)len, f), (size_t)len);
	data[len] = '\0';
	fclose(f);
	*ret_len = (size_t)len;
	return data;
}

/* gzip of data (one member) at level; caller frees. */
static unsigned char *gzip(const void *data, size_t len, size_t *ret_len)
{
	z_stream z;
	size_t cap = compressBound(len) + 64;
	unsigned char *out = malloc(cap);

	ck_assert_ptr_nonnull(out);
	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY),
	                 Z_OK);
	z.next_in = (const Bytef *)data;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	*ret_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static bool served_here(void *arg, const char *domain)
{
	const char *const *list = arg;

	for (; *list != NULL; list++)
		if (strcmp(*list, domain) == 0)
			return true;
	return false;
}

START_TEST(test_google)
{
	char err[TLSRPT_ERR_MAX], *json;
	size_t len;
	struct tlsrpt_report *r;
	const struct tlsrpt_policy *p;
	char id[POLICY_ID_MAX + 1];
	const char body[] = "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\n"
	                    "mx: mx2.example.com\r\nmax_age: 86400\r\n";
	char day[11];

	json = fixture("google.json", &len);
	r = tlsrpt_parse(json, len, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_str_eq(r->organization, "Google Inc.");
	ck_assert_str_eq(r->report_id, "2026-12-01T00:00:00Z_example.com");
	ck_assert_str_eq(r->contact, "smtp-tls-reporting@google.com");
	ck_assert_int_eq(r->start, 1796083200); /* 2026-12-01T00:00:00Z */
	ck_assert_int_eq(r->end, 1796083200 + 86399);
	tlsrpt_day(r->start, day);
	ck_assert_str_eq(day, "2026-12-01");
	ck_assert_uint_eq(r->n_policies, 2);
	ck_assert_uint_eq(r->n_unknown, 0);

	p = &r->policies[0];
	ck_assert_int_eq(p->type, TLSRPT_POLICY_STS);
	ck_assert_str_eq(p->domain, "example.com");
	ck_assert_uint_eq(p->n_strings, 5);
	ck_assert_str_eq(p->strings[1], "mode: testing");
	ck_assert_uint_eq(p->n_mx_hosts, 2);
	ck_assert_str_eq(p->mode, "testing");
	/* the id this server gives the same policy: what it serves for these lines */
	policy_id(body, strlen(body), id);
	ck_assert_str_eq(p->id, id);
	ck_assert_uint_eq(p->successful, 1284);
	ck_assert_uint_eq(p->failed, 17);
	ck_assert_uint_eq(p->n_failures, 2);
	ck_assert_int_eq(p->failures[0].result, TLSRPT_RESULT_CERTIFICATE_EXPIRED);
	ck_assert_str_eq(p->failures[0].sending_mta_ip, "209.85.220.41");
	ck_assert_str_eq(p->failures[0].receiving_mx_hostname, "mx2.example.com");
	ck_assert_str_eq(p->failures[0].receiving_ip, "192.0.2.25");
	ck_assert_uint_eq(p->failures[0].failed_session_count, 12);
	ck_assert_ptr_null(p->failures[0].receiving_mx_helo);
	ck_assert_ptr_null(p->failures[0].failure_reason_code);
	ck_assert_int_eq(p->failures[1].result, TLSRPT_RESULT_VALIDATION_FAILURE);
	/* host names lowercased, the trailing dot dropped */
	ck_assert_str_eq(p->failures[1].receiving_mx_hostname, "mx1.example.com");
	ck_assert_str_eq(p->failures[1].failure_reason_code,
	                 "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY");

	p = &r->policies[1];
	ck_assert_int_eq(p->type, TLSRPT_POLICY_NO_POLICY_FOUND);
	ck_assert_str_eq(p->domain, "example.net");
	ck_assert_uint_eq(p->n_strings, 0);
	ck_assert_str_eq(p->mode, "");
	ck_assert_str_eq(p->id, "");
	ck_assert_uint_eq(p->successful, 311);
	ck_assert_uint_eq(p->n_failures, 0);
	tlsrpt_free(r);
	free(json);
}
END_TEST

START_TEST(test_microsoft_gzip)
{
	char err[TLSRPT_ERR_MAX], *json;
	size_t len, zlen;
	unsigned char *z;
	struct tlsrpt_report *r;
	const struct tlsrpt_policy *p;

	json = fixture("microsoft.json", &len);
	z = gzip(json, len, &zlen);
	r = tlsrpt_read(z, zlen, TLSRPT_ENCODING_GZIP, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_str_eq(r->organization, "Microsoft Corporation");
	ck_assert_uint_eq(r->n_policies, 2);
	p = &r->policies[0];
	ck_assert_str_eq(p->mode, "enforce");
	ck_assert_uint_eq(strlen(p->id), 32);
	ck_assert_uint_eq(p->successful, 840);
	ck_assert_uint_eq(p->n_failures, 1);
	ck_assert_int_eq(p->failures[0].result, TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED);
	ck_assert_str_eq(p->failures[0].sending_mta_ip, "2a01:111:f403:c000::1");
	ck_assert_str_eq(p->failures[0].receiving_mx_helo, "mx2.example.com");
	ck_assert_str_eq(p->failures[0].additional_information, "https://example.com/tlsrpt-help");
	/* an empty policy-string is no policy-string */
	ck_assert_int_eq(r->policies[1].type, TLSRPT_POLICY_NO_POLICY_FOUND);
	ck_assert_uint_eq(r->policies[1].n_strings, 0);
	tlsrpt_free(r);

	/* the same body as JSON */
	r = tlsrpt_read(json, len, TLSRPT_ENCODING_JSON, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	tlsrpt_free(r);
	free(z);
	free(json);
}
END_TEST

/* Offsets and fractions of a second; an unknown result type is kept and flagged; a tlsa
 * policy. */
START_TEST(test_other)
{
	char err[TLSRPT_ERR_MAX], *json, day[11];
	size_t len;
	struct tlsrpt_report *r;

	json = fixture("other.json", &len);
	r = tlsrpt_parse(json, len, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_int_eq(r->start, 1796083200 + 86400 + 3600); /* 2026-12-02T00:00-01:00 */
	tlsrpt_day(r->start, day);
	ck_assert_str_eq(day, "2026-12-02");
	ck_assert_str_eq(r->policies[0].domain, "example.com"); /* from "EXAMPLE.COM." */
	ck_assert_uint_eq(r->n_unknown, 1);
	ck_assert_int_eq(r->policies[0].failures[2].result, TLSRPT_RESULT_UNKNOWN);
	ck_assert_str_eq(r->policies[0].failures[2].result_type, "x-greylisted");
	ck_assert_ptr_null(r->policies[0].failures[0].receiving_mx_hostname);
	ck_assert_int_eq(r->policies[1].type, TLSRPT_POLICY_TLSA);
	ck_assert_str_eq(r->policies[1].mode, "");
	ck_assert_str_eq(r->policies[1].id, "");
	tlsrpt_free(r);
	free(json);
}
END_TEST

#define DATES                                                                                      \
	"\"date-range\":{\"start-datetime\":\"2026-12-01T00:00:00Z\",\"end-datetime\":"            \
	"\"2026-12-01T23:59:59Z\"},"
#define TOP                                                                                        \
	"\"organization-name\":\"Org\"," DATES "\"contact-info\":\"x@example.org\",\"report-id\":" \
	"\"r1\","
#define POL                                                                                        \
	"\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"mx: "   \
	"mx.example.com\",\"max_age: 86400\"],\"policy-domain\":\"example.com\""
#define SUM "\"total-successful-session-count\":10,\"total-failure-session-count\":1"
#define FD "\"result-type\":\"certificate-expired\",\"failed-session-count\":1"
#define REPORT(top, pol, sum, details)                                                             \
	"{" top "\"policies\":[{\"policy\":{" pol "},\"summary\":{" sum "}" details "}]}"
#define DET(x) ",\"failure-details\":[{" x "}]"
#define VALID REPORT(TOP, POL, SUM, DET(FD))

static const struct {
	const char *json;
	const char *error; /* a substring of the message */
} hostile[] = {
    {"", "empty report"},
    {"{\"organization-name\":", "not JSON"},
    {"[1,2,3]", "report: an array where an object is required"},
    {"{\"a\":1,\"a\":2}", "not JSON: duplicate object key"},
    {"{\"organization-name\":\"A\",\"organization-name\":\"B\"}", "duplicate object key"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "nested deeper than"},
    {REPORT("\"date-range\":{\"start-datetime\":\"2026-12-01T00:00:00Z\",\"end-datetime\":"
            "\"2026-12-01T23:59:59Z\"},\"contact-info\":\"c\",\"report-id\":\"r\",",
            POL, SUM, ""),
     "organization-name: missing"},
    {REPORT("\"organization-name\":7," DATES "\"contact-info\":\"c\",\"report-id\":\"r\",", POL,
            SUM, ""),
     "organization-name: an integer where a string is required"},
    {REPORT("\"organization-name\":\"O\"," DATES "\"contact-info\":\"c\",\"report-id\":\"\",", POL,
            SUM, ""),
     "report-id: empty"},
    {REPORT("\"organization-name\":\"O\"," DATES "\"contact-info\":\"c\",\"report-id\":\"a\\nb\",",
            POL, SUM, ""),
     "report-id: contains a control character"},
    {REPORT("\"organization-name\":\"O\",\"contact-info\":\"c\",\"report-id\":\"r\",", POL, SUM,
            ""),
     "date-range: missing"},
    {REPORT("\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2026-12-01 "
            "00:00:00\",\"end-datetime\":\"2026-12-01T23:59:59Z\"},\"contact-info\":\"c\","
            "\"report-id\":\"r\",",
            POL, SUM, ""),
     "date-range.start-datetime: not an RFC 3339 date-time"},
    {REPORT("\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2026-02-29T00:"
            "00:00Z\",\"end-datetime\":\"2026-03-01T23:59:59Z\"},\"contact-info\":\"c\","
            "\"report-id\":\"r\",",
            POL, SUM, ""),
     "start-datetime: not an RFC 3339"},
    {REPORT("\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2026-12-02T00:"
            "00:00Z\",\"end-datetime\":\"2026-12-01T23:59:59Z\"},\"contact-info\":\"c\","
            "\"report-id\":\"r\",",
            POL, SUM, ""),
     "start-datetime is not before end-datetime"},
    {REPORT("\"organization-name\":\"O\",\"date-range\":{\"start-datetime\":\"2025-12-01T00:"
            "00:00Z\",\"end-datetime\":\"2026-12-01T23:59:59Z\"},\"contact-info\":\"c\","
            "\"report-id\":\"r\",",
            POL, SUM, ""),
     "spans more than 31 days"},
    {"{" TOP "\"policies\":[]}", "policies: empty"},
    {"{" TOP "\"policies\":{}}", "policies: an object where an array is required"},
    {"{" TOP "\"policies\":[7]}", "policies[0]: an integer where an object is required"},
    {REPORT(TOP, "\"policy-type\":\"dane\",\"policy-domain\":\"example.com\"", SUM, ""),
     "policies[0].policy: policy-type: not sts, tlsa or no-policy-found"},
    {REPORT(TOP, "\"policy-type\":\"sts\",\"policy-domain\":\"example.com\"", SUM, ""),
     "policies[0].policy.policy-string: missing"},
    {REPORT(TOP, "\"policy-type\":\"sts\",\"policy-string\":[1],\"policy-domain\":\"e.com\"", SUM,
            ""),
     "policies[0].policy.policy-string[0]: an integer where a string is required"},
    {REPORT(TOP, "\"policy-type\":\"sts\",\"policy-string\":\"mode: enforce\"", SUM, ""),
     "policy-string: a string where an array is required"},
    {REPORT(TOP, "\"policy-type\":\"no-policy-found\"", SUM, ""),
     "policies[0].policy.policy-domain: missing"},
    {REPORT(TOP, "\"policy-type\":\"no-policy-found\",\"policy-domain\":\"exa mple.com\"", SUM, ""),
     "policy-domain: not a domain name"},
    {REPORT(TOP, "\"policy-type\":\"no-policy-found\",\"policy-domain\":\"*.example.com\"", SUM,
            ""),
     "policy-domain: not a domain name"},
    {REPORT(TOP, POL, "\"total-successful-session-count\":1", ""),
     "policies[0].summary.total-failure-session-count: missing"},
    {REPORT(TOP, POL, "\"total-successful-session-count\":-1,\"total-failure-session-count\":0",
            ""),
     "policies[0].summary.total-successful-session-count: negative (-1)"},
    {REPORT(TOP, POL, "\"total-successful-session-count\":1.5,\"total-failure-session-count\":0",
            ""),
     "total-successful-session-count: a fractional number where an integer is required"},
    {REPORT(TOP, POL, "\"total-successful-session-count\":\"12\",\"total-failure-session-count\":0",
            ""),
     "total-successful-session-count: a string where an integer is required"},
    {REPORT(TOP, POL,
            "\"total-successful-session-count\":1,\"total-failure-session-count\":"
            "9000000000000000",
            ""),
     "total-failure-session-count: absurd"},
    {REPORT(TOP, POL,
            "\"total-successful-session-count\":1,\"total-failure-session-count\":"
            "99999999999999999999999",
            ""),
     "not JSON"},
    {REPORT(TOP, POL, SUM, ",\"failure-details\":{}"),
     "policies[0].failure-details: an object where an array is required"},
    {REPORT(TOP, POL, SUM, DET("\"failed-session-count\":1")),
     "policies[0].failure-details[0].result-type: missing"},
    {REPORT(TOP, POL, SUM, DET("\"result-type\":\"certificate-expired\"")),
     "policies[0].failure-details[0].failed-session-count: missing"},
    {REPORT(TOP, POL, SUM, DET(FD ",\"sending-mta-ip\":\"300.1.2.3\"")),
     "failure-details[0]: sending-mta-ip: not an IP address"},
    {REPORT(TOP, POL, SUM, DET(FD ",\"receiving-ip\":7")),
     "failure-details[0].receiving-ip: an integer where a string is required"},
    {REPORT(TOP, POL, SUM, DET(FD ",\"receiving-mx-hostname\":\"mx_1;drop\"")),
     "receiving-mx-hostname: not a host name"},
    {REPORT(TOP, POL, SUM,
            DET("\"result-type\":\"certificate-expired\",\"failed-session-count\":-5")),
     "failure-details[0].failed-session-count: negative (-5)"},
    {REPORT(TOP, POL, SUM, DET("\"result-type\":\"a b\",\"failed-session-count\":1")),
     "result-type: not a token"},
};

START_TEST(test_hostile)
{
	char err[TLSRPT_ERR_MAX];
	struct tlsrpt_report *r;

	err[0] = '\0';
	r = tlsrpt_parse(hostile[_i].json, strlen(hostile[_i].json), err, sizeof(err));
	ck_assert_msg(r == NULL, "case %d accepted", _i);
	ck_assert_msg(strstr(err, hostile[_i].error) != NULL, "case %d: \"%s\" lacks \"%s\"", _i,
	              err, hostile[_i].error);
}
END_TEST

START_TEST(test_valid_base)
{
	char err[TLSRPT_ERR_MAX];
	struct tlsrpt_report *r = tlsrpt_parse(VALID, strlen(VALID), err, sizeof(err));

	/* the base of the hostile cases is itself valid */
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_str_eq(r->policies[0].mode, "enforce");
	tlsrpt_free(r);
	tlsrpt_free(NULL);
}
END_TEST

/* Too many values, too large a document: refused before jansson builds anything. */
START_TEST(test_oversized)
{
	char err[TLSRPT_ERR_MAX];
	size_t n = 2 * TLSRPT_VALUES_MAX + 3; /* [0,0,...,0]: one value more than allowed */
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	s[0] = '[';
	for (size_t k = 0; k < TLSRPT_VALUES_MAX; k++)
		memcpy(s + 1 + 2 * k, "0,", 2);
	s[n - 2] = '0';
	s[n - 1] = ']';
	s[n] = '\0';
	ck_assert_ptr_null(tlsrpt_parse(s, n, err, sizeof(err)));
	ck_assert_msg(strstr(err, "more than 262144 values") != NULL, "%s", err);
	ck_assert_ptr_null(tlsrpt_parse(s, TLSRPT_JSON_MAX + 1, err, sizeof(err)));
	ck_assert_msg(strstr(err, "exceeds 16777216 bytes") != NULL, "%s", err);
	free(s);
}
END_TEST

static const char *tenants[] = {"example.com", "example.net", NULL};

START_TEST(test_tenant)
{
	char err[TLSRPT_ERR_MAX], *json;
	size_t len;
	struct tlsrpt_report *r;
	const char *only_com[] = {"example.com", NULL};

	json = fixture("google.json", &len);
	ck_assert_ptr_nonnull(r = tlsrpt_parse(json, len, err, sizeof(err)));
	ck_assert_int_eq(tlsrpt_check_tenant(r, served_here, (void *)tenants, err, sizeof(err)), 0);
	/* example.net is another tenant's (or nobody's): the whole report is refused */
	ck_assert_int_eq(tlsrpt_check_tenant(r, served_here, (void *)only_com, err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(err, "policies[1].policy.policy-domain: example.net is not served here");
	tlsrpt_free(r);
	free(json);
}
END_TEST

START_TEST(test_content_type)
{
	enum tlsrpt_encoding e = TLSRPT_ENCODING_JSON;

	ck_assert_int_eq(tlsrpt_content_type("application/tlsrpt+gzip", &e), 0);
	ck_assert_int_eq(e, TLSRPT_ENCODING_GZIP);
	ck_assert_int_eq(tlsrpt_content_type(" Application/TLSRPT+JSON ; charset=utf-8", &e), 0);
	ck_assert_int_eq(e, TLSRPT_ENCODING_JSON);
	ck_assert_int_eq(tlsrpt_content_type("application/json", &e), -1);
	ck_assert_int_eq(tlsrpt_content_type("application/tlsrpt+gzipx", &e), -1);
	ck_assert_int_eq(tlsrpt_content_type(NULL, &e), -1);
	ck_assert_int_eq(e, TLSRPT_ENCODING_JSON); /* untouched */
}
END_TEST

/* Two members are one body (as gunzip reads them); anything else after a member, a
 * truncated member, a bad CRC and an empty or oversized input are refused, *ret untouched. */
START_TEST(test_gzip_framing)
{
	static char untouched[] = "untouched";
	char err[TLSRPT_ERR_MAX], *out = untouched;
	size_t zlen1, zlen2, len = 0;
	unsigned char *z1 = gzip("hello ", 6, &zlen1), *z2 = gzip("world", 5, &zlen2);
	unsigned char *both = malloc(zlen1 + zlen2 + 4), *big;

	ck_assert_ptr_nonnull(both);
	memcpy(both, z1, zlen1);
	memcpy(both + zlen1, z2, zlen2);
	ck_assert_int_eq(tlsrpt_inflate(both, zlen1 + zlen2, 100, &out, &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, 11);
	ck_assert_str_eq(out, "hello world");
	free(out);
	out = untouched;

	memcpy(both + zlen1, "\0\0\0\0", 4); /* padding after a member */
	ck_assert_int_eq(tlsrpt_inflate(both, zlen1 + 4, 100, &out, &len, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "4 bytes after member 1 are not a gzip member") != NULL, "%s",
	              err);
	ck_assert_str_eq(out, "untouched");

	ck_assert_int_eq(tlsrpt_inflate(z1, zlen1 - 5, 100, &out, &len, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);
	ck_assert_int_eq(tlsrpt_inflate(z1, 5, 100, &out, &len, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);

	z1[zlen1 - 6] ^= 1; /* the CRC */
	ck_assert_int_eq(tlsrpt_inflate(z1, zlen1, 100, &out, &len, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "gzip: incorrect data check") != NULL, "%s", err);
	ck_assert_int_eq(tlsrpt_inflate("{\"a\":1}", 7, 100, &out, &len, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "gzip: incorrect header check") != NULL, "%s", err);
	ck_assert_int_eq(tlsrpt_inflate("", 0, 100, &out, &len, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "empty body");

	/* exactly the cap is accepted, one byte more is not */
	ck_assert_int_eq(tlsrpt_inflate(z2, zlen2, 5, &out, &len, err, sizeof(err)), 0);
	free(out);
	out = untouched;
	ck_assert_int_eq(tlsrpt_inflate(z2, zlen2, 4, &out, &len, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "more than 4 bytes once decompressed: refused");

	big = calloc(1, TLSRPT_GZIP_MAX + 1);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(
	    tlsrpt_inflate(big, TLSRPT_GZIP_MAX + 1, TLSRPT_JSON_MAX, &out, &len, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "compressed body of 1048577 bytes exceeds 1048576 bytes");
	ck_assert_str_eq(out, "untouched");
	free(big);
	free(both);
	free(z1);
	free(z2);
}
END_TEST

/* 1 GiB of zeros, deflated as a stream into under 1 MiB: refused once 16 MiB are out,
 * without inflating the rest. */
START_TEST(test_gzip_bomb)
{
	static unsigned char zeros[1 << 20];
	char err[TLSRPT_ERR_MAX], *out = NULL;
	size_t cap = TLSRPT_GZIP_MAX, zlen, len;
	unsigned char *z = malloc(cap);
	z_stream s;
	int zr = Z_OK;

	ck_assert_ptr_nonnull(z);
	memset(&s, 0, sizeof(s));
	/* run-length matches are what zeros compress to; Z_RLE finds them fastest */
	ck_assert_int_eq(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_RLE), Z_OK);
	s.next_out = z;
	s.avail_out = (uInt)cap;
	for (int i = 0; i < 1024; i++) {
		s.next_in = zeros;
		s.avail_in = sizeof(zeros);
		zr = deflate(&s, i == 1023 ? Z_FINISH : Z_NO_FLUSH);
		ck_assert_uint_eq(s.avail_in, 0);
		ck_assert_uint_gt(s.avail_out, 0);
	}
	ck_assert_int_eq(zr, Z_STREAM_END);
	ck_assert_uint_eq(s.total_in, 1u << 30);
	zlen = cap - s.avail_out;
	deflateEnd(&s);
	ck_assert_uint_le(zlen, TLSRPT_GZIP_MAX);

	ck_assert_int_eq(tlsrpt_inflate(z, zlen, TLSRPT_JSON_MAX, &out, &len, err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(err, "more than 16777216 bytes once decompressed: refused");
	ck_assert_ptr_null(out);
	ck_assert_ptr_null(tlsrpt_read(z, zlen, TLSRPT_ENCODING_GZIP, err, sizeof(err)));
	ck_assert_str_eq(err, "more than 16777216 bytes once decompressed: refused");
	free(z);
}
END_TEST

/* Valid gzip of a JSON body that is not a report: the parser's error comes through. */
START_TEST(test_gzip_not_report)
{
	char err[TLSRPT_ERR_MAX];
	size_t zlen;
	unsigned char *z = gzip("{\"policies\":[]}", 15, &zlen);

	ck_assert_ptr_null(tlsrpt_read(z, zlen, TLSRPT_ENCODING_GZIP, err, sizeof(err)));
	ck_assert_str_eq(err, "organization-name: missing");
	free(z);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tlsrpt");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_google);
	tcase_add_test(tc, test_microsoft_gzip);
	tcase_add_test(tc, test_other);
	tcase_add_test(tc, test_valid_base);
	tcase_add_loop_test(tc, test_hostile, 0, (int)(sizeof(hostile) / sizeof(hostile[0])));
	tcase_add_test(tc, test_oversized);
	tcase_add_test(tc, test_tenant);
	tcase_add_test(tc, test_content_type);
	tcase_add_test(tc, test_gzip_framing);
	tcase_add_test(tc, test_gzip_bomb);
	tcase_add_test(tc, test_gzip_not_report);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
