/* config_parse: the value parsers of the configuration file (private to config.c) */
#ifndef MTASTSD_CONFIG_PARSE_H
#define MTASTSD_CONFIG_PARSE_H

#include <stdbool.h>
#include <sys/socket.h>

/* Digits only (no sign, space or suffix), at most max, overflow checked. 0 / -1; *ret is
 * untouched on failure. */
int config_parse_uint(const char *s, unsigned long max, unsigned long *ret);

/* yes|no|true|false|on|off. 0 / -1; *ret is untouched on failure. */
int config_parse_bool(const char *s, bool *ret);

/* A numeric "a.b.c.d[:port]", "[v6][:port]" or, when the port may be left out (default_port
 * not 0), a bare v6 address; ports are 1..65535. NULL on success, else a static string
 * saying why not; *ret and *ret_len are untouched on failure. */
const char *config_parse_addr(const char *s, unsigned default_port, struct sockaddr_storage *ret,
                              socklen_t *ret_len);

/* prefix followed by raw as a domain name: lowercase, one trailing dot dropped. Caller
 * frees. NULL when raw is not an RFC 5321 Domain (A-labels, no wildcard) with *ret_oom
 * false, or when out of memory with *ret_oom true. */
char *config_parse_domain(const char *prefix, const char *raw, bool *ret_oom);

/* value joined to the directory of the config file named file, unless value is absolute or
 * file has no directory part. Caller frees; NULL when out of memory. */
char *config_parse_path(const char *file, const char *value);

#endif
