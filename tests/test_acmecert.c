/* test_acmecert: the finalize CSR, the TLS-ALPN-01 validation certificate, and the validity
 * and ARI identifier read from an issued certificate */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "acmecert.h"
#include "buf.h"
#include "jose.h"
#include "tls.h"

/* 2026-01-01T00:00:00Z */
#define T0 ((time_t)1767225600)

/* A name of len characters: "mta-sts." then 'a's then ".test". */
static void long_host(char *out, size_t len)
{
	memset(out, 'a', len);
	memcpy(out, "mta-sts.", 8);
	memcpy(out + len - 5, ".test", 5);
	out[len] = 0;
}

static void assert_same_key(gnutls_pubkey_t a, gnutls_pubkey_t b)
{
	unsigned char ida[64], idb[64];
	size_t la = sizeof(ida), lb = sizeof(idb);

	ck_assert_int_eq(gnutls_pubkey_get_key_id(a, GNUTLS_KEYID_USE_SHA256, ida, &la), 0);
	ck_assert_int_eq(gnutls_pubkey_get_key_id(b, GNUTLS_KEYID_USE_SHA256, idb, &lb), 0);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(ida, idb, la);
}

/* ---- CSR ------------------------------------------------------------------------------ */

static const struct {
	const char *host; /* NULL: a long one of 100 characters */
	const char *name; /* what the SAN (and CN) holds */
	bool cn;
} csr_cases[] = {
    {"mta-sts.example.com", "mta-sts.example.com", true},
    {"MTA-STS.Example.COM", "mta-sts.example.com", true},
    /* Longer than a commonName may be: in the SAN alone. */
    {NULL, NULL, false},
};

START_TEST(test_csr)
{
	static const char prefix[] = "{\"csr\":\"";
	char host[128], name[256];
	const char *expect;
	struct jose_key k;
	struct buf out;
	unsigned char *der;
	size_t der_len, len;
	gnutls_datum_t d;
	gnutls_x509_crq_t crq;
	gnutls_pubkey_t pub, mine;
	unsigned type, critical;

	if (csr_cases[_i].host != NULL) {
		snprintf(host, sizeof(host), "%s", csr_cases[_i].host);
		expect = csr_cases[_i].name;
	} else {
		long_host(host, 100);
		expect = host;
	}
	ck_assert_int_eq(jose_key_generate(&k), 0);
	buf_init(&out);
	buf_puts(&out, prefix);
	ck_assert_int_eq(acmecert_csr(&out, k.key, host), 0);
	ck_assert_int_eq(strncmp(out.data, prefix, strlen(prefix)), 0);
	ck_assert_int_eq(
	    jose_b64url_decode(out.data + strlen(prefix), out.len - strlen(prefix), &der, &der_len),
	    0);

	d = (gnutls_datum_t){der, (unsigned)der_len};
	ck_assert_int_eq(gnutls_x509_crq_init(&crq), 0);
	ck_assert_int_eq(gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_DER), 0);
	ck_assert_int_eq(gnutls_x509_crq_verify(crq, 0), 0);
	ck_assert_int_eq(gnutls_x509_crq_get_signature_algorithm(crq), GNUTLS_SIGN_ECDSA_SHA256);

	len = sizeof(name);
	ck_assert_int_eq(gnutls_x509_crq_get_subject_alt_name(crq, 0, name, &len, &type, &critical),
	                 GNUTLS_SAN_DNSNAME);
	ck_assert_uint_eq(len, strlen(expect));
	ck_assert_str_eq(name, expect);
	len = sizeof(name);
	ck_assert_int_eq(gnutls_x509_crq_get_subject_alt_name(crq, 1, name, &len, &type, &critical),
	                 GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	len = sizeof(name);
	if (csr_cases[_i].cn) {
		ck_assert_int_eq(gnutls_x509_crq_get_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0,
		                                               0, name, &len),
		                 0);
		ck_assert_str_eq(name, expect);
	} else {
		ck_assert_int_eq(gnutls_x509_crq_get_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0,
		                                               0, name, &len),
		                 GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	}

	/* The request carries the key it was signed with. */
	ck_assert_int_eq(gnutls_pubkey_init(&pub), 0);
	ck_assert_int_eq(gnutls_pubkey_import_x509_crq(pub, crq, 0), 0);
	ck_assert_int_eq(gnutls_pubkey_init(&mine), 0);
	ck_assert_int_eq(gnutls_pubkey_import_privkey(mine, k.key, 0, 0), 0);
	assert_same_key(pub, mine);
	gnutls_pubkey_deinit(mine);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crq_deinit(crq);

	/* The self-signature covers the name: one letter changed and it no longer verifies. */
	unsigned char *at = memmem(der, der_len, expect, strlen(expect));
	ck_assert_ptr_nonnull(at);
	at[0] ^= 0x20;
	ck_assert_int_eq(gnutls_x509_crq_init(&crq), 0);
	ck_assert_int_eq(gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_DER), 0);
	ck_assert_int_lt(gnutls_x509_crq_verify(crq, 0), 0);
	gnutls_x509_crq_deinit(crq);

	free(der);
	buf_finish(&out);
	jose_key_finish(&k);
}
END_TEST

START_TEST(test_csr_bad_host)
{
	char host[300];
	struct jose_key k;
	struct buf out;

	ck_assert_int_eq(jose_key_generate(&k), 0);
	buf_init(&out);
	buf_puts(&out, "x");
	ck_assert_int_eq(acmecert_csr(&out, k.key, ""), -1);
	long_host(host, ACMECERT_HOST_MAX + 1);
	ck_assert_int_eq(acmecert_csr(&out, k.key, host), -1);
	ck_assert_uint_eq(out.len, 1);
	long_host(host, ACMECERT_HOST_MAX);
	ck_assert_int_eq(acmecert_csr(&out, k.key, host), 0);
	buf_finish(&out);
	jose_key_finish(&k);
}
END_TEST

/* ---- TLS-ALPN-01 ---------------------------------------------------------------------- */

/* A key authorization: token "." account thumbprint. */
static const char key_authorization[] =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

/* printf %s '<key_authorization>' | sha256sum */
static const unsigned char key_authorization_sha256[32] = {
    0x94, 0x23, 0x3b, 0x71, 0x9c, 0x90, 0x5d, 0xc5, 0x47, 0x2b, 0x69, 0xe7, 0x5b, 0x78, 0xe3, 0x02,
    0x13, 0x53, 0xdc, 0x5b, 0xe6, 0xd7, 0xc5, 0x0d, 0xfa, 0x45, 0x99, 0x66, 0x49, 0xca, 0xa1, 0x83,
};

START_TEST(test_challenge)
{
	struct tls_cert *c = acmecert_challenge("MTA-STS.Example.com", key_authorization, T0);
	gnutls_x509_crt_t crt;
	gnutls_datum_t ext = {NULL, 0}, sig = {NULL, 0};
	unsigned char text[] = "acme-tls/1";
	gnutls_datum_t msg = {text, sizeof(text) - 1};
	gnutls_pubkey_t pub;
	unsigned critical = 0, type;
	unsigned char serial[64];
	size_t len;
	char name[256];

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(atomic_load(&c->refs), 1);
	ck_assert_uint_eq(c->n_chain, 1);
	ck_assert_uint_eq(c->shared, 0);
	ck_assert_ptr_nonnull(c->key);
	ck_assert_uint_eq(c->n_names, 1);
	ck_assert_str_eq(c->names[0], "mta-sts.example.com");
	ck_assert_int_eq(c->not_before, T0 - 3600);
	ck_assert_int_eq(c->not_after, T0 + 7 * 86400);
	ck_assert_ptr_nonnull(c->cert_file);
	ck_assert(tls_cert_covers(c, "mta-sts.example.com"));
	ck_assert(!tls_cert_covers(c, "example.com"));
	ck_assert(tls_cert_valid_at(c, T0));

	ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_import(crt, &c->chain[0].cert, GNUTLS_X509_FMT_DER), 0);

	/* id-pe-acmeIdentifier: critical, an OCTET STRING (04 20) of the digest. */
	ck_assert_int_eq(
	    gnutls_x509_crt_get_extension_by_oid2(crt, "1.3.6.1.5.5.7.1.31", 0, &ext, &critical),
	    0);
	ck_assert_uint_eq(critical, 1);
	ck_assert_uint_eq(ext.size, 34);
	ck_assert_uint_eq(ext.data[0], 0x04);
	ck_assert_uint_eq(ext.data[1], 0x20);
	ck_assert_mem_eq(ext.data + 2, key_authorization_sha256, 32);
	gnutls_free(ext.data);

	/* The SAN is the host, and nothing else. */
	len = sizeof(name);
	ck_assert_int_eq(gnutls_x509_crt_get_subject_alt_name2(crt, 0, name, &len, &type, NULL),
	                 GNUTLS_SAN_DNSNAME);
	ck_assert_str_eq(name, "mta-sts.example.com");
	len = sizeof(name);
	ck_assert_int_eq(gnutls_x509_crt_get_subject_alt_name2(crt, 1, name, &len, &type, NULL),
	                 GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);

	/* A positive serial of 16 bytes, and the validity in the certificate itself. */
	len = sizeof(serial);
	ck_assert_int_eq(gnutls_x509_crt_get_serial(crt, serial, &len), 0);
	ck_assert_uint_eq(len, 16);
	ck_assert(serial[0] != 0 && serial[0] < 0x80);
	ck_assert_int_eq(gnutls_x509_crt_get_activation_time(crt), T0 - 3600);
	ck_assert_int_eq(gnutls_x509_crt_get_expiration_time(crt), T0 + 7 * 86400);
	ck_assert_int_eq(gnutls_x509_crt_check_issuer(crt, crt), 1);

	/* The key is the certificate's: what it signs, the certificate's key verifies. */
	ck_assert_int_eq(gnutls_pubkey_init(&pub), 0);
	ck_assert_int_eq(gnutls_pubkey_import_privkey(pub, c->key, 0, 0), 0);
	assert_same_key(pub, c->chain[0].pubkey);
	ck_assert_int_eq(gnutls_pubkey_get_pk_algorithm(pub, NULL), GNUTLS_PK_ECDSA);
	gnutls_pubkey_deinit(pub);
	ck_assert_int_eq(gnutls_privkey_sign_data2(c->key, GNUTLS_SIGN_ECDSA_SHA256, 0, &msg, &sig),
	                 0);
	ck_assert_int_ge(
	    gnutls_pubkey_verify_data2(c->chain[0].pubkey, GNUTLS_SIGN_ECDSA_SHA256, 0, &msg, &sig),
	    0);
	gnutls_free(sig.data);
	gnutls_x509_crt_deinit(crt);

	/* Another one for the same name has its own key and serial. */
	struct tls_cert *c2 = acmecert_challenge("mta-sts.example.com", key_authorization, T0);
	ck_assert_ptr_nonnull(c2);
	ck_assert(c2->chain[0].cert.size != c->chain[0].cert.size ||
	          memcmp(c2->chain[0].cert.data, c->chain[0].cert.data, c->chain[0].cert.size) !=
	              0);
	tls_cert_unref(c2);
	tls_cert_unref(c);
}
END_TEST

/* tls_cert_from refuses a leaf with a key that is not its own, and leaves both to the
 * caller (who frees them here: a double free or a leak shows under valgrind and ASan). */
START_TEST(test_cert_from_foreign_key)
{
	struct tls_cert *c = acmecert_challenge("mta-sts.example.com", key_authorization, T0);
	struct jose_key other;
	gnutls_pcert_st leaf;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(
	    gnutls_pcert_import_x509_raw(&leaf, &c->chain[0].cert, GNUTLS_X509_FMT_DER, 0), 0);
	ck_assert_int_eq(jose_key_generate(&other), 0);
	ck_assert_ptr_null(tls_cert_from(&leaf, other.key, "leaf"));
	gnutls_pcert_deinit(&leaf);
	jose_key_finish(&other);
	tls_cert_unref(c);
}
END_TEST

START_TEST(test_challenge_bad_host)
{
	char host[300];

	ck_assert_ptr_null(acmecert_challenge("", key_authorization, T0));
	long_host(host, ACMECERT_HOST_MAX + 1);
	ck_assert_ptr_null(acmecert_challenge(host, key_authorization, T0));
}
END_TEST

/* ---- issued certificates: validity and ARI identifier ---------------------------------- */

static const struct {
	unsigned char aki[32];
	size_t aki_len;
	unsigned char serial[21];
	size_t serial_len;
	const char *ari_id; /* computed with python3: b64u(aki) + "." + b64u(serial), where
	                       b64u = base64.urlsafe_b64encode(b).rstrip(b"=") */
} ari_cases[] = {
    /* RFC 9773 4.1's example: a serial whose DER INTEGER has a leading 0x00. */
    {{0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
      0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4},
     20,
     {0x00, 0x87, 0x65, 0x43, 0x21},
     5,
     "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"},
    {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
     20,
     {0x7f},
     1,
     "AQIDBAUGBwgJCgsMDQ4PEBESExQ.fw"},
    /* A 32-byte key identifier, a 20-byte serial with its sign byte. */
    {{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
      0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
      0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf},
     32,
     {0x00, 0xfa, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x50, 0x61, 0x72,
      0x83, 0x94, 0xa5, 0xb6, 0xc7, 0xd8, 0xe9, 0xfa, 0x0b, 0x1c},
     20,
     "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8.APoLHC0-T1BhcoOUpbbH2On6Cxw"},
};

/* A CA without an authority key identifier, valid from T0 - 1 day for 10 years. */
static gnutls_x509_privkey_t ca_key;
static gnutls_x509_crt_t ca_crt;

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

static void ca_setup(void)
{
	static const unsigned char serial[] = {0x01};

	ca_key = new_key();
	ck_assert_int_eq(gnutls_x509_crt_init(&ca_crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_version(ca_crt, 3), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_serial(ca_crt, serial, sizeof(serial)), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_dn(ca_crt, "CN=test ca", NULL), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_activation_time(ca_crt, T0 - 86400), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_expiration_time(ca_crt, T0 + 3650 * 86400), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_basic_constraints(ca_crt, 1, -1), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_key(ca_crt, ca_key), 0);
	ck_assert_int_eq(gnutls_x509_crt_sign2(ca_crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0), 0);
}

static void ca_teardown(void)
{
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_privkey_deinit(ca_key);
}

static void append_pem(struct buf *b, gnutls_x509_crt_t crt)
{
	gnutls_datum_t pem = {NULL, 0};

	ck_assert_int_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), 0);
	buf_append(b, pem.data, pem.size);
	gnutls_free(pem.data);
}

/* Appends the PEM of a leaf issued by the CA, valid [T0, T0 + 90 days), with the
 * authority key identifier aki (none when aki_len is 0) and the serial given. */
static void issue(struct buf *b, const unsigned char *aki, size_t aki_len,
                  const unsigned char *serial, size_t serial_len)
{
	gnutls_x509_privkey_t key = new_key();
	gnutls_x509_crt_t crt;

	ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_version(crt, 3), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_serial(crt, serial, serial_len), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_activation_time(crt, T0), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_expiration_time(crt, T0 + 90 * 86400), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_subject_alt_name(
	                     crt, GNUTLS_SAN_DNSNAME, "mta-sts.example.com", 19, GNUTLS_FSAN_SET),
	                 0);
	if (aki_len > 0)
		ck_assert_int_eq(gnutls_x509_crt_set_authority_key_id(crt, aki, aki_len), 0);
	ck_assert_int_eq(gnutls_x509_crt_set_key(crt, key), 0);
	ck_assert_int_eq(gnutls_x509_crt_sign2(crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0), 0);
	append_pem(b, crt);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

START_TEST(test_issued)
{
	struct buf chain, out;
	time_t not_before = 1, not_after = 2;

	buf_init(&chain);
	issue(&chain, ari_cases[_i].aki, ari_cases[_i].aki_len, ari_cases[_i].serial,
	      ari_cases[_i].serial_len);
	append_pem(&chain, ca_crt);

	ck_assert_int_eq(acmecert_validity(chain.data, chain.len, &not_before, &not_after), 0);
	ck_assert_int_eq(not_before, T0);
	ck_assert_int_eq(not_after, T0 + 90 * 86400);

	buf_init(&out);
	buf_puts(&out, "renewalInfo/");
	ck_assert_int_eq(acmecert_ari_id(chain.data, chain.len, &out), 0);
	ck_assert_str_eq(out.data + strlen("renewalInfo/"), ari_cases[_i].ari_id);
	ck_assert_int_eq(strncmp(out.data, "renewalInfo/", strlen("renewalInfo/")), 0);
	buf_finish(&out);
	buf_finish(&chain);
}
END_TEST

/* The first certificate counts: with the CA (no authority key identifier) first, its
 * validity is read and there is no ARI identifier. */
START_TEST(test_issued_first_only)
{
	struct buf chain, out;
	time_t not_before, not_after;

	buf_init(&chain);
	append_pem(&chain, ca_crt);
	issue(&chain, ari_cases[0].aki, ari_cases[0].aki_len, ari_cases[0].serial,
	      ari_cases[0].serial_len);
	ck_assert_int_eq(acmecert_validity(chain.data, chain.len, &not_before, &not_after), 0);
	ck_assert_int_eq(not_before, T0 - 86400);
	ck_assert_int_eq(not_after, T0 + 3650 * 86400);
	buf_init(&out);
	buf_puts(&out, "x");
	ck_assert_int_eq(acmecert_ari_id(chain.data, chain.len, &out), -1);
	ck_assert_uint_eq(out.len, 1);
	buf_finish(&out);
	buf_finish(&chain);
}
END_TEST

/* A leaf without an authority key identifier has no ARI identifier. */
START_TEST(test_issued_no_aki)
{
	static const unsigned char serial[] = {0x12, 0x34};
	struct buf chain, out;

	buf_init(&chain);
	issue(&chain, NULL, 0, serial, sizeof(serial));
	buf_init(&out);
	ck_assert_int_eq(acmecert_ari_id(chain.data, chain.len, &out), -1);
	ck_assert_uint_eq(out.len, 0);
	buf_finish(&out);
	buf_finish(&chain);
}
END_TEST

static const char *const not_pem[] = {
    "",
    "garbage",
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
};

START_TEST(test_issued_not_pem)
{
	time_t not_before = 1, not_after = 2;
	struct buf out;
	const char *pem = not_pem[_i];

	ck_assert_int_eq(acmecert_validity(pem, strlen(pem), &not_before, &not_after), -1);
	ck_assert_int_eq(not_before, 1);
	ck_assert_int_eq(not_after, 2);
	buf_init(&out);
	ck_assert_int_eq(acmecert_ari_id(pem, strlen(pem), &out), -1);
	ck_assert_uint_eq(out.len, 0);
	buf_finish(&out);
}
END_TEST

static Suite *acmecert_suite(void)
{
	Suite *s = suite_create("acmecert");
	TCase *tc = tcase_create("csr");

	tcase_add_loop_test(tc, test_csr, 0, sizeof(csr_cases) / sizeof(csr_cases[0]));
	tcase_add_test(tc, test_csr_bad_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("challenge");
	tcase_add_test(tc, test_challenge);
	tcase_add_test(tc, test_challenge_bad_host);
	tcase_add_test(tc, test_cert_from_foreign_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("issued");
	tcase_add_unchecked_fixture(tc, ca_setup, ca_teardown);
	tcase_add_loop_test(tc, test_issued, 0, sizeof(ari_cases) / sizeof(ari_cases[0]));
	tcase_add_test(tc, test_issued_first_only);
	tcase_add_test(tc, test_issued_no_aki);
	tcase_add_loop_test(tc, test_issued_not_pem, 0, sizeof(not_pem) / sizeof(not_pem[0]));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (gnutls_global_init() < 0)
		return EXIT_FAILURE;
	sr = srunner_create(acmecert_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	gnutls_global_deinit();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
