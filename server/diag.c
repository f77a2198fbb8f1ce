/* diag: collected diagnostics (errors and warnings), printed as "file:line: message" */
#include "diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

void diag_finish(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	memset(d, 0, sizeof(*d));
}

/* Appends an entry that takes ownership of msg; counts are the caller's business. */
static int append_entry(struct diag *d, enum diag_level level, const char *file, unsigned line,
                        char *msg)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct diag_entry *v = reallocarray(d->v, cap, sizeof(*v));
		if (!v)
			return -1;
		d->v = v;
		d->cap = cap;
	}
	char *file_copy = NULL;
	if (file) {
		file_copy = strdup(file);
		if (!file_copy)
			return -1;
	}
	d->v[d->n++] =
	    (struct diag_entry){.level = level, .file = file_copy, .line = line, .msg = msg};
	return 0;
}

static void count(struct diag *d, enum diag_level level)
{
	if (level == DIAG_ERROR)
		d->n_errors++;
	else
		d->n_warnings++;
}

void diag_add(struct diag *d, enum diag_level level, const char *file, unsigned line,
              const char *fmt, ...)
{
	va_list ap;

	if (d->kept[level] >= DIAG_KEEP) {
		count(d, level);
		return;
	}
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);

	char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (msg) {
		va_start(ap, fmt);
		int m = vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
		if (m != n) {
			free(msg);
			msg = NULL;
		}
	}
	if (!msg || append_entry(d, level, file, line, msg) < 0) {
		/* The message is lost, so the outcome must at least be a failure. */
		free(msg);
		d->n_errors++;
		return;
	}
	d->kept[level]++;
	count(d, level);
}

void diag_print(const struct diag *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag_entry *e = &d->v[i];
		const char *kind = e->level == DIAG_WARNING ? "warning: " : "";
		if (e->file && e->line)
			fprintf(out, "%s:%u: %s%s\n", e->file, e->line, kind, e->msg);
		else if (e->file)
			fprintf(out, "%s: %s%s\n", e->file, kind, e->msg);
		else
			fprintf(out, "%s%s\n", kind, e->msg);
	}
	if (d->n_errors > d->kept[DIAG_ERROR] || d->n_warnings > d->kept[DIAG_WARNING])
		fprintf(out,
		        "... %zu errors and %zu warnings in all (the first %d of each shown)\n",
		        d->n_errors, d->n_warnings, DIAG_KEEP);
}

void diag_merge(struct diag *dst, const struct diag *src)
{
	bool lost = false;
	for (size_t i = 0; i < src->n; i++) {
		const struct diag_entry *e = &src->v[i];
		if (dst->kept[e->level] >= DIAG_KEEP)
			continue;
		char *msg = strdup(e->msg);
		if (!msg || append_entry(dst, e->level, e->file, e->line, msg) < 0) {
			free(msg);
			lost = true;
			continue;
		}
		dst->kept[e->level]++;
	}
	/* src's counts include entries it already lost to allocation failures. */
	dst->n_errors += src->n_errors;
	dst->n_warnings += src->n_warnings;
	if (lost)
		dst->n_errors++;
}
