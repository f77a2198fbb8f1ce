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
#include "fetch.h"
#include "policy.h"
#include "serve.h"
#include "snapshot.h"
#include "stats.h"
#include "tls.h"
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
    "  records -c FILE [--format zone|json]\n"
    "                                   print the DNS records to publish\n"
    "  id      [FILE]                   validate a policy body (FILE or stdin) and print\n"
    "                                   the id of its canonical form\n"
    "  verify  -c FILE [DOMAIN...]      check each domain live as a sender sees it: TXT\n"
    "                                   records, policy host, MX coverage, STARTTLS on\n"
    "                                   every MX; exit 0 ok, 1 a check failed, 2 usage\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
    "  -f, --format FMT    records output: zone (default) or json;\n"
    "                      verify output: text (default) or json\n"
    "      --no-certs      check: everything but the certificate and key files\n"
    "      --ca-file FILE  verify: trust store for policy hosts and MX (default: system)\n"
    "      --https-port N  verify: port of the policy hosts (default 443)\n"
    "      --smtp-port N   verify: port of the MX hosts (default 25)\n"
    "      --timeout S     verify: seconds for the whole run (default 30)\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n"
    "\n"
    "Run 'mtastsd COMMAND --help' for one command. See README.md for the config format.\n";

static const char *const command_help[][2] = {
    {"serve", "usage: mtastsd serve [-c FILE]\n"
              "Runs the HTTPS policy server in the foreground, logging to stderr.\n"
              "SIGHUP reloads config and certificates (all or nothing); SIGTERM/SIGINT stop.\n"},
    {"check", "usage: mtastsd check [-c FILE] [--no-certs]\n"
              "Validates everything 'serve' would load. Prints 'configuration OK' (exit 0)\n"
              "or every error as FILE:LINE: message on stderr (exit 1). Warnings do not fail.\n"
              "A domain whose certificate is missing, unreadable, damaged, mismatched, expired\n"
              "or not yet valid is an error here, although 'serve' runs with it (degraded).\n"
              "--no-certs checks everything but certificate and key files (CI without keys).\n"},
    {"records", "usage: mtastsd records [-c FILE] [--format zone|json]\n"
                "Prints the _mta-sts and _smtp._tls records to publish for every domain.\n"},
    {"id", "usage: mtastsd id [FILE]\n"
           "Reads a policy body from FILE or stdin, validates it strictly (RFC 8461 3.2)\n"
           "and prints the id of its canonical form. Errors: FILE:LINE: message, exit 1.\n"},
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

static int cmd_check(const char *path, bool no_certs)
{
	struct diag d;
	struct snapshot *s = NULL;
	struct upstreams *ups = upstreams_create(NULL, NULL, NULL);
	int ret = 1;

	diag_init(&d);
	if (ups != NULL)
		s = load(path, !no_certs, ups, &d);
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

static int cmd_records(const char *path, const char *format)
{
	struct diag d;
	struct snapshot *s = NULL;
	struct buf out;
	struct upstreams *ups = upstreams_create(NULL, NULL, NULL);
	int ret = 1;

	diag_init(&d);
	if (ups != NULL)
		s = load(path, false, ups, &d);
	print_diag(&d);
	diag_finish(&d);
	buf_init(&out);
	if (s == NULL)
		goto out;
	if (snapshot_records(s, strcmp(format, "json") == 0, &out) < 0) {
		fputs("mtastsd: cannot render the records\n", stderr);
		goto out;
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fprintf(stderr, "mtastsd: cannot write the records: %s\n", strerror(errno));
		goto out;
	}
	ret = 0;
out:
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
	    {NULL, 0, NULL, 0},
	};
	struct verify_opts vo = {.https_port = 443, .smtp_port = 25, .timeout = 30};
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
		case 'n':
			if (strcmp(command, "check") != 0) {
				fprintf(stderr, "mtastsd: --no-certs is an option of check only\n");
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
	if (strcmp(command, "verify") == 0) {
		if (format_set && strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
			fprintf(stderr, "mtastsd: --format must be text or json\n");
			return 2;
		}
		vo.json = format_set && strcmp(format, "json") == 0;
	} else if (strcmp(format, "zone") != 0 && strcmp(format, "json") != 0) {
		fprintf(stderr, "mtastsd: --format must be zone or json\n");
		return 2;
	}
	if (strcmp(command, "verify") == 0 ? false
	    : strcmp(command, "id") == 0   ? argc - optind > 1
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
		ret = cmd_records(path, format);
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
