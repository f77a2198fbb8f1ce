/* reportstore_sqlite: the embedded TLS report store, state_dir/tlsrpt.sqlite in WAL mode */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reportstore_backend.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000
#define CACHE_MAX 32
#define SQL_MAX 1024

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS tlsrpt_report (id INTEGER PRIMARY KEY, organization TEXT NOT "
    "NULL, report_id TEXT NOT NULL, contact TEXT, start_time INTEGER NOT NULL, end_time "
    "INTEGER NOT NULL, day TEXT NOT NULL, received INTEGER NOT NULL, UNIQUE (organization, "
    "report_id));"
    "CREATE INDEX IF NOT EXISTS tlsrpt_report_end ON tlsrpt_report (end_time);"
    "CREATE TABLE IF NOT EXISTS tlsrpt_policy (report INTEGER NOT NULL REFERENCES "
    "tlsrpt_report (id) ON DELETE CASCADE, idx INTEGER NOT NULL, domain TEXT NOT NULL, day "
    "TEXT NOT NULL, type TEXT NOT NULL, mode TEXT NOT NULL, policy_id TEXT NOT NULL, "
    "successful INTEGER NOT NULL, failed INTEGER NOT NULL, PRIMARY KEY (report, idx));"
    "CREATE INDEX IF NOT EXISTS tlsrpt_policy_domain ON tlsrpt_policy (domain, day);"
    "CREATE TABLE IF NOT EXISTS tlsrpt_failure (report INTEGER NOT NULL, policy INTEGER NOT "
    "NULL, result_type TEXT NOT NULL, sending_ip TEXT, receiving_mx TEXT, receiving_helo "
    "TEXT, receiving_ip TEXT, count INTEGER NOT NULL, additional TEXT, reason TEXT, FOREIGN "
    "KEY (report, policy) REFERENCES tlsrpt_policy (report, idx) ON DELETE CASCADE);"
    "CREATE INDEX IF NOT EXISTS tlsrpt_failure_policy ON tlsrpt_failure (report, policy);";

/* Prepared statements, kept per connection and found by the address of their SQL (every
 * statement is a string constant of reportstore.c). */
struct cached {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct reportstore_conn {
	sqlite3 *db;
	struct cached cache[CACHE_MAX];
	size_t n_cache;
};

static void disconnect(struct reportstore_conn *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_cache; i++)
		sqlite3_finalize(c->cache[i].stmt);
	sqlite3_close(c->db);
	free(c);
}

static int fail(struct reportstore_conn *c, const char *what, char *err, size_t err_size)
{
	snprintf(err, err_size, "sqlite: %s: %s", what,
	         c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
	return -1;
}

/* sqlite3_exec, retried while another connection holds a lock it does not wait for: a
 * change of journal mode, or another process creating the schema at the same moment. */
static int exec_retry(sqlite3 *db, const char *sql)
{
	int rc;

	for (int i = 0; i < BUSY_TIMEOUT_MS / 10; i++) {
		if (((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) & 0xff) != SQLITE_BUSY)
			return rc;
		sqlite3_sleep(10);
	}
	return rc;
}

static struct reportstore_conn *connect_db(const char *path, char *err, size_t err_size)
{
	struct reportstore_conn *c = calloc(1, sizeof(*c));
	sqlite3_stmt *st = NULL;
	int version;

	if (c == NULL) {
		snprintf(err, err_size, "sqlite: out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		fail(c, path, err, err_size);
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	/* WAL: readers never wait on the writer; FULL: a report answered as stored survives a
	 * power cut (reports are few, the fsync is cheap) */
	if (exec_retry(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
	                      "PRAGMA foreign_keys=ON;") != SQLITE_OK) {
		fail(c, path, err, err_size);
		goto fail;
	}
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		fail(c, path, err, err_size);
		goto fail;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version > SCHEMA_VERSION) {
		snprintf(err, err_size,
		         "sqlite: %s: schema version %d is newer than this mtastsd's %d", path,
		         version, SCHEMA_VERSION);
		goto fail;
	}
	if (version < SCHEMA_VERSION) {
		char sql[SQL_MAX * 4];

		if (snprintf(sql, sizeof(sql),
		             "BEGIN IMMEDIATE; %s PRAGMA user_version=%d; COMMIT;", schema,
		             SCHEMA_VERSION) >= (int)sizeof(sql)) {
			snprintf(err, err_size, "sqlite: schema too long");
			goto fail;
		}
		if (exec_retry(c->db, sql) != SQLITE_OK) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			fail(c, path, err, err_size);
			goto fail;
		}
	}
	return c;
fail:
	sqlite3_finalize(st);
	disconnect(c);
	return NULL;
}

/* The statement for sql, prepared once per connection; $N placeholders become ?N. */
static sqlite3_stmt *statement(struct reportstore_conn *c, const char *sql)
{
	char copy[SQL_MAX];
	sqlite3_stmt *st;
	size_t len = strlen(sql);

	for (size_t i = 0; i < c->n_cache; i++)
		if (c->cache[i].sql == sql)
			return c->cache[i].stmt;
	if (len >= sizeof(copy))
		return NULL;
	memcpy(copy, sql, len + 1);
	for (char *p = copy; (p = strchr(p, '$')) != NULL; p++)
		*p = '?';
	if (sqlite3_prepare_v2(c->db, copy, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if (c->n_cache == CACHE_MAX) /* not expected: every statement is one of a few */
		return st;
	c->cache[c->n_cache].sql = sql;
	c->cache[c->n_cache++].stmt = st;
	return st;
}

static bool cached(const struct reportstore_conn *c, const sqlite3_stmt *st)
{
	for (size_t i = 0; i < c->n_cache; i++)
		if (c->cache[i].stmt == st)
			return true;
	return false;
}

static int exec(struct reportstore_conn *c, const char *sql, const char *const *params, int n,
                reportstore_row_fn fn, void *arg, char *err, size_t err_size)
{
	sqlite3_stmt *st = statement(c, sql);
	const char *cols[16];
	int rc, ret = -1;

	if (st == NULL)
		return fail(c, "prepare", err, err_size);
	for (int i = 0; i < n; i++)
		if ((params[i] != NULL
		         ? sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_TRANSIENT)
		         : sqlite3_bind_null(st, i + 1)) != SQLITE_OK) {
			fail(c, "bind", err, err_size);
			goto out;
		}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n_cols = sqlite3_column_count(st);

		if (n_cols > 16)
			n_cols = 16;
		for (int i = 0; i < n_cols; i++)
			cols[i] = (const char *)sqlite3_column_text(st, i);
		if (fn != NULL)
			fn(arg, cols, n_cols);
	}
	if (rc != SQLITE_DONE) {
		fail(c, "step", err, err_size);
		goto out;
	}
	ret = 0;
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (!cached(c, st))
		sqlite3_finalize(st);
	return ret;
}

static const char *const begin_write[] = {"BEGIN IMMEDIATE", NULL};

const struct reportstore_backend reportstore_sqlite = {
    .name = "sqlite",
    .connect = connect_db,
    .exec = exec,
    .disconnect = disconnect,
    .begin_write = begin_write,
    .begin_read = "BEGIN",
};
