/*
 * store_ops_push.c - devices and the push job queue, once for every back
 * end (store_ops.h; store.h has the contracts, migrations/<back end>/
 * 0003_push.sql the tables).
 *
 * Jobs are written inside the send transaction (op_push_enqueue) and
 * claimed and finished by lark-push. Claiming is one transaction: pick
 * due ids (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent daemons take
 * disjoint rows), lease each (sealed, due_at = lease end, attempts + 1),
 * read what sending needs. A job whose daemon died is due again when its
 * lease ends.
 *
 * Waking the daemons: after a send that queued jobs (or a re-queue), the
 * transaction runs DB_PUSH_SIGNAL: PostgreSQL NOTIFYs channel lark_push
 * (delivered at commit); SQLite's writer touches "<database>-push" after
 * its commit (store_sqlite.c). Each back end's store_push_watch listens.
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/pushstat.h"
#include "core/store_impl.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows a statement returned (RETURNING), or a negative LARK_E* code. */
static int64_t count_rows(struct db *d, enum db_stmt id, const struct db_arg *args, int n,
                          struct lark_err *err)
{
    struct db_rows *r = NULL;
    int64_t rows = 0;
    int rc = db_query(d, id, args, n, &r, err);

    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        rows++;
        rc = 0;
    }
    db_done(r);
    return rc < 0 ? rc : rows;
}

int op_push_enqueue(struct db *d, const char *conv, uint64_t msg_seq, const char *sender,
                    int64_t now, int64_t window_ms, struct lark_err *err)
{
    int64_t rows = count_rows(
        d, DB_PUSH_ENQUEUE,
        DB_ARGS(DBT(conv), DBI(msg_seq), DBI(now), DBI(now + window_ms), DBT(sender)), err);

    if (rows <= 0)
        return (int)rows;
    return db_exec(d, DB_PUSH_SIGNAL, NULL, 0, err);
}

/* ---- devices -------------------------------------------------------------- */

int op_device_add(struct db *d, void *arg, struct lark_err *err)
{
    struct op_device_add *ctx = arg;
    const struct store_device_in *in = ctx->in;
    struct db_rows *r = NULL;
    int64_t count = 0;
    int owned = 0, theirs = 0, found = 0, rc;

    ctx->created = 0;
    rc = db_query(d, DB_DEVICE_OWNER, DB_ARGS(DBT(in->platform), DBT(in->token)), &r, err);
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        owned = 1;
        theirs = strcmp(db_text(r, 0), in->user) == 0;
        rc = 0;
    }
    db_done(r);
    if (rc == 0)
        rc = db_int1(d, DB_DEVICE_COUNT, DB_ARGS(DBT(in->user)), &count, &found, err);
    if (rc)
        return rc;
    if (!theirs && count >= (int64_t)ctx->max)
        return lark_err_set(err, LARK_ETOOMANY, "at most %u devices per user", ctx->max);
    /* another user's queued pushes must not reach the phone's new owner */
    if (owned && !theirs &&
        (rc = db_exec(d, DB_DEVICE_JOBS_DELETE, DB_ARGS(DBT(in->platform), DBT(in->token)), err)))
        return rc;
    rc = db_int1(
        d, DB_DEVICE_UPSERT,
        DB_ARGS(DBT(in->platform), DBT(in->token), DBT(in->user), DBT(in->app), DBI(ctx->now)),
        &ctx->created_at, &found, err);
    if (rc == 0 && !found)
        rc = lark_err_set(err, LARK_EINTERNAL, "device not stored");
    ctx->created = rc == 0 && !theirs;
    return rc;
}

static json_t *device_of_row(struct db_rows *r, void *ctx)
{
    (void)ctx;
    return store_device_json(db_text(r, 0), db_text(r, 1), db_text(r, 2), db_int(r, 3));
}

int op_device_list(struct db *d, const char *user, json_t **devices, struct lark_err *err)
{
    json_t *arr = json_arr();
    int rc = op_collect(d, DB_DEVICE_LIST, DB_ARGS(DBT(user)), device_of_row, NULL, arr, err);

    if (rc) {
        json_decref(arr);
        return rc;
    }
    *devices = arr;
    return 0;
}

int op_device_remove(struct db *d, void *arg, struct lark_err *err)
{
    struct op_device_remove *ctx = arg;
    json_t *platforms = json_arr(), *p; /* a token text may be both fcm and apns */
    size_t i;
    int rc = op_collect(d, DB_DEVICE_DELETE_OWN, DB_ARGS(DBT(ctx->user), DBT(ctx->token)), op_col0,
                        NULL, platforms, err);

    if (rc == 0 && json_array_size(platforms) == 0)
        rc = lark_err_set(err, LARK_ENOTFOUND, "you have no device with this token");
    json_array_foreach (platforms, i, p) {
        if (rc == 0)
            rc = db_exec(d, DB_DEVICE_JOBS_DELETE,
                         DB_ARGS(DBT(json_string_value(p)), DBT(ctx->token)), err);
    }
    json_decref(platforms);
    return rc;
}

/* ---- claiming --------------------------------------------------------------- */

static void job_fill(struct store_push_job *j, struct db_rows *r)
{
    j->id = db_int(r, 0);
    j->user = xstrdup(db_text(r, 1));
    j->platform = xstrdup(db_text(r, 2));
    j->token = xstrdup(db_text(r, 3));
    j->app = xstrdup(db_text(r, 4));
    j->conversation_id = xstrdup(db_text(r, 5));
    j->conv_title = strcmp(db_text(r, 7), "group") == 0 ? xstrdup(db_text(r, 6)) : NULL;
    j->sender = xstrdup(db_text(r, 8));
    j->msg_type = xstrdup(db_text(r, 9));
    j->body = xstrndup(db_text(r, 10), db_len(r, 10));
    j->msg_seq = (uint64_t)db_int(r, 11);
    j->inbox_seq = (uint64_t)db_int(r, 12);
    j->count = (unsigned)db_int(r, 13);
    j->attempts = (unsigned)db_int(r, 14);
    j->user_online = db_int(r, 15) != 0;
    j->user_read = db_int(r, 16) != 0;
    j->created_at = db_int(r, 17);
    j->media = xstrdup(db_text(r, 18)); /* "" for NULL: no media */
}

/* Lease job id and read it into ctx->jobs; a job whose device has gone
 * (removed between its creation and now) is deleted instead. */
static int claim_one(struct db *d, struct op_push_claim *ctx, int64_t id, struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_exec(d, DB_PUSH_SEAL, DB_ARGS(DBI(id), DBI(ctx->lease_until)), err);

    if (rc == 0)
        rc = db_query(d, DB_PUSH_JOB_GET, DB_ARGS(DBI(id)), &r, err);
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        job_fill(&ctx->jobs[ctx->n++], r);
        rc = 0;
    } else if (rc == 0) {
        db_done(r);
        r = NULL;
        rc = db_exec(d, DB_PUSH_DELETE, DB_ARGS(DBI(id)), err);
    }
    db_done(r);
    return rc < 0 ? rc : 0;
}

static json_t *int_of_row(struct db_rows *r, void *ctx)
{
    (void)ctx;
    return json_integer(db_int(r, 0));
}

int op_push_claim(struct db *d, void *arg, struct lark_err *err)
{
    struct op_push_claim *ctx = arg;
    json_t *ids = json_arr(), *id;
    size_t i;
    int rc;

    /* a transaction run again starts afresh */
    for (i = 0; i < ctx->n; i++)
        store_push_job_release(&ctx->jobs[i]);
    ctx->n = 0;
    /* gathered first: updating rows while stepping would disturb the scan */
    rc = op_collect(d, DB_PUSH_DUE_IDS, DB_ARGS(DBI(ctx->now), DBI(ctx->max)), int_of_row, NULL,
                    ids, err);
    json_array_foreach (ids, i, id) {
        if (rc == 0 && ctx->n < ctx->max)
            rc = claim_one(d, ctx, json_integer_value(id), err);
    }
    json_decref(ids);
    return rc;
}

/* ---- finishing ---------------------------------------------------------------- */

static int finish_one(struct db *d, const struct store_push_result *r, int64_t now,
                      struct lark_err *err)
{
    int rc;

    switch (r->outcome) {
    case STORE_PUSH_TOKEN_GONE:
        rc = db_exec(d, DB_DEVICE_DELETE, DB_ARGS(DBT(r->platform), DBT(r->token)), err);
        if (rc == 0)
            rc = db_exec(d, DB_DEVICE_JOBS_DELETE, DB_ARGS(DBT(r->platform), DBT(r->token)), err);
        return rc;
    case STORE_PUSH_RETRY:
        return db_exec(d, DB_PUSH_RETRY, DB_ARGS(DBI(r->id), DBI(r->due_at), DBT(r->error)), err);
    case STORE_PUSH_DEAD:
        rc = db_exec(d, DB_PUSH_BURY, DB_ARGS(DBI(r->id), DBT(r->error), DBI(now)), err);
        return rc ? rc : db_exec(d, DB_PUSH_DELETE, DB_ARGS(DBI(r->id)), err);
    case STORE_PUSH_DONE:
    default: return db_exec(d, DB_PUSH_DELETE, DB_ARGS(DBI(r->id)), err);
    }
}

static int stats_add(struct db *d, const struct pushstat *delta, struct lark_err *err)
{
    for (int p = 0; p < PUSHSTAT_NPROV; p++) {
        for (int i = 0; i < PUSHSTAT_NSLOTS; i++) {
            int rc;
            if (!delta->v[p][i])
                continue;
            rc = db_exec(d, DB_PUSH_STAT_ADD,
                         DB_ARGS(DBT(pushstat_provider_name((enum pushstat_provider)p)),
                                 DBT(pushstat_slot_name(i)), DBI(delta->v[p][i])),
                         err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int op_push_finish(struct db *d, void *arg, struct lark_err *err)
{
    struct op_push_finish *ctx = arg;
    int rc = 0;

    for (size_t i = 0; i < ctx->n && rc == 0; i++)
        rc = finish_one(d, &ctx->results[i], ctx->now, err);
    if (rc == 0 && ctx->delta)
        rc = stats_add(d, ctx->delta, err);
    return rc;
}

int op_push_requeue(struct db *d, void *arg, struct lark_err *err)
{
    struct op_push_requeue *ctx = arg;
    int64_t queued, deleted;

    ctx->n = 0;
    queued = count_rows(d, DB_PUSH_REQUEUE, DB_ARGS(DBI(ctx->id), DBI(ctx->now)), err);
    if (queued < 0)
        return (int)queued;
    deleted = count_rows(d, DB_PUSH_DEAD_DELETE, DB_ARGS(DBI(ctx->id)), err);
    if (deleted < 0)
        return (int)deleted;
    if (ctx->id != 0 && deleted == 0)
        return lark_err_set(err, LARK_ENOTFOUND, "no dead letter %lld", (long long)ctx->id);
    ctx->n = (size_t)queued;
    return queued ? db_exec(d, DB_PUSH_SIGNAL, NULL, 0, err) : 0;
}

/* ---- reads ------------------------------------------------------------------------ */

int op_push_next_due(struct db *d, int64_t *due_at, struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_PUSH_NEXT_DUE, NULL, 0, &r, err);

    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        if (!db_is_null(r, 0))
            *due_at = db_int(r, 0);
        rc = 0;
    }
    db_done(r);
    return rc < 0 ? rc : 0;
}

int op_push_stats(struct db *d, struct pushstat *out, struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_PUSH_STATS, NULL, 0, &r, err);

    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        int p = pushstat_provider_parse(db_text(r, 0));
        int slot = pushstat_slot_parse(db_text(r, 1));
        if (p >= 0 && slot >= 0)
            out->v[p][slot] = (uint64_t)db_int(r, 2);
        rc = 0;
    }
    db_done(r);
    r = NULL;
    if (rc < 0)
        return rc;
    rc = db_query(d, DB_PUSH_COUNTS, NULL, 0, &r, err);
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        out->queued = db_int(r, 0);
        out->dead_letters = db_int(r, 1);
        rc = 0;
    }
    db_done(r);
    return rc < 0 ? rc : 0;
}

static json_t *dead_of_row(struct db_rows *r, void *ctx)
{
    char created[TIME_RFC3339_LEN], died[TIME_RFC3339_LEN];
    json_t *o = json_obj();

    (void)ctx;
    time_rfc3339(db_int(r, 9), created);
    time_rfc3339(db_int(r, 10), died);
    json_put(o, "id", json_integer(db_int(r, 0)));
    json_put(o, "user", json_string(db_text(r, 1)));
    json_put(o, "platform", json_string(db_text(r, 2)));
    json_put(o, "token", json_string(db_text(r, 3)));
    json_put(o, "conversation_id", json_string(db_text(r, 4)));
    json_put(o, "msg_seq", json_integer(db_int(r, 5)));
    json_put(o, "count", json_integer(db_int(r, 6)));
    json_put(o, "attempts", json_integer(db_int(r, 7)));
    json_put(o, "last_error", json_string(db_text(r, 8)));
    json_put(o, "created_at", json_string(created));
    json_put(o, "died_at", json_string(died));
    return o;
}

int op_push_dead_list(struct db *d, int64_t before_id, unsigned limit, json_t **out,
                      struct lark_err *err)
{
    json_t *arr = json_arr();
    int rc = op_collect(d, DB_PUSH_DEAD_LIST,
                        DB_ARGS(DBI(before_id > 0 ? before_id : INT64_MAX), DBI(limit)),
                        dead_of_row, NULL, arr, err);

    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
