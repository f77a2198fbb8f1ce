/* summary: what the TLS reports of some domains say, as `mtastsd report` prints it */
#ifndef MTASTSD_SUMMARY_H
#define MTASTSD_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "reportstore.h"

/* Appends the summary of domains[0..n) over the window of sum (which holds their rows,
 * as reportstore_summary() gives them): per domain the sums (sessions ok and failed,
 * failures by result type and by receiving MX, the organisations, the reports) and one
 * line per day. json: {"domains": [{"domain", "success", "failure", "by_result", "by_mx",
 * "organizations", "reports", "days": [{"date", "success", "failure"}]}]}; else text.
 * 0 / -1 (out of memory). */
int summary_render(const struct reportstore_summary *sum, const char *const *domains, size_t n,
                   unsigned days, bool json, struct buf *out);

#endif
