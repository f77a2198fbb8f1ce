/* http_report: TLS reports posted to /tlsrpt (RFC 8460 §5.3): the head checked, the body
 * read under caps and a budget, then stored by a reports worker while the connection is
 * suspended, and answered with the outcome */
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "host.h"
#include "http_conn.h"
#include "log.h"
#include "reports.h"
#include "tlsrpt.h"

/* A TLS report posted to /tlsrpt: its body as it comes in, then its job while a worker
 * reads and stores it (the connection suspended meanwhile), then the answer. */
struct upload {
	struct reports_job job;
	struct http *http;
	struct MHD_Connection *c;
	struct buf body;
	size_t max;      /* of the body, by its media type */
	size_t reserved; /* of the body budget */
	bool refused;    /* too large, or no budget: the rest is read and dropped */
	enum reports_outcome why;
	bool submitted;
	atomic_bool done; /* the worker is through: the job's outcome is set */
};

void http_report_free(void *upload)
{
	struct upload *up = upload;

	if (up == NULL)
		return;
	if (up->reserved != 0)
		reports_release(up->http->reports, up->reserved);
	buf_finish(&up->body);
	free(up);
}

/* On the worker's thread: the outcome is there, the connection goes on. */
static void upload_done(struct reports_job *job)
{
	struct upload *up = job->arg;

	atomic_store(&up->done, true);
	MHD_resume_connection(up->c);
}

/* Answers a post: the outcome's status and a line saying why. */
static enum MHD_Result report_answer(struct http *h, struct MHD_Connection *c,
                                     const struct config_domain *cd, enum reports_outcome o,
                                     const char *reason, unsigned retry)
{
	char text[TLSRPT_ERR_MAX + 32], seconds[16];
	unsigned status = reports_status(o);
	struct MHD_Response *r;
	enum MHD_Result ret;
	int len = snprintf(text, sizeof(text), "%s\n",
	                   reason != NULL && reason[0] != '\0' ? reason
	                   : o == REPORTS_STORED               ? "stored"
	                                                       : reports_outcome_names[o]);

	if (len < 0 || (size_t)len >= sizeof(text))
		len = snprintf(text, sizeof(text), "%s\n", reports_outcome_names[o]);
	for (int i = 0; i < len - 1; i++)
		if (text[i] < ' ' || text[i] > '~')
			text[i] = '?'; /* what a report said is not echoed raw */
	r = MHD_create_response_from_buffer((size_t)len, text, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	snprintf(seconds, sizeof(seconds), "%u", retry != 0 ? retry : 60);
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") ==
	        MHD_NO ||
	    ((status == 429 || status == 503) &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, seconds) == MHD_NO)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	if (o != REPORTS_STORED && o != REPORTS_DUPLICATE && o != REPORTS_TEMPFAIL &&
	    o != REPORTS_INVALID && o != REPORTS_FOREIGN && o != REPORTS_QUOTA)
		reports_count(h->reports, o); /* the workers count the others */
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	if (atomic_load_explicit(&h->access_log, memory_order_relaxed)) {
		char addr[INET6_ADDRSTRLEN];

		http_client_address(http_client_sockaddr(c), addr, sizeof(addr));
		log_access(addr, cd->host, MHD_HTTP_METHOD_POST, CONFIG_TLSRPT_PATH, status,
		           (size_t)len);
	}
	return ret;
}

/* The head of a POST /tlsrpt on a domain that takes reports: refused at once (and the
 * connection closed, its body unread) for a media type other than RFC 8460's, a declared
 * length past the cap, or a client over its rate; else the body is awaited. */
enum MHD_Result http_report_head(struct http *h, struct MHD_Connection *c,
                                 const struct config_domain *cd, void **req_cls)
{
	const char *type =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *length =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	enum tlsrpt_encoding enc;
	struct upload *up;
	unsigned retry = 0;
	size_t max;

	if (type == NULL || tlsrpt_content_type(type, &enc) < 0)
		return report_answer(h, c, cd, REPORTS_MEDIA_TYPE,
		                     "Content-Type must be application/tlsrpt+gzip or "
		                     "application/tlsrpt+json",
		                     0);
	max = enc == TLSRPT_ENCODING_GZIP ? TLSRPT_GZIP_MAX : TLSRPT_JSON_MAX;
	if (length != NULL && strtoull(length, NULL, 10) > max)
		return report_answer(h, c, cd, REPORTS_TOO_LARGE, "report too large", 0);
	if (!reports_admit(h->reports, http_client_sockaddr(c), &retry))
		return report_answer(h, c, cd, REPORTS_RATE_LIMITED,
		                     "too many reports from this address", retry);
	if ((up = calloc(1, sizeof(*up))) == NULL)
		return MHD_NO;
	up->http = h;
	up->c = c;
	up->max = max;
	up->job.encoding = enc;
	up->job.done = upload_done;
	up->job.arg = up;
	snprintf(up->job.domain, sizeof(up->job.domain), "%s", cd->name);
	buf_init(&up->body);
	*req_cls = up;
	return MHD_YES;
}

/* The rest of a POST /tlsrpt: the body as it comes, then the job, then the answer. */
enum MHD_Result http_report_body(struct http *h, struct MHD_Connection *c, struct conn *cn,
                                 const struct config_domain *cd, void *upload, const char *data,
                                 size_t *size)
{
	struct upload *up = upload;

	if (*size != 0) {
		size_t n = *size;

		*size = 0;
		if (up->refused)
			return MHD_YES;
		if (up->body.len + n > up->max) {
			up->refused = true;
			up->why = REPORTS_TOO_LARGE;
		} else if (!reports_reserve(h->reports, n)) {
			up->refused = true;
			up->why = REPORTS_BUSY;
		} else {
			up->reserved += n;
			if (buf_append(&up->body, data, n) < 0) {
				up->refused = true;
				up->why = REPORTS_BUSY;
			}
		}
		if (up->refused) { /* nothing more is kept */
			buf_finish(&up->body);
			buf_init(&up->body);
		}
		return MHD_YES;
	}
	if (up->submitted) {
		if (!atomic_load(&up->done))
			return MHD_YES; /* not through yet: suspended again shortly */
		return report_answer(h, c, cd, up->job.outcome, up->job.reason, 300);
	}
	if (cn != NULL && cn->admitted)
		admission_head(h->adm, &cn->adm); /* the whole request is in */
	if (up->refused)
		return report_answer(h, c, cd, up->why,
		                     up->why == REPORTS_TOO_LARGE ? "report too large"
		                                                  : "too many reports in progress",
		                     0);
	up->job.body = up->body.data != NULL ? up->body.data : "";
	up->job.len = up->body.len;
	up->submitted = true;
	MHD_suspend_connection(c);
	if (reports_submit(h->reports, &up->job) < 0) {
		up->job.outcome = REPORTS_BUSY;
		snprintf(up->job.reason, sizeof(up->job.reason), "too many reports in progress");
		upload_done(&up->job);
	}
	return MHD_YES;
}

/* Whether the request is for /tlsrpt on a domain that takes reports (tlsrpt = self), on its
 * own host name. */
bool http_report_taken(const struct http *h, struct MHD_Connection *c,
                       const struct config_domain *cd, const char *url)
{
	const char *host;

	if (h->reports == NULL || cd == NULL || !cd->tlsrpt_self ||
	    strcmp(url, CONFIG_TLSRPT_PATH) != 0)
		return false;
	host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	return host == NULL || host_matches(host, cd->host);
}
