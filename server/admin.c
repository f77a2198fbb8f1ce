/* admin: the plain-HTTP admin listener: /metrics, /healthz, /records, /status */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "acme.h"
#include "admin.h"
#include "admission.h"
#include "buf.h"
#include "hash.h"
#include "journal.h"
#include "log.h"
#include "reports.h"
#include "snapshot.h"
#include "stats.h"
#include "upstream.h"

/* Above this many domains, per-domain series and rows cover only domains with traffic
 * (and /status a page of them), so that a million tenants do not make megabyte pages. */
#define PER_DOMAIN_MAX 10000
#define STATUS_ROWS_MAX 1000
/* admission of the admin listener */
#define ADMIN_CONNECTIONS 64
#define ADMIN_PER_IP 16
#define ADMIN_HEAD_TIMEOUT 5
#define ADMIN_IDLE_TIMEOUT 10

struct admin {
	struct MHD_Daemon *daemon;
	int fd;
	struct acme *acme;
	struct journal *journal;
	struct admission *adm;
	struct reports *reports;
};

static void fmt_time(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (t <= 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(out, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "-");
}

/* Calls fn once per distinct provider of s. */
static void each_upstream(const struct snapshot *s, void (*fn)(struct upstream *, void *),
                          void *arg)
{
	struct hash seen;

	if (hash_init(&seen, 16) < 0)
		return;
	for (size_t i = 0; i < snapshot_size(s); i++) {
		const struct tenant *t = snapshot_tenant(s, i);
		struct upstream *up = tenant_upstream(t);

		if (up == NULL || hash_put(&seen, tenant_domain(t)->proxy, NULL, NULL) != 0)
			continue;
		fn(up, arg);
	}
	hash_finish(&seen);
}

static bool domain_listed(const struct snapshot *s, const struct tenant *t)
{
	return snapshot_size(s) <= PER_DOMAIN_MAX || stats_find(tenant_domain(t)->name) != NULL;
}

/* The provider metric families, each printed as one group (the text format wants every
 * line of a metric together, under its own TYPE). */
enum upstream_family { UPSTREAM_FETCHES, UPSTREAM_VALID, UPSTREAM_EXPIRY, UPSTREAM_FAMILIES };

static const char *const upstream_family_head[UPSTREAM_FAMILIES] = {
    "# HELP mtastsd_upstream_fetches_total Provider policy fetches by result.\n"
    "# TYPE mtastsd_upstream_fetches_total counter\n",
    "# HELP mtastsd_upstream_policy_valid Whether a valid copy of the provider's policy is "
    "held.\n# TYPE mtastsd_upstream_policy_valid gauge\n",
    "# HELP mtastsd_upstream_policy_expiry_timestamp_seconds When the held copy runs out "
    "(0: none).\n# TYPE mtastsd_upstream_policy_expiry_timestamp_seconds gauge\n",
};

struct upstream_metric {
	struct buf *b;
	enum upstream_family family;
};

static void metric_upstream(struct upstream *up, void *arg)
{
	struct upstream_metric *m = arg;
	struct upstream_info in;

	upstream_info(up, time(NULL), &in);
	switch (m->family) {
	case UPSTREAM_FETCHES:
		buf_printf(m->b,
		           "mtastsd_upstream_fetches_total{provider=\"%s\",result=\"ok\"} %lu\n"
		           "mtastsd_upstream_fetches_total{provider=\"%s\",result=\"error\"} %lu\n",
		           in.provider, in.fetches_ok, in.provider, in.fetches_failed);
		break;
	case UPSTREAM_VALID:
		buf_printf(m->b, "mtastsd_upstream_policy_valid{provider=\"%s\"} %d\n", in.provider,
		           in.has_policy ? 1 : 0);
		break;
	default:
		buf_printf(m->b,
		           "mtastsd_upstream_policy_expiry_timestamp_seconds"
		           "{provider=\"%s\"} %lld\n",
		           in.provider, (long long)in.expires_at);
		break;
	}
}

/* The certificate families: domains by state, degraded ones by reason and by name. */
static void metrics_certificates(struct snapshot *s, struct buf *b, time_t now)
{
	struct certcache *cc = snapshot_certs(s);
	size_t states[CERT_STATES], faults[TLS_FAULTS];

	if (cc == NULL)
		return;
	certcache_count(cc, states, faults);
	buf_puts(b, "# HELP mtastsd_certificate_domains Domains by certificate state.\n"
	            "# TYPE mtastsd_certificate_domains gauge\n");
	for (int k = 0; k < CERT_STATES; k++)
		buf_printf(b, "mtastsd_certificate_domains{state=\"%s\"} %zu\n",
		           cert_state_names[k], states[k]);
	buf_puts(b, "# HELP mtastsd_certificate_degraded_domains Degraded domains by reason.\n"
	            "# TYPE mtastsd_certificate_degraded_domains gauge\n");
	for (int k = TLS_FAULT_NONE + 1; k < TLS_FAULTS; k++)
		buf_printf(b, "mtastsd_certificate_degraded_domains{reason=\"%s\"} %zu\n",
		           tls_fault_names[k], faults[k]);
	buf_puts(b, "# HELP mtastsd_certificate_degraded Degraded domains by name (value: since, "
	            "Unix time).\n# TYPE mtastsd_certificate_degraded gauge\n");
	for (size_t i = 0; i < snapshot_size(s) && states[CERT_DEGRADED] > 0; i++) {
		const struct tenant *t = snapshot_tenant(s, i);
		struct cert_info ci;

		certcache_info(cc, tenant_index(t), now, &ci);
		if (ci.state == CERT_DEGRADED)
			buf_printf(b,
			           "mtastsd_certificate_degraded{domain=\"%s\",reason=\"%s\","
			           "serving=\"%s\"} %lld\n",
			           tenant_domain(t)->name, tls_fault_names[ci.fault],
			           ci.not_after != 0 ? "previous" : "none", (long long)ci.since);
	}
	buf_puts(b, "# HELP mtastsd_certificate_expiry_timestamp_seconds Leaf notAfter by domain.\n"
	            "# TYPE mtastsd_certificate_expiry_timestamp_seconds gauge\n");
	for (size_t i = 0; i < snapshot_size(s); i++) {
		const struct tenant *t = snapshot_tenant(s, i);
		struct cert_info ci;

		if (!domain_listed(s, t))
			continue;
		certcache_info(cc, tenant_index(t), now, &ci);
		if (ci.not_after != 0)
			buf_printf(
			    b, "mtastsd_certificate_expiry_timestamp_seconds{domain=\"%s\"} %lld\n",
			    tenant_domain(t)->name, (long long)ci.not_after);
	}
}

static void metrics_admission(void *arg, struct admission *a, const char *name)
{
	for (int k = 0; k < ADMISSION_REASONS; k++)
		buf_printf(arg,
		           "mtastsd_connections_shed_total{listener=\"%s\",reason=\"%s\"} %lu\n",
		           name, admission_reason_names[k], admission_count(a, k));
}

static void metrics_open(void *arg, struct admission *a, const char *name)
{
	buf_printf(arg, "mtastsd_connections_open{listener=\"%s\"} %u\n", name, admission_open(a));
}

static void metrics_acme(struct acme *a, struct buf *b)
{
	struct acme_counts n;

	acme_count(a, &n);
	buf_printf(b,
	           "# HELP mtastsd_acme_orders_total ACME orders since start by result.\n"
	           "# TYPE mtastsd_acme_orders_total counter\n"
	           "mtastsd_acme_orders_total{result=\"issued\"} %llu\n"
	           "mtastsd_acme_orders_total{result=\"failed\"} %llu\n"
	           "# HELP mtastsd_acme_names Names whose certificate ACME keeps.\n"
	           "# TYPE mtastsd_acme_names gauge\nmtastsd_acme_names %zu\n"
	           "# HELP mtastsd_acme_orders_in_progress ACME orders being placed now.\n"
	           "# TYPE mtastsd_acme_orders_in_progress gauge\n"
	           "mtastsd_acme_orders_in_progress %zu\n",
	           n.issued, n.failed, n.names, n.busy);
}

static void render_metrics(struct admin *a, struct snapshot *s, struct buf *b)
{
	time_t now = time(NULL);

	buf_puts(b, "# HELP mtastsd_requests_total Policy host requests by domain and status.\n"
	            "# TYPE mtastsd_requests_total counter\n");
	for (size_t i = 0; i < snapshot_size(s); i++) {
		const struct tenant *t = snapshot_tenant(s, i);
		const char *name = tenant_domain(t)->name;
		struct stats_view v;

		stats_read(stats_find(name), &v);
		for (int k = 0; k < STATS_NSTATUS; k++)
			if (v.by_status[k] != 0 || (k == STATS_200 && domain_listed(s, t)))
				buf_printf(
				    b, "mtastsd_requests_total{domain=\"%s\",status=\"%u\"} %lu\n",
				    name, stats_status_codes[k], v.by_status[k]);
	}
	buf_puts(b, "# HELP mtastsd_policy_fetches_total Policies served (200) by domain and id.\n"
	            "# TYPE mtastsd_policy_fetches_total counter\n");
	for (size_t i = 0; i < snapshot_size(s); i++) {
		const char *name = tenant_domain(snapshot_tenant(s, i))->name;
		struct stats_view v;

		stats_read(stats_find(name), &v);
		for (size_t k = 0; k < v.n_ids; k++)
			buf_printf(b, "mtastsd_policy_fetches_total{domain=\"%s\",id=\"%s\"} %lu\n",
			           name, v.ids[k].id, v.ids[k].count);
	}
	buf_puts(b, "# HELP mtastsd_handshakes_total TLS handshakes by result.\n"
	            "# TYPE mtastsd_handshakes_total counter\n");
	for (int k = 0; k < STATS_HS_N; k++)
		buf_printf(b, "mtastsd_handshakes_total{result=\"%s\"} %lu\n",
		           stats_handshake_names[k], stats_handshakes(k));
	buf_puts(b, "# HELP mtastsd_handshake_failures_total Failed TLS handshakes by reason.\n"
	            "# TYPE mtastsd_handshake_failures_total counter\n");
	for (int k = STATS_HS_UNKNOWN_SNI; k < STATS_HS_N; k++)
		buf_printf(b, "mtastsd_handshake_failures_total{reason=\"%s\"} %lu\n",
		           stats_handshake_names[k], stats_handshakes(k));
	buf_puts(b, "# HELP mtastsd_connections_shed_total Connections closed or refused by "
	            "admission, by listener and reason.\n"
	            "# TYPE mtastsd_connections_shed_total counter\n");
	admission_each(metrics_admission, b);
	buf_puts(b, "# HELP mtastsd_connections_open Connections open now, by listener.\n"
	            "# TYPE mtastsd_connections_open gauge\n");
	admission_each(metrics_open, b);
	if (a->reports != NULL)
		reports_metrics(a->reports, b);
	buf_printf(b,
	           "# HELP mtastsd_reloads_total Configuration reloads by result.\n"
	           "# TYPE mtastsd_reloads_total counter\n"
	           "mtastsd_reloads_total{result=\"ok\"} %lu\n"
	           "mtastsd_reloads_total{result=\"error\"} %lu\n",
	           stats_reloads(true), stats_reloads(false));
	buf_printf(b,
	           "# HELP mtastsd_domains Domains in the running configuration.\n"
	           "# TYPE mtastsd_domains gauge\nmtastsd_domains %zu\n",
	           snapshot_size(s));
	buf_puts(b, "# HELP mtastsd_policy_info The policy served per domain (value 1).\n"
	            "# TYPE mtastsd_policy_info gauge\n");
	for (size_t i = 0; i < snapshot_size(s); i++) {
		const struct tenant *t = snapshot_tenant(s, i);
		struct doc *d;

		if (!domain_listed(s, t) || (d = tenant_doc(t, now)) == NULL)
			continue;
		buf_printf(b, "mtastsd_policy_info{domain=\"%s\",id=\"%s\",mode=\"%s\"} 1\n",
		           tenant_domain(t)->name, d->id, d->mode);
		doc_unref(d);
	}
	metrics_certificates(s, b, now);
	metrics_acme(a->acme, b);
	for (int k = 0; k < UPSTREAM_FAMILIES; k++) {
		struct upstream_metric m = {b, (enum upstream_family)k};

		buf_puts(b, upstream_family_head[k]);
		each_upstream(s, metric_upstream, &m);
	}
}

static void html_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			buf_puts(b, "&lt;");
			break;
		case '>':
			buf_puts(b, "&gt;");
			break;
		case '&':
			buf_puts(b, "&amp;");
			break;
		case '"':
			buf_puts(b, "&quot;");
			break;
		default:
			buf_append(b, s, 1);
		}
	}
}

static const char status_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>mtastsd status</title>\n<style>\n"
    "body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60em;padding:.5em}\n"
    "section{border:1px solid #ccc;border-radius:6px;margin:.6em 0;padding:.4em .7em}\n"
    "h1{font-size:1.3em}h2{font-size:1.1em;margin:.2em 0;overflow-wrap:anywhere}\n"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em .8em;margin:.3em 0}\n"
    "dt{color:#555}dd{margin:0;overflow-wrap:anywhere}code{font-size:.9em}\n"
    "ul{margin:.2em 0;padding-left:1.2em}.bad{color:#b00}.ok{color:#070}\n"
    "section.degraded{border-color:#b00}\n"
    "</style></head><body>\n";

/* The certificate row of a domain: degraded ones say why, since when, and what is
 * presented meanwhile. */
static void status_certificate(struct buf *b, const struct cert_info *ci, time_t now)
{
	char when[32], since[32];

	fmt_time(ci->not_after, when, sizeof(when));
	if (ci->state == CERT_DEGRADED) {
		fmt_time(ci->since, since, sizeof(since));
		buf_printf(b, "<dt>certificate</dt><dd class=\"bad\">degraded (%s) since %s: ",
		           tls_fault_names[ci->fault], since);
		html_escape(b, ci->detail);
		if (ci->not_after != 0)
			buf_printf(b, "; presenting the previous certificate, valid until %s",
			           when);
		else
			buf_puts(b, "; no handshake");
		buf_puts(b, "</dd>");
	} else if (ci->state == CERT_LAZY) {
		buf_puts(b, "<dt>certificate</dt><dd>loaded on the first handshake</dd>");
	} else if (ci->not_after != 0) {
		buf_printf(b, "<dt>certificate</dt><dd class=\"%s\">expires %s</dd>",
		           ci->not_after - now < 14 * 86400 ? "bad" : "ok", when);
	}
}

/* The lifecycle line: since when the policy is served, when a none one can go. */
static void status_journal(struct buf *b, struct journal *j, const char *domain, time_t now)
{
	struct journal_entry v[JOURNAL_KEEP];
	char text[300];
	bool live;
	size_t n = j != NULL ? journal_history(j, domain, v, &live) : 0;

	if (n == 0)
		return;
	journal_summary(v, n, live, now, text, sizeof(text));
	buf_puts(b, "<dt>lifecycle</dt><dd>");
	html_escape(b, text);
	if (n > 1) {
		buf_puts(b, "<details><summary>earlier policies</summary><ul>");
		for (size_t k = n - 1; k-- > 0;) {
			char first[32], last[32];

			fmt_time(v[k].first, first, sizeof(first));
			fmt_time(v[k].last, last, sizeof(last));
			buf_printf(b, "<li><code>%s</code> %s, max_age %" PRIu32 ": %s to %s</li>",
			           v[k].id, policy_mode_name(v[k].mode), v[k].max_age, first, last);
		}
		buf_puts(b, "</ul></details>");
	}
	buf_puts(b, "</dd>");
}

/* The TLS reports of the last days and, for a testing domain, whether they say enforce is
 * safe. Nothing when there is no report store. */
static void status_reports(struct buf *b, struct reports *r, const struct config_domain *cd,
                           const char *mode)
{
	struct reports_glance g;
	char text[512];

	if (r == NULL || !reports_glance(r, cd->name, &g))
		return;
	reports_glance_text(&g, text, sizeof(text));
	buf_printf(b, "<dt>TLS reports</dt><dd class=\"%s\">", g.failed != 0 ? "bad" : "ok");
	html_escape(b, text);
	if (cd->tlsrpt_self) {
		buf_puts(b, " (received at <code>https://");
		html_escape(b, cd->host);
		buf_puts(b, CONFIG_TLSRPT_PATH "</code>)");
	}
	buf_puts(b, "</dd>");
	if (g.n_per_day != 0) {
		buf_puts(b, "<dt>by day</dt><dd>");
		for (size_t i = 0; i < g.n_per_day; i++)
			buf_printf(
			    b, "%s<span class=\"%s\">%s: %" PRIu64 " ok, %" PRIu64 " failed</span>",
			    i ? "; " : "", g.per_day[i].failed != 0 ? "bad" : "ok",
			    g.per_day[i].day, g.per_day[i].successful, g.per_day[i].failed);
		buf_puts(b, "</dd>");
	}
	if (mode != NULL && strcmp(mode, "testing") == 0) {
		bool ready = reports_verdict(&g, text, sizeof(text));

		buf_printf(b, "<dt>enforce</dt><dd class=\"%s\">", ready ? "ok" : "bad");
		html_escape(b, text);
		buf_puts(b, "</dd>");
	}
}

static void status_domain(struct buf *b, struct snapshot *s, const struct tenant *t,
                          const struct cert_info *ci, struct journal *j, struct reports *r,
                          time_t now)
{
	const struct config_domain *cd = tenant_domain(t);
	struct upstream *up = tenant_upstream(t);
	struct stats_view v;
	struct doc *d = tenant_doc(t, now);
	char when[32];

	stats_read(stats_find(cd->name), &v);
	buf_printf(b, "<section class=\"domain%s\"><h2>",
	           ci != NULL && ci->state == CERT_DEGRADED ? " degraded" : "");
	html_escape(b, cd->name);
	buf_puts(b, "</h2><dl><dt>mode</dt><dd>");
	html_escape(b, d != NULL ? d->mode : "-");
	buf_puts(b, "</dd><dt>id</dt><dd><code>");
	html_escape(b, d != NULL ? d->id : "none: answering 503");
	buf_puts(b, "</code></dd>");
	if (ci != NULL)
		status_certificate(b, ci, now);
	status_journal(b, j, cd->name, now);
	status_reports(b, r, cd, d != NULL ? d->mode : NULL);
	if (up != NULL) {
		struct upstream_info in;
		char fetched[32];

		upstream_info(up, now, &in);
		fmt_time(in.fetched_at, fetched, sizeof(fetched));
		fmt_time(in.expires_at, when, sizeof(when));
		buf_printf(b, "<dt>provider</dt><dd class=\"%s\">", in.has_policy ? "ok" : "bad");
		html_escape(b, in.provider);
		buf_printf(b, ": fetched %s, valid until %s, provider id ", fetched, when);
		html_escape(b, in.txt_id[0] ? in.txt_id : "unknown");
		if (in.failures > 0) {
			buf_printf(b, ", %u failed fetches, last: ", in.failures);
			html_escape(b, in.last_error);
		}
		buf_puts(b, "</dd>");
	}
	buf_puts(b, "<dt>requests</dt><dd>");
	for (int k = 0; k < STATS_NSTATUS; k++)
		buf_printf(b, "%s%u: %lu", k ? ", " : "", stats_status_codes[k], v.by_status[k]);
	buf_puts(b, "</dd><dt>ids served</dt><dd>");
	for (size_t k = 0; k < v.n_ids; k++)
		buf_printf(b, "%s<code>%s</code>: %lu", k ? ", " : "", v.ids[k].id, v.ids[k].count);
	buf_puts(b, v.n_ids ? "</dd>" : "none yet</dd>");
	buf_puts(b, "</dl>");
	if (v.n_recent > 0) {
		buf_puts(b, "<details><summary>recent fetchers</summary><ul>");
		for (size_t k = 0; k < v.n_recent; k++) {
			fmt_time(v.recent[k].at, when, sizeof(when));
			buf_printf(b, "<li>%s ", when);
			html_escape(b, v.recent[k].client);
			buf_printf(b, " TLS %s <code>", v.recent[k].tls);
			html_escape(b, v.recent[k].id);
			buf_puts(b, "</code></li>");
		}
		buf_puts(b, "</ul></details>");
	}
	buf_puts(b, "</section>\n");
	doc_unref(d);
}

/* Degraded domains first (every one of them, up to the page's limit), then the others. */
static void render_status(struct snapshot *s, struct journal *j, struct reports *r,
                          const char *only, struct buf *b)
{
	struct certcache *cc = snapshot_certs(s);
	size_t n = snapshot_size(s), shown = 0, states[CERT_STATES], faults[TLS_FAULTS];
	time_t now = time(NULL);
	char when[32];

	fmt_time(now, when, sizeof(when));
	buf_puts(b, status_head);
	buf_printf(b, "<h1>mtastsd: %zu domains</h1><p>", n);
	html_escape(b, snapshot_config(s)->file);
	buf_printf(b,
	           " at %s. Handshakes: %lu full, %lu resumed, %lu unknown SNI, %lu failed.</p>\n",
	           when, stats_handshakes(STATS_HS_OK), stats_handshakes(STATS_HS_RESUMED),
	           stats_handshakes(STATS_HS_UNKNOWN_SNI) + stats_handshakes(STATS_HS_NO_SNI),
	           stats_handshakes(STATS_HS_NO_HELLO) + stats_handshakes(STATS_HS_OLD_VERSION) +
	               stats_handshakes(STATS_HS_CLIENT_ALERT) + stats_handshakes(STATS_HS_FAILED));
	if (cc != NULL) {
		certcache_count(cc, states, faults);
		buf_printf(
		    b,
		    "<p class=\"%s\">Certificates: %zu degraded, %zu ok, %zu not loaded yet.</p>\n",
		    states[CERT_DEGRADED] ? "bad" : "ok", states[CERT_DEGRADED], states[CERT_OK],
		    states[CERT_LAZY]);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n && shown < STATUS_ROWS_MAX; i++) {
			const struct tenant *t = snapshot_tenant(s, i);
			const char *name = tenant_domain(t)->name;
			struct cert_info ci;
			bool degraded;

			if (cc != NULL)
				certcache_info(cc, tenant_index(t), now, &ci);
			degraded = cc != NULL && ci.state == CERT_DEGRADED;
			if (degraded != (pass == 0))
				continue;
			if (only != NULL ? strcasecmp(only, name) != 0
			                 : !degraded && !domain_listed(s, t))
				continue;
			status_domain(b, s, t, cc != NULL ? &ci : NULL, j, r, now);
			shown++;
		}
	}
	if (shown < n)
		buf_printf(b,
		           "<p>%zu of %zu domains shown; add <code>?domain=NAME</code> for one."
		           "</p>\n",
		           shown, n);
	buf_puts(b, "</body></html>\n");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             struct buf *b)
{
	size_t len;
	char *data = buf_steal(b, &len);
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (data == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The admission state of a connection (its socket context), when it has one. */
static void admitted(struct admin *a, struct MHD_Connection *c,
                     void (*fn)(struct admission *, struct admission_conn *))
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	if (info != NULL && info->socket_context != NULL)
		fn(a->adm, info->socket_context);
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct admin *a = cls;

	(void)addrlen;
	return admission_accept(a->adm, addr) ? MHD_YES : MHD_NO;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
	struct admin *a = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *addr =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		struct admission_conn *ac = fd != NULL ? calloc(1, sizeof(*ac)) : NULL;

		if (ac != NULL)
			admission_start(a->adm, ac, fd->connect_fd,
			                addr != NULL ? addr->client_addr : NULL);
		*socket_context = ac;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
		admission_end(a->adm, *socket_context);
		free(*socket_context);
		*socket_context = NULL;
	}
}

static void request_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
	(void)req_cls;
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		admitted(cls, c, admission_idle);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
	static int seen;
	struct admin *a = cls;
	struct snapshot *s;
	struct buf b;
	enum MHD_Result ret;
	unsigned status = 200;
	const char *type = "text/plain; charset=utf-8";

	if (*req_cls == NULL) {
		*req_cls = &seen;
		return MHD_YES;
	}
	/* A request body is read and dropped; the answer comes on the last call (MHD refuses
	 * a response queued while upload data is pending, and closes the connection). */
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	admitted(a, c, admission_head);
	buf_init(&b);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		buf_puts(&b, "Method Not Allowed\n");
		return reply(c, 405, type, &b);
	}
	s = snapshot_acquire();
	if (strcmp(url, "/healthz") == 0) {
		status = s != NULL ? 200 : 503;
		buf_puts(&b, s != NULL ? "ok\n" : "no configuration loaded\n");
	} else if (s == NULL) {
		status = 503;
		buf_puts(&b, "no configuration loaded\n");
	} else if (strcmp(url, "/metrics") == 0) {
		type = "text/plain; version=0.0.4; charset=utf-8";
		render_metrics(a, s, &b);
	} else if (strcmp(url, "/records") == 0) {
		const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
		bool json = f != NULL && strcmp(f, "json") == 0;

		if (json)
			type = "application/json";
		if (snapshot_records(s, NULL, 0, json, &b) < 0)
			status = 500;
	} else if (strcmp(url, "/status") == 0 || strcmp(url, "/") == 0) {
		type = "text/html; charset=utf-8";
		render_status(s, a->journal, a->reports,
		              MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "domain"), &b);
	} else {
		status = 404;
		buf_puts(&b, "Not Found: /metrics /healthz /records /status\n");
	}
	snapshot_unref(s);
	if (b.len == 0)
		buf_puts(&b, "");
	ret = reply(c, status, type, &b);
	buf_finish(&b);
	return ret;
}

static void admin_log(void *cls, const char *fmt, va_list ap)
{
	log_vmsg(LOG_LEVEL_WARNING, fmt, ap);
}

struct admin *admin_start(int fd, struct acme *acme, struct journal *journal,
                          struct reports *reports)
{
	struct admin *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		close(fd);
		return NULL;
	}
	a->fd = fd;
	a->acme = acme;
	a->journal = journal;
	a->reports = reports;
	/* The admission rules of the policy port, tighter: a probe or a scrape is one quick
	 * request, and a few slow clients must not make /healthz time out. */
	a->adm = admission_create(&(struct admission_opts){
	    .name = "admin",
	    .max_connections = ADMIN_CONNECTIONS,
	    .per_ip = ADMIN_PER_IP,
	    .head_timeout = ADMIN_HEAD_TIMEOUT,
	    .idle_timeout = ADMIN_IDLE_TIMEOUT,
	});
	if (a->adm != NULL)
		a->daemon = MHD_start_daemon(
		    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
		        MHD_USE_ITC,
		    0, accept_policy, a, handle, a, MHD_OPTION_EXTERNAL_LOGGER, admin_log, NULL,
		    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)ADMIN_IDLE_TIMEOUT, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)(2 * ADMIN_CONNECTIONS), MHD_OPTION_NOTIFY_CONNECTION,
		    notify_connection, a, MHD_OPTION_NOTIFY_COMPLETED, request_completed, a,
		    MHD_OPTION_END);
	if (a->daemon == NULL) {
		log_err("cannot start the admin listener");
		admission_destroy(a->adm);
		close(fd);
		free(a);
		return NULL;
	}
	return a;
}

void admin_stop(struct admin *a)
{
	MHD_socket fd;

	if (a == NULL)
		return;
	fd = MHD_quiesce_daemon(a->daemon);
	MHD_stop_daemon(a->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	admission_destroy(a->adm); /* every connection has ended with the daemon */
	free(a);
}
