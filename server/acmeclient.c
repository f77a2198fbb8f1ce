/* acmeclient: RFC 8555 conversations with one CA: directory, nonces, account, orders */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <jansson.h>

#include "acmecert.h"
#include "acmeclient.h"
#include "jose.h"
#include "statefile.h"

#define ERR "urn:ietf:params:acme:error:"
#define URL_MAX ACME_URL_MAX
#define NONCE_MAX ACME_NONCE_MAX
#define NONCES_KEPT 32
/* badNonce is retried with the nonce of the error, this many times in a row at most. */
#define POST_TRIES 8
#define ACCOUNT_KEY_MAX 16384
#define TOKEN_MAX 256
/* Seconds before an unreachable directory is read again for an ARI lookup. */
#define DIRECTORY_RETRY 60
/* Polls wait what Retry-After says, at most POLL_MAX seconds; without it,
 * POLL_FIRST milliseconds doubling to POLL_MAX (a CA validates in tens of milliseconds, or
 * takes seconds when busy). */
#define POLL_MAX 10
#define POLL_FIRST 250

struct directory {
	char new_nonce[URL_MAX];
	char new_account[URL_MAX];
	char new_order[URL_MAX];
	char renewal_info[URL_MAX]; /* "" when the CA has no ARI */
	bool eab_required;
};

struct acme_ca {
	struct acme_ca_opts o; /* strings owned */
	/* Directory and account are set up once, by one thread at a time. */
	pthread_mutex_t setup;
	bool have_dir;
	time_t dir_failed_at; /* for ARI lookups only */
	struct directory dir;
	bool have_key; /* key never changes once set */
	struct jose_key key;

	pthread_mutex_t lock; /* kid and nonces */
	char kid[URL_MAX];    /* the account URL, "" until registered */
	char nonces[NONCES_KEPT][NONCE_MAX];
	size_t n_nonces;
};

/* One order's connection to the CA. */
struct session {
	struct acme_ca *ca;
	struct acme_session h;
};

static int session_init(struct session *s, struct acme_ca *ca, unsigned order_timeout)
{
	s->ca = ca;
	return acme_session_init(&s->h, ca->o.ca_file, ca->o.timeout, order_timeout, ca->o.stop);
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

struct acme_ca *acme_ca_create(const struct acme_ca_opts *o)
{
	struct acme_ca *ca = calloc(1, sizeof(*ca));

	if (ca == NULL)
		return NULL;
	pthread_mutex_init(&ca->setup, NULL);
	pthread_mutex_init(&ca->lock, NULL);
	ca->o = *o;
	ca->o.directory = dup_or_null(o->directory);
	ca->o.email = dup_or_null(o->email);
	ca->o.ca_file = dup_or_null(o->ca_file);
	ca->o.eab_kid = dup_or_null(o->eab_kid);
	ca->o.eab_hmac = dup_or_null(o->eab_hmac);
	ca->o.account_key = dup_or_null(o->account_key);
	if (ca->o.directory == NULL || ca->o.account_key == NULL ||
	    (o->email != NULL && ca->o.email == NULL) ||
	    (o->ca_file != NULL && ca->o.ca_file == NULL) ||
	    (o->eab_kid != NULL && ca->o.eab_kid == NULL) ||
	    (o->eab_hmac != NULL && ca->o.eab_hmac == NULL)) {
		acme_ca_destroy(ca);
		return NULL;
	}
	return ca;
}

void acme_ca_destroy(struct acme_ca *ca)
{
	if (ca == NULL)
		return;
	free((char *)(uintptr_t)ca->o.directory);
	free((char *)(uintptr_t)ca->o.email);
	free((char *)(uintptr_t)ca->o.ca_file);
	free((char *)(uintptr_t)ca->o.eab_kid);
	free((char *)(uintptr_t)ca->o.eab_hmac);
	free((char *)(uintptr_t)ca->o.account_key);
	if (ca->have_key)
		jose_key_finish(&ca->key);
	pthread_mutex_destroy(&ca->setup);
	pthread_mutex_destroy(&ca->lock);
	free(ca);
}

/* ---- directory, nonces, account ---- */

static int read_directory(struct session *s, struct acme_problem *p)
{
	struct acme_ca *ca = s->ca;
	struct acme_response r;
	json_t *j = NULL, *meta;
	int ret = -1;

	if (ca->have_dir)
		return 0;
	if (acme_request(&s->h, ca->o.directory, NULL, false, &r, p) < 0)
		goto out;
	if (r.status != 200) {
		acme_problem_from(&r, "the CA's directory", p);
		goto out;
	}
	if ((j = acme_json(&r)) == NULL || !json_is_object(j) ||
	    !acme_json_url(j, "newNonce", ca->dir.new_nonce, URL_MAX) ||
	    !acme_json_url(j, "newAccount", ca->dir.new_account, URL_MAX) ||
	    !acme_json_url(j, "newOrder", ca->dir.new_order, URL_MAX)) {
		acme_problem_set(p, "",
		                 "%s: not an ACME directory (newNonce, newAccount, newOrder)",
		                 ca->o.directory);
		goto out;
	}
	if (!acme_json_url(j, "renewalInfo", ca->dir.renewal_info, URL_MAX))
		ca->dir.renewal_info[0] = '\0';
	meta = json_object_get(j, "meta");
	ca->dir.eab_required =
	    json_is_object(meta) && json_is_true(json_object_get(meta, "externalAccountRequired"));
	if (ca->dir.eab_required && ca->o.eab_kid == NULL) {
		acme_problem_set(p, "",
		                 "the CA requires External Account Binding: set acme_eab_kid and "
		                 "acme_eab_hmac");
		goto out;
	}
	ca->have_dir = true;
	ret = 0;
out:
	json_decref(j);
	acme_response_finish(&r);
	return ret;
}

static void give_nonce(struct acme_ca *ca, const char *nonce)
{
	if (nonce[0] == '\0')
		return;
	pthread_mutex_lock(&ca->lock);
	if (ca->n_nonces == NONCES_KEPT) {
		memmove(ca->nonces[0], ca->nonces[1], (NONCES_KEPT - 1) * NONCE_MAX);
		ca->n_nonces--;
	}
	snprintf(ca->nonces[ca->n_nonces++], NONCE_MAX, "%s", nonce);
	pthread_mutex_unlock(&ca->lock);
}

static int take_nonce(struct session *s, char *out, struct acme_problem *p)
{
	struct acme_ca *ca = s->ca;
	struct acme_response r;
	int ret = -1;

	pthread_mutex_lock(&ca->lock);
	if (ca->n_nonces > 0) {
		memcpy(out, ca->nonces[--ca->n_nonces], NONCE_MAX);
		pthread_mutex_unlock(&ca->lock);
		return 0;
	}
	pthread_mutex_unlock(&ca->lock);
	if (acme_request(&s->h, ca->dir.new_nonce, NULL, true, &r, p) < 0)
		goto out;
	if ((r.status != 200 && r.status != 204) || r.nonce[0] == '\0') {
		acme_problem_set(p, "", "%s: no Replay-Nonce (HTTP status %ld)", ca->dir.new_nonce,
		                 r.status);
		goto out;
	}
	memcpy(out, r.nonce, NONCE_MAX);
	ret = 0;
out:
	acme_response_finish(&r);
	return ret;
}

static int account(struct session *s, struct acme_problem *p);

/* POSTs payload ("" for POST-as-GET) as a JWS to url: signed with the account's kid, or
 * its jwk (newAccount). badNonce is retried with a fresh nonce, a forgotten account is
 * registered again once. 0 on a 2xx answer in *r (response_finish it), else -1 with the
 * problem. */
static int post(struct session *s, const char *url, const char *payload, bool jwk,
                struct acme_response *r, struct acme_problem *p)
{
	struct acme_ca *ca = s->ca;
	bool registered_again = false;

	memset(r, 0, sizeof(*r));
	buf_init(&r->body);
	for (int tries = 0; tries < POST_TRIES; tries++) {
		char nonce[NONCE_MAX], kid[URL_MAX];
		struct buf jws;
		int rc;

		acme_response_finish(r);
		memset(r, 0, sizeof(*r));
		buf_init(&r->body);
		if (take_nonce(s, nonce, p) < 0)
			return -1;
		pthread_mutex_lock(&ca->lock);
		memcpy(kid, ca->kid, sizeof(kid));
		pthread_mutex_unlock(&ca->lock);
		buf_init(&jws);
		if (jose_sign(&jws, &ca->key, jwk ? NULL : kid, nonce, url, payload) < 0 ||
		    jws.failed) {
			buf_finish(&jws);
			acme_problem_set(p, "", "cannot sign the request");
			return -1;
		}
		rc = acme_request(&s->h, url, jws.data, false, r, p);
		buf_finish(&jws);
		if (rc < 0)
			return -1;
		give_nonce(ca, r->nonce);
		if (r->status >= 200 && r->status < 300)
			return 0;
		acme_problem_from(r, url, p);
		if (strcmp(p->type, ERR "badNonce") == 0)
			continue;
		if (!jwk && !registered_again && strcmp(p->type, ERR "accountDoesNotExist") == 0) {
			/* The CA forgot us (a reset test CA, a purge): register again. */
			pthread_mutex_lock(&ca->lock);
			if (strcmp(ca->kid, kid) == 0)
				ca->kid[0] = '\0';
			pthread_mutex_unlock(&ca->lock);
			registered_again = true;
			if (account(s, p) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	acme_problem_set(p, ERR "badNonce", "%s: the CA rejected %d nonces in a row", url,
	                 POST_TRIES);
	return -1;
}

/* The account key: read, or made and written by whichever replica gets there first. */
static int account_key(struct acme_ca *ca, struct acme_problem *p)
{
	const char *path = ca->o.account_key;
	char tmp[4096], *pem = NULL;
	size_t len;
	struct buf b;

	for (int tries = 0; tries < 2; tries++) {
		if (statefile_read(path, ACCOUNT_KEY_MAX, &pem, &len) == 0) {
			int r = jose_key_from_pem(&ca->key, pem, len);

			gnutls_memset(pem, 0, len);
			free(pem);
			if (r < 0) {
				acme_problem_set(p, "", "%s: not an ECDSA P-256 key", path);
				return -1;
			}
			ca->have_key = true;
			return 0;
		}
		if (errno != ENOENT) {
			acme_problem_set(p, "", "%s: %s", path, strerror(errno));
			return -1;
		}
		/* Written beside, then linked into place: a replica that lost the race reads the
		 * winner's key. */
		if (jose_key_generate(&ca->key) < 0) {
			acme_problem_set(p, "", "cannot make an account key");
			return -1;
		}
		buf_init(&b);
		if (snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)gettid()) >=
		        (int)sizeof(tmp) ||
		    jose_key_to_pem(&ca->key, &b) < 0 || b.failed ||
		    statefile_write(tmp, b.data, b.len, 0600) < 0) {
			acme_problem_set(p, "", "%s: cannot write the account key: %s", path,
			                 strerror(errno));
			if (b.data != NULL)
				gnutls_memset(b.data, 0, b.len);
			buf_finish(&b);
			jose_key_finish(&ca->key);
			return -1;
		}
		gnutls_memset(b.data, 0, b.len);
		buf_finish(&b);
		if (link(tmp, path) == 0) {
			unlink(tmp);
			ca->have_key = true;
			return 0;
		}
		unlink(tmp);
		jose_key_finish(&ca->key);
		if (errno != EEXIST) {
			acme_problem_set(p, "", "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	acme_problem_set(p, "", "%s: cannot read the account key", path);
	return -1;
}

/* The newAccount payload: terms agreed, the contact, the external account binding. */
static char *account_payload(struct acme_ca *ca, struct acme_problem *p)
{
	json_t *j = json_pack("{s:b}", "termsOfServiceAgreed", 1);
	char *out = NULL;

	if (j == NULL)
		goto oom;
	if (ca->o.email != NULL) {
		char contact[512];

		snprintf(contact, sizeof(contact), "mailto:%s", ca->o.email);
		if (json_object_set_new(j, "contact", json_pack("[s]", contact)) < 0)
			goto oom;
	}
	if (ca->o.eab_kid != NULL) {
		unsigned char *mac = NULL;
		size_t mac_len = 0;
		struct buf eab;
		json_t *e;

		if (jose_b64url_decode(ca->o.eab_hmac, strlen(ca->o.eab_hmac), &mac, &mac_len) <
		    0) {
			json_decref(j);
			acme_problem_set(p, "", "acme_eab_hmac is not base64url");
			return NULL;
		}
		buf_init(&eab);
		jose_eab(&eab, ca->o.eab_kid, mac, mac_len, ca->dir.new_account, &ca->key);
		gnutls_memset(mac, 0, mac_len);
		free(mac);
		e = eab.failed || eab.data == NULL ? NULL : json_loads(eab.data, 0, NULL);
		buf_finish(&eab);
		if (e == NULL || json_object_set_new(j, "externalAccountBinding", e) < 0)
			goto oom;
	}
	out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (out == NULL)
		acme_problem_set(p, "", "out of memory");
	return out;
oom:
	json_decref(j);
	acme_problem_set(p, "", "out of memory");
	return NULL;
}

/* Registers the account (or finds it again: newAccount with a known key answers with
 * its URL) unless that is done. */
static int account(struct session *s, struct acme_problem *p)
{
	struct acme_ca *ca = s->ca;
	struct acme_response r = {0};
	char *payload = NULL;
	json_t *j = NULL;
	const char *status;
	int ret = -1;

	pthread_mutex_lock(&ca->setup);
	buf_init(&r.body);
	if (read_directory(s, p) < 0 || (!ca->have_key && account_key(ca, p) < 0))
		goto out;
	pthread_mutex_lock(&ca->lock);
	ret = ca->kid[0] != '\0' ? 0 : -1;
	pthread_mutex_unlock(&ca->lock);
	if (ret == 0)
		goto out;
	if ((payload = account_payload(ca, p)) == NULL)
		goto out;
	acme_response_finish(&r);
	if (post(s, ca->dir.new_account, payload, true, &r, p) < 0)
		goto out;
	j = acme_json(&r);
	status = acme_json_str(j, "status");
	if (r.location[0] == '\0' || strncmp(r.location, "https://", 8) != 0) {
		acme_problem_set(p, "", "%s: the CA gave no account URL", ca->dir.new_account);
		goto out;
	}
	if (status != NULL && strcmp(status, "valid") != 0) {
		acme_problem_set(p, "", "%s: the account is %.40s", ca->dir.new_account, status);
		goto out;
	}
	pthread_mutex_lock(&ca->lock);
	snprintf(ca->kid, sizeof(ca->kid), "%s", r.location);
	pthread_mutex_unlock(&ca->lock);
	ret = 0;
out:
	json_decref(j);
	free(payload);
	acme_response_finish(&r);
	pthread_mutex_unlock(&ca->setup);
	return ret;
}

/* ---- orders ---- */

/* POST-as-GET of an object into *ret (json_decref it). 0 / -1. */
static int fetch_object(struct session *s, const char *url, json_t **ret, long *ret_retry,
                        struct acme_problem *p)
{
	struct acme_response r;
	json_t *j;

	if (post(s, url, "", false, &r, p) < 0) {
		acme_response_finish(&r);
		return -1;
	}
	j = acme_json(&r);
	*ret_retry = r.retry_after;
	acme_response_finish(&r);
	if (!json_is_object(j) || acme_json_str(j, "status") == NULL) {
		json_decref(j);
		acme_problem_set(p, "", "%s: not an ACME object (no status)", url);
		return -1;
	}
	*ret = j;
	return 0;
}

/* Milliseconds before poll number n (from 0) of an object. */
static long poll_wait(long retry_after, unsigned n)
{
	long ms = POLL_FIRST;

	if (retry_after > 0)
		return 1000L * (retry_after > POLL_MAX ? POLL_MAX : retry_after);
	for (; n > 0 && ms < POLL_MAX * 1000L; n--)
		ms *= 2;
	return ms < POLL_MAX * 1000L ? ms : POLL_MAX * 1000L;
}

/* The challenge of type in authz: its URL and token. */
static bool find_challenge(const json_t *authz, const char *type, char *url, size_t url_size,
                           char *token, size_t token_size)
{
	const json_t *list = json_object_get(authz, "challenges"), *c;
	size_t i;

	if (!json_is_array(list))
		return false;
	json_array_foreach(list, i, c)
	{
		const char *t = acme_json_str(c, "type"), *tok = acme_json_str(c, "token");

		if (t == NULL || strcmp(t, type) != 0 || tok == NULL)
			continue;
		if (strlen(tok) < 16 || strlen(tok) >= token_size || strlen(tok) > TOKEN_MAX ||
		    strspn(tok,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
		        strlen(tok) ||
		    !acme_json_url(c, "url", url, url_size))
			return false;
		memcpy(token, tok, strlen(tok) + 1);
		return true;
	}
	return false;
}

/* The error of the challenge of type in authz, as the problem. */
static void challenge_problem(const json_t *authz, const char *type, struct acme_problem *p)
{
	const json_t *list = json_object_get(authz, "challenges"), *c;
	size_t i;

	acme_problem_set(p, "", "validation failed");
	json_array_foreach(list, i, c)
	{
		const char *t = acme_json_str(c, "type");

		if (t != NULL && strcmp(t, type) == 0 && json_object_get(c, "error") != NULL)
			acme_problem_of(c, "validation failed", p);
	}
}

/* Gets one authorization of the order valid, answering its challenge. */
static int authorize(struct session *s, const char *url, const char *host,
                     const struct acme_challenger *ch, struct acme_problem *p)
{
	char chal_url[URL_MAX], token[TOKEN_MAX + 1], keyauth[TOKEN_MAX + 64];
	struct acme_challenge c = {host, ch->type, token, keyauth};
	const json_t *id;
	json_t *authz = NULL;
	struct acme_response r = {0};
	const char *status, *value;
	long retry = 0;
	int ret = -1;

	buf_init(&r.body);
	if (fetch_object(s, url, &authz, &retry, p) < 0)
		goto out;
	id = json_object_get(authz, "identifier");
	value = json_is_object(id) ? acme_json_str(id, "value") : NULL;
	if (value == NULL || strcasecmp(value, host) != 0) {
		acme_problem_set(p, "", "%s: an authorization for another name", url);
		goto out;
	}
	status = acme_json_str(authz, "status");
	if (strcmp(status, "valid") == 0) {
		ret = 0;
		goto out;
	}
	if (strcmp(status, "pending") != 0) {
		acme_problem_of(authz, "authorization", p);
		snprintf(p->detail + strlen(p->detail), sizeof(p->detail) - strlen(p->detail),
		         " (%.20s)", status);
		goto out;
	}
	if (!find_challenge(authz, ch->type, chal_url, sizeof(chal_url), token, sizeof(token))) {
		acme_problem_set(p, "", "%s: the CA offers no usable %s challenge", url, ch->type);
		goto out;
	}
	snprintf(keyauth, sizeof(keyauth), "%s.%s", token, s->ca->key.thumbprint);
	if (ch->present(ch->arg, &c, p) < 0)
		goto out;
	if (post(s, chal_url, "{}", false, &r, p) < 0)
		goto cleanup;
	for (unsigned n = 0;; n++) {
		json_decref(authz);
		authz = NULL;
		if (!acme_session_pause(&s->h, poll_wait(retry, n))) {
			acme_problem_set(
			    p, "", "%s: still %s at the order's deadline (acme_order_timeout)", url,
			    "pending");
			goto cleanup;
		}
		if (fetch_object(s, url, &authz, &retry, p) < 0)
			goto cleanup;
		status = acme_json_str(authz, "status");
		if (strcmp(status, "valid") == 0)
			break;
		if (strcmp(status, "pending") != 0) {
			challenge_problem(authz, ch->type, p);
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	ch->cleanup(ch->arg, &c);
out:
	acme_response_finish(&r);
	json_decref(authz);
	return ret;
}

/* Waits for a finalized order to be valid: its certificate URL into cert_url. */
static int await_certificate(struct session *s, const char *order_url, json_t *order, long retry,
                             char *cert_url, struct acme_problem *p)
{
	unsigned n = 0;

	json_incref(order);
	for (;;) {
		const char *status = acme_json_str(order, "status");

		if (status != NULL && strcmp(status, "valid") == 0) {
			bool ok = acme_json_url(order, "certificate", cert_url, URL_MAX);

			json_decref(order);
			if (!ok)
				acme_problem_set(p, "",
				                 "%s: a valid order without a certificate URL",
				                 order_url);
			return ok ? 0 : -1;
		}
		if (status == NULL ||
		    (strcmp(status, "processing") != 0 && strcmp(status, "ready") != 0 &&
		     strcmp(status, "pending") != 0)) {
			acme_problem_of(order, "the order became invalid", p);
			json_decref(order);
			return -1;
		}
		json_decref(order);
		order = NULL;
		if (!acme_session_pause(&s->h, poll_wait(retry, n++))) {
			acme_problem_set(
			    p, "", "%s: not issued by the order's deadline (acme_order_timeout)",
			    order_url);
			return -1;
		}
		if (fetch_object(s, order_url, &order, &retry, p) < 0)
			return -1;
	}
}

int acme_ca_order(struct acme_ca *ca, const char *host, const struct acme_challenger *ch,
                  unsigned order_timeout, struct buf *ret, struct acme_problem *p)
{
	struct session s = {0};
	struct jose_key key;
	bool have_key = false;
	struct acme_response r = {0};
	json_t *order = NULL, *payload = NULL;
	const json_t *authzs, *a;
	char order_url[URL_MAX], finalize[URL_MAX], cert_url[URL_MAX], *text = NULL;
	struct buf csr, pem;
	size_t i;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	buf_init(&r.body);
	buf_init(&csr);
	buf_init(&pem);
	if (session_init(&s, ca, order_timeout) < 0) {
		acme_problem_set(p, "", "cannot set up a connection");
		goto out;
	}
	if (account(&s, p) < 0)
		goto out;
	payload = json_pack("{s:[{s:s,s:s}]}", "identifiers", "type", "dns", "value", host);
	if (payload == NULL || (text = json_dumps(payload, JSON_COMPACT)) == NULL) {
		acme_problem_set(p, "", "out of memory");
		goto out;
	}
	if (post(&s, ca->dir.new_order, text, false, &r, p) < 0)
		goto out;
	order = acme_json(&r);
	if (!acme_json_url(order, "finalize", finalize, sizeof(finalize)) ||
	    !json_is_array(authzs = json_object_get(order, "authorizations")) ||
	    json_array_size(authzs) == 0 || r.location[0] == '\0' ||
	    strncmp(r.location, "https://", 8) != 0) {
		acme_problem_set(p, "", "%s: not an order (finalize, authorizations, Location)",
		                 ca->dir.new_order);
		goto out;
	}
	snprintf(order_url, sizeof(order_url), "%s", r.location);
	json_array_foreach(authzs, i, a)
	{
		char url[URL_MAX];

		if (!json_is_string(a) || strncmp(json_string_value(a), "https://", 8) != 0 ||
		    strlen(json_string_value(a)) >= sizeof(url)) {
			acme_problem_set(p, "", "%s: a bad authorization URL", order_url);
			goto out;
		}
		snprintf(url, sizeof(url), "%s", json_string_value(a));
		if (authorize(&s, url, host, ch, p) < 0)
			goto out;
	}
	/* One new key per certificate, renewals included. */
	if (jose_key_generate(&key) < 0) {
		acme_problem_set(p, "", "cannot make a key");
		goto out;
	}
	have_key = true;
	if (acmecert_csr(&csr, key.key, host) < 0 || csr.failed) {
		acme_problem_set(p, "", "cannot make the CSR");
		goto out;
	}
	free(text);
	json_decref(payload);
	payload = json_pack("{s:s}", "csr", csr.data);
	if (payload == NULL || (text = json_dumps(payload, JSON_COMPACT)) == NULL) {
		acme_problem_set(p, "", "out of memory");
		text = NULL;
		goto out;
	}
	acme_response_finish(&r);
	if (post(&s, finalize, text, false, &r, p) < 0)
		goto out;
	json_decref(order);
	if ((order = acme_json(&r)) == NULL || !json_is_object(order)) {
		acme_problem_set(p, "", "%s: not an order", finalize);
		goto out;
	}
	if (await_certificate(&s, order_url, order, r.retry_after, cert_url, p) < 0)
		goto out;
	acme_response_finish(&r);
	if (post(&s, cert_url, "", false, &r, p) < 0)
		goto out;
	if (strncasecmp(r.content_type, "application/pem-certificate-chain", 33) != 0 ||
	    r.body.data == NULL || r.body.len == 0 ||
	    memmem(r.body.data, r.body.len, "-----BEGIN CERTIFICATE-----", 27) == NULL ||
	    memchr(r.body.data, '\0', r.body.len) != NULL) {
		acme_problem_set(p, "", "%s: not a PEM certificate chain", cert_url);
		goto out;
	}
	buf_append(ret, r.body.data, r.body.len);
	if (r.body.data[r.body.len - 1] != '\n')
		buf_puts(ret, "\n");
	if (jose_key_to_pem(&key, &pem) < 0 || pem.failed) {
		acme_problem_set(p, "", "out of memory");
		goto out;
	}
	buf_append(ret, pem.data, pem.len);
	if (ret->failed) {
		acme_problem_set(p, "", "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (pem.data != NULL)
		gnutls_memset(pem.data, 0, pem.len);
	buf_finish(&pem);
	buf_finish(&csr);
	if (have_key)
		jose_key_finish(&key);
	free(text);
	json_decref(payload);
	json_decref(order);
	acme_response_finish(&r);
	acme_session_finish(&s.h);
	return rc;
}

/* ---- ARI (RFC 9773) ---- */

/* Whether the CA offers ARI: the directory is read first when it was not (a restart
 * with every certificate in place orders nothing, so nothing else reads it); a CA that
 * cannot be reached is asked again after DIRECTORY_RETRY seconds, not for every name. */
static bool has_ari(struct session *s)
{
	struct acme_ca *ca = s->ca;
	struct acme_problem p;
	bool ari;

	pthread_mutex_lock(&ca->setup);
	if (!ca->have_dir && time(NULL) - ca->dir_failed_at >= DIRECTORY_RETRY &&
	    read_directory(s, &p) < 0)
		ca->dir_failed_at = time(NULL);
	ari = ca->have_dir && ca->dir.renewal_info[0] != '\0';
	pthread_mutex_unlock(&ca->setup);
	return ari;
}

/* An RFC 3339 date-time ("2025-01-02T03:04:05Z", fractions and offsets allowed). */
static int parse_time(const char *s, time_t *ret)
{
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	int sign, oh, om, n = 0;
	time_t t;

	if (rest == NULL)
		rest = strptime(s, "%Y-%m-%dt%H:%M:%S", &tm);
	if (rest == NULL)
		return -1;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			;
	t = timegm(&tm);
	if (*rest == 'Z' || *rest == 'z') {
		rest++;
	} else if ((*rest == '+' || *rest == '-') &&
	           sscanf(rest + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5) {
		sign = *rest == '+' ? 1 : -1;
		t -= sign * (oh * 3600 + om * 60);
		rest += 6;
	} else {
		return -1;
	}
	if (*rest != '\0' || t == (time_t)-1)
		return -1;
	*ret = t;
	return 0;
}

int acme_ca_renewal_time(struct acme_ca *ca, const char *pem, size_t len, time_t *ret_at)
{
	struct session s = {0};
	struct acme_problem p;
	struct acme_response r = {0};
	struct buf id, url;
	json_t *j = NULL, *w;
	time_t start, end;
	const char *a, *b;
	unsigned rnd;
	int rc = -1;

	buf_init(&id);
	buf_init(&url);
	buf_init(&r.body);
	if (session_init(&s, ca, ca->o.timeout) < 0 || !has_ari(&s) ||
	    acmecert_ari_id(pem, len, &id) < 0 || id.failed)
		goto out;
	buf_printf(&url, "%s%s%s", ca->dir.renewal_info,
	           ca->dir.renewal_info[strlen(ca->dir.renewal_info) - 1] == '/' ? "" : "/",
	           id.data);
	acme_response_finish(&r);
	if (url.failed || acme_request(&s.h, url.data, NULL, false, &r, &p) < 0 || r.status != 200)
		goto out;
	j = acme_json(&r);
	w = json_object_get(j, "suggestedWindow");
	a = acme_json_str(w, "start");
	b = acme_json_str(w, "end");
	if (a == NULL || b == NULL || parse_time(a, &start) < 0 || parse_time(b, &end) < 0 ||
	    end < start)
		goto out;
	/* A random time within the window spreads a fleet's renewals (RFC 9773 4.2). */
	gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd));
	*ret_at = start + (end > start ? (time_t)(rnd % (unsigned long)(end - start)) : 0);
	rc = 0;
out:
	json_decref(j);
	acme_response_finish(&r);
	buf_finish(&id);
	buf_finish(&url);
	acme_session_finish(&s.h);
	return rc;
}
