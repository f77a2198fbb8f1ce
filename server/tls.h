/* tls: certificate chains and keys (GnuTLS), indexed by SAN name for SNI */
#ifndef MTASTSD_TLS_H
#define MTASTSD_TLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "hash.h"

#define TLS_CHAIN_MAX 8

/* What a file was when it was read: a replaced or rewritten file differs. */
struct tls_file_id {
	unsigned long long dev, ino, size;
	long long mtime_sec, mtime_nsec;
};

/* Why a certificate cannot be used; the names are the reasons /metrics counts. */
enum tls_fault {
	TLS_FAULT_NONE,
	TLS_FAULT_MISSING,       /* no such file, or no certificate for the name */
	TLS_FAULT_UNREADABLE,    /* permissions, not a regular file, too large, I/O */
	TLS_FAULT_INVALID,       /* not a PEM chain or key (damaged, half-written) */
	TLS_FAULT_KEY_MISMATCH,  /* the key is not the certificate's */
	TLS_FAULT_NAME_MISMATCH, /* the certificate does not cover mta-sts.<domain> */
	TLS_FAULT_EXPIRED,
	TLS_FAULT_NOT_YET_VALID,
	TLS_FAULT_NO_MEMORY,
	TLS_FAULT_ACME_PENDING, /* no certificate yet: the ACME CA has not issued it */
	TLS_FAULT_ACME_FAILED,  /* the last ACME order failed (retried with back-off) */
	TLS_FAULTS,
};

extern const char *const tls_fault_names[TLS_FAULTS];

/* One problem: its kind and a message naming the file, for a log line or a FILE:LINE
 * diagnostic. key: it is about the key file (else the certificate file). */
struct tls_problem {
	enum tls_fault fault;
	bool key;
	bool no_names; /* a certificate without DNS names (a CA next to the leaves) */
	char msg[400];
};

/* Sets *p: fault, key, and the message formatted. */
void tls_problem_set(struct tls_problem *p, enum tls_fault fault, bool key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

struct tls_cert {
	atomic_uint refs;
	gnutls_pcert_st chain[TLS_CHAIN_MAX]; /* leaf first */
	unsigned n_chain;
	unsigned shared; /* bit i: chain[i] is an interned copy */
	gnutls_privkey_t key;
	char **names; /* SAN dNSNames, lowercase ("*.example.com" for wildcards) */
	size_t n_names;
	time_t not_before; /* of the leaf */
	time_t not_after;
	bool key_exposed; /* the key file is accessible by others than owner and group */
	char *cert_file;
	char *key_file;
	struct tls_file_id cert_id;
	struct tls_file_id key_id;
};

/* A directory of certificates, indexed by SAN name. */
struct tls_broken {
	char *path;
	char *stem; /* NAME of NAME.crt, NAME.pem or NAME/fullchain.pem */
	struct tls_problem problem;
};

struct tls_store {
	struct tls_cert **certs;
	size_t n_certs;
	size_t cap_certs;
	struct hash names;         /* SAN name -> tls_cert (the valid one, the later expiry) */
	struct hash files;         /* cert file path -> tls_cert */
	struct tls_broken *broken; /* pairs that could not be loaded */
	size_t n_broken;
	size_t cap_broken;
};

/* The GnuTLS priority string: TLS 1.2 and 1.3, AEAD suites, ECDHE, X25519 first,
 * server order. */
extern const char tls_priorities[];

/* Global GnuTLS setup; 0 / -1. */
int tls_global_init(void);

/* Reads a PEM chain (leaf first) and its PEM key and checks that they match. Returns the
 * certificate (refs 1) or NULL with the problem in *ret. Neither file may be anything but
 * a regular file of at most 1 MiB (a FIFO is refused without being opened). */
struct tls_cert *tls_cert_read(const char *cert_file, const char *key_file,
                               struct tls_problem *ret);

/* Whether c can be presented for host at now: covers it, and now within its validity.
 * Returns TLS_FAULT_NONE, or the fault with the message in *ret. */
enum tls_fault tls_cert_usable(const struct tls_cert *c, const char *host, time_t now,
                               struct tls_problem *ret);
/* not_before <= now < not_after. */
bool tls_cert_valid_at(const struct tls_cert *c, time_t now);

/* A certificate made in memory: the leaf alone (names and validity read from it) and its
 * key, which must match. label stands for both file names in messages (copied). On success
 * the certificate (refs 1) owns leaf's contents and key; NULL when the leaf has no DNS name,
 * the key does not match, or out of memory, and then the caller still owns both. */
struct tls_cert *tls_cert_from(gnutls_pcert_st *leaf, gnutls_privkey_t key, const char *label);

struct tls_cert *tls_cert_ref(struct tls_cert *c);
/* The last reference frees the certificate (the key is wiped). NULL is a no-op. */
void tls_cert_unref(struct tls_cert *c);

/* True when cert was read from exactly these two files and neither has been replaced or
 * modified since (stat(2) only: reloads reuse unchanged certificates). */
bool tls_cert_unchanged(const struct tls_cert *c, const char *cert_file, const char *key_file);

/* True when one of cert's SAN names covers host (exact or one-label wildcard). */
bool tls_cert_covers(const struct tls_cert *cert, const char *host);

struct tls_store *tls_store_create(void);
/* Drops the store's references. NULL is a no-op. */
void tls_store_destroy(struct tls_store *s);

/* Loads every pair in dir: NAME.crt + NAME.key, NAME.pem + NAME.key, and
 * SUBDIR/fullchain.pem + SUBDIR/privkey.pem (certbot's layout). Pairs unchanged since
 * reuse (may be NULL) read them are taken from it, not parsed again. A pair that cannot
 * be loaded goes to the store's broken list; a certificate without DNS names (a CA) is
 * skipped. -1 with *ret set only when the directory itself cannot be read. */
int tls_store_load_dir(struct tls_store *s, const char *dir, const struct tls_store *reuse,
                       struct tls_problem *ret);

/* The certificate whose SAN names host exactly, else a "*." wildcard one label up.
 * Case-insensitive; never allocates. NULL when none (borrowed from the store). */
struct tls_cert *tls_store_find(const struct tls_store *s, const char *host, size_t len);

/* The problem of the directory's broken pair named after host (NAME.crt etc.), or NULL. */
const struct tls_problem *tls_store_problem(const struct tls_store *s, const char *host);

#endif
