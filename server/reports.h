/* reports: the TLS reports senders post to the server (POST https://mta-sts.<domain>/tlsrpt,
 * RFC 8460 §3): a bounded queue and worker threads that read, check and store them away
 * from the threads answering requests, a rate limit per client address, a budget for the
 * bodies being received, counters for /metrics (a fixed set of series), and every domain's
 * last days at a glance for /status, refreshed in the background, never on a request. */
#ifndef MTASTSD_REPORTS_H
#define MTASTSD_REPORTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "tlsrpt.h"

/* Bodies being received, all connections together: past this, 503 until some are done. */
#define REPORTS_INFLIGHT_MAX (64u << 20)
/* Reports read or stored at once at most; one more is answered 503. */
#define REPORTS_QUEUE_MAX 256
/* Worker threads reading and storing reports. */
#define REPORTS_WORKERS 2
/* The days /status sums up. */
#define REPORTS_GLANCE_DAYS 7

/* What became of a post, counted for /metrics in this order. */
enum reports_outcome {
	REPORTS_STORED,       /* 201 */
	REPORTS_DUPLICATE,    /* 200: the same organisation and report-id was stored before */
	REPORTS_INVALID,      /* 400: not a valid RFC 8460 report (or gzip) */
	REPORTS_FOREIGN,      /* 403: a policy-domain other than the host's own domain */
	REPORTS_QUOTA,        /* 403: the domain has tlsrpt_quota reports stored */
	REPORTS_TOO_LARGE,    /* 413 */
	REPORTS_MEDIA_TYPE,   /* 415: not application/tlsrpt+gzip or +json */
	REPORTS_RATE_LIMITED, /* 429: the client address is over tlsrpt_rate_limit */
	REPORTS_BUSY,         /* 503: the queue or the body budget is full */
	REPORTS_TEMPFAIL,     /* 503: the store is unavailable, nothing stored */
	REPORTS_OUTCOMES,
};

extern const char *const reports_outcome_names[REPORTS_OUTCOMES];

/* The HTTP status of an outcome. */
unsigned reports_status(enum reports_outcome o);

/* A report to read and store. The caller fills the input, submits it and keeps it alive
 * until done() is called (on a worker thread); the output is set by then. */
struct reports_job {
	const char *body; /* the request body (owned by the caller) */
	size_t len;
	enum tlsrpt_encoding encoding;
	char domain[TLSRPT_DOMAIN_MAX + 1]; /* the host's domain: every policy-domain must be it */
	void (*done)(struct reports_job *job);
	void *arg;
	enum reports_outcome outcome;
	char reason[TLSRPT_ERR_MAX]; /* for the answer and the log; "" when stored */
	struct reports_job *next;    /* in the queue */
};

/* Every domain's last REPORTS_GLANCE_DAYS days, from the store as last read. */
struct reports_glance {
	bool known; /* the store was read (else the rest is zero) */
	uint64_t reports, successful, failed, sts_reports;
	unsigned organizations, days;
	char top_result[64];
	uint64_t top_result_failed;
	char top_mx[TLSRPT_DOMAIN_MAX + 1];
	struct {
		char day[11]; /* YYYY-MM-DD */
		uint64_t successful, failed;
	} per_day[REPORTS_GLANCE_DAYS + 1]; /* the days with reports, oldest first */
	size_t n_per_day;
	time_t read_at; /* when the store was read */
};

struct reports;

/* Starts the workers and the keeper (the glance, the retention), configured from c. The
 * store is opened when a domain has tlsrpt = self, tlsrpt_store is set, or state_dir
 * holds a store already (reports by mail); it is connected on first use. NULL on failure
 * (logged). */
struct reports *reports_start(const struct config *c);
/* A reload: the store (reopened when tlsrpt_store or state_dir changed), quota,
 * retention and rate limit of c. */
void reports_configure(struct reports *r, const struct config *c);
/* Takes no more jobs, finishes every queued one (done() called for each) and stops the
 * threads; to be called before the HTTP server stops (suspended connections are resumed
 * this way). reports_free() then frees r. NULL is a no-op for both. */
void reports_shutdown(struct reports *r);
void reports_free(struct reports *r);

/* The rate limit: whether sa may post a report now (a token is taken if so); when not,
 * *ret_retry says in how many seconds it may. Thread-safe. */
bool reports_admit(struct reports *r, const struct sockaddr *sa, unsigned *ret_retry);
/* The body budget: n more bytes being received, if they fit (true), and given back. */
bool reports_reserve(struct reports *r, size_t n);
void reports_release(struct reports *r, size_t n);
/* Queues job: 0, or -1 (the queue is full or r is shutting down: answer REPORTS_BUSY). */
int reports_submit(struct reports *r, struct reports_job *job);
/* Counts an outcome decided before a job (rate limit, size, media type, busy). */
void reports_count(struct reports *r, enum reports_outcome o);

/* The glance of domain; false when there is no store. */
bool reports_glance(struct reports *r, const char *domain, struct reports_glance *out);
/* The glance as one line of text into out: reports, organisations, sessions, the top
 * failure and its MX. */
void reports_glance_text(const struct reports_glance *g, char *out, size_t size);
/* For a domain in mode testing: whether senders report it ready for enforce, as a plain
 * sentence into out; true when ready (no failures, and reports of the STS policy applied). */
bool reports_verdict(const struct reports_glance *g, char *out, size_t size);

/* The series of /metrics. */
void reports_metrics(struct reports *r, struct buf *b);

#endif
