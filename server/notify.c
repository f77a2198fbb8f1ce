/* notify: readiness and status for the service manager (sd_notify(3)'s protocol) */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

/* A status is one line of a few hundred bytes; the protocol allows much more. */
#define NOTIFY_MAX 4096

struct notify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
};

/* NOTIFY_SOCKET as an address: "/path" or "@abstract". -1 on anything else. */
static int notify_address(const char *env, struct sockaddr_un *ret, socklen_t *ret_len)
{
	size_t len = strlen(env);
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	if ((env[0] != '/' && env[0] != '@') || len < 2 || len > sizeof(a.sun_path))
		return -1;
	/* A path needs its NUL in sun_path; an abstract name has none. */
	if (env[0] == '/' && len == sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, env, len);
	if (env[0] == '@')
		a.sun_path[0] = '\0';
	*ret = a;
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (env[0] == '/'));
	return 0;
}

struct notify *notify_create(void)
{
	const char *env = getenv("NOTIFY_SOCKET");
	struct notify *n;

	if (env == NULL || *env == '\0')
		return NULL;
	if ((n = calloc(1, sizeof(*n))) == NULL) {
		log_err(
		    "NOTIFY_SOCKET: out of memory: the service manager is not told we are ready");
		goto fail;
	}
	n->fd = -1;
	if (notify_address(env, &n->addr, &n->addr_len) < 0) {
		log_err("NOTIFY_SOCKET=%s: not a socket path or @name: the service manager is not "
		        "told we are ready",
		        env);
		goto fail;
	}
	if ((n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(n->fd, (const struct sockaddr *)&n->addr, n->addr_len) < 0) {
		log_err("NOTIFY_SOCKET=%s: %s: the service manager is not told we are ready", env,
		        strerror(errno));
		goto fail;
	}
	unsetenv("NOTIFY_SOCKET");
	return n;
fail:
	unsetenv("NOTIFY_SOCKET");
	notify_destroy(n);
	return NULL;
}

void notify_destroy(struct notify *n)
{
	if (n == NULL)
		return;
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

int notify_send(struct notify *n, const char *fmt, ...)
{
	char msg[NOTIFY_MAX];
	va_list ap;
	int len;
	ssize_t sent;

	if (n == NULL)
		return 0;
	va_start(ap, fmt);
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg)) {
		log_err("service manager notification too long (%d bytes), not sent", len);
		return -1;
	}
	sent = send(n->fd, msg, (size_t)len, MSG_NOSIGNAL);
	/* The manager rebinds its socket when it re-executes itself: the connection is then
	 * gone and the address must be named again. */
	if (sent < 0 && (errno == ECONNREFUSED || errno == ENOTCONN))
		sent = sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL,
		              (const struct sockaddr *)&n->addr, n->addr_len);
	if (sent != (ssize_t)len) {
		log_err("cannot notify the service manager: %s",
		        sent < 0 ? strerror(errno) : "short datagram");
		return -1;
	}
	return 0;
}
