/* tlsrptcmd: the commands around TLS reports: tlsrpt-ingest (a report by mail into the
 * store) and report (what the stored reports say) */
#ifndef MTASTSD_TLSRPTCMD_H
#define MTASTSD_TLSRPTCMD_H

#include <stdbool.h>
#include <stddef.h>

/* sysexits(3): what an MTA's pipe transport makes of the exit code */
#define EXIT_DATAERR 65  /* not a valid report for this server: bounce it */
#define EXIT_TEMPFAIL 75 /* storage or configuration unavailable: try again later */

/* Reads one RFC 5322 message on stdin and stores its report(s) for the domains of the
 * configuration at path. 0 stored (or a duplicate, or dropped at a domain's quota: said on
 * stderr), EXIT_DATAERR, or EXIT_TEMPFAIL; one line on stderr says why. */
int tlsrptcmd_ingest(const char *path);

/* Prints the summary of the reports of domains[0..n) (every configured domain when n is
 * 0) over the last days days. 0, 1 (storage unavailable) or 2 (an unknown domain, a
 * configuration error). */
int tlsrptcmd_report(const char *path, char **domains, size_t n, unsigned days, bool json);

#endif
