/* tls: certificate chains and keys (GnuTLS), indexed by SAN name for SNI */
#ifndef MTASTSD_TLS_H
#define MTASTSD_TLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "diag.h"
#include "hash.h"

#define TLS_CHAIN_MAX 8

/* What a file was when it was read: a replaced or rewritten file differs. */
struct tls_file_id {
	unsigned long long dev, ino, size;
	long long mtime_sec, mtime_nsec;
};

struct tls_cert {
	atomic_uint refs;
	gnutls_pcert_st chain[TLS_CHAIN_MAX]; /* leaf first */
	unsigned n_chain;
	unsigned shared; /* bit i: chain[i] is an interned copy */
	gnutls_privkey_t key;
	char **names; /* SAN dNSNames, lowercase ("*.example.com" for wildcards) */
	size_t n_names;
	time_t not_after; /* of the leaf */
	char *cert_file;
	char *key_file;
	struct tls_file_id cert_id;
	struct tls_file_id key_id;
};

struct tls_store {
	struct tls_cert **certs;
	size_t n_certs;
	size_t cap_certs;
	struct hash names; /* SAN name -> tls_cert (first loaded wins) */
	struct hash files; /* cert file path -> tls_cert */
	/* While loading: a previous store whose unchanged certificates are taken over
	 * instead of being parsed again (borrowed, may be NULL). */
	const struct tls_store *reuse;
};

/* The GnuTLS priority string: TLS 1.2 and 1.3, AEAD suites, ECDHE, X25519 first,
 * server order. */
extern const char tls_priorities[];

/* Global GnuTLS setup; 0 / -1. */
int tls_global_init(void);

struct tls_store *tls_store_create(void);
/* Frees every certificate; private keys are wiped. NULL is a no-op. */
void tls_store_destroy(struct tls_store *s);

/* Loads a PEM chain (leaf first) and its key, checks that they match. Errors go to d at
 * file:cert_line or file:key_line (the config lines naming the files). The same cert_file
 * loaded twice returns the first result. Returns the certificate (owned by the store) or
 * NULL. */
struct tls_cert *tls_store_load(struct tls_store *s, const char *cert_file, const char *key_file,
                                struct diag *d, const char *file, unsigned cert_line,
                                unsigned key_line);

/* Loads every pair in dir: NAME.crt + NAME.key, NAME.pem + NAME.key, and
 * SUBDIR/fullchain.pem + SUBDIR/privkey.pem (certbot's layout). Broken pairs are errors
 * at file:line. 0 / -1. */
int tls_store_load_dir(struct tls_store *s, const char *dir, struct diag *d, const char *file,
                       unsigned line);

/* The certificate whose SAN names host exactly, else a "*." wildcard one label up.
 * Case-insensitive; never allocates. NULL when none. */
struct tls_cert *tls_store_find(const struct tls_store *s, const char *host, size_t len);

/* Loads one pair outside any store, errors to d at file:cert_line / file:key_line.
 * refs starts at 1. */
struct tls_cert *tls_cert_parse(const char *cert_file, const char *key_file, struct diag *d,
                                const char *file, unsigned cert_line, unsigned key_line);

/* Loads one pair outside any store (lazy loading on first handshake): the same checks
 * as tls_store_load plus that it covers host. refs starts at 1. NULL with the first
 * error in err. */
struct tls_cert *tls_cert_load(const char *cert_file, const char *key_file, const char *host,
                               char *err, size_t err_size);
struct tls_cert *tls_cert_ref(struct tls_cert *c);
/* The last reference frees the certificate (the key is wiped). NULL is a no-op. */
void tls_cert_unref(struct tls_cert *c);

/* True when cert was read from exactly these two files and neither has been replaced or
 * modified since (stat(2) only: reloads reuse unchanged certificates). */
bool tls_cert_unchanged(const struct tls_cert *c, const char *cert_file, const char *key_file);

/* Adds an already loaded certificate to a store (a new reference): how a reload keeps
 * unchanged certificates without parsing them again. 0 / -1. */
int tls_store_adopt(struct tls_store *s, struct tls_cert *c);

/* The store's certificate read from cert_file, or NULL. */
struct tls_cert *tls_store_get_file(const struct tls_store *s, const char *cert_file);

/* True when one of cert's SAN names covers host (exact or one-label wildcard). */
bool tls_cert_covers(const struct tls_cert *cert, const char *host);

#endif
