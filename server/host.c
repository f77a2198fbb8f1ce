/* host: the HTTP Host header against a tenant's name */
#include <string.h>
#include <strings.h>

#include "host.h"

bool host_matches(const char *host, const char *expected)
{
	size_t len = strlen(host), n = strlen(expected);
	const char *colon = memchr(host, ':', len);

	if (colon != NULL) {
		for (const char *p = colon + 1; *p; p++)
			if (*p < '0' || *p > '9')
				return false;
		len = (size_t)(colon - host);
	}
	if (len > 0 && host[len - 1] == '.')
		len--;
	return len == n && strncasecmp(host, expected, n) == 0;
}

bool host_well_formed(const char *host, size_t len)
{
	const char *colon = memchr(host, ':', len);
	size_t digits;
	unsigned long port = 0;

	if (len == 0 || host[0] == ':')
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)host[i] <= ' ' || host[i] == 0x7f || host[i] == '@')
			return false;
	if (colon == NULL)
		return true;
	digits = len - (size_t)(colon + 1 - host);
	if (digits == 0)
		return true; /* RFC 9110: port = *DIGIT */
	if (digits > 5)
		return false;
	for (const char *p = colon + 1; p < host + len; p++) {
		if (*p < '0' || *p > '9')
			return false;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return port >= 1 && port <= 65535;
}
