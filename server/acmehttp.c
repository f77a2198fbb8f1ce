/* acmehttp: one exchange with an ACME server: hardened libcurl, the headers ACME reads,
 * JSON and problem documents */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "acmehttp.h"
#include "fetch.h"

/* Answers larger than this are aborted: a chain is a few KB, a directory or order less. */
#define RESPONSE_MAX (128 * 1024)

bool acme_session_stopping(const struct acme_session *s)
{
	return s->stop != NULL && atomic_load(s->stop);
}

/* Copies text a CA sent into out, printable ASCII only. */
static void copy_text(char *out, size_t size, const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++)
		out[n++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[n] = '\0';
}

void acme_problem_set(struct acme_problem *p, const char *type, const char *fmt, ...)
{
	va_list ap;

	snprintf(p->type, sizeof(p->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
	va_end(ap);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct acme_response *r = arg;
	size_t n = size * nmemb;

	if (r->body.len + n > RESPONSE_MAX) {
		r->too_big = true;
		return 0;
	}
	return buf_append(&r->body, data, n) == 0 ? n : 0;
}

/* The value of header name in line (name: value\r\n) into out, when it is that header and
 * the value fits; true when it is that header. */
static bool header(const char *line, size_t len, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	line += n + 1;
	len -= n + 1;
	while (len > 0 && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' ' ||
	                   line[len - 1] == '\t'))
		len--;
	if (len < size)
		copy_text(out, size, line, len);
	else
		out[0] = '\0';
	return true;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct acme_response *r = arg;
	size_t n = size * nmemb;
	char v[64];

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget the previous one's headers. */
		r->location[0] = r->nonce[0] = r->content_type[0] = '\0';
		r->retry_after = 0;
		return n;
	}
	header(data, n, "Location", r->location, sizeof(r->location));
	header(data, n, "Content-Type", r->content_type, sizeof(r->content_type));
	if (header(data, n, "Replay-Nonce", r->nonce, sizeof(r->nonce)) &&
	    strspn(r->nonce, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
	        strlen(r->nonce))
		r->nonce[0] = '\0';
	if (header(data, n, "Retry-After", v, sizeof(v))) {
		char *end;
		long s;

		errno = 0;
		s = strtol(v, &end, 10);
		if (errno == 0 && end != v && *end == '\0' && s >= 0) {
			r->retry_after = s;
		} else {
			time_t t = curl_getdate(v, NULL);

			r->retry_after = t > time(NULL) ? (long)(t - time(NULL)) : 0;
		}
		if (r->retry_after > 86400)
			r->retry_after = 86400;
	}
	return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	const struct acme_session *s = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return acme_session_stopping(s) ? 1 : 0;
}

int acme_session_init(struct acme_session *s, const char *ca_file, unsigned timeout,
                      unsigned order_timeout, const atomic_bool *stop)
{
	struct fetch_opts fo = {
	    .ca_file = ca_file,
	    .connect_timeout = timeout < 10 ? timeout : 10,
	    .timeout = timeout,
	};

	s->stop = stop;
	s->deadline = time(NULL) + order_timeout;
	if ((s->easy = curl_easy_init()) == NULL)
		return -1;
	if (fetch_harden(s->easy, &fo, RESPONSE_MAX) < 0 ||
	    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(s->easy, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
	    curl_easy_setopt(s->easy, CURLOPT_XFERINFODATA, s) != CURLE_OK ||
	    curl_easy_setopt(s->easy, CURLOPT_NOPROGRESS, 0L) != CURLE_OK) {
		curl_easy_cleanup(s->easy);
		return -1;
	}
	return 0;
}

void acme_session_finish(struct acme_session *s)
{
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	s->easy = NULL;
}

void acme_response_finish(struct acme_response *r)
{
	buf_finish(&r->body);
}

/* GET (post NULL), HEAD (head) or POST of a JWS to url. 0 with *r filled (any status), or
 * -1 with the transport problem in *p. r must be acme_response_finish()ed either way. */
int acme_request(struct acme_session *s, const char *url, const char *post, bool head,
                 struct acme_response *r, struct acme_problem *p)
{
	struct curl_slist *hdr = NULL;
	CURL *e = s->easy;
	CURLcode code;

	memset(r, 0, sizeof(*r));
	buf_init(&r->body);
	if (acme_session_stopping(s)) {
		acme_problem_set(p, "", "stopping");
		return -1;
	}
	if (post != NULL &&
	    (hdr = curl_slist_append(NULL, "Content-Type: application/jose+json")) == NULL) {
		acme_problem_set(p, "", "out of memory");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_NOBODY, 0L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	if (post != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		if (head)
			curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	}
	code = curl_easy_perform(e);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	if (code != CURLE_OK) {
		if (r->too_big || code == CURLE_FILESIZE_EXCEEDED)
			acme_problem_set(p, "", "%s: answer larger than %d bytes", url,
			                 RESPONSE_MAX);
		else if (acme_session_stopping(s))
			acme_problem_set(p, "", "stopping");
		else
			acme_problem_set(p, "", "%s: %s", url, curl_easy_strerror(code));
		return -1;
	}
	if (r->body.failed) {
		acme_problem_set(p, "", "out of memory");
		return -1;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	return 0;
}

json_t *acme_json(const struct acme_response *r)
{
	return r->body.len > 0 ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, NULL)
	                       : NULL;
}

const char *acme_json_str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An https URL the CA gave, into out; false when it is missing, not https or too long. */
bool acme_json_url(const json_t *o, const char *key, char *out, size_t size)
{
	const char *v = acme_json_str(o, key);

	if (v == NULL || strncmp(v, "https://", 8) != 0 || strlen(v) >= size ||
	    strpbrk(v, " \t\r\n\"") != NULL)
		return false;
	memcpy(out, v, strlen(v) + 1);
	return true;
}

/* The problem document of an error answer, or what the status says. */
void acme_problem_from(const struct acme_response *r, const char *what, struct acme_problem *p)
{
	json_t *j = NULL;
	const char *type = NULL, *detail = NULL;

	if (strncasecmp(r->content_type, "application/problem+json", 24) == 0 &&
	    (j = acme_json(r)) != NULL && json_is_object(j)) {
		type = acme_json_str(j, "type");
		detail = acme_json_str(j, "detail");
	}
	copy_text(p->type, sizeof(p->type), type ? type : "", type ? strlen(type) : 0);
	if (detail != NULL)
		snprintf(p->detail, sizeof(p->detail), "%s: %s", what, detail);
	else
		snprintf(p->detail, sizeof(p->detail), "%s: HTTP status %ld", what, r->status);
	/* The CA's words are shown as they are, minus control characters. */
	copy_text(p->detail, sizeof(p->detail), p->detail, strlen(p->detail));
	p->retry_after = r->retry_after;
	json_decref(j);
}

/* The problem of an object that became invalid: its "error" member, else what. */
void acme_problem_of(const json_t *o, const char *what, struct acme_problem *p)
{
	const json_t *e = json_object_get(o, "error");
	const char *type = json_is_object(e) ? acme_json_str(e, "type") : NULL;
	const char *detail = json_is_object(e) ? acme_json_str(e, "detail") : NULL;

	copy_text(p->type, sizeof(p->type), type ? type : "", type ? strlen(type) : 0);
	snprintf(p->detail, sizeof(p->detail), "%s%s%s", what, detail ? ": " : "",
	         detail ? detail : "");
	copy_text(p->detail, sizeof(p->detail), p->detail, strlen(p->detail));
}

/* Waits seconds, or less when stopping or past the deadline. false when it should end. */
bool acme_session_pause(const struct acme_session *s, long ms)
{
	struct timespec now, until;

	if (time(NULL) + (ms + 999) / 1000 > s->deadline)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	for (;;) {
		struct timespec step = {0, 50 * 1000 * 1000};

		if (acme_session_stopping(s))
			return false;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
			return true;
		nanosleep(&step, NULL);
	}
}
