/* config_server: the [server] section: its keys, their values, and the checks across them */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_parse.h"
#include "config_parser.h"

#define DEFAULT_PATH "/bin:/usr/bin" /* what posix_spawnp() searches when PATH is unset */
#define COMMAND_PATH_MAX 4096

enum key_type {
	KEY_LISTEN,  /* repeatable numeric address with port */
	KEY_PATH,    /* resolved against the config file's directory */
	KEY_COMMAND, /* resolved only when relative and containing a '/'; must be executable */
	KEY_STRING,
	KEY_ADDRESS, /* numeric address, port optional */
	KEY_UINT,
	KEY_BOOL,
	KEY_SOCKADDR, /* one numeric address with port, also parsed into addr_field */
};

struct server_key {
	const char *name;
	enum key_type type;
	size_t field;      /* offset of the value in struct config */
	size_t line_field; /* offset of its line, or NO_LINE */
	unsigned min, max; /* KEY_UINT only */
	size_t addr_field; /* KEY_SOCKADDR only: the struct config_sockaddr */
};

#define NO_LINE SIZE_MAX
#define CF(f) offsetof(struct config, f)

static const struct server_key server_keys[] = {
    {"listen", KEY_LISTEN, 0, NO_LINE, 0, 0, 0},
    {"certs", KEY_PATH, CF(certs_dir), CF(certs_dir_line), 0, 0, 0},
    {"user", KEY_STRING, CF(user), CF(user_line), 0, 0, 0},
    {"threads", KEY_UINT, CF(threads), NO_LINE, 0, 256, 0},
    {"idle_timeout", KEY_UINT, CF(idle_timeout), NO_LINE, 1, 3600, 0},
    {"max_connections", KEY_UINT, CF(max_connections), NO_LINE, 1, 1000000, 0},
    {"max_connections_per_ip", KEY_UINT, CF(max_connections_per_ip), NO_LINE, 0, 1000000, 0},
    {"request_timeout", KEY_UINT, CF(request_timeout), NO_LINE, 1, 3600, 0},
    {"access_log", KEY_BOOL, CF(access_log), NO_LINE, 0, 0, 0},
    {"sts_ttl", KEY_UINT, CF(sts_ttl), NO_LINE, 60, 604800, 0},
    {"tlsrpt_ttl", KEY_UINT, CF(tlsrpt_ttl), NO_LINE, 60, 604800, 0},
    {"tlsrpt_store", KEY_STRING, CF(tlsrpt_store), CF(tlsrpt_store_line), 0, 0, 0},
    {"tlsrpt_quota", KEY_UINT, CF(tlsrpt_quota), NO_LINE, 0, 1000000000, 0},
    {"tlsrpt_retention_days", KEY_UINT, CF(tlsrpt_retention_days), NO_LINE, 1, 3650, 0},
    {"tlsrpt_rate_limit", KEY_UINT, CF(tlsrpt_rate_limit), NO_LINE, 0, 1000000, 0},
    {"state_dir", KEY_PATH, CF(state_dir), CF(state_dir_line), 0, 0, 0},
    {"upstream_ca", KEY_PATH, CF(upstream_ca), CF(upstream_ca_line), 0, 0, 0},
    {"upstream_refresh", KEY_UINT, CF(upstream_refresh), NO_LINE, 1, 604800, 0},
    {"upstream_dns_poll", KEY_UINT, CF(upstream_dns_poll), NO_LINE, 1, 86400, 0},
    {"upstream_timeout", KEY_UINT, CF(upstream_timeout), NO_LINE, 1, 60, 0},
    {"upstream_connect_timeout", KEY_UINT, CF(upstream_connect_timeout), NO_LINE, 1, 60, 0},
    {"upstream_retry", KEY_UINT, CF(upstream_retry), NO_LINE, 1, 86400, 0},
    {"dns_server", KEY_ADDRESS, CF(dns_server), CF(dns_server_line), 0, 0, 0},
    {"on_change", KEY_COMMAND, CF(on_change), CF(on_change_line), 0, 0, 0},
    {"on_change_timeout", KEY_UINT, CF(on_change_timeout), NO_LINE, 1, 3600, 0},
    {"upstream_port", KEY_UINT, CF(upstream_port), NO_LINE, 1, 65535, 0},
    {"admin_listen", KEY_SOCKADDR, CF(admin_listen), CF(admin_listen_line), 0, 0, CF(admin_addr)},
    {"cert_watch", KEY_UINT, CF(cert_watch), NO_LINE, 0, 86400, 0},
    {"cert_cache", KEY_UINT, CF(cert_cache), NO_LINE, 0, 10000000, 0},
    {"acme", KEY_STRING, CF(acme), CF(acme_line), 0, 0, 0},
    {"acme_email", KEY_STRING, CF(acme_email), CF(acme_email_line), 0, 0, 0},
    {"acme_ca", KEY_PATH, CF(acme_ca), CF(acme_ca_line), 0, 0, 0},
    {"acme_eab_kid", KEY_STRING, CF(acme_eab_kid), CF(acme_eab_kid_line), 0, 0, 0},
    {"acme_eab_hmac", KEY_STRING, CF(acme_eab_hmac), CF(acme_eab_hmac_line), 0, 0, 0},
    {"acme_challenge", KEY_STRING, CF(acme_challenge), CF(acme_challenge_line), 0, 0, 0},
    {"acme_http_listen", KEY_SOCKADDR, CF(acme_http_listen), CF(acme_http_listen_line), 0, 0,
     CF(acme_http_addr)},
    {"acme_renew_before", KEY_UINT, CF(acme_renew_before), NO_LINE, 0, 315360000, 0},
    {"acme_concurrency", KEY_UINT, CF(acme_concurrency), NO_LINE, 1, 64, 0},
    {"acme_order_burst", KEY_UINT, CF(acme_order_burst), NO_LINE, 1, 1000000, 0},
    {"acme_order_interval", KEY_UINT, CF(acme_order_interval), NO_LINE, 0, 86400, 0},
    {"acme_retry_min", KEY_UINT, CF(acme_retry_min), NO_LINE, 1, 86400, 0},
    {"acme_retry_max", KEY_UINT, CF(acme_retry_max), NO_LINE, 1, 604800, 0},
    {"acme_timeout", KEY_UINT, CF(acme_timeout), NO_LINE, 1, 600, 0},
    {"acme_order_timeout", KEY_UINT, CF(acme_order_timeout), NO_LINE, 1, 86400, 0},
};

_Static_assert(ARRAY_LEN(server_keys) == CONFIG_SERVER_KEYS, "CONFIG_SERVER_KEYS");

int config_listen_add(struct parser *p, const char *text, unsigned line)
{
	struct config *c = p->c;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	const char *why = config_parse_addr(text, 0, &addr, &addr_len);

	if (why != NULL) {
		diag_error(p->d, p->file, line, "invalid listen \"%s\": %s", text, why);
		return 0;
	}
	for (size_t i = 0; i < c->n_listen; i++) {
		if (c->listen[i].addr_len == addr_len &&
		    memcmp(&c->listen[i].addr, &addr, addr_len) == 0) {
			diag_error(p->d, p->file, line,
			           "duplicate listen \"%s\" (first at line %u)", text,
			           c->listen[i].line);
			return 0;
		}
	}
	if (c->n_listen == CONFIG_LISTEN_MAX) {
		if (!p->listen_full)
			diag_error(p->d, p->file, line, "at most %d listen addresses",
			           CONFIG_LISTEN_MAX);
		p->listen_full = true;
		return 0;
	}
	struct config_listen *v = grow_pow2(c->listen, c->n_listen, sizeof(*v));
	if (v == NULL)
		return -1;
	c->listen = v;
	char *copy = strdup(text);
	if (copy == NULL)
		return -1;
	c->listen[c->n_listen++] =
	    (struct config_listen){.text = copy, .addr = addr, .addr_len = addr_len, .line = line};
	return 0;
}

/* Why path cannot be run as a command (a static string or strerror()'s), or NULL when it is
 * a regular file this process may execute. */
static const char *not_executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return strerror(errno);
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	if (access(path, X_OK) < 0)
		return "not executable";
	return NULL;
}

/* Whether a name without '/' is found executable in PATH, where posix_spawnp() looks for
 * it (an empty entry is the working directory). */
static bool in_path(const char *name)
{
	const char *dirs = getenv("PATH");
	char path[COMMAND_PATH_MAX];

	if (dirs == NULL)
		dirs = DEFAULT_PATH;
	for (;;) {
		const char *end = strchrnul(dirs, ':');
		int len = (int)(end - dirs);
		int n = len != 0 ? snprintf(path, sizeof(path), "%.*s/%s", len, dirs, name)
		                 : snprintf(path, sizeof(path), "%s", name);

		if (n > 0 && (size_t)n < sizeof(path) && not_executable(path) == NULL)
			return true;
		if (*end == '\0')
			return false;
		dirs = end + 1;
	}
}

/* Reports cmd unless it names an executable regular file: a path, or a name in PATH. */
static bool command_check(struct parser *p, const char *name, const char *cmd)
{
	const char *why = strchr(cmd, '/') != NULL ? not_executable(cmd)
	                  : in_path(cmd)           ? NULL
	                                           : "no executable of that name in PATH";

	if (why != NULL)
		diag_error(p->d, p->file, p->r.lineno, "%s: %s: %s", name, cmd, why);
	return why == NULL;
}

/* The index of a [server] key, ARRAY_LEN(server_keys) when there is none. */
static size_t server_key_find(const char *name)
{
	size_t i = 0;
	while (i < ARRAY_LEN(server_keys) && strcmp(server_keys[i].name, name) != 0)
		i++;
	return i;
}

void config_server_key(struct parser *p, const char *name, const char *value)
{
	size_t i = server_key_find(name);
	if (i == ARRAY_LEN(server_keys)) {
		diag_error(p->d, p->file, p->r.lineno, "unknown key \"%s\" in [server]", name);
		return;
	}
	const struct server_key *k = &server_keys[i];
	if (k->type != KEY_LISTEN && p->server_seen[i] != 0) {
		diag_error(p->d, p->file, p->r.lineno, "duplicate key \"%s\" (first at line %u)",
		           name, p->server_seen[i]);
		return;
	}
	if (p->server_seen[i] == 0)
		p->server_seen[i] = p->r.lineno;

	char *base = (char *)p->c;
	char **str = (char **)(base + k->field);
	unsigned *num = (unsigned *)(base + k->field);
	unsigned long v;
	char *copy = NULL;

	switch (k->type) {
	case KEY_LISTEN:
		if (config_listen_add(p, value, p->r.lineno) < 0)
			oom(p);
		return;
	case KEY_PATH:
		copy = config_parse_path(p->file, value);
		break;
	case KEY_COMMAND:
		copy = value[0] != '/' && strchr(value, '/') != NULL
		           ? config_parse_path(p->file, value)
		           : strdup(value);
		if (copy != NULL && !command_check(p, name, copy)) {
			free(copy);
			return;
		}
		break;
	case KEY_STRING:
		copy = strdup(value);
		break;
	case KEY_ADDRESS: {
		struct sockaddr_storage ss;
		socklen_t len;
		const char *why = config_parse_addr(value, 53, &ss, &len);
		if (why != NULL) {
			diag_error(p->d, p->file, p->r.lineno, "invalid %s \"%s\": %s", name, value,
			           why);
			return;
		}
		copy = strdup(value);
		break;
	}
	case KEY_SOCKADDR: {
		struct config_sockaddr *sa = (struct config_sockaddr *)(base + k->addr_field);
		const char *why = config_parse_addr(value, 0, &sa->addr, &sa->len);
		if (why != NULL) {
			diag_error(p->d, p->file, p->r.lineno, "invalid %s \"%s\": %s", name, value,
			           why);
			return;
		}
		copy = strdup(value);
		break;
	}
	case KEY_UINT:
		if (config_parse_uint(value, k->max, &v) < 0 || v < k->min)
			diag_error(p->d, p->file, p->r.lineno,
			           "invalid %s \"%s\" (expected %u to %u, digits only)", name,
			           value, k->min, k->max);
		else
			*num = (unsigned)v;
		return;
	case KEY_BOOL:
		if (config_parse_bool(value, (bool *)(base + k->field)) < 0)
			diag_error(p->d, p->file, p->r.lineno,
			           "invalid %s \"%s\" (expected yes, no, true, false, on or off)",
			           name, value);
		return;
	}
	if (copy == NULL) {
		oom(p);
		return;
	}
	*str = copy;
	*(unsigned *)(base + k->line_field) = p->r.lineno;
}

/* Line of server key name, 0 when it is not set. */
unsigned config_server_seen(const struct parser *p, const char *name)
{
	return p->server_seen[server_key_find(name)];
}

static bool any_addr(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

static in_port_t port_of(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
	                               : ((const struct sockaddr_in6 *)a)->sin6_port;
}

/* Whether binding a and b would collide: the same address, or the same port of one family
 * where either is the wildcard address (IPv6 sockets are bound IPV6_V6ONLY, so [::] and
 * 0.0.0.0 do not collide). */
static bool same_sockaddr(const struct config_sockaddr *a, const struct sockaddr_storage *b,
                          socklen_t len)
{
	if (a->len == len && memcmp(&a->addr, b, len) == 0)
		return true;
	if (port_of(&a->addr) != port_of(b) || (!any_addr(&a->addr) && !any_addr(b)))
		return false;
	return a->addr.ss_family == b->ss_family;
}

/* The ACME keys make sense together: a CA URL the client may use, somewhere to keep the
 * account and certificates, a challenge it can answer. */
static void acme_check(struct parser *p)
{
	struct config *c = p->c;
	static const char *const keys[] = {
	    "acme_email",          "acme_ca",           "acme_eab_kid",
	    "acme_eab_hmac",       "acme_challenge",    "acme_http_listen",
	    "acme_renew_before",   "acme_concurrency",  "acme_order_burst",
	    "acme_order_interval", "acme_retry_min",    "acme_retry_max",
	    "acme_timeout",        "acme_order_timeout"};

	if (c->acme == NULL) {
		for (size_t i = 0; i < ARRAY_LEN(keys); i++)
			if (config_server_seen(p, keys[i]) != 0)
				diag_warn(p->d, p->file, config_server_seen(p, keys[i]),
				          "%s has no effect without acme", keys[i]);
		return;
	}
	if (strncmp(c->acme, "https://", 8) != 0 || c->acme[8] == '\0' ||
	    strpbrk(c->acme, " \t\"<>\\") != NULL)
		diag_error(p->d, p->file, c->acme_line,
		           "invalid acme \"%s\": expected the https:// URL of the CA's directory",
		           c->acme);
	if (c->state_dir == NULL)
		diag_error(p->d, p->file, c->acme_line,
		           "acme needs state_dir (for the account, the keys and the certificates)");
	if (c->acme_email != NULL) {
		const char *at = strchr(c->acme_email, '@');

		if (at == NULL || at == c->acme_email || at[1] == '\0' || strchr(at + 1, '@') ||
		    strpbrk(c->acme_email, " \t,;<>\"()[]\\:") != NULL)
			diag_error(p->d, p->file, c->acme_email_line,
			           "invalid acme_email \"%s\": expected one address, user@domain",
			           c->acme_email);
	}
	if ((c->acme_eab_kid == NULL) != (c->acme_eab_hmac == NULL))
		diag_error(p->d, p->file,
		           c->acme_eab_kid != NULL ? c->acme_eab_kid_line : c->acme_eab_hmac_line,
		           "acme_eab_kid and acme_eab_hmac go together");
	if (c->acme_eab_hmac != NULL) {
		size_t len = strlen(c->acme_eab_hmac);

		if (strspn(c->acme_eab_hmac, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                             "0123456789-_") != len ||
		    len % 4 == 1)
			diag_error(p->d, p->file, c->acme_eab_hmac_line,
			           "invalid acme_eab_hmac: expected the MAC key in base64url (no "
			           "padding), as the CA gives it");
	}
	if (c->acme_challenge != NULL) {
		if (strcmp(c->acme_challenge, "http-01") == 0)
			c->acme_http01 = true;
		else if (strcmp(c->acme_challenge, "tls-alpn-01") != 0)
			diag_error(
			    p->d, p->file, c->acme_challenge_line,
			    "invalid acme_challenge \"%s\" (expected tls-alpn-01 or http-01)",
			    c->acme_challenge);
	}
	if (c->acme_http01 && c->acme_http_listen == NULL)
		diag_error(
		    p->d, p->file, c->acme_challenge_line,
		    "acme_challenge = http-01 needs acme_http_listen (port 80 of this host)");
	if (!c->acme_http01 && c->acme_http_listen != NULL)
		diag_error(p->d, p->file, c->acme_http_listen_line,
		           "acme_http_listen is only for acme_challenge = http-01");
	if (c->acme_http_listen != NULL) {
		for (size_t i = 0; i < c->n_listen; i++)
			if (same_sockaddr(&c->acme_http_addr, &c->listen[i].addr,
			                  c->listen[i].addr_len))
				diag_error(p->d, p->file, c->acme_http_listen_line,
				           "acme_http_listen %s is also a listen address (line %u)",
				           c->acme_http_listen, c->listen[i].line);
		if (c->admin_listen != NULL &&
		    same_sockaddr(&c->acme_http_addr, &c->admin_addr.addr, c->admin_addr.len))
			diag_error(p->d, p->file, c->acme_http_listen_line,
			           "acme_http_listen %s is also admin_listen (line %u)",
			           c->acme_http_listen, c->admin_listen_line);
	}
	if (c->acme_retry_min > c->acme_retry_max)
		diag_error(p->d, p->file, config_server_seen(p, "acme_retry_min"),
		           "acme_retry_min %u exceeds acme_retry_max %u", c->acme_retry_min,
		           c->acme_retry_max);
}

void config_server_check(struct parser *p)
{
	struct config *c = p->c;

	if (c->n_listen == 0 &&
	    (config_listen_add(p, "0.0.0.0:443", 0) < 0 || config_listen_add(p, "[::]:443", 0) < 0))
		oom(p);
	acme_check(p);
	if (c->tlsrpt_store != NULL && strcmp(c->tlsrpt_store, "sqlite") != 0 &&
	    strncmp(c->tlsrpt_store, "postgresql://", 13) != 0 &&
	    strncmp(c->tlsrpt_store, "postgres://", 11) != 0)
		diag_error(p->d, p->file, c->tlsrpt_store_line,
		           "invalid tlsrpt_store \"%s\" (expected sqlite or a postgresql:// URI)",
		           c->tlsrpt_store);
	for (size_t i = 0; c->admin_listen != NULL && i < c->n_listen; i++)
		if (same_sockaddr(&c->admin_addr, &c->listen[i].addr, c->listen[i].addr_len))
			diag_error(p->d, p->file, c->admin_listen_line,
			           "admin_listen %s is also a listen address (line %u)",
			           c->admin_listen, c->listen[i].line);
	if (c->upstream_connect_timeout > c->upstream_timeout) {
		unsigned line = config_server_seen(p, "upstream_connect_timeout");
		if (line == 0)
			line = config_server_seen(p, "upstream_timeout");
		diag_error(p->d, p->file, line,
		           "upstream_connect_timeout %u exceeds upstream_timeout %u",
		           c->upstream_connect_timeout, c->upstream_timeout);
	}
}
