/* acmeanswer: the answers to pending ACME challenges: this process's, kept in memory and
 * written to state_dir, and other replicas', read from there */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "acmeanswer.h"
#include "acmecert.h"
#include "acmestate.h"
#include "statefile.h"

#define KEYAUTH_MAX 512
/* Validation certificates made for other replicas' challenges, kept at most. */
#define FOREIGN_MAX 64

/* One challenge answered. */
struct challenge {
	struct challenge *next;
	char *host;
	char *token;
	char keyauth[KEYAUTH_MAX];
	struct tls_cert *cert; /* tls-alpn-01 */
	time_t made;
};

struct acme_answers {
	char *state_dir;
	bool http01;
	pthread_mutex_t lock; /* the lists */
	struct challenge *mine;
	struct challenge *foreign; /* validation certificates of other replicas' challenges */
};

static void challenge_free(struct challenge *c)
{
	tls_cert_unref(c->cert);
	free(c->host);
	free(c->token);
	gnutls_memset(c->keyauth, 0, sizeof(c->keyauth));
	free(c);
}

static void challenges_free(struct challenge *c)
{
	while (c != NULL) {
		struct challenge *next = c->next;

		challenge_free(c);
		c = next;
	}
}

struct acme_answers *acme_answers_create(const char *state_dir, bool http01)
{
	struct acme_answers *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->state_dir = strdup(state_dir)) == NULL) {
		free(a);
		return NULL;
	}
	a->http01 = http01;
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void acme_answers_destroy(struct acme_answers *a)
{
	if (a == NULL)
		return;
	challenges_free(a->mine);
	challenges_free(a->foreign);
	pthread_mutex_destroy(&a->lock);
	free(a->state_dir);
	free(a);
}

static int http01_path(char *out, size_t size, const char *state_dir, const char *token)
{
	int n = snprintf(out, size, "%s/acme/http-01/%s", state_dir, token);

	return n > 0 && (size_t)n < size ? 0 : -1;
}

static bool token_ok(const char *token)
{
	size_t len = strlen(token);

	return len > 0 && len <= 256 &&
	       strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	           len;
}

/* Answers a challenge: in memory for this process, in state_dir for the other replicas
 * the CA may reach instead. */
int acme_answers_add(void *arg, const struct acme_challenge *ch, struct acme_problem *p)
{
	struct acme_answers *a = arg;
	struct challenge *c = calloc(1, sizeof(*c));
	const char *dir = a->state_dir;
	char path[4096];

	if (c == NULL || (c->host = strdup(ch->host)) == NULL ||
	    (c->token = strdup(ch->token)) == NULL)
		goto oom;
	snprintf(c->keyauth, sizeof(c->keyauth), "%s", ch->key_authorization);
	c->made = time(NULL);
	if (!a->http01) {
		if ((c->cert = acmecert_challenge(ch->host, ch->key_authorization, c->made)) ==
		    NULL)
			goto oom;
		if (acmestate_path(path, sizeof(path), dir, ch->host, "alpn") < 0)
			goto oom;
	} else {
		char d[4096];

		if (snprintf(d, sizeof(d), "%s/acme/http-01", dir) >= (int)sizeof(d) ||
		    statefile_mkdirs(d, 0755) < 0 ||
		    http01_path(path, sizeof(path), dir, ch->token) < 0)
			goto io;
	}
	if (statefile_write(path, ch->key_authorization, strlen(ch->key_authorization), 0644) < 0)
		goto io;
	pthread_mutex_lock(&a->lock);
	c->next = a->mine;
	a->mine = c;
	pthread_mutex_unlock(&a->lock);
	return 0;
io:
	acme_problem_set(p, "", "%s: cannot write the challenge: %s", path, strerror(errno));
	challenge_free(c);
	return -1;
oom:
	acme_problem_set(p, "", "cannot make the %s answer", ch->type);
	if (c != NULL)
		challenge_free(c);
	return -1;
}

void acme_answers_remove(void *arg, const struct acme_challenge *ch)
{
	struct acme_answers *a = arg;
	struct challenge **pp, *c = NULL;
	char path[4096];

	pthread_mutex_lock(&a->lock);
	for (pp = &a->mine; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->token, ch->token) == 0 && strcmp((*pp)->host, ch->host) == 0) {
			c = *pp;
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (c != NULL)
		challenge_free(c);
	if (!a->http01 ? acmestate_path(path, sizeof(path), a->state_dir, ch->host, "alpn") == 0
	               : http01_path(path, sizeof(path), a->state_dir, ch->token) == 0)
		unlink(path);
}

/* Another replica's pending TLS-ALPN-01 challenge for host, from state_dir: its
 * validation certificate (made once per key authorization). Lock held. */
static struct tls_cert *foreign_alpn(struct acme_answers *a, const char *host)
{
	char path[4096], *keyauth = NULL;
	struct challenge *c, **pp;
	size_t len, n = 0;

	if (acmestate_path(path, sizeof(path), a->state_dir, host, "alpn") < 0 ||
	    statefile_read(path, KEYAUTH_MAX - 1, &keyauth, &len) < 0)
		return NULL;
	for (c = a->foreign; c != NULL; c = c->next)
		if (strcmp(c->host, host) == 0 && strcmp(c->keyauth, keyauth) == 0)
			break;
	if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
		snprintf(c->keyauth, sizeof(c->keyauth), "%s", keyauth);
		c->host = strdup(host);
		c->token = strdup("");
		c->cert = acmecert_challenge(host, keyauth, time(NULL));
		if (c->host == NULL || c->token == NULL || c->cert == NULL) {
			challenge_free(c);
			c = NULL;
		} else {
			c->next = a->foreign;
			a->foreign = c;
		}
	}
	free(keyauth);
	/* Keep the newest few. */
	for (pp = &a->foreign; *pp != NULL; pp = &(*pp)->next) {
		if (++n > FOREIGN_MAX) {
			challenges_free(*pp);
			*pp = NULL;
			break;
		}
	}
	return c != NULL ? tls_cert_ref(c->cert) : NULL;
}

struct tls_cert *acme_answers_alpn(struct acme_answers *a, const char *host)
{
	struct tls_cert *cert = NULL;

	pthread_mutex_lock(&a->lock);
	if (!a->http01) {
		for (struct challenge *c = a->mine; c != NULL && cert == NULL; c = c->next)
			if (c->cert != NULL && strcasecmp(c->host, host) == 0)
				cert = tls_cert_ref(c->cert);
		if (cert == NULL)
			cert = foreign_alpn(a, host);
	}
	pthread_mutex_unlock(&a->lock);
	return cert;
}

int acme_answers_http(struct acme_answers *a, const char *token, char *out, size_t size)
{
	char path[4096], *keyauth = NULL;
	size_t len;
	int ret = -1;

	if (!token_ok(token))
		return -1;
	pthread_mutex_lock(&a->lock);
	if (!a->http01)
		goto out;
	for (struct challenge *c = a->mine; c != NULL; c = c->next) {
		if (strcmp(c->token, token) == 0) {
			ret = snprintf(out, size, "%s", c->keyauth) < (int)size ? 0 : -1;
			goto out;
		}
	}
	if (http01_path(path, sizeof(path), a->state_dir, token) == 0 &&
	    statefile_read(path, KEYAUTH_MAX - 1, &keyauth, &len) == 0 &&
	    strncmp(keyauth, token, strlen(token)) == 0 && keyauth[strlen(token)] == '.')
		ret = snprintf(out, size, "%s", keyauth) < (int)size ? 0 : -1;
	free(keyauth);
out:
	pthread_mutex_unlock(&a->lock);
	return ret;
}
