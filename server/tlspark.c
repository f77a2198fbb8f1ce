/* tlspark: TLS handshakes that wait for the network wait outside libmicrohttpd's epoll loop */
#include "tlspark.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"

#define EVENTS 64

struct tlspark {
	pthread_mutex_t lock;
	pthread_t thread;
	int epfd;
	int stopfd;                  /* eventfd: the thread ends */
	bool released;               /* tlspark_release(): nothing is parked any more */
	struct tlspark_conn *parked; /* suspended by us, waiting in epfd */
};

static void unlink_parked(struct tlspark *p, struct tlspark_conn *pc)
{
	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		p->parked = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	pc->prev = pc->next = NULL;
	pc->want = 0;
}

/* Called by MHD's thread of the connection, inside gnutls_handshake(): the connection is
 * suspended (MHD takes it off its ready list and out of its epoll set) and waits in ours.
 * Suspending first, then arming: the resume that our thread may send at once finds it
 * suspended. errno (EAGAIN, for GnuTLS) is kept. */
static void park(struct tlspark_conn *pc, uint32_t want)
{
	struct tlspark *p = pc->park;
	int saved = errno;
	struct epoll_event ev = {.events = want | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = pc};

	pthread_mutex_lock(&p->lock);
	if (!p->released && pc->want == 0) {
		MHD_suspend_connection(pc->connection);
		if (epoll_ctl(p->epfd, pc->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, pc->fd,
		              &ev) == 0) {
			pc->registered = true;
			pc->want = want;
			pc->next = p->parked;
			if (p->parked != NULL)
				p->parked->prev = pc;
			p->parked = pc;
		} else {
			/* Cannot wait: MHD goes on as without tlspark. */
			MHD_resume_connection(pc->connection);
		}
	}
	pthread_mutex_unlock(&p->lock);
	errno = saved;
}

static ssize_t park_pull(gnutls_transport_ptr_t ptr, void *buf, size_t size)
{
	struct tlspark_conn *pc = ptr;
	ssize_t r = recv(pc->fd, buf, size, 0);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && pc->handshaking)
		park(pc, EPOLLIN);
	return r;
}

static ssize_t park_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
	struct tlspark_conn *pc = ptr;
	struct msghdr m = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)iovcnt};
	ssize_t r = sendmsg(pc->fd, &m, MSG_NOSIGNAL);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && pc->handshaking)
		park(pc, EPOLLOUT);
	return r;
}

static void *run(void *arg)
{
	struct tlspark *p = arg;
	struct epoll_event evs[EVENTS];

	for (;;) {
		int n = epoll_wait(p->epfd, evs, EVENTS, -1);

		if (n < 0 && errno != EINTR) {
			log_err("tlspark: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		pthread_mutex_lock(&p->lock);
		for (int i = 0; i < n; i++) {
			struct tlspark_conn *pc = evs[i].data.ptr;

			if (pc == NULL) {
				pthread_mutex_unlock(&p->lock);
				return NULL;
			}
			/* Armed once per park (EPOLLONESHOT), and a parked connection is
			 * only resumed here or by tlspark_release(): pc is alive. */
			if (pc->want != 0) {
				unlink_parked(p, pc);
				MHD_resume_connection(pc->connection);
			}
		}
		pthread_mutex_unlock(&p->lock);
	}
}

struct tlspark *tlspark_create(void)
{
	struct tlspark *p = calloc(1, sizeof(*p));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

	if (p == NULL) {
		log_err("out of memory");
		return NULL;
	}
	p->stopfd = -1;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->epfd < 0 || p->stopfd < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->stopfd, &ev) != 0) {
		log_err("tlspark: %s", strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&p->lock, NULL);
	if (pthread_create(&p->thread, NULL, run, p) != 0) {
		log_err("tlspark: cannot start its thread");
		pthread_mutex_destroy(&p->lock);
		goto fail;
	}
	return p;
fail:
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->stopfd >= 0)
		close(p->stopfd);
	free(p);
	return NULL;
}

void tlspark_release(struct tlspark *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->released = true;
	while (p->parked != NULL) {
		struct tlspark_conn *pc = p->parked;

		unlink_parked(p, pc);
		MHD_resume_connection(pc->connection);
	}
	pthread_mutex_unlock(&p->lock);
}

void tlspark_destroy(struct tlspark *p)
{
	uint64_t one = 1;

	if (p == NULL)
		return;
	tlspark_release(p);
	if (write(p->stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		log_err("tlspark: cannot stop its thread");
	else
		pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->lock);
	close(p->stopfd);
	close(p->epfd);
	free(p);
}

void tlspark_attach(struct tlspark *p, struct tlspark_conn *pc, struct MHD_Connection *c,
                    gnutls_session_t session, int fd)
{
	pc->park = p;
	pc->connection = c;
	pc->fd = fd;
	pc->handshaking = true;
	gnutls_transport_set_ptr(session, pc);
	gnutls_transport_set_pull_function(session, park_pull);
	gnutls_transport_set_vec_push_function(session, park_push);
}

void tlspark_handshake_done(struct tlspark_conn *pc)
{
	pc->handshaking = false;
}

void tlspark_detach(struct tlspark_conn *pc)
{
	struct tlspark *p = pc->park;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	if (pc->want != 0)
		unlink_parked(p, pc); /* not reached: a suspended connection does not close */
	if (pc->registered)
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, pc->fd, NULL);
	pc->registered = false;
	pthread_mutex_unlock(&p->lock);
	pc->park = NULL;
}
