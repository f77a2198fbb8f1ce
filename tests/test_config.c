/* test_config: config_load on broken and valid files, each problem at its exact file:line */
#include <arpa/inet.h>
#include <check.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "policy.h"

#define MANY_DOMAINS 100000

/* Every test gets a fresh directory; Check forks each test, so these are per test. */
static char dir[] = "/tmp/test_config.XXXXXX";
static char path[sizeof(dir) + 64];
static struct diag d;

static void setup(void)
{
	memcpy(dir, "/tmp/test_config.XXXXXX", sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	int n = snprintf(path, sizeof(path), "%s/case.ini", dir);
	ck_assert(n > 0 && (size_t)n < sizeof(path));
	diag_init(&d);
}

static int remove_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void teardown(void)
{
	diag_finish(&d);
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *file, const char *text)
{
	FILE *f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* Everything in d as diag_print() prints it. Caller frees. */
static char *printed(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	diag_print(&d, f);
	ck_assert_int_eq(fclose(f), 0);
	return text;
}

/* Asserts that a printed line starts with "file:line: [warning: ]msg" ("file: ..." for
 * line 0). */
static void assert_printed(const char *file, unsigned line, const char *kind, const char *msg)
{
	char want[1024];
	int n = line != 0 ? snprintf(want, sizeof(want), "%s:%u: %s%s", file, line, kind, msg)
	                  : snprintf(want, sizeof(want), "%s: %s%s", file, kind, msg);
	ck_assert(n > 0 && (size_t)n < sizeof(want));

	char *text = printed();
	bool found = false;
	for (const char *s = text; s != NULL && *s != '\0' && !found; s = strchr(s, '\n')) {
		if (*s == '\n')
			s++;
		found = strncmp(s, want, (size_t)n) == 0;
	}
	ck_assert_msg(found, "expected \"%s\" in:\n%s", want, text);
	free(text);
}

static void assert_error(unsigned line, const char *msg)
{
	assert_printed(path, line, "", msg);
}

/* Writes file with text, mode 0700 (a command). */
static void write_command(const char *file, const char *text)
{
	write_file(file, text);
	ck_assert_int_eq(chmod(file, 0700), 0);
}

static struct config *load(const char *text)
{
	write_file(path, text);
	return config_load(path, &d);
}

/* A [server] that makes cert/key optional (lines 1-2) and a valid static body (3 lines). */
#define SERVER "[server]\ncerts = certs\n"
#define BODY "mode = enforce\nmx = mail.example.com\nmax_age = 604800\n"

/* 16 listen lines (127.0.0.1:1 to :16). */
#define LISTEN4(a, b, c, d)                                                                        \
	"listen = 127.0.0.1:" #a "\nlisten = 127.0.0.1:" #b "\nlisten = 127.0.0.1:" #c             \
	"\nlisten = 127.0.0.1:" #d "\n"
#define LISTEN16                                                                                   \
	LISTEN4(1, 2, 3, 4) LISTEN4(5, 6, 7, 8) LISTEN4(9, 10, 11, 12) LISTEN4(13, 14, 15, 16)

static const struct {
	const char *text;
	unsigned line;   /* 0: the file as a whole */
	const char *msg; /* how the message starts */
} bad_cases[] = {
    /* syntax */
    {SERVER "[domain example.com]\nmode enforce\nmx = mail.example.com\nmax_age = 604800\n", 4,
     "syntax error"},
    {SERVER "[domain example.com\n" BODY, 3, "syntax error"},
    {SERVER "[domain example.com] x\n" BODY, 3, "syntax error"},
    {SERVER "[domain example.com]\n" BODY "= value\n", 7, "syntax error"},
    {"foo = bar\n" SERVER "[domain example.com]\n" BODY, 1, "key \"foo\" outside of any section"},
    {SERVER "[domain example.com]\nmode = enforce\nmx = "
            "a123456789a123456789a123456789a123456789a123456789.a123456789a123456789a123456789"
            "a123456789a123456789.a123456789a123456789a123456789a123456789a123456789.a12345678"
            "9a123456789a123456789a123456789a123456789.example\nmax_age = 604800\n",
     5, "line too long"},
    /* sections and keys */
    {SERVER "foo = 1\n[domain example.com]\n" BODY, 3, "unknown key \"foo\" in [server]"},
    {SERVER "[domain example.com]\n" BODY "mxx = a.example\n", 7,
     "unknown key \"mxx\" in [domain example.com]"},
    {SERVER "[foo]\nbar = 1\n[domain example.com]\n" BODY, 3, "unknown section [foo]"},
    {SERVER "[Server]\n[domain example.com]\n" BODY, 3, "unknown section [Server]"},
    {SERVER "[domain]\n" BODY "[domain example.com]\n" BODY, 3, "bad section [domain]"},
    {SERVER "[domain exa_mple.com]\n" BODY, 3, "invalid domain name \"exa_mple.com\""},
    {SERVER "[domain *.example.com]\n" BODY, 3, "invalid domain name \"*.example.com\""},
    {SERVER "[domain example..com]\n" BODY, 3, "invalid domain name \"example..com\""},
    {SERVER "[domain example.com]\n" BODY "[domain Example.COM.]\n" BODY, 7,
     "duplicate domain example.com (first at line 3)"},
    {SERVER "[domain example.com]\n" BODY "max_age = 86400\n", 7,
     "duplicate key \"max_age\" (first at line 6)"},
    {SERVER "certs = other\n[domain example.com]\n" BODY, 3,
     "duplicate key \"certs\" (first at line 2)"},
    {SERVER "[domain example.com]\n" BODY "[server]\nthreads = 2\n", 7,
     "duplicate section [server] (first at line 1)"},
    /* mode, max_age, mx */
    {SERVER "[domain example.com]\nmx = mail.example.com\nmax_age = 604800\n", 3,
     "[domain example.com] has no mode"},
    {SERVER "[domain example.com]\nmode = Enforce\nmx = mail.example.com\nmax_age = 1\n", 4,
     "invalid mode \"Enforce\""},
    {SERVER "[domain example.com]\nmode = enforce\nmx = mail.example.com\n", 3,
     "[domain example.com] has no max_age"},
    {SERVER "[domain example.com]\nmode = none\nmx = a.example\nmax_age = 31557601\n", 6,
     "invalid max_age \"31557601\""},
    {SERVER "[domain example.com]\nmode = none\nmx = a.example\nmax_age = -1\n", 6,
     "invalid max_age \"-1\""},
    {SERVER "[domain example.com]\nmode = none\nmx = a.example\nmax_age = +86400\n", 6,
     "invalid max_age \"+86400\""},
    {SERVER "[domain example.com]\nmode = none\nmx = a.example\nmax_age = 86400s\n", 6,
     "invalid max_age \"86400s\""},
    {SERVER "[domain example.com]\nmode = none\nmx = a.example\nmax_age = 86 400\n", 6,
     "invalid max_age \"86 400\""},
    {SERVER "[domain example.com]\nmode = none\nmx = a.example\nmax_age =\n", 6,
     "missing value for \"max_age\""},
    {SERVER "[domain example.com]\nmode = none\nmx = a.example\nmax_age = 12345678901\n", 6,
     "invalid max_age \"12345678901\""},
    {SERVER "[domain example.com]\nmode = enforce\nmx = *\nmax_age = 604800\n", 5,
     "invalid mx \"*\""},
    {SERVER "[domain example.com]\nmode = enforce\nmx = mail.*.com\nmax_age = 604800\n", 5,
     "invalid mx \"mail.*.com\""},
    {SERVER "[domain example.com]\nmode = enforce\nmx = mail.example.com.\nmax_age = 604800\n", 5,
     "invalid mx \"mail.example.com.\""},
    {SERVER "[domain example.com]\nmode = enforce\nmx = b\xc3\xbc"
            "cher.example\n"
            "max_age = 604800\n",
     5,
     "invalid mx \"b\xc3\xbc"
     "cher.example\""},
    {SERVER "[domain example.com]\nmode = enforce\nmx = mx_1.example.com\nmax_age = 604800\n", 5,
     "invalid mx \"mx_1.example.com\""},
    {SERVER "[domain example.com]\nmode = enforce\nmax_age = 604800\n", 4,
     "mode enforce needs at least one mx"},
    {SERVER "[domain example.com]\nmode = testing\nmax_age = 604800\n", 4,
     "mode testing needs at least one mx"},
    /* id, proxy */
    {SERVER "[domain example.com]\n" BODY "id = 2024-06-01\n", 7, "invalid id \"2024-06-01\""},
    {SERVER "[domain example.com]\n" BODY "id = 123456789012345678901234567890123\n", 7,
     "invalid id \"123456789012345678901234567890123\""},
    {SERVER "[domain example.com]\nmode = enforce\nproxy = provider.example\n", 5,
     "proxy cannot be used with mode (line 4)"},
    {SERVER "[domain example.com]\nproxy = provider.example\nmx = mail.example.com\n", 5,
     "\"mx\" cannot be used with proxy (line 4)"},
    {SERVER "[domain example.com]\nproxy = provider.example\nid = abc\n", 5,
     "\"id\" cannot be used with proxy (line 4)"},
    {SERVER "[domain example.com]\nproxy = Example.COM.\n", 4,
     "proxy must name another domain than example.com"},
    {SERVER "[domain example.com]\nproxy = https://provider.example\n", 4,
     "invalid proxy \"https://provider.example\""},
    /* cert, key */
    {"[domain example.com]\n" BODY "cert = a.crt\n", 1,
     "[domain example.com] has cert without key"},
    {"[domain example.com]\n" BODY "key = a.key\n", 1, "[domain example.com] has key without cert"},
    {"[server]\nthreads = 1\n[domain example.com]\n" BODY, 3,
     "[domain example.com] has no cert and key, and [server] sets no certs directory"},
    /* tlsrpt */
    {SERVER "[domain example.com]\n" BODY "tlsrpt = http://example.com/r\n", 7,
     "invalid tlsrpt \"http://example.com/r\""},
    {SERVER "[domain example.com]\n" BODY "tlsrpt = ftp://example.com/r\n", 7,
     "invalid tlsrpt \"ftp://example.com/r\""},
    /* [server] values */
    {SERVER "listen = localhost:443\n[domain example.com]\n" BODY, 3,
     "invalid listen \"localhost:443\": not a numeric IPv4 or [IPv6] address"},
    {SERVER "listen = 127.0.0.1\n[domain example.com]\n" BODY, 3,
     "invalid listen \"127.0.0.1\": missing port"},
    {SERVER "listen = [::1]\n[domain example.com]\n" BODY, 3,
     "invalid listen \"[::1]\": missing port"},
    {SERVER "listen = ::1:443\n[domain example.com]\n" BODY, 3,
     "invalid listen \"::1:443\": an IPv6 address needs brackets"},
    {SERVER "listen = 127.0.0.1:0\n[domain example.com]\n" BODY, 3,
     "invalid listen \"127.0.0.1:0\": port must be 1 to 65535"},
    {SERVER "listen = [::1]:70000\n[domain example.com]\n" BODY, 3,
     "invalid listen \"[::1]:70000\": port must be 1 to 65535"},
    {SERVER "listen = 127.1:443\n[domain example.com]\n" BODY, 3,
     "invalid listen \"127.1:443\": not a numeric"},
    {SERVER "listen = 127.0.0.1:8443\nlisten = 127.0.0.1:8443\n[domain example.com]\n" BODY, 4,
     "duplicate listen \"127.0.0.1:8443\" (first at line 3)"},
    {SERVER "threads = 257\n[domain example.com]\n" BODY, 3,
     "invalid threads \"257\" (expected 0 to 256"},
    {SERVER "idle_timeout = 0\n[domain example.com]\n" BODY, 3,
     "invalid idle_timeout \"0\" (expected 1 to 3600"},
    {SERVER "idle_timeout = 10s\n[domain example.com]\n" BODY, 3, "invalid idle_timeout \"10s\""},
    {SERVER "max_connections = 4294967297\n[domain example.com]\n" BODY, 3,
     "invalid max_connections \"4294967297\""},
    {SERVER "sts_ttl = 59\n[domain example.com]\n" BODY, 3, "invalid sts_ttl \"59\""},
    {SERVER "access_log = maybe\n[domain example.com]\n" BODY, 3, "invalid access_log \"maybe\""},
    {SERVER "upstream_timeout = 3\n[domain example.com]\n" BODY, 3,
     "upstream_connect_timeout 5 exceeds upstream_timeout 3"},
    {SERVER "dns_server = dns.example:53\n[domain example.com]\n" BODY, 3,
     "invalid dns_server \"dns.example:53\""},
    {SERVER "user =\n[domain example.com]\n" BODY, 3, "missing value for \"user\""},
    {SERVER LISTEN16 "listen = [::1]:17\n[domain example.com]\n" BODY, 19,
     "at most 16 listen addresses"},
    {SERVER "on_change_timeout = 0\n[domain example.com]\n" BODY, 3,
     "invalid on_change_timeout \"0\" (expected 1 to 3600, digits only)"},
    {SERVER "on_change_timeout = 3601\n[domain example.com]\n" BODY, 3,
     "invalid on_change_timeout \"3601\" (expected 1 to 3600, digits only)"},
    {SERVER "on_change_timeout = 30s\n[domain example.com]\n" BODY, 3,
     "invalid on_change_timeout \"30s\" (expected 1 to 3600, digits only)"},
    {SERVER "on_change = /nonexistent/publish-id\n[domain example.com]\n" BODY, 3,
     "on_change: /nonexistent/publish-id: No such file or directory"},
    {SERVER "on_change = /etc\n[domain example.com]\n" BODY, 3,
     "on_change: /etc: not a regular file"},
    {SERVER "on_change = /etc/passwd\n[domain example.com]\n" BODY, 3,
     "on_change: /etc/passwd: not executable"},
    {SERVER "on_change = mtastsd-no-such-command\n[domain example.com]\n" BODY, 3,
     "on_change: mtastsd-no-such-command: no executable of that name in PATH"},
/* acme */
#define ACME "[server]\nstate_dir = st\nacme = https://ca.example/dir\n"
    {"[server]\nacme = https://ca.example/dir\n[domain example.com]\n" BODY, 2,
     "acme needs state_dir"},
    {"[server]\nstate_dir = st\nacme = http://ca.example/dir\n[domain example.com]\n" BODY, 3,
     "invalid acme \"http://ca.example/dir\""},
    {ACME "acme_email = a@b@c\n[domain example.com]\n" BODY, 4, "invalid acme_email"},
    {ACME "acme_email = <a@b.example>\n[domain example.com]\n" BODY, 4, "invalid acme_email"},
    {ACME "acme_eab_kid = kid\n[domain example.com]\n" BODY, 4,
     "acme_eab_kid and acme_eab_hmac go together"},
    {ACME "acme_eab_kid = kid\nacme_eab_hmac = a+b/\n[domain example.com]\n" BODY, 5,
     "invalid acme_eab_hmac"},
    {ACME "acme_challenge = dns-01\n[domain example.com]\n" BODY, 4,
     "invalid acme_challenge \"dns-01\""},
    {ACME "acme_challenge = http-01\n[domain example.com]\n" BODY, 4,
     "acme_challenge = http-01 needs acme_http_listen"},
    {ACME "acme_http_listen = 127.0.0.1:80\n[domain example.com]\n" BODY, 4,
     "acme_http_listen is only for acme_challenge = http-01"},
    {ACME "listen = 127.0.0.1:80\nacme_challenge = http-01\nacme_http_listen = 127.0.0.1:80\n"
          "[domain example.com]\n" BODY,
     6, "acme_http_listen 127.0.0.1:80 is also a listen address (line 4)"},
    {ACME "acme_retry_min = 600\nacme_retry_max = 60\n[domain example.com]\n" BODY, 4,
     "acme_retry_min 600 exceeds acme_retry_max 60"},
    {ACME "acme_concurrency = 0\n[domain example.com]\n" BODY, 4, "invalid acme_concurrency"},
/* [policy NAME] and policy = NAME */
#define POLICY "[policy shared]\n" BODY
    {SERVER POLICY "[policy]\n", 7, "bad section [policy]: expected [policy NAME]"},
    {SERVER "[policy a/b]\n" BODY "[domain example.com]\npolicy = a\n", 3, "invalid [policy a/b]"},
    {SERVER POLICY POLICY "[domain example.com]\npolicy = shared\n", 7,
     "duplicate policy shared (first at line 3)"},
    {SERVER "[domain example.com]\npolicy = nothere\n", 4,
     "unknown policy \"nothere\" (no [policy nothere] section)"},
    {SERVER POLICY "[domain example.com]\npolicy = shared\nmx = b.example\n", 9,
     "\"mx\" cannot be used with policy (line 8): [policy shared] sets it"},
    {SERVER POLICY "[domain example.com]\nmode = testing\npolicy = shared\n", 9,
     "policy cannot be used with mode (line 8)"},
    {SERVER POLICY "[domain example.com]\nproxy = provider.example\npolicy = shared\n", 9,
     "\"policy\" cannot be used with proxy (line 8)"},
    {SERVER POLICY "id = 1\n[domain example.com]\npolicy = shared\n", 7,
     "\"id\" cannot be used in [policy shared]"},
    {SERVER POLICY "proxy = provider.example\n[domain example.com]\npolicy = shared\n", 7,
     "\"proxy\" cannot be used in [policy shared]"},
    {SERVER "[policy shared]\nmode = enforce\nmx = a.example\n[domain example.com]\n"
            "policy = shared\n",
     3, "[policy shared] has no max_age"},
    {SERVER "[policy shared]\nmode = enforce\nmax_age = 1\n[domain example.com]\n"
            "policy = shared\n",
     4, "mode enforce needs at least one mx"},
    /* hints for what people write */
    {SERVER "[domain example.com]\nmode = report\nmx = mail.example.com\nmax_age = 1\n", 4,
     "invalid mode \"report\": report is a draft's name for what RFC 8461 calls testing; "
     "use mode = testing"},
    {SERVER "[domain b\xc3\xbc"
            "cher.example]\n" BODY,
     3,
     "invalid domain name \"b\xc3\xbc"
     "cher.example\": write it with A-labels, "
     "[domain xn--bcher-kva.example]"},
    {SERVER "[domain example.com]\nmode = enforce\nmx = mx.b\xc3\xbc"
            "cher.example\n"
            "max_age = 1\n",
     5,
     "invalid mx \"mx.b\xc3\xbc"
     "cher.example\": write it with A-labels, "
     "mx = mx.xn--bcher-kva.example"},
    /* include */
    {SERVER "include = nothere.ini\n[domain example.com]\n" BODY, 3,
     "include nothere.ini: cannot open: No such file or directory"},
    {"include = case.ini\n" SERVER "[domain example.com]\n" BODY, 1,
     "include of a file being read (a cycle): "},
    {SERVER "[domain example.com]\n" BODY "include = x.ini\n", 7,
     "unknown key \"include\" in [domain example.com]"},
    {SERVER "listen = 127.0.0.1:8443\nadmin_listen = 127.0.0.1:8443\n[domain example.com]\n" BODY,
     4, "admin_listen 127.0.0.1:8443 is also a listen address (line 3)"},
    {SERVER "listen = 0.0.0.0:8443\nadmin_listen = 127.0.0.1:8443\n[domain example.com]\n" BODY, 4,
     "admin_listen 127.0.0.1:8443 is also a listen address (line 3)"},
    /* the file as a whole */
    {SERVER, 0, "no [domain ...] section"},
    {"", 0, "no [domain ...] section"},
};

START_TEST(test_bad)
{
	struct config *c = load(bad_cases[_i].text);
	ck_assert_ptr_null(c);
	ck_assert_uint_ge(d.n_errors, 1);
	assert_error(bad_cases[_i].line, bad_cases[_i].msg);
}
END_TEST

START_TEST(test_missing_file)
{
	ck_assert_ptr_null(config_load(path, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	assert_error(0, "cannot open: No such file or directory");
}
END_TEST

START_TEST(test_unreadable_file)
{
	/* A directory opens for reading but cannot be read. */
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_ptr_null(config_load(path, &d));
	assert_error(0, "not a regular file");
}
END_TEST

START_TEST(test_every_error_reported)
{
	struct config *c = load("[server]\n"
	                        "threads = many\n"        /* 2 */
	                        "listen = localhost:1\n"  /* 3 */
	                        "[domain example.com]\n"  /* 4: no cert/key, no certs */
	                        "mode = Enforce\n"        /* 5 */
	                        "mx = *\n"                /* 6 */
	                        "max_age = 1d\n"          /* 7 */
	                        "bogus\n"                 /* 8 */
	                        "[domain b_ad.example]\n" /* 9 */
	                        "mode = enforce\n"
	                        "[domain example.net]\n" /* 11: no mode */
	                        "max_age = 86400\n"
	                        "cert = x.crt\n"       /* 13: no key */
	                        "tlsrpt = ftp://x\n"); /* 14 */
	ck_assert_ptr_null(c);
	assert_error(2, "invalid threads \"many\"");
	assert_error(3, "invalid listen \"localhost:1\"");
	assert_error(5, "invalid mode \"Enforce\"");
	assert_error(6, "invalid mx \"*\"");
	assert_error(7, "invalid max_age \"1d\"");
	assert_error(8, "syntax error");
	assert_error(9, "invalid domain name \"b_ad.example\"");
	assert_error(11, "[domain example.net] has no mode");
	assert_error(11, "[domain example.net] has cert without key");
	assert_error(14, "invalid tlsrpt \"ftp://x\"");
	assert_error(4, "[domain example.com] has no cert and key");
	ck_assert_uint_eq(d.n_errors, 11);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *c = load(SERVER "[domain example.com]\n" BODY);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_str_eq(c->file, path);
	ck_assert_uint_eq(c->n_listen, 2);
	ck_assert_str_eq(c->listen[0].text, "0.0.0.0:443");
	ck_assert_uint_eq(c->listen[0].line, 0);
	ck_assert_int_eq(c->listen[0].addr.ss_family, AF_INET);
	ck_assert_str_eq(c->listen[1].text, "[::]:443");
	ck_assert_int_eq(c->listen[1].addr.ss_family, AF_INET6);
	ck_assert_uint_eq(c->threads, 0);
	ck_assert_uint_eq(c->idle_timeout, 10);
	ck_assert_uint_eq(c->max_connections, 4096);
	ck_assert(c->access_log);
	ck_assert_uint_eq(c->sts_ttl, 3600);
	ck_assert_uint_eq(c->tlsrpt_ttl, 86400);
	ck_assert_uint_eq(c->upstream_refresh, 3600);
	ck_assert_uint_eq(c->upstream_dns_poll, 60);
	ck_assert_uint_eq(c->upstream_timeout, 10);
	ck_assert_uint_eq(c->upstream_connect_timeout, 5);
	ck_assert_uint_eq(c->upstream_retry, 60);
	ck_assert_ptr_null(c->user);
	ck_assert_ptr_null(c->state_dir);
	ck_assert_ptr_null(c->upstream_ca);
	ck_assert_ptr_null(c->dns_server);
	ck_assert_ptr_null(c->on_change);
	ck_assert_uint_eq(c->on_change_timeout, 30);

	ck_assert_uint_eq(c->n_domains, 1);
	const struct config_domain *dom = &c->domains[0];
	ck_assert_str_eq(dom->name, "example.com");
	ck_assert_str_eq(dom->host, "mta-sts.example.com");
	ck_assert_uint_eq(dom->line, 3);
	ck_assert_uint_eq(dom->mode_line, 4);
	ck_assert_int_eq(dom->policy.mode, POLICY_MODE_ENFORCE);
	ck_assert_uint_eq(dom->policy.max_age, 604800);
	ck_assert_ptr_null(dom->id);
	ck_assert_ptr_null(dom->proxy);
	ck_assert_ptr_null(dom->cert);
	ck_assert_ptr_null(dom->key);
	ck_assert_uint_eq(dom->n_tlsrpt, 0);
	config_destroy(c);
}
END_TEST

START_TEST(test_server_values)
{
	struct config *c = load("[server]\n"
	                        "listen = 127.0.0.1:8443\n"
	                        "listen = [::1]:8443 ; loopback v6\n"
	                        "user = mtastsd\n"
	                        "threads = 256\n"
	                        "idle_timeout = 1\n"
	                        "max_connections = 1000000\n"
	                        "access_log = off\n"
	                        "sts_ttl = 60\n"
	                        "tlsrpt_ttl = 604800\n"
	                        "upstream_refresh = 1\n"
	                        "upstream_dns_poll = 86400\n"
	                        "upstream_timeout = 2\n"
	                        "upstream_connect_timeout = 2\n"
	                        "upstream_retry = 1\n"
	                        "dns_server = [::1]:5353\n"
	                        "on_change_timeout = 1\n"
	                        "[domain example.com]\ncert = a.crt\nkey = a.key\n" BODY);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->n_listen, 2);

	const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->listen[0].addr;
	ck_assert_str_eq(c->listen[0].text, "127.0.0.1:8443");
	ck_assert_uint_eq(c->listen[0].line, 2);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 8443);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	ck_assert_uint_eq(c->listen[0].addr_len, sizeof(*sin));

	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&c->listen[1].addr;
	ck_assert_str_eq(c->listen[1].text, "[::1]:8443");
	ck_assert_uint_eq(c->listen[1].line, 3);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 8443);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	ck_assert_uint_eq(c->listen[1].addr_len, sizeof(*sin6));

	ck_assert_str_eq(c->user, "mtastsd");
	ck_assert_uint_eq(c->user_line, 4);
	ck_assert_uint_eq(c->threads, 256);
	ck_assert_uint_eq(c->idle_timeout, 1);
	ck_assert_uint_eq(c->max_connections, 1000000);
	ck_assert(!c->access_log);
	ck_assert_uint_eq(c->sts_ttl, 60);
	ck_assert_uint_eq(c->tlsrpt_ttl, 604800);
	ck_assert_uint_eq(c->upstream_refresh, 1);
	ck_assert_uint_eq(c->upstream_dns_poll, 86400);
	ck_assert_uint_eq(c->upstream_timeout, 2);
	ck_assert_uint_eq(c->upstream_connect_timeout, 2);
	ck_assert_uint_eq(c->upstream_retry, 1);
	ck_assert_str_eq(c->dns_server, "[::1]:5353");
	ck_assert_uint_eq(c->dns_server_line, 16);
	ck_assert_uint_eq(c->on_change_timeout, 1);
	config_destroy(c);
}
END_TEST

START_TEST(test_paths_resolved)
{
	char sub[sizeof(dir) + 16], file[sizeof(dir) + 32], want[sizeof(dir) + 64];
	int n = snprintf(sub, sizeof(sub), "%s/etc", dir);
	ck_assert(n > 0 && (size_t)n < sizeof(sub));
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	n = snprintf(file, sizeof(file), "%s/bin", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(file));
	ck_assert_int_eq(mkdir(file, 0700), 0);
	n = snprintf(file, sizeof(file), "%s/bin/publish", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(file));
	write_command(file, "#!/bin/sh\n");
	n = snprintf(file, sizeof(file), "%s/x.ini", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(file));
	write_file(file, "[server]\n"
	                 "certs = ../certs\n"
	                 "state_dir = /var/lib/mtastsd\n"
	                 "upstream_ca = ca.pem\n"
	                 "on_change = bin/publish\n"
	                 "[domain example.com]\n"
	                 "cert = certs/a.crt\n"
	                 "key = /etc/ssl/a.key\n" BODY "[domain example.net]\n" BODY);
	struct config *c = config_load(file, &d);
	ck_assert_ptr_nonnull(c);

	n = snprintf(want, sizeof(want), "%s/../certs", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(c->certs_dir, want);
	ck_assert_uint_eq(c->certs_dir_line, 2);
	ck_assert_str_eq(c->state_dir, "/var/lib/mtastsd");
	ck_assert_uint_eq(c->state_dir_line, 3);
	n = snprintf(want, sizeof(want), "%s/ca.pem", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(c->upstream_ca, want);
	n = snprintf(want, sizeof(want), "%s/bin/publish", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(c->on_change, want);
	ck_assert_uint_eq(c->on_change_line, 5);
	n = snprintf(want, sizeof(want), "%s/certs/a.crt", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	ck_assert_str_eq(c->domains[0].cert, want);
	ck_assert_uint_eq(c->domains[0].cert_line, 7);
	ck_assert_str_eq(c->domains[0].key, "/etc/ssl/a.key");
	ck_assert_uint_eq(c->domains[0].key_line, 8);
	ck_assert_ptr_null(c->domains[1].cert);
	config_destroy(c);
}
END_TEST

/* on_change = bin/publish in DIR/etc/x.ini, and what DIR/etc/bin/publish is. */
static const struct {
	const char *make; /* "missing", "directory", "file" (not executable) */
	const char *why;
} relative_command_cases[] = {
    {"missing", "No such file or directory"},
    {"directory", "not a regular file"},
    {"file", "not executable"},
};

START_TEST(test_on_change_resolved_and_checked)
{
	char sub[sizeof(dir) + 16], file[sizeof(dir) + 32], cmd[sizeof(dir) + 32], want[512];
	int n = snprintf(sub, sizeof(sub), "%s/etc", dir);
	ck_assert(n > 0 && (size_t)n < sizeof(sub));
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	n = snprintf(file, sizeof(file), "%s/bin", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(file));
	ck_assert_int_eq(mkdir(file, 0700), 0);
	n = snprintf(cmd, sizeof(cmd), "%s/bin/publish", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(cmd));
	if (strcmp(relative_command_cases[_i].make, "directory") == 0)
		ck_assert_int_eq(mkdir(cmd, 0700), 0);
	else if (strcmp(relative_command_cases[_i].make, "file") == 0)
		write_file(cmd, "#!/bin/sh\n"); /* mode 0666 & umask */
	n = snprintf(file, sizeof(file), "%s/x.ini", sub);
	ck_assert(n > 0 && (size_t)n < sizeof(file));
	write_file(file, SERVER "on_change = bin/publish\n[domain example.com]\n" BODY);

	ck_assert_ptr_null(config_load(file, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	n = snprintf(want, sizeof(want), "on_change: %s: %s", cmd, relative_command_cases[_i].why);
	ck_assert(n > 0 && (size_t)n < sizeof(want));
	assert_printed(file, 3, "", want);
}
END_TEST

START_TEST(test_paths_without_directory)
{
	/* A config named without a directory: paths stay relative to the working directory,
	 * and a command without '/' is looked up in PATH, where it must be executable (an
	 * empty entry in PATH is the working directory, as for posix_spawnp()). */
	char *old_path = getenv("PATH") != NULL ? strdup(getenv("PATH")) : NULL;
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(setenv("PATH", "/nonexistent:", 1), 0);
	write_file("plain.ini", SERVER "on_change = publish-id\n[domain example.com]\n" BODY);
	write_file("publish-id", "#!/bin/sh\n");
	ck_assert_ptr_null(config_load("plain.ini", &d));
	assert_printed("plain.ini", 3, "", "on_change: publish-id: no executable of that name");

	ck_assert_int_eq(chmod("publish-id", 0700), 0);
	struct config *c = config_load("plain.ini", &d);
	ck_assert_int_eq(setenv("PATH", old_path != NULL ? old_path : "/usr/bin:/bin", 1), 0);
	free(old_path);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->certs_dir, "certs");
	ck_assert_str_eq(c->on_change, "publish-id");
	config_destroy(c);
}
END_TEST

START_TEST(test_listen_max)
{
	/* 16 listen lines are fine; the 17th is reported, once. */
	struct config *c = load(SERVER LISTEN16 "[domain example.com]\n" BODY);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->n_listen, CONFIG_LISTEN_MAX);
	ck_assert_str_eq(c->listen[15].text, "127.0.0.1:16");
	config_destroy(c);

	ck_assert_ptr_null(load(SERVER LISTEN16 "listen = 127.0.0.1:17\nlisten = 127.0.0.1:18\n"
	                                        "[domain example.com]\n" BODY));
	ck_assert_uint_eq(d.n_errors, 1);
	assert_error(19, "at most 16 listen addresses");
}
END_TEST

START_TEST(test_mx_order_and_case)
{
	struct config *c = load(SERVER "[domain Example.COM.]\n"
	                               "mode = enforce\n"
	                               "mx = MX2.Example.COM\n"
	                               "mx = *.backup.example.net\n"
	                               "mx = xn--bcher-kva.example\n"
	                               "mx = mx2.example.com\n" /* 8: a duplicate, ignored */
	                               "mx = a.example\n"
	                               "max_age = 604800\n"
	                               "tlsrpt = mailto:tlsrpt@example.com\n"
	                               "tlsrpt = https://reports.example.com/v1\n");
	ck_assert_ptr_nonnull(c);
	const struct config_domain *dom = &c->domains[0];
	ck_assert_str_eq(dom->name, "example.com");
	ck_assert_str_eq(dom->host, "mta-sts.example.com");
	ck_assert_uint_eq(dom->policy.n_mx, 4);
	ck_assert_str_eq(dom->policy.mx[0], "mx2.example.com");
	ck_assert_str_eq(dom->policy.mx[1], "*.backup.example.net");
	ck_assert_str_eq(dom->policy.mx[2], "xn--bcher-kva.example");
	ck_assert_str_eq(dom->policy.mx[3], "a.example");
	assert_printed(path, 8, "warning: ", "duplicate mx \"mx2.example.com\" ignored");
	ck_assert_uint_eq(dom->n_tlsrpt, 2);
	ck_assert_str_eq(dom->tlsrpt[0], "mailto:tlsrpt@example.com");
	ck_assert_str_eq(dom->tlsrpt[1], "https://reports.example.com/v1");
	ck_assert_uint_eq(dom->tlsrpt_line, 11);
	config_destroy(c);
}
END_TEST

START_TEST(test_proxy)
{
	struct config *c = load(SERVER "[domain customer.example]\n"
	                               "proxy = Provider.Example.\n"
	                               "tlsrpt = mailto:r@customer.example\n");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	const struct config_domain *dom = &c->domains[0];
	ck_assert_str_eq(dom->proxy, "provider.example");
	ck_assert_uint_eq(dom->proxy_line, 4);
	ck_assert_uint_eq(dom->policy.n_mx, 0);
	ck_assert_uint_eq(dom->mode_line, 0);
	ck_assert_uint_eq(dom->n_tlsrpt, 1);
	config_destroy(c);
}
END_TEST

/* With acme, a domain needs neither cert/key nor a certs directory; the ACME keys are read
 * with their defaults. */
START_TEST(test_acme)
{
	struct config *c = load("[server]\nstate_dir = st\nacme = https://ca.example/dir\n"
	                        "acme_email = hostmaster@example.com\nacme_challenge = http-01\n"
	                        "acme_http_listen = 127.0.0.1:8080\nacme_order_interval = 0\n"
	                        "[domain example.com]\n" BODY);

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_str_eq(c->acme, "https://ca.example/dir");
	ck_assert_str_eq(c->acme_email, "hostmaster@example.com");
	ck_assert(c->acme_http01);
	ck_assert_uint_eq(c->acme_http_addr.len, sizeof(struct sockaddr_in));
	ck_assert_uint_eq(c->acme_order_interval, 0);
	ck_assert_uint_eq(c->acme_order_burst, 300);
	ck_assert_uint_eq(c->acme_concurrency, 4);
	ck_assert_uint_eq(c->acme_retry_min, 60);
	ck_assert_uint_eq(c->acme_retry_max, 86400);
	ck_assert_ptr_null(c->domains[0].cert);
	config_destroy(c);

	/* ACME keys without acme: warnings, not silence. */
	c = load(SERVER "acme_email = a@example.com\n[domain example.com]\n" BODY);
	ck_assert_ptr_nonnull(c);
	assert_printed(path, 3, "warning: ", "acme_email has no effect without acme");
	config_destroy(c);
}
END_TEST

/* A file of dir, for the include tests. */
static const char *in_dir(const char *name)
{
	static char buf[4][sizeof(dir) + 64];
	static unsigned next;
	char *b = buf[next++ % 4];
	int n = snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
	ck_assert(n > 0 && (size_t)n < sizeof(buf[0]));
	return b;
}

/* include = GLOB: the matches in sorted order, relative to the including file, nested;
 * every domain and every problem at the file:line that holds it; paths in an included
 * file relative to that file. */
START_TEST(test_include)
{
	ck_assert_int_eq(mkdir(in_dir("conf.d"), 0700), 0);
	ck_assert_int_eq(mkdir(in_dir("conf.d/more"), 0700), 0);
	write_file(in_dir("conf.d/b.ini"), "; b\n[domain b.example]\n" BODY);
	write_file(in_dir("conf.d/a.ini"),
	           "include = more/*.ini\n[domain a.example]\n" BODY "cert = a.crt\nkey = a.key\n");
	write_file(in_dir("conf.d/more/c.ini"), "[domain c.example]\n" BODY);
	write_file(in_dir("conf.d/skipped.txt"), "not an ini file\n");
	struct config *c = load(SERVER "include = conf.d/*.ini\ninclude = empty.d/*.ini\n"
	                               "threads = 2\n[domain z.example]\n" BODY);

	ck_assert_msg(c != NULL, "%s", printed());
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_eq(c->n_domains, 4);
	ck_assert_uint_eq(c->threads, 2); /* [server] goes on after the include lines */
	ck_assert_str_eq(c->domains[0].name, "c.example");
	ck_assert_str_eq(c->domains[0].file, in_dir("conf.d/more/c.ini"));
	ck_assert_str_eq(c->domains[1].name, "a.example");
	ck_assert_str_eq(c->domains[1].file, in_dir("conf.d/a.ini"));
	ck_assert_uint_eq(c->domains[1].line, 2);
	ck_assert_str_eq(c->domains[1].cert, in_dir("conf.d/a.crt"));
	ck_assert_str_eq(c->domains[2].name, "b.example");
	ck_assert_uint_eq(c->domains[2].line, 2);
	ck_assert_str_eq(c->domains[3].name, "z.example");
	ck_assert_str_eq(c->domains[3].file, path);
	ck_assert_uint_eq(c->n_files, 4);
	config_destroy(c);

	/* Problems in included files at their own file:line; a duplicate names both. */
	write_file(in_dir("conf.d/b.ini"), "[domain b.example]\nmode = sometimes\n"
	                                   "mx = m.example\nmax_age = 1\n[server]\n"
	                                   "[domain a.example]\n" BODY);
	ck_assert_ptr_null(load(SERVER "include = conf.d/*.ini\n"));
	assert_printed(in_dir("conf.d/b.ini"), 2, "", "invalid mode \"sometimes\"");
	assert_printed(in_dir("conf.d/b.ini"), 5, "",
	               "[server] belongs in the main configuration file");
	char want[256];
	snprintf(want, sizeof(want), "duplicate domain a.example (first at %s:2)",
	         in_dir("conf.d/a.ini"));
	assert_printed(in_dir("conf.d/b.ini"), 6, "", want);
	ck_assert_uint_eq(d.n_errors, 3);
}
END_TEST

/* Whatever is not a regular file is refused without blocking on it (a FIFO would). */
START_TEST(test_include_not_regular)
{
	ck_assert_int_eq(mkfifo(in_dir("fifo.ini"), 0600), 0);
	ck_assert_ptr_null(load(SERVER "include = fifo.ini\n[domain example.com]\n" BODY));
	char want[256];
	snprintf(want, sizeof(want), "%s: not a regular file", in_dir("fifo.ini"));
	assert_error(3, want);

	/* Nesting is bounded: a file including the next, deeper than allowed. */
	for (int i = 0; i <= CONFIG_INCLUDE_DEPTH + 1; i++) {
		char name[32], text[64];
		snprintf(name, sizeof(name), "n%d.ini", i);
		snprintf(text, sizeof(text), "include = n%d.ini\n", i + 1);
		write_file(in_dir(name), text);
	}
	diag_finish(&d);
	diag_init(&d);
	ck_assert_ptr_null(load(SERVER "include = n0.ini\n[domain example.com]\n" BODY));
	char deep[32];
	snprintf(deep, sizeof(deep), "n%d.ini", CONFIG_INCLUDE_DEPTH - 1);
	assert_printed(in_dir(deep), 1, "", "include nested deeper than");
}
END_TEST

/* [policy NAME]: a domain naming it gets the same policy (and tlsrpt unless it has its
 * own) as if the keys were inline, so the same bytes. */
START_TEST(test_policy_shared)
{
	struct config *c = load(SERVER "[policy provider-standard]\n"
	                               "mode = testing\nmx = mx1.provider.example\n"
	                               "mx = *.mx.provider.example\nmax_age = 86400\n"
	                               "tlsrpt = mailto:tlsrpt@provider.example\n"
	                               "[domain one.example]\npolicy = provider-standard\n"
	                               "[domain two.example]\npolicy = provider-standard\n"
	                               "tlsrpt = mailto:own@two.example\n"
	                               "[domain three.example]\nmode = testing\n"
	                               "mx = mx1.provider.example\nmx = *.mx.provider.example\n"
	                               "max_age = 86400\n"
	                               "[policy unused]\nmode = none\nmx = m.example\n"
	                               "max_age = 1\n");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	assert_printed(path, 19, "warning: ", "[policy unused] is named by no [domain]");
	ck_assert_uint_eq(c->n_domains, 3);

	size_t len[3];
	char *body[3];
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(body[i] = policy_render(&c->domains[i].policy, &len[i]));
	ck_assert_uint_eq(len[0], len[2]);
	ck_assert_mem_eq(body[0], body[2], len[0]);
	ck_assert_uint_eq(len[1], len[2]);
	ck_assert_mem_eq(body[1], body[2], len[1]);
	for (int i = 0; i < 3; i++)
		free(body[i]);
	ck_assert_str_eq(c->domains[0].policy_name, "provider-standard");
	ck_assert_uint_eq(c->domains[0].policy_line, 10);
	ck_assert_uint_eq(c->domains[0].n_tlsrpt, 1);
	ck_assert_str_eq(c->domains[0].tlsrpt[0], "mailto:tlsrpt@provider.example");
	ck_assert_uint_eq(c->domains[1].n_tlsrpt, 1);
	ck_assert_str_eq(c->domains[1].tlsrpt[0], "mailto:own@two.example");
	ck_assert_uint_eq(c->domains[2].n_tlsrpt, 0);
	config_destroy(c);
}
END_TEST

/* Inputs built to be expensive: 80,000 mx lines are one error (the body cap), found without
 * comparing every mx with every other; a 4 MiB line is one "line too long" error, read
 * without keeping it; a million bad lines keep only the first diagnostics. */
START_TEST(test_hostile_sizes)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(SERVER "[domain example.com]\nmode = enforce\nmax_age = 86400\n", f);
	for (unsigned i = 0; i < 80000; i++)
		fprintf(f, "mx = mx%u.example.com\n", i);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(config_load(path, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	assert_error(3, "[domain example.com]: policy over 65536 bytes");
	diag_finish(&d);
	diag_init(&d);

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(SERVER "[domain example.com]\n" BODY "tlsrpt = mailto:", f);
	for (unsigned i = 0; i < 4u << 20; i++)
		fputc('a', f);
	fputs("@example.com\n", f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(config_load(path, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	assert_error(7, "line too long");
	diag_finish(&d);
	diag_init(&d);

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(SERVER "[domain example.com]\n" BODY, f);
	for (unsigned i = 0; i < 1000000; i++)
		fputs("bogus line\n", f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(config_load(path, &d));
	ck_assert_uint_eq(d.n_errors, 1000000);
	ck_assert_uint_le(d.n, DIAG_KEEP * 2);
}
END_TEST

/* [domain mta-sts.example.com] is almost always meant as [domain example.com]. */
START_TEST(test_policy_host_hint)
{
	struct config *c = load(SERVER "[domain mta-sts.example.com]\n" BODY);
	ck_assert_ptr_nonnull(c);
	assert_printed(path, 3, "warning: ",
	               "[domain mta-sts.example.com] serves the policy host "
	               "mta-sts.mta-sts.example.com: the section names the mail domain, "
	               "[domain example.com]");
	config_destroy(c);
}
END_TEST

START_TEST(test_lint_warnings)
{
	struct config *c = load(SERVER "[domain example.com]\n"
	                               "mode = testing\n"
	                               "mx = mail.example.com\n"
	                               "max_age = 3600\n"
	                               "id = 20240601T120000\n");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_ge(d.n_warnings, 3);
	assert_printed(path, 4, "warning: ", ""); /* lint, at the mode line */
	assert_printed(path, 7, "warning: ", "fixed id \"20240601T120000\" must be changed");
	ck_assert_str_eq(c->domains[0].id, "20240601T120000");
	ck_assert_uint_eq(c->domains[0].id_line, 7);
	ck_assert_int_eq(c->domains[0].policy.mode, POLICY_MODE_TESTING);
	config_destroy(c);
}
END_TEST

START_TEST(test_syntax_variants)
{
	/* A BOM, CRLF, indentation (never a continuation line), both comment styles, an
	 * inline comment, ':' as separator, and a domain longer than inih's 49-byte section
	 * names. */
	struct config *c = load("\xef\xbb\xbf# comment\r\n"
	                        "[server] ; the server\r\n"
	                        "\tcerts = certs ; inline\r\n"
	                        "  ; indented comment\r\n"
	                        "[ domain  a123456789a123456789a123456789a123456789.example ]\r\n"
	                        "\tmode = none\r\n"
	                        "\tmx: mail.example.com\r\n"
	                        "\tmax_age=86400\r\n"
	                        "\n"
	                        "[domain example.org]\n"
	                        "mode = enforce\n"
	                        "    mx = mx.example.org\n"
	                        "max_age = 604800"); /* no final newline */
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_eq(c->n_domains, 2);
	ck_assert_str_eq(c->domains[0].name, "a123456789a123456789a123456789a123456789.example");
	ck_assert_uint_eq(c->domains[0].line, 5);
	ck_assert_int_eq(c->domains[0].policy.mode, POLICY_MODE_NONE);
	ck_assert_uint_eq(c->domains[0].policy.max_age, 86400);
	ck_assert_str_eq(c->domains[0].policy.mx[0], "mail.example.com");
	ck_assert_str_eq(c->domains[1].name, "example.org");
	ck_assert_uint_eq(c->domains[1].policy.n_mx, 1);
	ck_assert_uint_eq(c->domains[1].policy.max_age, 604800);
	ck_assert_str_eq(c->certs_dir + strlen(c->certs_dir) - 6, "/certs");
	config_destroy(c);
}
END_TEST

START_TEST(test_long_domain)
{
	/* 245 bytes is the longest name whose mta-sts host fits in 253. */
	char name[256], text[512];
	memset(name, 'a', sizeof(name));
	for (size_t i = 60; i < sizeof(name); i += 61)
		name[i] = '.';
	name[245] = '\0';
	int n = snprintf(text, sizeof(text), SERVER "[domain %s]\n" BODY, name);
	ck_assert(n > 0 && (size_t)n < sizeof(text));
	struct config *c = load(text);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->domains[0].name, name);
	config_destroy(c);

	name[245] = 'a';
	name[246] = '\0';
	n = snprintf(text, sizeof(text), SERVER "[domain %s]\n" BODY, name);
	ck_assert(n > 0 && (size_t)n < sizeof(text));
	ck_assert_ptr_null(load(text));
	assert_error(3, "domain name too long for mta-sts.");
}
END_TEST

START_TEST(test_many_domains)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs("[server]\ncerts = certs\n", f), 0);
	for (unsigned i = 0; i < MANY_DOMAINS; i++)
		ck_assert_int_gt(fprintf(f,
		                         "[domain customer%u.example]\nmode = enforce\n"
		                         "mx = mx%u.provider.example\nmax_age = 604800\n",
		                         i, i % 7),
		                 0);
	ck_assert_int_eq(fclose(f), 0);

	struct config *c = config_load(path, &d);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_eq(c->n_domains, MANY_DOMAINS);
	for (unsigned i = 0; i < MANY_DOMAINS; i += 9973) {
		char want[64];
		int n = snprintf(want, sizeof(want), "customer%u.example", i);
		ck_assert(n > 0 && (size_t)n < sizeof(want));
		ck_assert_str_eq(c->domains[i].name, want);
		ck_assert_uint_eq(c->domains[i].line, 3 + 4 * i);
		n = snprintf(want, sizeof(want), "mx%u.provider.example", i % 7);
		ck_assert(n > 0 && (size_t)n < sizeof(want));
		ck_assert_str_eq(c->domains[i].policy.mx[0], want);
	}
	config_destroy(c);
}
END_TEST

START_TEST(test_many_domains_duplicate)
{
	/* The duplicate check sees a name far from its first use. */
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs("[server]\ncerts = certs\n", f), 0);
	for (unsigned i = 0; i < 5000; i++)
		ck_assert_int_gt(fprintf(f, "[domain d%u.example]\nproxy = p.example\n", i), 0);
	ck_assert_int_ge(fputs("[domain D17.Example]\nproxy = p.example\n", f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(config_load(path, &d));
	ck_assert_uint_eq(d.n_errors, 1);
	assert_error(3 + 2 * 5000, "duplicate domain d17.example (first at line 37)");
}
END_TEST

START_TEST(test_no_cert_errors_capped)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (unsigned i = 0; i < 100; i++)
		ck_assert_int_gt(fprintf(f, "[domain d%u.example]\nproxy = p.example\n", i), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_null(config_load(path, &d));
	assert_error(1, "[domain d0.example] has no cert and key");
	assert_error(0, "90 more domains have no cert and key");
	ck_assert_uint_eq(d.n_errors, 11);
}
END_TEST

START_TEST(test_examples)
{
	/* The shipped examples load (certificates are the TLS module's business). */
	struct config *c = config_load(TESTS_SRCDIR "/../config/example.ini", &d);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_uint_eq(c->n_listen, 1);
	ck_assert_str_eq(c->listen[0].text, "127.0.0.1:8443");
	ck_assert_uint_eq(c->n_domains, 2);
	ck_assert_str_eq(c->domains[0].name, "example.com");
	ck_assert_uint_eq(c->domains[0].policy.n_mx, 2);
	ck_assert_str_eq(c->domains[0].cert,
	                 TESTS_SRCDIR "/../config/../certs-example/out/mta-sts.example.com.crt");
	ck_assert_str_eq(c->domains[1].name, "example.net");
	ck_assert_int_eq(c->domains[1].policy.mode, POLICY_MODE_TESTING);
	config_destroy(c);

	c = config_load(TESTS_SRCDIR "/../config/provider.ini", &d);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(d.n_errors, 0);
	ck_assert_str_eq(c->certs_dir, TESTS_SRCDIR "/../config/../certs-example/out");
	ck_assert_uint_ge(c->n_domains, 2);
	bool proxy = false;
	for (size_t i = 0; i < c->n_domains; i++) {
		ck_assert_ptr_null(c->domains[i].cert);
		proxy = proxy || c->domains[i].proxy != NULL;
	}
	ck_assert(proxy);
	config_destroy(c);
}
END_TEST

START_TEST(test_destroy_null)
{
	config_destroy(NULL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("unit");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_unreadable_file);
	tcase_add_test(tc, test_every_error_reported);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_server_values);
	tcase_add_test(tc, test_paths_resolved);
	tcase_add_loop_test(
	    tc, test_on_change_resolved_and_checked, 0,
	    (int)(sizeof(relative_command_cases) / sizeof(relative_command_cases[0])));
	tcase_add_test(tc, test_paths_without_directory);
	tcase_add_test(tc, test_listen_max);
	tcase_add_test(tc, test_mx_order_and_case);
	tcase_add_test(tc, test_proxy);
	tcase_add_test(tc, test_lint_warnings);
	tcase_add_test(tc, test_include);
	tcase_add_test(tc, test_include_not_regular);
	tcase_add_test(tc, test_policy_shared);
	tcase_add_test(tc, test_policy_host_hint);
	tcase_add_test(tc, test_hostile_sizes);
	tcase_add_test(tc, test_acme);
	tcase_add_test(tc, test_syntax_variants);
	tcase_add_test(tc, test_long_domain);
	tcase_add_test(tc, test_many_domains);
	tcase_add_test(tc, test_many_domains_duplicate);
	tcase_add_test(tc, test_no_cert_errors_capped);
	tcase_add_test(tc, test_examples);
	tcase_add_test(tc, test_destroy_null);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
