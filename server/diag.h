/* diag: collected diagnostics, printed as "file:line: message" */
#ifndef MTASTSD_DIAG_H
#define MTASTSD_DIAG_H

#include <stdio.h>
#include <stddef.h>

enum diag_level {
	DIAG_ERROR,
	DIAG_WARNING,
};

struct diag_entry {
	enum diag_level level;
	char *file;    /* owned; may be NULL */
	unsigned line; /* 0: no line */
	char *msg;     /* owned */
};

/* entries kept per level; the ones after are counted only, so that a hostile or broken
 * input (a million bad lines) costs no memory for its messages */
#define DIAG_KEEP 100

struct diag {
	struct diag_entry *v;
	size_t n;
	size_t cap;
	size_t n_errors;   /* all of them, kept or not */
	size_t n_warnings; /* all of them, kept or not */
	size_t kept[2];    /* entries in v, by level */
};

void diag_init(struct diag *d);
void diag_finish(struct diag *d);

/* Adds one entry; an allocation failure is counted as an error and never loses the count. */
void diag_add(struct diag *d, enum diag_level level, const char *file, unsigned line,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define diag_error(d, file, line, ...) diag_add((d), DIAG_ERROR, (file), (line), __VA_ARGS__)
#define diag_warn(d, file, line, ...) diag_add((d), DIAG_WARNING, (file), (line), __VA_ARGS__)

/* Prints every entry kept, in order: "file:line: message" for errors,
 * "file:line: warning: message" for warnings ("file: ..." when line is 0), then how many
 * more there were when any was not kept. */
void diag_print(const struct diag *d, FILE *out);

/* Appends all entries of src to dst (copies). */
void diag_merge(struct diag *dst, const struct diag *src);

#endif
