/*
 * store_ops_health.c - the smallest real write, for the health check.
 *
 * API.md "Operations": /v1/healthz answers 503 when the database cannot
 * take a write (a full disk, a failing file, a read-only replica), which a
 * SELECT cannot tell. So the check commits a write through the same path
 * as a send (SQLite's writer thread and its group commit, or a PostgreSQL
 * transaction), and only a commit that reached the disk passes.
 *
 * The write adds 1 to a counter row ('larkd', 'health_writes') of
 * push_stats, the table of counters /metrics renders: it is a real change
 * (SQLite skips writing a row whose bytes are unchanged, so adding 0 would
 * prove nothing), it touches one row whatever the load, and it needs no
 * statement or table of its own in either dialect. core/pushstat.h ignores
 * providers it does not know, so the row never shows as a push counter.
 */
#include "core/store_ops_health.h"

#include "core/db.h"

int op_health(struct db *d, void *arg, struct lark_err *err)
{
    (void)arg;
    return db_exec(d, DB_PUSH_STAT_ADD, DB_ARGS(DBT("larkd"), DBT("health_writes"), DBI(1)), err);
}
