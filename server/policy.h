/* policy: strict RFC 8461 §3.2 policy parsing, linting, canonical rendering and ids */
#ifndef MTASTSD_POLICY_H
#define MTASTSD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

#define POLICY_MAX_AGE_MAX 31557600u
#define POLICY_ID_MAX 32
#define POLICY_BODY_MAX 65536

enum policy_mode {
	POLICY_MODE_ENFORCE,
	POLICY_MODE_TESTING,
	POLICY_MODE_NONE,
};

struct policy {
	enum policy_mode mode;
	uint32_t max_age;
	char **mx; /* owned, lowercase, in order */
	size_t n_mx;
};

void policy_init(struct policy *p);
void policy_finish(struct policy *p);

/* Parses a policy body strictly (RFC 8461 §3.2 ABNF; first duplicate wins; unknown fields
 * ignored). Every error goes to d as "file:line" with the body's line number. On success
 * fills *ret (caller policy_finish()es it) and returns 0; on failure returns -1 and leaves
 * *ret untouched. */
int policy_parse(struct policy *ret, const char *body, size_t len, struct diag *d,
                 const char *file);

/* True when s[0..len) is a valid mx pattern: an RFC 5321 Domain (A-labels only, LDH,
 * 63/253 limits, no trailing dot), optionally prefixed by "*.". */
bool policy_mx_valid(const char *s, size_t len);

/* Appends a lowercased copy of a valid mx pattern; -1 if invalid or out of memory. */
int policy_add_mx(struct policy *p, const char *pattern);

/* "enforce" | "testing" | "none" <-> enum; parse returns -1 on anything else. */
const char *policy_mode_name(enum policy_mode mode);
int policy_mode_parse(const char *s, enum policy_mode *ret_mode);

/* Lint warnings for a valid policy of domain (may be NULL): testing mode, max_age under a
 * day (0 included), enforce with max_age under a week, mode none without mx, wildcard mx
 * directly under a public suffix. Reported at file:line. */
void policy_lint(const struct policy *p, const char *domain, struct diag *d, const char *file,
                 unsigned line);

/* Renders the canonical body: version, mode, every mx, max_age; CRLF line ends; lowercase.
 * Returns a NUL-terminated string the caller frees (length in *ret_len), NULL on ENOMEM. */
char *policy_render(const struct policy *p, size_t *ret_len);

/* The id of a served body: the first 32 hex digits of SHA-256(body). ret_id gets 33 bytes. */
void policy_id(const char *body, size_t len, char ret_id[POLICY_ID_MAX + 1]);

/* True when id matches ^[A-Za-z0-9]{1,32}$. */
bool policy_id_valid(const char *id);

/* RFC 6125 / RFC 8461 §4.1 match of host against a pattern (case-insensitive; "*." matches
 * exactly one left-most label). */
bool policy_mx_match(const char *pattern, const char *host);

#endif
