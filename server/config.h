/* config: the INI configuration file (inih) -> a validated, immutable struct */
#ifndef MTASTSD_CONFIG_H
#define MTASTSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "diag.h"
#include "policy.h"

/* listen lines at most (more is a config error) */
#define CONFIG_LISTEN_MAX 16

/* A numeric socket address, parsed. */
struct config_sockaddr {
	struct sockaddr_storage addr;
	socklen_t len;
};

struct config_listen {
	char *text;                   /* as written, e.g. "[::1]:8443" */
	struct sockaddr_storage addr; /* numeric address, parsed */
	socklen_t addr_len;
	unsigned line;
};

/* cert_cache default: eager up to CONFIG_EAGER_MAX domains with cert/key, else lazy with
 * a cache of CONFIG_CERT_CACHE_DEFAULT. */
#define CONFIG_CERT_CACHE_AUTO 0xffffffffu
#define CONFIG_EAGER_MAX 1000
#define CONFIG_CERT_CACHE_DEFAULT 100000

struct config_domain {
	char *name;       /* lowercase, no trailing dot, e.g. "example.com" */
	char *host;       /* "mta-sts.<name>" */
	const char *file; /* the file holding the [domain ...] section (one of config->files) */
	unsigned line;    /* line of the [domain ...] header */

	/* static policy (proxy == NULL) */
	struct policy policy;
	unsigned mode_line;
	char *id; /* fixed id override (validated) or NULL: derived from bytes */
	unsigned id_line;
	char *policy_name; /* "policy = NAME": mode, mx, max_age (and tlsrpt unless set here)
	                    * copied from [policy NAME]; or NULL */
	unsigned policy_line;

	/* proxied policy (RFC 8461 §8.2): the provider domain, or NULL */
	char *proxy;
	unsigned proxy_line;

	/* certificate: both set, or both NULL to use [server] certs */
	char *cert; /* absolute or relative to the config file's directory, resolved */
	char *key;
	unsigned cert_line;
	unsigned key_line;

	char **tlsrpt; /* rua URIs in order ("tlsrpt = self" written as its https URI) */
	size_t n_tlsrpt;
	unsigned tlsrpt_line;
	/* "tlsrpt = self": reports are received here, POST https://<host>/tlsrpt */
	bool tlsrpt_self;
};

/* The path of "tlsrpt = self" on the domain's policy host. */
#define CONFIG_TLSRPT_PATH "/tlsrpt"

/* include lines nest at most this deep */
#define CONFIG_INCLUDE_DEPTH 8

struct config {
	char *file;   /* path as given */
	char **files; /* every file read: file first, then the included ones in reading order */
	size_t n_files;

	struct config_listen *listen; /* 1 to CONFIG_LISTEN_MAX after config_load */
	size_t n_listen;

	char *certs_dir; /* resolved, or NULL */
	unsigned certs_dir_line;

	char *user; /* drop privileges to this user after binding, or NULL */
	unsigned user_line;

	unsigned threads;                /* 0 = number of CPUs */
	unsigned idle_timeout;           /* seconds, default 10 */
	unsigned max_connections;        /* default 4096 */
	unsigned max_connections_per_ip; /* from one client address, 0 = no limit; default 256 */
	unsigned request_timeout; /* seconds to a complete request head, TLS handshake included,
	                           * not extended by each byte; default 10 */
	bool access_log;          /* default true */
	unsigned sts_ttl;         /* default 3600 */
	unsigned tlsrpt_ttl;      /* default 86400 */
	char *tlsrpt_store;       /* TLS reports: "sqlite" (state_dir) or a postgresql:// URI */
	unsigned tlsrpt_store_line;
	unsigned tlsrpt_quota;          /* reports kept per domain, 0 = no limit; default 10000 */
	unsigned tlsrpt_retention_days; /* reports older than this are deleted; default 90 */
	unsigned tlsrpt_rate_limit;     /* reports posted per minute per client address, 0 = no
	                                 * limit; default 600 */

	/* upstream (provider) fetching */
	char *state_dir; /* resolved, or NULL (no persistence) */
	unsigned state_dir_line;
	char *upstream_ca; /* resolved CA bundle, or NULL for the system store */
	unsigned upstream_ca_line;
	unsigned upstream_refresh;         /* periodic refetch, seconds, default 3600 */
	unsigned upstream_dns_poll;        /* _mta-sts TXT poll, seconds, default 60 */
	unsigned upstream_timeout;         /* total fetch timeout, seconds, default 10 */
	unsigned upstream_connect_timeout; /* seconds, default 5 */
	unsigned upstream_retry; /* minimum seconds between failed fetch retries, default 60 */
	unsigned upstream_port;  /* providers' policy host port, default 443 (tests) */

	char *admin_listen; /* plain-HTTP admin listener "ip:port", or NULL (off) */
	unsigned admin_listen_line;
	struct config_sockaddr admin_addr;
	unsigned cert_watch; /* seconds between certificate file checks, 0 = off;
	                      * default 60 */
	unsigned cert_cache; /* 0: load every certificate at start; N: load on first
	                      * handshake, keep at most N; default AUTO */
	char *dns_server;    /* "ip[:port]" for TXT polls, or NULL for resolv.conf */
	unsigned dns_server_line;
	char *on_change; /* command run as: on_change DOMAIN ID, or NULL; an executable regular
	                  * file when loaded: a resolved path, or a name found in PATH */
	unsigned on_change_line;
	unsigned on_change_timeout; /* seconds before the command is killed, default 30 */

	/* ACME (RFC 8555): certificates for the domains that have none (no cert/key, nothing
	 * in the certs directory), ordered and renewed by the server */
	char *acme; /* the CA's directory URL (https), or NULL: off */
	unsigned acme_line;
	char *acme_email; /* account contact, or NULL */
	unsigned acme_email_line;
	char *acme_ca; /* resolved trust store for the CA's API, or NULL: the system's */
	unsigned acme_ca_line;
	char *acme_eab_kid; /* External Account Binding: both set, or neither */
	unsigned acme_eab_kid_line;
	char *acme_eab_hmac; /* base64url MAC key */
	unsigned acme_eab_hmac_line;
	char *acme_challenge; /* "tls-alpn-01" (default) or "http-01" */
	unsigned acme_challenge_line;
	bool acme_http01;       /* acme_challenge = http-01 */
	char *acme_http_listen; /* plain-HTTP listener for http-01, "ip:port", or NULL */
	unsigned acme_http_listen_line;
	struct config_sockaddr acme_http_addr;
	unsigned acme_renew_before;   /* seconds before expiry; 0: a third of the lifetime */
	unsigned acme_concurrency;    /* orders in progress at once, default 4 */
	unsigned acme_order_burst;    /* new orders at once before the pace applies, default 300 */
	unsigned acme_order_interval; /* seconds per new order beyond the burst, default 36 */
	unsigned acme_retry_min;      /* back-off after a failed order, seconds, default 60 */
	unsigned acme_retry_max;      /* its ceiling, default 86400 */
	unsigned acme_timeout;        /* one request to the CA, seconds, default 30 */
	unsigned acme_order_timeout;  /* one whole order, seconds, default 300 */

	struct config_domain *domains; /* in file order */
	size_t n_domains;
};

/* Parses and validates path and the files it includes ("include = GLOB", sorted). Every
 * problem goes to d as "file:line: message" of the file that holds it; warnings (lint)
 * too. Returns the config (caller config_destroy()s), or NULL when there was any error.
 * Paths in a file are resolved relative to that file's directory. */
struct config *config_load(const char *path, struct diag *d);
void config_destroy(struct config *c);

#endif
