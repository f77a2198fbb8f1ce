/* txtrec: strict syntax of the _mta-sts (RFC 8461 §3.1) and _smtp._tls (RFC 8460 §3) records */
#ifndef MTASTSD_TXTREC_H
#define MTASTSD_TXTREC_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/* True when rec starts like a record of that kind ("v=STSv1" / "v=TLSRPTv1" followed by
 * ';', whitespace or its end): the records a sender keeps, the others are discarded. */
bool txtrec_is_sts(const char *rec);
bool txtrec_is_tlsrpt(const char *rec);

/* Checks an _mta-sts record against the RFC 8461 §3.1 ABNF: "v=STSv1", then fields
 * separated by ';' (optional whitespace around it, one trailing ';' allowed), exactly one
 * "id=" of 1 to 32 letters and digits, extensions as name=value. 0 with the id in ret_id,
 * or -1 with the first problem in err (ret_id untouched). */
int txtrec_sts(const char *rec, char ret_id[POLICY_ID_MAX + 1], char *err, size_t err_size);

/* Checks an _smtp._tls record against RFC 8460 §3: "v=TLSRPTv1", fields as above, exactly
 * one "rua=" with one or more mailto: or https: URIs separated by ',' (no whitespace,
 * ';' or ',' inside a URI). 0, or -1 with the first problem in err. */
int txtrec_tlsrpt(const char *rec, char *err, size_t err_size);

#endif
