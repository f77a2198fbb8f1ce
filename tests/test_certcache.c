/* test_certcache: per-domain certificate state: ok, lazy, degraded, renewed, expired */
#include <check.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certcache.h"

#define DAY 86400
/* certcache.h: a failed lazy load "is retried at most once a minute". */
#define LAZY_RETRY 60
#define MAX_DOMAINS 8
#define MAX_OWNED 128

static time_t T;  /* "now" of the tests: when the process started */
static char *top; /* every test's files, one directory per test below */
static gnutls_x509_crt_t ca_crt;
static gnutls_x509_privkey_t ca_key;
static char *ca_pem;
static unsigned serial;

/* One test's world: its directory and a configuration as config_load leaves it, with
 * just what certcache reads (the policy fields stay zero). */
static struct {
	char *dir;
	struct config config;
	struct config_domain domains[MAX_DOMAINS];
	char *owned[MAX_OWNED]; /* freed by teardown */
	size_t n_owned;
} w;

/* ---- helpers ------------------------------------------------------------------------ */

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A formatted string freed with the test's world. */
static char *strf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
	va_end(ap);
	ck_assert_uint_lt(w.n_owned, MAX_OWNED);
	w.owned[w.n_owned++] = s;
	return s;
}

static char *path(const char *name)
{
	return strf("%s/%s", w.dir, name);
}

static char *datum_str(gnutls_datum_t *d)
{
	char *s = strf("%.*s", (int)d->size, (const char *)d->data);

	gnutls_free(d->data);
	return s;
}

static gnutls_x509_privkey_t new_key(void)
{
	gnutls_x509_privkey_t k;

	ck_assert_int_eq(gnutls_x509_privkey_init(&k), 0);
	ck_assert_int_eq(
	    gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	    0);
	return k;
}

static char *key_pem(gnutls_x509_privkey_t k)
{
	gnutls_datum_t out;

	ck_assert_int_eq(gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, NULL,
	                                                   GNUTLS_PKCS_PLAIN, &out),
	                 0);
	return datum_str(&out);
}

/* A chain (leaf for names, comma-separated, then the CA) valid in [T + from, T + to), and
 * its key. */
static char *mint(const char *names, long from, long to, char **ret_key)
{
	gnutls_x509_privkey_t k = new_key();
	gnutls_x509_crt_t crt;
	gnutls_datum_t out;
	unsigned char sn[4] = {0x10, 0, (unsigned char)(serial >> 8), (unsigned char)serial};
	const char *name = names, *end;
	unsigned flag = GNUTLS_FSAN_SET;
	char *leaf;

	serial++;
	ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_version(crt, 3), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_serial(crt, sn, sizeof(sn)), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_activation_time(crt, T + from), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_expiration_time(crt, T + to), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, name,
	                                               (unsigned)strcspn(name, ",")),
	                 0);
	do {
		end = name + strcspn(name, ",");
		ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name,
		                                                      (unsigned)(end - name), flag),
		                 0);
		flag = GNUTLS_FSAN_APPEND;
		name = end + 1;
	} while (*end != 0);
	ck_assert_int_eq(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_key(crt, k), 0);
	ck_assert_int_eq(gnutls_x509_crt_sign2(crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0), 0);
	ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), 0);
	leaf = datum_str(&out);
	*ret_key = key_pem(k);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(k);
	return strf("%s%s", leaf, ca_pem);
}

/* Writes the file through a rename, as certbot and lego do: a new inode every time. */
static void put(const char *file, const char *data, size_t len, mode_t mode)
{
	char *tmp = strf("%s.tmp", file);
	FILE *f = fopen(tmp, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(tmp, mode), 0);
	ck_assert_int_eq(rename(tmp, file), 0);
}

static void put_str(const char *file, const char *data)
{
	put(file, data, strlen(data), 0600);
}

/* A pair for name valid in [T + from, T + to) at cert and key (files of the test). */
static void pair(const char *cert, const char *key, const char *name, long from, long to)
{
	char *k, *chain = mint(name, from, to, &k);

	put_str(path(key), k);
	put(path(cert), chain, strlen(chain), 0644);
}

static void subdir(const char *name)
{
	ck_assert_int_eq(mkdir(path(name), 0700), 0);
}

/* Domain i of the configuration: NAME at line 10 * (i + 1), with cert and key (files of
 * the test) on the next two lines, or both NULL for the certs directory. */
static struct config_domain *domain(size_t i, const char *name, const char *cert, const char *key)
{
	struct config_domain *cd = &w.domains[i];

	ck_assert_uint_lt(i, MAX_DOMAINS);
	cd->name = strf("%s", name);
	cd->host = strf("mta-sts.%s", name);
	cd->file = w.config.file;
	cd->line = 10 * ((unsigned)i + 1);
	cd->cert = cert != NULL ? path(cert) : NULL;
	cd->key = key != NULL ? path(key) : NULL;
	cd->cert_line = cd->line + 1;
	cd->key_line = cd->line + 2;
	if (w.config.n_domains < i + 1)
		w.config.n_domains = i + 1;
	return cd;
}

static void setup(void)
{
	char *tmpl;

	memset(&w, 0, sizeof(w));
	tmpl = strf("%s/tXXXXXX", top);
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	w.dir = tmpl;
	w.config.file = path("mtastsd.conf");
	w.config.domains = w.domains;
	w.config.certs_dir_line = 5;
}

static void teardown(void)
{
	for (size_t i = 0; i < w.n_owned; i++)
		free(w.owned[i]);
	w.n_owned = 0;
}

static struct cert_info info(struct certcache *cc, size_t i, time_t now)
{
	struct cert_info ci;

	certcache_info(cc, i, now, &ci);
	return ci;
}

#define ck_assert_state(cc, i, now, st, fa)                                                        \
	do {                                                                                       \
		struct cert_info ci_ = info((cc), (i), (now));                                     \
		ck_assert_msg(ci_.state == (st) && ci_.fault == (fa),                              \
		              "domain %d: %s (%s: %s), expected %s (%s)", (int)(i),                \
		              cert_state_names[ci_.state], tls_fault_names[ci_.fault], ci_.detail, \
		              cert_state_names[st], tls_fault_names[fa]);                          \
	} while (0)

/* The certificate presented for domain i at now, as a borrowed pointer (the cache still
 * holds it; only compared and read while the cache lives). */
static const struct tls_cert *presented(struct certcache *cc, size_t i, time_t now)
{
	struct tls_cert *c = certcache_get(cc, i, now);

	tls_cert_unref(c);
	return c;
}

/* ---- one domain, eager --------------------------------------------------------------- */

START_TEST(test_good_pair)
{
	struct certcache *cc;
	struct tls_cert *c, *again;
	struct cert_info ci;
	size_t states[CERT_STATES], faults[TLS_FAULTS];

	pair("a.crt", "a.key", "mta-sts.a.test", -60, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_ptr_nonnull(cc);
	ci = info(cc, 0, T);
	ck_assert_int_eq(ci.state, CERT_OK);
	ck_assert_int_eq(ci.fault, TLS_FAULT_NONE);
	ck_assert_int_eq(ci.since, T);
	ck_assert_int_eq(ci.not_after, T + 30 * DAY);
	ck_assert_str_eq(ci.detail, "");
	c = certcache_get(cc, 0, T);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->cert_file, w.domains[0].cert);
	ck_assert_str_eq(c->key_file, w.domains[0].key);
	ck_assert_int_eq(c->not_after, T + 30 * DAY);
	/* A new reference each time: the slot's and ours. */
	ck_assert_uint_eq(atomic_load(&c->refs), 2);
	again = certcache_get(cc, 0, T + 1);
	ck_assert_ptr_eq(again, c);
	ck_assert_uint_eq(atomic_load(&c->refs), 3);
	tls_cert_unref(again);
	certcache_count(cc, states, faults);
	ck_assert_uint_eq(states[CERT_OK], 1);
	ck_assert_uint_eq(states[CERT_LAZY] + states[CERT_DEGRADED], 0);
	for (size_t f = 0; f < TLS_FAULTS; f++)
		ck_assert_uint_eq(faults[f], 0);
	certcache_destroy(cc);
	/* Ours outlives the cache. */
	ck_assert_uint_eq(atomic_load(&c->refs), 1);
	ck_assert_int_eq(c->not_after, T + 30 * DAY);
	tls_cert_unref(c);
}
END_TEST

enum breakage {
	NO_CERT,
	NO_KEY,
	OTHER_KEY,
	OTHER_NAME,
	EXPIRED,
	NOT_YET_VALID,
	EMPTY_CERT,
	TRUNCATED_CERT,
	CA_AS_CERT,
	DIR_AS_CERT,
	EMPTY_KEY,
	TRUNCATED_KEY,
	FIFO_KEY,
};

static const struct {
	const char *what;
	enum breakage how;
	enum tls_fault fault;
	bool key; /* the problem is the key file's (its line, its name) */
} broken_cases[] = {
    {"no certificate file", NO_CERT, TLS_FAULT_MISSING, false},
    {"no key file", NO_KEY, TLS_FAULT_MISSING, true},
    {"the key of another certificate", OTHER_KEY, TLS_FAULT_KEY_MISMATCH, true},
    {"a certificate for another name", OTHER_NAME, TLS_FAULT_NAME_MISMATCH, false},
    {"expired a second ago", EXPIRED, TLS_FAULT_EXPIRED, false},
    {"valid from in an hour", NOT_YET_VALID, TLS_FAULT_NOT_YET_VALID, false},
    {"an empty certificate file", EMPTY_CERT, TLS_FAULT_INVALID, false},
    {"half a certificate file", TRUNCATED_CERT, TLS_FAULT_INVALID, false},
    {"a CA certificate (no DNS name)", CA_AS_CERT, TLS_FAULT_INVALID, false},
    {"a directory as the certificate", DIR_AS_CERT, TLS_FAULT_UNREADABLE, false},
    {"an empty key file", EMPTY_KEY, TLS_FAULT_INVALID, true},
    {"half a key file", TRUNCATED_KEY, TLS_FAULT_INVALID, true},
    {"a FIFO as the key (never opened, never blocks)", FIFO_KEY, TLS_FAULT_UNREADABLE, true},
};

/* a.crt and a.key for mta-sts.a.test, broken as how says. */
static void broken_pair(enum breakage how)
{
	const char *host = "mta-sts.a.test";
	char *k, *chain;

	switch (how) {
	case OTHER_NAME:
		host = "mta-sts.b.test";
		/* fall through */
	default:
		pair("a.crt", "a.key", host, how == NOT_YET_VALID ? 3600 : -DAY,
		     how == EXPIRED ? -1 : 30 * DAY);
		break;
	}
	chain = mint(host, -DAY, 30 * DAY, &k);
	switch (how) {
	case NO_CERT:
		ck_assert_int_eq(unlink(path("a.crt")), 0);
		break;
	case NO_KEY:
		ck_assert_int_eq(unlink(path("a.key")), 0);
		break;
	case OTHER_KEY:
		put_str(path("a.key"), k);
		break;
	case EMPTY_CERT:
		put_str(path("a.crt"), "");
		break;
	case TRUNCATED_CERT:
		put(path("a.crt"), chain, strlen(chain) / 4, 0644);
		break;
	case CA_AS_CERT:
		put_str(path("a.crt"), ca_pem);
		break;
	case DIR_AS_CERT:
		ck_assert_int_eq(unlink(path("a.crt")), 0);
		subdir("a.crt");
		break;
	case EMPTY_KEY:
		put_str(path("a.key"), "");
		break;
	case TRUNCATED_KEY:
		put(path("a.key"), k, strlen(k) / 2, 0600);
		break;
	case FIFO_KEY:
		ck_assert_int_eq(unlink(path("a.key")), 0);
		ck_assert_int_eq(mkfifo(path("a.key"), 0600), 0);
		break;
	default:
		break;
	}
}

START_TEST(test_broken_pair)
{
	const struct config_domain *cd;
	struct certcache *cc;
	struct cert_info ci;
	struct diag d;
	size_t states[CERT_STATES], faults[TLS_FAULTS];
	const char *file;

	broken_pair(broken_cases[_i].how);
	cd = domain(0, "a.test", "a.crt", "a.key");
	file = broken_cases[_i].key ? cd->key : cd->cert;

	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_ptr_nonnull(cc);
	ci = info(cc, 0, T);
	ck_assert_msg(ci.state == CERT_DEGRADED && ci.fault == broken_cases[_i].fault,
	              "%s: %s (%s), expected degraded (%s)", broken_cases[_i].what,
	              cert_state_names[ci.state], tls_fault_names[ci.fault],
	              tls_fault_names[broken_cases[_i].fault]);
	ck_assert_int_eq(ci.since, T);
	ck_assert_int_eq(ci.not_after, 0);
	ck_assert_msg(strstr(ci.detail, file) != NULL, "%s: '%s' does not name %s",
	              broken_cases[_i].what, ci.detail, file);
	ck_assert_ptr_null(certcache_get(cc, 0, T));
	certcache_count(cc, states, faults);
	ck_assert_uint_eq(states[CERT_DEGRADED], 1);
	ck_assert_uint_eq(states[CERT_OK] + states[CERT_LAZY], 0);
	ck_assert_uint_eq(faults[broken_cases[_i].fault], 1);
	certcache_destroy(cc);

	/* 'check': one error, at the line of the file at fault. */
	diag_init(&d);
	cc = certcache_create(&w.config, NULL, CERTCACHE_VALIDATE, T, &d);
	ck_assert_ptr_nonnull(cc);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert_str_eq(d.v[0].file, w.config.file);
	ck_assert_uint_eq(d.v[0].line, broken_cases[_i].key ? cd->key_line : cd->cert_line);
	ck_assert_msg(strstr(d.v[0].msg, file) != NULL, "'%s' does not name %s", d.v[0].msg, file);
	certcache_destroy(cc);
	diag_finish(&d);
}
END_TEST

START_TEST(test_check_warnings)
{
	const struct config_domain *a, *b;
	struct certcache *cc;
	struct diag d;

	/* a expires in three days; b's key is readable by anybody; c is fine. */
	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 3 * DAY + 600);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	ck_assert_int_eq(chmod(path("b.key"), 0644), 0);
	pair("c.crt", "c.key", "mta-sts.c.test", -DAY, 30 * DAY);
	a = domain(0, "a.test", "a.crt", "a.key");
	b = domain(1, "b.test", "b.crt", "b.key");
	domain(2, "c.test", "c.crt", "c.key");

	for (unsigned flags = 0; flags <= CERTCACHE_VALIDATE; flags += CERTCACHE_VALIDATE) {
		diag_init(&d);
		cc = certcache_create(&w.config, NULL, flags, T, &d);
		ck_assert_ptr_nonnull(cc);
		ck_assert_uint_eq(d.n_errors, 0);
		ck_assert_uint_eq(d.n_warnings, 2);
		ck_assert_int_eq(d.v[0].level, DIAG_WARNING);
		ck_assert_uint_eq(d.v[0].line, a->cert_line);
		ck_assert_ptr_nonnull(strstr(d.v[0].msg, "expires in 3 days"));
		ck_assert_int_eq(d.v[1].level, DIAG_WARNING);
		ck_assert_uint_eq(d.v[1].line, b->key_line);
		ck_assert_ptr_nonnull(strstr(d.v[1].msg, b->key));
		ck_assert_ptr_nonnull(strstr(d.v[1].msg, "accessible by others"));
		/* Warnings only: every domain is served. */
		ck_assert_state(cc, 0, T, CERT_OK, TLS_FAULT_NONE);
		ck_assert_state(cc, 1, T, CERT_OK, TLS_FAULT_NONE);
		ck_assert_state(cc, 2, T, CERT_OK, TLS_FAULT_NONE);
		certcache_destroy(cc);
		diag_finish(&d);
	}
}
END_TEST

/* ---- reloads, refreshes, time ------------------------------------------------------- */

START_TEST(test_reload_keeps_previous)
{
	struct certcache *cc1, *cc2, *cc3;
	struct tls_cert *old;
	struct cert_info ci;

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	cc1 = certcache_create(&w.config, NULL, 0, T, NULL);
	old = certcache_get(cc1, 0, T);
	ck_assert_ptr_nonnull(old);
	/* A half-written certificate when the configuration is reloaded. */
	put_str(path("a.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n");
	cc2 = certcache_create(&w.config, cc1, 0, T + 10, NULL);
	ck_assert_ptr_nonnull(cc2);
	ck_assert_state(cc2, 0, T + 10, CERT_DEGRADED, TLS_FAULT_INVALID);
	ci = info(cc2, 0, T + 10);
	ck_assert_int_eq(ci.since, T + 10);
	ck_assert_int_eq(ci.not_after, old->not_after);
	ck_assert_ptr_eq(presented(cc2, 0, T + 10), old);
	/* The running cache goes; the new one still holds the old certificate. */
	certcache_destroy(cc1);
	ck_assert_ptr_eq(presented(cc2, 0, T + 20), old);
	ck_assert_ptr_null(presented(cc2, 0, T + 30 * DAY));
	/* Reloaded once the old one ran out: nothing left to present. */
	cc3 = certcache_create(&w.config, cc2, 0, T + 30 * DAY, NULL);
	ck_assert_state(cc3, 0, T + 30 * DAY, CERT_DEGRADED, TLS_FAULT_INVALID);
	ck_assert_ptr_null(certcache_get(cc3, 0, T + 30 * DAY));
	/* The fault is the same: the domain has been degraded since the first reload. */
	ck_assert_int_eq(info(cc3, 0, T + 30 * DAY).since, T + 10);
	certcache_destroy(cc2);
	certcache_destroy(cc3);
	tls_cert_unref(old);
}
END_TEST

START_TEST(test_reload_takes_over)
{
	struct config c2;
	struct config_domain d2[3];
	struct certcache *cc1, *cc2;
	const struct tls_cert *a, *b;

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	pair("c.crt", "c.key", "mta-sts.c.test", -DAY, 30 * DAY);
	/* The new configuration lists them the other way round, after a new domain. */
	d2[0] = *domain(2, "c.test", "c.crt", "c.key");
	d2[1] = *domain(1, "b.test", "b.crt", "b.key");
	d2[2] = *domain(0, "a.test", "a.crt", "a.key");
	c2 = w.config;
	c2.domains = d2;
	w.config.n_domains = 2;
	cc1 = certcache_create(&w.config, NULL, 0, T, NULL);
	a = presented(cc1, 0, T);
	b = presented(cc1, 1, T);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	cc2 = certcache_create(&c2, cc1, 0, T + 10, NULL);
	ck_assert_ptr_nonnull(cc2);
	/* Taken over by host, not read again: the very same certificates. */
	ck_assert_ptr_eq(presented(cc2, 1, T + 10), b);
	ck_assert_ptr_eq(presented(cc2, 2, T + 10), a);
	ck_assert_int_eq(info(cc2, 2, T + 10).since, T);
	ck_assert_state(cc2, 0, T + 10, CERT_OK, TLS_FAULT_NONE);
	ck_assert_int_eq(info(cc2, 0, T + 10).since, T + 10);
	certcache_destroy(cc1);
	ck_assert_ptr_eq(presented(cc2, 2, T + 10), a);
	/* A replaced file is read again. */
	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 60 * DAY);
	cc1 = certcache_create(&c2, cc2, 0, T + 20, NULL);
	ck_assert_ptr_ne(presented(cc1, 2, T + 20), a);
	ck_assert_int_eq(info(cc1, 2, T + 20).not_after, T + 60 * DAY);
	ck_assert_ptr_eq(presented(cc1, 1, T + 20), b);
	certcache_destroy(cc2);
	certcache_destroy(cc1);
}
END_TEST

/* One pair named by two domains is read once, and shared. */
START_TEST(test_shared_pair)
{
	struct certcache *cc;
	const struct tls_cert *a;

	pair("ab.crt", "ab.key", "mta-sts.a.test,mta-sts.b.test", -DAY, 30 * DAY);
	domain(0, "a.test", "ab.crt", "ab.key");
	domain(1, "b.test", "ab.crt", "ab.key");
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	a = presented(cc, 0, T);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->n_names, 2);
	ck_assert_ptr_eq(presented(cc, 1, T), a);
	ck_assert_uint_eq(atomic_load(&a->refs), 2);
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_refresh_renewed_and_repaired)
{
	struct certcache *cc;
	const struct tls_cert *a, *renewed, *b;
	struct cert_info ci;

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	ck_assert_int_eq(unlink(path("b.key")), 0);
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	a = presented(cc, 0, T);
	ck_assert_ptr_nonnull(a);
	ck_assert_state(cc, 1, T, CERT_DEGRADED, TLS_FAULT_MISSING);

	/* Nothing changed: nothing read again. */
	certcache_refresh(cc, T + 50);
	ck_assert_ptr_eq(presented(cc, 0, T + 50), a);
	ck_assert_state(cc, 1, T + 50, CERT_DEGRADED, TLS_FAULT_MISSING);
	ck_assert_int_eq(info(cc, 1, T + 50).since, T);

	/* a renewed, b repaired. */
	pair("a.crt", "a.key", "mta-sts.a.test", -60, 90 * DAY);
	pair("b.crt", "b.key", "mta-sts.b.test", -60, 90 * DAY);
	certcache_refresh(cc, T + 100);
	renewed = presented(cc, 0, T + 100);
	ck_assert_ptr_nonnull(renewed);
	ck_assert_ptr_ne(renewed, a);
	ck_assert_int_eq(renewed->not_after, T + 90 * DAY);
	ci = info(cc, 0, T + 100);
	ck_assert_int_eq(ci.state, CERT_OK);
	ck_assert_int_eq(ci.since, T); /* still ok, since the start */
	ck_assert_int_eq(ci.not_after, T + 90 * DAY);
	ck_assert_state(cc, 1, T + 100, CERT_OK, TLS_FAULT_NONE);
	ck_assert_int_eq(info(cc, 1, T + 100).since, T + 100);
	b = presented(cc, 1, T + 100);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(b->names[0], "mta-sts.b.test");

	/* Then a damaged: the renewed one stays. */
	put_str(path("a.key"), "garbage\n");
	certcache_refresh(cc, T + 200);
	ck_assert_state(cc, 0, T + 200, CERT_DEGRADED, TLS_FAULT_INVALID);
	ck_assert_ptr_eq(presented(cc, 0, T + 200), renewed);
	ck_assert_ptr_eq(presented(cc, 1, T + 200), b);
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_tick_expiry)
{
	struct certcache *cc;
	const struct tls_cert *c;
	size_t states[CERT_STATES], faults[TLS_FAULTS];

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 2);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	c = presented(cc, 0, T);
	ck_assert_ptr_nonnull(c);
	certcache_tick(cc, T + 1);
	ck_assert_state(cc, 0, T + 1, CERT_OK, TLS_FAULT_NONE);
	ck_assert_ptr_eq(presented(cc, 0, T + 1), c);
	certcache_tick(cc, T + 2);
	ck_assert_state(cc, 0, T + 2, CERT_DEGRADED, TLS_FAULT_EXPIRED);
	ck_assert_int_eq(info(cc, 0, T + 2).since, T + 2);
	ck_assert_ptr_null(presented(cc, 0, T + 2));
	ck_assert_state(cc, 1, T + 2, CERT_OK, TLS_FAULT_NONE);
	certcache_count(cc, states, faults);
	ck_assert_uint_eq(states[CERT_OK], 1);
	ck_assert_uint_eq(states[CERT_DEGRADED], 1);
	ck_assert_uint_eq(faults[TLS_FAULT_EXPIRED], 1);
	certcache_destroy(cc);
}
END_TEST

/* Renewed on disk but not refreshed (cert_watch off): the tick of the expiry reads it. */
START_TEST(test_tick_expiry_renewed)
{
	struct certcache *cc;
	const struct tls_cert *c, *renewed;

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 2);
	domain(0, "a.test", "a.crt", "a.key");
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	c = presented(cc, 0, T);
	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	/* Nothing is due before the expiry: no file is looked at. */
	certcache_tick(cc, T + 1);
	ck_assert_ptr_eq(presented(cc, 0, T + 1), c);
	certcache_tick(cc, T + 2);
	ck_assert_state(cc, 0, T + 2, CERT_OK, TLS_FAULT_NONE);
	renewed = presented(cc, 0, T + 2);
	ck_assert_ptr_nonnull(renewed);
	ck_assert_int_eq(renewed->not_after, T + 30 * DAY);
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_tick_not_yet_valid)
{
	struct certcache *cc;

	pair("a.crt", "a.key", "mta-sts.a.test", 2, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_state(cc, 0, T, CERT_DEGRADED, TLS_FAULT_NOT_YET_VALID);
	ck_assert_ptr_null(presented(cc, 0, T));
	certcache_tick(cc, T + 1);
	ck_assert_state(cc, 0, T + 1, CERT_DEGRADED, TLS_FAULT_NOT_YET_VALID);
	ck_assert_ptr_null(presented(cc, 0, T + 1));
	certcache_tick(cc, T + 2);
	ck_assert_state(cc, 0, T + 2, CERT_OK, TLS_FAULT_NONE);
	ck_assert_int_eq(info(cc, 0, T + 2).since, T + 2);
	ck_assert_ptr_nonnull(presented(cc, 0, T + 2));
	certcache_destroy(cc);
}
END_TEST

/* A renewal valid from a little later: the current certificate until then. */
START_TEST(test_renewal_not_yet_valid)
{
	struct certcache *cc;
	const struct tls_cert *old, *next;

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	old = presented(cc, 0, T);
	pair("a.crt", "a.key", "mta-sts.a.test", 5, 90 * DAY);
	certcache_refresh(cc, T + 1);
	ck_assert_state(cc, 0, T + 1, CERT_DEGRADED, TLS_FAULT_NOT_YET_VALID);
	ck_assert_ptr_eq(presented(cc, 0, T + 1), old);
	certcache_tick(cc, T + 4);
	ck_assert_ptr_eq(presented(cc, 0, T + 4), old);
	certcache_tick(cc, T + 5);
	ck_assert_state(cc, 0, T + 5, CERT_OK, TLS_FAULT_NONE);
	next = presented(cc, 0, T + 5);
	ck_assert_ptr_nonnull(next);
	ck_assert_int_eq(next->not_after, T + 90 * DAY);
	certcache_destroy(cc);
}
END_TEST

/* ---- the certs directory ------------------------------------------------------------ */

static const struct {
	const char *name;
	enum cert_state state;
	enum tls_fault fault;
	const char *detail; /* in the detail of a degraded domain */
} dir_cases[] = {
    {"a.test", CERT_OK, TLS_FAULT_NONE, ""}, /* NAME.crt + NAME.key */
    {"b.test", CERT_OK, TLS_FAULT_NONE, ""}, /* certbot's layout */
    {"c.test", CERT_OK, TLS_FAULT_NONE, ""}, /* NAME.pem + NAME.key */
    {"d.test", CERT_DEGRADED, TLS_FAULT_KEY_MISMATCH, "mta-sts.d.test.key"},
    {"e.test", CERT_DEGRADED, TLS_FAULT_INVALID, "mta-sts.e.test/fullchain.pem"},
    {"f.test", CERT_DEGRADED, TLS_FAULT_MISSING, "no certificate for mta-sts.f.test"},
    {"g.test", CERT_OK, TLS_FAULT_NONE, ""},                            /* a wildcard */
    {"h.test", CERT_DEGRADED, TLS_FAULT_MISSING, "mta-sts.h.test.key"}, /* no key yet */
};

static void certs_dir(void)
{
	char *k, *chain;

	subdir("certs");
	pair("certs/mta-sts.a.test.crt", "certs/mta-sts.a.test.key", "mta-sts.a.test", -DAY,
	     30 * DAY);
	subdir("certs/some-name");
	pair("certs/some-name/fullchain.pem", "certs/some-name/privkey.pem", "mta-sts.b.test", -DAY,
	     30 * DAY);
	pair("certs/mta-sts.c.test.pem", "certs/mta-sts.c.test.key", "mta-sts.c.test", -DAY,
	     30 * DAY);
	pair("certs/mta-sts.d.test.crt", "certs/mta-sts.d.test.key", "mta-sts.d.test", -DAY,
	     30 * DAY);
	mint("mta-sts.d.test", -DAY, 30 * DAY, &k);
	put_str(path("certs/mta-sts.d.test.key"), k);
	subdir("certs/mta-sts.e.test");
	pair("certs/mta-sts.e.test/fullchain.pem", "certs/mta-sts.e.test/privkey.pem",
	     "mta-sts.e.test", -DAY, 30 * DAY);
	put_str(path("certs/mta-sts.e.test/fullchain.pem"), "-----BEGIN CERTIFICATE-----\n");
	pair("certs/wild.crt", "certs/wild.key", "*.g.test", -DAY, 30 * DAY);
	chain = mint("mta-sts.h.test", -DAY, 30 * DAY, &k);
	put_str(path("certs/mta-sts.h.test.crt"), chain);
	/* A broken pair no domain is named after. */
	put_str(path("certs/stray.crt"), "junk\n");
	put_str(path("certs/stray.key"), "junk\n");
	w.config.certs_dir = path("certs");
	for (size_t i = 0; i < sizeof(dir_cases) / sizeof(dir_cases[0]); i++)
		domain(i, dir_cases[i].name, NULL, NULL);
}

START_TEST(test_certs_dir)
{
	struct certcache *cc;
	const struct tls_cert *first[MAX_DOMAINS];
	struct diag d;
	size_t errors = 0;

	certs_dir();
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_ptr_nonnull(cc);
	for (size_t i = 0; i < sizeof(dir_cases) / sizeof(dir_cases[0]); i++) {
		struct cert_info ci = info(cc, i, T);

		ck_assert_msg(ci.state == dir_cases[i].state && ci.fault == dir_cases[i].fault,
		              "%s: %s (%s: %s)", dir_cases[i].name, cert_state_names[ci.state],
		              tls_fault_names[ci.fault], ci.detail);
		ck_assert_msg(strstr(ci.detail, dir_cases[i].detail) != NULL, "%s: '%s'",
		              dir_cases[i].name, ci.detail);
		first[i] = presented(cc, i, T);
		if (dir_cases[i].state == CERT_OK)
			ck_assert(tls_cert_covers(first[i], w.domains[i].host));
		else
			ck_assert_ptr_null(first[i]);
	}
	/* The directory read again with nothing changed: the same certificates. */
	certcache_refresh(cc, T + 10);
	for (size_t i = 0; i < sizeof(dir_cases) / sizeof(dir_cases[0]); i++)
		ck_assert_ptr_eq(presented(cc, i, T + 10), first[i]);
	certcache_destroy(cc);

	/* 'check': each degraded domain at its line, the stray pair at certs. */
	diag_init(&d);
	cc = certcache_create(&w.config, NULL, CERTCACHE_VALIDATE, T, &d);
	ck_assert_uint_eq(d.n_warnings, 1);
	for (size_t i = 0, k = 0; i < d.n; i++) {
		if (d.v[i].level == DIAG_WARNING) {
			ck_assert_uint_eq(d.v[i].line, w.config.certs_dir_line);
			ck_assert_ptr_nonnull(strstr(d.v[i].msg, "stray.crt"));
			ck_assert_ptr_nonnull(strstr(d.v[i].msg, "no domain is named after it"));
			continue;
		}
		while (dir_cases[k].state != CERT_DEGRADED)
			k++;
		ck_assert_uint_eq(d.v[i].line, w.domains[k].line);
		ck_assert_ptr_nonnull(strstr(d.v[i].msg, dir_cases[k].detail));
		k++;
		errors++;
	}
	ck_assert_uint_eq(errors, 4);
	ck_assert_uint_eq(d.n_errors, 4);
	certcache_destroy(cc);
	diag_finish(&d);
}
END_TEST

/* Two files for one name: the valid one serves, whichever sorts first (an expired file
 * left beside its renewal), and of two valid ones the one valid longer. */
START_TEST(test_certs_dir_same_name)
{
	struct certcache *cc;
	const struct tls_cert *c;

	subdir("certs");
	w.config.certs_dir = path("certs");
	pair("certs/a-old.crt", "certs/a-old.key", "mta-sts.a.test", -30 * DAY, -DAY);
	pair("certs/b-new.crt", "certs/b-new.key", "mta-sts.a.test", -DAY, 30 * DAY);
	pair("certs/c-newer.crt", "certs/c-newer.key", "mta-sts.a.test", -DAY, 60 * DAY);
	pair("certs/d-short.crt", "certs/d-short.key", "mta-sts.a.test", -DAY, 10 * DAY);
	domain(0, "a.test", NULL, NULL);
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_state(cc, 0, T, CERT_OK, TLS_FAULT_NONE);
	c = presented(cc, 0, T);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(strstr(c->cert_file, "c-newer.crt"));
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_certs_dir_missing)
{
	struct certcache *cc;
	struct cert_info ci;
	struct diag d;

	w.config.certs_dir = path("nowhere");
	domain(0, "a.test", NULL, NULL);
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_state(cc, 0, T, CERT_DEGRADED, TLS_FAULT_MISSING);
	ci = info(cc, 0, T);
	ck_assert_ptr_nonnull(strstr(ci.detail, w.config.certs_dir));
	certcache_destroy(cc);

	diag_init(&d);
	cc = certcache_create(&w.config, NULL, CERTCACHE_VALIDATE, T, &d);
	ck_assert_uint_eq(d.n_errors, 2);
	ck_assert_uint_eq(d.v[0].line, w.config.certs_dir_line);
	ck_assert_uint_eq(d.v[1].line, w.domains[0].line);
	certcache_destroy(cc);
	diag_finish(&d);
}
END_TEST

/* ---- lazy loading ------------------------------------------------------------------- */

START_TEST(test_lazy_ring)
{
	struct certcache *cc, *eager;
	struct tls_cert *a, *b, *a2;
	size_t states[CERT_STATES], faults[TLS_FAULTS];

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	w.config.cert_cache = 1;
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_state(cc, 0, T, CERT_LAZY, TLS_FAULT_NONE);
	ck_assert_state(cc, 1, T, CERT_LAZY, TLS_FAULT_NONE);
	ck_assert_int_eq(info(cc, 0, T).not_after, 0);
	certcache_count(cc, states, faults);
	ck_assert_uint_eq(states[CERT_LAZY], 2);

	a = certcache_get(cc, 0, T);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a->names[0], "mta-sts.a.test");
	ck_assert_state(cc, 0, T, CERT_OK, TLS_FAULT_NONE);
	ck_assert_int_eq(info(cc, 0, T).not_after, T + 30 * DAY);
	ck_assert_state(cc, 1, T, CERT_LAZY, TLS_FAULT_NONE);
	ck_assert_ptr_eq(presented(cc, 0, T), a);

	/* b loaded: a is evicted (the cache holds one). */
	b = certcache_get(cc, 1, T + 1);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(b->names[0], "mta-sts.b.test");
	ck_assert_state(cc, 0, T + 1, CERT_LAZY, TLS_FAULT_NONE);
	ck_assert_state(cc, 1, T + 1, CERT_OK, TLS_FAULT_NONE);
	certcache_count(cc, states, faults);
	ck_assert_uint_eq(states[CERT_OK], 1);
	ck_assert_uint_eq(states[CERT_LAZY], 1);
	ck_assert_uint_eq(states[CERT_DEGRADED], 0);
	/* Ours survives the eviction. */
	ck_assert_uint_eq(atomic_load(&a->refs), 1);
	ck_assert_str_eq(a->cert_file, w.domains[0].cert);

	/* a again: read again, b out. */
	a2 = certcache_get(cc, 0, T + 2);
	ck_assert_ptr_nonnull(a2);
	ck_assert_ptr_ne(a2, a);
	ck_assert_state(cc, 0, T + 2, CERT_OK, TLS_FAULT_NONE);
	ck_assert_state(cc, 1, T + 2, CERT_LAZY, TLS_FAULT_NONE);

	/* Reloaded eager: the loaded one taken over, the other read now. */
	w.config.cert_cache = 0;
	eager = certcache_create(&w.config, cc, 0, T + 3, NULL);
	ck_assert_ptr_eq(presented(eager, 0, T + 3), a2);
	ck_assert_state(eager, 1, T + 3, CERT_OK, TLS_FAULT_NONE);
	ck_assert_int_eq(info(eager, 1, T + 3).since, T + 3);
	ck_assert_ptr_nonnull(presented(eager, 1, T + 3));
	certcache_destroy(eager);
	tls_cert_unref(a);
	tls_cert_unref(a2);
	tls_cert_unref(b);
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_lazy_missing_at_start)
{
	struct certcache *cc;

	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	pair("c.crt", "c.key", "mta-sts.c.test", -DAY, 30 * DAY);
	ck_assert_int_eq(unlink(path("c.key")), 0);
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	domain(2, "c.test", "c.crt", "c.key");
	w.config.cert_cache = 1;
	/* Not read, but looked for: a missing file is seen at once. */
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_state(cc, 0, T, CERT_DEGRADED, TLS_FAULT_MISSING);
	ck_assert_ptr_nonnull(strstr(info(cc, 0, T).detail, w.domains[0].cert));
	ck_assert_state(cc, 1, T, CERT_LAZY, TLS_FAULT_NONE);
	ck_assert_state(cc, 2, T, CERT_DEGRADED, TLS_FAULT_MISSING);
	ck_assert_ptr_nonnull(strstr(info(cc, 2, T).detail, w.domains[2].key));
	ck_assert_ptr_null(certcache_get(cc, 0, T));
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_lazy_retry)
{
	struct certcache *cc;
	const struct tls_cert *c;
	struct cert_info ci;

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	w.config.cert_cache = 1;
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_state(cc, 0, T, CERT_LAZY, TLS_FAULT_NONE);
	/* Damaged after the start: the first handshake finds out. */
	put_str(path("a.key"), "-----BEGIN PRIVATE KEY-----\n");
	ck_assert_ptr_null(presented(cc, 0, T));
	ck_assert_state(cc, 0, T, CERT_DEGRADED, TLS_FAULT_INVALID);
	ci = info(cc, 0, T);
	ck_assert_int_eq(ci.since, T);
	ck_assert_ptr_nonnull(strstr(ci.detail, w.domains[0].key));
	/* Repaired, but not looked at again before the retry delay. */
	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	ck_assert_ptr_null(presented(cc, 0, T + 1));
	ck_assert_ptr_null(presented(cc, 0, T + LAZY_RETRY - 1));
	ck_assert_state(cc, 0, T + LAZY_RETRY - 1, CERT_DEGRADED, TLS_FAULT_INVALID);
	c = presented(cc, 0, T + LAZY_RETRY);
	ck_assert_ptr_nonnull(c);
	ck_assert_state(cc, 0, T + LAZY_RETRY, CERT_OK, TLS_FAULT_NONE);
	ck_assert_int_eq(info(cc, 0, T + LAZY_RETRY).since, T + LAZY_RETRY);
	/* The other domain was never affected. */
	ck_assert_state(cc, 1, T + LAZY_RETRY, CERT_LAZY, TLS_FAULT_NONE);
	certcache_destroy(cc);
}
END_TEST

/* A lazily loaded certificate runs out with nothing changed on disk: the tick of its
 * expiry sees it, as it does for an eagerly loaded one. */
START_TEST(test_lazy_expiry)
{
	struct certcache *cc;

	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 2);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	w.config.cert_cache = 2;
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_ptr_nonnull(presented(cc, 0, T));
	ck_assert_ptr_nonnull(presented(cc, 1, T));
	certcache_tick(cc, T + 1);
	ck_assert_state(cc, 0, T + 1, CERT_OK, TLS_FAULT_NONE);
	certcache_tick(cc, T + 2);
	ck_assert_state(cc, 0, T + 2, CERT_DEGRADED, TLS_FAULT_EXPIRED);
	ck_assert_ptr_null(presented(cc, 0, T + 2));
	ck_assert_state(cc, 1, T + 2, CERT_OK, TLS_FAULT_NONE);
	/* Renewed later: picked up (cert_watch would refresh; a retry tick also would). */
	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	certcache_refresh(cc, T + 3);
	ck_assert_state(cc, 0, T + 3, CERT_OK, TLS_FAULT_NONE);
	ck_assert_ptr_nonnull(presented(cc, 0, T + 3));
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_preload)
{
	struct certcache *cc;
	atomic_bool stop;

	atomic_init(&stop, false);
	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	pair("b.crt", "b.key", "mta-sts.b.test", -DAY, 30 * DAY);
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	/* More domains than cache: which to warm up is anybody's guess. */
	w.config.cert_cache = 1;
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_uint_eq(certcache_preload(cc, &stop), 0);
	ck_assert_state(cc, 0, T, CERT_LAZY, TLS_FAULT_NONE);
	certcache_destroy(cc);
	/* All fit: all loaded, unless stopped. */
	w.config.cert_cache = 2;
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	atomic_store(&stop, true);
	ck_assert_uint_eq(certcache_preload(cc, &stop), 0);
	atomic_store(&stop, false);
	ck_assert_uint_eq(certcache_preload(cc, &stop), 2);
	ck_assert_state(cc, 0, T, CERT_OK, TLS_FAULT_NONE);
	ck_assert_state(cc, 1, T, CERT_OK, TLS_FAULT_NONE);
	certcache_destroy(cc);
	/* Eager: nothing to do. */
	w.config.cert_cache = 0;
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	ck_assert_uint_eq(certcache_preload(cc, &stop), 0);
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_count)
{
	struct certcache *cc;
	size_t states[CERT_STATES], faults[TLS_FAULTS], sum = 0;

	/* Lazy files, a missing file, the certs directory: ok, lazy and two faults. */
	pair("a.crt", "a.key", "mta-sts.a.test", -DAY, 30 * DAY);
	subdir("certs");
	pair("certs/c.crt", "certs/c.key", "mta-sts.c.test", -DAY, 30 * DAY);
	pair("certs/mta-sts.d.test.crt", "certs/mta-sts.d.test.key", "mta-sts.d.test", -DAY, -1);
	pair("certs/mta-sts.e.test.crt", "certs/mta-sts.e.test.key", "mta-sts.e.test", -DAY, -1);
	w.config.certs_dir = path("certs");
	w.config.cert_cache = 5;
	domain(0, "a.test", "a.crt", "a.key");
	domain(1, "b.test", "b.crt", "b.key");
	domain(2, "c.test", NULL, NULL);
	domain(3, "d.test", NULL, NULL);
	domain(4, "e.test", NULL, NULL);
	cc = certcache_create(&w.config, NULL, 0, T, NULL);
	certcache_count(cc, states, faults);
	ck_assert_uint_eq(states[CERT_OK], 1);
	ck_assert_uint_eq(states[CERT_LAZY], 1);
	ck_assert_uint_eq(states[CERT_DEGRADED], 3);
	ck_assert_uint_eq(faults[TLS_FAULT_MISSING], 1);
	ck_assert_uint_eq(faults[TLS_FAULT_EXPIRED], 2);
	for (size_t f = 0; f < TLS_FAULTS; f++)
		sum += faults[f];
	ck_assert_uint_eq(sum, states[CERT_DEGRADED]);
	ck_assert_ptr_nonnull(presented(cc, 0, T));
	certcache_count(cc, states, faults);
	ck_assert_uint_eq(states[CERT_OK], 2);
	ck_assert_uint_eq(states[CERT_LAZY], 0);
	certcache_destroy(cc);
}
END_TEST

START_TEST(test_destroy_null)
{
	certcache_destroy(NULL);
}
END_TEST

static Suite *certcache_suite(void)
{
	Suite *s = suite_create("certcache");
	TCase *tc = tcase_create("eager");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_good_pair);
	tcase_add_loop_test(tc, test_broken_pair, 0,
	                    sizeof(broken_cases) / sizeof(broken_cases[0]));
	tcase_add_test(tc, test_check_warnings);
	tcase_add_test(tc, test_destroy_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("change");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_reload_keeps_previous);
	tcase_add_test(tc, test_reload_takes_over);
	tcase_add_test(tc, test_shared_pair);
	tcase_add_test(tc, test_refresh_renewed_and_repaired);
	tcase_add_test(tc, test_tick_expiry);
	tcase_add_test(tc, test_tick_expiry_renewed);
	tcase_add_test(tc, test_tick_not_yet_valid);
	tcase_add_test(tc, test_renewal_not_yet_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("certs_dir");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_certs_dir);
	tcase_add_test(tc, test_certs_dir_same_name);
	tcase_add_test(tc, test_certs_dir_missing);
	suite_add_tcase(s, tc);

	tc = tcase_create("lazy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_lazy_ring);
	tcase_add_test(tc, test_lazy_missing_at_start);
	tcase_add_test(tc, test_lazy_retry);
	tcase_add_test(tc, test_lazy_expiry);
	tcase_add_test(tc, test_preload);
	tcase_add_test(tc, test_count);
	suite_add_tcase(s, tc);
	return s;
}

/* The test CA, self-signed, valid for ten years around T. 0 / -1. */
static int make_ca(void)
{
	const char *cn = "mtastsd test CA";
	unsigned char sn[1] = {1};
	gnutls_datum_t out;

	if (gnutls_x509_privkey_init(&ca_key) < 0 ||
	    gnutls_x509_privkey_generate(ca_key, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_init(&ca_crt) < 0 || gnutls_x509_crt_set_version(ca_crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(ca_crt, sn, sizeof(sn)) < 0 ||
	    gnutls_x509_crt_set_activation_time(ca_crt, T - 3650 * DAY) < 0 ||
	    gnutls_x509_crt_set_expiration_time(ca_crt, T + 3650 * DAY) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(ca_crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	                                  (unsigned)strlen(cn)) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(ca_crt, 1, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(ca_crt, GNUTLS_KEY_KEY_CERT_SIGN) < 0 ||
	    gnutls_x509_crt_set_key(ca_crt, ca_key) < 0 ||
	    gnutls_x509_crt_sign2(ca_crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crt_export2(ca_crt, GNUTLS_X509_FMT_PEM, &out) < 0)
		return -1;
	ca_pem = strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	return ca_pem != NULL ? 0 : -1;
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

int main(void)
{
	char tmpl[] = "/tmp/test_certcache.XXXXXX";
	SRunner *sr;
	int failed = 1;

	T = time(NULL);
	if (gnutls_global_init() < 0 || (top = mkdtemp(tmpl)) == NULL || make_ca() < 0) {
		fprintf(stderr, "test_certcache: cannot set up the test CA or directory\n");
		goto out;
	}
	sr = srunner_create(certcache_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
out:
	if (top != NULL)
		nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(ca_pem);
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_privkey_deinit(ca_key);
	gnutls_global_deinit();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
