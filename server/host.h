/* host: the HTTP Host header against a tenant's name */
#ifndef MTASTSD_HOST_H
#define MTASTSD_HOST_H

#include <stdbool.h>

/* True when host (a Host header value) names expected (a lowercase "mta-sts.<domain>"):
 * equal ignoring case once an optional ":port" of digits only (possibly empty) and one
 * trailing dot are taken off. Never allocates. */
bool host_matches(const char *host, const char *expected);

#endif
