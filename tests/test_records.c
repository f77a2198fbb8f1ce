/* test_records: zone lines and JSON for _mta-sts and _smtp._tls (SPEC.md cases 16-17, 19-20) */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "records.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct records_opts opts = {.sts_ttl = 3600, .tlsrpt_ttl = 86400};

static const char *const rua_example[] = {"mailto:a@example.com", "https://r.example.net/x"};
static const char *const rua_new[] = {"mailto:tlsrpt@new.example"};
static const char body_example[] =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n";

static const struct records_domain fixture[] = {
    {.domain = "example.com",
     .id = "0123456789abcdef0123456789abcdef",
     .body = body_example,
     .body_len = sizeof(body_example) - 1,
     .mode = "enforce",
     .rua = rua_example,
     .n_rua = 2},
    {.domain = "customer.example", .id = "abc123", .proxy = "provider.example"},
    {.domain = "new.example", .rua = rua_new, .n_rua = 1},
    {.domain = "d.example", .proxy = "provider.example"},
};

static const char fixture_zone[] =
    "; mtastsd: DNS records to publish (RFC 8461 MTA-STS, RFC 8460 TLS-RPT)\n"
    "_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id=0123456789abcdef0123456789abcdef\"\n"
    "_smtp._tls.example.com. 86400 IN TXT \"v=TLSRPTv1; "
    "rua=mailto:a@example.com,https://r.example.net/x\"\n"
    "_mta-sts.customer.example. 3600 IN CNAME _mta-sts.provider.example.\n"
    "; alternative to the CNAME: publish our own id instead (it must then change whenever "
    "the provider's policy does)\n"
    "; _mta-sts.customer.example. 3600 IN TXT \"v=STSv1; id=abc123\"\n"
    "; new.example: no policy yet\n"
    "_smtp._tls.new.example. 86400 IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@new.example\"\n"
    "_mta-sts.d.example. 3600 IN CNAME _mta-sts.provider.example.\n";

static const char fixture_json[] =
    "[\n"
    "  {\n"
    "    \"domain\": \"example.com\",\n"
    "    \"mode\": \"enforce\",\n"
    "    \"id\": \"0123456789abcdef0123456789abcdef\",\n"
    "    \"policy\": \"version: STSv1\\u000d\\u000amode: enforce\\u000d\\u000amx: "
    "mail.example.com\\u000d\\u000amax_age: 604800\\u000d\\u000a\",\n"
    "    \"proxy\": null,\n"
    "    \"records\": [\n"
    "      {\n"
    "        \"name\": \"_mta-sts.example.com.\",\n"
    "        \"type\": \"TXT\",\n"
    "        \"ttl\": 3600,\n"
    "        \"value\": \"v=STSv1; id=0123456789abcdef0123456789abcdef\"\n"
    "      },\n"
    "      {\n"
    "        \"name\": \"_smtp._tls.example.com.\",\n"
    "        \"type\": \"TXT\",\n"
    "        \"ttl\": 86400,\n"
    "        \"value\": \"v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x\"\n"
    "      }\n"
    "    ]\n"
    "  },\n"
    "  {\n"
    "    \"domain\": \"customer.example\",\n"
    "    \"mode\": null,\n"
    "    \"id\": \"abc123\",\n"
    "    \"policy\": null,\n"
    "    \"proxy\": \"provider.example\",\n"
    "    \"records\": [\n"
    "      {\n"
    "        \"name\": \"_mta-sts.customer.example.\",\n"
    "        \"type\": \"CNAME\",\n"
    "        \"ttl\": 3600,\n"
    "        \"value\": \"_mta-sts.provider.example.\"\n"
    "      }\n"
    "    ]\n"
    "  },\n"
    "  {\n"
    "    \"domain\": \"new.example\",\n"
    "    \"mode\": null,\n"
    "    \"id\": null,\n"
    "    \"policy\": null,\n"
    "    \"proxy\": null,\n"
    "    \"records\": [\n"
    "      {\n"
    "        \"name\": \"_smtp._tls.new.example.\",\n"
    "        \"type\": \"TXT\",\n"
    "        \"ttl\": 86400,\n"
    "        \"value\": \"v=TLSRPTv1; rua=mailto:tlsrpt@new.example\"\n"
    "      }\n"
    "    ]\n"
    "  },\n"
    "  {\n"
    "    \"domain\": \"d.example\",\n"
    "    \"mode\": null,\n"
    "    \"id\": null,\n"
    "    \"policy\": null,\n"
    "    \"proxy\": \"provider.example\",\n"
    "    \"records\": [\n"
    "      {\n"
    "        \"name\": \"_mta-sts.d.example.\",\n"
    "        \"type\": \"CNAME\",\n"
    "        \"ttl\": 3600,\n"
    "        \"value\": \"_mta-sts.provider.example.\"\n"
    "      }\n"
    "    ]\n"
    "  }\n"
    "]\n";

START_TEST(test_zone_fixture)
{
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(records_zone(&b, fixture, N(fixture), &opts), 0);
	ck_assert_str_eq(b.data, fixture_zone);
	ck_assert_uint_eq(b.len, sizeof(fixture_zone) - 1);
	buf_finish(&b);
}
END_TEST

START_TEST(test_json_fixture)
{
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(records_json(&b, fixture, N(fixture), &opts), 0);
	ck_assert_str_eq(b.data, fixture_json);
	buf_finish(&b);

	buf_init(&b);
	ck_assert_int_eq(records_json(&b, fixture, 0, &opts), 0);
	ck_assert_str_eq(b.data, "[]\n");
	buf_finish(&b);
}
END_TEST

/* records_zone_lines prints exactly one domain's part of records_zone. */
START_TEST(test_zone_lines)
{
	struct buf all, one;
	buf_init(&all);
	buf_init(&one);
	ck_assert_int_eq(records_zone(&all, fixture, N(fixture), &opts), 0);
	for (size_t i = 0; i < N(fixture); i++)
		ck_assert_int_eq(records_zone_lines(&one, &fixture[i], &opts), 0);
	const char *header_end = strchr(all.data, '\n');
	ck_assert_ptr_nonnull(header_end);
	ck_assert_str_eq(one.data, header_end + 1);
	buf_finish(&one);
	buf_finish(&all);
}
END_TEST

/* 16-17: the id of a rendered body, in the exact _mta-sts line. */
START_TEST(test_sts_line_from_policy)
{
	struct policy p;
	policy_init(&p);
	p.mode = POLICY_MODE_ENFORCE;
	p.max_age = 604800;
	ck_assert_int_eq(policy_add_mx(&p, "mail.example.com"), 0);
	size_t len;
	char *body = policy_render(&p, &len);
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(body, body_example);
	char id[POLICY_ID_MAX + 1];
	policy_id(body, len, id);
	ck_assert(policy_id_valid(id));

	struct records_domain r = {
	    .domain = "example.com", .id = id, .body = body, .body_len = len, .mode = "enforce"};
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(records_zone_lines(&b, &r, &opts), 0);
	char want[128];
	int n = snprintf(want, sizeof(want),
	                 "_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id=%s\"\n", id);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(b.data, want);
	buf_finish(&b);

	buf_init(&b);
	ck_assert_int_eq(records_sts_value(&b, id), 0);
	ck_assert_uint_eq(b.len, 12 + 32);
	ck_assert_int_eq(strncmp(b.data, "v=STSv1; id=", 12), 0);
	buf_finish(&b);
	free(body);
	policy_finish(&p);
}
END_TEST

/* 19: a delegated domain gets a CNAME and no active TXT at _mta-sts. */
START_TEST(test_delegation_no_txt)
{
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(records_zone_lines(&b, &fixture[1], &opts), 0);
	ck_assert_int_eq(strncmp(b.data,
	                         "_mta-sts.customer.example. 3600 IN CNAME "
	                         "_mta-sts.provider.example.\n",
	                         67),
	                 0);
	size_t n_txt = 0;
	for (const char *line = b.data; *line; line = strchr(line, '\n') + 1) {
		size_t len = (size_t)(strchr(line, '\n') - line);
		if (memmem(line, len, " TXT ", 5)) {
			ck_assert_int_eq(line[0], ';');
			n_txt++;
		}
	}
	ck_assert_uint_eq(n_txt, 1);
	buf_finish(&b);
}
END_TEST

static const struct {
	const char *rua[3];
	size_t n;
	const char *value;
} tlsrpt_cases[] = {
    {{"mailto:a@example.com"}, 1, "v=TLSRPTv1; rua=mailto:a@example.com"},
    {{"mailto:a@example.com", "https://r.example.net/x"},
     2,
     "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x"},
    {{"https://r.example/a,b!c;d", "mailto:x@y.example"},
     2,
     "v=TLSRPTv1; rua=https://r.example/a%2Cb%21c%3Bd,mailto:x@y.example"},
    {{"mailto:a@b.example", "mailto:c@d.example", "https://e.example:8443/p?q=1"},
     3,
     "v=TLSRPTv1; rua=mailto:a@b.example,mailto:c@d.example,https://e.example:8443/p?q=1"},
};

/* 20 */
START_TEST(test_tlsrpt_value)
{
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(records_tlsrpt_value(&b, tlsrpt_cases[_i].rua, tlsrpt_cases[_i].n), 0);
	ck_assert_str_eq(b.data, tlsrpt_cases[_i].value);
	ck_assert_int_eq(strncmp(b.data, "v=TLSRPTv1; rua=", 16), 0);
	buf_finish(&b);
}
END_TEST

START_TEST(test_invalid_values)
{
	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(records_tlsrpt_value(&b, rua_example, 0), -1);
	ck_assert_int_eq(records_sts_value(&b, "2024-06-01"), -1);
	ck_assert_int_eq(records_sts_value(&b, "0123456789abcdef0123456789abcdef0"), -1);
	ck_assert_uint_eq(b.len, 0);
	buf_finish(&b);
}
END_TEST

static const struct {
	const char *uri;
	bool valid;
} rua_cases[] = {
    {"mailto:a@example.com", true},
    {"mailto:tls+rpt@sub.example.co.uk", true},
    {"https://r.example.net/x", true},
    {"https://r.example.net", true},
    {"https://r.example.net:8443/v1/report?a=b", true},
    {"https://r.example/a,b", true},
    {"http://r.example.net/x", false},
    {"ftp://r.example.net/x", false},
    {"", false},
    {"mailto:", false},
    {"mailto:a", false},
    {"mailto:@example.com", false},
    {"mailto:a@", false},
    {"mailto:a@exa mple.com", false},
    {"mailto:a@.example", false},
    {"https://", false},
    {"https:///path", false},
    {"https://r.example:/x", false},
    {"https://r.example:44a/x", false},
    {"https://r.example:123456/x", false},
    {"https://r.example/a b", false},
    {"https://r.example/\x01", false},
    {"https://r.example/\xc3\xbc", false},
    {"https://r.example/\"x", false},
    {"MAILTO:a@example.com", false},
    {"a@example.com", false},
};

START_TEST(test_rua_valid)
{
	ck_assert_msg(records_rua_valid(rua_cases[_i].uri) == rua_cases[_i].valid, "%s",
	              rua_cases[_i].uri);
}
END_TEST

/* A TLS-RPT value over 255 bytes becomes several quoted strings in the zone, one joined
 * value in JSON. */
START_TEST(test_tlsrpt_split)
{
	char long_uri[200];
	int n = snprintf(long_uri, sizeof(long_uri), "https://tlsrpt.example.net/%0150d", 7);
	ck_assert(n > 0 && (size_t)n < sizeof(long_uri));
	const char *rua[] = {"mailto:a@example.com", long_uri, long_uri};
	struct records_domain r = {.domain = "example.com", .rua = rua, .n_rua = 3};

	struct buf value;
	buf_init(&value);
	ck_assert_int_eq(records_tlsrpt_value(&value, rua, 3), 0);
	ck_assert_uint_gt(value.len, 255);
	ck_assert_uint_le(value.len, 510);

	struct buf b;
	buf_init(&b);
	ck_assert_int_eq(records_zone_lines(&b, &r, &opts), 0);
	const char *prefix = "; example.com: no policy yet\n_smtp._tls.example.com. 86400 IN TXT ";
	ck_assert_int_eq(strncmp(b.data, prefix, strlen(prefix)), 0);
	const char *s = b.data + strlen(prefix);
	/* "<255 bytes>" "<rest>"\n */
	ck_assert_int_eq(s[0], '"');
	ck_assert_int_eq(s[256], '"');
	ck_assert_int_eq(s[257], ' ');
	ck_assert_int_eq(s[258], '"');
	ck_assert_int_eq(strncmp(s + 1, value.data, 255), 0);
	size_t rest = value.len - 255;
	ck_assert_int_eq(strncmp(s + 259, value.data + 255, rest), 0);
	ck_assert_str_eq(s + 259 + rest, "\"\n");
	buf_finish(&b);

	buf_init(&b);
	ck_assert_int_eq(records_json(&b, &r, 1, &opts), 0);
	char want[600];
	n = snprintf(want, sizeof(want), "\"value\": \"%s\"", value.data);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_ptr_nonnull(strstr(b.data, want));
	buf_finish(&b);
	buf_finish(&value);
}
END_TEST

/* Never emit an invalid record: bad input fails and leaves the output as it was. */
static const struct records_domain invalid_domains[] = {
    {.domain = "example.com", .id = "2024-06-01"},
    {.domain = "example.com", .id = "0123456789abcdef0123456789abcdef0"},
    {.domain = "example.com.", .id = "abc"},
    {.domain = "exa mple.com", .id = "abc"},
    {.domain = "*.example.com", .id = "abc"},
    {.domain = NULL, .id = "abc"},
    {.domain = "example.com", .proxy = "provider example"},
    {.domain = "example.com", .rua = (const char *const[]){"http://r.example/x"}, .n_rua = 1},
    {.domain = "example.com", .rua = (const char *const[]){"ftp://r.example/x"}, .n_rua = 1},
    {.domain = "example.com", .rua = (const char *const[]){""}, .n_rua = 1},
};

START_TEST(test_invalid_domain)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "kept");
	ck_assert_int_eq(records_zone(&b, &invalid_domains[_i], 1, &opts), -1);
	ck_assert_int_eq(records_zone_lines(&b, &invalid_domains[_i], &opts), -1);
	ck_assert_int_eq(records_json(&b, &invalid_domains[_i], 1, &opts), -1);
	ck_assert_str_eq(b.data, "kept");
	ck_assert_uint_eq(b.len, 4);
	ck_assert(!b.failed);
	buf_finish(&b);
}
END_TEST

static Suite *records_suite(void)
{
	Suite *s = suite_create("records");
	TCase *tc = tcase_create("zone-json");
	tcase_add_test(tc, test_zone_fixture);
	tcase_add_test(tc, test_json_fixture);
	tcase_add_test(tc, test_zone_lines);
	tcase_add_test(tc, test_sts_line_from_policy);
	tcase_add_test(tc, test_delegation_no_txt);
	tcase_add_test(tc, test_tlsrpt_split);
	tcase_add_loop_test(tc, test_invalid_domain, 0, N(invalid_domains));
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_tlsrpt_value, 0, N(tlsrpt_cases));
	tcase_add_test(tc, test_invalid_values);
	tcase_add_loop_test(tc, test_rua_valid, 0, N(rua_cases));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(records_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
