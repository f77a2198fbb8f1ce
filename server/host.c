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
