/* reportstore_pg: the TLS report store in PostgreSQL (libpq), shared by replicas */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reportstore_backend.h"

#define SCHEMA_VERSION 1
#define CONNECT_TIMEOUT "5"
/* pg_advisory_xact_lock key serialising schema creation between replicas ("TLSR") */
#define SCHEMA_LOCK "1414288210"

static const char *const schema[] = {
    "BEGIN",
    "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")",
    "CREATE TABLE IF NOT EXISTS tlsrpt_schema (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tlsrpt_report (id BIGSERIAL PRIMARY KEY, organization TEXT "
    "NOT NULL, report_id TEXT NOT NULL, contact TEXT, start_time BIGINT NOT NULL, end_time "
    "BIGINT NOT NULL, day TEXT NOT NULL, received BIGINT NOT NULL, UNIQUE (organization, "
    "report_id))",
    "CREATE INDEX IF NOT EXISTS tlsrpt_report_end ON tlsrpt_report (end_time)",
    "CREATE TABLE IF NOT EXISTS tlsrpt_policy (report BIGINT NOT NULL REFERENCES "
    "tlsrpt_report (id) ON DELETE CASCADE, idx INTEGER NOT NULL, domain TEXT NOT NULL, day "
    "TEXT NOT NULL, type TEXT NOT NULL, mode TEXT NOT NULL, policy_id TEXT NOT NULL, "
    "successful BIGINT NOT NULL, failed BIGINT NOT NULL, PRIMARY KEY (report, idx))",
    "CREATE INDEX IF NOT EXISTS tlsrpt_policy_domain ON tlsrpt_policy (domain, day)",
    "CREATE TABLE IF NOT EXISTS tlsrpt_failure (report BIGINT NOT NULL, policy INTEGER NOT "
    "NULL, result_type TEXT NOT NULL, sending_ip TEXT, receiving_mx TEXT, receiving_helo "
    "TEXT, receiving_ip TEXT, count BIGINT NOT NULL, additional TEXT, reason TEXT, FOREIGN "
    "KEY (report, policy) REFERENCES tlsrpt_policy (report, idx) ON DELETE CASCADE)",
    "CREATE INDEX IF NOT EXISTS tlsrpt_failure_policy ON tlsrpt_failure (report, policy)",
    "INSERT INTO tlsrpt_schema (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM "
    "tlsrpt_schema)",
    NULL,
};

struct reportstore_conn {
	PGconn *pg;
};

static void disconnect(struct reportstore_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	free(c);
}

/* libpq's message, on one line. */
static int fail(struct reportstore_conn *c, const char *msg, char *err, size_t err_size)
{
	char *nl;

	snprintf(err, err_size, "postgresql: %s", msg != NULL ? msg : PQerrorMessage(c->pg));
	while ((nl = strchr(err, '\n')) != NULL)
		*nl = nl[1] != '\0' ? ' ' : '\0';
	return -1;
}

static int exec(struct reportstore_conn *c, const char *sql, const char *const *params, int n,
                reportstore_row_fn fn, void *arg, char *err, size_t err_size)
{
	PGresult *res = PQexecParams(c->pg, sql, n, NULL, params, NULL, NULL, 0);
	const char *cols[16];
	int ret = -1;

	if (res == NULL)
		return fail(c, NULL, err, err_size);
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		for (int r = 0; r < PQntuples(res); r++) {
			int n_cols = PQnfields(res) > 16 ? 16 : PQnfields(res);

			for (int i = 0; i < n_cols; i++)
				cols[i] = PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i);
			if (fn != NULL)
				fn(arg, cols, n_cols);
		}
		ret = 0;
		break;
	case PGRES_COMMAND_OK:
		ret = 0;
		break;
	default:
		fail(c, PQresultErrorMessage(res), err, err_size);
		break;
	}
	PQclear(res);
	return ret;
}

static void row_version(void *arg, const char *const *cols, int n)
{
	if (n == 1 && cols[0] != NULL)
		*(long *)arg = strtol(cols[0], NULL, 10);
}

/* NOTICEs ("relation ... already exists, skipping") are not for the log. */
static void quiet(void *arg, const char *message)
{
}

static struct reportstore_conn *connect_db(const char *uri, char *err, size_t err_size)
{
	/* later keywords win: a connect_timeout in the URI overrides the default */
	const char *const keys[] = {"connect_timeout", "dbname", NULL};
	const char *const values[] = {CONNECT_TIMEOUT, uri, NULL};
	struct reportstore_conn *c = calloc(1, sizeof(*c));
	long version = 0;

	if (c == NULL) {
		snprintf(err, err_size, "postgresql: out of memory");
		return NULL;
	}
	c->pg = PQconnectdbParams(keys, values, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		fail(c, c->pg == NULL ? "out of memory" : NULL, err, err_size);
		goto fail;
	}
	PQsetNoticeProcessor(c->pg, quiet, NULL);
	for (const char *const *s = schema; *s != NULL; s++)
		if (exec(c, *s, NULL, 0, NULL, NULL, err, err_size) < 0)
			goto fail;
	if (exec(c, "SELECT max(version) FROM tlsrpt_schema", NULL, 0, row_version, &version, err,
	         err_size) < 0 ||
	    exec(c, "COMMIT", NULL, 0, NULL, NULL, err, err_size) < 0)
		goto fail;
	if (version != SCHEMA_VERSION) {
		snprintf(err, err_size, "postgresql: schema version %ld, this mtastsd has %d",
		         version, SCHEMA_VERSION);
		goto fail;
	}
	return c;
fail:
	disconnect(c);
	return NULL;
}

/* Writers take a lock only writers conflict on (readers are not blocked), so that the
 * duplicate and quota checks of two replicas cannot interleave. */
static const char *const begin_write[] = {
    "BEGIN",
    "LOCK TABLE tlsrpt_report IN SHARE ROW EXCLUSIVE MODE",
    NULL,
};

const struct reportstore_backend reportstore_pg = {
    .name = "postgresql",
    .connect = connect_db,
    .exec = exec,
    .disconnect = disconnect,
    .begin_write = begin_write,
    .begin_read = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
};
