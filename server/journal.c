/* journal: what each domain served, kept in state_dir/journal */
#include "journal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hash.h"
#include "log.h"
#include "statefile.h"

#define MAGIC "mtastsd-journal 1\n"
#define FILE_MAX (512u << 20)
#define DOMAIN_MAX 253

struct jdomain {
	char *name;
	struct journal_entry *v; /* oldest first */
	size_t n, cap;
	unsigned gen; /* the sync generation that last served it */
	bool live;    /* served by this process now */
};

struct journal {
	pthread_mutex_t lock;
	char *path;        /* state_dir/journal, or NULL */
	struct hash index; /* name -> struct jdomain */
	struct jdomain **all;
	size_t n_all, cap_all;
	unsigned gen;
	bool dirty;
	time_t saved_at;
};

static struct jdomain *find(struct journal *j, const char *name)
{
	return hash_get(&j->index, name, strlen(name));
}

static struct jdomain *find_or_add(struct journal *j, const char *name)
{
	struct jdomain *d = find(j, name);

	if (d != NULL)
		return d;
	if (j->n_all == j->cap_all) {
		size_t cap = j->cap_all ? 2 * j->cap_all : 64;
		struct jdomain **v = reallocarray(j->all, cap, sizeof(*v));
		if (v == NULL)
			return NULL;
		j->all = v;
		j->cap_all = cap;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL || (d->name = strdup(name)) == NULL) {
		free(d);
		return NULL;
	}
	if (hash_put(&j->index, d->name, d, NULL) < 0) {
		free(d->name);
		free(d);
		return NULL;
	}
	j->all[j->n_all++] = d;
	return d;
}

/* Appends e, dropping the oldest entry when JOURNAL_KEEP are there. 0 / -1. */
static int entry_add(struct jdomain *d, const struct journal_entry *e)
{
	if (d->n == JOURNAL_KEEP) {
		memmove(d->v, d->v + 1, (d->n - 1) * sizeof(*d->v));
		d->n--;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 1;
		struct journal_entry *v = reallocarray(d->v, cap, sizeof(*v));
		if (v == NULL)
			return -1;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = *e;
	return 0;
}

static bool word_ok(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 127)
			return false;
	return true;
}

/* "DOMAIN ID MODE MAX_AGE FIRST LAST OPEN". 0 / -1. */
static int parse_line(char *line, char **ret_domain, struct journal_entry *e)
{
	char *f[7], *save = NULL, *end;
	size_t n = 0;
	unsigned long long v[4];

	for (char *w = strtok_r(line, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
		if (n == 7 || (f[n++] = w) == NULL)
			return -1;
	if (n != 7 || !word_ok(f[0], DOMAIN_MAX) || !policy_id_valid(f[1]) ||
	    policy_mode_parse(f[2], &e->mode) < 0)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		errno = 0;
		v[i] = strtoull(f[3 + i], &end, 10);
		if (errno != 0 || *end != '\0' || f[3 + i][0] < '0' || f[3 + i][0] > '9')
			return -1;
	}
	if (v[0] > POLICY_MAX_AGE_MAX || v[1] > INT64_MAX || v[2] > INT64_MAX || v[1] > v[2] ||
	    v[3] > 1)
		return -1;
	memcpy(e->id, f[1], strlen(f[1]) + 1);
	e->max_age = (uint32_t)v[0];
	e->first = (time_t)v[1];
	e->last = (time_t)v[2];
	e->open = v[3] != 0;
	*ret_domain = f[0];
	return 0;
}

static void load(struct journal *j, bool log)
{
	char *text = NULL, *save = NULL;
	size_t len, lineno = 1;

	if (statefile_read(j->path, FILE_MAX, &text, &len) < 0) {
		if (errno != ENOENT && log)
			log_msg("%s: cannot read: %s; the journal starts anew", j->path,
			        strerror(errno));
		return;
	}
	if (len < strlen(MAGIC) || memcmp(text, MAGIC, strlen(MAGIC)) != 0) {
		if (log)
			log_msg("%s: not a journal of this version, ignored", j->path);
		free(text);
		return;
	}
	for (char *line = strtok_r(text + strlen(MAGIC), "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		struct journal_entry e;
		char *domain;
		struct jdomain *d;

		lineno++;
		if (parse_line(line, &domain, &e) < 0) {
			if (log)
				log_msg("%s:%zu: damaged, the rest is ignored", j->path, lineno);
			break;
		}
		if ((d = find_or_add(j, domain)) == NULL || entry_add(d, &e) < 0) {
			log_msg("%s: out of memory", j->path);
			break;
		}
	}
	free(text);
}

struct journal *journal_open(const char *state_dir, bool log)
{
	struct journal *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	pthread_mutex_init(&j->lock, NULL);
	if (hash_init(&j->index, 64) < 0 ||
	    (state_dir != NULL && asprintf(&j->path, "%s/journal", state_dir) < 0)) {
		j->path = NULL;
		journal_close(j, false, 0);
		return NULL;
	}
	if (j->path != NULL)
		load(j, log);
	return j;
}

/* The journal as text. NULL when out of memory. */
static char *render(const struct journal *j, size_t *ret_len)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, MAGIC);
	for (size_t i = 0; i < j->n_all; i++) {
		const struct jdomain *d = j->all[i];

		for (size_t k = 0; k < d->n; k++) {
			const struct journal_entry *e = &d->v[k];

			buf_printf(&b, "%s %s %s %" PRIu32 " %lld %lld %d\n", d->name, e->id,
			           policy_mode_name(e->mode), e->max_age, (long long)e->first,
			           (long long)e->last, e->open ? 1 : 0);
		}
	}
	return buf_steal(&b, ret_len);
}

/* Sets every live domain's newest entry last to now (closing it when stopped) and writes
 * the file. Called with the lock. 0 / -1 (logged). */
static int save(struct journal *j, bool stopped, time_t now)
{
	char *text;
	size_t len;

	for (size_t i = 0; i < j->n_all; i++) {
		struct jdomain *d = j->all[i];

		if (d->live && d->n > 0) {
			d->v[d->n - 1].last = now;
			d->v[d->n - 1].open = !stopped;
		}
	}
	j->saved_at = now;
	if (j->path == NULL)
		return 0;
	if ((text = render(j, &len)) == NULL) {
		log_msg("%s: out of memory, not saved", j->path);
		return -1;
	}
	if (statefile_write(j->path, text, len, 0644) < 0) {
		log_msg("%s: cannot write: %s", j->path, strerror(errno));
		free(text);
		return -1;
	}
	free(text);
	j->dirty = false;
	return 0;
}

void journal_close(struct journal *j, bool stopped, time_t now)
{
	if (j == NULL)
		return;
	if (j->path != NULL && (j->dirty || stopped))
		save(j, stopped, now);
	for (size_t i = 0; i < j->n_all; i++) {
		free(j->all[i]->name);
		free(j->all[i]->v);
		free(j->all[i]);
	}
	free(j->all);
	hash_finish(&j->index);
	free(j->path);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

void journal_sync_begin(struct journal *j)
{
	pthread_mutex_lock(&j->lock);
	j->gen++;
	pthread_mutex_unlock(&j->lock);
}

void journal_sync_end(struct journal *j, time_t now)
{
	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->n_all; i++) {
		struct jdomain *d = j->all[i];

		if (d->live && d->gen != j->gen) {
			d->live = false;
			if (d->n > 0) {
				d->v[d->n - 1].last = now;
				d->v[d->n - 1].open = false;
			}
			j->dirty = true;
		}
	}
	pthread_mutex_unlock(&j->lock);
}

/* The number after "\nkey: " in a canonical body, or -1. */
static long long body_field(const char *body, const char *key)
{
	const char *s = strstr(body, key);

	return s != NULL ? strtoll(s + strlen(key), NULL, 10) : -1;
}

void journal_served(struct journal *j, const char *domain, const char *id, const char *body,
                    time_t now)
{
	struct journal_entry e = {.first = now, .last = now, .open = true};
	const char *mode = strstr(body, "\nmode: ");
	long long max_age = body_field(body, "\nmax_age: ");
	struct jdomain *d;
	size_t len;

	if (mode == NULL || max_age < 0 || max_age > POLICY_MAX_AGE_MAX ||
	    (len = strlen(id)) > POLICY_ID_MAX)
		return;
	mode += strlen("\nmode: ");
	e.mode = strncmp(mode, "enforce", 7) == 0   ? POLICY_MODE_ENFORCE
	         : strncmp(mode, "testing", 7) == 0 ? POLICY_MODE_TESTING
	                                            : POLICY_MODE_NONE;
	e.max_age = (uint32_t)max_age;
	memcpy(e.id, id, len + 1);

	pthread_mutex_lock(&j->lock);
	if ((d = find_or_add(j, domain)) == NULL) {
		pthread_mutex_unlock(&j->lock);
		log_msg("journal: out of memory");
		return;
	}
	d->gen = j->gen;
	if (d->n > 0) {
		struct journal_entry *cur = &d->v[d->n - 1];

		if (strcmp(cur->id, e.id) == 0 && cur->mode == e.mode &&
		    cur->max_age == e.max_age) {
			if (!d->live) /* served again, e.g. after a restart */
				j->dirty = true;
			d->live = true;
			cur->last = now;
			cur->open = true;
			pthread_mutex_unlock(&j->lock);
			return;
		}
		if (d->live) {
			cur->last = now;
			cur->open = false;
		}
	}
	if (entry_add(d, &e) < 0)
		log_msg("journal: out of memory");
	d->live = true;
	j->dirty = true;
	pthread_mutex_unlock(&j->lock);
}

int journal_checkpoint(struct journal *j, time_t now)
{
	int ret = 0;

	pthread_mutex_lock(&j->lock);
	if (j->dirty || now - j->saved_at >= JOURNAL_CHECKPOINT)
		ret = save(j, false, now);
	pthread_mutex_unlock(&j->lock);
	return ret;
}

size_t journal_history(struct journal *j, const char *domain, struct journal_entry *v,
                       bool *ret_live)
{
	struct jdomain *d;
	size_t n = 0;

	pthread_mutex_lock(&j->lock);
	if ((d = find(j, domain)) != NULL) {
		n = d->n;
		memcpy(v, d->v, n * sizeof(*v));
	}
	*ret_live = d != NULL && d->live;
	pthread_mutex_unlock(&j->lock);
	return n;
}

time_t journal_cached_until(const struct journal_entry *v, size_t n, bool live)
{
	time_t until = 0;

	for (size_t i = 0; i < n; i++) {
		time_t last = v[i].last;

		if (v[i].mode == POLICY_MODE_NONE)
			continue;
		if (live && i == n - 1)
			return (time_t)INT64_MAX; /* still served: not before it is replaced */
		if (v[i].open)
			last += JOURNAL_CHECKPOINT;
		if (last + (time_t)v[i].max_age > until)
			until = last + (time_t)v[i].max_age;
	}
	return until;
}

static void fmt_date(time_t t, char *out, size_t size)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, size, "?");
}

void journal_summary(const struct journal_entry *v, size_t n, bool live, time_t now, char *out,
                     size_t size)
{
	const struct journal_entry *cur;
	char since[32], until_s[32];
	time_t until;
	long days;

	if (n == 0) {
		snprintf(out, size, "%s", "");
		return;
	}
	cur = &v[n - 1];
	fmt_date(cur->first, since, sizeof(since));
	days = (long)((now - cur->first) / 86400);
	if (cur->mode != POLICY_MODE_NONE) {
		snprintf(out, size, "mode %s served since %s (%ld day%s)%s",
		         policy_mode_name(cur->mode), since, days, days == 1 ? "" : "s",
		         live ? "" : ", not served now");
		return;
	}
	until = journal_cached_until(v, n, live);
	fmt_date(until, until_s, sizeof(until_s));
	if (until == 0)
		snprintf(out, size,
		         "mode none since %s; no other policy in the journal: the records and the "
		         "policy host can go once the longest max_age ever published has passed",
		         since);
	else if (until > now)
		snprintf(out, size,
		         "mode none since %s; senders may hold an earlier policy until %s: keep "
		         "the records and the policy host until then, remove them after",
		         since, until_s);
	else
		snprintf(out, size,
		         "mode none since %s; no sender holds an earlier policy since %s: the "
		         "records and the policy host can be removed now",
		         since, until_s);
}

void journal_each(struct journal *j,
                  void (*fn)(void *arg, const char *domain, const struct journal_entry *v, size_t n,
                             bool live),
                  void *arg)
{
	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->n_all; i++) {
		const struct jdomain *d = j->all[i];

		if (d->n > 0)
			fn(arg, d->name, d->v, d->n, d->live);
	}
	pthread_mutex_unlock(&j->lock);
}
