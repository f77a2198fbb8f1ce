/* jose: the ACME account key and what RFC 8555 signs with it (JWK, RFC 7638 thumbprint,
 * JWS ES256, EAB HS256) */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "jose.h"

/* The size of a P-256 coordinate, scalar, and of r and s in an ES256 signature. */
#define P256_BYTES 32

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Writes the base64url of p[0..len) to out, which has room for 4 * ((len + 2) / 3)
 * characters; returns how many it wrote (no padding, no NUL). */
static size_t encode(char *out, const unsigned char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		unsigned long v = (unsigned long)p[i] << 16;

		if (left > 1)
			v |= (unsigned long)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		out[n++] = alphabet[v >> 18 & 63];
		out[n++] = alphabet[v >> 12 & 63];
		if (left > 1)
			out[n++] = alphabet[v >> 6 & 63];
		if (left > 2)
			out[n++] = alphabet[v & 63];
	}
	return n;
}

int jose_b64url(struct buf *b, const void *data, size_t len)
{
	const unsigned char *p = data;
	char chunk[64];

	/* 48 bytes make exactly 64 characters, so only the last chunk is partial. */
	for (size_t i = 0; i < len; i += 48) {
		size_t n = len - i < 48 ? len - i : 48;

		if (buf_append(b, chunk, encode(chunk, p + i, n)) < 0)
			return -1;
	}
	/* Also for no data: b is then NUL-terminated all the same. */
	return buf_append(b, "", 0);
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int jose_b64url_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len)
{
	size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0), o = 0;
	unsigned long acc = 0;
	unsigned bits = 0;
	unsigned char *out;

	/* One character over a multiple of 4 carries 6 bits: less than a byte. */
	if (len % 4 == 1 || (out = malloc(n + 1)) == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = value_of(s[i]);

		if (v < 0)
			goto fail;
		acc = acc << 6 | (unsigned long)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1ul << bits) - 1;
		}
	}
	/* The bits left over pad the last byte: a canonical encoder leaves them zero. */
	if (acc != 0)
		goto fail;
	out[n] = 0;
	*ret = out;
	*ret_len = n;
	return 0;
fail:
	gnutls_memset(out, 0, n + 1);
	free(out);
	return -1;
}

/* Copies the big-endian integer v into out as exactly P256_BYTES bytes: leading zero
 * bytes beyond that dropped (a DER sign byte), shorter values left-padded with zeros. */
static int fixed(const gnutls_datum_t *v, unsigned char *out)
{
	const unsigned char *p = v->data;
	size_t len = v->size;

	while (len > P256_BYTES && *p == 0) {
		p++;
		len--;
	}
	if (len > P256_BYTES)
		return -1;
	memset(out, 0, P256_BYTES - len);
	if (len > 0)
		memcpy(out + P256_BYTES - len, p, len);
	return 0;
}

int jose_key_from_privkey(struct jose_key *ret, gnutls_privkey_t key)
{
	struct jose_key k = {.key = key};
	gnutls_pubkey_t pub;
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x = {NULL, 0}, y = {NULL, 0};
	unsigned char bx[P256_BYTES], by[P256_BYTES], digest[32];
	char sx[44], sy[44];
	int ret_code = -1, n;

	if (gnutls_pubkey_init(&pub) < 0)
		return -1;
	/* NO_LZ drops the sign byte; a coordinate may still be shorter than 32 bytes. */
	if (gnutls_pubkey_import_privkey(pub, key, 0, 0) < 0 ||
	    gnutls_pubkey_export_ecc_raw2(pub, &curve, &x, &y, GNUTLS_EXPORT_FLAG_NO_LZ) < 0 ||
	    curve != GNUTLS_ECC_CURVE_SECP256R1 || fixed(&x, bx) < 0 || fixed(&y, by) < 0)
		goto out;
	sx[encode(sx, bx, sizeof(bx))] = 0;
	sy[encode(sy, by, sizeof(by))] = 0;
	/* RFC 7638 3.2: the required members only, in lexicographic order, no whitespace. */
	n = snprintf(k.jwk, sizeof(k.jwk),
	             "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", sx, sy);
	if (n < 0 || (size_t)n >= sizeof(k.jwk) ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, k.jwk, (size_t)n, digest) < 0)
		goto out;
	k.thumbprint[encode(k.thumbprint, digest, sizeof(digest))] = 0;
	*ret = k;
	ret_code = 0;
out:
	gnutls_free(x.data);
	gnutls_free(y.data);
	gnutls_pubkey_deinit(pub);
	return ret_code;
}

int jose_key_generate(struct jose_key *ret)
{
	gnutls_privkey_t key;

	if (gnutls_privkey_init(&key) < 0)
		return -1;
	if (gnutls_privkey_generate2(key, GNUTLS_PK_ECDSA,
	                             GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL,
	                             0) < 0 ||
	    jose_key_from_privkey(ret, key) < 0) {
		gnutls_privkey_deinit(key);
		return -1;
	}
	return 0;
}

int jose_key_from_pem(struct jose_key *ret, const void *pem, size_t len)
{
	/* The datum is not const, but importing only reads it. */
	gnutls_datum_t d = {(unsigned char *)(uintptr_t)pem, (unsigned)len};
	gnutls_privkey_t key;

	if (len > UINT_MAX || gnutls_privkey_init(&key) < 0)
		return -1;
	/* A NULL password: an encrypted PKCS#8 key is refused, not prompted for. */
	if (gnutls_privkey_import_x509_raw(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0) < 0 ||
	    jose_key_from_privkey(ret, key) < 0) {
		gnutls_privkey_deinit(key);
		return -1;
	}
	return 0;
}

int jose_key_to_pem(const struct jose_key *k, struct buf *out)
{
	gnutls_x509_privkey_t xk;
	gnutls_datum_t pem = {NULL, 0};
	int r;

	if (gnutls_privkey_export_x509(k->key, &xk) < 0)
		return -1;
	r = gnutls_x509_privkey_export2_pkcs8(xk, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
	                                      &pem);
	gnutls_x509_privkey_deinit(xk);
	if (r < 0)
		return -1;
	r = buf_append(out, pem.data, pem.size);
	gnutls_memset(pem.data, 0, pem.size);
	gnutls_free(pem.data);
	return r;
}

void jose_key_finish(struct jose_key *k)
{
	if (k == NULL)
		return;
	if (k->key != NULL)
		gnutls_privkey_deinit(k->key);
	memset(k, 0, sizeof(*k));
}

/* Sets in to the JWS signing input: base64url(header) "." base64url(payload). */
static int signing_input(struct buf *in, const struct buf *header, const char *payload)
{
	if (header->failed)
		return -1;
	jose_b64url(in, header->data, header->len);
	buf_append(in, ".", 1);
	return jose_b64url(in, payload, strlen(payload));
}

/* Appends the flattened JSON serialization of the JWS whose signing input is in. */
static int flattened(struct buf *out, const struct buf *in, const unsigned char *sig,
                     size_t sig_len)
{
	const char *dot = memchr(in->data, '.', in->len);
	struct buf json;
	int r;

	if (dot == NULL)
		return -1;
	buf_init(&json);
	buf_puts(&json, "{\"protected\":\"");
	buf_append(&json, in->data, (size_t)(dot - in->data));
	buf_puts(&json, "\",\"payload\":\"");
	buf_append(&json, dot + 1, in->len - (size_t)(dot - in->data) - 1);
	buf_puts(&json, "\",\"signature\":\"");
	jose_b64url(&json, sig, sig_len);
	r = buf_puts(&json, "\"}") < 0 ? -1 : buf_append(out, json.data, json.len);
	buf_finish(&json);
	return r;
}

/* ES256 (RFC 7518 3.4): GnuTLS signs in DER, SEQUENCE { r, s } with minimal INTEGERs;
 * JWS wants r and s as two fixed 32-byte halves. */
static int es256(gnutls_privkey_t key, const struct buf *in, unsigned char *sig)
{
	gnutls_datum_t data = {(unsigned char *)in->data, (unsigned)in->len};
	gnutls_datum_t der = {NULL, 0}, r = {NULL, 0}, s = {NULL, 0};
	int ret = -1;

	if (in->len > UINT_MAX ||
	    gnutls_privkey_sign_data2(key, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der) < 0)
		return -1;
	if (gnutls_decode_rs_value(&der, &r, &s) < 0 || fixed(&r, sig) < 0 ||
	    fixed(&s, sig + P256_BYTES) < 0)
		goto out;
	ret = 0;
out:
	gnutls_free(r.data);
	gnutls_free(s.data);
	gnutls_free(der.data);
	return ret;
}

int jose_sign(struct buf *out, const struct jose_key *k, const char *kid, const char *nonce,
              const char *url, const char *payload)
{
	struct buf header, in;
	unsigned char sig[2 * P256_BYTES];
	int ret = -1;

	buf_init(&header);
	buf_init(&in);
	buf_puts(&header, "{\"alg\":\"ES256\",");
	if (kid == NULL) {
		buf_puts(&header, "\"jwk\":");
		buf_puts(&header, k->jwk);
	} else {
		buf_puts(&header, "\"kid\":");
		buf_json_string(&header, kid, strlen(kid));
	}
	if (nonce != NULL) {
		buf_puts(&header, ",\"nonce\":");
		buf_json_string(&header, nonce, strlen(nonce));
	}
	buf_puts(&header, ",\"url\":");
	buf_json_string(&header, url, strlen(url));
	buf_puts(&header, "}");
	if (signing_input(&in, &header, payload) < 0 || es256(k->key, &in, sig) < 0 ||
	    flattened(out, &in, sig, sizeof(sig)) < 0)
		goto out;
	ret = 0;
out:
	buf_finish(&in);
	buf_finish(&header);
	return ret;
}

int jose_eab(struct buf *out, const char *eab_kid, const unsigned char *mac, size_t mac_len,
             const char *url, const struct jose_key *account)
{
	struct buf header, in;
	unsigned char sig[32];
	int ret = -1;

	if (mac_len == 0)
		return -1;
	buf_init(&header);
	buf_init(&in);
	buf_puts(&header, "{\"alg\":\"HS256\",\"kid\":");
	buf_json_string(&header, eab_kid, strlen(eab_kid));
	buf_puts(&header, ",\"url\":");
	buf_json_string(&header, url, strlen(url));
	buf_puts(&header, "}");
	if (signing_input(&in, &header, account->jwk) < 0 ||
	    gnutls_hmac_fast(GNUTLS_MAC_SHA256, mac, mac_len, in.data, in.len, sig) < 0 ||
	    flattened(out, &in, sig, sizeof(sig)) < 0)
		goto out;
	ret = 0;
out:
	buf_finish(&in);
	buf_finish(&header);
	return ret;
}
