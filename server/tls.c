/* tls: certificate chains and keys (GnuTLS), indexed by SAN name for SNI */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "tls.h"

const char tls_priorities[] = "NONE:+VERS-TLS1.3:+VERS-TLS1.2:"
                              "+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AEAD:"
                              "+ECDHE-ECDSA:+ECDHE-RSA:"
                              "+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
                              "+SIGN-ALL:+COMP-NULL:+CTYPE-X509:%SERVER_PRECEDENCE";

int tls_global_init(void)
{
	return gnutls_global_init() < 0 ? -1 : 0;
}

/* Intermediates are shared: thousands of leaves from one CA carry the same one, and a
 * parsed copy costs over a kilobyte each. Few distinct intermediates exist, so a short
 * list compared by DER is enough; when it is full, certificates simply keep their own. */
#define INTERNED_MAX 64

static struct {
	gnutls_pcert_st pcert;
	unsigned long refs;
} interned[INTERNED_MAX];
static pthread_mutex_t interned_lock = PTHREAD_MUTEX_INITIALIZER;

/* Replaces *pc by the shared copy of the same certificate; true when it did. */
static bool intern(gnutls_pcert_st *pc)
{
	int free_slot = -1;
	bool done = false;

	pthread_mutex_lock(&interned_lock);
	for (int i = 0; i < INTERNED_MAX && !done; i++) {
		gnutls_pcert_st *e = &interned[i].pcert;

		if (interned[i].refs == 0) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (e->cert.size == pc->cert.size &&
		    memcmp(e->cert.data, pc->cert.data, pc->cert.size) == 0) {
			gnutls_pcert_deinit(pc);
			*pc = *e;
			interned[i].refs++;
			done = true;
		}
	}
	if (!done && free_slot >= 0) {
		interned[free_slot].pcert = *pc;
		interned[free_slot].refs = 1;
		done = true;
	}
	pthread_mutex_unlock(&interned_lock);
	return done;
}

static void intern_release(const gnutls_pcert_st *pc)
{
	pthread_mutex_lock(&interned_lock);
	for (int i = 0; i < INTERNED_MAX; i++) {
		if (interned[i].refs == 0 || interned[i].pcert.cert.data != pc->cert.data)
			continue;
		if (--interned[i].refs == 0)
			gnutls_pcert_deinit(&interned[i].pcert);
		break;
	}
	pthread_mutex_unlock(&interned_lock);
}

static void cert_destroy(struct tls_cert *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->n_chain; i++) {
		if (c->shared & (1u << i))
			intern_release(&c->chain[i]);
		else
			gnutls_pcert_deinit(&c->chain[i]);
	}
	if (c->key != NULL)
		gnutls_privkey_deinit(c->key); /* GnuTLS wipes key material it frees */
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->names);
	free(c->cert_file);
	free(c->key_file);
	free(c);
}

struct tls_store *tls_store_create(void)
{
	struct tls_store *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (hash_init(&s->names, 16) < 0 || hash_init(&s->files, 16) < 0) {
		hash_finish(&s->names);
		free(s);
		return NULL;
	}
	return s;
}

void tls_store_destroy(struct tls_store *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_certs; i++)
		tls_cert_unref(s->certs[i]);
	free(s->certs);
	hash_finish(&s->names);
	hash_finish(&s->files);
	free(s);
}

/* Reads a whole (small) file; the caller wipes and frees *ret. */
static void file_id(const struct stat *st, struct tls_file_id *ret)
{
	ret->dev = st->st_dev;
	ret->ino = st->st_ino;
	ret->size = (unsigned long long)st->st_size;
	ret->mtime_sec = st->st_mtim.tv_sec;
	ret->mtime_nsec = st->st_mtim.tv_nsec;
}

static int read_file(const char *path, gnutls_datum_t *ret, struct tls_file_id *ret_id, bool secret,
                     struct diag *d, const char *file, unsigned line)
{
	gnutls_datum_t data = {NULL, 0};
	struct stat st;
	int ret_code = -1;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		diag_error(d, file, line, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		diag_error(d, file, line, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > 1024 * 1024) {
		diag_error(d, file, line, "%s: empty or larger than 1 MiB", path);
		goto out;
	}
	/* Group access is the usual root:mtastsd 0640 layout; others never. */
	if (secret && (st.st_mode & S_IRWXO) != 0)
		diag_warn(d, file, line, "%s: private key is accessible by others (chmod o-rwx)",
		          path);
	data.data = gnutls_malloc((size_t)st.st_size + 1);
	if (data.data == NULL) {
		diag_error(d, file, line, "%s: out of memory", path);
		goto out;
	}
	data.size = (unsigned)fread(data.data, 1, (size_t)st.st_size, f);
	if (data.size != (unsigned)st.st_size) {
		diag_error(d, file, line, "%s: short read", path);
		gnutls_memset(data.data, 0, (size_t)st.st_size);
		gnutls_free(data.data);
		goto out;
	}
	data.data[data.size] = 0;
	*ret = data;
	file_id(&st, ret_id);
	ret_code = 0;
out:
	fclose(f);
	return ret_code;
}

static void datum_wipe(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		gnutls_memset(d->data, 0, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

static char *lower_dup(const char *s, size_t len)
{
	char *r = malloc(len + 1);

	if (r == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		r[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	r[len] = 0;
	return r;
}

/* Reads SAN dNSNames and expiry of the leaf. A certificate without any DNS name (a CA
 * certificate next to the leaves, say) is an error, or with quiet set just -1. */
static int read_leaf(struct tls_cert *c, bool quiet, struct diag *d, const char *file,
                     unsigned line)
{
	gnutls_x509_crt_t crt;
	int ret = -1;

	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &c->chain[0].cert, GNUTLS_X509_FMT_DER) < 0) {
		diag_error(d, file, line, "%s: cannot parse the leaf certificate", c->cert_file);
		goto out;
	}
	c->not_after = gnutls_x509_crt_get_expiration_time(crt);
	for (unsigned i = 0;; i++) {
		char name[256];
		size_t len = sizeof(name) - 1;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, name, &len, NULL);

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;
		if (type < 0) {
			diag_error(d, file, line, "%s: bad subjectAltName: %s", c->cert_file,
			           gnutls_strerror(type));
			goto out;
		}
		if (type != GNUTLS_SAN_DNSNAME || len == 0 || memchr(name, 0, len) != NULL)
			continue;
		char **v = realloc(c->names, (c->n_names + 1) * sizeof(*v));
		if (v == NULL)
			goto out;
		c->names = v;
		if ((c->names[c->n_names] = lower_dup(name, len)) == NULL)
			goto out;
		c->n_names++;
	}
	if (c->n_names == 0) {
		if (!quiet)
			diag_error(d, file, line, "%s: certificate has no DNS subjectAltName",
			           c->cert_file);
		goto out;
	}
	ret = 0;
out:
	gnutls_x509_crt_deinit(crt);
	return ret;
}

/* Compares the public key of the leaf with the one derived from the private key. */
static bool key_matches(const struct tls_cert *c)
{
	gnutls_pubkey_t pub;
	unsigned char a[64], b[64];
	size_t alen = sizeof(a), blen = sizeof(b);
	bool ok = false;

	if (gnutls_pubkey_init(&pub) < 0)
		return false;
	if (gnutls_pubkey_import_privkey(pub, c->key, 0, 0) >= 0 &&
	    gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &alen) >= 0 &&
	    gnutls_pubkey_get_key_id(c->chain[0].pubkey, GNUTLS_KEYID_USE_SHA256, b, &blen) >= 0)
		ok = alen == blen && memcmp(a, b, alen) == 0;
	gnutls_pubkey_deinit(pub);
	return ok;
}

/* Takes over the caller's reference, also on failure (then the certificate is in the
 * store's list, freed with the store, but maybe not indexed). */
static int store_add(struct tls_store *s, struct tls_cert *c)
{
	if (s->n_certs == s->cap_certs) {
		size_t cap = s->cap_certs ? s->cap_certs * 2 : 16;
		struct tls_cert **v = realloc(s->certs, cap * sizeof(*v));

		if (v == NULL) {
			tls_cert_unref(c);
			return -1;
		}
		s->certs = v;
		s->cap_certs = cap;
	}
	s->certs[s->n_certs++] = c;
	if (hash_put(&s->files, c->cert_file, c, NULL) < 0)
		return -1;
	for (size_t i = 0; i < c->n_names; i++)
		if (hash_put(&s->names, c->names[i], c, NULL) < 0)
			return -1;
	return 0;
}

/* Reads and checks one chain + key pair; refs starts at 1. */
static struct tls_cert *cert_parse(const char *cert_file, const char *key_file, bool from_dir,
                                   struct diag *d, const char *file, unsigned line,
                                   unsigned key_line)
{
	gnutls_datum_t pem = {NULL, 0}, key = {NULL, 0};
	struct tls_cert *c;
	int r;

	if ((c = calloc(1, sizeof(*c))) == NULL || (c->cert_file = strdup(cert_file)) == NULL) {
		diag_error(d, file, line, "out of memory");
		goto fail;
	}
	if (read_file(cert_file, &pem, &c->cert_id, false, d, file, line) < 0)
		goto fail;
	c->n_chain = TLS_CHAIN_MAX;
	r = gnutls_pcert_list_import_x509_raw(c->chain, &c->n_chain, &pem, GNUTLS_X509_FMT_PEM,
	                                      GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (r < 0) {
		c->n_chain = 0;
		diag_error(d, file, line, "%s: cannot load the certificate chain: %s", cert_file,
		           gnutls_strerror(r));
		goto fail;
	}
	for (unsigned i = 1; i < c->n_chain; i++)
		if (intern(&c->chain[i]))
			c->shared |= 1u << i;
	if (read_leaf(c, from_dir, d, file, line) < 0)
		goto fail;
	if ((c->key_file = strdup(key_file)) == NULL ||
	    read_file(key_file, &key, &c->key_id, true, d, file, key_line) < 0)
		goto fail;
	if (gnutls_privkey_init(&c->key) < 0) {
		c->key = NULL;
		goto fail;
	}
	r = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		diag_error(d, file, key_line, "%s: cannot load the private key: %s", key_file,
		           gnutls_strerror(r));
		goto fail;
	}
	if (!key_matches(c)) {
		diag_error(d, file, key_line, "%s: private key does not match certificate %s",
		           key_file, cert_file);
		goto fail;
	}
	atomic_init(&c->refs, 1);
	datum_wipe(&key);
	gnutls_free(pem.data);
	return c;
fail:
	datum_wipe(&key);
	gnutls_free(pem.data);
	cert_destroy(c);
	return NULL;
}

static struct tls_cert *load(struct tls_store *s, const char *cert_file, const char *key_file,
                             bool from_dir, struct diag *d, const char *file, unsigned line,
                             unsigned key_line)
{
	struct tls_cert *c = hash_get(&s->files, cert_file, strlen(cert_file));

	if (c != NULL)
		return c;
	if (s->reuse != NULL && (c = tls_store_get_file(s->reuse, cert_file)) != NULL &&
	    tls_cert_unchanged(c, cert_file, key_file))
		return tls_store_adopt(s, c) == 0 ? c : NULL;
	c = cert_parse(cert_file, key_file, from_dir, d, file, line, key_line);
	if (c != NULL && store_add(s, c) < 0) {
		diag_error(d, file, line, "out of memory");
		return NULL;
	}
	return c;
}

struct tls_cert *tls_cert_parse(const char *cert_file, const char *key_file, struct diag *d,
                                const char *file, unsigned cert_line, unsigned key_line)
{
	return cert_parse(cert_file, key_file, false, d, file, cert_line, key_line);
}

struct tls_cert *tls_cert_load(const char *cert_file, const char *key_file, const char *host,
                               char *err, size_t err_size)
{
	struct diag d;
	struct tls_cert *c;

	diag_init(&d);
	c = cert_parse(cert_file, key_file, false, &d, NULL, 0, 0);
	if (c != NULL && !tls_cert_covers(c, host)) {
		diag_error(&d, NULL, 0, "%s: certificate does not cover %s", cert_file, host);
		tls_cert_unref(c);
		c = NULL;
	}
	if (c == NULL) {
		for (size_t i = 0; i < d.n; i++)
			if (d.v[i].level == DIAG_ERROR) {
				snprintf(err, err_size, "%s", d.v[i].msg);
				break;
			}
	}
	diag_finish(&d);
	return c;
}

struct tls_cert *tls_cert_ref(struct tls_cert *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void tls_cert_unref(struct tls_cert *c)
{
	if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		cert_destroy(c);
}

struct tls_cert *tls_store_load(struct tls_store *s, const char *cert_file, const char *key_file,
                                struct diag *d, const char *file, unsigned cert_line,
                                unsigned key_line)
{
	return load(s, cert_file, key_file, false, d, file, cert_line, key_line);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcmp(s + a - b, suffix) == 0;
}

static int path_join(char *out, size_t n, const char *dir, const char *a, const char *b)
{
	int r = snprintf(out, n, "%s/%s%s", dir, a, b);

	return (r < 0 || (size_t)r >= n) ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int tls_store_load_dir(struct tls_store *s, const char *dir, struct diag *d, const char *file,
                       unsigned line)
{
	DIR *dh = opendir(dir);
	char **entries = NULL;
	size_t n = 0, cap = 0;
	size_t errors = d->n_errors;
	struct dirent *e;

	if (dh == NULL) {
		diag_error(d, file, line, "%s: %s", dir, strerror(errno));
		return -1;
	}
	/* Sorted, so that which certificate wins a name shared by two is reproducible. */
	while ((e = readdir(dh)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **v = realloc(entries, cap * sizeof(*v));
			if (v == NULL)
				break;
			entries = v;
		}
		if ((entries[n] = strdup(e->d_name)) == NULL)
			break;
		n++;
	}
	closedir(dh);
	if (n > 0)
		qsort(entries, n, sizeof(*entries), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char cert[4096], key[4096], stem[1024];
		const char *name = entries[i];
		struct stat st;
		size_t len = strlen(name);

		if (path_join(cert, sizeof(cert), dir, name, "") < 0 || stat(cert, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (path_join(cert, sizeof(cert), dir, name, "/fullchain.pem") < 0 ||
			    path_join(key, sizeof(key), dir, name, "/privkey.pem") < 0 ||
			    access(cert, F_OK) < 0)
				continue;
		} else if (has_suffix(name, ".crt") || has_suffix(name, ".pem")) {
			if (len - 4 >= sizeof(stem))
				continue;
			memcpy(stem, name, len - 4);
			stem[len - 4] = 0;
			if (path_join(key, sizeof(key), dir, stem, ".key") < 0 ||
			    access(key, F_OK) < 0)
				continue; /* CA bundles and chains without a key */
		} else {
			continue;
		}
		load(s, cert, key, true, d, file, line, line);
	}
	for (size_t i = 0; i < n; i++)
		free(entries[i]);
	free(entries);
	return d->n_errors > errors ? -1 : 0;
}

struct tls_cert *tls_store_find(const struct tls_store *s, const char *host, size_t len)
{
	struct tls_cert *c = hash_get(&s->names, host, len);
	const char *dot;
	char wild[256];

	if (c != NULL)
		return c;
	dot = memchr(host, '.', len);
	if (dot == NULL || dot == host)
		return NULL;
	len -= (size_t)(dot - host);
	if (len + 1 >= sizeof(wild))
		return NULL;
	wild[0] = '*';
	memcpy(wild + 1, dot, len);
	return hash_get(&s->names, wild, len + 1);
}

static bool same_file(const char *path, const struct tls_file_id *id)
{
	struct stat st;
	struct tls_file_id now;

	if (stat(path, &st) < 0)
		return false;
	file_id(&st, &now);
	return memcmp(&now, id, sizeof(now)) == 0;
}

bool tls_cert_unchanged(const struct tls_cert *c, const char *cert_file, const char *key_file)
{
	return strcmp(c->cert_file, cert_file) == 0 && strcmp(c->key_file, key_file) == 0 &&
	       same_file(cert_file, &c->cert_id) && same_file(key_file, &c->key_id);
}

int tls_store_adopt(struct tls_store *s, struct tls_cert *c)
{
	return store_add(s, tls_cert_ref(c));
}

struct tls_cert *tls_store_get_file(const struct tls_store *s, const char *cert_file)
{
	return hash_get(&s->files, cert_file, strlen(cert_file));
}

bool tls_cert_covers(const struct tls_cert *cert, const char *host)
{
	const char *dot = strchr(host, '.');

	for (size_t i = 0; i < cert->n_names; i++) {
		const char *n = cert->names[i];

		if (strcasecmp(n, host) == 0)
			return true;
		if (n[0] == '*' && n[1] == '.' && dot != NULL && dot != host &&
		    strcasecmp(n + 1, dot) == 0)
			return true;
	}
	return false;
}
