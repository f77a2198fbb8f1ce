/* dns: batched c-ares lookups: _mta-sts ids, TXT records, MX hosts and addresses */
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ares.h>

#include "dns.h"

#define TXT_RECORDS_MAX 16
#define TXT_RECORD_MAX 2048
#define DNS_MX_MAX 64

struct dns {
	ares_channel channel;
};

static void set_error(struct dns_query *q, enum dns_result r, const char *what, int status)
{
	q->result = r;
	snprintf(q->error, sizeof(q->error), "%s %s: %s", what, q->name, ares_strerror(status));
}

struct dns *dns_create(const char *server, unsigned timeout, char *err, size_t err_size)
{
	struct dns *d = calloc(1, sizeof(*d));
	struct ares_options o = {0};
	int r;

	if (d == NULL) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	o.timeout = (int)(timeout * 1000 / 2);
	o.tries = 2;
	o.lookups = (char *)(uintptr_t) "b"; /* DNS only, never /etc/hosts */
	r = ares_init_options(&d->channel, &o,
	                      ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
	if (r != ARES_SUCCESS) {
		snprintf(err, err_size, "DNS resolver: %s", ares_strerror(r));
		free(d);
		return NULL;
	}
	if (server != NULL &&
	    (r = ares_set_servers_ports_csv(d->channel, server)) != ARES_SUCCESS) {
		snprintf(err, err_size, "DNS server %s: %s", server, ares_strerror(r));
		ares_destroy(d->channel);
		free(d);
		return NULL;
	}
	return d;
}

void dns_destroy(struct dns *d)
{
	if (d == NULL)
		return;
	ares_destroy(d->channel);
	free(d);
}

/* Value of field name in an RFC 8461 §3.1 record, first occurrence. */
static int record_field(const char *rec, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	const char *p = rec;

	while (*p) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			if (len - nlen - 1 >= size)
				return -1;
			memcpy(out, p + nlen + 1, len - nlen - 1);
			out[len - nlen - 1] = 0;
			return 0;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return -1;
}

int dns_sts_id(const char *const *records, size_t n, char ret_id[POLICY_ID_MAX + 1], char *err,
               size_t err_size)
{
	const char *found = NULL;
	char id[64];

	for (size_t i = 0; i < n; i++) {
		if (strncmp(records[i], "v=STSv1", 7) != 0 ||
		    (records[i][7] != ';' && records[i][7] != ' ' && records[i][7] != '\t'))
			continue;
		if (found != NULL) {
			snprintf(err, err_size, "more than one v=STSv1 record");
			return -1;
		}
		found = records[i];
	}
	if (found == NULL) {
		snprintf(err, err_size, "no v=STSv1 record");
		return -1;
	}
	if (record_field(found, "id", id, sizeof(id)) < 0 || !policy_id_valid(id)) {
		snprintf(err, err_size, "v=STSv1 record without a valid id");
		return -1;
	}
	memcpy(ret_id, id, strlen(id) + 1);
	return 0;
}

/* The TXT records of an answer (CNAMEs before them are skipped by c-ares), each one's
 * character-strings joined without spaces (§3.1); at most TXT_RECORDS_MAX, each cut at
 * TXT_RECORD_MAX. An ares status. */
static int txt_records(unsigned char *abuf, int alen, char **records, size_t *ret_n)
{
	struct ares_txt_ext *txt = NULL;
	size_t n = 0;
	int r = ares_parse_txt_reply_ext(abuf, alen, &txt);

	if (r != ARES_SUCCESS)
		return r;
	for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
		if (t->record_start || n == 0) {
			if (n == TXT_RECORDS_MAX)
				break;
			if ((records[n] = calloc(1, TXT_RECORD_MAX)) == NULL)
				break;
			n++;
		}
		size_t have = strlen(records[n - 1]);
		if (have + t->length < TXT_RECORD_MAX && memchr(t->txt, 0, t->length) == NULL)
			memcpy(records[n - 1] + have, t->txt, t->length);
	}
	ares_free_data(txt);
	*ret_n = n;
	return ARES_SUCCESS;
}

static void txt_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	char *records[TXT_RECORDS_MAX] = {0};
	size_t n = 0;
	int r;

	(void)timeouts;
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		set_error(q, DNS_NONE, "TXT", status);
		return;
	}
	if (status != ARES_SUCCESS) {
		set_error(q, DNS_FAIL, "TXT", status);
		return;
	}
	if ((r = txt_records(abuf, alen, records, &n)) != ARES_SUCCESS) {
		set_error(q, r == ARES_ENODATA ? DNS_NONE : DNS_FAIL, "TXT", r);
		return;
	}
	if (q->kind == DNS_TXT) {
		if (n > 0 && (q->list = calloc(n, sizeof(*q->list))) == NULL) {
			snprintf(q->error, sizeof(q->error), "out of memory");
			goto out;
		}
		memcpy(q->list, records, n * sizeof(*records));
		q->n_list = n;
		n = 0;
		q->result = DNS_OK;
		goto out;
	}
	if (dns_sts_id((const char *const *)records, n, q->id, q->error, sizeof(q->error)) == 0)
		q->result = DNS_OK;
	else
		q->result = DNS_NONE;
out:
	for (size_t i = 0; i < n; i++)
		free(records[i]);
}

static int mx_cmp(const void *a, const void *b)
{
	const struct ares_mx_reply *x = *(const struct ares_mx_reply *const *)a;
	const struct ares_mx_reply *y = *(const struct ares_mx_reply *const *)b;

	return (int)x->priority - (int)y->priority;
}

static void mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct ares_mx_reply *mx = NULL, *sorted[DNS_MX_MAX];
	size_t n = 0;
	int r;

	(void)timeouts;
	if (status != ARES_SUCCESS) {
		set_error(q,
		          status == ARES_ENOTFOUND || status == ARES_ENODATA ? DNS_NONE : DNS_FAIL,
		          "MX", status);
		return;
	}
	if ((r = ares_parse_mx_reply(abuf, alen, &mx)) != ARES_SUCCESS) {
		set_error(q, r == ARES_ENODATA ? DNS_NONE : DNS_FAIL, "MX", r);
		return;
	}
	for (struct ares_mx_reply *m = mx; m != NULL && n < DNS_MX_MAX; m = m->next)
		sorted[n++] = m;
	/* Equal preferences keep the order of the answer. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && mx_cmp(&sorted[j - 1], &sorted[j]) > 0; j--) {
			struct ares_mx_reply *t = sorted[j];

			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	if (n > 0 && (q->list = calloc(n, sizeof(*q->list))) == NULL) {
		snprintf(q->error, sizeof(q->error), "out of memory");
		ares_free_data(mx);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *h = strdup(sorted[i]->host);
		size_t len;

		if (h == NULL)
			break;
		len = strlen(h);
		if (len > 0 && h[len - 1] == '.')
			h[--len] = 0;
		for (char *c = h; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		q->list[q->n_list++] = h;
	}
	ares_free_data(mx);
	q->result = DNS_OK;
}

static void addr_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	size_t len = 0;

	(void)timeouts;
	if (status != ARES_SUCCESS) {
		set_error(q,
		          status == ARES_ENOTFOUND || status == ARES_ENODATA ? DNS_NONE : DNS_FAIL,
		          "address of", status);
		return;
	}
	q->addrs[0] = 0;
	for (struct ares_addrinfo_node *n = res->nodes; n != NULL; n = n->ai_next) {
		char a[INET6_ADDRSTRLEN];
		const void *src =
		    n->ai_family == AF_INET
		        ? (const void *)&((struct sockaddr_in *)(void *)n->ai_addr)->sin_addr
		        : (const void *)&((struct sockaddr_in6 *)(void *)n->ai_addr)->sin6_addr;
		int w;

		if (inet_ntop(n->ai_family, src, a, sizeof(a)) == NULL)
			continue;
		w = snprintf(q->addrs + len, sizeof(q->addrs) - len,
		             n->ai_family == AF_INET6 ? "%s[%s]" : "%s%s", len ? "," : "", a);
		if (w < 0 || (size_t)w >= sizeof(q->addrs) - len)
			break;
		len += (size_t)w;
	}
	ares_freeaddrinfo(res);
	if (len == 0) {
		q->result = DNS_NONE;
		snprintf(q->error, sizeof(q->error), "no address for %s", q->name);
		return;
	}
	q->result = DNS_OK;
}

void dns_run(struct dns *d, struct dns_query *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dns_query_finish(&q[i]);
		q[i].result = DNS_FAIL;
		q[i].id[0] = q[i].addrs[0] = 0;
		snprintf(q[i].error, sizeof(q[i].error), "no answer for %s", q[i].name);
		if (q[i].kind == DNS_STS_ID || q[i].kind == DNS_TXT) {
			ares_query(d->channel, q[i].name, 1 /* IN */, 16 /* TXT */, txt_done,
			           &q[i]);
		} else if (q[i].kind == DNS_MX) {
			ares_query(d->channel, q[i].name, 1 /* IN */, 15 /* MX */, mx_done, &q[i]);
		} else {
			struct ares_addrinfo_hints h = {.ai_family = AF_UNSPEC};

			ares_getaddrinfo(d->channel, q[i].name, NULL, &h, addr_done, &q[i]);
		}
	}
	/* poll(2), not select(2): the process may hold descriptors above FD_SETSIZE. */
	for (;;) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(d->channel, socks, ARES_GETSOCK_MAXNUM);
		nfds_t nfds = 0;
		struct timeval tv, *tvp;

		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			/* c-ares's own macros shift a signed 1 into the sign bit for i = 15. */
			if ((unsigned)bits & (1u << i))
				ev |= POLLIN;
			if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (ev == 0)
				continue;
			pfd[nfds].fd = socks[i];
			pfd[nfds].events = ev;
			pfd[nfds].revents = 0;
			nfds++;
		}
		if (nfds == 0)
			break;
		tvp = ares_timeout(d->channel, NULL, &tv);
		poll(pfd, nfds, tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000);
		for (nfds_t i = 0; i < nfds; i++)
			ares_process_fd(d->channel,
			                pfd[i].revents & (POLLIN | POLLERR | POLLHUP)
			                    ? pfd[i].fd
			                    : ARES_SOCKET_BAD,
			                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
		if (nfds > 0)
			ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
}

void dns_query_finish(struct dns_query *q)
{
	for (size_t i = 0; i < q->n_list; i++)
		free(q->list[i]);
	free(q->list);
	q->list = NULL;
	q->n_list = 0;
}
