/* hook: the on_change command, run on one background worker for each new id of a domain */
#include "hook.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "policy.h"

extern char **environ;

#define STATE_FILE "announced"
#define STATE_TMP ".announced.tmp"
#define DOMAIN_MAX 253
#define ID_MAX POLICY_ID_MAX
#define LINE_LEN (DOMAIN_MAX + 1 + ID_MAX + 2) /* "DOMAIN ID\n" and its NUL */
#define RETRY_FIRST 30                         /* seconds, or the timeout when shorter */
#define RETRY_MAX 600                          /* seconds */
#define RETRY_LISTS 11          /* 1 << 10 > RETRY_MAX: the last list always waits RETRY_MAX */
#define SAVE_INTERVAL_MS 300000 /* a long queue is saved this often while it drains */
#define READY 0                 /* index of the ready list in hooks.lists */
#define NO_LIST UINT8_MAX

struct entry {
	struct entry *prev, *next; /* in hooks.lists[list] */
	struct entry *older;       /* every entry, newest first: set once, never unlinked */
	char *pending;             /* the id still to announce (queued, running or retried) */
	int64_t due;               /* in a retry list: when, monotonic ms */
	unsigned failures;         /* failed runs of pending */
	uint8_t list;              /* READY, a retry list, or NO_LIST */
	bool running;
	char announced[ID_MAX + 1]; /* the id of the last run that exited 0, or "" */
	char domain[];              /* the key in hooks.index */
};

struct list {
	struct entry *head, *tail;
};

struct hooks {
	char *cmd;        /* NULL: remember only */
	char *state_path; /* state_dir/announced, or NULL */
	char *state_tmp;
	char *state_dir;
	unsigned timeout;     /* seconds */
	unsigned retry_first; /* seconds */
	int stop_pipe[2];     /* written by hooks_destroy(): wakes the worker waiting on a child */
	pthread_t thread;

	/* Guarded by lock. An entry's announced is written by the worker only, with the lock
	 * held, so the worker reads it without the lock. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct hash index;                  /* domain -> entry */
	struct entry *newest;               /* every entry through ->older */
	struct list lists[1 + RETRY_LISTS]; /* ready, then retry list k waits retry_delay(k) */
	size_t n_pending;                   /* entries with a pending id */
	uint64_t gen;                       /* runs that exited 0 */
	bool stopping;

	/* The worker's own. */
	uint64_t saved_gen;  /* gen written to the state file */
	uint64_t failed_gen; /* gen that could not be written: not tried again */
	int64_t saved_at;    /* ms */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A domain or id that fits a line of the state file and an argument: 1 to max printable
 * ASCII bytes, no space. */
static bool word_valid(const char *s, size_t max)
{
	size_t len = 0;

	for (; s[len] != '\0'; len++)
		if (len == max || s[len] <= ' ' || s[len] > '~')
			return false;
	return len != 0;
}

/* Seconds a run waits in retry list k (1 .. RETRY_LISTS). */
static unsigned retry_delay(const struct hooks *h, unsigned k)
{
	unsigned delay = h->retry_first << (k - 1);

	return delay < RETRY_MAX ? delay : RETRY_MAX;
}

static void list_append(struct hooks *h, struct entry *e, uint8_t k)
{
	struct list *l = &h->lists[k];

	e->prev = l->tail;
	e->next = NULL;
	if (l->tail != NULL)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
	e->list = k;
}

static void list_unlink(struct hooks *h, struct entry *e)
{
	struct list *l;

	if (e->list == NO_LIST)
		return;
	l = &h->lists[e->list];
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
	e->list = NO_LIST;
}

/* Forgets e's pending id: announced, or back to the one announced before. */
static void drop_pending(struct hooks *h, struct entry *e)
{
	list_unlink(h, e);
	free(e->pending);
	e->pending = NULL;
	e->failures = 0;
	h->n_pending--;
}

/* A new entry for domain (valid) with announced id (valid or ""), or NULL when out of
 * memory. */
static struct entry *entry_add(struct hooks *h, const char *domain, const char *announced)
{
	size_t len = strlen(domain);
	struct entry *e = calloc(1, sizeof(*e) + len + 1);

	if (e == NULL)
		return NULL;
	memcpy(e->domain, domain, len + 1);
	memcpy(e->announced, announced, strlen(announced) + 1);
	e->list = NO_LIST;
	if (hash_put(&h->index, e->domain, e, NULL) != 0) {
		free(e);
		return NULL;
	}
	e->older = h->newest;
	h->newest = e;
	return e;
}

static void entries_free(struct hooks *h)
{
	struct entry *e = h->newest;

	while (e != NULL) {
		struct entry *older = e->older;

		free(e->pending);
		free(e);
		e = older;
	}
	h->newest = NULL;
	hash_finish(&h->index);
}

/* Reads the state file into h, before the worker starts. A missing or damaged file is
 * logged and counts as empty. 0, or -1 when out of memory. */
static int load(struct hooks *h)
{
	char line[LINE_LEN];
	unsigned lineno = 0;
	FILE *f = fopen(h->state_path, "re");

	if (f == NULL) {
		if (errno == ENOENT)
			log_msg("%s: no announced ids yet: every domain is announced",
			        h->state_path);
		else
			log_warn("%s: %s: every domain is announced", h->state_path,
			         strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);
		char *id = strchr(line, ' ');

		lineno++;
		/* Too long, cut short, or with a NUL byte: no newline where strlen() ends. */
		if (len == 0 || line[len - 1] != '\n' || id == NULL)
			goto damaged;
		line[len - 1] = '\0';
		*id++ = '\0';
		if (!word_valid(line, DOMAIN_MAX) || !word_valid(id, ID_MAX) ||
		    hash_get(&h->index, line, strlen(line)) != NULL)
			goto damaged;
		if (entry_add(h, line, id) == NULL) {
			fclose(f);
			return -1;
		}
	}
	if (ferror(f)) {
		log_warn("%s: cannot read: %s; every domain is announced", h->state_path,
		         strerror(errno));
		goto forget;
	}
	fclose(f);
	return 0;
damaged:
	log_warn("%s:%u: damaged, ignored: every domain is announced", h->state_path, lineno);
forget:
	fclose(f);
	entries_free(h);
	return hash_init(&h->index, 0);
}

/* Writes every announced id to the state file: temp file, fsync, rename, fsync of the
 * directory. Called by the worker without the lock: entries are neither freed nor taken
 * off the ->older chain while it runs, and their announced is written by the worker only.
 * 0 / -1 (logged). */
static int save(const struct hooks *h, const struct entry *newest)
{
	FILE *f = fopen(h->state_tmp, "we");
	int fd;

	if (f == NULL)
		goto fail;
	for (const struct entry *e = newest; e != NULL; e = e->older)
		if (e->announced[0] != '\0' && fprintf(f, "%s %s\n", e->domain, e->announced) < 0)
			break;
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) < 0) {
		int err = errno;

		fclose(f);
		errno = err;
		goto fail;
	}
	if (fclose(f) != 0 || rename(h->state_tmp, h->state_path) < 0)
		goto fail;
	fd = open(h->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	log_err("%s: cannot save the announced ids: %s", h->state_path, strerror(errno));
	unlink(h->state_tmp);
	return -1;
}

/* Starts "cmd domain id" as hooks_create() says. 0, or an error number. */
static int spawn(const struct hooks *h, const char *domain, const char *id, pid_t *ret_pid)
{
	char *argv[] = {(char *)(uintptr_t)h->cmd, (char *)(uintptr_t)domain, (char *)(uintptr_t)id,
	                NULL};
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int r;

	if ((r = posix_spawn_file_actions_init(&actions)) != 0)
		return r;
	if ((r = posix_spawnattr_init(&attr)) != 0)
		goto out_actions;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE); /* ignored by the server, and an ignored signal survives exec */
	/* Only stdin, stdout and stderr: not every library marks its descriptors close-on-exec
	 * (addclosefrom_np: glibc 2.34). */
	if ((r = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY,
	                                          0)) != 0 ||
	    (r = posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1)) != 0 ||
	    (r = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
	    (r = posix_spawnattr_setsigdefault(&attr, &dfl)) != 0 ||
	    (r = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
	    (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                             POSIX_SPAWN_SETPGROUP)) != 0)
		goto out_attr;
	r = strchr(h->cmd, '/') != NULL
	        ? posix_spawn(ret_pid, h->cmd, &actions, &attr, argv, environ)
	        : posix_spawnp(ret_pid, h->cmd, &actions, &attr, argv, environ);
out_attr:
	posix_spawnattr_destroy(&attr);
out_actions:
	posix_spawn_file_actions_destroy(&actions);
	return r;
}

enum waited {
	WAITED_EXIT,    /* the child exited */
	WAITED_TIMEOUT, /* the deadline passed */
	WAITED_STOP,    /* hooks_destroy() */
	WAITED_FAIL,    /* cannot wait for it */
};

/* The child's exit, seen by a thread when there is no pidfd. */
struct waiter {
	pid_t pid;
	int fd; /* write end of the pipe, closed when the child exits */
	bool started;
	pthread_t thread;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	siginfo_t info;

	/* WNOWAIT: the child stays unreaped, its pid its own, until run() reaps it. */
	while (waitid(P_PID, (id_t)w->pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	close(w->fd);
	return NULL;
}

/* A descriptor that becomes readable when the child exits, or -1 (errno set): a pidfd, or
 * without one (Linux before 5.3, a seccomp profile without pidfd_open, valgrind 3.19) the
 * read end of a pipe whose write end a thread closes once waitid() sees the child exit. */
static int exit_fd(struct waiter *w)
{
	int fds[2], r;

	if ((fds[0] = pidfd_open(w->pid, 0)) >= 0)
		return fds[0];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	w->fd = fds[1];
	if ((r = pthread_create(&w->thread, NULL, waiter_main, w)) != 0) {
		close(fds[0]);
		close(fds[1]);
		errno = r;
		return -1;
	}
	w->started = true;
	return fds[0];
}

/* Waits without a busy loop for fd (the child's exit), the deadline or stop_pipe. */
static enum waited wait_exit(const struct hooks *h, int fd, int64_t deadline, int *ret_errno)
{
	for (;;) {
		struct pollfd fds[] = {{.fd = fd, .events = POLLIN},
		                       {.fd = h->stop_pipe[0], .events = POLLIN}};
		int64_t left = deadline - now_ms();
		int r;

		if (left <= 0)
			return WAITED_TIMEOUT;
		r = poll(fds, 2, left < INT32_MAX ? (int)left : INT32_MAX);
		if (r < 0 && errno != EINTR) {
			*ret_errno = errno;
			return WAITED_FAIL;
		}
		if (r > 0)
			return fds[0].revents != 0 ? WAITED_EXIT : WAITED_STOP;
	}
}

/* Runs "cmd domain id" and waits for it, at most the timeout or until hooks_destroy(),
 * which kill its process group. 0 when it exited 0, else -1 with why set. */
static int run(const struct hooks *h, const char *domain, const char *id, char *why, size_t why_len)
{
	int64_t deadline = now_ms() + (int64_t)h->timeout * 1000;
	struct waiter w = {.fd = -1};
	int status = 0, err = 0, fd;
	enum waited ended;

	if (h->cmd == NULL)
		return 0;
	if ((err = spawn(h, domain, id, &w.pid)) != 0) {
		snprintf(why, why_len, "cannot run: %s", strerror(err));
		return -1;
	}
	fd = exit_fd(&w);
	if (fd < 0) {
		err = errno;
		ended = WAITED_FAIL;
	} else {
		ended = wait_exit(h, fd, deadline, &err);
	}
	if (ended != WAITED_EXIT) {
		/* Not reaped yet: the pid (and the group id) cannot have been reused. */
		kill(-w.pid, SIGKILL);
		kill(w.pid, SIGKILL); /* should it have left its group */
	}
	if (w.started)
		pthread_join(w.thread, NULL);
	if (fd >= 0)
		close(fd);
	while (waitpid(w.pid, &status, 0) < 0 && errno == EINTR)
		;
	/* A child killed just as it exits keeps its own status; what it left running in its
	 * group after exiting is its own business. */
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(why, why_len, "exit status %d", WEXITSTATUS(status));
	else if (WTERMSIG(status) != SIGKILL || ended == WAITED_EXIT)
		snprintf(why, why_len, "killed by signal %d", WTERMSIG(status));
	else if (ended == WAITED_TIMEOUT)
		snprintf(why, why_len, "still running after %u s, killed", h->timeout);
	else if (ended == WAITED_STOP)
		snprintf(why, why_len, "killed at shutdown");
	else
		snprintf(why, why_len, "cannot wait for it (%s), killed", strerror(err));
	return -1;
}

/* The first ready entry, else the retry that fell due first, else NULL. */
static struct entry *next_due(const struct hooks *h, int64_t now)
{
	struct entry *best = NULL;

	if (h->lists[READY].head != NULL)
		return h->lists[READY].head;
	for (unsigned k = 1; k <= RETRY_LISTS; k++) {
		struct entry *e = h->lists[k].head;

		if (e != NULL && e->due <= now && (best == NULL || e->due < best->due))
			best = e;
	}
	return best;
}

/* When the next retry is due, or -1 when there is none. */
static int64_t next_retry(const struct hooks *h)
{
	int64_t due = -1;

	for (unsigned k = 1; k <= RETRY_LISTS; k++) {
		const struct entry *e = h->lists[k].head;

		if (e != NULL && (due < 0 || e->due < due))
			due = e->due;
	}
	return due;
}

/* Runs e's pending id with the lock released, then files the outcome. Called by the
 * worker with the lock held. */
static void run_entry(struct hooks *h, struct entry *e)
{
	char id[ID_MAX + 1], why[160], next[64] = "";
	unsigned failures = e->failures;
	int ok;

	list_unlink(h, e);
	e->running = true;
	memcpy(id, e->pending, strlen(e->pending) + 1);
	pthread_mutex_unlock(&h->lock);
	ok = run(h, e->domain, id, why, sizeof(why)) == 0;
	pthread_mutex_lock(&h->lock);
	e->running = false;

	if (ok) {
		memcpy(e->announced, id, strlen(id) + 1);
		h->gen++;
	}
	if (strcmp(e->pending, id) == 0) {
		/* Not replaced (it may have been queued again with the same id). */
		if (ok) {
			drop_pending(h, e);
		} else {
			unsigned k = ++e->failures < RETRY_LISTS ? e->failures : RETRY_LISTS;

			list_unlink(h, e);
			e->due = now_ms() + (int64_t)retry_delay(h, k) * 1000;
			list_append(h, e, (uint8_t)k);
			snprintf(next, sizeof(next), "; retry in %u s", retry_delay(h, k));
		}
	} else {
		/* A newer id waits in the ready list, unless it is the one announced now. */
		if (strcmp(e->pending, e->announced) == 0)
			drop_pending(h, e);
		if (!ok)
			snprintf(next, sizeof(next), "; not retried: a newer id replaces it");
	}
	if (ok && failures == 0)
		return;
	if (h->stopping)
		snprintf(next, sizeof(next), "; announced again at the next start");
	pthread_mutex_unlock(&h->lock);
	if (ok)
		log_msg("on_change %s %s %s: done after %u failed runs", h->cmd, e->domain, id,
		        failures);
	else
		log_warn("on_change %s %s %s: %s%s", h->cmd, e->domain, id, why, next);
	pthread_mutex_lock(&h->lock);
}

static void save_entries(struct hooks *h)
{
	const struct entry *newest = h->newest;
	uint64_t gen = h->gen;
	int r;

	pthread_mutex_unlock(&h->lock);
	r = save(h, newest);
	pthread_mutex_lock(&h->lock);
	if (r == 0)
		h->saved_gen = gen;
	else
		h->failed_gen = gen;
	h->saved_at = now_ms();
}

static void *worker(void *arg)
{
	struct hooks *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		int64_t now = now_ms(), due;
		struct entry *e = next_due(h, now);
		bool unsaved =
		    h->state_path != NULL && h->gen != h->saved_gen && h->gen != h->failed_gen;

		/* Once per drained queue: a provider may have a million domains. */
		if (unsaved && (e == NULL || now - h->saved_at >= SAVE_INTERVAL_MS)) {
			save_entries(h);
		} else if (e != NULL) {
			run_entry(h, e);
		} else if ((due = next_retry(h)) < 0) {
			pthread_cond_wait(&h->wake, &h->lock);
		} else {
			struct timespec ts = {.tv_sec = (time_t)(due / 1000),
			                      .tv_nsec = (long)(due % 1000) * 1000000};
			pthread_cond_timedwait(&h->wake, &h->lock, &ts);
		}
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void hooks_announce(struct hooks *h, const char *domain, const char *id)
{
	struct entry *e;

	if (!word_valid(domain, DOMAIN_MAX) || !word_valid(id, ID_MAX)) {
		log_warn("on_change: unusable domain or id ignored (%zu and %zu bytes)",
		         strlen(domain), strlen(id));
		return;
	}
	pthread_mutex_lock(&h->lock);
	e = hash_get(&h->index, domain, strlen(domain));
	if (e == NULL && (e = entry_add(h, domain, "")) == NULL)
		goto oom;
	if (e->pending != NULL ? strcmp(e->pending, id) == 0 : strcmp(e->announced, id) == 0)
		goto done;
	if (strcmp(e->announced, id) == 0 && !e->running) {
		/* Back to the announced id before the newer one ran. */
		drop_pending(h, e);
		goto done;
	}
	if (e->pending == NULL) {
		if ((e->pending = malloc(ID_MAX + 1)) == NULL)
			goto oom;
		h->n_pending++;
	}
	memcpy(e->pending, id, strlen(id) + 1);
	e->failures = 0;
	if (e->list != READY) {
		list_unlink(h, e);
		list_append(h, e, READY);
		pthread_cond_signal(&h->wake);
	}
done:
	pthread_mutex_unlock(&h->lock);
	return;
oom:
	pthread_mutex_unlock(&h->lock);
	log_err("on_change %s %s: out of memory, not announced", domain, id);
}

size_t hooks_pending(struct hooks *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->n_pending;
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* dir + "/" + name in *ret. 0 / -1 when out of memory. */
static int path_join(char **ret, const char *dir, const char *name)
{
	size_t dir_len = strlen(dir), len = strlen(name);
	char *p = malloc(dir_len + 1 + len + 1);

	if (p == NULL)
		return -1;
	memcpy(p, dir, dir_len);
	p[dir_len] = '/';
	memcpy(p + dir_len + 1, name, len + 1);
	*ret = p;
	return 0;
}

/* Frees what hooks_create() made, the worker stopped or never started. */
static void hooks_free(struct hooks *h)
{
	entries_free(h);
	if (h->stop_pipe[0] >= 0) {
		close(h->stop_pipe[0]);
		close(h->stop_pipe[1]);
	}
	free(h->cmd);
	free(h->state_dir);
	free(h->state_path);
	free(h->state_tmp);
	free(h);
}

struct hooks *hooks_create(const char *cmd, const char *state_dir, unsigned timeout)
{
	struct hooks *h;
	pthread_condattr_t attr;
	int r = ENOMEM;

	if (timeout == 0) {
		log_err("on_change: the timeout must be at least 1 s");
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto fail;
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	h->timeout = timeout;
	h->retry_first = timeout < RETRY_FIRST ? timeout : RETRY_FIRST;
	h->saved_at = now_ms();
	if ((cmd != NULL && (h->cmd = strdup(cmd)) == NULL) || hash_init(&h->index, 0) < 0)
		goto fail_free;
	if (state_dir != NULL &&
	    ((h->state_dir = strdup(state_dir)) == NULL ||
	     path_join(&h->state_path, state_dir, STATE_FILE) < 0 ||
	     path_join(&h->state_tmp, state_dir, STATE_TMP) < 0 || load(h) < 0))
		goto fail_free;
	if (pipe2(h->stop_pipe, O_CLOEXEC) < 0) {
		r = errno;
		goto fail_free;
	}
	if ((r = pthread_condattr_init(&attr)) != 0)
		goto fail_free;
	r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(&h->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (r != 0)
		goto fail_free;
	if ((r = pthread_mutex_init(&h->lock, NULL)) != 0)
		goto fail_cond;
	if ((r = pthread_create(&h->thread, NULL, worker, h)) != 0)
		goto fail_mutex;
	return h;
fail_mutex:
	pthread_mutex_destroy(&h->lock);
fail_cond:
	pthread_cond_destroy(&h->wake);
fail_free:
	hooks_free(h);
fail:
	log_err("on_change: cannot start: %s", strerror(r));
	return NULL;
}

void hooks_destroy(struct hooks *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
	/* A child being waited for is killed now rather than at its timeout. */
	if (write(h->stop_pipe[1], "", 1) != 1)
		log_err("on_change: cannot stop the worker: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	if (h->state_path != NULL && h->gen != h->saved_gen)
		save(h, h->newest);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	hooks_free(h);
}
