/* reportstore_backend: the interface the two backends of reportstore implement: connect
 * (schema created if missing), run one statement with text parameters, disconnect. The SQL
 * is written once, with $1..$n placeholders, in reportstore.c. Private to reportstore. */
#ifndef MTASTSD_REPORTSTORE_BACKEND_H
#define MTASTSD_REPORTSTORE_BACKEND_H

#include <stddef.h>

struct reportstore_conn;

/* Called with each result row: cols[i] NUL-terminated text, NULL for SQL NULL. */
typedef void (*reportstore_row_fn)(void *arg, const char *const *cols, int n_cols);

struct reportstore_backend {
	const char *name;
	/* A connection to target (a file path or a libpq URI), the schema in place. NULL with
	 * err set. */
	struct reportstore_conn *(*connect)(const char *target, char *err, size_t err_size);
	/* Runs sql with params[0..n) bound to $1..$n (NULL: SQL NULL), rows to fn (may be NULL).
	 * 0, or -1 with err set. */
	int (*exec)(struct reportstore_conn *c, const char *sql, const char *const *params, int n,
	            reportstore_row_fn fn, void *arg, char *err, size_t err_size);
	void (*disconnect)(struct reportstore_conn *c);
	const char *const *begin_write; /* statements opening a write transaction */
	const char *begin_read;         /* opening a read-only snapshot */
};

extern const struct reportstore_backend reportstore_sqlite;
extern const struct reportstore_backend reportstore_pg;

#endif
