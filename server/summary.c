/* summary: the TLS reports of some domains, summed */
#include "summary.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Adds n under name in the object o (a sum by name). 0 / -1. */
static int add_count(json_t *o, const char *name, uint64_t n)
{
	json_t *v = json_object_get(o, name);
	json_int_t have = v != NULL ? json_integer_value(v) : 0;

	return json_object_set_new(o, name, json_integer(have + (json_int_t)n));
}

static int add_counts(json_t *o, const struct reportstore_count *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (add_count(o, v[i].name[0] != '\0' ? v[i].name : "(none reported)", v[i].n) < 0)
			return -1;
	return 0;
}

/* One domain's object, from its rows in sum. NULL when out of memory. */
static json_t *domain_json(const struct reportstore_summary *sum, const char *domain)
{
	json_t *d = json_object(), *by_result = json_object(), *by_mx = json_object(),
	       *orgs = json_object(), *days = json_array(), *org_list = json_array();
	uint64_t ok = 0, failed = 0, reports = 0;
	const char *name;
	json_t *v;
	int bad = d == NULL || by_result == NULL || by_mx == NULL || orgs == NULL || days == NULL ||
	          org_list == NULL;

	for (size_t i = 0; !bad && i < sum->n_days; i++) {
		const struct reportstore_day *day = &sum->days[i];

		if (strcmp(day->domain, domain) != 0)
			continue;
		ok += day->successful;
		failed += day->failed;
		reports += day->reports;
		bad =
		    add_counts(by_result, day->results, day->n_results) < 0 ||
		    add_counts(by_mx, day->mx, day->n_mx) < 0 ||
		    add_counts(orgs, day->organizations, day->n_organizations) < 0 ||
		    json_array_append_new(days, json_pack("{s:s, s:I, s:I}", "date", day->day,
		                                          "success", (json_int_t)day->successful,
		                                          "failure", (json_int_t)day->failed)) < 0;
	}
	json_object_foreach(orgs, name, v) bad =
	    bad || json_array_append_new(org_list, json_string(name)) < 0;
	json_decref(orgs);
	if (bad || json_object_set_new(d, "domain", json_string(domain)) < 0 ||
	    json_object_set_new(d, "success", json_integer((json_int_t)ok)) < 0 ||
	    json_object_set_new(d, "failure", json_integer((json_int_t)failed)) < 0 ||
	    json_object_set_new(d, "by_result", by_result) < 0 ||
	    json_object_set_new(d, "by_mx", by_mx) < 0 ||
	    json_object_set_new(d, "organizations", org_list) < 0 ||
	    json_object_set_new(d, "reports", json_integer((json_int_t)reports)) < 0 ||
	    json_object_set_new(d, "days", days) < 0) {
		json_decref(d);
		return NULL;
	}
	return d;
}

/* The largest count of o: its name, or NULL when o is empty. */
static const char *top(json_t *o, json_int_t *ret_n)
{
	const char *name, *best = NULL;
	json_t *v;

	*ret_n = 0;
	json_object_foreach(o, name, v) if (json_integer_value(v) > *ret_n)
	{
		*ret_n = json_integer_value(v);
		best = name;
	}
	return best;
}

static void domain_text(json_t *d, unsigned days, struct buf *out)
{
	json_int_t ok = json_integer_value(json_object_get(d, "success")),
	           failed = json_integer_value(json_object_get(d, "failure")), n;
	json_t *day, *by_result = json_object_get(d, "by_result");
	const char *worst = top(by_result, &n);
	size_t i;

	buf_printf(out,
	           "%s: %" JSON_INTEGER_FORMAT
	           " reports from %zu organisations in %u days: %" JSON_INTEGER_FORMAT
	           " sessions ok, %" JSON_INTEGER_FORMAT " failed",
	           json_string_value(json_object_get(d, "domain")),
	           json_integer_value(json_object_get(d, "reports")),
	           json_array_size(json_object_get(d, "organizations")), days, ok, failed);
	if (worst != NULL) {
		const char *mx = top(json_object_get(d, "by_mx"), &n);

		buf_printf(out, "; most failures: %s", worst);
		if (mx != NULL)
			buf_printf(out, ", most at %s (%" JSON_INTEGER_FORMAT ")", mx, n);
	}
	buf_puts(out, "\n");
	json_array_foreach(json_object_get(d, "days"), i, day)
	    buf_printf(out, "  %s  ok %" JSON_INTEGER_FORMAT "  failed %" JSON_INTEGER_FORMAT "\n",
	               json_string_value(json_object_get(day, "date")),
	               json_integer_value(json_object_get(day, "success")),
	               json_integer_value(json_object_get(day, "failure")));
}

int summary_render(const struct reportstore_summary *sum, const char *const *domains, size_t n,
                   unsigned days, bool json, struct buf *out)
{
	json_t *all = json_array(), *root;
	char *text;

	for (size_t i = 0; all != NULL && i < n; i++) {
		json_t *d = domain_json(sum, domains[i]);

		if (d == NULL || json_array_append_new(all, d) < 0) {
			json_decref(all);
			return -1;
		}
		if (!json)
			domain_text(d, days, out);
	}
	if (all == NULL)
		return -1;
	if (!json) {
		json_decref(all);
		return out->failed ? -1 : 0;
	}
	root = json_pack("{s:o}", "domains", all);
	text = root != NULL ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(root);
	if (text == NULL)
		return -1;
	buf_puts(out, text);
	buf_puts(out, "\n");
	free(text);
	return out->failed ? -1 : 0;
}
