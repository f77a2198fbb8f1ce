/* smtptls: an MX as a sending MTA sees it: EHLO, STARTTLS, the TLS handshake, the certificate */
#ifndef MTASTSD_SMTPTLS_H
#define MTASTSD_SMTPTLS_H

#include <stdbool.h>
#include <stddef.h>

#define SMTPTLS_DETAIL_MAX 400

enum smtptls_status {
	SMTPTLS_OK,
	SMTPTLS_WARN, /* everything holds, but the certificate expires within 14 days */
	SMTPTLS_FAIL,
};

struct smtptls_probe {
	const char *host;  /* borrowed: the MX host, for SNI and the name check */
	const char *addrs; /* borrowed: its addresses, "a,b,[v6]" (dns DNS_ADDRS), tried in order */
	/* results */
	enum smtptls_status status;
	char address[64]; /* the address that answered, "" if none */
	char version[16]; /* negotiated TLS version ("TLS1.3"), "" if no handshake */
	long days_left;   /* until the leaf certificate expires (negative: expired) */
	char detail[SMTPTLS_DETAIL_MAX]; /* what a person can act on */
};

struct smtptls_opts {
	const char *ca_file;   /* NULL: the system trust store */
	unsigned port;         /* SMTP port, 25 */
	const char *helo;      /* the name we send in EHLO */
	long long deadline_ms; /* CLOCK_MONOTONIC milliseconds: every probe has ended by then */
	unsigned threads;      /* probes at once, at least 1 */
};

/* Probes every MX concurrently: TCP (each address in turn until one answers), the 220
 * greeting, EHLO, STARTTLS (it must be offered and accepted), a TLS handshake that allows
 * TLS 1.0 to 1.3 (so that an old server is named as such), then QUIT. The chain is
 * verified against the trust store, the name against the host (RFC 8461 §4.1: a DNS-ID,
 * "*." only as the whole leftmost label), the expiry counted in days. Fails below TLS
 * 1.2. Never sends mail. 0, or -1 when the trust store cannot be loaded (then every probe
 * fails with the reason). */
int smtptls_run(struct smtptls_probe *p, size_t n, const struct smtptls_opts *o);

#endif
