/* test_hooks: the on_change worker, with hook scripts written at run time */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hook.h"

#define DEADLINE 20.0 /* seconds any awaited result may take */

/* Every test gets a fresh directory (per test whether or not Check forks). */
static char dir[] = "/tmp/test_hooks.XXXXXX";
static int saved_stderr = -1;

static void setup(void)
{
	memcpy(dir, "/tmp/test_hooks.XXXXXX", sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void teardown(void)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name, in one of a few rotating buffers: for immediate use. */
static const char *at(const char *name)
{
	static char bufs[4][sizeof(dir) + 64];
	static unsigned next;
	char *p = bufs[next++ % 4];
	int n = snprintf(p, sizeof(bufs[0]), "%s/%s", dir, name);

	ck_assert(n > 0 && (size_t)n < sizeof(bufs[0]));
	return p;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_briefly(void)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};

	nanosleep(&ts, NULL);
}

static void write_bytes(const char *file, const char *data, size_t len, mode_t mode)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* The whole file, or NULL when it does not exist. Caller frees. */
static char *read_text(const char *file)
{
	FILE *f = fopen(file, "r");
	char *text;
	long len;

	if (f == NULL) {
		ck_assert_int_eq(errno, ENOENT);
		return NULL;
	}
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	ck_assert_int_ge(len, 0);
	rewind(f);
	text = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)len, f), (size_t)len);
	text[len] = '\0';
	fclose(f);
	return text;
}

static void assert_text(const char *file, const char *want)
{
	char *text = read_text(file);

	ck_assert_msg(text != NULL, "%s does not exist", file);
	ck_assert_str_eq(text, want);
	free(text);
}

static void assert_contains(const char *file, const char *want)
{
	char *text = read_text(file);

	ck_assert_msg(text != NULL && strstr(text, want) != NULL, "no \"%s\" in %s:\n%s", want,
	              file, text != NULL ? text : "(missing)");
	free(text);
}

static size_t count_lines(const char *file)
{
	char *text = read_text(file);
	size_t n = 0;

	for (const char *s = text; s != NULL && *s != '\0'; s++)
		n += *s == '\n';
	free(text);
	return n;
}

/* The n-th line (from 0) of file read as a pid. */
static pid_t pid_at(const char *file, size_t n)
{
	char *text = read_text(file), *s = text, *end;
	long v;

	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < n; i++) {
		s = strchr(s, '\n');
		ck_assert_ptr_nonnull(s);
		s++;
	}
	v = strtol(s, &end, 10);
	ck_assert(end != s && *end == '\n' && v > 0);
	free(text);
	return (pid_t)v;
}

/* Writes dir/name, executable: a shell script in which $d is dir. Returns its path, valid
 * until the next call. */
static const char *script(const char *name, const char *body)
{
	static char file[sizeof(dir) + 64];
	char text[4096];
	int n = snprintf(file, sizeof(file), "%s/%s", dir, name);

	ck_assert(n > 0 && (size_t)n < sizeof(file));
	n = snprintf(text, sizeof(text), "#!/bin/sh\nd='%s'\n%s", dir, body);
	ck_assert(n > 0 && (size_t)n < sizeof(text));
	write_bytes(file, text, (size_t)n, 0700);
	return file;
}

/* Makes dir/state; returns its path. */
static const char *state_dir(void)
{
	static char path[sizeof(dir) + 64];
	int n = snprintf(path, sizeof(path), "%s/state", dir);

	ck_assert(n > 0 && (size_t)n < sizeof(path));
	ck_assert_int_eq(mkdir(path, 0700), 0);
	return path;
}

static bool wait_pending(struct hooks *h, size_t n)
{
	double deadline = now() + DEADLINE;

	while (hooks_pending(h) != n && now() < deadline)
		pause_briefly();
	return hooks_pending(h) == n;
}

static bool wait_contains(const char *file, const char *want)
{
	double deadline = now() + DEADLINE;
	bool found = false;

	while (!found && now() < deadline) {
		char *text = read_text(file);

		found = text != NULL && strstr(text, want) != NULL;
		free(text);
		if (!found)
			pause_briefly();
	}
	return found;
}

static bool wait_lines(const char *file, size_t n)
{
	double deadline = now() + DEADLINE;

	while (count_lines(file) < n && now() < deadline)
		pause_briefly();
	return count_lines(file) >= n;
}

/* Whether pid is gone (reaped) before the deadline. */
static bool wait_gone(pid_t pid)
{
	double deadline = now() + DEADLINE;

	while (kill(pid, 0) == 0 && now() < deadline)
		pause_briefly();
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Sends what the module logs to file until stderr_restore(). */
static void stderr_to(const char *file)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0600);

	ck_assert_int_ge(fd, 0);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

static void stderr_restore(void)
{
	ck_assert_int_eq(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
}

START_TEST(test_arguments)
{
	/* _i 0: cmd as a path; 1: a bare name found in PATH. The test's stdin is a pipe,
	 * the hook's must be /dev/null; the test's fd 50 (not close-on-exec) is not passed. */
	const char *cmd = script("hook-args", "echo \"$# $1 $2\" >> \"$d/log\"\n"
	                                      "readlink /proc/$$/fd/0 > \"$d/stdin\"\n"
	                                      "if [ -e /proc/$$/fd/50 ]; then echo open\n"
	                                      "else echo closed; fi > \"$d/fd50\"\n");
	char *old_path = getenv("PATH") != NULL ? strdup(getenv("PATH")) : NULL;
	char path_env[sizeof(dir) + 4096];
	int fds[2], old_stdin = dup(STDIN_FILENO);
	struct hooks *h;

	if (_i == 1) {
		int n = snprintf(path_env, sizeof(path_env), "%s:%s", dir,
		                 old_path != NULL ? old_path : "/usr/bin:/bin");
		ck_assert(n > 0 && (size_t)n < sizeof(path_env));
		ck_assert_int_eq(setenv("PATH", path_env, 1), 0);
		cmd = "hook-args";
	}
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
	ck_assert_int_eq(dup2(fds[1], 50), 50);

	h = hooks_create(cmd, NULL, 10);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "example.com", "20240601T1200");
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);

	ck_assert_int_eq(dup2(old_stdin, STDIN_FILENO), STDIN_FILENO);
	close(old_stdin);
	close(fds[0]);
	close(fds[1]);
	close(50);
	if (old_path != NULL)
		ck_assert_int_eq(setenv("PATH", old_path, 1), 0);
	free(old_path);
	assert_text(at("log"), "2 example.com 20240601T1200\n");
	assert_text(at("stdin"), "/dev/null\n");
	assert_text(at("fd50"), "closed\n");
}
END_TEST

/* The value of "key:\t<hex>" in text. */
static unsigned long long sig_field(const char *text, const char *key)
{
	const char *s = strstr(text, key);
	char *end;
	unsigned long long v;

	ck_assert_ptr_nonnull(s);
	v = strtoull(s + strlen(key), &end, 16);
	ck_assert(end != s + strlen(key) && *end == '\n');
	return v;
}

START_TEST(test_child_signals)
{
	/* Like the server, the test blocks SIGHUP, SIGTERM and SIGINT and ignores SIGPIPE.
	 * The hook is "grep Sig /proc/self/status" (no shell: sh clears its signal mask),
	 * writing to the stdout it inherits. */
	sigset_t block, old_mask;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	int fd, old_stdout;
	struct hooks *h;
	char *signals;

	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
	ck_assert_int_eq(sigaction(SIGPIPE, &ign, &old_pipe), 0);
	fflush(stdout);
	old_stdout = dup(STDOUT_FILENO);
	fd = open(at("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);

	h = hooks_create("grep", NULL, 10);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "Sig", "/proc/self/status");
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);

	ck_assert_int_eq(dup2(old_stdout, STDOUT_FILENO), STDOUT_FILENO);
	close(old_stdout);
	ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &old_mask, NULL), 0);
	ck_assert_int_eq(sigaction(SIGPIPE, &old_pipe, NULL), 0);
	signals = read_text(at("stdout"));
	ck_assert_ptr_nonnull(signals);
	ck_assert_uint_eq(sig_field(signals, "SigBlk:"), 0);
	ck_assert_uint_eq(sig_field(signals, "SigIgn:") & (1ull << (SIGPIPE - 1)), 0);
	free(signals);
}
END_TEST

START_TEST(test_announce_does_not_wait)
{
	const char *cmd = script("hook", "echo \"$1\" >> \"$d/started\"\n"
	                                 "sleep 2\n"
	                                 "echo \"$1 $2\" >> \"$d/log\"\n");
	struct hooks *h = hooks_create(cmd, NULL, 10);
	double t0;

	ck_assert_ptr_nonnull(h);
	t0 = now();
	hooks_announce(h, "a.example", "1");
	ck_assert_double_lt(now() - t0, 0.5);
	ck_assert(wait_lines(at("started"), 1));
	t0 = now();
	hooks_announce(h, "b.example", "1"); /* while a.example's hook sleeps */
	ck_assert_double_lt(now() - t0, 0.5);
	ck_assert_uint_eq(hooks_pending(h), 2);
	ck_assert_ptr_null(read_text(at("log")));
	ck_assert(wait_pending(h, 0));
	assert_text(at("log"), "a.example 1\nb.example 1\n");
	hooks_destroy(h);
}
END_TEST

/* first.example waits for dir/go.ID, so whatever is announced meanwhile stays queued. */
#define GATED_HOOK                                                                                 \
	"if [ \"$1\" = first.example ]; then\n"                                                    \
	"\twhile [ ! -e \"$d/go.$2\" ]; do sleep 0.05; done\n"                                     \
	"fi\n"                                                                                     \
	"echo \"$1 $2\" >> \"$d/log\"\n"

START_TEST(test_newer_id_replaces_queued)
{
	struct hooks *h = hooks_create(script("hook", GATED_HOOK), NULL, 30);

	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "first.example", "1");
	hooks_announce(h, "x.example", "a");
	hooks_announce(h, "x.example", "b");
	hooks_announce(h, "x.example", "c");
	ck_assert_uint_eq(hooks_pending(h), 2);
	write_bytes(at("go.1"), "", 0, 0600);
	ck_assert(wait_pending(h, 0));
	assert_text(at("log"), "first.example 1\nx.example c\n");

	/* An id that goes back to the announced one before its run: nothing runs. */
	hooks_announce(h, "first.example", "2");
	hooks_announce(h, "x.example", "d");
	ck_assert_uint_eq(hooks_pending(h), 2);
	hooks_announce(h, "x.example", "c");
	ck_assert_uint_eq(hooks_pending(h), 1);
	write_bytes(at("go.2"), "", 0, 0600);
	ck_assert(wait_pending(h, 0));
	assert_text(at("log"), "first.example 1\nx.example c\nfirst.example 2\n");
	hooks_destroy(h);
}
END_TEST

START_TEST(test_restart_announces_only_changes)
{
	const char *cmd = script("hook", "echo \"$1 $2\" >> \"$d/log\"\n");
	const char *state = state_dir();
	struct hooks *h = hooks_create(cmd, state, 10);

	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	hooks_announce(h, "b.example", "1");
	ck_assert(wait_pending(h, 0));
	/* Written when the queue drained, not only at the end. */
	ck_assert(wait_lines(at("state/announced"), 2));
	hooks_destroy(h);
	assert_contains(at("state/announced"), "a.example 1\n");
	assert_contains(at("state/announced"), "b.example 1\n");
	ck_assert_ptr_null(read_text(at("state/.announced.tmp")));

	/* A restart: the unchanged id is dropped at once, the others run. */
	h = hooks_create(cmd, state, 10);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	ck_assert_uint_eq(hooks_pending(h), 0);
	hooks_announce(h, "b.example", "2");
	hooks_announce(h, "c.example", "1");
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);
	assert_text(at("log"), "a.example 1\nb.example 1\nb.example 2\nc.example 1\n");
	ck_assert_uint_eq(count_lines(at("state/announced")), 3);
	assert_contains(at("state/announced"), "a.example 1\n");
	assert_contains(at("state/announced"), "b.example 2\n");
	assert_contains(at("state/announced"), "c.example 1\n");
}
END_TEST

START_TEST(test_timeout_kills_and_retries)
{
	/* The hook and the process it started are killed after 1 s, and it runs again 1 s
	 * later (the first retry waits min(30, timeout)). The test adopts orphans, so the
	 * killed background sleep is reaped here and its end seen. */
	const char *cmd = script("hook", "echo $$ >> \"$d/pids\"\n"
	                                 "sleep 60 &\n"
	                                 "echo $! >> \"$d/background\"\n"
	                                 "wait\n");
	struct hooks *h;
	double deadline, t0;
	pid_t bg;
	int status = 0;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	stderr_to(at("stderr"));
	h = hooks_create(cmd, NULL, 1);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "slow.example", "7");
	ck_assert(wait_lines(at("pids"), 2));
	ck_assert(wait_gone(pid_at(at("pids"), 0)));
	ck_assert(wait_lines(at("background"), 1));
	bg = pid_at(at("background"), 0);
	deadline = now() + DEADLINE;
	while (waitpid(bg, &status, WNOHANG) == 0 && now() < deadline)
		pause_briefly();
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert_uint_eq(hooks_pending(h), 1);

	/* The second run is killed the same way (by hooks_destroy() or its timeout). */
	ck_assert(wait_lines(at("background"), 2));
	t0 = now();
	hooks_destroy(h);
	ck_assert_double_lt(now() - t0, 1.0);
	stderr_restore();
	ck_assert(wait_gone(pid_at(at("pids"), 1)));
	bg = pid_at(at("background"), 1);
	status = 0;
	deadline = now() + DEADLINE;
	while (waitpid(bg, &status, WNOHANG) == 0 && now() < deadline)
		pause_briefly();
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	assert_contains(at("stderr"),
	                "/hook slow.example 7: still running after 1 s, killed; retry in 1 s\n");
}
END_TEST

/* flaky.example fails twice then succeeds; bad.example always fails. */
#define FLAKY_HOOK                                                                                 \
	"n=$(cat \"$d/count.$1\" 2>/dev/null || echo 0)\n"                                         \
	"n=$((n + 1))\n"                                                                           \
	"echo $n > \"$d/count.$1\"\n"                                                              \
	"echo \"$1 $2\" >> \"$d/runs.$1\"\n"                                                       \
	"[ \"$1\" = flaky.example ] && [ $n -ge 3 ] && exit 0\n"                                   \
	"exit 3\n"

START_TEST(test_failure_retried_recorded_on_success)
{
	const char *cmd = script("hook", FLAKY_HOOK), *state = state_dir();
	struct hooks *h;

	stderr_to(at("stderr"));
	h = hooks_create(cmd, state, 1);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "flaky.example", "1");
	hooks_announce(h, "bad.example", "1");
	ck_assert(wait_lines(at("runs.bad.example"), 2));
	ck_assert(wait_pending(h, 1)); /* flaky.example done, bad.example retried */
	ck_assert_uint_eq(count_lines(at("runs.flaky.example")), 3);
	ck_assert(wait_lines(at("state/announced"), 1));
	hooks_destroy(h);
	stderr_restore();
	assert_text(at("state/announced"), "flaky.example 1\n");
	assert_contains(at("stderr"), "/hook flaky.example 1: exit status 3; retry in 1 s\n");
	assert_contains(at("stderr"), "/hook flaky.example 1: exit status 3; retry in 2 s\n");
	assert_contains(at("stderr"), "/hook flaky.example 1: done after 2 failed runs\n");
	assert_contains(at("stderr"), "/hook bad.example 1: exit status 3; retry in 1 s\n");

	/* After a restart the failed one is still to announce, the other is not. */
	h = hooks_create(cmd, state, 1);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "flaky.example", "1");
	ck_assert_uint_eq(hooks_pending(h), 0);
	hooks_announce(h, "bad.example", "1");
	ck_assert_uint_eq(hooks_pending(h), 1);
	hooks_destroy(h);
}
END_TEST

START_TEST(test_newer_id_ends_retries)
{
	/* A failed run waiting for its retry is replaced by a newer id, which runs at once
	 * (not after the back-off), alone, and starts its own back-off. */
	const char *cmd = script("hook", "echo \"$1 $2\" >> \"$d/log\"\n[ \"$2\" = 3 ]\n");
	struct hooks *h;

	stderr_to(at("stderr"));
	h = hooks_create(cmd, NULL, 30);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	ck_assert(wait_contains(at("stderr"), "/hook a.example 1: exit status 1; retry in 30 s\n"));
	hooks_announce(h, "a.example", "2");
	ck_assert(wait_contains(at("stderr"), "/hook a.example 2: exit status 1; retry in 30 s\n"));
	hooks_announce(h, "a.example", "3");
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);
	stderr_restore();
	assert_text(at("log"), "a.example 1\na.example 2\na.example 3\n");
}
END_TEST

START_TEST(test_null_cmd_remembers)
{
	const char *state = state_dir();
	struct hooks *h;

	stderr_to(at("stderr"));
	h = hooks_create(NULL, state, 1);
	stderr_restore();
	assert_contains(at("stderr"), "/state/announced: no announced ids yet");
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	hooks_announce(h, "b.example", "1");
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);
	ck_assert_uint_eq(count_lines(at("state/announced")), 2);

	/* Without a state directory, too. */
	h = hooks_create(NULL, NULL, 1);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	ck_assert(wait_pending(h, 0));
	hooks_announce(h, "a.example", "1");
	ck_assert_uint_eq(hooks_pending(h), 0);
	hooks_destroy(h);

	/* What was remembered without a command is not run once there is one. */
	h = hooks_create(script("hook", "echo \"$1 $2\" >> \"$d/log\"\n"), state, 10);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	hooks_announce(h, "b.example", "2");
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);
	assert_text(at("log"), "b.example 2\n");
}
END_TEST

START_TEST(test_destroy_null)
{
	hooks_destroy(NULL);
}
END_TEST

START_TEST(test_destroy_kills_running_child)
{
	const char *cmd = script("hook", "echo $$ > \"$d/pid\"\nexec sleep 60\n");
	const char *state = state_dir();
	struct hooks *h;
	double t0;

	h = hooks_create(cmd, state, 10);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	ck_assert(wait_lines(at("pid"), 1));
	t0 = now();
	hooks_destroy(h);
	ck_assert_double_lt(now() - t0, 2.0); /* killed, not waited for */
	ck_assert(wait_gone(pid_at(at("pid"), 0)));

	/* Not announced: the next start runs it. */
	h = hooks_create(NULL, state, 5);
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);
	assert_text(at("state/announced"), "a.example 1\n");
}
END_TEST

#define X10 "xxxxxxxxxx"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define STATE(text, remembered)                                                                    \
	{                                                                                          \
		text, sizeof(text) - 1, remembered                                                 \
	}

static const struct {
	const char *text;
	size_t len;
	bool remembered; /* a.example 1 */
} state_cases[] = {
    STATE("a.example 1\n", true),
    STATE("b.example 2\na.example 1\n", true),
    STATE("", false),
    STATE("a.example 1", false),                  /* cut short */
    STATE("a.example 12", false),                 /* cut short, "a.example 1" if not seen */
    STATE("a.example\n", false),                  /* no id */
    STATE("a.example 1 2\n", false),              /* three fields */
    STATE("a.example  1\n", false),               /* two spaces */
    STATE("a.example 1\n\n", false),              /* empty line */
    STATE("a.example 1\nA.Example 2\n", false),   /* a domain twice */
    STATE("a.example 1\nb.ex\0ample 2\n", false), /* a NUL byte */
    STATE("a.example 1\nb.\texample 2\n", false), /* a control character */
    STATE("a.example 1\nb.example 123456789012345678901234567890123\n", false), /* id */
    STATE("a.example 1\n" X100 X100 X100 " 1\n", false), /* longer than any line */
};

START_TEST(test_state_file_damaged)
{
	/* A damaged file counts as empty: a.example 1 runs again. The hook blocks, so a run
	 * keeps it pending. */
	const char *cmd = script("hook", "exec sleep 60\n");
	const char *state = state_dir();
	struct hooks *h;

	write_bytes(at("state/announced"), state_cases[_i].text, state_cases[_i].len, 0600);
	stderr_to(at("stderr"));
	h = hooks_create(cmd, state, 10);
	stderr_restore();
	ck_assert_ptr_nonnull(h);
	hooks_announce(h, "a.example", "1");
	ck_assert_uint_eq(hooks_pending(h), state_cases[_i].remembered ? 0 : 1);
	hooks_destroy(h);
	if (!state_cases[_i].remembered && state_cases[_i].len != 0) {
		assert_contains(at("stderr"), "/state/announced:");
		assert_contains(at("stderr"), ": damaged, ignored: every domain is announced\n");
	}
}
END_TEST

static const struct {
	const char *domain, *id;
	bool usable;
} word_cases[] = {
    {"a.example", "1", true},
    {"a.example", "12345678901234567890123456789012", true},
    {"", "1", false},
    {"a.example", "", false},
    {"a example", "1", false},
    {"a.example", "1 2", false},
    {"a.example\n", "1", false},
    {"b\xc3\xbc.example", "1", false},
    {"a.example", "123456789012345678901234567890123", false},
    {X100 X100 X10 X10 X10 X10 X10 "x.e", "1", true},   /* 253 bytes */
    {X100 X100 X10 X10 X10 X10 X10 "x.ex", "1", false}, /* 254 bytes */
};

START_TEST(test_unusable_words_dropped)
{
	struct hooks *h = hooks_create(script("hook", "exec sleep 60\n"), NULL, 10);

	ck_assert_ptr_nonnull(h);
	stderr_to(at("stderr"));
	hooks_announce(h, word_cases[_i].domain, word_cases[_i].id);
	stderr_restore();
	ck_assert_uint_eq(hooks_pending(h), word_cases[_i].usable ? 1 : 0);
	if (!word_cases[_i].usable)
		assert_contains(at("stderr"), "on_change: unusable domain or id ignored");
	hooks_destroy(h);
}
END_TEST

START_TEST(test_many_domains)
{
	/* 20,000 domains announced and saved, then all dropped after a restart. */
	enum { MANY = 20000 };
	const char *state = state_dir();
	struct hooks *h = hooks_create(NULL, state, 1);
	char domain[64];

	ck_assert_ptr_nonnull(h);
	for (unsigned i = 0; i < MANY; i++) {
		int n = snprintf(domain, sizeof(domain), "customer%u.example", i);
		ck_assert(n > 0 && (size_t)n < sizeof(domain));
		hooks_announce(h, domain, "1");
	}
	ck_assert(wait_pending(h, 0));
	hooks_destroy(h);
	ck_assert_uint_eq(count_lines(at("state/announced")), MANY);

	h = hooks_create(NULL, state, 1);
	ck_assert_ptr_nonnull(h);
	for (unsigned i = 0; i < MANY; i++) {
		int n = snprintf(domain, sizeof(domain), "customer%u.example", i);
		ck_assert(n > 0 && (size_t)n < sizeof(domain));
		hooks_announce(h, domain, "1");
	}
	ck_assert_uint_eq(hooks_pending(h), 0);
	hooks_destroy(h);
}
END_TEST

static Suite *hooks_suite(void)
{
	Suite *s = suite_create("hooks");
	TCase *tc = tcase_create("unit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_arguments, 0, 2);
	tcase_add_test(tc, test_child_signals);
	tcase_add_test(tc, test_announce_does_not_wait);
	tcase_add_test(tc, test_newer_id_replaces_queued);
	tcase_add_test(tc, test_restart_announces_only_changes);
	tcase_add_test(tc, test_timeout_kills_and_retries);
	tcase_add_test(tc, test_failure_retried_recorded_on_success);
	tcase_add_test(tc, test_newer_id_ends_retries);
	tcase_add_test(tc, test_null_cmd_remembers);
	tcase_add_test(tc, test_destroy_null);
	tcase_add_test(tc, test_destroy_kills_running_child);
	tcase_add_loop_test(tc, test_state_file_damaged, 0,
	                    (int)(sizeof(state_cases) / sizeof(state_cases[0])));
	tcase_add_loop_test(tc, test_unusable_words_dropped, 0,
	                    (int)(sizeof(word_cases) / sizeof(word_cases[0])));
	tcase_add_test(tc, test_many_domains);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hooks_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
