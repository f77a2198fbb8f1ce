/* tls: certificate chains and keys (GnuTLS), indexed by SAN name for SNI */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "log.h"
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

const char *const tls_fault_names[TLS_FAULTS] = {
    "none",    "missing",       "unreadable", "invalid",      "key_mismatch", "name_mismatch",
    "expired", "not_yet_valid", "no_memory",  "acme_pending", "acme_failed",
};

void tls_problem_set(struct tls_problem *p, enum tls_fault fault, bool key, const char *fmt, ...)
{
	va_list ap;

	p->fault = fault;
	p->key = key;
	p->no_names = false;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
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
	for (size_t i = 0; i < s->n_broken; i++) {
		free(s->broken[i].path);
		free(s->broken[i].stem);
	}
	free(s->broken);
	free(s->certs);
	hash_finish(&s->names);
	hash_finish(&s->files);
	free(s);
}

static void file_id(const struct stat *st, struct tls_file_id *ret)
{
	ret->dev = st->st_dev;
	ret->ino = st->st_ino;
	ret->size = (unsigned long long)st->st_size;
	ret->mtime_sec = st->st_mtim.tv_sec;
	ret->mtime_nsec = st->st_mtim.tv_nsec;
}

/* Reads a whole (small) file; the caller wipes and frees *ret. A FIFO or device is refused
 * before it is opened for reading, so that it cannot block. */
static int read_file(const char *path, gnutls_datum_t *ret, struct tls_file_id *ret_id, bool key,
                     struct tls_problem *p)
{
	gnutls_datum_t data = {NULL, 0};
	struct stat st;
	int ret_code = -1;
	FILE *f;

	if (stat(path, &st) < 0) {
		tls_problem_set(p, errno == ENOENT ? TLS_FAULT_MISSING : TLS_FAULT_UNREADABLE, key,
		                "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		tls_problem_set(p, TLS_FAULT_UNREADABLE, key, "%s: not a regular file", path);
		return -1;
	}
	/* O_NONBLOCK: a FIFO put in place since the stat() must not block the open either. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || (f = fdopen(fd, "rb")) == NULL) {
		tls_problem_set(p, errno == ENOENT ? TLS_FAULT_MISSING : TLS_FAULT_UNREADABLE, key,
		                "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		tls_problem_set(p, TLS_FAULT_UNREADABLE, key, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > 1024 * 1024) {
		tls_problem_set(p, st.st_size <= 0 ? TLS_FAULT_INVALID : TLS_FAULT_UNREADABLE, key,
		                "%s: empty or larger than 1 MiB", path);
		goto out;
	}
	data.data = gnutls_malloc((size_t)st.st_size + 1);
	if (data.data == NULL) {
		tls_problem_set(p, TLS_FAULT_NO_MEMORY, key, "%s: out of memory", path);
		goto out;
	}
	data.size = (unsigned)fread(data.data, 1, (size_t)st.st_size, f);
	if (data.size != (unsigned)st.st_size) {
		tls_problem_set(p, TLS_FAULT_UNREADABLE, key, "%s: short read", path);
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

/* Reads SAN dNSNames and validity of the leaf. A certificate without any DNS name (a CA
 * certificate next to the leaves, say) is a problem of kind TLS_FAULT_INVALID. */
static int read_leaf(struct tls_cert *c, struct tls_problem *p)
{
	gnutls_x509_crt_t crt;
	int ret = -1;

	if (gnutls_x509_crt_init(&crt) < 0) {
		tls_problem_set(p, TLS_FAULT_NO_MEMORY, false, "out of memory");
		return -1;
	}
	if (gnutls_x509_crt_import(crt, &c->chain[0].cert, GNUTLS_X509_FMT_DER) < 0) {
		tls_problem_set(p, TLS_FAULT_INVALID, false,
		                "%s: cannot parse the leaf certificate", c->cert_file);
		goto out;
	}
	c->not_before = gnutls_x509_crt_get_activation_time(crt);
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
			tls_problem_set(p, TLS_FAULT_INVALID, false, "%s: bad subjectAltName: %s",
			                c->cert_file, gnutls_strerror(type));
			goto out;
		}
		if (type != GNUTLS_SAN_DNSNAME || len == 0 || memchr(name, 0, len) != NULL)
			continue;
		char **v = realloc(c->names, (c->n_names + 1) * sizeof(*v));
		if (v == NULL)
			goto nomem;
		c->names = v;
		if ((c->names[c->n_names] = lower_dup(name, len)) == NULL)
			goto nomem;
		c->n_names++;
	}
	if (c->n_names == 0) {
		tls_problem_set(p, TLS_FAULT_INVALID, false,
		                "%s: certificate has no DNS subjectAltName", c->cert_file);
		p->no_names = true;
		goto out;
	}
	ret = 0;
	goto out;
nomem:
	tls_problem_set(p, TLS_FAULT_NO_MEMORY, false, "out of memory");
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

struct tls_cert *tls_cert_read(const char *cert_file, const char *key_file, struct tls_problem *p)
{
	gnutls_datum_t pem = {NULL, 0}, key = {NULL, 0};
	struct tls_file_id key_id;
	struct stat st;
	struct tls_cert *c;
	int r;

	p->fault = TLS_FAULT_NONE;
	p->msg[0] = 0;
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->cert_file = strdup(cert_file)) == NULL ||
	    (c->key_file = strdup(key_file)) == NULL) {
		tls_problem_set(p, TLS_FAULT_NO_MEMORY, false, "out of memory");
		goto fail;
	}
	if (read_file(cert_file, &pem, &c->cert_id, false, p) < 0)
		goto fail;
	c->n_chain = TLS_CHAIN_MAX;
	r = gnutls_pcert_list_import_x509_raw(c->chain, &c->n_chain, &pem, GNUTLS_X509_FMT_PEM,
	                                      GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (r < 0) {
		c->n_chain = 0;
		tls_problem_set(p, TLS_FAULT_INVALID, false,
		                "%s: cannot load the certificate chain: %s", cert_file,
		                gnutls_strerror(r));
		goto fail;
	}
	for (unsigned i = 1; i < c->n_chain; i++)
		if (intern(&c->chain[i]))
			c->shared |= 1u << i;
	if (read_leaf(c, p) < 0 || read_file(key_file, &key, &key_id, true, p) < 0)
		goto fail;
	c->key_id = key_id;
	/* Group access is the usual root:mtastsd 0640 layout; others never. */
	c->key_exposed = stat(key_file, &st) == 0 && (st.st_mode & S_IRWXO) != 0;
	if (gnutls_privkey_init(&c->key) < 0) {
		c->key = NULL;
		tls_problem_set(p, TLS_FAULT_NO_MEMORY, true, "out of memory");
		goto fail;
	}
	r = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		tls_problem_set(p, TLS_FAULT_INVALID, true, "%s: cannot load the private key: %s",
		                key_file, gnutls_strerror(r));
		goto fail;
	}
	if (!key_matches(c)) {
		tls_problem_set(p, TLS_FAULT_KEY_MISMATCH, true,
		                "%s: private key does not match certificate %s", key_file,
		                cert_file);
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

struct tls_cert *tls_cert_from(gnutls_pcert_st *leaf, gnutls_privkey_t key, const char *label)
{
	struct tls_cert *c = calloc(1, sizeof(*c));
	struct tls_problem p;

	if (c == NULL)
		return NULL;
	c->chain[0] = *leaf;
	c->n_chain = 1;
	c->key = key;
	/* key_file too, so that everything that reads a certificate's fields can read this one. */
	if ((c->cert_file = strdup(label)) == NULL || (c->key_file = strdup(label)) == NULL ||
	    read_leaf(c, &p) < 0 || !key_matches(c)) {
		/* Give leaf and key back to the caller. */
		c->n_chain = 0;
		c->key = NULL;
		cert_destroy(c);
		return NULL;
	}
	atomic_init(&c->refs, 1);
	return c;
}

enum tls_fault tls_cert_usable(const struct tls_cert *c, const char *host, time_t now,
                               struct tls_problem *p)
{
	char when[LOG_TIME_MAX];

	if (!tls_cert_covers(c, host)) {
		tls_problem_set(p, TLS_FAULT_NAME_MISMATCH, false,
		                "%s: certificate does not cover %s", c->cert_file, host);
	} else if (c->not_after <= now) {
		log_time(c->not_after, when, sizeof(when));
		tls_problem_set(p, TLS_FAULT_EXPIRED, false, "%s: certificate for %s expired at %s",
		                c->cert_file, host, when);
	} else if (c->not_before > now) {
		log_time(c->not_before, when, sizeof(when));
		tls_problem_set(p, TLS_FAULT_NOT_YET_VALID, false,
		                "%s: certificate for %s is not valid before %s", c->cert_file, host,
		                when);
	} else {
		p->fault = TLS_FAULT_NONE;
	}
	return p->fault;
}

bool tls_cert_valid_at(const struct tls_cert *c, time_t now)
{
	return c->not_before <= now && now < c->not_after;
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

/* Which of two certificates of a directory naming the same host serves it: one valid now
 * over one that is not (an expired file left beside its renewal), then the one valid
 * longer; else the first loaded (file names sorted), so that the choice is reproducible. */
static bool preferred(const struct tls_cert *c, const struct tls_cert *old)
{
	time_t now = time(NULL);
	bool valid = tls_cert_valid_at(c, now), old_valid = tls_cert_valid_at(old, now);

	if (valid != old_valid)
		return valid;
	return c->not_after > old->not_after;
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
	for (size_t i = 0; i < c->n_names; i++) {
		void *old;
		int r = hash_put(&s->names, c->names[i], c, &old);

		if (r < 0 ||
		    (r == 1 && preferred(c, old) && hash_set(&s->names, c->names[i], c) < 0))
			return -1;
	}
	return 0;
}

/* Remembers a pair of the directory that could not be loaded, under the name its file
 * suggests (NAME.crt, NAME.pem, NAME/fullchain.pem), so that a domain whose certificate
 * is missing can say why. */
static void store_broken(struct tls_store *s, const char *path, const char *stem,
                         const struct tls_problem *p)
{
	struct tls_broken *v;

	if (s->n_broken == s->cap_broken) {
		size_t cap = s->cap_broken ? s->cap_broken * 2 : 8;

		if ((v = realloc(s->broken, cap * sizeof(*v))) == NULL)
			return;
		s->broken = v;
		s->cap_broken = cap;
	}
	v = &s->broken[s->n_broken];
	v->path = strdup(path);
	v->stem = strdup(stem);
	v->problem = *p;
	if (v->path == NULL || v->stem == NULL) {
		free(v->path);
		free(v->stem);
		return;
	}
	s->n_broken++;
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

/* One pair of the directory: taken over from reuse when its files are unchanged, else
 * read; a pair that cannot be loaded is remembered under its stem. */
static void load_pair(struct tls_store *s, const struct tls_store *reuse, const char *cert,
                      const char *key, const char *stem)
{
	struct tls_cert *c;
	struct tls_problem p;

	if (hash_get(&s->files, cert, strlen(cert)) != NULL)
		return;
	if (reuse != NULL && (c = hash_get(&reuse->files, cert, strlen(cert))) != NULL &&
	    tls_cert_unchanged(c, cert, key)) {
		store_add(s, tls_cert_ref(c));
		return;
	}
	if ((c = tls_cert_read(cert, key, &p)) != NULL)
		store_add(s, c);
	else if (!p.no_names)
		store_broken(s, cert, stem, &p);
}

int tls_store_load_dir(struct tls_store *s, const char *dir, const struct tls_store *reuse,
                       struct tls_problem *p)
{
	DIR *dh = opendir(dir);
	char **entries = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (dh == NULL) {
		tls_problem_set(p, errno == ENOENT ? TLS_FAULT_MISSING : TLS_FAULT_UNREADABLE,
		                false, "%s: %s", dir, strerror(errno));
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
			if (len >= sizeof(stem) ||
			    path_join(cert, sizeof(cert), dir, name, "/fullchain.pem") < 0 ||
			    path_join(key, sizeof(key), dir, name, "/privkey.pem") < 0 ||
			    access(cert, F_OK) < 0)
				continue;
			memcpy(stem, name, len + 1);
		} else if (has_suffix(name, ".crt") || has_suffix(name, ".pem")) {
			if (len - 4 >= sizeof(stem))
				continue;
			memcpy(stem, name, len - 4);
			stem[len - 4] = 0;
			if (path_join(key, sizeof(key), dir, stem, ".key") < 0)
				continue;
			if (access(key, F_OK) < 0) {
				/* CA bundles and chains without a key are not pairs; noted only
				 * to explain a domain of that name (a key not written yet). */
				struct tls_problem q;

				tls_problem_set(&q, TLS_FAULT_MISSING, true, "%s: %s", key,
				                strerror(ENOENT));
				q.no_names = false;
				store_broken(s, cert, stem, &q);
				continue;
			}
		} else {
			continue;
		}
		load_pair(s, reuse, cert, key, stem);
	}
	for (size_t i = 0; i < n; i++)
		free(entries[i]);
	free(entries);
	return 0;
}

const struct tls_problem *tls_store_problem(const struct tls_store *s, const char *host)
{
	for (size_t i = 0; i < s->n_broken; i++)
		if (strcasecmp(s->broken[i].stem, host) == 0)
			return &s->broken[i].problem;
	return NULL;
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
