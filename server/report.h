/* report: what verify found per domain: the verdict by mode, as text or JSON */
#ifndef MTASTSD_REPORT_H
#define MTASTSD_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define REPORT_DETAIL_MAX 1024

enum report_status {
	REPORT_OK,
	REPORT_WARN,
	REPORT_FAIL,
};

struct report_check {
	const char *name; /* "sts-txt", "policy-fetch", "mx-coverage", "mx-tls", "tlsrpt-txt" */
	const char *host; /* mx-tls: the MX host, else NULL; borrowed */
	enum report_status status;
	char detail[REPORT_DETAIL_MAX]; /* the reason, for a person to act on */
};

struct report_domain {
	const char *domain;    /* borrowed */
	const char *mode;      /* "enforce", "testing", "none", or NULL when unknown; borrowed */
	const char *proxy;     /* the provider of a proxied domain, else NULL; borrowed */
	const char *none_note; /* mode none: where it stands by the journal (from when its
	                        * records can go), or NULL; borrowed */
	struct report_check *checks;
	size_t n_checks;
	/* set by report_judge */
	bool ok;
	char verdict[REPORT_DETAIL_MAX];
};

/* The verdict of d by its mode: testing says "ready for enforce" only when nothing failed
 * and an mx-tls check passed; enforce "ok" or "problems: ..."; none whether the policy is
 * served as none, with none_note (its mx-coverage and mx-tls failures become warnings: senders do
 * not apply a none policy). ok: no check failed. */
void report_judge(struct report_domain *d);

/* Appends the report of v[0..n): text, a block per domain with a line per check and the
 * verdict; or JSON {"domains": [...]}. 0 / -1 (out of memory). */
int report_text(const struct report_domain *v, size_t n, struct buf *out);
int report_json(const struct report_domain *v, size_t n, struct buf *out);

#endif
