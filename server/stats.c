/* stats: counters and recent policy fetchers per domain, in bounded memory */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "stats.h"

const unsigned stats_status_codes[STATS_NSTATUS] = {200, 400, 404, 405, 421, 503};
const char *const stats_handshake_names[STATS_HS_N] = {"full",        "resumed",      "acme",
                                                       "unknown_sni", "no_sni",       "no_hello",
                                                       "old_version", "client_alert", "failed"};

/* A fetcher as recorded on the request path: nothing formatted yet. */
struct raw_fetcher {
	time_t at;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	char id[POLICY_ID_MAX + 1];
	unsigned char tls;
};

struct stats_detail {
	struct raw_fetcher recent[STATS_RECENT]; /* ring */
	size_t next;
	size_t n_recent;
	struct stats_id_count ids[STATS_IDS]; /* ids[0] most recent */
	size_t n_ids;
};

struct domain_stats {
	char *domain;
	atomic_ulong by_status[STATS_NSTATUS];
	pthread_mutex_t lock;        /* detail */
	struct stats_detail *detail; /* on the first 200, while details are left */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hash registry;
static struct domain_stats **all;
static size_t n_all, cap_all;
static atomic_ulong handshakes[STATS_HS_N];
static atomic_ulong reloads[2];
static atomic_size_t n_details;

int stats_init(void)
{
	return hash_init(&registry, 64);
}

void stats_finish(void)
{
	for (size_t i = 0; i < n_all; i++) {
		pthread_mutex_destroy(&all[i]->lock);
		free(all[i]->detail);
		free(all[i]->domain);
		free(all[i]);
	}
	free(all);
	all = NULL;
	n_all = cap_all = 0;
	hash_finish(&registry);
}

struct domain_stats *stats_find(const char *domain)
{
	struct domain_stats *s;

	pthread_mutex_lock(&registry_lock);
	s = registry.slots != NULL ? hash_get(&registry, domain, strlen(domain)) : NULL;
	pthread_mutex_unlock(&registry_lock);
	return s;
}

struct domain_stats *stats_domain(const char *domain)
{
	struct domain_stats *s;

	pthread_mutex_lock(&registry_lock);
	s = hash_get(&registry, domain, strlen(domain));
	if (s != NULL)
		goto out;
	if (n_all == cap_all) {
		size_t cap = cap_all ? cap_all * 2 : 64;
		struct domain_stats **v = realloc(all, cap * sizeof(*v));

		if (v == NULL)
			goto out;
		all = v;
		cap_all = cap;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->domain = strdup(domain)) == NULL ||
	    hash_put(&registry, s->domain, s, NULL) < 0) {
		if (s != NULL)
			free(s->domain);
		free(s);
		s = NULL;
		goto out;
	}
	pthread_mutex_init(&s->lock, NULL);
	all[n_all++] = s;
out:
	pthread_mutex_unlock(&registry_lock);
	return s;
}

static int status_index(unsigned status)
{
	for (int i = 0; i < STATS_NSTATUS; i++)
		if (stats_status_codes[i] == status)
			return i;
	return -1;
}

void stats_request(struct domain_stats *s, unsigned status, const struct sockaddr *client,
                   const char *id, unsigned tls)
{
	int i = status_index(status);
	struct stats_detail *dt;
	struct raw_fetcher *f;
	size_t k, id_len;

	if (s == NULL || i < 0)
		return;
	atomic_fetch_add_explicit(&s->by_status[i], 1, memory_order_relaxed);
	if (status != 200 || id == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->detail == NULL && atomic_load(&n_details) < STATS_DETAIL_MAX &&
	    atomic_fetch_add(&n_details, 1) < STATS_DETAIL_MAX)
		s->detail = calloc(1, sizeof(*s->detail));
	if ((dt = s->detail) == NULL) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	f = &dt->recent[dt->next];
	dt->next = (dt->next + 1) % STATS_RECENT;
	if (dt->n_recent < STATS_RECENT)
		dt->n_recent++;
	f->at = time(NULL);
	memset(&f->addr, 0, sizeof(f->addr));
	if (client != NULL && client->sa_family == AF_INET)
		memcpy(&f->addr.in, client, sizeof(f->addr.in));
	else if (client != NULL && client->sa_family == AF_INET6)
		memcpy(&f->addr.in6, client, sizeof(f->addr.in6));
	id_len = strnlen(id, POLICY_ID_MAX);
	memcpy(f->id, id, id_len);
	f->id[id_len] = 0;
	f->tls = (unsigned char)tls;
	/* Move-to-front list of ids: the oldest id falls off when one more appears. */
	for (k = 0; k < dt->n_ids && strcmp(dt->ids[k].id, id) != 0; k++)
		;
	if (k == dt->n_ids) {
		if (dt->n_ids < STATS_IDS)
			dt->n_ids++;
		k = dt->n_ids - 1;
		memcpy(dt->ids[k].id, f->id, sizeof(f->id));
		dt->ids[k].count = 0;
	}
	struct stats_id_count hit = dt->ids[k];
	hit.count++;
	memmove(&dt->ids[1], &dt->ids[0], k * sizeof(dt->ids[0]));
	dt->ids[0] = hit;
	pthread_mutex_unlock(&s->lock);
}

void stats_handshake(enum stats_handshake what)
{
	atomic_fetch_add_explicit(&handshakes[what], 1, memory_order_relaxed);
}

void stats_reload(bool ok)
{
	atomic_fetch_add_explicit(&reloads[ok ? 1 : 0], 1, memory_order_relaxed);
}

unsigned long stats_handshakes(enum stats_handshake what)
{
	return atomic_load(&handshakes[what]);
}

unsigned long stats_reloads(bool ok)
{
	return atomic_load(&reloads[ok ? 1 : 0]);
}

void stats_read(struct domain_stats *s, struct stats_view *ret)
{
	const struct stats_detail *dt;

	memset(ret, 0, sizeof(*ret));
	if (s == NULL)
		return;
	for (int i = 0; i < STATS_NSTATUS; i++)
		ret->by_status[i] = atomic_load(&s->by_status[i]);
	pthread_mutex_lock(&s->lock);
	dt = s->detail;
	for (size_t k = 0; dt != NULL && k < dt->n_recent; k++) {
		const struct raw_fetcher *f =
		    &dt->recent[(dt->next + STATS_RECENT - 1 - k) % STATS_RECENT];
		struct stats_fetcher *out = &ret->recent[k];

		out->at = f->at;
		memcpy(out->id, f->id, sizeof(out->id));
		snprintf(out->tls, sizeof(out->tls), f->tls ? "1.%u" : "?", f->tls % 10u);
		snprintf(out->client, sizeof(out->client), "-");
		if (f->addr.sa.sa_family == AF_INET)
			inet_ntop(AF_INET, &f->addr.in.sin_addr, out->client, sizeof(out->client));
		else if (f->addr.sa.sa_family == AF_INET6)
			inet_ntop(AF_INET6, &f->addr.in6.sin6_addr, out->client,
			          sizeof(out->client));
	}
	if (dt != NULL) {
		ret->n_recent = dt->n_recent;
		memcpy(ret->ids, dt->ids, dt->n_ids * sizeof(dt->ids[0]));
		ret->n_ids = dt->n_ids;
	}
	pthread_mutex_unlock(&s->lock);
}
