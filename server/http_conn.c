/* http_conn: a connection's state and its client, for every part of the HTTPS server */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

#include "http_conn.h"

struct conn *http_conn(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info != NULL ? info->socket_context : NULL;
}

const struct sockaddr *http_client_sockaddr(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return info != NULL ? info->client_addr : NULL;
}

/* The client's address as text, "-" when unknown. */
void http_client_address(const struct sockaddr *sa, char *out, size_t size)
{
	snprintf(out, size, "-");
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)size);
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          out, (socklen_t)size);
}
