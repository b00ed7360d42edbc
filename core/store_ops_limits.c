/*
 * store_ops_limits.c - the per-user limits CGI processes share through the
 * database (store.h "per-user limits shared by processes"), written once
 * for both dialects. The tables are in migrations/.../0006_shared_limits.
 *
 * Why in the database: a CGI process lives for one request, so a limit
 * kept in its memory forgets everything at exit. The database is the one
 * thing every process (every host, on PostgreSQL) shares, and each limit
 * costs one short write transaction per request it applies to.
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

/* One token in the buckets' unit (0006_shared_limits: millionths). */
#define RATE_UNIT 1000000
/* About one take in this many also deletes the class's buckets that have
 * refilled completely: they carry nothing (a missing bucket starts full),
 * so the table holds the users active within a refill, not every user
 * ever seen. */
#define RATE_SWEEP_ONE_IN 64

int op_rate_take(struct db *d, void *arg, struct lark_err *err)
{
    struct op_rate_take *t = arg;
    struct db_rows *rows = NULL;
    int64_t tokens = 0, taken = 0;
    unsigned char dice;
    int rc;

    t->wait_ms = 0; /* a retried transaction starts over */
    rc = db_query(d, DB_RATE_TAKE,
                  DB_ARGS(DBT(t->cls), DBT(t->user), DBI(t->rate_u), DBI(t->burst_u),
                          DBI(t->now_ms), DBI(RATE_UNIT)),
                  &rows, err);
    if (rc == 0 && (rc = db_next(rows, err)) == 1) {
        tokens = db_int(rows, 0);
        taken = db_int(rows, 1);
        rc = 0;
    } else if (rc == 0) {
        rc = lark_err_set(err, LARK_EINTERNAL, "the rate bucket was not returned");
    }
    db_done(rows);
    if (rc)
        return rc;
    if (!taken) /* rate_u >= 1 (store_rate_take) */
        t->wait_ms = (RATE_UNIT - tokens + t->rate_u - 1) / t->rate_u;
    ids_random(&dice, sizeof(dice));
    if (dice % RATE_SWEEP_ONE_IN == 0) {
        /* a bucket untouched for longer than an empty one takes to fill is full */
        int64_t full_ms = (t->burst_u + t->rate_u - 1) / t->rate_u;
        rc = db_exec(d, DB_RATE_SWEEP, DB_ARGS(DBT(t->cls), DBI(t->now_ms - full_ms)), err);
    }
    return rc;
}

/* 1 if the slot's process is known to be gone: it ran on this host and no
 * process has its pid any more. (A pid reused since only keeps the slot
 * until it expires: never a slot freed too early.) */
static int held_gone(const char *host, int64_t pid, const char *my_host)
{
    if (strcmp(host, my_host) != 0 || pid <= 0 || pid > INT_MAX)
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int op_held_acquire(struct db *d, void *arg, struct lark_err *err)
{
    struct op_held *h = arg;
    const struct store_held_in *in = h->in;
    struct db_rows *rows = NULL;
    json_t *gone = json_arr(), *v;
    unsigned live = 0;
    size_t i;
    int rc;

    h->refused = 0;
    if ((rc = db_exec(d, DB_HELD_LOCK, DB_ARGS(DBT(in->user)), err)) ||
        (rc = db_exec(d, DB_HELD_EXPIRE, DB_ARGS(DBT(in->user), DBI(in->now_ms)), err)) ||
        (rc = db_query(d, DB_HELD_LIST, DB_ARGS(DBT(in->user)), &rows, err)))
        goto out;
    while ((rc = db_next(rows, err)) == 1) {
        if (held_gone(db_text(rows, 1), db_int(rows, 2), in->host))
            json_push(gone, json_string(db_text(rows, 0)));
        else
            live++;
    }
    db_done(rows);
    if (rc)
        goto out;
    json_array_foreach (gone, i, v)
        if ((rc = db_exec(d, DB_HELD_DELETE, DB_ARGS(DBT(json_string_value(v))), err)))
            goto out;
    /* refused is not an error here: the clean-up above is still committed */
    if (live >= in->max)
        h->refused = 1;
    else
        rc = db_exec(
            d, DB_HELD_INSERT,
            DB_ARGS(DBT(in->slot), DBT(in->user), DBT(in->host), DBI(in->pid), DBI(in->expires_ms)),
            err);
out:
    json_decref(gone);
    return rc;
}

int op_held_release(struct db *d, void *arg, struct lark_err *err)
{
    const struct op_held_release *r = arg;
    return db_exec(d, DB_HELD_DELETE, DB_ARGS(DBT(r->slot)), err);
}
