/* tlsrptcmd: tlsrpt-ingest and report */
#include "tlsrptcmd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "intake.h"
#include "reportstore.h"
#include "summary.h"

static bool served(void *arg, const char *domain)
{
	const struct config *c = arg;

	for (size_t i = 0; i < c->n_domains; i++)
		if (strcasecmp(c->domains[i].name, domain) == 0)
			return true;
	return false;
}

/* The configuration and its store, or NULL with the problem on stderr. */
static struct config *load(const char *path, struct reportstore **ret_store)
{
	struct diag d;
	struct config *c;
	char err[REPORTSTORE_ERR_MAX];

	diag_init(&d);
	c = config_load(path, &d);
	if (c == NULL) {
		diag_print(&d, stderr);
		diag_finish(&d);
		return NULL;
	}
	diag_finish(&d);
	if ((*ret_store = reportstore_open(c->tlsrpt_store, c->state_dir, err, sizeof(err))) ==
	    NULL) {
		fprintf(stderr, "mtastsd: %s: the report store: %s\n", path, err);
		config_destroy(c);
		return NULL;
	}
	return c;
}

int tlsrptcmd_ingest(const char *path)
{
	struct buf msg;
	struct reportstore *store = NULL;
	struct config *c = load(path, &store);
	char buf[65536], err[512] = "";
	size_t n;
	uint64_t pruned;
	int ret = EXIT_TEMPFAIL;

	if (c == NULL)
		return EXIT_TEMPFAIL; /* nothing is lost: the MTA tries again */
	buf_init(&msg);
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0 && msg.len <= INTAKE_MESSAGE_MAX)
		buf_append(&msg, buf, n);
	if (ferror(stdin) || msg.failed) {
		fprintf(stderr, "mtastsd: cannot read the message: %s\n", strerror(errno));
		goto out;
	}
	switch (intake_mail(msg.data != NULL ? msg.data : "", msg.len, served, c, store,
	                    c->tlsrpt_quota, time(NULL), err, sizeof(err))) {
	case INTAKE_STORED:
		ret = 0;
		/* retention: what the new report pushed out of the window goes now */
		if (reportstore_prune(store, c->tlsrpt_retention_days, time(NULL), &pruned, err,
		                      sizeof(err)) < 0)
			fprintf(stderr, "mtastsd: stored; old reports not pruned: %s\n", err);
		break;
	case INTAKE_DUPLICATE:
		fprintf(stderr, "mtastsd: %s\n", err);
		ret = 0;
		break;
	case INTAKE_REFUSED:
		fprintf(stderr, "mtastsd: report dropped: %s\n", err);
		ret = 0;
		break;
	case INTAKE_INVALID:
		fprintf(stderr, "mtastsd: not a valid TLS report for this server: %s\n", err);
		ret = EXIT_DATAERR;
		break;
	case INTAKE_TEMPFAIL:
		fprintf(stderr, "mtastsd: the report store is unavailable, try again: %s\n", err);
		ret = EXIT_TEMPFAIL;
		break;
	}
out:
	buf_finish(&msg);
	reportstore_close(store);
	config_destroy(c);
	return ret;
}

int tlsrptcmd_report(const char *path, char **domains, size_t n, unsigned days, bool json)
{
	struct reportstore *store = NULL;
	struct config *c = load(path, &store);
	const char **names;
	struct reportstore_summary *sum = NULL;
	struct buf out;
	char err[REPORTSTORE_ERR_MAX];
	size_t count = n != 0 ? n : (c != NULL ? c->n_domains : 0);
	int ret = 1;

	if (c == NULL)
		return 2;
	names = calloc(count ? count : 1, sizeof(*names));
	buf_init(&out);
	for (size_t i = 0; names != NULL && i < count; i++) {
		names[i] = n != 0 ? domains[i] : c->domains[i].name;
		if (n != 0 && !served(c, names[i])) {
			fprintf(stderr, "mtastsd: %s is not a domain of %s\n", names[i], path);
			ret = 2;
			goto out;
		}
	}
	if (names == NULL) {
		fputs("mtastsd: out of memory\n", stderr);
		goto out;
	}
	if (reportstore_summary(store, names, count, days, time(NULL), &sum, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "mtastsd: the report store: %s\n", err);
		goto out;
	}
	if (summary_render(sum, names, count, days, json, &out) < 0 ||
	    fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
		fputs("mtastsd: cannot print the summary\n", stderr);
		goto out;
	}
	ret = 0;
out:
	reportstore_summary_free(sum);
	buf_finish(&out);
	free(names);
	reportstore_close(store);
	config_destroy(c);
	return ret;
}
