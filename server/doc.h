/* doc: a policy body as served, with its id and its prebuilt HTTP response */
#ifndef MTASTSD_DOC_H
#define MTASTSD_DOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

struct doc;

/* How the HTTP layer turns a doc into its response, once, when the doc is made (so that
 * a request never allocates one): create returns it (NULL on failure), destroy drops the
 * doc's reference to it. The response may point into d->body instead of copying it (a
 * million domains, a million bodies): then it calls doc_memory_free(d) when it is gone
 * for good (after destroy, once no connection sends it any more), which frees the doc. */
struct doc_renderer {
	void *(*create)(struct doc *d);
	void (*destroy)(void *response);
};

struct doc {
	atomic_uint refs;
	size_t len;
	char id[POLICY_ID_MAX + 1];
	const char *mode;                  /* static string */
	const struct doc_renderer *render; /* NULL: no response (check, records) */
	void *response;                    /* built by render->create, or NULL */
	bool response_owns;                /* the response frees the doc (doc_memory_free) */
	char body[];                       /* canonical policy, NUL-terminated */
};

/* A doc of a canonical body (copied), its id derived from the bytes unless id is given
 * (a fixed id from the config). With render, the response is built now; a failure to build
 * it fails the whole doc. refs starts at 1; NULL when out of memory. */
struct doc *doc_create(const char *body, size_t len, const char *mode, const char *id,
                       const struct doc_renderer *render);
struct doc *doc_ref(struct doc *d);
/* The last reference frees the doc and its response (the doc's memory once the response
 * is gone). NULL is a no-op. */
void doc_unref(struct doc *d);
/* For a renderer's response that points into d's body: frees d once the doc is done
 * with it (a response destroyed while the doc is being made frees nothing). */
void doc_memory_free(void *d);

#endif
