/* tlsrpt: TLS-RPT reports (RFC 8460) as senders post or mail them, hostile until proven
 * valid: gzip with caps before and after decompression, strict JSON against the §4 schema
 * into a C struct, and the tenant check (every policy-domain one this server serves). */
#ifndef MTASTSD_TLSRPT_H
#define MTASTSD_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "policy.h"

/* A report body is refused when larger than this, compressed (gzip) ... */
#define TLSRPT_GZIP_MAX (1u << 20)
/* ... or decompressed (the JSON document) */
#define TLSRPT_JSON_MAX (16u << 20)
/* Room for an error message of tlsrpt_inflate(), tlsrpt_parse(), tlsrpt_check_tenant(). */
#define TLSRPT_ERR_MAX 256

/* Schema bounds: anything beyond is refused as absurd rather than stored. */
#define TLSRPT_DEPTH_MAX 16            /* nesting of arrays and objects */
#define TLSRPT_VALUES_MAX 262144       /* JSON values in one document */
#define TLSRPT_POLICIES_MAX 1000       /* entries of policies */
#define TLSRPT_FAILURES_MAX 10000      /* failure-details, all policies together */
#define TLSRPT_COUNT_MAX 1000000000000 /* any session count */
#define TLSRPT_SPAN_MAX (31 * 86400)   /* end-datetime - start-datetime */
#define TLSRPT_NAME_MAX 1024           /* organization-name, report-id, contact-info */
#define TLSRPT_TEXT_MAX 4096           /* additional-information, receiving-mx-helo */
#define TLSRPT_DOMAIN_MAX 253

/* The body's media type (RFC 8460 §5.3). */
enum tlsrpt_encoding {
	TLSRPT_ENCODING_GZIP, /* application/tlsrpt+gzip */
	TLSRPT_ENCODING_JSON, /* application/tlsrpt+json */
};

enum tlsrpt_policy_type {
	TLSRPT_POLICY_STS,
	TLSRPT_POLICY_TLSA,
	TLSRPT_POLICY_NO_POLICY_FOUND,
};

/* RFC 8460 §4.3 result types; UNKNOWN: another token, kept as sent (result_type). */
enum tlsrpt_result {
	TLSRPT_RESULT_STARTTLS_NOT_SUPPORTED,
	TLSRPT_RESULT_CERTIFICATE_HOST_MISMATCH,
	TLSRPT_RESULT_CERTIFICATE_EXPIRED,
	TLSRPT_RESULT_CERTIFICATE_NOT_TRUSTED,
	TLSRPT_RESULT_VALIDATION_FAILURE,
	TLSRPT_RESULT_TLSA_INVALID,
	TLSRPT_RESULT_DNSSEC_INVALID,
	TLSRPT_RESULT_DANE_REQUIRED,
	TLSRPT_RESULT_STS_POLICY_FETCH_ERROR,
	TLSRPT_RESULT_STS_POLICY_INVALID,
	TLSRPT_RESULT_STS_WEBPKI_INVALID,
	TLSRPT_RESULT_UNKNOWN,
};

/* Strings are owned by the report; optional ones are NULL when absent. */
struct tlsrpt_failure {
	enum tlsrpt_result result;
	char *result_type;           /* as sent (printable ASCII) */
	char *sending_mta_ip;        /* a valid IPv4 or IPv6 address */
	char *receiving_mx_hostname; /* lowercase, no trailing dot, a valid host name */
	char *receiving_mx_helo;     /* as sent, printable ASCII */
	char *receiving_ip;          /* a valid IPv4 or IPv6 address */
	uint64_t failed_session_count;
	char *additional_information; /* as sent */
	char *failure_reason_code;    /* as sent */
};

struct tlsrpt_policy {
	enum tlsrpt_policy_type type;
	char *domain;   /* policy-domain: lowercase, no trailing dot, a valid domain */
	char **strings; /* policy-string, as sent (none for no-policy-found without one) */
	size_t n_strings;
	char **mx_hosts; /* mx-host, as sent */
	size_t n_mx_hosts;
	/* For an sts policy whose policy-string has a "mode: ..." line: "enforce", "testing"
	 * or "none"; else "". */
	char mode[8];
	/* For an sts policy-string that is a valid RFC 8461 policy: the id this server would
	 * give it (policy_id() of its canonical form, so it equals the served id when the
	 * sender applied the policy served here); else "". */
	char id[POLICY_ID_MAX + 1];
	uint64_t successful; /* total-successful-session-count */
	uint64_t failed;     /* total-failure-session-count */
	struct tlsrpt_failure *failures;
	size_t n_failures;
};

struct tlsrpt_report {
	char *organization; /* organization-name, printable */
	char *report_id;    /* printable, non-empty */
	char *contact;      /* contact-info */
	time_t start, end;  /* date-range, start < end, at most TLSRPT_SPAN_MAX apart */
	struct tlsrpt_policy *policies;
	size_t n_policies; /* at least 1 */
	size_t n_unknown;  /* failure details of an unknown result type (flagged, kept) */
};

/* The encoding named by a Content-Type header value (case-insensitive type, parameters
 * after ';' ignored). 0 and *ret_encoding set, or -1 for any other type. */
int tlsrpt_content_type(const char *value, enum tlsrpt_encoding *ret_encoding);

/* Decompresses a gzip body (RFC 1952) of at most TLSRPT_GZIP_MAX bytes into at most max_out
 * bytes (normally TLSRPT_JSON_MAX). Concatenated members are decompressed one after the
 * other, as gunzip does; anything after the last member that is not a gzip member, a
 * truncated member or a bad CRC is refused. Inflation stops as soon as the output passes
 * max_out (a gzip bomb costs max_out bytes, never more). On success *ret gets the
 * NUL-terminated output (caller frees), *ret_len its length, and 0 is returned; on failure
 * -1, err gets why (size at least TLSRPT_ERR_MAX) and *ret is untouched. */
int tlsrpt_inflate(const void *in, size_t in_len, size_t max_out, char **ret, size_t *ret_len,
                   char *err, size_t err_size);

/* Parses a report (UTF-8 JSON of at most TLSRPT_JSON_MAX bytes) strictly: duplicate keys,
 * nesting deeper than TLSRPT_DEPTH_MAX, more than TLSRPT_VALUES_MAX values, a missing
 * required field, a wrong type, a negative, fractional or absurd count, a date-time that
 * is not RFC 3339 and any other departure from the schema refuse the whole report (unknown
 * keys are ignored, as RFC 8460 §4.4 extensions; unknown result types are kept and counted
 * in n_unknown). Returns the report (caller tlsrpt_free()s it), or NULL with err set to
 * "FIELD: what is wrong" (size at least TLSRPT_ERR_MAX) or ENOMEM's message. */
struct tlsrpt_report *tlsrpt_parse(const char *json, size_t len, char *err, size_t err_size);

/* tlsrpt_inflate() when encoding is gzip, then tlsrpt_parse(): the body as posted. */
struct tlsrpt_report *tlsrpt_read(const void *body, size_t len, enum tlsrpt_encoding encoding,
                                  char *err, size_t err_size);

/* Frees r and everything it owns; NULL is a no-op. */
void tlsrpt_free(struct tlsrpt_report *r);

/* The tenant check: 0 when served(arg, domain) is true for the policy-domain of every
 * policy of r (domains are given lowercase without a trailing dot; served should compare
 * case-insensitively and tolerate one), else -1 with err naming the first domain refused:
 * a report naming any domain not served here is refused as a whole. */
int tlsrpt_check_tenant(const struct tlsrpt_report *r,
                        bool (*served)(void *arg, const char *domain), void *arg, char *err,
                        size_t err_size);

/* "sts" | "tlsa" | "no-policy-found"; the RFC name of a result ("unknown" for UNKNOWN). */
const char *tlsrpt_policy_type_name(enum tlsrpt_policy_type type);
const char *tlsrpt_result_name(enum tlsrpt_result result);

/* The UTC day of t as "YYYY-MM-DD" into out (size at least 11); the day a report counts
 * for is the day of its start. */
void tlsrpt_day(time_t t, char out[11]);

#endif
