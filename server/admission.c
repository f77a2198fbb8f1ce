/* admission: deadlines, per-address limits and shedding of idle connections */
#include "admission.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define IP_BUCKETS 4096
#define TICK_NS 250000000L
#define LOG_EVERY 10  /* seconds between two "shed" lines at most */
#define TOP_EVERY 100 /* milliseconds a crowded address is remembered (crowded()) */

const char *const admission_reason_names[ADMISSION_REASONS] = {"deadline", "idle", "slow", "full",
                                                               "per_ip"};

enum { LIST_NONE, LIST_WAITING, LIST_IDLE };

/* The connections of one client address. */
struct admission_ip {
	struct admission_ip *next; /* in its bucket */
	unsigned char addr[16];    /* IPv4 as ::ffff:a.b.c.d */
	unsigned n;
};

struct list {
	struct admission_conn *head, *tail; /* by deadline, soonest first */
};

struct admission {
	struct admission *next_alive; /* in alive */
	struct admission_opts o;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stop;
	struct list waiting; /* accepted or idle past idle_timeout: a head is due */
	struct list idle;    /* keep-alive, between requests */
	unsigned open;       /* connections started and not ended */
	unsigned closing;    /* of them, shut down by admission */
	struct admission_ip *ips[IP_BUCKETS];
	struct admission_ip *top; /* the address with the most connections, at top_at */
	int64_t top_at;
	unsigned long count[ADMISSION_REASONS];
	unsigned long logged[ADMISSION_REASONS]; /* counts at the last log line */
	time_t logged_at;
};

/* sa as 16 bytes (IPv4 mapped into IPv6); false for another family. */
static bool addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	if (sa != NULL && sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return true;
	}
	if (sa != NULL && sa->sa_family == AF_INET) {
		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	return false;
}

static size_t bucket(const unsigned char key[16])
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % IP_BUCKETS;
}

static struct admission_ip *ip_find(struct admission *a, const unsigned char key[16])
{
	for (struct admission_ip *ip = a->ips[bucket(key)]; ip != NULL; ip = ip->next)
		if (memcmp(ip->addr, key, 16) == 0)
			return ip;
	return NULL;
}

static void ip_release(struct admission *a, struct admission_ip *ip)
{
	struct admission_ip **p = &a->ips[bucket(ip->addr)];

	if (--ip->n != 0)
		return;
	if (a->top == ip)
		a->top = NULL;
	while (*p != ip)
		p = &(*p)->next;
	*p = ip->next;
	free(ip);
}

static void list_remove(struct admission *a, struct admission_conn *c)
{
	struct list *l = c->list == LIST_WAITING ? &a->waiting : &a->idle;

	if (c->list == LIST_NONE)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	c->list = LIST_NONE;
}

/* Appends c to list (which) with deadline: deadlines are now + a constant per list, so the
 * tail is the latest. */
static void list_append(struct admission *a, struct admission_conn *c, int which, int64_t deadline)
{
	struct list *l = which == LIST_WAITING ? &a->waiting : &a->idle;

	list_remove(a, c);
	c->list = which;
	c->deadline = deadline;
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

/* Shuts c's socket down: its listener sees the end, closes it and calls admission_end().
 * The socket cannot have been closed yet: that comes after admission_end(), which takes
 * the lock held here. */
static void shed(struct admission *a, struct admission_conn *c, enum admission_reason why)
{
	list_remove(a, c);
	c->shed = true;
	a->closing++;
	a->count[why]++;
	shutdown(c->fd, SHUT_RDWR);
}

/* One line every LOG_EVERY seconds at most, when anything was shed or refused. */
static void log_shed(struct admission *a, time_t now)
{
	unsigned long d[ADMISSION_REASONS], total = 0;

	if (now - a->logged_at < LOG_EVERY)
		return;
	for (int i = 0; i < ADMISSION_REASONS; i++)
		total += d[i] = a->count[i] - a->logged[i];
	if (total == 0)
		return;
	memcpy(a->logged, a->count, sizeof(a->logged));
	a->logged_at = now;
	log_warn("%s: %lu connections shed or refused in %d s (no request head in time: %lu, "
	         "idle closed for new ones: %lu, slowest closed for new ones: %lu, table full: "
	         "%lu, over the per-address limit: %lu); %u open",
	         a->o.name, total, LOG_EVERY, d[ADMISSION_DEADLINE], d[ADMISSION_IDLE],
	         d[ADMISSION_SLOW], d[ADMISSION_FULL], d[ADMISSION_PER_IP], a->open - a->closing);
}

/* Every admission, for admission_each(). */
static pthread_mutex_t alive_lock = PTHREAD_MUTEX_INITIALIZER;
static struct admission *alive;

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *reaper(void *arg)
{
	struct admission *a = arg;
	struct timespec at;

	pthread_mutex_lock(&a->lock);
	clock_gettime(CLOCK_REALTIME, &at);
	while (!a->stop) {
		int64_t now = now_ms();

		/* An idle connection whose idle_timeout passed waits for a head like a new
		 * one (the listener's own idle timeout may close it first). */
		while (a->idle.head != NULL && a->idle.head->deadline <= now)
			list_append(a, a->idle.head, LIST_WAITING,
			            now + a->o.head_timeout * 1000LL);
		while (a->waiting.head != NULL && a->waiting.head->deadline <= now)
			shed(a, a->waiting.head, ADMISSION_DEADLINE);
		log_shed(a, time(NULL));
		at.tv_nsec += TICK_NS;
		if (at.tv_nsec >= 1000000000L) {
			at.tv_sec++;
			at.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&a->wake, &a->lock, &at);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

struct admission *admission_create(const struct admission_opts *o)
{
	struct admission *a = calloc(1, sizeof(*a));
	int err;

	if (a == NULL) {
		log_err("%s: out of memory", o->name);
		return NULL;
	}
	a->o = *o;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	if ((err = pthread_create(&a->thread, NULL, reaper, a)) != 0) {
		log_err("%s: cannot start a thread: %s", o->name, strerror(err));
		pthread_cond_destroy(&a->wake);
		pthread_mutex_destroy(&a->lock);
		free(a);
		return NULL;
	}
	pthread_mutex_lock(&alive_lock);
	a->next_alive = alive;
	alive = a;
	pthread_mutex_unlock(&alive_lock);
	return a;
}

void admission_destroy(struct admission *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&alive_lock);
	for (struct admission **p = &alive; *p != NULL; p = &(*p)->next_alive)
		if (*p == a) {
			*p = a->next_alive;
			break;
		}
	pthread_mutex_unlock(&alive_lock);
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	for (size_t i = 0; i < IP_BUCKETS; i++)
		while (a->ips[i] != NULL) {
			struct admission_ip *next = a->ips[i]->next;
			free(a->ips[i]);
			a->ips[i] = next;
		}
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* With the table full and no connection owing its head for a second: the oldest one still
 * owing it from the address that holds the most connections, if that is more than the new
 * client's address would hold with the new one. Attackers that reconnect as fast as they
 * are shed keep every connection young; per address they cannot crowd out a client that
 * holds fewer. The busiest address is looked up at most every TOP_EVERY ms (the buckets
 * are walked). */
static struct admission_conn *crowded(struct admission *a, unsigned mine, int64_t now)
{
	if (a->top == NULL || now - a->top_at >= TOP_EVERY) {
		a->top = NULL;
		for (size_t i = 0; i < IP_BUCKETS; i++)
			for (struct admission_ip *ip = a->ips[i]; ip != NULL; ip = ip->next)
				if (a->top == NULL || ip->n > a->top->n)
					a->top = ip;
		a->top_at = now;
	}
	if (a->top == NULL || a->top->n <= mine + 1)
		return NULL;
	for (struct admission_conn *c = a->waiting.head; c != NULL; c = c->next)
		if (c->ip == a->top)
			return c;
	return NULL;
}

bool admission_accept(struct admission *a, const struct sockaddr *sa)
{
	unsigned char key[16];
	struct admission_ip *ip = NULL;
	bool ok = true;

	pthread_mutex_lock(&a->lock);
	if (addr_key(sa, key))
		ip = ip_find(a, key);
	if (a->o.per_ip != 0 && ip != NULL && ip->n >= a->o.per_ip) {
		a->count[ADMISSION_PER_IP]++;
		ok = false;
	} else if (a->open - a->closing >= a->o.max_connections) {
		struct admission_conn *oldest = a->waiting.head, *crowd;
		int64_t now = now_ms();

		if (a->idle.head != NULL) {
			shed(a, a->idle.head, ADMISSION_IDLE);
		} else if (oldest != NULL &&
		           oldest->deadline - a->o.head_timeout * 1000LL <= now - 1000) {
			/* a fresh client sends its head in milliseconds: the one that has
			 * owed it longest is the likeliest to be a slow attacker */
			shed(a, oldest, ADMISSION_SLOW);
		} else if ((crowd = crowded(a, ip != NULL ? ip->n : 0, now)) != NULL) {
			shed(a, crowd, ADMISSION_SLOW);
		} else {
			a->count[ADMISSION_FULL]++;
			ok = false;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return ok;
}

void admission_start(struct admission *a, struct admission_conn *c, int fd,
                     const struct sockaddr *sa)
{
	unsigned char key[16];

	pthread_mutex_lock(&a->lock);
	c->fd = fd;
	a->open++;
	if (addr_key(sa, key)) {
		if ((c->ip = ip_find(a, key)) == NULL &&
		    (c->ip = calloc(1, sizeof(*c->ip))) != NULL) {
			memcpy(c->ip->addr, key, 16);
			c->ip->next = a->ips[bucket(key)];
			a->ips[bucket(key)] = c->ip;
		}
		if (c->ip != NULL)
			c->ip->n++;
	}
	list_append(a, c, LIST_WAITING, now_ms() + a->o.head_timeout * 1000LL);
	pthread_mutex_unlock(&a->lock);
}

void admission_head(struct admission *a, struct admission_conn *c)
{
	pthread_mutex_lock(&a->lock);
	list_remove(a, c);
	pthread_mutex_unlock(&a->lock);
}

void admission_idle(struct admission *a, struct admission_conn *c)
{
	pthread_mutex_lock(&a->lock);
	if (!c->shed)
		list_append(a, c, LIST_IDLE, now_ms() + a->o.idle_timeout * 1000LL);
	pthread_mutex_unlock(&a->lock);
}

void admission_end(struct admission *a, struct admission_conn *c)
{
	pthread_mutex_lock(&a->lock);
	list_remove(a, c);
	if (c->shed)
		a->closing--;
	if (c->ip != NULL)
		ip_release(a, c->ip);
	c->ip = NULL;
	a->open--;
	pthread_mutex_unlock(&a->lock);
}

unsigned long admission_count(struct admission *a, enum admission_reason reason)
{
	unsigned long n;

	pthread_mutex_lock(&a->lock);
	n = a->count[reason];
	pthread_mutex_unlock(&a->lock);
	return n;
}

unsigned admission_open(struct admission *a)
{
	unsigned n;

	pthread_mutex_lock(&a->lock);
	n = a->open - a->closing;
	pthread_mutex_unlock(&a->lock);
	return n;
}

void admission_each(void (*fn)(void *arg, struct admission *a, const char *name), void *arg)
{
	pthread_mutex_lock(&alive_lock);
	for (struct admission *a = alive; a != NULL; a = a->next_alive)
		fn(arg, a, a->o.name);
	pthread_mutex_unlock(&alive_lock);
}
