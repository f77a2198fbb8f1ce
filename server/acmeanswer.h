/* acmeanswer: the answers to pending ACME challenges: this process's, kept in memory and
 * written to state_dir, and other replicas', read from there */
#ifndef MTASTSD_ACMEANSWER_H
#define MTASTSD_ACMEANSWER_H

#include <stdbool.h>
#include <stddef.h>

#include "acmeclient.h"
#include "tls.h"

struct acme_answers;

/* Answers for state_dir (copied), to HTTP-01 challenges (http01) or TLS-ALPN-01 ones.
 * NULL when out of memory. */
struct acme_answers *acme_answers_create(const char *state_dir, bool http01);
/* NULL is a no-op. */
void acme_answers_destroy(struct acme_answers *a);

/* The acme_challenger callbacks (arg: the answers): answer ch (in memory, and in
 * state_dir for the replicas the CA may reach instead), and stop answering it. */
int acme_answers_add(void *arg, const struct acme_challenge *ch, struct acme_problem *p);
void acme_answers_remove(void *arg, const struct acme_challenge *ch);

/* The TLS-ALPN-01 validation certificate for host: a new reference, or NULL. */
struct tls_cert *acme_answers_alpn(struct acme_answers *a, const char *host);
/* The HTTP-01 key authorization for token into out: 0, or -1 (none, not a token). */
int acme_answers_http(struct acme_answers *a, const char *token, char *out, size_t size);

#endif
