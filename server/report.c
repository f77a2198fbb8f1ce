/* report: what verify found per domain: the verdict by mode, as text or JSON */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report.h"

static const char *const status_name[] = {"ok", "warn", "fail"};

/* The checks that failed, as "name host, name" for a verdict. */
static void failed_list(const struct report_domain *v, char *out, size_t size)
{
	size_t len = 0;

	out[0] = 0;
	for (size_t i = 0; i < v->n_checks; i++) {
		const struct report_check *c = &v->checks[i];
		int w;

		if (c->status != REPORT_FAIL)
			continue;
		w = snprintf(out + len, size - len, "%s%s%s%s", len ? ", " : "", c->name,
		             c->host ? " " : "", c->host ? c->host : "");
		if (w < 0 || (size_t)w >= size - len)
			break;
		len += (size_t)w;
	}
}

static void verdict_testing(struct report_domain *v)
{
	char failed[REPORT_DETAIL_MAX / 2];
	size_t n_tls = 0;

	failed_list(v, failed, sizeof(failed));
	for (size_t i = 0; i < v->n_checks; i++)
		if (strcmp(v->checks[i].name, "mx-tls") == 0 && v->checks[i].status != REPORT_FAIL)
			n_tls++;
	v->ok = failed[0] == 0;
	if (v->ok && n_tls > 0)
		snprintf(v->verdict, sizeof(v->verdict), "ready for enforce");
	else
		snprintf(v->verdict, sizeof(v->verdict), "not ready for enforce: %s",
		         failed[0] ? failed : "no MX host passed mx-tls");
}

static void verdict_enforce(struct report_domain *v)
{
	char failed[REPORT_DETAIL_MAX / 2];

	failed_list(v, failed, sizeof(failed));
	v->ok = failed[0] == 0;
	snprintf(v->verdict, sizeof(v->verdict), v->ok ? "ok" : "problems: %s", failed);
}

/* mode none (a domain leaving MTA-STS): whether senders that cached a policy will see
 * none, and, from the journal, from when the records may be removed. */
static void verdict_none(struct report_domain *v)
{
	char failed[REPORT_DETAIL_MAX / 2];

	failed_list(v, failed, sizeof(failed));
	v->ok = failed[0] == 0;
	if (v->ok)
		snprintf(v->verdict, sizeof(v->verdict),
		         "policy served as none: senders that refetch drop their cached policy%s%s",
		         v->none_note != NULL ? "; " : "",
		         v->none_note != NULL ? v->none_note : "");
	else
		snprintf(v->verdict, sizeof(v->verdict),
		         "policy not served as none correctly: %s; senders keep their cached "
		         "policy",
		         failed);
}

void report_judge(struct report_domain *v)
{
	if (v->mode != NULL && strcmp(v->mode, "none") == 0) {
		/* Senders do not apply a none policy: the MX are informative. */
		for (size_t i = 0; i < v->n_checks; i++) {
			struct report_check *c = &v->checks[i];
			char was[REPORT_DETAIL_MAX];

			if (c->status != REPORT_FAIL ||
			    (strcmp(c->name, "mx-coverage") != 0 && strcmp(c->name, "mx-tls") != 0))
				continue;
			snprintf(was, sizeof(was), "%s", c->detail);
			c->status = REPORT_WARN;
			snprintf(c->detail, sizeof(c->detail),
			         "mode none, not applied by senders: %.900s", was);
		}
		verdict_none(v);
	} else if (v->mode != NULL && strcmp(v->mode, "testing") == 0) {
		verdict_testing(v);
	} else {
		verdict_enforce(v);
	}
}

int report_text(const struct report_domain *v, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "%s (%s%s%s):\n", v[i].domain, v[i].mode ? v[i].mode : "unknown",
		           v[i].proxy ? ", proxy " : "", v[i].proxy ? v[i].proxy : "");
		for (size_t k = 0; k < v[i].n_checks; k++) {
			const struct report_check *c = &v[i].checks[k];

			buf_printf(out, "  %-4s %s%s%s: %s\n", status_name[c->status], c->name,
			           c->host ? " " : "", c->host ? c->host : "", c->detail);
		}
		buf_printf(out, "  verdict: %s\n", v[i].verdict);
	}
	return out->failed ? -1 : 0;
}

int report_json(const struct report_domain *v, size_t n, struct buf *out)
{
	json_t *root = json_object(), *list = json_array();
	char *text = NULL;
	int ret = -1;

	if (root == NULL || list == NULL || json_object_set(root, "domains", list) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_object(), *checks = json_array();

		if (d == NULL || checks == NULL || json_array_append_new(list, d) < 0) {
			json_decref(d);
			json_decref(checks);
			goto out;
		}
		json_object_set_new(d, "domain", json_string(v[i].domain));
		json_object_set_new(d, "mode", v[i].mode ? json_string(v[i].mode) : json_null());
		if (v[i].proxy != NULL)
			json_object_set_new(d, "proxy", json_string(v[i].proxy));
		json_object_set_new(d, "ok", json_boolean(v[i].ok));
		json_object_set_new(d, "verdict", json_string(v[i].verdict));
		json_object_set_new(d, "checks", checks);
		for (size_t k = 0; k < v[i].n_checks; k++) {
			const struct report_check *c = &v[i].checks[k];
			json_t *o = json_object();

			if (o == NULL || json_array_append_new(checks, o) < 0)
				goto out;
			json_object_set_new(o, "check", json_string(c->name));
			json_object_set_new(o, "status", json_string(status_name[c->status]));
			json_object_set_new(o, "host",
			                    c->host ? json_string(c->host) : json_null());
			/* Details quote DNS and HTTP: not always UTF-8. */
			json_object_set_new(o, "detail",
			                    json_stringn_nocheck(c->detail, strlen(c->detail)));
		}
	}
	if ((text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII)) == NULL)
		goto out;
	ret = buf_puts(out, text) < 0 || buf_puts(out, "\n") < 0 ? -1 : 0;
out:
	free(text);
	json_decref(list);
	json_decref(root);
	return ret;
}
