/* jose: the ACME account key and what RFC 8555 signs with it (JWK, RFC 7638 thumbprint,
 * JWS ES256, EAB HS256) */
#ifndef MTASTSD_JOSE_H
#define MTASTSD_JOSE_H

#include <stddef.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "buf.h"

/* An ECDSA P-256 account key with its public JWK and thumbprint, both computed once. */
struct jose_key {
	gnutls_privkey_t key; /* owned: jose_key_finish frees it */
	/* {"crv":"P-256","kty":"EC","x":"...","y":"..."}: RFC 7638 member order, no whitespace */
	char jwk[160];
	char thumbprint[48]; /* base64url(SHA-256(jwk)), NUL-terminated */
};

/* Appends data as base64url (RFC 4648 section 5) without padding. 0 / -1 (out of memory:
 * b->failed is set). */
int jose_b64url(struct buf *b, const void *data, size_t len);

/* Decodes s[0..len) as strict base64url: only A-Za-z0-9-_, no padding, no whitespace, no
 * length that leaves 1 character over, and the unused bits of the last character zero
 * (the one canonical spelling). On success *ret is a NUL-terminated copy of the bytes
 * (caller frees, and wipes it first when it is a secret) and *ret_len their number.
 * 0 / -1; on failure *ret and *ret_len are untouched. */
int jose_b64url_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len);

/* Fills *ret from key, which must be ECDSA on P-256: on success *ret owns key; on failure
 * (-1) the caller still does and *ret is untouched. */
int jose_key_from_privkey(struct jose_key *ret, gnutls_privkey_t key);

/* A new P-256 key into *ret. 0 / -1 (*ret untouched). */
int jose_key_generate(struct jose_key *ret);

/* Reads a PEM private key, PKCS#8 ("BEGIN PRIVATE KEY", unencrypted) or SEC1 ("BEGIN EC
 * PRIVATE KEY"), into *ret. -1 (*ret untouched) for anything but an EC P-256 key. */
int jose_key_from_pem(struct jose_key *ret, const void *pem, size_t len);

/* Appends k's private key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"). out then holds
 * key material: pass an empty buf, so that growing it leaves no copy behind, and wipe
 * out->data before buf_finish. 0 / -1 (nothing appended unless out of memory). */
int jose_key_to_pem(const struct jose_key *k, struct buf *out);

/* Frees k's key (GnuTLS wipes it) and clears k. NULL, or a k without a key, is a no-op. */
void jose_key_finish(struct jose_key *k);

/* Appends a flattened JWS JSON serialization (RFC 7515 7.2.2),
 * {"protected":"...","payload":"...","signature":"..."}, signed ES256 by k. Protected header:
 * {"alg":"ES256","jwk":<k's jwk>,"nonce":nonce,"url":url} when kid is NULL, else
 * {"alg":"ES256","kid":kid,"nonce":nonce,"url":url}; nonce NULL leaves "nonce" out (the
 * inner JWS of a keyChange). nonce, url and kid are JSON-escaped. payload "" is a
 * POST-as-GET (payload member ""). The signature is r || s, 32 bytes each.
 * 0 / -1 (nothing appended unless out of memory). */
int jose_sign(struct buf *out, const struct jose_key *k, const char *kid, const char *nonce,
              const char *url, const char *payload);

/* Appends the externalAccountBinding value of a newAccount request (RFC 8555 7.3.4): a
 * flattened JWS with protected header {"alg":"HS256","kid":eab_kid,"url":url}, payload the
 * account's jwk, MACed by HMAC-SHA-256 with mac[0..mac_len) (the raw key, not its base64url).
 * 0 / -1 (nothing appended unless out of memory; an empty MAC key is refused). */
int jose_eab(struct buf *out, const char *eab_kid, const unsigned char *mac, size_t mac_len,
             const char *url, const struct jose_key *account);

#endif
