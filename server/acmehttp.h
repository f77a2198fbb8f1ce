/* acmehttp: one exchange with an ACME server: hardened libcurl, the headers ACME reads,
 * JSON and problem documents */
#ifndef MTASTSD_ACMEHTTP_H
#define MTASTSD_ACMEHTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"

#define ACME_URL_MAX 1024
#define ACME_NONCE_MAX 128
#define ACME_PROBLEM_TYPE_MAX 96
#define ACME_PROBLEM_DETAIL_MAX 240

/* Why an order failed: the CA's problem document (RFC 8555 6.7, RFC 7807), or what went
 * wrong on the way to it (type "", detail ours). */
struct acme_problem {
	char type[ACME_PROBLEM_TYPE_MAX]; /* e.g. "urn:ietf:params:acme:error:rateLimited" */
	char detail[ACME_PROBLEM_DETAIL_MAX];
	long retry_after; /* seconds the CA asked us to wait, 0: none */
};

/* Sets p's type and its detail, formatted (cut to fit). */
void acme_problem_set(struct acme_problem *p, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One answer: its status, body (at most 128 KiB) and the headers ACME uses. */
struct acme_response {
	long status;
	struct buf body;
	bool too_big;
	char location[ACME_URL_MAX];
	char nonce[ACME_NONCE_MAX]; /* Replay-Nonce, base64url, or "" */
	char content_type[96];
	long retry_after; /* seconds (a date is converted), 0: none */
};

/* A connection to the CA, reused for one order's requests. */
struct acme_session {
	void *easy; /* CURL * */
	const atomic_bool *stop;
	time_t deadline; /* of the order */
};

/* Sets up s: requests verified with ca_file (NULL: the system store), each within timeout
 * seconds, aborted when *stop becomes true (stop may be NULL); waits end order_timeout
 * seconds from now. 0 / -1. */
int acme_session_init(struct acme_session *s, const char *ca_file, unsigned timeout,
                      unsigned order_timeout, const atomic_bool *stop);
void acme_session_finish(struct acme_session *s);
bool acme_session_stopping(const struct acme_session *s);
/* Waits ms milliseconds, in steps that notice stop. false when stopping or when the wait
 * would pass the deadline (nothing is waited then). */
bool acme_session_pause(const struct acme_session *s, long ms);

/* GET (post NULL), HEAD (head) or POST of a JWS (post) to url. 0 with *r filled, whatever
 * the status, or -1 with the transport problem in *p. acme_response_finish(r) either way. */
int acme_request(struct acme_session *s, const char *url, const char *post, bool head,
                 struct acme_response *r, struct acme_problem *p);
void acme_response_finish(struct acme_response *r);

/* The body as JSON (json_decref it), or NULL. */
json_t *acme_json(const struct acme_response *r);
/* o[key] when it is a string (o may be NULL), else NULL. */
const char *acme_json_str(const json_t *o, const char *key);
/* o[key] into out when it is an https URL that fits. */
bool acme_json_url(const json_t *o, const char *key, char *out, size_t size);

/* The problem of an error answer (its problem document, else its status), what naming
 * the request; control characters of the CA's text are replaced. */
void acme_problem_from(const struct acme_response *r, const char *what, struct acme_problem *p);
/* The problem of an object that became invalid: its "error" member, after what. */
void acme_problem_of(const json_t *o, const char *what, struct acme_problem *p);

#endif
