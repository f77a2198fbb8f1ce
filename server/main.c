/* main: the mtastsd command line: serve | check | records | id | verify */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "buf.h"
#include "certcache.h"
#include "config.h"
#include "doc.h"
#include "fetch.h"
#include "journal.h"
#include "policy.h"
#include "serve.h"
#include "snapshot.h"
#include "stats.h"
#include "tls.h"
#include "tlsrptcmd.h"
#include "upstream.h"
#include "verify.h"

#define DEFAULT_CONFIG "/etc/mtastsd/mtastsd.ini"

static const char usage_text[] =
    "usage: mtastsd COMMAND [OPTIONS]\n"
    "\n"
    "Serves MTA-STS (RFC 8461) policies for many domains over HTTPS, choosing each\n"
    "domain's certificate by SNI, and prints the DNS records to publish.\n"
    "\n"
    "commands:\n"
    "  serve   -c FILE                  run the server in the foreground (log on stderr);\n"
    "                                   SIGHUP reloads, SIGTERM/SIGINT stop\n"
    "  check   -c FILE [--no-certs]     validate config, policies and certificates;\n"
    "                                   prints 'configuration OK' or FILE:LINE errors\n"
    "  records -c FILE [--format zone|json] [--no-certs] [DOMAIN...]\n"
    "                                   print the DNS records to publish\n"
    "  id      [FILE]                   validate a policy body (FILE or stdin) and print\n"
    "                                   the id of its canonical form\n"
    "  verify  -c FILE [DOMAIN...]      check each domain live as a sender sees it: TXT\n"
    "                                   records, policy host, MX coverage, STARTTLS on\n"
    "                                   every MX; exit 0 ok, 1 a check failed, 2 usage\n"
    "  tlsrpt-ingest -c FILE            store the TLS report of the mail on stdin\n"
    "  report  -c FILE [DOMAIN...] [--days N] [--format text|json]\n"
    "                                   what the stored TLS reports say, per domain and day\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
    "  -f, --format FMT    records output: zone (default) or json;\n"
    "                      verify, report output: text (default) or json\n"
    "      --no-certs      check, records: everything but the certificate and key files\n"
    "      --ca-file FILE  verify: trust store for policy hosts and MX (default: system)\n"
    "      --https-port N  verify: port of the policy hosts (default 443)\n"
    "      --smtp-port N   verify: port of the MX hosts (default 25)\n"
    "      --timeout S     verify: seconds for the whole run (default 30)\n"
    "      --days N        report: the last N days, today included (default 7)\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n"
    "\n"
    "Run 'mtastsd COMMAND --help' for one command. The manual: mtastsd(8), the\n"
    "configuration: mtastsd.ini(5); README.md has both with examples.\n";

static const char *const command_help[][2] = {
    {"serve", "usage: mtastsd serve [-c FILE]\n"
              "Runs the HTTPS policy server in the foreground, logging to stderr.\n"
              "SIGHUP reloads config and certificates (all or nothing); SIGTERM/SIGINT stop;\n"
              "SIGUSR1 logs a status line. Under systemd (NOTIFY_SOCKET) it reports READY=1,\n"
              "reloads and their outcome; under journald lines carry their priority.\n"},
    {"check", "usage: mtastsd check [-c FILE] [--no-certs]\n"
              "Validates everything 'serve' would load. Prints 'configuration OK' (exit 0)\n"
              "or every error as FILE:LINE: message on stderr (exit 1). Warnings do not fail.\n"
              "A domain whose certificate is missing, unreadable, damaged, mismatched, expired\n"
              "or not yet valid is an error here, although 'serve' runs with it (degraded).\n"
              "--no-certs checks everything but certificate and key files (CI without keys).\n"},
    {"records", "usage: mtastsd records [-c FILE] [--format zone|json] [--no-certs] [DOMAIN...]\n"
                "Prints the _mta-sts and _smtp._tls records to publish for the DOMAINs named, or\n"
                "every domain. Only for a configuration that 'check' accepts: on any error it\n"
                "prints them as check does and no record (exit 1); an unknown DOMAIN exits 2.\n"
                "--no-certs leaves the certificate and key files out of that check.\n"},
    {"id", "usage: mtastsd id [FILE]\n"
           "Reads a policy body from FILE or stdin, validates it strictly (RFC 8461 3.2)\n"
           "and prints the id of its canonical form. Errors: FILE:LINE: message, exit 1.\n"},
    {"tlsrpt-ingest",
     "usage: mtastsd tlsrpt-ingest [-c FILE]\n"
     "Reads one mail message on stdin (a Postfix pipe transport, an alias, .forward),\n"
     "finds its application/tlsrpt+gzip or +json part (RFC 8460), checks the report\n"
     "strictly, refuses one naming a domain not in FILE, and stores it (tlsrpt_store).\n"
     "Exit (sysexits): 0 stored, a duplicate, or dropped at the domain's quota;\n"
     "65 not a valid report for this server (the MTA bounces it); 75 the store or the\n"
     "configuration is unavailable (the MTA tries again; nothing is lost).\n"},
    {"report", "usage: mtastsd report [-c FILE] [DOMAIN...] [--days N] [--format text|json]\n"
               "Sums the stored TLS reports of the DOMAINs (default: every one) over the last N\n"
               "days (default 7): sessions ok and failed, failures by result type and receiving\n"
               "MX, the reporting organisations, and one line per day. Exit 1 when the store is\n"
               "unavailable, 2 for an unknown DOMAIN or a configuration error.\n"},
    {"verify",
     "usage: mtastsd verify [-c FILE] [DOMAIN...] [--format text|json] [--ca-file FILE]\n"
     "                      [--https-port N] [--smtp-port N] [--timeout S]\n"
     "Checks each domain (default: every configured one) live, as a sending MTA sees it,\n"
     "through the config's dns_server (else resolv.conf); changes nothing anywhere:\n"
     "  sts-txt       _mta-sts.DOMAIN TXT: one v=STSv1 record, valid, with the id served\n"
     "  policy-fetch  https://mta-sts.DOMAIN/.well-known/mta-sts.txt: verified TLS, 200,\n"
     "                text/plain, exactly the bytes this config serves\n"
     "  mx-coverage   every MX host matched by an mx pattern (warns for unused patterns)\n"
     "  mx-tls HOST   per MX: EHLO, STARTTLS, TLS 1.2+, trusted chain, name (RFC 8461 4.1),\n"
     "                not expired (warns under 14 days)\n"
     "  tlsrpt-txt    _smtp._tls.DOMAIN TXT: RFC 8460 syntax (warns when absent)\n"
     "Then a verdict per domain (testing: 'ready for enforce' or why not).\n"
     "Exit 0 when nothing failed, 1 when a check failed, 2 on usage or config errors.\n"},
};

static void print_diag(const struct diag *d)
{
	diag_print(d, stderr);
}

/* check and records: the configuration as serve would load it, with the provider copies
 * kept in state_dir; no thread, nothing served. certs: validate every certificate. */
static struct snapshot *load(const char *path, bool certs, struct upstreams *ups, struct diag *d)
{
	struct config *c = config_load(path, d);
	struct certcache *cc = NULL;

	if (c == NULL)
		return NULL;
	if (certs && (cc = certcache_create(c, NULL, CERTCACHE_VALIDATE, time(NULL), d)) == NULL) {
		diag_error(d, path, 0, "out of memory");
		config_destroy(c);
		return NULL;
	}
	return snapshot_create(c, cc, ups, NULL, d);
}

struct gone {
	const struct snapshot *s;
	struct diag *d;
	time_t now;
};

/* A domain of the journal that the configuration no longer has, while senders may still
 * hold a policy of it that is not none: its records must stay (RFC 8461 §8.3). */
static void gone_check(void *arg, const char *domain, const struct journal_entry *v, size_t n,
                       bool live)
{
	struct gone *g = arg;
	char host[300], until_s[32];
	int len = snprintf(host, sizeof(host), "mta-sts.%s", domain);
	time_t until;
	struct tm tm;

	if (len < 0 || (size_t)len >= sizeof(host) ||
	    snapshot_find(g->s, host, (size_t)len) != NULL)
		return;
	(void)live; /* by this process: no server runs here */
	until = journal_cached_until(v, n, false);
	if (until <= g->now || gmtime_r(&until, &tm) == NULL ||
	    strftime(until_s, sizeof(until_s), "%Y-%m-%d %H:%M UTC", &tm) == 0)
		return;
	diag_warn(g->d, snapshot_config(g->s)->file, 0,
	          "%s is no longer configured, but senders may hold its policy (id %s, mode %s) "
	          "until %s: serve it with mode none until then, then remove its records",
	          domain, v[n - 1].id, policy_mode_name(v[n - 1].mode), until_s);
}

/* Warnings from the journal in state_dir: domains taken out too early. */
static void journal_check(const struct snapshot *s, struct diag *d)
{
	const struct config *c = snapshot_config(s);
	struct journal *j = c->state_dir != NULL ? journal_open(c->state_dir, false) : NULL;
	struct gone g = {s, d, time(NULL)};

	if (j != NULL)
		journal_each(j, gone_check, &g);
	journal_close(j, false, 0);
}

static int cmd_check(const char *path, bool no_certs)
{
	struct diag d;
	struct snapshot *s = NULL;
	struct upstreams *ups = upstreams_create(NULL, NULL, NULL);
	int ret = 1;

	diag_init(&d);
	if (ups != NULL)
		s = load(path, !no_certs, ups, &d);
	if (s != NULL)
		journal_check(s, &d);
	print_diag(&d);
	/* Certificate problems leave the server running for the other domains, but here
	 * they fail: CI should catch them before they ship. */
	if (s != NULL && d.n_errors == 0) {
		puts(no_certs ? "configuration OK (certificates not checked)" : "configuration OK");
		ret = 0;
	}
	diag_finish(&d);
	snapshot_unref(s);
	upstreams_destroy(ups);
	return ret;
}

/* Zone comments for the domains in mode none: from the journal, whether their records can
 * go yet. */
static void removal_comments(const struct snapshot *s, const struct tenant *const *sel,
                             size_t n_sel, struct buf *out)
{
	const struct config *c = snapshot_config(s);
	struct journal *j = c->state_dir != NULL ? journal_open(c->state_dir, false) : NULL;
	size_t count = sel != NULL ? n_sel : snapshot_size(s);
	time_t now = time(NULL);

	for (size_t i = 0; j != NULL && i < count; i++) {
		const struct tenant *t = sel != NULL ? sel[i] : snapshot_tenant(s, i);
		const char *name = tenant_domain(t)->name;
		struct doc *doc = tenant_doc(t, now);
		struct journal_entry v[JOURNAL_KEEP];
		char text[300];
		bool live;
		size_t k;

		if (doc == NULL || strcmp(doc->mode, "none") != 0 ||
		    (k = journal_history(j, name, v, &live)) == 0) {
			doc_unref(doc);
			continue;
		}
		if (strcmp(v[k - 1].id, doc->id) != 0) {
			buf_printf(out,
			           "; %s: mode none is not served yet (state_dir has id %s): "
			           "reload the server, publish this id, then wait out the earlier "
			           "max_age before removing the records\n",
			           name, v[k - 1].id);
		} else {
			journal_summary(v, k, false, now, text, sizeof(text));
			buf_printf(out, "; %s: %s\n", name, text);
		}
		doc_unref(doc);
	}
	journal_close(j, false, 0);
}

/* The records of the domains named (all when n is 0), only for a configuration that
 * 'check' accepts: ids of domains that cannot be served must not be published. */
static int cmd_records(const char *path, const char *format, bool no_certs, char **names, size_t n)
{
	struct diag d;
	struct snapshot *s = NULL;
	struct buf out;
	struct upstreams *ups = upstreams_create(NULL, NULL, NULL);
	const struct tenant **sel = calloc(n ? n : 1, sizeof(*sel));
	int ret = 1;

	diag_init(&d);
	if (ups != NULL && sel != NULL)
		s = load(path, !no_certs, ups, &d);
	print_diag(&d);
	buf_init(&out);
	if (s == NULL || d.n_errors != 0) {
		fprintf(stderr, "mtastsd: %s: no records printed: the configuration has errors\n",
		        path);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char host[300];
		int len = snprintf(host, sizeof(host), "mta-sts.%s", names[i]);

		for (char *h = host; *h != '\0'; h++)
			*h = (char)(*h >= 'A' && *h <= 'Z' ? *h - 'A' + 'a' : *h);
		if (len > 0 && (size_t)len < sizeof(host) && host[len - 1] == '.')
			host[--len] = '\0';
		if (len < 0 || (size_t)len >= sizeof(host) ||
		    (sel[i] = snapshot_find(s, host, (size_t)len)) == NULL) {
			fprintf(stderr, "mtastsd: %s is not a domain of %s\n", names[i], path);
			ret = 2;
			goto out;
		}
	}
	if (snapshot_records(s, n ? sel : NULL, n, strcmp(format, "json") == 0, &out) < 0) {
		fputs("mtastsd: cannot render the records\n", stderr);
		goto out;
	}
	if (strcmp(format, "zone") == 0)
		removal_comments(s, n ? sel : NULL, n, &out);
	if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fprintf(stderr, "mtastsd: cannot write the records: %s\n", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	diag_finish(&d);
	free(sel);
	buf_finish(&out);
	snapshot_unref(s);
	upstreams_destroy(ups);
	return ret;
}

static int cmd_id(const char *file)
{
	FILE *f = stdin;
	const char *name = file != NULL ? file : "<stdin>";
	char *body = malloc(POLICY_BODY_MAX + 2);
	size_t len;
	struct policy p;
	struct diag d;
	int ret = 1;

	if (body == NULL)
		return 1;
	if (file != NULL && strcmp(file, "-") != 0 && (f = fopen(file, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", file, strerror(errno));
		free(body);
		return 1;
	}
	len = fread(body, 1, POLICY_BODY_MAX + 1, f);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", name);
		goto out;
	}
	diag_init(&d);
	policy_init(&p);
	if (policy_parse(&p, body, len, &d, name) == 0) {
		size_t n;
		char *canon = policy_render(&p, &n);
		char id[POLICY_ID_MAX + 1];

		if (canon != NULL) {
			policy_id(canon, n, id);
			printf("%s\n", id);
			free(canon);
			ret = 0;
		}
		policy_finish(&p);
	}
	print_diag(&d);
	diag_finish(&d);
out:
	if (f != stdin)
		fclose(f);
	free(body);
	return ret;
}

static int cmd_verify(const char *path, const char *const *domains, size_t n,
                      const struct verify_opts *o)
{
	struct diag d;
	struct snapshot *s = NULL;
	struct buf out;
	struct upstreams *ups = upstreams_create(NULL, NULL, NULL);
	char err[300] = "";
	int ret = 2;

	/* As records loads it: read only, provider copies from state_dir, no certificate. */
	diag_init(&d);
	buf_init(&out);
	if (ups != NULL)
		s = load(path, false, ups, &d);
	if (s == NULL) {
		print_diag(&d);
		goto out;
	}
	ret = (int)verify_run(s, domains, n, o, &out, err, sizeof(err));
	if (err[0] != 0) {
		fprintf(stderr, "mtastsd: verify: %s\n", err);
		if (ret != VERIFY_USAGE)
			ret = 1;
		goto out;
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fprintf(stderr, "mtastsd: cannot write the report: %s\n", strerror(errno));
		ret = 1;
	}
out:
	diag_finish(&d);
	buf_finish(&out);
	snapshot_unref(s);
	upstreams_destroy(ups);
	return ret;
}

/* A decimal number in [min, max], the whole string. 0 / -1. */
static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != 0 || v < min || v > max)
		return -1;
	*ret = (unsigned)v;
	return 0;
}

static const char *find_help(const char *command)
{
	for (size_t i = 0; i < sizeof(command_help) / sizeof(command_help[0]); i++)
		if (strcmp(command_help[i][0], command) == 0)
			return command_help[i][1];
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"no-certs", no_argument, NULL, 'n'},
	    {"ca-file", required_argument, NULL, 'A'},
	    {"https-port", required_argument, NULL, 'H'},
	    {"smtp-port", required_argument, NULL, 'S'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"days", required_argument, NULL, 'D'},
	    {NULL, 0, NULL, 0},
	};
	struct verify_opts vo = {.https_port = 443, .smtp_port = 25, .timeout = 30};
	unsigned days = 7;
	bool format_set = false;
	const char *command, *path = DEFAULT_CONFIG, *format = "zone";
	bool no_certs = false;
	int opt, ret;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	command = argv[1];
	if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0 ||
	    strcmp(command, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(command, "-V") == 0 || strcmp(command, "--version") == 0) {
		puts("mtastsd " MTASTSD_VERSION);
		return 0;
	}
	if (find_help(command) == NULL) {
		fprintf(stderr, "mtastsd: unknown command '%s'\n\n%s", command, usage_text);
		return 2;
	}
	optind = 2;
	while ((opt = getopt_long(argc, argv, "c:f:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			format = optarg;
			format_set = true;
			break;
		case 'A':
		case 'H':
		case 'S':
		case 'T':
			if (strcmp(command, "verify") != 0) {
				fprintf(stderr, "mtastsd: %s is an option of verify only\n",
				        argv[optind - 1]);
				return 2;
			}
			if (opt == 'A') {
				vo.ca_file = optarg;
			} else if (parse_uint(optarg, 1, opt == 'T' ? 3600 : 65535,
			                      opt == 'H'   ? &vo.https_port
			                      : opt == 'S' ? &vo.smtp_port
			                                   : &vo.timeout) < 0) {
				fprintf(stderr, "mtastsd: bad value '%s' for %s\n", optarg,
				        opt == 'H'   ? "--https-port"
				        : opt == 'S' ? "--smtp-port"
				                     : "--timeout (1 to 3600 seconds)");
				return 2;
			}
			break;
		case 'D':
			if (strcmp(command, "report") != 0 ||
			    parse_uint(optarg, 1, 3650, &days) < 0) {
				fprintf(stderr,
				        "mtastsd: --days is an option of report: 1 to 3650\n");
				return 2;
			}
			break;
		case 'n':
			if (strcmp(command, "check") != 0 && strcmp(command, "records") != 0) {
				fprintf(
				    stderr,
				    "mtastsd: --no-certs is an option of check and records only\n");
				return 2;
			}
			no_certs = true;
			break;
		case 'h':
			fputs(find_help(command), stdout);
			return 0;
		case 'V':
			puts("mtastsd " MTASTSD_VERSION);
			return 0;
		default:
			fputs(find_help(command), stderr);
			return 2;
		}
	}
	if (strcmp(command, "verify") == 0 || strcmp(command, "report") == 0) {
		if (format_set && strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
			fprintf(stderr, "mtastsd: --format must be text or json\n");
			return 2;
		}
		vo.json = format_set && strcmp(format, "json") == 0;
	} else if (strcmp(format, "zone") != 0 && strcmp(format, "json") != 0) {
		fprintf(stderr, "mtastsd: --format must be zone or json\n");
		return 2;
	}
	if (strcmp(command, "id") == 0 ? argc - optind > 1
	    : strcmp(command, "records") == 0 || strcmp(command, "verify") == 0 ||
	            strcmp(command, "report") == 0
	        ? false
	        : optind != argc) {
		fprintf(stderr, "mtastsd: unexpected argument '%s'\n\n%s", argv[argc - 1],
		        find_help(command));
		return 2;
	}
	if (tls_global_init() < 0 || fetch_global_init() < 0 || stats_init() < 0) {
		fputs("mtastsd: cannot initialize GnuTLS or libcurl\n", stderr);
		return 1;
	}
	if (strcmp(command, "id") == 0)
		ret = cmd_id(optind < argc ? argv[optind] : NULL);
	else if (strcmp(command, "check") == 0)
		ret = cmd_check(path, no_certs);
	else if (strcmp(command, "records") == 0)
		ret = cmd_records(path, format, no_certs, argv + optind, (size_t)(argc - optind));
	else if (strcmp(command, "tlsrpt-ingest") == 0)
		ret = tlsrptcmd_ingest(path);
	else if (strcmp(command, "report") == 0)
		ret = tlsrptcmd_report(path, argv + optind, (size_t)(argc - optind), days, vo.json);
	else if (strcmp(command, "verify") == 0)
		ret = cmd_verify(path, (const char *const *)argv + optind, (size_t)(argc - optind),
		                 &vo);
	else
		ret = serve_run(path);
	stats_finish();
	fetch_global_cleanup();
	gnutls_global_deinit();
	return ret;
}
