/* fetch: hostile-safe HTTPS GET of provider policies with libcurl, many at once */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "build-config.h"
#include "fetch.h"

struct transfer {
	struct fetch_job *job;
	CURL *easy;
	struct curl_slist *resolve;
	char *buf;
	size_t len;
	bool too_big;
};

int fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void fetch_global_cleanup(void)
{
	curl_global_cleanup();
}

static size_t trim_len(const char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return len;
}

bool fetch_content_type_ok(const char *ct)
{
	const char *semi, *p;

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	semi = strchr(ct, ';');
	if (trim_len(ct, semi ? (size_t)(semi - ct) : strlen(ct)) != 10 ||
	    strncasecmp(ct, "text/plain", 10) != 0)
		return false;
	/* Parameters: only a charset the body can be read in as ASCII. */
	for (p = semi; p != NULL; p = strchr(p + 1, ';')) {
		const char *v = p + 1, *end;
		size_t len;

		while (*v == ' ' || *v == '\t')
			v++;
		end = strchr(v, ';');
		len = trim_len(v, end ? (size_t)(end - v) : strlen(v));
		if (len == 0)
			continue;
		if (len < 8 || strncasecmp(v, "charset=", 8) != 0)
			continue; /* other parameters do not change the bytes */
		v += 8;
		len -= 8;
		if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
			v++;
			len -= 2;
		}
		if (!((len == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
		      (len == 8 && strncasecmp(v, "us-ascii", 8) == 0)))
			return false;
	}
	return true;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb;
	char *b;

	/* Abort as soon as the cap is passed, whatever Content-Length said. */
	if (t->len + n > POLICY_BODY_MAX) {
		t->too_big = true;
		return 0;
	}
	b = realloc(t->buf, t->len + n + 1);
	if (b == NULL)
		return 0;
	t->buf = b;
	memcpy(t->buf + t->len, data, n);
	t->len += n;
	t->buf[t->len] = 0;
	return n;
}

int fetch_harden(void *easy, const struct fetch_opts *o, size_t max_size)
{
	CURL *e = easy;

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (curl_easy_setopt(e, opt, val) != CURLE_OK)                                     \
			return -1;                                                                 \
	} while (0)
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file != NULL)
		SET(CURLOPT_CAINFO, o->ca_file);
	SET(CURLOPT_PROXY, ""); /* ignore *_proxy environment variables */
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, (long)o->connect_timeout);
	SET(CURLOPT_TIMEOUT, (long)o->timeout);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_size);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_USERAGENT, "mtastsd/" MTASTSD_VERSION);
	return 0;
}

static int setup(struct transfer *t, const struct fetch_opts *o)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return -1;
	t->easy = e;
	if (t->job->resolve != NULL &&
	    (t->resolve = curl_slist_append(NULL, t->job->resolve)) == NULL)
		return -1;
	if (fetch_harden(e, o, POLICY_BODY_MAX) < 0)
		return -1;
	SET(CURLOPT_URL, t->job->url);
	SET(CURLOPT_FORBID_REUSE, 1L);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, t);
	SET(CURLOPT_PRIVATE, t);
	if (t->resolve != NULL)
		SET(CURLOPT_RESOLVE, t->resolve);
#undef SET
	return 0;
}

/* Judges a finished transfer: the job succeeds only if every rule holds. */
static void finish(struct transfer *t, CURLcode code)
{
	struct fetch_job *j = t->job;
	long status = 0;
	char *ct = NULL;

	if (code != CURLE_OK) {
		if (t->too_big || code == CURLE_FILESIZE_EXCEEDED)
			snprintf(j->error, sizeof(j->error), "body larger than %d bytes",
			         POLICY_BODY_MAX);
		else
			snprintf(j->error, sizeof(j->error), "%s", curl_easy_strerror(code));
		return;
	}
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (status != 200) {
		snprintf(j->error, sizeof(j->error), "HTTP status %ld (only 200 is accepted%s)",
		         status,
		         status >= 300 && status < 400 ? "; redirects are not followed" : "");
		return;
	}
	if (!fetch_content_type_ok(ct)) {
		snprintf(j->error, sizeof(j->error), "Content-Type %s%s%s is not text/plain",
		         ct ? "\"" : "", ct ? ct : "missing", ct ? "\"" : "");
		return;
	}
	j->ok = true;
	j->body = t->buf != NULL ? t->buf : calloc(1, 1);
	j->len = t->len;
	t->buf = NULL;
	if (j->body == NULL) {
		j->ok = false;
		snprintf(j->error, sizeof(j->error), "out of memory");
	}
}

void fetch_run(struct fetch_job *jobs, size_t n, const struct fetch_opts *o)
{
	struct transfer *t = calloc(n ? n : 1, sizeof(*t));
	CURLM *multi = curl_multi_init();
	int running = 0;

	for (size_t i = 0; i < n; i++) {
		jobs[i].ok = false;
		jobs[i].body = NULL;
		jobs[i].len = 0;
		snprintf(jobs[i].error, sizeof(jobs[i].error), "out of memory");
	}
	if (t == NULL || multi == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		t[i].job = &jobs[i];
		if (setup(&t[i], o) < 0 || curl_multi_add_handle(multi, t[i].easy) != CURLM_OK) {
			snprintf(jobs[i].error, sizeof(jobs[i].error),
			         "cannot set up the transfer");
			continue;
		}
		running++;
	}
	while (running > 0) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			struct transfer *tr;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&tr);
			finish(tr, msg->data.result);
		}
		if (running > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
out:
	for (size_t i = 0; t != NULL && i < n; i++) {
		if (t[i].easy != NULL) {
			curl_multi_remove_handle(multi, t[i].easy);
			curl_easy_cleanup(t[i].easy);
		}
		curl_slist_free_all(t[i].resolve);
		free(t[i].buf);
	}
	curl_multi_cleanup(multi);
	free(t);
}
