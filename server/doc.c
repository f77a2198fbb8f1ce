/* doc: a policy body as served, with its id and its prebuilt HTTP response */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc.h"

struct doc *doc_create(const char *body, size_t len, const char *mode, const char *id,
                       const struct doc_renderer *render)
{
	/* One allocation: a million domains mean a million docs. */
	struct doc *d = calloc(1, sizeof(*d) + len + 1);

	if (d == NULL)
		return NULL;
	memcpy(d->body, body, len);
	d->body[len] = 0;
	d->len = len;
	d->mode = mode;
	if (id != NULL)
		snprintf(d->id, sizeof(d->id), "%s", id);
	else
		policy_id(body, len, d->id);
	atomic_init(&d->refs, 1);
	if (render != NULL) {
		d->render = render;
		if ((d->response = render->create(d)) == NULL) {
			free(d);
			return NULL;
		}
		d->response_owns = true;
	}
	return d;
}

struct doc *doc_ref(struct doc *d)
{
	atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
	return d;
}

void doc_unref(struct doc *d)
{
	if (d == NULL || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (d->response != NULL)
		d->render->destroy(d->response); /* the response frees d when it is done */
	else
		free(d);
}

void doc_memory_free(void *p)
{
	struct doc *d = p;

	if (d->response_owns)
		free(d);
}
