/* acmecert: the X.509 pieces of ACME: the CSR for mta-sts.<domain>, the TLS-ALPN-01
 * validation certificate (RFC 8737), and what ARI and scheduling read from an issued
 * certificate */
#ifndef MTASTSD_ACMECERT_H
#define MTASTSD_ACMECERT_H

#include <stddef.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>

#include "buf.h"
#include "tls.h"

/* The longest host name accepted (RFC 1035: 253 characters without the final dot). */
#define ACMECERT_HOST_MAX 253

/* Appends the "csr" of an order's finalize request: base64url of a DER PKCS#10 request for
 * host (lowercased; the SAN dNSName, and the CN when it fits its 64 characters), signed by
 * key (borrowed) with SHA-256. 0 / -1 (nothing appended unless out of memory). */
int acmecert_csr(struct buf *out, gnutls_privkey_t key, const char *host);

/* The RFC 8737 validation certificate for host: self-signed with a new P-256 key, SAN
 * dNSName host (lowercased) and nothing else, the critical id-pe-acmeIdentifier extension
 * (1.3.6.1.5.5.7.1.31) holding SHA-256(key_authorization) as a DER OCTET STRING, valid from
 * now - 1 hour to now + 7 days, a random positive serial. Returns it with refs 1 (the caller
 * drops it with tls_cert_unref): chain[0] only, its key, names {host lowercased}, and
 * "(acme-tls/1 challenge)" for the file names. NULL on failure. */
struct tls_cert *acmecert_challenge(const char *host, const char *key_authorization, time_t now);

/* Sets *ret_not_before and *ret_not_after to the validity of the first certificate of the
 * PEM chain pem[0..len). 0 / -1 (both untouched). */
int acmecert_validity(const void *pem, size_t len, time_t *ret_not_before, time_t *ret_not_after);

/* Appends the RFC 9773 (ARI) certificate identifier of the first certificate of the PEM
 * chain pem[0..len): base64url(keyIdentifier of its authorityKeyIdentifier) "."
 * base64url(the content bytes of its serial number's DER INTEGER, a leading 0x00 included).
 * 0 / -1 (also without an authority key identifier; nothing appended unless out of memory). */
int acmecert_ari_id(const void *pem, size_t len, struct buf *out);

#endif
