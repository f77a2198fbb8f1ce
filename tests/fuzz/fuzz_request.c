/* fuzz_request: any bytes as a client's side of a connection, parsed by the real
 * libmicrohttpd and answered by mtastsd's handler (without TLS: the tenant is the one the
 * SNI would have named). Whatever comes back is HTTP: never a crash, a hang or a leak. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "http.h"
#include "snapshot.h"
#include "tls.h"

#define INPUT_MAX (64 * 1024)
#define ANSWER_MS 2000

static const char config_text[] = "[server]\n"
                                  "certs = /nonexistent\n"
                                  "request_timeout = 2\n"
                                  "idle_timeout = 2\n"
                                  "[domain a.test]\n"
                                  "mode = enforce\n"
                                  "mx = mail.a.test\n"
                                  "mx = *.mx.a.test\n"
                                  "max_age = 604800\n";

static struct http *server;

static void start(void)
{
	char path[64];
	struct diag d;
	struct config *c;
	struct snapshot *s;
	int fd = memfd_create("fuzz.ini", MFD_CLOEXEC);

	if (fd < 0 || write(fd, config_text, strlen(config_text)) != (ssize_t)strlen(config_text))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	diag_init(&d);
	if (tls_global_init() < 0 || (c = config_load(path, &d)) == NULL ||
	    (s = snapshot_create(c, NULL, NULL, &http_doc_renderer, &d)) == NULL) {
		diag_print(&d, stderr);
		abort();
	}
	diag_finish(&d);
	close(fd);
	snapshot_unref(snapshot_publish(s));
	if ((server = http_start_plain(snapshot_config(s))) == NULL)
		abort();
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char answer[256 * 1024];
	int sv[2];
	size_t sent = 0, got = 0;
	long long deadline = now_ms() + ANSWER_MS;

	if (server == NULL)
		start();
	if (size > INPUT_MAX)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || http_plain_add(server, sv[1]) < 0)
		abort();
	if (size == 0)
		shutdown(sv[0], SHUT_WR);
	for (;;) {
		struct pollfd p = {sv[0], POLLIN | (sent < size ? POLLOUT : 0), 0};
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break; /* a request still incomplete: the server's timeouts end it */
		if ((p.revents & POLLOUT) && sent < size) {
			n = write(sv[0], data + sent, size - sent);
			if (n > 0 && (sent += (size_t)n) == size)
				shutdown(sv[0], SHUT_WR);
			else if (n < 0 && errno != EAGAIN)
				sent = size; /* the server closed: read what it said */
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(sv[0], answer + got, sizeof(answer) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			if (got == sizeof(answer) - 1)
				break;
		}
	}
	close(sv[0]);
	answer[got] = '\0';
	if (got != 0 && strncmp(answer, "HTTP/1.1 ", 9) != 0 &&
	    strncmp(answer, "HTTP/1.0 ", 9) != 0)
		abort(); /* whatever the server says is an HTTP response */
	return 0;
}
