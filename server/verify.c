/* verify: each domain checked live, as a sending MTA sees it: DNS, policy host, MX hosts */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "doc.h"
#include "fetch.h"
#include "journal.h"
#include "policy.h"
#include "records.h"
#include "report.h"
#include "smtptls.h"
#include "txtrec.h"
#include "verify.h"

#define NONE SIZE_MAX
#define PROBE_THREADS 16

/* One domain being verified. "Expected" is what this configuration serves for it. */
struct vdomain {
	const struct config_domain *cd;
	struct doc *doc;  /* the snapshot's served doc, or NULL */
	char *live_body;  /* proxied without a copy: the provider's policy, canonical */
	const char *body; /* expected bytes (doc's or live_body), NULL when unknown */
	size_t len;
	char id[POLICY_ID_MAX + 1];
	const char *mode;
	char source[512];     /* where the expected bytes come from */
	struct policy policy; /* the expected policy, parsed (for its mx patterns) */
	size_t q_sts, q_tlsrpt, q_mx, q_host, q_prov_sts, q_prov_host;     /* queries or NONE */
	size_t j_policy, j_provider;                                       /* fetch jobs or NONE */
	char n_sts[300], n_tlsrpt[300], n_prov_sts[300], n_prov_host[300]; /* query names */
	char url[320], resolve[400], prov_url[320], prov_resolve[400];
	struct report_domain *rep; /* its entry in the report */
	char none_note[400];       /* mode none: from the journal, when its records can go */
};

/* A distinct MX host over all domains, probed once. */
struct mxhost {
	const char *host; /* borrowed from an MX query */
	struct dns_query addr;
	struct smtptls_probe probe;
};

struct fetches {
	struct fetch_job *jobs;
	size_t n;
	struct fetch_opts opts;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void setf(struct report_check *c, enum report_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void setf(struct report_check *c, enum report_status st, const char *fmt, ...)
{
	va_list ap;

	c->status = st;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

static struct report_check *add_check(struct vdomain *v, const char *name, const char *host)
{
	struct report_check *c = &v->rep->checks[v->rep->n_checks++];

	c->name = name;
	c->host = host;
	c->status = REPORT_FAIL;
	snprintf(c->detail, sizeof(c->detail), "not checked");
	return c;
}

static size_t add_query(struct dns_query *q, size_t *n, enum dns_kind kind, const char *name)
{
	q[*n].kind = kind;
	q[*n].name = name;
	return (*n)++;
}

static void *fetch_thread(void *arg)
{
	struct fetches *f = arg;

	fetch_run(f->jobs, f->n, &f->opts);
	return NULL;
}

/* What this configuration serves for v: the snapshot's doc, else (a proxied domain with
 * no copy in state_dir) the provider's policy as the server would fetch and re-render it. */
static void settle_expected(struct vdomain *v, const struct fetch_job *prov)
{
	struct diag d;
	struct policy p;

	if (v->doc != NULL) {
		v->body = v->doc->body;
		v->len = v->doc->len;
		snprintf(v->id, sizeof(v->id), "%s", v->doc->id);
		v->mode = v->doc->mode;
		if (v->cd->proxy != NULL)
			snprintf(v->source, sizeof(v->source),
			         "the copy of %s's policy kept in state_dir", v->cd->proxy);
		else
			snprintf(v->source, sizeof(v->source), "the configured policy");
	} else if (prov == NULL) {
		snprintf(v->source, sizeof(v->source), "no address for mta-sts.%s", v->cd->proxy);
	} else if (!prov->ok) {
		snprintf(v->source, sizeof(v->source), "the fetch of %s failed: %s", v->cd->proxy,
		         prov->error);
	} else {
		diag_init(&d);
		policy_init(&p);
		if (policy_parse(&p, prov->body, prov->len, &d, "policy") == 0) {
			v->live_body = policy_render(&p, &v->len);
			policy_finish(&p);
		}
		if (v->live_body != NULL) {
			v->body = v->live_body;
			policy_id(v->body, v->len, v->id);
			snprintf(v->source, sizeof(v->source),
			         "%s's policy as fetched now (no copy in state_dir)", v->cd->proxy);
		} else {
			snprintf(v->source, sizeof(v->source), "%s serves an invalid policy: %s",
			         v->cd->proxy, d.n ? d.v[0].msg : "out of memory");
		}
		diag_finish(&d);
	}
	if (v->body == NULL)
		return;
	diag_init(&d);
	if (policy_parse(&v->policy, v->body, v->len, &d, "policy") == 0 && v->mode == NULL)
		v->mode = policy_mode_name(v->policy.mode);
	diag_finish(&d);
}

static void check_sts(struct vdomain *v, const struct dns_query *q, const struct dns_query *prov)
{
	struct report_check *c = add_check(v, "sts-txt", NULL);
	const char *rec = NULL;
	char id[POLICY_ID_MAX + 1], prov_id[POLICY_ID_MAX + 1] = "", err[200];
	size_t n = 0;

	if (q->result == DNS_FAIL) {
		setf(c, REPORT_FAIL, "no answer for _mta-sts.%s: %s", v->cd->name, q->error);
		return;
	}
	for (size_t i = 0; q->result == DNS_OK && i < q->n_list; i++)
		if (txtrec_is_sts(q->list[i])) {
			rec = q->list[i];
			n++;
		}
	if (n == 0) {
		if (v->cd->proxy != NULL)
			setf(c, REPORT_FAIL,
			     "no v=STSv1 TXT record at _mta-sts.%s: publish `_mta-sts.%s. IN CNAME "
			     "_mta-sts.%s.`, or senders never look for the policy",
			     v->cd->name, v->cd->name, v->cd->proxy);
		else
			setf(c, REPORT_FAIL,
			     "no v=STSv1 TXT record at _mta-sts.%s: publish `_mta-sts.%s. IN TXT "
			     "\"v=STSv1; id=%s\"`, or senders never look for the policy",
			     v->cd->name, v->cd->name, v->id[0] ? v->id : "<id>");
		return;
	}
	if (n > 1) {
		setf(c, REPORT_FAIL,
		     "%zu v=STSv1 TXT records at _mta-sts.%s: senders ignore the policy unless "
		     "there is exactly one; remove all but one",
		     n, v->cd->name);
		return;
	}
	if (txtrec_sts(rec, id, err, sizeof(err)) < 0) {
		setf(c, REPORT_FAIL, "bad _mta-sts.%s record \"%.200s\": %s (RFC 8461 3.1)",
		     v->cd->name, rec, err);
		return;
	}
	if (v->body == NULL) {
		setf(c, REPORT_FAIL, "id=%s, but what this config serves is unknown: %s", id,
		     v->source);
		return;
	}
	if (prov != NULL && prov->result == DNS_OK)
		snprintf(prov_id, sizeof(prov_id), "%s", prov->id);
	if (prov_id[0] != 0 && strcmp(id, prov_id) == 0) {
		setf(c, REPORT_OK, "v=STSv1; id=%s, the id of %s's policy", id, v->cd->proxy);
		return;
	}
	if (strcmp(id, v->id) == 0) {
		setf(c, REPORT_OK, "v=STSv1; id=%s, the id of the served policy", id);
		return;
	}
	if (v->cd->proxy != NULL)
		setf(c, REPORT_FAIL,
		     "id=%s is neither %s's id (%s) nor the id of the policy served for it (%s): "
		     "make _mta-sts.%s a CNAME to _mta-sts.%s",
		     id, v->cd->proxy, prov_id[0] ? prov_id : "unknown", v->id, v->cd->name,
		     v->cd->proxy);
	else
		setf(c, REPORT_FAIL,
		     "id=%s is not the id of the policy this config serves (%s): senders that "
		     "cached an older policy do not refetch; publish \"v=STSv1; id=%s\" once every "
		     "replica serves the new policy",
		     id, v->id, v->id);
}

static void check_fetch(struct vdomain *v, const struct dns_query *host, const struct fetch_job *j)
{
	struct report_check *c = add_check(v, "policy-fetch", NULL);
	struct diag d;
	struct policy p;
	char got[POLICY_ID_MAX + 1];

	if (j == NULL) {
		setf(c, REPORT_FAIL, "mta-sts.%s has no address: %s; point it at the policy server",
		     v->cd->name, host->error);
		return;
	}
	if (!j->ok) {
		setf(c, REPORT_FAIL,
		     "%s: %s (senders fetch it like this: verified TLS, no redirects)", v->url,
		     j->error);
		return;
	}
	diag_init(&d);
	policy_init(&p);
	if (policy_parse(&p, j->body, j->len, &d, "body") < 0) {
		setf(c, REPORT_FAIL, "%s serves a policy senders reject: %s", v->url,
		     d.n ? d.v[0].msg : "invalid");
		diag_finish(&d);
		return;
	}
	policy_finish(&p);
	diag_finish(&d);
	policy_id(j->body, j->len, got);
	if (v->body == NULL) {
		setf(c, REPORT_FAIL,
		     "fetched %zu bytes (id %s), but what this config serves is unknown: "
		     "%s",
		     j->len, got, v->source);
		return;
	}
	if (j->len != v->len || memcmp(j->body, v->body, v->len) != 0) {
		setf(c, REPORT_FAIL,
		     "%s serves other bytes (id %s) than this config (id %s, %s): a stale replica "
		     "or another server answers for mta-sts.%s",
		     v->url, got, v->id, v->source, v->cd->name);
		return;
	}
	setf(c, REPORT_OK, "200 text/plain, %zu bytes, exactly what this config serves (id %s)",
	     j->len, v->id);
}

static void check_coverage(struct vdomain *v, const struct dns_query *mx)
{
	struct report_check *c = add_check(v, "mx-coverage", NULL);
	struct buf b;
	bool fail = false, warn = false;

	if (mx->result != DNS_OK || mx->n_list == 0) {
		setf(c, REPORT_FAIL,
		     "no MX records for %s (%s): senders have nothing to match the "
		     "policy against",
		     v->cd->name, mx->error);
		return;
	}
	if (v->body == NULL) {
		setf(c, REPORT_FAIL,
		     "cannot match the MX hosts: what this config serves is unknown: %s",
		     v->source);
		return;
	}
	buf_init(&b);
	for (size_t i = 0; i < mx->n_list; i++) {
		bool hit = false;

		for (size_t k = 0; k < v->policy.n_mx && !hit; k++)
			hit = policy_mx_match(v->policy.mx[k], mx->list[i]);
		if (hit)
			continue;
		fail = true;
		if (mx->list[i][0] == 0)
			buf_printf(&b, "%sa null MX (RFC 7505): this domain receives no mail",
			           b.len ? "; " : "");
		else if (v->cd->proxy != NULL)
			buf_printf(
			    &b,
			    "%sMX %s is not matched by any mx pattern of %s's policy: senders "
			    "that enforce will not deliver to it",
			    b.len ? "; " : "", mx->list[i], v->cd->proxy);
		else
			buf_printf(&b,
			           "%sMX %s is not matched by any mx pattern: add `mx = %s` before "
			           "enforce, or senders that enforce will not deliver to it",
			           b.len ? "; " : "", mx->list[i], mx->list[i]);
	}
	for (size_t k = 0; k < v->policy.n_mx; k++) {
		bool used = false;

		for (size_t i = 0; i < mx->n_list && !used; i++)
			used = policy_mx_match(v->policy.mx[k], mx->list[i]);
		if (used)
			continue;
		warn = true;
		buf_printf(&b, "%smx pattern %s matches no MX host: remove it unless it is planned",
		           b.len ? "; " : "", v->policy.mx[k]);
	}
	if (!fail && !warn)
		buf_printf(&b, "all %zu MX hosts are matched by the policy's mx patterns",
		           mx->n_list);
	setf(c,
	     fail   ? REPORT_FAIL
	     : warn ? REPORT_WARN
	            : REPORT_OK,
	     "%s", b.failed ? "out of memory" : b.data);
	buf_finish(&b);
}

static void check_tls(struct vdomain *v, const char *host, const struct mxhost *m)
{
	struct report_check *c = add_check(v, "mx-tls", host);

	if (m == NULL || m->addr.result != DNS_OK) {
		setf(c, REPORT_FAIL, "no address for MX %s: %s", host,
		     m != NULL ? m->addr.error : "too many MX hosts");
		return;
	}
	setf(c,
	     m->probe.status == SMTPTLS_OK     ? REPORT_OK
	     : m->probe.status == SMTPTLS_WARN ? REPORT_WARN
	                                       : REPORT_FAIL,
	     "%s%s%s%s", m->probe.detail, m->probe.address[0] ? " (" : "", m->probe.address,
	     m->probe.address[0] ? ")" : "");
}

static void check_tlsrpt(struct vdomain *v, const struct dns_query *q)
{
	struct report_check *c = add_check(v, "tlsrpt-txt", NULL);
	const char *rec = NULL;
	char err[200];
	size_t n = 0;
	struct buf want;

	if (q->result == DNS_FAIL) {
		setf(c, REPORT_FAIL, "no answer for _smtp._tls.%s: %s", v->cd->name, q->error);
		return;
	}
	for (size_t i = 0; q->result == DNS_OK && i < q->n_list; i++)
		if (txtrec_is_tlsrpt(q->list[i])) {
			rec = q->list[i];
			n++;
		}
	buf_init(&want);
	if (v->cd->n_tlsrpt > 0)
		records_tlsrpt_value(&want, (const char *const *)v->cd->tlsrpt, v->cd->n_tlsrpt);
	if (n == 0) {
		if (want.len > 0 && !want.failed)
			setf(c, REPORT_WARN,
			     "no TLS-RPT record: publish `_smtp._tls.%s. IN TXT \"%s\"` to hear of "
			     "senders' TLS failures",
			     v->cd->name, want.data);
		else
			setf(c, REPORT_WARN,
			     "no TLS-RPT record at _smtp._tls.%s: without one you do not hear of "
			     "senders' TLS failures (set tlsrpt in the config)",
			     v->cd->name);
	} else if (n > 1) {
		setf(c, REPORT_FAIL,
		     "%zu v=TLSRPTv1 records at _smtp._tls.%s: senders send no reports unless "
		     "there is exactly one",
		     n, v->cd->name);
	} else if (txtrec_tlsrpt(rec, err, sizeof(err)) < 0) {
		setf(c, REPORT_FAIL, "bad _smtp._tls.%s record \"%.200s\": %s (RFC 8460 3)",
		     v->cd->name, rec, err);
	} else if (want.len > 0 && !want.failed && strcmp(rec, want.data) != 0) {
		setf(c, REPORT_WARN, "\"%.200s\" is not the configured \"%.200s\"", rec, want.data);
	} else {
		setf(c, REPORT_OK, "\"%.300s\"", rec);
	}
	buf_finish(&want);
}

/* Mode none: from the journal in state_dir (read, never written), where v stands: since
 * when none is served and from when its records can go, as 'records' comments it. */
static void note_none(struct vdomain *v, struct journal *j)
{
	struct journal_entry e[JOURNAL_KEEP];
	bool live;
	size_t k;

	if (j == NULL || v->mode == NULL || strcmp(v->mode, "none") != 0 ||
	    (k = journal_history(j, v->cd->name, e, &live)) == 0)
		return;
	if (strcmp(e[k - 1].id, v->id) != 0)
		snprintf(
		    v->none_note, sizeof(v->none_note),
		    "state_dir's journal last saw id %s, not this config's %s: the server has "
		    "not served this policy yet, so nothing can be said of removing the records",
		    e[k - 1].id, v->id);
	else
		journal_summary(e, k, false, time(NULL), v->none_note, sizeof(v->none_note));
}

/* The hostname we send in EHLO: ours when it is a domain, else a name that says what we are. */
static void helo_name(char *out, size_t size)
{
	if (gethostname(out, size) != 0 || out[0] == 0 || strchr(out, '.') == NULL ||
	    strlen(out) >= size - 1)
		snprintf(out, size, "mtastsd-verify.invalid");
}

/* Selects the domains to verify into v; VERIFY_USAGE for a name not configured. */
static enum verify_result select_domains(const struct snapshot *s, const char *const *names,
                                         size_t n, struct vdomain *v, char *err, size_t err_size)
{
	for (size_t i = 0; i < n; i++) {
		char host[300];
		const struct tenant *t;
		size_t len = strlen(names[i]);
		int w;

		if (len > 0 && names[i][len - 1] == '.')
			len--;
		w = snprintf(host, sizeof(host), "mta-sts.%.*s", (int)len, names[i]);
		if (w < 0 || (size_t)w >= sizeof(host) ||
		    (t = snapshot_find(s, host, (size_t)w)) == NULL) {
			snprintf(err, err_size, "%s is not a domain of this configuration",
			         names[i]);
			return VERIFY_USAGE;
		}
		v[i].cd = tenant_domain(t);
	}
	for (size_t i = 0; n == 0 && i < snapshot_size(s); i++)
		v[i].cd = tenant_domain(snapshot_tenant(s, i));
	return VERIFY_OK;
}

enum verify_result verify_run(const struct snapshot *s, const char *const *names, size_t n_names,
                              const struct verify_opts *o, struct buf *out, char *err,
                              size_t err_size)
{
	const struct config *cfg = snapshot_config(s);
	size_t n = n_names ? n_names : snapshot_size(s), nq = 0, nj = 0, n_mx = 0, n_mx_max = 0;
	struct vdomain *v = calloc(n ? n : 1, sizeof(*v));
	struct report_domain *rep = calloc(n ? n : 1, sizeof(*rep));
	struct dns_query *q = calloc(n ? 6 * n : 1, sizeof(*q));
	struct fetch_job *jobs = calloc(n ? 2 * n : 1, sizeof(*jobs));
	struct mxhost *mx = NULL;
	struct dns *dns = NULL;
	struct fetches f[2] = {{0}};
	pthread_t fetcher[2];
	bool fetching[2] = {false, false};
	size_t n_policy_jobs;
	struct journal *jr = NULL;
	long long deadline = now_ms() + (long long)o->timeout * 1000;
	unsigned left;
	char helo[256];
	enum verify_result ret = VERIFY_FAILED;

	if (v == NULL || rep == NULL || q == NULL || jobs == NULL) {
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	if (select_domains(s, names, n_names, v, err, err_size) == VERIFY_USAGE) {
		ret = VERIFY_USAGE;
		goto out;
	}
	dns = dns_create(cfg->dns_server, o->timeout / 4 ? o->timeout / 4 : 1, err, err_size);
	if (dns == NULL)
		goto out;

	/* DNS, all at once: the records, the MX, and the policy hosts' addresses. */
	for (size_t i = 0; i < n; i++) {
		const struct config_domain *cd = v[i].cd;
		const struct tenant *t = snapshot_find(s, cd->host, strlen(cd->host));

		v[i].doc = tenant_doc(t, time(NULL));
		policy_init(&v[i].policy);
		v[i].q_prov_sts = v[i].q_prov_host = v[i].j_policy = v[i].j_provider = NONE;
		snprintf(v[i].n_sts, sizeof(v[i].n_sts), "_mta-sts.%s", cd->name);
		snprintf(v[i].n_tlsrpt, sizeof(v[i].n_tlsrpt), "_smtp._tls.%s", cd->name);
		v[i].q_sts = add_query(q, &nq, DNS_TXT, v[i].n_sts);
		v[i].q_tlsrpt = add_query(q, &nq, DNS_TXT, v[i].n_tlsrpt);
		v[i].q_mx = add_query(q, &nq, DNS_MX, cd->name);
		v[i].q_host = add_query(q, &nq, DNS_ADDRS, cd->host);
		if (cd->proxy != NULL) {
			snprintf(v[i].n_prov_sts, sizeof(v[i].n_prov_sts), "_mta-sts.%s",
			         cd->proxy);
			snprintf(v[i].n_prov_host, sizeof(v[i].n_prov_host), "mta-sts.%s",
			         cd->proxy);
			v[i].q_prov_sts = add_query(q, &nq, DNS_STS_ID, v[i].n_prov_sts);
			if (v[i].doc == NULL)
				v[i].q_prov_host = add_query(q, &nq, DNS_ADDRS, v[i].n_prov_host);
		}
	}
	dns_run(dns, q, nq);

	/* The policy hosts, and the providers without a kept copy (fetched as the server
	 * would: upstream_port, upstream_ca), in the background while the MX are probed. */
	for (size_t i = 0; i < n; i++) {
		const struct dns_query *h = &q[v[i].q_host];

		snprintf(v[i].url, sizeof(v[i].url), "https://%s:%u/.well-known/mta-sts.txt",
		         v[i].cd->host, o->https_port);
		if (h->result != DNS_OK)
			continue;
		snprintf(v[i].resolve, sizeof(v[i].resolve), "%s:%u:%s", v[i].cd->host,
		         o->https_port, h->addrs);
		jobs[nj].url = v[i].url;
		jobs[nj].resolve = v[i].resolve;
		v[i].j_policy = nj++;
	}
	n_policy_jobs = nj;
	for (size_t i = 0; i < n; i++) {
		const struct dns_query *h = v[i].q_prov_host != NONE ? &q[v[i].q_prov_host] : NULL;

		if (h == NULL || h->result != DNS_OK)
			continue;
		snprintf(v[i].prov_url, sizeof(v[i].prov_url),
		         "https://%s:%u/.well-known/mta-sts.txt", v[i].n_prov_host,
		         cfg->upstream_port);
		snprintf(v[i].prov_resolve, sizeof(v[i].prov_resolve), "%s:%u:%s", v[i].n_prov_host,
		         cfg->upstream_port, h->addrs);
		jobs[nj].url = v[i].prov_url;
		jobs[nj].resolve = v[i].prov_resolve;
		v[i].j_provider = nj++;
	}
	left = (unsigned)((deadline - now_ms()) / 1000);
	f[0].jobs = jobs;
	f[0].n = n_policy_jobs;
	f[0].opts.ca_file = o->ca_file;
	f[1].jobs = jobs + n_policy_jobs;
	f[1].n = nj - n_policy_jobs;
	f[1].opts.ca_file = cfg->upstream_ca;
	for (int k = 0; k < 2; k++) {
		f[k].opts.timeout = left ? left : 1;
		f[k].opts.connect_timeout = f[k].opts.timeout < 5 ? f[k].opts.timeout : 5;
		if (f[k].n == 0)
			continue;
		if (pthread_create(&fetcher[k], NULL, fetch_thread, &f[k]) == 0)
			fetching[k] = true;
		else
			fetch_run(f[k].jobs, f[k].n, &f[k].opts);
	}

	/* Every distinct MX host: its addresses, then STARTTLS, all at once. */
	for (size_t i = 0; i < n; i++)
		n_mx_max += q[v[i].q_mx].n_list;
	if ((mx = calloc(n_mx_max ? n_mx_max : 1, sizeof(*mx))) == NULL) {
		snprintf(err, err_size, "out of memory");
		goto join;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < q[v[i].q_mx].n_list; k++) {
			const char *h = q[v[i].q_mx].list[k];
			bool seen = h[0] == 0;

			for (size_t m = 0; m < n_mx && !seen; m++)
				seen = strcmp(mx[m].host, h) == 0;
			if (seen)
				continue;
			mx[n_mx].host = h;
			mx[n_mx].addr.kind = DNS_ADDRS;
			mx[n_mx].addr.name = h;
			n_mx++;
		}
	{
		struct dns_query *aq = calloc(n_mx ? n_mx : 1, sizeof(*aq));
		struct smtptls_probe *pr = calloc(n_mx ? n_mx : 1, sizeof(*pr));
		struct smtptls_opts so = {o->ca_file, o->smtp_port, helo, deadline, PROBE_THREADS};
		size_t np = 0;

		helo_name(helo, sizeof(helo));
		if (aq == NULL || pr == NULL) {
			free(aq);
			free(pr);
			snprintf(err, err_size, "out of memory");
			goto join;
		}
		for (size_t m = 0; m < n_mx; m++)
			aq[m] = mx[m].addr;
		dns_run(dns, aq, n_mx);
		for (size_t m = 0; m < n_mx; m++) {
			mx[m].addr = aq[m];
			if (aq[m].result != DNS_OK)
				continue;
			pr[np].host = mx[m].host;
			pr[np].addrs = mx[m].addr.addrs;
			np++;
		}
		smtptls_run(pr, np, &so);
		for (size_t m = 0, k = 0; m < n_mx; m++)
			if (mx[m].addr.result == DNS_OK)
				mx[m].probe = pr[k++];
		free(aq);
		free(pr);
	}
join:
	for (int k = 0; k < 2; k++)
		if (fetching[k])
			pthread_join(fetcher[k], NULL);
	if (mx == NULL)
		goto out;

	/* Judge. */
	if (cfg->state_dir != NULL)
		jr = journal_open(cfg->state_dir, false);
	for (size_t i = 0; i < n; i++) {
		const struct dns_query *mq = &q[v[i].q_mx];

		settle_expected(&v[i], v[i].j_provider != NONE ? &jobs[v[i].j_provider] : NULL);
		v[i].rep = &rep[i];
		rep[i].domain = v[i].cd->name;
		rep[i].proxy = v[i].cd->proxy;
		rep[i].mode = v[i].mode;
		note_none(&v[i], jr);
		rep[i].none_note = v[i].none_note[0] ? v[i].none_note : NULL;
		if ((rep[i].checks = calloc(4 + mq->n_list, sizeof(*rep[i].checks))) == NULL) {
			snprintf(err, err_size, "out of memory");
			goto out;
		}
		check_sts(&v[i], &q[v[i].q_sts],
		          v[i].q_prov_sts != NONE ? &q[v[i].q_prov_sts] : NULL);
		check_fetch(&v[i], &q[v[i].q_host],
		            v[i].j_policy != NONE ? &jobs[v[i].j_policy] : NULL);
		check_coverage(&v[i], mq);
		for (size_t k = 0; k < mq->n_list; k++) {
			const struct mxhost *m = NULL;

			if (mq->list[k][0] == 0)
				continue;
			for (size_t j = 0; j < n_mx && m == NULL; j++)
				if (strcmp(mx[j].host, mq->list[k]) == 0)
					m = &mx[j];
			check_tls(&v[i], mq->list[k], m);
		}
		check_tlsrpt(&v[i], &q[v[i].q_tlsrpt]);
		report_judge(&rep[i]);
	}
	if ((o->json ? report_json(rep, n, out) : report_text(rep, n, out)) < 0) {
		snprintf(err, err_size, "out of memory");
		goto out;
	}
	ret = VERIFY_OK;
	for (size_t i = 0; i < n; i++)
		if (!rep[i].ok)
			ret = VERIFY_FAILED;
out:
	for (size_t i = 0; v != NULL && i < n; i++) {
		doc_unref(v[i].doc);
		free(v[i].live_body);
		policy_finish(&v[i].policy);
	}
	for (size_t i = 0; q != NULL && i < nq; i++)
		dns_query_finish(&q[i]);
	for (size_t i = 0; jobs != NULL && i < nj; i++)
		free(jobs[i].body);
	for (size_t i = 0; rep != NULL && i < n; i++)
		free(rep[i].checks);
	free(rep);
	/* Opened read only and not changed: closing writes nothing. */
	journal_close(jr, false, 0);
	free(mx);
	free(jobs);
	free(q);
	free(v);
	dns_destroy(dns);
	return ret;
}
