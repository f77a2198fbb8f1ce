/* challenge: the plain-HTTP listener that answers ACME HTTP-01 challenges, and nothing else */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "acme.h"
#include "challenge.h"
#include "log.h"

#define PREFIX "/.well-known/acme-challenge/"
#define ANSWER_MAX 512

struct challenge_listener {
	struct MHD_Daemon *daemon;
	struct acme *acme;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	if (status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
	static int seen;
	struct challenge_listener *l = cls;
	char answer[ANSWER_MAX];

	if (*req_cls == NULL) {
		*req_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, 405, "Method Not Allowed\n");
	if (strncmp(url, PREFIX, strlen(PREFIX)) != 0 ||
	    acme_http_answer(l->acme, url + strlen(PREFIX), answer, sizeof(answer)) < 0)
		return reply(c, 404, "Not Found\n");
	return reply(c, 200, answer);
}

static void challenge_log(void *cls, const char *fmt, va_list ap)
{
	log_vmsg(LOG_LEVEL_WARNING, fmt, ap);
}

struct challenge_listener *challenge_start(int fd, struct acme *acme)
{
	struct challenge_listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		close(fd);
		return NULL;
	}
	l->acme = acme;
	l->daemon = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC, 0,
	    NULL, NULL, handle, l, MHD_OPTION_EXTERNAL_LOGGER, challenge_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
	    MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
	    MHD_OPTION_END);
	if (l->daemon == NULL) {
		log_err("cannot start the acme_http_listen listener");
		close(fd);
		free(l);
		return NULL;
	}
	return l;
}

void challenge_stop(struct challenge_listener *l)
{
	if (l == NULL)
		return;
	MHD_socket fd = MHD_quiesce_daemon(l->daemon);

	MHD_stop_daemon(l->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	free(l);
}
