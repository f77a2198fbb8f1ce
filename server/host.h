/* host: the HTTP Host header against a tenant's name */
#ifndef MTASTSD_HOST_H
#define MTASTSD_HOST_H

#include <stdbool.h>
#include <stddef.h>

/* True when host (a Host header value) names expected (a lowercase "mta-sts.<domain>"):
 * equal ignoring case once an optional ":port" of digits only (possibly empty) and one
 * trailing dot are taken off. Never allocates. */
bool host_matches(const char *host, const char *expected);

/* True when host (a Host header value of len bytes) is well-formed enough to be looked at:
 * no NUL, control byte, space or userinfo, not empty, and its port, if any, empty or 1 to
 * 65535 (at most 5 digits). A request whose Host is not gets 400. */
bool host_well_formed(const char *host, size_t len);

#endif
