/* config_domain: the [domain NAME] and [policy NAME] sections: their keys, their values,
 * and the checks that need the whole section */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>

#include "config_parse.h"
#include "config_parser.h"
#include "records.h"

/* clang-format off */
static const struct {
	const char *name;
	bool repeatable;
	bool is_static; /* part of a static policy, so excluded by proxy */
	bool in_policy; /* allowed in a [policy NAME] section too */
} domain_keys[] = {
    [DK_MODE] = {"mode", false, true, true},
    [DK_MX] = {"mx", true, true, true},
    [DK_MAX_AGE] = {"max_age", false, true, true},
    [DK_ID] = {"id", false, true, false},
    [DK_POLICY] = {"policy", false, true, false},
    [DK_PROXY] = {"proxy", false, false, false},
    [DK_CERT] = {"cert", false, false, false},
    [DK_KEY] = {"key", false, false, false},
    [DK_TLSRPT] = {"tlsrpt", true, false, true},
};
/* clang-format on */

/* The keys a [policy NAME] sets for the domains that name it. */
#define IS_POLICY_KEY(k) ((k) == DK_MODE || (k) == DK_MX || (k) == DK_MAX_AGE)

/* A name written in Unicode, which every value here must spell with A-labels: its
 * A-label form in buf ("" when raw is ASCII or cannot be converted). */
const char *config_alabel(const char *raw, char *buf, size_t size)
{
	gnutls_datum_t out = {NULL, 0};
	const unsigned char *s = (const unsigned char *)raw;

	buf[0] = '\0';
	while (*s != '\0' && *s < 0x80)
		s++;
	if (*s == '\0' || gnutls_idna_map(raw, (unsigned)strlen(raw), &out, 0) < 0)
		return buf;
	if (out.size < size) {
		memcpy(buf, out.data, out.size);
		buf[out.size] = '\0';
	}
	gnutls_free(out.data);
	return buf;
}

/* The NAME of a [policy NAME]: 1 to POLICY_NAME_MAX letters, digits, '.', '_' or '-'. */
bool config_policy_name_ok(const char *name)
{
	size_t len = strlen(name);

	return len != 0 && len <= POLICY_NAME_MAX &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
	           len;
}

/* "[domain NAME]" or "[policy NAME]": the section being read. */
static const char *section_kind(const struct parser *p)
{
	return p->r.section == SECTION_POLICY ? "policy" : "domain";
}

/* Adds mx to the section's policy unless it is there already (1) or the served body would
 * grow past POLICY_BODY_MAX (2, the mx left out; config_domain_check reports it). A hash of the
 * section's mx keeps this linear: a file of 80,000 mx lines is refused in no time. 0, or -1
 * when out of memory. */
static int mx_add(struct parser *p, const char *mx)
{
	struct policy *pol = &p->dom->policy;
	size_t line = strlen("mx: \r\n") + strlen(mx);

	if (p->mx_seen.slots == NULL && hash_init(&p->mx_seen, 16) < 0)
		return -1;
	if (hash_get(&p->mx_seen, mx, strlen(mx)) != NULL)
		return 1;
	if (p->body_bytes + line > POLICY_BODY_MAX) {
		p->body_over = true;
		return 2;
	}
	if (policy_add_mx(pol, mx) < 0)
		return -1;
	p->body_bytes += line;
	return hash_put(&p->mx_seen, pol->mx[pol->n_mx - 1], pol, NULL) < 0 ? -1 : 0;
}

void config_domain_key(struct parser *p, const char *name, const char *value)
{
	int r;
	struct config_domain *dom = p->dom;
	unsigned line = p->r.lineno;
	size_t k = 0;
	bool no_memory = false;
	unsigned long v;

	char alabel[DOMAIN_MAX + 1];

	while (k < ARRAY_LEN(domain_keys) && strcmp(domain_keys[k].name, name) != 0)
		k++;
	if (k == ARRAY_LEN(domain_keys)) {
		diag_error(p->d, p->file, line, "unknown key \"%s\" in [%s %s]", name,
		           section_kind(p), dom->name);
		return;
	}
	if (p->r.section == SECTION_POLICY && !domain_keys[k].in_policy) {
		diag_error(p->d, p->file, line,
		           "\"%s\" cannot be used in [policy %s] (it holds mode, mx, max_age and "
		           "tlsrpt; set %s in each [domain])",
		           name, dom->name, name);
		return;
	}
	if (IS_POLICY_KEY(k) && p->domain_seen[DK_POLICY] != 0) {
		diag_error(p->d, p->file, line,
		           "\"%s\" cannot be used with policy (line %u): [policy %s] sets it", name,
		           p->domain_seen[DK_POLICY], dom->policy_name ? dom->policy_name : "");
		return;
	}
	if (k == DK_POLICY) {
		for (size_t j = 0; j < ARRAY_LEN(domain_keys); j++)
			if (IS_POLICY_KEY(j) && p->domain_seen[j] != 0) {
				diag_error(p->d, p->file, line,
				           "policy cannot be used with %s (line %u): the [policy] "
				           "section sets it",
				           domain_keys[j].name, p->domain_seen[j]);
				return;
			}
	}
	if (!domain_keys[k].repeatable && p->domain_seen[k] != 0) {
		diag_error(p->d, p->file, line, "duplicate key \"%s\" (first at line %u)", name,
		           p->domain_seen[k]);
		return;
	}
	if (domain_keys[k].is_static && p->domain_seen[DK_PROXY] != 0) {
		diag_error(p->d, p->file, line, "\"%s\" cannot be used with proxy (line %u)", name,
		           p->domain_seen[DK_PROXY]);
		return;
	}
	if (k == DK_PROXY && p->static_line != 0) {
		diag_error(p->d, p->file, line, "proxy cannot be used with %s (line %u)",
		           p->static_key, p->static_line);
		return;
	}
	if (p->domain_seen[k] == 0)
		p->domain_seen[k] = line;
	if (domain_keys[k].is_static && p->static_line == 0) {
		p->static_line = line;
		p->static_key = domain_keys[k].name;
	}

	switch ((enum domain_key)k) {
	case DK_MODE:
		dom->mode_line = line;
		p->mode_ok = policy_mode_parse(value, &dom->policy.mode) == 0;
		if (!p->mode_ok && strcasecmp(value, "report") == 0)
			diag_error(
			    p->d, p->file, line,
			    "invalid mode \"%s\": report is a draft's name for what RFC 8461 "
			    "calls testing; use mode = testing",
			    value);
		else if (!p->mode_ok)
			diag_error(p->d, p->file, line,
			           "invalid mode \"%s\" (expected enforce, testing or none)",
			           value);
		break;
	case DK_MX:
		if (!policy_mx_valid(value, strlen(value)) &&
		    *config_alabel(value, alabel, sizeof(alabel)) != '\0')
			diag_error(p->d, p->file, line,
			           "invalid mx \"%s\": write it with A-labels, mx = %s", value,
			           alabel);
		else if (!policy_mx_valid(value, strlen(value)))
			diag_error(p->d, p->file, line,
			           "invalid mx \"%s\" (expected a host name or *.domain, A-labels "
			           "only)",
			           value);
		else if ((r = mx_add(p, value)) == 1)
			diag_warn(p->d, p->file, line, "duplicate mx \"%s\" ignored", value);
		else
			no_memory = r < 0;
		break;
	case DK_MAX_AGE:
		if (config_parse_uint(value, POLICY_MAX_AGE_MAX, &v) < 0)
			diag_error(p->d, p->file, line,
			           "invalid max_age \"%s\" (expected 0 to %u seconds, digits only)",
			           value, POLICY_MAX_AGE_MAX);
		else
			dom->policy.max_age = (uint32_t)v;
		break;
	case DK_ID:
		if (!policy_id_valid(value)) {
			diag_error(p->d, p->file, line,
			           "invalid id \"%s\" (expected 1 to %d letters and digits)", value,
			           POLICY_ID_MAX);
			break;
		}
		dom->id_line = line;
		dom->id = strdup(value);
		no_memory = dom->id == NULL;
		diag_warn(p->d, p->file, line,
		          "fixed id \"%s\" must be changed by hand whenever the policy changes; "
		          "without it the id is derived from the served policy",
		          value);
		break;
	case DK_POLICY: {
		dom->policy_line = line;
		if (!config_policy_name_ok(value)) {
			diag_error(p->d, p->file, line,
			           "invalid policy \"%s\" (expected the NAME of a [policy NAME])",
			           value);
			break;
		}
		dom->policy_name = strdup(value);
		no_memory = dom->policy_name == NULL;
		break;
	}
	case DK_PROXY:
		dom->proxy = config_parse_domain("", value, &no_memory);
		dom->proxy_line = line;
		if (dom->proxy == NULL && !no_memory &&
		    *config_alabel(value, alabel, sizeof(alabel)) != '\0')
			diag_error(p->d, p->file, line,
			           "invalid proxy \"%s\": write it with A-labels, proxy = %s",
			           value, alabel);
		else if (dom->proxy == NULL && !no_memory)
			diag_error(p->d, p->file, line,
			           "invalid proxy \"%s\" (expected the provider's domain name)",
			           value);
		else if (dom->proxy != NULL && strcmp(dom->proxy, dom->name) == 0)
			diag_error(p->d, p->file, line, "proxy must name another domain than %s",
			           dom->name);
		break;
	case DK_CERT:
	case DK_KEY:
		*(k == DK_CERT ? &dom->cert : &dom->key) = config_parse_path(p->file, value);
		*(k == DK_CERT ? &dom->cert_line : &dom->key_line) = line;
		no_memory = (k == DK_CERT ? dom->cert : dom->key) == NULL;
		break;
	case DK_TLSRPT: {
		if (strcasecmp(value, "self") == 0) {
			value = "self"; /* resolved into the https URI with the whole file read */
		} else if (!records_rua_valid(value)) {
			diag_error(
			    p->d, p->file, line,
			    "invalid tlsrpt \"%s\" (expected a mailto: or https: URI, or self)",
			    value);
			break;
		}
		char **uris = grow_pow2(dom->tlsrpt, dom->n_tlsrpt, sizeof(*uris));
		char *copy = uris != NULL ? strdup(value) : NULL;
		if (uris != NULL)
			dom->tlsrpt = uris;
		if (copy == NULL) {
			no_memory = true;
			break;
		}
		if (dom->n_tlsrpt == 0)
			dom->tlsrpt_line = line;
		dom->tlsrpt[dom->n_tlsrpt++] = copy;
		break;
	}
	}
	if (no_memory)
		oom(p);
}

/* Checks that need the whole [domain] or [policy] section. */
void config_domain_check(struct parser *p)
{
	struct config_domain *dom = p->dom;
	const char *file = p->file;
	const char *kind = section_kind(p);

	if ((dom->cert == NULL) != (dom->key == NULL))
		diag_error(p->d, file, dom->line, "[domain %s] has %s without %s", dom->name,
		           dom->cert != NULL ? "cert" : "key", dom->cert != NULL ? "key" : "cert");
	if (p->domain_seen[DK_PROXY] != 0 || p->domain_seen[DK_POLICY] != 0)
		return;
	if (p->domain_seen[DK_MODE] == 0)
		diag_error(p->d, file, dom->line, "[%s %s] has no mode", kind, dom->name);
	if (p->domain_seen[DK_MAX_AGE] == 0)
		diag_error(p->d, file, dom->line, "[%s %s] has no max_age", kind, dom->name);
	if (p->mode_ok && dom->policy.mode != POLICY_MODE_NONE && p->domain_seen[DK_MX] == 0)
		diag_error(p->d, file, dom->mode_line, "mode %s needs at least one mx",
		           policy_mode_name(dom->policy.mode));

	if (p->body_over)
		diag_error(p->d, file, dom->line, "[%s %s]: policy over %d bytes", kind, dom->name,
		           POLICY_BODY_MAX);

	if (p->d->n_errors == p->errors_at_domain)
		policy_lint(&dom->policy, p->r.section == SECTION_DOMAIN ? dom->name : NULL, p->d,
		            file, dom->mode_line);
}
