/* config: the INI configuration file (inih) -> a validated, immutable struct */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config_parse.h"
#include "config_parser.h"

/*
 * inih splits "key = value" lines and judges their syntax. A reader in front of it does
 * what inih cannot do for us, the same way whatever options libinih was built with:
 * - it counts lines: the handler gets no line number (INI_HANDLER_LINENO is 0 in Debian);
 * - it drops comments itself (';' or '#' at the start, ';' after whitespace inline), so
 *   INI_ALLOW_INLINE_COMMENTS does not change the meaning of a value;
 * - it hands inih every line without its indentation, so an indented key is never read as
 *   a multi-line continuation (INI_ALLOW_MULTILINE) of the key before;
 * - it parses section headers: inih keeps only 49 bytes of a section name, and a domain
 *   name may have 253.
 * A key line handed to inih that never reaches the handler is one inih rejected (no '='):
 * a syntax error. The handler always returns success so that a build with
 * INI_STOP_ON_FIRST_ERROR still lets every problem be collected.
 */

#define NO_CERT_REPORTED 10
/* bytes of a line kept: more than any valid line (a key line is cut by inih's limit, a
 * section header holds at most a 253-byte name) */
#define LINE_CAP 4096
/* the served body but its mx lines: version, mode and max_age lines, at most */
#define BODY_FIXED 50

static void section_end(struct parser *p)
{
	if (p->r.section == SECTION_DOMAIN || p->r.section == SECTION_POLICY)
		config_domain_check(p);
	p->r.section = SECTION_NONE;
	p->dom = NULL;
}

/* "duplicate KIND NAME (first at [FILE:]LINE)" for the section being read. */
static void duplicate(struct parser *p, const char *kind, const char *name,
                      const struct config_domain *first)
{
	if (first->file == p->file)
		diag_error(p->d, p->file, p->r.lineno, "duplicate %s %s (first at line %u)", kind,
		           name, first->line);
	else
		diag_error(p->d, p->file, p->r.lineno, "duplicate %s %s (first at %s:%u)", kind,
		           name, first->file, first->line);
}

static void section_start(struct parser *p, struct config_domain *dom, enum section section)
{
	policy_init(&dom->policy);
	p->dom = dom;
	p->r.section = section;
	p->errors_at_domain = p->d->n_errors;
	memset(p->domain_seen, 0, sizeof(p->domain_seen));
	p->static_line = 0;
	p->static_key = NULL;
	p->mode_ok = false;
	hash_finish(&p->mx_seen);
	p->body_bytes = BODY_FIXED;
	p->body_over = false;
}

static void domain_section(struct parser *p, const char *raw)
{
	struct config *c = p->c;
	unsigned line = p->r.lineno;
	bool no_memory;
	char *host = config_parse_domain(HOST_PREFIX, raw, &no_memory);
	char alabel[DOMAIN_MAX + 1];

	if (host == NULL) {
		if (no_memory)
			oom(p);
		else if (*config_alabel(raw, alabel, sizeof(alabel)) != '\0')
			diag_error(
			    p->d, p->file, line,
			    "invalid domain name \"%s\": write it with A-labels, [domain %s]", raw,
			    alabel);
		else
			diag_error(p->d, p->file, line, "invalid domain name \"%s\"", raw);
		return;
	}
	if (strncmp(host + HOST_PREFIX_LEN, HOST_PREFIX, HOST_PREFIX_LEN) == 0)
		diag_warn(p->d, p->file, line,
		          "[domain %s] serves the policy host %s: the section names the mail "
		          "domain, [domain %s], and the server answers for mta-sts.<domain>",
		          host + HOST_PREFIX_LEN, host, host + 2 * HOST_PREFIX_LEN);
	if (strlen(host) > DOMAIN_MAX) {
		diag_error(p->d, p->file, line, "domain name too long for %s", host);
		free(host);
		return;
	}
	if (c->n_domains == p->domains_cap) {
		size_t cap = p->domains_cap != 0 ? 2 * p->domains_cap : 16;
		struct config_domain *v = reallocarray(c->domains, cap, sizeof(*v));
		if (v == NULL) {
			free(host);
			oom(p);
			return;
		}
		c->domains = v;
		p->domains_cap = cap;
	}
	struct config_domain *dom = &c->domains[c->n_domains];
	memset(dom, 0, sizeof(*dom));
	dom->host = host;
	dom->name = host + HOST_PREFIX_LEN; /* one allocation for both */
	dom->file = p->file;
	dom->line = line;

	void *first = NULL;
	int r = hash_put(&p->names, dom->name, (void *)(uintptr_t)(c->n_domains + 1), &first);
	if (r != 0) {
		if (r < 0)
			oom(p);
		else
			duplicate(p, "domain", dom->name, &c->domains[(uintptr_t)first - 1]);
		free(host);
		return;
	}
	c->n_domains++;
	section_start(p, dom, SECTION_DOMAIN);
}

/* [policy NAME]: mode, mx, max_age and tlsrpt that [domain] sections name by policy =
 * NAME, read like a [domain] of that name. */
static void policy_section(struct parser *p, const char *name)
{
	if (!config_policy_name_ok(name)) {
		diag_error(p->d, p->file, p->r.lineno,
		           "invalid [policy %s]: a name of 1 to %d letters, digits, '.', '_' or "
		           "'-'",
		           name, POLICY_NAME_MAX);
		return;
	}
	struct config_domain *v = grow_pow2(p->policies, p->n_policies, sizeof(*v));
	bool *used = v != NULL ? grow_pow2(p->policy_used, p->n_policies, sizeof(*used)) : NULL;
	char *copy = used != NULL ? strdup(name) : NULL;
	if (v != NULL)
		p->policies = v;
	if (used != NULL)
		p->policy_used = used;
	if (copy == NULL) {
		oom(p);
		return;
	}
	struct config_domain *pol = &p->policies[p->n_policies];
	memset(pol, 0, sizeof(*pol));
	pol->host = copy;
	pol->name = copy;
	pol->file = p->file;
	pol->line = p->r.lineno;

	void *first = NULL;
	int r =
	    hash_put(&p->policy_names, pol->name, (void *)(uintptr_t)(p->n_policies + 1), &first);
	if (r != 0) {
		if (r < 0)
			oom(p);
		else
			duplicate(p, "policy", name, &p->policies[(uintptr_t)first - 1]);
		free(copy);
		return;
	}
	p->policy_used[p->n_policies++] = false;
	section_start(p, pol, SECTION_POLICY);
}

/* s: a trimmed line starting with '['. */
static void section_header(struct parser *p, char *s)
{
	char *end = strchr(s, ']');

	section_end(p);
	p->r.section = SECTION_IGNORE;
	if (end == NULL) {
		diag_error(p->d, p->file, p->r.lineno, "syntax error: unterminated [section]");
		return;
	}
	/* line_clean() dropped a comment after whitespace, not one right after ']'. */
	if (end[1] != '\0' && end[1] != ';') {
		diag_error(p->d, p->file, p->r.lineno, "syntax error: text after [section]");
		return;
	}
	*end = '\0';
	s++;
	while (isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';

	if (strcmp(s, "server") == 0 && p->depth > 1) {
		diag_error(p->d, p->file, p->r.lineno,
		           "[server] belongs in the main configuration file, %s", p->c->file);
	} else if (strcmp(s, "server") == 0) {
		if (p->server_line != 0)
			diag_error(p->d, p->file, p->r.lineno,
			           "duplicate section [server] (first at line %u)", p->server_line);
		else
			p->server_line = p->r.lineno;
		p->r.section = SECTION_SERVER;
	} else if (strcmp(s, "domain") == 0) {
		diag_error(p->d, p->file, p->r.lineno,
		           "bad section [domain]: expected [domain NAME]");
	} else if (strncmp(s, "domain", 6) == 0 && isspace((unsigned char)s[6])) {
		char *name = s + 6;
		while (isspace((unsigned char)*name))
			name++;
		domain_section(p, name);
	} else if (strcmp(s, "policy") == 0) {
		diag_error(p->d, p->file, p->r.lineno,
		           "bad section [policy]: expected [policy NAME]");
	} else if (strncmp(s, "policy", 6) == 0 && isspace((unsigned char)s[6])) {
		char *name = s + 6;
		while (isspace((unsigned char)*name))
			name++;
		policy_section(p, name);
	} else {
		diag_error(p->d, p->file, p->r.lineno, "unknown section [%s]", s);
	}
}

static void syntax_check(struct parser *p)
{
	if (p->r.kv_line == 0)
		return;
	diag_error(p->d, p->file, p->r.kv_line, "syntax error: expected key = value");
	p->r.syntax_reported = true;
	p->r.kv_line = 0;
}

/* Drops a comment and surrounding whitespace; returns the first kept character. */
static char *line_clean(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s;
	if (*s == ';' || *s == '#')
		*s = '\0';
	for (; *end != '\0'; end++) {
		if (*end == ';' && end > s && isspace((unsigned char)end[-1])) {
			*end = '\0';
			break;
		}
	}
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* One physical line into p->line, at most LINE_CAP bytes of it kept (the rest is read and
 * dropped: *ret_long), within the CONFIG_BYTES_MAX of all files. Its length, or -1 at the
 * end of the file (or of the budget, reported). */
static ssize_t get_line(struct parser *p, bool *ret_long)
{
	size_t n = 0, total = 0;
	int ch = EOF;

	*ret_long = false;
	if (p->line == NULL && (p->line = malloc(LINE_CAP + 1)) == NULL) {
		oom(p);
		return -1;
	}
	while (p->bytes < CONFIG_BYTES_MAX && (ch = getc_unlocked(p->r.fp)) != EOF) {
		p->bytes++;
		total++;
		if (n < LINE_CAP)
			p->line[n++] = (char)ch;
		else
			*ret_long = true;
		if (ch == '\n')
			break;
	}
	if (ch != EOF && ch != '\n' && p->bytes >= CONFIG_BYTES_MAX) {
		if (!p->too_big)
			diag_error(p->d, p->file, p->r.lineno + 1,
			           "the configuration files are larger than %d MiB in all: the "
			           "rest is not read",
			           CONFIG_BYTES_MAX >> 20);
		p->too_big = true;
		return -1;
	}
	p->line[n] = '\0';
	return total == 0 ? -1 : (ssize_t)n;
}

/* The ini_reader: one physical line per call, so inih's line numbers stay ours. */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	bool too_long;

	syntax_check(p);
	errno = 0;
	ssize_t n = get_line(p, &too_long);
	if (n < 0) {
		if (ferror(p->r.fp))
			diag_error(p->d, p->file, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	p->r.lineno++;
	str[0] = '\n';
	str[1] = '\0';

	char *s = p->line;
	if (too_long) {
		diag_error(p->d, p->file, p->r.lineno, "line too long (at most %d characters)",
		           num - 2);
		return str;
	}
	if (memchr(s, '\0', (size_t)n) != NULL) {
		diag_error(p->d, p->file, p->r.lineno, "NUL byte in line");
		return str;
	}
	if (p->r.lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	s = line_clean(s);
	if (*s == '\0')
		return str;
	if (*s == '[') {
		section_header(p, s);
		return str;
	}
	size_t len = strlen(s);
	if (len + 2 > (size_t)num) {
		diag_error(p->d, p->file, p->r.lineno, "line too long (at most %d characters)",
		           num - 2);
		return str;
	}
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	p->r.kv_line = p->r.lineno;
	return str;
}

static void include(struct parser *p, const char *pattern);
static int on_key(void *user, const char *section, const char *name, const char *value);

/* Reads one file, the main one or an included one, from its first line to its last
 * section's end. include_line: the line of the include that names it, 0 for the main
 * file. */
static bool read_file(struct parser *p, const char *path, unsigned include_line)
{
	struct config *c = p->c;
	struct reading saved = p->r;
	char **files = grow_pow2(c->files, c->n_files, sizeof(*files));
	char *copy = files != NULL ? strdup(path) : NULL;
	const char *from = saved.file != NULL ? saved.file : path;
	struct stat st;
	int fd;

	if (files != NULL)
		c->files = files;
	if (copy == NULL) {
		diag_error(p->d, from, include_line, "out of memory");
		return false;
	}
	c->files[c->n_files++] = copy;

	/* O_NONBLOCK: a FIFO in place of the file must not block the reader; it is then
	 * refused, as everything but a regular file is. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		diag_error(p->d, from, include_line, "%s%scannot open: %s",
		           include_line != 0 ? path : "", include_line != 0 ? ": " : "",
		           strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		diag_error(p->d, from, include_line, "%s%snot a regular file",
		           include_line != 0 ? path : "", include_line != 0 ? ": " : "");
		close(fd);
		return false;
	}
	for (unsigned i = 0; i < p->depth; i++)
		if (p->open_files[i].st_dev == st.st_dev && p->open_files[i].st_ino == st.st_ino) {
			diag_error(p->d, from, include_line,
			           "include of a file being read (a cycle): %s", path);
			close(fd);
			return false;
		}
	p->open_files[p->depth] = st;
	p->r = (struct reading){.file = copy, .fp = fdopen(fd, "r"), .section = SECTION_NONE};
	p->file = copy;
	if (p->r.fp == NULL) {
		diag_error(p->d, copy, 0, "cannot read: %s", strerror(errno));
		close(fd);
	} else {
		p->depth++;
		int r = ini_parse_stream(read_line, p, on_key, p);
		p->depth--;
		syntax_check(p);
		section_end(p);
		if (r == -2)
			diag_error(p->d, copy, 0, "out of memory");
		else if (r > 0 && !p->r.syntax_reported) /* inih rejected what we passed */
			diag_error(p->d, copy, (unsigned)r, "syntax error");
		fclose(p->r.fp);
	}
	p->r = saved;
	p->file = saved.file != NULL ? saved.file : copy;
	return true;
}

/* include = GLOB, relative to the file that has the line: every match, sorted. A pattern
 * without wildcards names one file that must exist; one with wildcards may match none
 * (a conf.d/ that automation has not filled yet). */
static void include(struct parser *p, const char *pattern)
{
	unsigned line = p->r.lineno;
	char *path = config_parse_path(p->file, pattern);
	glob_t g;
	int r;

	if (path == NULL) {
		oom(p);
		return;
	}
	if (*pattern == '\0') {
		diag_error(p->d, p->file, line, "missing value for \"include\"");
		free(path);
		return;
	}
	if (p->depth > CONFIG_INCLUDE_DEPTH) {
		diag_error(p->d, p->file, line, "include nested deeper than %d files",
		           CONFIG_INCLUDE_DEPTH);
		free(path);
		return;
	}
	r = glob(path, 0, NULL, &g);
	if (r == GLOB_NOMATCH && strpbrk(pattern, "*?[") == NULL)
		diag_error(p->d, p->file, line, "include %s: cannot open: %s", pattern,
		           strerror(ENOENT));
	else if (r == GLOB_NOSPACE)
		oom(p);
	else if (r == GLOB_ABORTED)
		diag_error(p->d, p->file, line, "include %s: cannot read a directory", pattern);
	for (size_t i = 0; r == 0 && i < g.gl_pathc; i++)
		read_file(p, g.gl_pathv[i], line);
	/* The including section goes on after the included files. */
	if (r == 0)
		globfree(&g);
	free(path);
}

/* The ini_handler. section is inih's, cut to 49 bytes: ours is in p. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;

	(void)section;
	if (value == NULL) /* a name without '=' in a build with INI_ALLOW_NO_VALUE */
		return 1;
	p->r.kv_line = 0;
	if (strcmp(name, "include") == 0 &&
	    (p->r.section == SECTION_NONE || p->r.section == SECTION_SERVER)) {
		include(p, value);
		return 1;
	}
	if (*name == '\0') {
		diag_error(p->d, p->file, p->r.lineno, "syntax error: missing key before '='");
		p->r.syntax_reported = true;
		return 1;
	}
	if (*value == '\0' && p->r.section != SECTION_IGNORE && p->r.section != SECTION_NONE) {
		diag_error(p->d, p->file, p->r.lineno, "missing value for \"%s\"", name);
		return 1;
	}
	switch (p->r.section) {
	case SECTION_NONE:
		diag_error(p->d, p->file, p->r.lineno, "key \"%s\" outside of any section", name);
		break;
	case SECTION_SERVER:
		config_server_key(p, name, value);
		break;
	case SECTION_DOMAIN:
	case SECTION_POLICY:
		config_domain_key(p, name, value);
		break;
	case SECTION_IGNORE: /* the header was reported */
		break;
	}
	return 1;
}

/* Every policy = NAME gets the [policy NAME]'s mode, mx and max_age, and its tlsrpt when
 * the [domain] has none: the served bytes are those of the same keys written inline. */
static void policies_resolve(struct parser *p)
{
	struct config *c = p->c;

	for (size_t i = 0; i < c->n_domains; i++) {
		struct config_domain *dom = &c->domains[i];
		if (dom->policy_name == NULL)
			continue;
		void *v = hash_get(&p->policy_names, dom->policy_name, strlen(dom->policy_name));
		if (v == NULL) {
			diag_error(p->d, dom->file, dom->policy_line,
			           "unknown policy \"%s\" (no [policy %s] section)",
			           dom->policy_name, dom->policy_name);
			continue;
		}
		size_t k = (uintptr_t)v - 1;
		const struct config_domain *pol = &p->policies[k];
		p->policy_used[k] = true;
		dom->policy.mode = pol->policy.mode;
		dom->policy.max_age = pol->policy.max_age;
		dom->mode_line = dom->policy_line;
		for (size_t j = 0; j < pol->policy.n_mx; j++)
			if (policy_add_mx(&dom->policy, pol->policy.mx[j]) < 0)
				oom(p);
		if (dom->n_tlsrpt != 0 || pol->n_tlsrpt == 0)
			continue;
		dom->tlsrpt = calloc(pol->n_tlsrpt, sizeof(*dom->tlsrpt));
		for (size_t j = 0; dom->tlsrpt != NULL && j < pol->n_tlsrpt; j++)
			if ((dom->tlsrpt[dom->n_tlsrpt++] = strdup(pol->tlsrpt[j])) == NULL)
				oom(p);
		if (dom->tlsrpt == NULL)
			oom(p);
		dom->tlsrpt_line = dom->policy_line;
	}
	for (size_t k = 0; k < p->n_policies; k++)
		if (!p->policy_used[k])
			diag_warn(p->d, p->policies[k].file, p->policies[k].line,
			          "[policy %s] is named by no [domain]", p->policies[k].name);
}

/* "tlsrpt = self" (in a [domain], or in the [policy] it names) becomes the domain's own
 * report address, https://mta-sts.<domain>/tlsrpt, covered by its certificate; the reports
 * posted there are stored in tlsrpt_store, which then needs a place. */
static void tlsrpt_self_resolve(struct parser *p)
{
	struct config *c = p->c;
	unsigned reported = 0;

	for (size_t i = 0; i < c->n_domains; i++) {
		struct config_domain *dom = &c->domains[i];

		for (size_t j = 0; j < dom->n_tlsrpt; j++) {
			char *uri;

			if (strcmp(dom->tlsrpt[j], "self") != 0)
				continue;
			if (asprintf(&uri, "https://%s" CONFIG_TLSRPT_PATH, dom->host) < 0) {
				oom(p);
				return;
			}
			free(dom->tlsrpt[j]);
			dom->tlsrpt[j] = uri;
			dom->tlsrpt_self = true;
		}
		if (dom->tlsrpt_self && c->state_dir == NULL &&
		    (c->tlsrpt_store == NULL || strcmp(c->tlsrpt_store, "sqlite") == 0) &&
		    reported++ < NO_CERT_REPORTED)
			diag_error(
			    p->d, dom->file, dom->tlsrpt_line,
			    "tlsrpt = self keeps the reports in state_dir: set state_dir, or "
			    "tlsrpt_store = postgresql://...");
	}
}

static void policies_free(struct parser *p)
{
	for (size_t k = 0; k < p->n_policies; k++) {
		struct config_domain *pol = &p->policies[k];
		free(pol->host); /* pol->name too */
		policy_finish(&pol->policy);
		for (size_t j = 0; j < pol->n_tlsrpt; j++)
			free(pol->tlsrpt[j]);
		free(pol->tlsrpt);
	}
	free(p->policies);
	free(p->policy_used);
	hash_finish(&p->policy_names);
}

/* Checks that need the whole file. */
static void config_check(struct parser *p)
{
	struct config *c = p->c;

	policies_resolve(p);
	tlsrpt_self_resolve(p);
	if (c->n_domains == 0)
		diag_error(p->d, p->file, 0, "no [domain ...] section");
	config_server_check(p);

	/* A bad certs line was reported already; a provider that forgot the line altogether
	 * gets a few errors, not one per customer. */
	size_t no_cert = 0;
	for (size_t i = 0;
	     i < c->n_domains && config_server_seen(p, "certs") == 0 && c->acme == NULL; i++) {
		const struct config_domain *dom = &c->domains[i];
		if (dom->cert != NULL || dom->key != NULL || no_cert++ >= NO_CERT_REPORTED)
			continue;
		diag_error(p->d, dom->file, dom->line,
		           "[domain %s] has no cert and key, and [server] sets no certs directory",
		           dom->name);
	}
	if (no_cert > NO_CERT_REPORTED)
		diag_error(p->d, p->file, 0, "%zu more domains have no cert and key",
		           no_cert - NO_CERT_REPORTED);
	if (c->n_domains != 0 && c->n_domains < p->domains_cap) {
		struct config_domain *v = reallocarray(c->domains, c->n_domains, sizeof(*v));
		if (v != NULL)
			c->domains = v;
	}
}

struct config *config_load(const char *path, struct diag *d)
{
	size_t errors = d->n_errors;
	struct parser p = {.d = d, .file = path};
	struct config *c = malloc(sizeof(*c));

	if (c == NULL) {
		diag_error(d, path, 0, "out of memory");
		return NULL;
	}
	*c = (struct config){
	    .idle_timeout = 10,
	    .max_connections = 4096,
	    .max_connections_per_ip = 256,
	    .request_timeout = 10,
	    .tlsrpt_quota = 10000,
	    .tlsrpt_retention_days = 90,
	    .tlsrpt_rate_limit = 600,
	    .access_log = true,
	    .sts_ttl = 3600,
	    .tlsrpt_ttl = 86400,
	    .upstream_refresh = 3600,
	    .upstream_dns_poll = 60,
	    .upstream_timeout = 10,
	    .upstream_connect_timeout = 5,
	    .upstream_retry = 60,
	    .upstream_port = 443,
	    .cert_watch = 60,
	    .cert_cache = CONFIG_CERT_CACHE_AUTO,
	    .on_change_timeout = 30,
	    .acme_concurrency = 4,
	    .acme_order_burst = 300,
	    .acme_order_interval = 36,
	    .acme_retry_min = 60,
	    .acme_retry_max = 86400,
	    .acme_timeout = 30,
	    .acme_order_timeout = 300,
	};
	p.c = c;
	c->file = strdup(path);
	if (c->file == NULL || hash_init(&p.names, 1024) < 0 ||
	    hash_init(&p.policy_names, 16) < 0) {
		hash_finish(&p.names);
		diag_error(d, path, 0, "out of memory");
		config_destroy(c);
		return NULL;
	}

	if (read_file(&p, path, 0))
		config_check(&p);
	policies_free(&p);
	free(p.line);
	hash_finish(&p.names);
	hash_finish(&p.mx_seen);
	if (d->n_errors != errors) {
		config_destroy(c);
		return NULL;
	}
	return c;
}

void config_destroy(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_listen; i++)
		free(c->listen[i].text);
	free(c->listen);
	for (size_t i = 0; i < c->n_domains; i++) {
		struct config_domain *dom = &c->domains[i];
		free(dom->host); /* dom->name points into it */
		policy_finish(&dom->policy);
		free(dom->id);
		free(dom->proxy);
		free(dom->policy_name);
		free(dom->cert);
		free(dom->key);
		for (size_t j = 0; j < dom->n_tlsrpt; j++)
			free(dom->tlsrpt[j]);
		free(dom->tlsrpt);
	}
	free(c->domains);
	free(c->certs_dir);
	free(c->user);
	free(c->state_dir);
	free(c->upstream_ca);
	free(c->dns_server);
	free(c->on_change);
	free(c->admin_listen);
	free(c->acme);
	free(c->acme_email);
	free(c->acme_ca);
	free(c->acme_eab_kid);
	free(c->acme_eab_hmac);
	free(c->acme_challenge);
	free(c->acme_http_listen);
	free(c->tlsrpt_store);
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->file);
	free(c);
}
