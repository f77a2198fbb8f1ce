/* intake: a TLS report (RFC 8460) that came by mail, from the message to the store */
#ifndef MTASTSD_INTAKE_H
#define MTASTSD_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* a message larger than this is not a report (senders' reports are kilobytes) */
#define INTAKE_MESSAGE_MAX (8u << 20)

enum intake_result {
	INTAKE_STORED,    /* every report part stored */
	INTAKE_DUPLICATE, /* stored before (same organisation and report-id) */
	INTAKE_REFUSED,   /* a domain is at its quota: dropped on purpose */
	INTAKE_INVALID,   /* no valid report part, or a report for a domain not served here */
	INTAKE_TEMPFAIL,  /* the store is unavailable: nothing stored, try again */
};

struct reportstore;

/* Whether domain (lowercase, no trailing dot) is served here. */
typedef bool intake_served_fn(void *arg, const char *domain);

/* Finds the application/tlsrpt+gzip and application/tlsrpt+json parts of the RFC 5322
 * message msg (the message itself when it is one), decodes them (base64,
 * quoted-printable), reads each as a report (tlsrpt_read: caps, strict schema), refuses any
 * that names a domain served() denies, and stores them in store with quota. The worst
 * outcome of the parts; err says why for every outcome but STORED. */
enum intake_result intake_mail(const char *msg, size_t len, intake_served_fn *served, void *arg,
                               struct reportstore *store, unsigned quota, time_t now, char *err,
                               size_t err_size);

#endif
