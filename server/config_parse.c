/* config_parse: the value parsers of the configuration file (numbers, addresses, names) */
#include "config_parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int config_parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned long digit = (unsigned long)(*s - '0');
		if (digit > max || v > (max - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	*ret = v;
	return 0;
}

int config_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"yes", "true", "on"};
	static const char *const no[] = {"no", "false", "off"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
			*ret = strcmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

const char *config_parse_addr(const char *s, unsigned default_port, struct sockaddr_storage *ret,
                              socklen_t *ret_len)
{
	char host[INET6_ADDRSTRLEN];
	const char *h = s, *port = NULL, *colon = strchr(s, ':');
	size_t host_len;
	int family = AF_INET;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return "expected [IPv6]:port";
		h = s + 1;
		host_len = (size_t)(end - h);
		port = end[1] == ':' ? end + 2 : NULL;
		family = AF_INET6;
	} else if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		if (default_port == 0)
			return "an IPv6 address needs brackets: [IPv6]:port";
		host_len = strlen(s);
		family = AF_INET6;
	} else {
		host_len = colon != NULL ? (size_t)(colon - s) : strlen(s);
		port = colon != NULL ? colon + 1 : NULL;
	}
	if (host_len >= sizeof(host))
		return "not a numeric IPv4 or [IPv6] address";
	memcpy(host, h, host_len);
	host[host_len] = '\0';

	unsigned long port_num = default_port;
	if (port == NULL && default_port == 0)
		return "missing port";
	if (port != NULL && (config_parse_uint(port, 65535, &port_num) < 0 || port_num == 0))
		return "port must be 1 to 65535";

	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return "not a numeric IPv4 or [IPv6] address";
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port_num);
		*ret_len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return "not a numeric IPv4 or [IPv6] address";
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port_num);
		*ret_len = sizeof(*sin6);
	}
	*ret = ss;
	return NULL;
}

char *config_parse_domain(const char *prefix, const char *raw, bool *ret_oom)
{
	size_t prefix_len = strlen(prefix), len = strlen(raw);

	*ret_oom = false;
	if (len > 0 && raw[len - 1] == '.')
		len--;
	if (len == 0 || raw[0] == '*' || !policy_mx_valid(raw, len))
		return NULL;
	char *r = malloc(prefix_len + len + 1);
	if (r == NULL) {
		*ret_oom = true;
		return NULL;
	}
	memcpy(r, prefix, prefix_len);
	for (size_t i = 0; i < len; i++)
		r[prefix_len + i] = (char)tolower((unsigned char)raw[i]);
	r[prefix_len + len] = '\0';
	return r;
}

char *config_parse_path(const char *file, const char *value)
{
	const char *slash = strrchr(file, '/');
	if (value[0] == '/' || slash == NULL)
		return strdup(value);
	size_t dir_len = (size_t)(slash - file) + 1, len = strlen(value);
	char *r = malloc(dir_len + len + 1);
	if (r == NULL)
		return NULL;
	memcpy(r, file, dir_len);
	memcpy(r + dir_len, value, len + 1);
	return r;
}
