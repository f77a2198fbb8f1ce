/* intake: a TLS report by mail, parsed with GMime */
#include "intake.h"

#include <stdio.h>
#include <string.h>

#include <gmime/gmime.h>

#include "reportstore.h"
#include "tlsrpt.h"

struct walk {
	intake_served_fn *served;
	void *arg;
	struct reportstore *store;
	unsigned quota;
	time_t now;
	size_t parts; /* report parts seen */
	enum intake_result worst;
	char *err;
	size_t err_size;
};

/* The severity of a result, to keep the worst of several parts: a temporary failure
 * first (the MTA retries the whole message, duplicates then cost nothing), then an
 * invalid part, a refusal, a duplicate. */
static int severity(enum intake_result r)
{
	switch (r) {
	case INTAKE_TEMPFAIL:
		return 4;
	case INTAKE_INVALID:
		return 3;
	case INTAKE_REFUSED:
		return 2;
	case INTAKE_DUPLICATE:
		return 1;
	case INTAKE_STORED:
		break;
	}
	return 0;
}

static void outcome(struct walk *w, enum intake_result r, const char *why)
{
	if (severity(r) > severity(w->worst) || w->parts == 1) {
		w->worst = r;
		snprintf(w->err, w->err_size, "%s", why);
	}
}

static void one_part(struct walk *w, GMimePart *part, enum tlsrpt_encoding encoding)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *out;
	GByteArray *bytes;
	struct tlsrpt_report *r = NULL;
	char why[256] = "";

	w->parts++;
	if (content == NULL) {
		outcome(w, INTAKE_INVALID, "a report part without content");
		return;
	}
	out = g_mime_stream_mem_new();
	/* decoded: base64 or quoted-printable taken off */
	if (g_mime_data_wrapper_write_to_stream(content, out) < 0) {
		outcome(w, INTAKE_INVALID, "a report part that cannot be decoded");
		g_object_unref(out);
		return;
	}
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	r = tlsrpt_read(bytes->data, bytes->len, encoding, why, sizeof(why));
	g_object_unref(out);
	if (r == NULL) {
		outcome(w, INTAKE_INVALID, why);
		return;
	}
	if (tlsrpt_check_tenant(r, w->served, w->arg, why, sizeof(why)) < 0) {
		outcome(w, INTAKE_INVALID, why);
		tlsrpt_free(r);
		return;
	}
	switch (reportstore_store(w->store, r, w->quota, w->now, why, sizeof(why))) {
	case REPORTSTORE_STORED:
		outcome(w, INTAKE_STORED, "stored");
		break;
	case REPORTSTORE_DUPLICATE:
		outcome(w, INTAKE_DUPLICATE, "a duplicate of a report stored before");
		break;
	case REPORTSTORE_REFUSED:
		outcome(w, INTAKE_REFUSED, why);
		break;
	case REPORTSTORE_TEMPFAIL:
		outcome(w, INTAKE_TEMPFAIL, why);
		break;
	}
	tlsrpt_free(r);
}

static void visit(GMimeObject *parent, GMimeObject *object, gpointer data)
{
	struct walk *w = data;
	GMimeContentType *type;
	enum tlsrpt_encoding encoding;
	char *text;

	(void)parent;
	if (!GMIME_IS_PART(object) || (type = g_mime_object_get_content_type(object)) == NULL)
		return;
	text = g_mime_content_type_get_mime_type(type);
	if (text != NULL && tlsrpt_content_type(text, &encoding) == 0)
		one_part(w, GMIME_PART(object), encoding);
	g_free(text);
}

enum intake_result intake_mail(const char *msg, size_t len, intake_served_fn *served, void *arg,
                               struct reportstore *store, unsigned quota, time_t now, char *err,
                               size_t err_size)
{
	struct walk w = {served, arg, store, quota, now, 0, INTAKE_STORED, err, err_size};
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *m;
	GMimeObject *top;

	if (len > INTAKE_MESSAGE_MAX) {
		snprintf(err, err_size, "a message of over %u bytes", INTAKE_MESSAGE_MAX);
		return INTAKE_INVALID;
	}
	g_mime_init();
	stream = g_mime_stream_mem_new_with_buffer(msg, len);
	parser = g_mime_parser_new_with_stream(stream);
	m = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (m == NULL) {
		snprintf(err, err_size, "not an RFC 5322 message");
		return INTAKE_INVALID;
	}
	top = g_mime_message_get_mime_part(m);
	if (top != NULL && GMIME_IS_PART(top))
		visit(NULL, top, &w); /* a message that is the report itself */
	else
		g_mime_message_foreach(m, visit, &w);
	g_object_unref(m);
	if (w.parts == 0) {
		snprintf(
		    err, err_size,
		    "no application/tlsrpt+gzip or application/tlsrpt+json part (RFC 8460 5.3)");
		return INTAKE_INVALID;
	}
	return w.worst;
}
