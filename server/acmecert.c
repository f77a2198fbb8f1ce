/* acmecert: the X.509 pieces of ACME: the CSR for mta-sts.<domain>, the TLS-ALPN-01
 * validation certificate (RFC 8737), and what ARI and scheduling read from an issued
 * certificate */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "acmecert.h"
#include "jose.h"

/* X.520's upper bound of a commonName; a longer host goes in the SAN alone. */
#define CN_MAX 64

/* RFC 8737 3: id-pe-acmeIdentifier. */
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

/* Copies host lowercased into out (ACMECERT_HOST_MAX + 1 bytes); its length, or -1 when
 * it is empty or too long. */
static int lower(char *out, const char *host)
{
	size_t len = strlen(host);

	if (len == 0 || len > ACMECERT_HOST_MAX)
		return -1;
	for (size_t i = 0; i <= len; i++)
		out[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] + 32) : host[i];
	return (int)len;
}

int acmecert_csr(struct buf *out, gnutls_privkey_t key, const char *host)
{
	char name[ACMECERT_HOST_MAX + 1];
	int len = lower(name, host), ret = -1;
	gnutls_x509_crq_t crq;
	gnutls_pubkey_t pub;
	gnutls_datum_t der = {NULL, 0};
	struct buf b;

	if (len < 0 || gnutls_x509_crq_init(&crq) < 0)
		return -1;
	if (gnutls_pubkey_init(&pub) < 0) {
		gnutls_x509_crq_deinit(crq);
		return -1;
	}
	buf_init(&b);
	if (gnutls_pubkey_import_privkey(pub, key, 0, 0) < 0 ||
	    gnutls_x509_crq_set_version(crq, 1) < 0 ||
	    (len <= CN_MAX && gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0,
	                                                    name, (unsigned)len) < 0) ||
	    gnutls_x509_crq_set_subject_alt_name(crq, GNUTLS_SAN_DNSNAME, name, (unsigned)len,
	                                         GNUTLS_FSAN_APPEND) < 0 ||
	    gnutls_x509_crq_set_pubkey(crq, pub) < 0 ||
	    gnutls_x509_crq_privkey_sign(crq, key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_DER, &der) < 0 ||
	    jose_b64url(&b, der.data, der.size) < 0 || buf_append(out, b.data, b.len) < 0)
		goto out;
	ret = 0;
out:
	buf_finish(&b);
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crq_deinit(crq);
	return ret;
}

/* Builds and self-signs the validation certificate of name with key into *ret. */
static int challenge_pcert(gnutls_pcert_st *ret, gnutls_privkey_t key, const char *name,
                           unsigned len, const char *key_authorization, time_t now)
{
	/* The extension's value is the DER of an OCTET STRING of 32 bytes: 04 20, the digest. */
	unsigned char ext[2 + 32] = {0x04, 0x20};
	unsigned char serial[16];
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pub;
	int r = -1;

	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_pubkey_init(&pub) < 0) {
		gnutls_x509_crt_deinit(crt);
		return -1;
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, key_authorization, strlen(key_authorization),
	                     ext + 2) < 0 ||
	    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		goto out;
	/* Positive (GnuTLS reads a first byte >= 0x80 as a negative INTEGER) and minimally
	 * encoded as it is (a first byte of 0 would be dropped). */
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01);
	if (gnutls_pubkey_import_privkey(pub, key, 0, 0) < 0 ||
	    gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 7 * 86400) < 0 ||
	    (len <= CN_MAX &&
	     gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, name, len) < 0) ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name, len,
	                                         GNUTLS_FSAN_SET) < 0 ||
	    gnutls_x509_crt_set_pubkey(crt, pub) < 0 ||
	    gnutls_x509_crt_set_extension_by_oid(crt, OID_ACME_IDENTIFIER, ext, sizeof(ext), 1) <
	        0 ||
	    gnutls_x509_crt_privkey_sign(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_pcert_import_x509(ret, crt, 0) < 0)
		goto out;
	r = 0;
out:
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	return r;
}

struct tls_cert *acmecert_challenge(const char *host, const char *key_authorization, time_t now)
{
	char name[ACMECERT_HOST_MAX + 1];
	int len = lower(name, host);
	gnutls_privkey_t key;
	gnutls_pcert_st pcert;
	struct tls_cert *c;

	if (len < 0 || gnutls_privkey_init(&key) < 0)
		return NULL;
	if (gnutls_privkey_generate2(key, GNUTLS_PK_ECDSA,
	                             GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL,
	                             0) < 0 ||
	    challenge_pcert(&pcert, key, name, (unsigned)len, key_authorization, now) < 0) {
		gnutls_privkey_deinit(key);
		return NULL;
	}
	if ((c = tls_cert_from(&pcert, key, "(acme-tls/1 challenge)")) == NULL) {
		gnutls_pcert_deinit(&pcert);
		gnutls_privkey_deinit(key);
	}
	return c;
}

/* Parses the first certificate of a PEM chain into *ret (caller deinits). */
static int first_cert(gnutls_x509_crt_t *ret, const void *pem, size_t len)
{
	/* The datum is not const, but importing only reads it. */
	gnutls_datum_t d = {(unsigned char *)(uintptr_t)pem, (unsigned)len};
	gnutls_x509_crt_t crt;

	if (len > UINT_MAX || gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) < 0) {
		gnutls_x509_crt_deinit(crt);
		return -1;
	}
	*ret = crt;
	return 0;
}

int acmecert_validity(const void *pem, size_t len, time_t *ret_not_before, time_t *ret_not_after)
{
	gnutls_x509_crt_t crt;
	time_t not_before, not_after;

	if (first_cert(&crt, pem, len) < 0)
		return -1;
	not_before = gnutls_x509_crt_get_activation_time(crt);
	not_after = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	if (not_before == (time_t)-1 || not_after == (time_t)-1)
		return -1;
	*ret_not_before = not_before;
	*ret_not_after = not_after;
	return 0;
}

int acmecert_ari_id(const void *pem, size_t len, struct buf *out)
{
	unsigned char id[128], serial[128];
	size_t id_len = sizeof(id), serial_len = sizeof(serial);
	unsigned critical;
	gnutls_x509_crt_t crt;
	struct buf b;
	int ret = -1;

	if (first_cert(&crt, pem, len) < 0)
		return -1;
	buf_init(&b);
	/* get_serial gives the INTEGER's content bytes as encoded, as RFC 9773 4.1 wants. */
	if (gnutls_x509_crt_get_authority_key_id(crt, id, &id_len, &critical) < 0 || id_len == 0 ||
	    gnutls_x509_crt_get_serial(crt, serial, &serial_len) < 0 || serial_len == 0)
		goto out;
	jose_b64url(&b, id, id_len);
	buf_append(&b, ".", 1);
	if (jose_b64url(&b, serial, serial_len) < 0 || buf_append(out, b.data, b.len) < 0)
		goto out;
	ret = 0;
out:
	buf_finish(&b);
	gnutls_x509_crt_deinit(crt);
	return ret;
}
