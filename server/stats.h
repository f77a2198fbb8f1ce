/* stats: counters and recent policy fetchers per domain, in bounded memory */
#ifndef MTASTSD_STATS_H
#define MTASTSD_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <sys/socket.h>

#include "buf.h"
#include "policy.h"

#define STATS_RECENT 8 /* recent fetchers kept per domain */
#define STATS_IDS 4    /* ids counted per domain (the most recent ones) */
/* Domains that keep fetchers and ids (the first ones to serve a policy); the others
 * keep their counters only, so that a million tenants stay in bounded memory. */
#define STATS_DETAIL_MAX 50000

/* Statuses counted per domain, in this order. */
enum stats_status {
	STATS_200,
	STATS_400,
	STATS_404,
	STATS_405,
	STATS_421,
	STATS_503,
	STATS_NSTATUS,
};

enum stats_handshake {
	STATS_HS_OK,
	STATS_HS_RESUMED,
	STATS_HS_ACME, /* an ACME CA validating by TLS-ALPN-01 */
	STATS_HS_UNKNOWN_SNI,
	STATS_HS_NO_SNI,
	STATS_HS_NO_HELLO,     /* closed before a ClientHello: a TCP check, not TLS at all */
	STATS_HS_OLD_VERSION,  /* a client of TLS 1.1 or older (told so by an alert) */
	STATS_HS_CLIENT_ALERT, /* the client refused the handshake, e.g. our certificate */
	STATS_HS_FAILED,       /* any other failure: no common cipher, a timeout, ... */
	STATS_HS_N,
};

struct stats_fetcher {
	time_t at;
	char client[46];
	char id[POLICY_ID_MAX + 1];
	char tls[8]; /* "1.3", "1.2" */
};

struct stats_id_count {
	char id[POLICY_ID_MAX + 1];
	unsigned long count;
};

struct domain_stats;

/* A process-wide service, owned by main (stats_init before any thread, stats_finish after
 * the last), not part of any snapshot: counters are kept by domain name, so they survive
 * reloads, and a connection finds its domain's counters once (stats_domain) and keeps the
 * pointer, valid until stats_finish. All functions are thread-safe. 0 / -1. */
int stats_init(void);
void stats_finish(void);

/* The counters of domain, created on first use (kept across reloads). NULL on ENOMEM. */
struct domain_stats *stats_domain(const char *domain);

/* Counts one answer; for a 200, also records the fetcher (client address, NULL if
 * unknown; TLS version as 12 or 13, 0 if unknown) and the id served. Formats nothing:
 * addresses become text only when read. */
void stats_request(struct domain_stats *s, unsigned status, const struct sockaddr *client,
                   const char *id, unsigned tls);
void stats_handshake(enum stats_handshake what);
void stats_reload(bool ok);

/* Reading, for the admin listener. Copies under the domain's lock. n_recent and n_ids
 * are set to how many were copied (newest first). domain_stats may be NULL (never
 * requested): everything reads as zero. */
struct stats_view {
	unsigned long by_status[STATS_NSTATUS];
	struct stats_fetcher recent[STATS_RECENT];
	size_t n_recent;
	struct stats_id_count ids[STATS_IDS];
	size_t n_ids;
};
void stats_read(struct domain_stats *s, struct stats_view *ret);
/* Looks up without creating (NULL when the domain never had a request). */
struct domain_stats *stats_find(const char *domain);
unsigned long stats_handshakes(enum stats_handshake what);
unsigned long stats_reloads(bool ok);
extern const unsigned stats_status_codes[STATS_NSTATUS];
extern const char *const stats_handshake_names[STATS_HS_N];

#endif
