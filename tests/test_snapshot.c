/* test_snapshot: building, finding, rendering and publishing snapshots */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot.h"
#include "upstream.h"

/* ---- a provider registry -------------------------------------------------------------
 * snapshot.c calls four functions of upstream.h. The real ones are in upstream.c, which
 * cannot be linked without its fetcher (libcurl, c-ares), so this test answers them from
 * a table: which provider a proxied tenant is linked to, what it serves, and that every
 * use is released. */
struct upstream {
	char provider[64];
	struct doc *doc; /* the copy served, NULL when none (503) */
	int users;
};

struct upstreams {
	struct upstream v[4];
	size_t n;
	bool out_of_memory; /* upstreams_use fails */
};

struct upstream *upstreams_use(struct upstreams *u, const char *provider,
                               const struct config *config)
{
	struct upstream *up;

	if (u->out_of_memory)
		return NULL;
	for (size_t i = 0; i < u->n; i++) {
		if (strcmp(u->v[i].provider, provider) == 0) {
			u->v[i].users++;
			return &u->v[i];
		}
	}
	ck_assert_uint_lt(u->n, sizeof(u->v) / sizeof(u->v[0]));
	up = &u->v[u->n++];
	ck_assert_int_lt(snprintf(up->provider, sizeof(up->provider), "%s", provider),
	                 (int)sizeof(up->provider));
	up->users = 1;
	return up;
}

void upstream_release(struct upstream *up)
{
	if (up != NULL)
		up->users--;
}

struct doc *upstream_doc(struct upstream *up, time_t now)
{
	return up->doc != NULL ? doc_ref(up->doc) : NULL;
}

void upstream_info(struct upstream *up, time_t now, struct upstream_info *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->provider = up->provider;
	ret->has_policy = up->doc != NULL;
}

/* ---- a renderer that counts ---------------------------------------------------------- */

static unsigned created, destroyed;
static unsigned fail_at; /* create fails on this call (1-based), 0: never */

/* The response of a doc: its id, to show that each doc gets its own, and the doc, which
 * the response frees when it goes (the renderer's side of the contract). */
struct counted {
	char id[POLICY_ID_MAX + 1];
	struct doc *doc;
};

static void *count_create(struct doc *d)
{
	struct counted *response;

	if (++created == fail_at)
		return NULL;
	response = calloc(1, sizeof(*response));
	ck_assert_ptr_nonnull(response);
	memcpy(response->id, d->id, sizeof(response->id));
	response->doc = d;
	return response;
}

static void count_destroy(void *response)
{
	struct counted *c = response;

	destroyed++;
	doc_memory_free(c->doc);
	free(c);
}

static const struct doc_renderer counter = {count_create, count_destroy};

/* ---- configurations ------------------------------------------------------------------ */

static char dir[] = "/tmp/test_snapshot.XXXXXX";
static char path[sizeof(dir) + 16];
static struct diag d;

#define POLICY(mx) "mode = enforce\nmx = " mx "\nmax_age = 604800\n"
#define CANONICAL(mx) "version: STSv1\r\nmode: enforce\r\nmx: " mx "\r\nmax_age: 604800\r\n"

/* Four domains, not in alphabetical order: two with the same policy, one with a fixed
 * id and TLS reports, one proxied (line 13). */
static const char conf[] = "[server]\n"
                           "certs = certs\n"
                           "[domain c.test]\n"         /* 3 */
    POLICY("mx.shared.test") "[domain A.test]\n"       /* 7 */
    POLICY("mx.shared.test") "[domain b.test]\n"       /* 11 */
                             "proxy = provider.test\n" /* 12 */
                             "[domain d.test]\n"       /* 13 */
    POLICY("mx.d.test") "id = 20240101fixed\n"
                        "tlsrpt = mailto:tls@d.test\n";

static void setup(void)
{
	memcpy(dir, "/tmp/test_snapshot.XXXXXX", sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_lt(snprintf(path, sizeof(path), "%s/mtastsd.conf", dir), (int)sizeof(path));
	diag_init(&d);
	created = destroyed = fail_at = 0;
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void teardown(void)
{
	diag_finish(&d);
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct config *load(const char *text)
{
	FILE *f = fopen(path, "w");
	struct config *c;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	c = config_load(path, &d);
	ck_assert_msg(c != NULL, "%s: %zu errors", path, d.n_errors);
	return c;
}

/* The snapshot of conf, with ups and render. */
static struct snapshot *build(struct upstreams *ups, const struct doc_renderer *render)
{
	struct snapshot *s = snapshot_create(load(conf), NULL, ups, render, &d);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(d.n_errors, 0);
	return s;
}

/* ---- tests --------------------------------------------------------------------------- */

START_TEST(test_tenants_in_config_order)
{
	static const char *const names[] = {"c.test", "a.test", "b.test", "d.test"};
	struct upstreams ups = {0};
	struct config *c = load(conf);
	struct snapshot *s = snapshot_create(c, NULL, &ups, NULL, &d);

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_eq(snapshot_config(s), c);
	ck_assert_ptr_null(snapshot_certs(s));
	ck_assert_uint_eq(snapshot_size(s), 4);
	for (size_t i = 0; i < 4; i++) {
		const struct tenant *t = snapshot_tenant(s, i);

		ck_assert_str_eq(tenant_domain(t)->name, names[i]);
		ck_assert_ptr_eq(tenant_domain(t), &c->domains[i]);
		ck_assert_uint_eq(tenant_index(t), i);
		if (i == 2)
			ck_assert_ptr_eq(tenant_upstream(t), &ups.v[0]);
		else
			ck_assert_ptr_null(tenant_upstream(t));
		ck_assert_ptr_null(tenant_cert(s, t, time(NULL)));
	}
	ck_assert_uint_eq(snapshot_preload(s), 0);
	snapshot_unref(s);
	snapshot_unref(NULL);
}
END_TEST

static const struct {
	const char *host;
	int len;      /* -1: strlen */
	int expected; /* tenant index, -1: none */
} find_cases[] = {
    {"mta-sts.c.test", -1, 0},
    {"mta-sts.a.test", -1, 1},
    {"MTA-STS.A.TEST", -1, 1},
    {"Mta-Sts.B.Test", -1, 2},
    {"mta-sts.d.test", -1, 3},
    {"mta-sts.a.test.evil", 14, 1}, /* only len bytes count */
    {"mta-sts.a.test.", -1, -1},    /* exact: no trailing dot here */
    {"mta-sts.a.test:443", -1, -1},
    {"a.test", -1, -1},
    {"mta-sts.a.tes", -1, -1},
    {"xmta-sts.a.test", -1, -1},
    {"www.mta-sts.a.test", -1, -1}, /* no wildcard */
    {"*.a.test", -1, -1},
    {"mta-sts.*.test", -1, -1},
    {"mta-sts.provider.test", -1, -1}, /* the provider is not a tenant */
    {"mta-sts.e.test", -1, -1},
    {"", -1, -1},
};

START_TEST(test_find)
{
	struct upstreams ups = {0};
	struct snapshot *s = build(&ups, NULL);
	const char *host = find_cases[_i].host;
	size_t len = find_cases[_i].len < 0 ? strlen(host) : (size_t)find_cases[_i].len;
	const struct tenant *t = snapshot_find(s, host, len);

	if (find_cases[_i].expected < 0)
		ck_assert_msg(t == NULL, "%.*s: found %s", (int)len, host,
		              t ? tenant_domain(t)->name : "");
	else
		ck_assert_msg(t == snapshot_tenant(s, (size_t)find_cases[_i].expected),
		              "%.*s: not tenant %d", (int)len, host, find_cases[_i].expected);
	snapshot_unref(s);
}
END_TEST

START_TEST(test_tenant_doc)
{
	static const char shared[] = CANONICAL("mx.shared.test");
	static const char own[] = CANONICAL("mx.d.test");
	struct upstreams ups = {0};
	struct snapshot *s = build(&ups, NULL);
	struct doc *c = tenant_doc(snapshot_tenant(s, 0), time(NULL));
	struct doc *a = tenant_doc(snapshot_tenant(s, 1), time(NULL));
	struct doc *dd = tenant_doc(snapshot_tenant(s, 3), time(NULL));
	char id[POLICY_ID_MAX + 1];

	/* The canonical body, its id derived from its bytes. */
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->len, strlen(shared));
	ck_assert_str_eq(c->body, shared);
	ck_assert_str_eq(c->mode, "enforce");
	policy_id(shared, strlen(shared), id);
	ck_assert_str_eq(c->id, id);
	ck_assert_ptr_null(c->response);
	/* The same bytes, the same id, and one doc for both tenants. */
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_eq(a, c);
	ck_assert_str_eq(a->id, c->id);
	/* A fixed id replaces the derived one. */
	ck_assert_ptr_nonnull(dd);
	ck_assert_str_eq(dd->body, own);
	ck_assert_str_eq(dd->id, "20240101fixed");
	/* A new reference every time: the snapshot's (one per tenant) and ours (c and a). */
	ck_assert_uint_eq(atomic_load(&c->refs), 4);
	ck_assert_ptr_eq(tenant_doc(snapshot_tenant(s, 0), time(NULL)), c);
	ck_assert_uint_eq(atomic_load(&c->refs), 5);
	doc_unref(c);
	snapshot_unref(s);
	/* Ours outlive the snapshot. */
	ck_assert_uint_eq(atomic_load(&c->refs), 2);
	ck_assert_str_eq(c->body, shared);
	doc_unref(c);
	doc_unref(a);
	doc_unref(dd);
}
END_TEST

START_TEST(test_proxied)
{
	struct upstreams ups = {0};
	struct snapshot *s, *s2;
	const struct tenant *t;
	struct doc *copy;

	/* No copy of the provider's policy yet: a warning, and 503 until there is. */
	s = build(&ups, NULL);
	ck_assert_int_eq(d.v[d.n - 1].level, DIAG_WARNING);
	ck_assert_uint_eq(d.v[d.n - 1].line, 12);
	ck_assert_ptr_nonnull(
	    strstr(d.v[d.n - 1].msg, "b.test: no valid copy of the policy of provider.test yet"));
	ck_assert_uint_eq(ups.n, 1);
	ck_assert_str_eq(ups.v[0].provider, "provider.test");
	ck_assert_int_eq(ups.v[0].users, 1);
	t = snapshot_find(s, "mta-sts.b.test", 14);
	ck_assert_ptr_eq(tenant_upstream(t), &ups.v[0]);
	ck_assert_ptr_null(tenant_doc(t, time(NULL)));
	/* Then the provider's copy, whatever it is. */
	ups.v[0].doc = doc_create("x", 1, "testing", "providerid", NULL);
	copy = tenant_doc(t, time(NULL));
	ck_assert_ptr_eq(copy, ups.v[0].doc);
	doc_unref(copy);
	/* A second snapshot uses the same provider entry; each releases its use. */
	s2 = build(&ups, NULL);
	ck_assert_uint_eq(ups.n, 1);
	ck_assert_int_eq(ups.v[0].users, 2);
	snapshot_unref(s);
	ck_assert_int_eq(ups.v[0].users, 1);
	snapshot_unref(s2);
	ck_assert_int_eq(ups.v[0].users, 0);
	doc_unref(ups.v[0].doc);
}
END_TEST

START_TEST(test_proxied_no_entry)
{
	struct upstreams ups = {.out_of_memory = true};

	/* The configuration is the snapshot's in every case: freed here (valgrind). */
	ck_assert_ptr_null(snapshot_create(load(conf), NULL, &ups, NULL, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_uint_eq(d.v[d.n - 1].line, 12);
}
END_TEST

START_TEST(test_renderer)
{
	struct upstreams ups = {0};
	struct snapshot *s = build(&ups, &counter);
	struct doc *kept, *c_doc, *a_doc;

	/* One response per distinct static body, built now: c.test and A.test publish the
	 * same policy and share one doc; none for the proxied tenant. */
	ck_assert_uint_eq(created, 2);
	ck_assert_uint_eq(destroyed, 0);
	c_doc = tenant_doc(snapshot_tenant(s, 0), time(NULL));
	a_doc = tenant_doc(snapshot_tenant(s, 1), time(NULL));
	ck_assert_ptr_eq(c_doc, a_doc);
	doc_unref(c_doc);
	doc_unref(a_doc);
	for (size_t i = 0; i < snapshot_size(s); i++) {
		struct doc *doc = tenant_doc(snapshot_tenant(s, i), time(NULL));

		if (i == 2) {
			ck_assert_ptr_null(doc);
			continue;
		}
		ck_assert_ptr_eq(doc->render, &counter);
		ck_assert_str_eq(((struct counted *)doc->response)->id, doc->id);
		doc_unref(doc);
	}
	/* Serving renders nothing. */
	ck_assert_uint_eq(created, 2);
	/* Each response goes with its doc: when the snapshot goes, unless a doc is held. */
	kept = tenant_doc(snapshot_tenant(s, 3), time(NULL));
	snapshot_unref(s);
	ck_assert_uint_eq(destroyed, 1);
	doc_unref(kept);
	ck_assert_uint_eq(destroyed, 2);
	ck_assert_uint_eq(created, 2);
}
END_TEST

/* A fixed id is never shared, even with a body another domain serves. */
START_TEST(test_fixed_id_not_shared)
{
	static const char same[] =
	    "[server]\ncerts = certs\n"
	    "[domain a.test]\n" POLICY("mx.shared.test") "[domain b.test]\n" POLICY(
	        "mx.shared.test") "id = fixed1\n";
	struct snapshot *s = snapshot_create(load(same), NULL, NULL, &counter, &d);
	struct doc *a, *b;

	ck_assert_ptr_nonnull(s);
	a = tenant_doc(snapshot_tenant(s, 0), time(NULL));
	b = tenant_doc(snapshot_tenant(s, 1), time(NULL));
	ck_assert_ptr_ne(a, b);
	ck_assert_str_eq(b->id, "fixed1");
	ck_assert_str_ne(a->id, "fixed1");
	ck_assert_str_eq(a->body, b->body);
	ck_assert_uint_eq(created, 2);
	doc_unref(a);
	doc_unref(b);
	snapshot_unref(s);
	ck_assert_uint_eq(destroyed, 2);
}
END_TEST

START_TEST(test_renderer_fails)
{
	struct upstreams ups = {0};

	/* The last doc's response cannot be built (the second one: c.test and A.test share
	 * the first). */
	fail_at = 2;
	ck_assert_ptr_null(snapshot_create(load(conf), NULL, &ups, &counter, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_uint_eq(d.v[d.n - 1].line, 13);
	/* What was built before is freed, the provider released. */
	ck_assert_uint_eq(created, 2);
	ck_assert_uint_eq(destroyed, 1);
	ck_assert_uint_eq(ups.n, 1);
	ck_assert_int_eq(ups.v[0].users, 0);
}
END_TEST

static size_t offset(const char *text, const char *s)
{
	const char *p = strstr(text, s);

	ck_assert_msg(p != NULL, "no '%s' in:\n%s", s, text);
	return (size_t)(p - text);
}

START_TEST(test_records)
{
	struct upstreams ups = {0};
	struct snapshot *s = build(&ups, NULL);
	struct doc *c = tenant_doc(snapshot_tenant(s, 0), time(NULL));
	struct buf out;
	char want[256];

	buf_init(&out);
	ck_assert_int_eq(snapshot_records(s, NULL, 0, false, &out), 0);
	ck_assert_ptr_nonnull(out.data);
	/* Every domain, static ones with the id they serve. */
	snprintf(want, sizeof(want), "_mta-sts.c.test. 3600 IN TXT \"v=STSv1; id=%s\"\n", c->id);
	ck_assert_msg(strstr(out.data, want) != NULL, "no '%s' in:\n%s", want, out.data);
	snprintf(want, sizeof(want), "_mta-sts.a.test. 3600 IN TXT \"v=STSv1; id=%s\"\n", c->id);
	ck_assert_msg(strstr(out.data, want) != NULL, "no '%s' in:\n%s", want, out.data);
	ck_assert_ptr_nonnull(
	    strstr(out.data, "_mta-sts.b.test. 3600 IN CNAME _mta-sts.provider.test.\n"));
	ck_assert_ptr_nonnull(
	    strstr(out.data, "_mta-sts.d.test. 3600 IN TXT \"v=STSv1; id=20240101fixed\"\n"));
	ck_assert_ptr_nonnull(strstr(
	    out.data, "_smtp._tls.d.test. 86400 IN TXT \"v=TLSRPTv1; rua=mailto:tls@d.test\"\n"));
	ck_assert_ptr_null(strstr(out.data, "_smtp._tls.c.test."));
	/* In config order. */
	ck_assert_uint_lt(offset(out.data, "_mta-sts.c.test."),
	                  offset(out.data, "_mta-sts.a.test."));
	ck_assert_uint_lt(offset(out.data, "_mta-sts.a.test."),
	                  offset(out.data, "_mta-sts.b.test."));
	ck_assert_uint_lt(offset(out.data, "_mta-sts.b.test."),
	                  offset(out.data, "_mta-sts.d.test."));
	buf_finish(&out);

	buf_init(&out);
	ck_assert_int_eq(snapshot_records(s, NULL, 0, true, &out), 0);
	ck_assert_ptr_nonnull(strstr(out.data, "\"domain\": \"c.test\""));
	ck_assert_ptr_nonnull(strstr(out.data, "\"domain\": \"b.test\""));
	ck_assert_ptr_nonnull(strstr(out.data, "\"id\": \"20240101fixed\""));
	buf_finish(&out);
	doc_unref(c);
	snapshot_unref(s);
}
END_TEST

START_TEST(test_publish)
{
	struct upstreams ups = {0};
	struct snapshot *s1 = build(&ups, &counter), *s2 = build(&ups, &counter), *got;

	ck_assert_ptr_null(snapshot_acquire());
	ck_assert_ptr_null(snapshot_publish(s1)); /* the first: nothing before */
	got = snapshot_acquire();
	ck_assert_ptr_eq(got, s1);
	ck_assert(!snapshot_superseded(s1));
	/* Replaced: the previous one is handed back, marked, and alive while held. */
	ck_assert_ptr_eq(snapshot_publish(s2), s1);
	ck_assert(snapshot_superseded(s1));
	ck_assert(!snapshot_superseded(s2));
	snapshot_unref(s1); /* the reference publish took */
	ck_assert_uint_eq(destroyed, 0);
	ck_assert_ptr_eq(tenant_domain(snapshot_tenant(got, 0)), &snapshot_config(got)->domains[0]);
	snapshot_unref(got); /* the last */
	ck_assert_uint_eq(destroyed, 2);
	got = snapshot_acquire();
	ck_assert_ptr_eq(got, s2);
	snapshot_unref(got);
	/* Unpublished: acquire has nothing again. */
	ck_assert_ptr_eq(snapshot_publish(NULL), s2);
	ck_assert_ptr_null(snapshot_acquire());
	ck_assert_uint_eq(destroyed, 2);
	snapshot_unref(s2);
	ck_assert_uint_eq(destroyed, 4);
}
END_TEST

static Suite *snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("snapshot");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_tenants_in_config_order);
	tcase_add_loop_test(tc, test_find, 0, sizeof(find_cases) / sizeof(find_cases[0]));
	tcase_add_test(tc, test_tenant_doc);
	tcase_add_test(tc, test_proxied);
	tcase_add_test(tc, test_proxied_no_entry);
	tcase_add_test(tc, test_renderer);
	tcase_add_test(tc, test_fixed_id_not_shared);
	tcase_add_test(tc, test_renderer_fails);
	tcase_add_test(tc, test_records);
	tcase_add_test(tc, test_publish);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(snapshot_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
