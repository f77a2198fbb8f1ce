/* test_jose: base64url, the account key's JWK and thumbprint, JWS ES256 and the EAB HS256 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "buf.h"
#include "jose.h"

#define N_SIGNATURES 2000

/* ---- base64url ------------------------------------------------------------------------ */

/* RFC 4648 section 10's vectors (there with padding, in the standard alphabet), and bytes
 * that use the two characters where the url alphabet differs ('+' '/' become '-' '_'). */
static const struct {
	const char *bytes;
	size_t len;
	const char *text;
} b64_cases[] = {
    {"", 0, ""},
    {"f", 1, "Zg"},
    {"fo", 2, "Zm8"},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy"},
    {"\xfb\xff", 2, "-_8"},
    {"\xfb\xff\xbf", 3, "-_-_"},
    {"\x00\x00\x00\x00", 4, "AAAAAA"},
};

START_TEST(test_b64url_vectors)
{
	struct buf b;
	unsigned char *bytes = NULL;
	size_t len = 0;

	buf_init(&b);
	/* It appends: what was there stays. */
	ck_assert_int_eq(buf_puts(&b, "x."), 0);
	ck_assert_int_eq(jose_b64url(&b, b64_cases[_i].bytes, b64_cases[_i].len), 0);
	ck_assert_str_eq(b.data + 2, b64_cases[_i].text);
	ck_assert_int_eq(strncmp(b.data, "x.", 2), 0);
	buf_finish(&b);

	const char *t = b64_cases[_i].text;
	ck_assert_int_eq(jose_b64url_decode(t, strlen(t), &bytes, &len), 0);
	ck_assert_uint_eq(len, b64_cases[_i].len);
	ck_assert_mem_eq(bytes, b64_cases[_i].bytes, len);
	ck_assert_uint_eq(bytes[len], 0);
	free(bytes);
}
END_TEST

/* Lengths across the encoder's 48-byte chunks round trip, at 4/3 the size. */
START_TEST(test_b64url_long)
{
	unsigned char data[1000], *back;
	size_t len;
	struct buf b;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(data); n += 47) {
		buf_init(&b);
		ck_assert_int_eq(jose_b64url(&b, data, n), 0);
		ck_assert_uint_eq(b.len, n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0));
		ck_assert_int_eq(jose_b64url_decode(b.data, b.len, &back, &len), 0);
		ck_assert_uint_eq(len, n);
		ck_assert_mem_eq(back, data, n);
		free(back);
		buf_finish(&b);
	}
}
END_TEST

static const struct {
	const char *text;
	size_t len; /* 0: strlen(text) */
	const char *why;
} b64_bad[] = {
    {"Zg==", 0, "padding"},
    {"Zm8=", 0, "padding"},
    {"Zm9v====", 0, "padding"},
    {"Zm+v", 0, "'+' of the standard alphabet"},
    {"Zm/v", 0, "'/' of the standard alphabet"},
    {"Zm9 v", 0, "a space"},
    {"Zm9v\n", 0, "a newline"},
    {" Zm9v", 0, "a leading space"},
    {"Zm\t9v", 0, "a tab"},
    {"Z", 0, "length 1 mod 4"},
    {"A", 0, "length 1 mod 4 (its 6 bits all zero)"},
    {"Zm9vA", 0, "length 1 mod 4 (the last 6 bits all zero)"},
    {"Zm9vY", 0, "length 1 mod 4"},
    {"Zm9vYmFyZ", 0, "length 1 mod 4"},
    {"Zh", 0, "non-zero unused bits (Zg is canonical)"},
    {"Zm9", 0, "non-zero unused bits (Zm8 is canonical)"},
    {"Zm.v", 0, "a '.'"},
    {"Zm9v\0Zm9v", 9, "a NUL"},
    {"Zm9v\xc3\xa9", 0, "non-ASCII"},
};

START_TEST(test_b64url_reject)
{
	unsigned char sentinel = 0;
	unsigned char *bytes = &sentinel;
	size_t len = 12345;
	const char *t = b64_bad[_i].text;
	size_t n = b64_bad[_i].len ? b64_bad[_i].len : strlen(t);

	ck_assert_msg(jose_b64url_decode(t, n, &bytes, &len) == -1, "accepted %s", b64_bad[_i].why);
	ck_assert_ptr_eq(bytes, &sentinel);
	ck_assert_uint_eq(len, 12345);
}
END_TEST

/* ---- helpers for reading a flattened JWS ---------------------------------------------- */

/* The value of the string member name of the flattened JWS json (caller frees). The
 * serialization has base64url values only, which never contain a quote. */
static char *member(const char *json, const char *name)
{
	char key[32];
	const char *p, *end;

	snprintf(key, sizeof(key), "\"%s\":\"", name);
	p = strstr(json, key);
	ck_assert_msg(p != NULL, "no %s in %s", name, json);
	p += strlen(key);
	end = strchr(p, '"');
	ck_assert_ptr_nonnull(end);
	return strndup(p, (size_t)(end - p));
}

/* The bytes that a base64url member decodes to, NUL-terminated (caller frees). */
static unsigned char *member_bytes(const char *json, const char *name, size_t *ret_len)
{
	char *text = member(json, name);
	unsigned char *bytes;

	ck_assert_msg(jose_b64url_decode(text, strlen(text), &bytes, ret_len) == 0,
	              "%s is not base64url: %s", name, text);
	free(text);
	return bytes;
}

/* The JWS has exactly the three members, in order, nothing else. */
static void assert_flattened(const char *json)
{
	char *prot = member(json, "protected"), *payload = member(json, "payload");
	char *sig = member(json, "signature"), expected[8192];
	int n = snprintf(expected, sizeof(expected),
	                 "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", prot,
	                 payload, sig);

	ck_assert(n > 0 && (size_t)n < sizeof(expected));
	ck_assert_str_eq(json, expected);
	free(prot);
	free(payload);
	free(sig);
}

/* Verifies the ES256 signature of json with pub over its exact signing input; sets
 * *ret_short when r or s begins with a zero byte (shorter than 32 as a DER INTEGER). */
static void assert_es256(const char *json, gnutls_pubkey_t pub, bool *ret_short)
{
	char *prot = member(json, "protected"), *payload = member(json, "payload");
	size_t sig_len;
	unsigned char *sig = member_bytes(json, "signature", &sig_len);
	gnutls_datum_t r = {sig, 32}, s = {sig + 32, 32}, der = {NULL, 0};
	struct buf in;

	ck_assert_uint_eq(sig_len, 64);
	if (sig[0] == 0 || sig[32] == 0)
		*ret_short = true;
	buf_init(&in);
	buf_printf(&in, "%s.%s", prot, payload);
	gnutls_datum_t data = {(unsigned char *)in.data, (unsigned)in.len};
	ck_assert_int_eq(gnutls_encode_rs_value(&der, &r, &s), 0);
	ck_assert_int_ge(gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der),
	                 0);
	/* The same signature over one byte more does not verify. */
	buf_puts(&in, "x");
	data.data = (unsigned char *)in.data;
	data.size = (unsigned)in.len;
	ck_assert_int_lt(gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_ECDSA_SHA256, 0, &data, &der),
	                 0);
	gnutls_free(der.data);
	buf_finish(&in);
	free(sig);
	free(prot);
	free(payload);
}

static gnutls_pubkey_t pubkey_of(const struct jose_key *k)
{
	gnutls_pubkey_t pub;

	ck_assert_int_eq(gnutls_pubkey_init(&pub), 0);
	ck_assert_int_eq(gnutls_pubkey_import_privkey(pub, k->key, 0, 0), 0);
	return pub;
}

/* ---- the account key ------------------------------------------------------------------ */

/* RFC 7515 Appendix A.3: the ECDSA P-256 key of the ES256 example. */
static const char a3_x[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
static const char a3_y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
static const char a3_d[] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

static gnutls_datum_t decoded(const char *text)
{
	unsigned char *bytes;
	size_t len;

	ck_assert_int_eq(jose_b64url_decode(text, strlen(text), &bytes, &len), 0);
	return (gnutls_datum_t){bytes, (unsigned)len};
}

START_TEST(test_rfc7515_key)
{
	gnutls_datum_t x = decoded(a3_x), y = decoded(a3_y), d = decoded(a3_d);
	gnutls_privkey_t key;
	gnutls_pubkey_t pub;
	struct jose_key k;
	struct buf out;
	bool short_rs = false;

	ck_assert_int_eq(gnutls_privkey_init(&key), 0);
	ck_assert_int_eq(gnutls_privkey_import_ecc_raw(key, GNUTLS_ECC_CURVE_SECP256R1, &x, &y, &d),
	                 0);
	ck_assert_int_eq(jose_key_from_privkey(&k, key), 0);
	ck_assert_ptr_eq(k.key, key);
	ck_assert_str_eq(k.jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\","
	                        "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
	                        "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}");
	/* Computed independently with python3:
	 *   base64.urlsafe_b64encode(hashlib.sha256(jwk.encode()).digest()).rstrip(b"=")
	 * with jwk the exact string asserted above. */
	ck_assert_str_eq(k.thumbprint, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");

	/* A signature by the imported d verifies with the public key made from x and y alone. */
	ck_assert_int_eq(gnutls_pubkey_init(&pub), 0);
	ck_assert_int_eq(gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_SECP256R1, &x, &y), 0);
	buf_init(&out);
	ck_assert_int_eq(jose_sign(&out, &k, NULL, "nonce", "https://ca.test/new-acct", "{}"), 0);
	assert_es256(out.data, pub, &short_rs);
	buf_finish(&out);
	gnutls_pubkey_deinit(pub);
	jose_key_finish(&k);
	ck_assert_ptr_null(k.key);
	ck_assert_str_eq(k.jwk, "");
	free(x.data);
	free(y.data);
	gnutls_memset(d.data, 0, d.size);
	free(d.data);
}
END_TEST

START_TEST(test_generate)
{
	struct jose_key a, b;

	ck_assert_int_eq(jose_key_generate(&a), 0);
	ck_assert_int_eq(jose_key_generate(&b), 0);
	ck_assert_uint_eq(strlen(a.jwk), 126);
	ck_assert_uint_eq(strlen(a.thumbprint), 43);
	ck_assert_int_eq(strncmp(a.jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 31), 0);
	ck_assert_str_ne(a.thumbprint, b.thumbprint);
	ck_assert_int_eq(gnutls_privkey_get_pk_algorithm(a.key, NULL), GNUTLS_PK_ECDSA);
	jose_key_finish(&a);
	jose_key_finish(&b);
	jose_key_finish(&b);
	jose_key_finish(NULL);
}
END_TEST

/* Every signature is 64 bytes, r || s, and verifies over the exact signing input; some
 * have an r or s that is short as an integer, so the left-padding was exercised too. */
START_TEST(test_sign_many)
{
	struct jose_key k;
	gnutls_pubkey_t pub;
	bool short_rs = false;

	ck_assert_int_eq(jose_key_generate(&k), 0);
	pub = pubkey_of(&k);
	for (int i = 0; i < N_SIGNATURES; i++) {
		char nonce[32], payload[64];
		struct buf out;

		snprintf(nonce, sizeof(nonce), "nonce-%d", i);
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		buf_init(&out);
		ck_assert_int_eq(jose_sign(&out, &k, i % 2 ? "https://ca.test/acct/1" : NULL, nonce,
		                           "https://ca.test/order", i % 3 ? payload : ""),
		                 0);
		assert_es256(out.data, pub, &short_rs);
		buf_finish(&out);
	}
	ck_assert_msg(short_rs, "no r or s below 2^248 in %d signatures", N_SIGNATURES);
	gnutls_pubkey_deinit(pub);
	jose_key_finish(&k);
}
END_TEST

/* The protected header, exactly; "<jwk>" in header stands for the key's jwk. */
static const struct {
	const char *kid, *nonce, *url, *payload;
	const char *header;
	const char *payload_member;
} sign_cases[] = {
    {NULL, "n0", "https://ca.test/new-acct", "{\"termsOfServiceAgreed\":true}",
     "{\"alg\":\"ES256\",\"jwk\":<jwk>,\"nonce\":\"n0\",\"url\":\"https://ca.test/new-acct\"}",
     "eyJ0ZXJtc09mU2VydmljZUFncmVlZCI6dHJ1ZX0"},
    {"https://ca.test/acct/7", "n1", "https://ca.test/order/3", "",
     "{\"alg\":\"ES256\",\"kid\":\"https://ca.test/acct/7\",\"nonce\":\"n1\","
     "\"url\":\"https://ca.test/order/3\"}",
     ""},
    {"k", "n\\2", "https://ca.test/a\"b", "{}",
     "{\"alg\":\"ES256\",\"kid\":\"k\",\"nonce\":\"n\\\\2\",\"url\":\"https://ca.test/a\\\"b\"}",
     "e30"},
    {"a\"id", "n3", "https://ca.test/x", "{}",
     "{\"alg\":\"ES256\",\"kid\":\"a\\\"id\",\"nonce\":\"n3\",\"url\":\"https://ca.test/x\"}",
     "e30"},
    /* The inner JWS of a keyChange has no nonce. */
    {NULL, NULL, "https://ca.test/key-change", "{}",
     "{\"alg\":\"ES256\",\"jwk\":<jwk>,\"url\":\"https://ca.test/key-change\"}", "e30"},
};

START_TEST(test_sign_header)
{
	struct jose_key k;
	struct buf out;
	char expected[512], *payload;
	size_t len;
	unsigned char *header;
	gnutls_pubkey_t pub;
	bool short_rs = false;

	ck_assert_int_eq(jose_key_generate(&k), 0);
	const char *mark = strstr(sign_cases[_i].header, "<jwk>");
	if (mark != NULL)
		snprintf(expected, sizeof(expected), "%.*s%s%s",
		         (int)(mark - sign_cases[_i].header), sign_cases[_i].header, k.jwk,
		         mark + strlen("<jwk>"));
	else
		snprintf(expected, sizeof(expected), "%s", sign_cases[_i].header);
	buf_init(&out);
	ck_assert_int_eq(jose_sign(&out, &k, sign_cases[_i].kid, sign_cases[_i].nonce,
	                           sign_cases[_i].url, sign_cases[_i].payload),
	                 0);
	assert_flattened(out.data);
	header = member_bytes(out.data, "protected", &len);
	ck_assert_uint_eq(len, strlen(expected));
	ck_assert_str_eq((char *)header, expected);
	payload = member(out.data, "payload");
	ck_assert_str_eq(payload, sign_cases[_i].payload_member);
	pub = pubkey_of(&k);
	assert_es256(out.data, pub, &short_rs);
	gnutls_pubkey_deinit(pub);
	free(payload);
	free(header);
	buf_finish(&out);
	jose_key_finish(&k);
}
END_TEST

/* ---- PEM ------------------------------------------------------------------------------ */

START_TEST(test_pem_round_trip)
{
	struct jose_key k, back, sec1;
	struct buf pem;
	gnutls_x509_privkey_t xk;
	gnutls_datum_t ec = {NULL, 0};

	ck_assert_int_eq(jose_key_generate(&k), 0);
	buf_init(&pem);
	ck_assert_int_eq(jose_key_to_pem(&k, &pem), 0);
	ck_assert_int_eq(strncmp(pem.data, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	ck_assert_ptr_nonnull(strstr(pem.data, "-----END PRIVATE KEY-----"));
	ck_assert_int_eq(jose_key_from_pem(&back, pem.data, pem.len), 0);
	ck_assert_str_eq(back.jwk, k.jwk);
	ck_assert_str_eq(back.thumbprint, k.thumbprint);
	gnutls_memset(pem.data, 0, pem.len);
	buf_finish(&pem);

	/* SEC1 ("BEGIN EC PRIVATE KEY"), as openssl ecparam -genkey writes it. */
	ck_assert_int_eq(gnutls_privkey_export_x509(k.key, &xk), 0);
	ck_assert_int_eq(gnutls_x509_privkey_export2(xk, GNUTLS_X509_FMT_PEM, &ec), 0);
	ck_assert_int_eq(strncmp((char *)ec.data, "-----BEGIN EC PRIVATE KEY-----\n", 31), 0);
	ck_assert_int_eq(jose_key_from_pem(&sec1, ec.data, ec.size), 0);
	ck_assert_str_eq(sec1.thumbprint, k.thumbprint);
	gnutls_memset(ec.data, 0, ec.size);
	gnutls_free(ec.data);
	gnutls_x509_privkey_deinit(xk);
	jose_key_finish(&sec1);
	jose_key_finish(&back);
	jose_key_finish(&k);
}
END_TEST

enum bad_pem { BAD_RSA, BAD_P384, BAD_ED25519, BAD_GARBAGE, BAD_EMPTY, BAD_TRUNCATED, BAD_PEMS };

/* A PEM key of the given kind (caller frees with gnutls_free). */
static gnutls_datum_t bad_pem(enum bad_pem kind)
{
	gnutls_x509_privkey_t xk;
	gnutls_datum_t pem = {NULL, 0};
	struct jose_key k;
	struct buf b;

	switch (kind) {
	case BAD_RSA:
	case BAD_P384:
	case BAD_ED25519:
		ck_assert_int_eq(gnutls_x509_privkey_init(&xk), 0);
		if (kind == BAD_RSA)
			ck_assert_int_eq(gnutls_x509_privkey_generate(xk, GNUTLS_PK_RSA, 2048, 0),
			                 0);
		else if (kind == BAD_P384)
			ck_assert_int_eq(gnutls_x509_privkey_generate(
			                     xk, GNUTLS_PK_ECDSA,
			                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0),
			                 0);
		else
			ck_assert_int_eq(gnutls_x509_privkey_generate(
			                     xk, GNUTLS_PK_EDDSA_ED25519,
			                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), 0),
			                 0);
		ck_assert_int_eq(gnutls_x509_privkey_export2_pkcs8(xk, GNUTLS_X509_FMT_PEM, NULL,
		                                                   GNUTLS_PKCS_PLAIN, &pem),
		                 0);
		gnutls_x509_privkey_deinit(xk);
		return pem;
	case BAD_GARBAGE:
		pem.data =
		    (unsigned char *)gnutls_strdup("-----BEGIN PRIVATE KEY-----\nnot base64\n"
		                                   "-----END PRIVATE KEY-----\n");
		break;
	case BAD_EMPTY:
		pem.data = (unsigned char *)gnutls_strdup("");
		break;
	case BAD_TRUNCATED:
		/* A good P-256 key cut in the middle. */
		ck_assert_int_eq(jose_key_generate(&k), 0);
		buf_init(&b);
		ck_assert_int_eq(jose_key_to_pem(&k, &b), 0);
		b.data[b.len / 2] = 0;
		pem.data = (unsigned char *)gnutls_strdup(b.data);
		gnutls_memset(b.data, 0, b.len);
		buf_finish(&b);
		jose_key_finish(&k);
		break;
	case BAD_PEMS:
		break;
	}
	ck_assert_ptr_nonnull(pem.data);
	pem.size = (unsigned)strlen((char *)pem.data);
	return pem;
}

START_TEST(test_pem_refused)
{
	gnutls_datum_t pem = bad_pem((enum bad_pem)_i);
	struct jose_key k, before;

	memset(&k, 0xa5, sizeof(k));
	before = k;
	ck_assert_int_eq(jose_key_from_pem(&k, pem.data, pem.size), -1);
	ck_assert_mem_eq(&k, &before, sizeof(k));
	gnutls_free(pem.data);
}
END_TEST

/* ---- external account binding --------------------------------------------------------- */

START_TEST(test_eab)
{
	/* A MAC key as a CA hands it out (base64url), pebble's example one. */
	static const char mac_text[] =
	    "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
	unsigned char *mac, *header, *payload, *sig, expected[32];
	size_t mac_len, len, payload_len, sig_len;
	struct jose_key account;
	struct buf out;
	char *prot, *payload_text;

	ck_assert_int_eq(jose_b64url_decode(mac_text, strlen(mac_text), &mac, &mac_len), 0);
	ck_assert_uint_eq(mac_len, 48);
	ck_assert_int_eq(jose_key_generate(&account), 0);
	buf_init(&out);
	ck_assert_int_eq(buf_puts(&out, "{\"externalAccountBinding\":"), 0);
	ck_assert_int_eq(
	    jose_eab(&out, "kid-1", mac, mac_len, "https://ca.test/new-acct", &account), 0);
	const char *json = out.data + strlen("{\"externalAccountBinding\":");
	assert_flattened(json);

	header = member_bytes(json, "protected", &len);
	ck_assert_str_eq(
	    (char *)header,
	    "{\"alg\":\"HS256\",\"kid\":\"kid-1\",\"url\":\"https://ca.test/new-acct\"}");
	payload = member_bytes(json, "payload", &payload_len);
	ck_assert_uint_eq(payload_len, strlen(account.jwk));
	ck_assert_str_eq((char *)payload, account.jwk);

	/* HMAC-SHA-256 over protected "." payload, as they stand in the JWS. */
	prot = member(json, "protected");
	payload_text = member(json, "payload");
	struct buf in;
	buf_init(&in);
	buf_printf(&in, "%s.%s", prot, payload_text);
	ck_assert_int_eq(
	    gnutls_hmac_fast(GNUTLS_MAC_SHA256, mac, mac_len, in.data, in.len, expected), 0);
	sig = member_bytes(json, "signature", &sig_len);
	ck_assert_uint_eq(sig_len, 32);
	ck_assert_mem_eq(sig, expected, 32);

	/* An empty MAC key is refused and nothing is appended. */
	size_t before = out.len;
	ck_assert_int_eq(jose_eab(&out, "kid-1", mac, 0, "https://ca.test/new-acct", &account), -1);
	ck_assert_uint_eq(out.len, before);

	buf_finish(&in);
	free(prot);
	free(payload_text);
	free(sig);
	free(payload);
	free(header);
	buf_finish(&out);
	jose_key_finish(&account);
	gnutls_memset(mac, 0, mac_len);
	free(mac);
}
END_TEST

static Suite *jose_suite(void)
{
	Suite *s = suite_create("jose");
	TCase *tc = tcase_create("b64url");

	tcase_add_loop_test(tc, test_b64url_vectors, 0, sizeof(b64_cases) / sizeof(b64_cases[0]));
	tcase_add_test(tc, test_b64url_long);
	tcase_add_loop_test(tc, test_b64url_reject, 0, sizeof(b64_bad) / sizeof(b64_bad[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("key");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rfc7515_key);
	tcase_add_test(tc, test_generate);
	tcase_add_test(tc, test_pem_round_trip);
	tcase_add_loop_test(tc, test_pem_refused, 0, BAD_PEMS);
	suite_add_tcase(s, tc);

	tc = tcase_create("jws");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sign_many);
	tcase_add_loop_test(tc, test_sign_header, 0, sizeof(sign_cases) / sizeof(sign_cases[0]));
	tcase_add_test(tc, test_eab);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed = 1;

	if (gnutls_global_init() < 0)
		return EXIT_FAILURE;
	sr = srunner_create(jose_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	gnutls_global_deinit();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
