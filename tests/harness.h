/* harness: what the integration tests need to run the real binary and real clients */
#ifndef MTASTSD_TESTS_HARNESS_H
#define MTASTSD_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <check.h>

/* Helpers abort the test process (a Check failure) on allocation or I/O errors the test
 * cannot continue without, so test bodies stay assertions. */

/* A formatted, heap-allocated string; caller frees. */
char *h_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The whole file, NUL-terminated (length in *ret_len if not NULL); NULL if unreadable. */
char *h_read_file(const char *path, size_t *ret_len);
/* Writes data to path atomically (temp file + rename). */
void h_write_file(const char *path, const char *data);
/* A new private directory under $TMPDIR or /tmp; caller frees; h_rm_rf() to remove. */
char *h_mkdtemp(const char *tag);
void h_rm_rf(const char *path);

/* True when name is an executable in $PATH. */
bool h_have_tool(const char *name);
/* A port on 127.0.0.1 that was free a moment ago for TCP and UDP alike (a DNS server may
 * take it); aborts when none is found. */
unsigned h_free_port(void);
/* Milliseconds on the monotonic clock. */
long long h_now_ms(void);

/* True when hay (may be NULL) contains needle. */
bool h_contains(const char *hay, const char *needle);
/* True when text has a sanitizer report (ASan/UBSan/LSan builds). */
bool h_sanitizer_report(const char *text);
/* text (may be NULL) without its access log lines, for failure messages; caller frees. */
char *h_without_access(const char *text);
/* The value of header name in a raw header block (last occurrence), trimmed; caller frees;
 * NULL when absent. *ret_count (if not NULL) gets the number of occurrences. */
char *h_header(const char *block, const char *name, int *ret_count);

/* A configuration text written a line at a time; tests point at the line numbers. */
struct h_lines {
	char *text; /* owned; NULL while empty */
	unsigned n; /* lines so far */
};

/* Appends one formatted line; returns its line number (from 1). */
unsigned h_add_line(struct h_lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One finished command. */
struct run {
	int status;     /* exit code; 128 + signal number when killed by a signal */
	bool timed_out; /* killed by run_cmd after timeout_ms */
	char *out;      /* stdout, NUL-terminated, owned */
	size_t out_len;
	char *err; /* stderr, NUL-terminated, owned */
	size_t err_len;
};

/* Runs argv (argv[0] searched in $PATH; NULL-terminated) with in[0..in_len) on stdin
 * (in == NULL: empty stdin) and collects stdout and stderr. When keep_stdin_open is true,
 * stdin stays open after the input until the command exits by itself. The command is
 * killed after timeout_ms. Returns 0, or -1 when it could not be started. */
int run_cmd(struct run *r, const char *in, size_t in_len, bool keep_stdin_open, unsigned timeout_ms,
            const char *const argv[]);
void run_finish(struct run *r);

/* ---- Check assertions from here on: these fail the running test ---------------------- */

/* How long one client command (curl, gnutls-cli, an mtastsd command) may take. */
#define H_RUN_TIMEOUT_MS 20000
/* How long mtastsd serve may take until it logs "mtastsd: ready". */
#define H_READY_TIMEOUT_MS 15000

/* run_cmd with H_RUN_TIMEOUT_MS that fails the test when argv cannot start or times out. */
void h_run(struct run *r, const char *in, size_t in_len, const char *const argv[]);
/* The policy id computed independently: sha256sum of body, first 32 hex digits; caller
 * frees. */
char *h_expected_id(const char *body);

/* One curl request. */
struct http {
	int curl_rc;   /* curl's exit code */
	int code;      /* HTTP status, 0 when none */
	char *headers; /* response header block */
	char *body;
	size_t body_len;
	double seconds; /* time_total */
	char *err;      /* curl's stderr */
};

/* curl -sS --noproxy '*' --max-time 15 [extra...] url (at most 2 * 100 + 8 extra
 * arguments, NULL-terminated; extra may be NULL), with the headers and the body passed
 * through files in dir. */
void http_curl(struct http *h, const char *dir, const char *url, const char *const extra[]);
/* https://host:port/path (path as is) with host resolved to 127.0.0.1 and verified against
 * the CA file ca; the rest as http_curl. */
void http_curl_tls(struct http *h, const char *dir, const char *ca, const char *host, unsigned port,
                   const char *path, const char *const extra[]);
void http_finish(struct http *h);

/* A running `mtastsd serve`. */
struct server {
	pid_t pid;  /* 0 once it exited and was reaped */
	int status; /* its exit code (128 + signal) once reaped, else -1 */
	char *log;  /* path of the file that gets its stdout and stderr; owned */
};

/* Starts bin serve -c conf with stdout and stderr going to log (truncated). The process is
 * killed at exit of the test process if still running. 0, or -1 if it could not start. */
int server_start(struct server *s, const char *bin, const char *conf, const char *log);
/* Polls the log until needle appears at or after byte offset from. Returns the offset just
 * after the match, or -1 on timeout or when the server exited first. */
long server_wait_log(struct server *s, const char *needle, size_t from, unsigned timeout_ms);
/* The same, failing the test with the log since from (access lines left out) when needle
 * does not come. */
long server_expect_log(struct server *s, const char *needle, size_t from, unsigned timeout_ms);
/* The whole log line holding the first needle at or after byte from (caller frees); NULL
 * when there is none. */
char *server_log_line(const struct server *s, const char *needle, size_t from);
/* True while it runs (reaps it, setting status, once it exited). */
bool server_running(struct server *s);
/* Current size of the log in bytes. */
size_t server_log_size(const struct server *s);
/* Sends sig (unless it already exited) and waits up to timeout_ms for the exit; then
 * SIGKILLs. Returns the exit code (128 + signal when killed by one), or -1 if it had to be
 * killed. */
int server_stop(struct server *s, int sig, unsigned timeout_ms);
/* server_stop(s, SIGTERM, ...) if running, frees the members. */
void server_finish(struct server *s);
/* SIGKILLs every server and helper still running (registered with atexit by server_start
 * and h_spawn). */
void server_kill_all(void);

/* Starts bin serve -c conf logging to dir/mtastsd.log and waits H_READY_TIMEOUT_MS for
 * "mtastsd: ready"; fails the test with the log if it does not come. Returns the log offset
 * just after it. */
long server_start_ready(struct server *s, const char *bin, const char *conf, const char *dir);
/* How long a server may take to exit after SIGTERM (a sanitizer build writes its leak report
 * then). */
#define H_STOP_TIMEOUT_MS 10000
/* Stops a running server with SIGTERM and asserts a clean end: exit 0 within
 * H_STOP_TIMEOUT_MS and no sanitizer report in its log (also one written at exit). */
void server_stop_clean(struct server *s);
/* What every test's teardown asserts of the server it started (nothing when none was
 * started): it ran to the end unless the test stopped it itself (expect_exit), then
 * server_stop_clean(); a server that the test stopped left no sanitizer report. */
void server_end(struct server *s, bool expect_exit);

/* One test's files: a new directory under suite_dir; caller frees. */
char *h_test_dir(const char *suite_dir);
/* The end of one test: server_finish(s), then *dir removed and freed, *conf freed, both
 * set to NULL. */
void h_test_cleanup(struct server *s, char **dir, char **conf);

/* A helper process (a DNS server, a fake upstream) running argv (argv[0] searched in $PATH)
 * with stdin from /dev/null and stdout and stderr appended to out. It stays in the test's
 * process group, which Check's fork mode kills after each test, gets SIGKILL when the test
 * process dies, and is killed by server_kill_all(). Fails the test if it cannot start. */
pid_t h_spawn(const char *const argv[], const char *out);
/* True while the helper *pid runs; once it exited it is reaped and *pid becomes 0. */
bool h_running(pid_t *pid);
/* Sends sig to *pid, waits up to 5 s (then SIGKILLs) and reaps it; *pid becomes 0. Returns
 * its exit code (128 + signal when killed by one), or -1 when *pid was 0. */
int h_stop(pid_t *pid, int sig);

/* One TLS connection made with GnuTLS directly, for requests curl cannot send (raw bytes,
 * exact SNI bytes, an unfinished request). */
struct tls_exchange {
	int handshake;  /* 0 when the handshake completed, else the GnuTLS error code */
	int alert;      /* the fatal alert received, or -1 */
	char *response; /* everything read until close or timeout, NUL-terminated */
	size_t response_len;
	bool peer_closed;     /* the server closed the connection (EOF or close_notify) */
	long long elapsed_ms; /* from sending the request to the close (or the timeout) */
};

/* Connects to 127.0.0.1:port, sends SNI sni (NULL: none), verifies nothing, sends request
 * (may be incomplete) and reads until the server closes or timeout_ms passes. Returns 0, or
 * -1 if the TCP connection could not be made. */
int tls_exchange(struct tls_exchange *x, unsigned port, const char *sni, const char *request,
                 unsigned timeout_ms);
/* The same with request_len bytes of request (which may hold NULs). */
int tls_exchange_n(struct tls_exchange *x, unsigned port, const char *sni, const char *request,
                   size_t request_len, unsigned timeout_ms);
void tls_exchange_finish(struct tls_exchange *x);

/* ---- main() of an integration test program ------------------------------------------ */

/* True when every one of tools[0..n) is in $PATH; else prints "SKIP: ... not found" (the
 * caller exits 77). */
bool h_have_tools(const char *const tools[], size_t n);
/* True when bin is executable; else prints that it is not (the caller exits 1). */
bool h_executable(const char *bin);
/* Runs a certificate-making command (argv, 120 s at most); 0, or -1 after printing its
 * output when it failed. */
int h_make_certs(const char *const argv[]);
/* Runs the suite (CK_NORMAL) and frees the runner; 0 when every test passed, else 1. */
int h_run_suite(Suite *s);

#endif
