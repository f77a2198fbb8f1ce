/* config_parser: the parser state shared by config.c (files, sections), config_domain.c ([domain]
 * and [policy]) and config_server.c ([server]); private to them */
#ifndef MTASTSD_CONFIG_PARSER_H
#define MTASTSD_CONFIG_PARSER_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config.h"
#include "diag.h"
#include "hash.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HOST_PREFIX "mta-sts."
#define HOST_PREFIX_LEN (sizeof(HOST_PREFIX) - 1)
#define DOMAIN_MAX 253
/* of the NAME of a [policy NAME] */
#define POLICY_NAME_MAX 64
/* bytes of configuration read in all, included files too */
#define CONFIG_BYTES_MAX (1 << 30)

/* the keys of [server] (config_server.c checks its table against it) */
#define CONFIG_SERVER_KEYS 44

enum domain_key {
	DK_MODE,
	DK_MX,
	DK_MAX_AGE,
	DK_ID,
	DK_POLICY,
	DK_PROXY,
	DK_CERT,
	DK_KEY,
	DK_TLSRPT
};
#define DK_COUNT (DK_TLSRPT + 1)

enum section { SECTION_NONE, SECTION_SERVER, SECTION_DOMAIN, SECTION_POLICY, SECTION_IGNORE };

/* The file being read; an include line saves it and reads the included files with their
 * own. */
struct reading {
	const char *file; /* one of config->files */
	FILE *fp;
	unsigned lineno;
	unsigned kv_line; /* key line handed to inih that the handler has not seen */
	bool syntax_reported;
	enum section section;
};

struct parser {
	struct config *c;
	struct diag *d;
	const char *file; /* r.file, or the main file once every file is read */
	struct reading r;
	char *line;     /* the line read: LINE_CAP + 1 bytes */
	size_t bytes;   /* read from every file so far, at most CONFIG_BYTES_MAX */
	bool too_big;   /* CONFIG_BYTES_MAX reported */
	unsigned depth; /* include nesting */
	struct stat open_files[CONFIG_INCLUDE_DEPTH + 1]; /* the files being read */
	bool listen_full;                                 /* "at most CONFIG_LISTEN_MAX" reported */

	unsigned server_line;                     /* first [server] header */
	unsigned server_seen[CONFIG_SERVER_KEYS]; /* line of each key, 0 = unset */

	struct config_domain *dom; /* the [domain] or [policy] being read */
	size_t domains_cap;
	struct config_domain *policies; /* [policy NAME] sections: name in ->name */
	size_t n_policies;
	size_t policies_cap;
	struct hash policy_names; /* name -> index + 1 */
	bool *policy_used;
	size_t errors_at_domain; /* d->n_errors when dom's header was read */
	unsigned domain_seen[DK_COUNT];
	unsigned static_line; /* first mode/mx/max_age/id line in dom */
	const char *static_key;
	bool mode_ok;
	struct hash mx_seen; /* the section's mx (borrowed from its policy) */
	size_t body_bytes;   /* of the section's policy as served */
	bool body_over;      /* an mx left out: the body would pass POLICY_BODY_MAX */
	struct hash names;   /* domain name -> index + 1 */
};

static inline void oom(struct parser *p)
{
	diag_error(p->d, p->file, p->r.lineno, "out of memory");
}

/* Room for element n of an array whose capacity is n rounded up to a power of two: v
 * itself, or v moved, or NULL when out of memory (v is then still valid). */
static inline void *grow_pow2(void *v, size_t n, size_t size)
{
	if (n != 0 && (n & (n - 1)) != 0)
		return v;
	return reallocarray(v, n != 0 ? 2 * n : 1, size);
}

/* A "key = value" line of [server]. */
void config_server_key(struct parser *p, const char *name, const char *value);

/* The line of [server] key name, 0 when it is not set. */
unsigned config_server_seen(const struct parser *p, const char *name);

/* Adds a listen address (text as written, at line). 0, or -1 when out of memory. */
int config_listen_add(struct parser *p, const char *text, unsigned line);

/* The checks of [server] that need the whole file: default listen addresses, the ACME
 * keys together, upstream timeouts. */
void config_server_check(struct parser *p);

/* A name written in Unicode, which every value must spell with A-labels: its A-label form
 * in buf ("" when raw is ASCII or cannot be converted). Returns buf. */
const char *config_alabel(const char *raw, char *buf, size_t size);

/* The NAME of a [policy NAME]: 1 to POLICY_NAME_MAX letters, digits, '.', '_' or '-'. */
bool config_policy_name_ok(const char *name);

/* A "key = value" line of a [domain] or [policy] section (p->dom). */
void config_domain_key(struct parser *p, const char *name, const char *value);

/* The checks that need the whole [domain] or [policy] section, at its end. */
void config_domain_check(struct parser *p);

#endif
