/* challenge: the plain-HTTP listener that answers ACME HTTP-01 challenges, and nothing else */
#ifndef MTASTSD_CHALLENGE_H
#define MTASTSD_CHALLENGE_H

struct acme;
struct challenge_listener;

/* Answers GET /.well-known/acme-challenge/<token> from acme (borrowed, must outlive the
 * listener) on a bound, listening socket (owned from now on): the key authorization, or
 * 404; any other path 404, any other method 405; never a policy. NULL on failure
 * (logged). */
struct challenge_listener *challenge_start(int fd, struct acme *acme);
/* NULL is a no-op. */
void challenge_stop(struct challenge_listener *l);

#endif
