/*
 * store_ops_media.c - media rows, once for every back end (store_ops.h,
 * store.h "media"): creating an item within its uploader's quota, marking
 * it ready, reading it with the asking user's right to it, the checks a
 * send makes, and the retention sweep's deletions.
 *
 * The quota is counted in the transaction that adds the item, after the
 * uploader's users row is locked (PostgreSQL: two uploads of one user at
 * once take turns), so that no two uploads both fit in the last free
 * megabytes.
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/store_impl.h"

#include <stdlib.h>
#include <string.h>

int op_media_create(struct db *d, void *arg, struct lark_err *err)
{
    struct op_media_create *ctx = arg;
    const struct store_media *m = ctx->in;
    json_t *ids = json_arr();
    int64_t used = 0;
    int found = 0;
    int rc = op_ensure_user(d, m->uploader, m->created_at, err);

    json_push(ids, json_string(m->uploader));
    if (rc == 0)
        rc = op_lock_users(d, ids, err);
    json_decref(ids);
    if (rc == 0 && ctx->quota > 0)
        rc = db_int1(d, DB_MEDIA_USAGE, DB_ARGS(DBT(m->uploader)), &used, &found, err);
    if (rc)
        return rc;
    if (ctx->quota > 0 && used + m->size > ctx->quota)
        return lark_err_set(err, LARK_EQUOTA,
                            "your media would take %lld of your %lld MiB; send fewer or smaller "
                            "files, or wait until unsent uploads expire",
                            (long long)((used + m->size + (1 << 20) - 1) >> 20),
                            (long long)(ctx->quota >> 20));
    return db_exec(
        d, DB_MEDIA_INSERT,
        DB_ARGS(DBT(m->id), DBT(m->uploader), DBT(m->content_type), DBI(m->size), DBT(m->sha256),
                DBT(m->name), DBT(m->skey), *m->upload_hash ? DBT(m->upload_hash) : DBNULL,
                m->upload_expires_at ? DBI(m->upload_expires_at) : DBNULL, DBI(m->created_at)),
        err);
}

int op_media_ready(struct db *d, void *arg, struct lark_err *err)
{
    const char *id = ((struct op_media_ready *)arg)->id;
    int64_t ignored = 0;
    int found = 0;
    int rc = db_int1(d, DB_MEDIA_READY, DB_ARGS(DBT(id)), &ignored, &found, err);

    if (rc == 0 && !found)
        rc = lark_err_set(err, LARK_ENOTFOUND, "no media %s (expired?)", id);
    return rc;
}

int op_media_take(struct db *d, const char *sender, const char *id, struct lark_err *err)
{
    struct db_rows *r = NULL;
    int64_t ignored = 0;
    int found = 0;
    int rc = db_int1(d, DB_MEDIA_TAKE, DB_ARGS(DBT(id), DBT(sender)), &ignored, &found, err);

    if (rc || found)
        return rc;
    rc = db_query(d, DB_MEDIA_OWNED, DB_ARGS(DBT(id), DBT(sender)), &r, err);
    if (rc == 0)
        rc = db_next(r, err);
    db_done(r);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return lark_err_set(err, LARK_EMEDIAPENDING, "media %s is not uploaded yet", id);
    return lark_err_set(err, LARK_EBADMEDIA, "no media %s of yours", id);
}

int op_media_link(struct db *d, const char *id, const char *conv, uint64_t seq,
                  struct lark_err *err)
{
    return db_exec(d, DB_MEDIA_LINK, DB_ARGS(DBT(id), DBT(conv), DBI(seq)), err);
}

static json_t *gone_pair(struct db_rows *r, void *ctx)
{
    (void)ctx;
    return json_pack("[ss]", db_text(r, 0), db_text(r, 1));
}

int op_media_expire(struct db *d, void *arg, struct lark_err *err)
{
    struct op_media_expire *ctx = arg;

    json_array_clear(ctx->gone); /* a retried transaction starts afresh */
    return op_collect(d, DB_MEDIA_EXPIRE, DB_ARGS(DBI(ctx->cutoff), DBI(ctx->limit)), gone_pair,
                      NULL, ctx->gone, err);
}

int op_media_get(struct db *d, const char *id, const char *user, struct store_media *out,
                 struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_MEDIA_GET, DB_ARGS(DBT(id), DBT(user)), &r, err);

    memset(out, 0, sizeof(*out));
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        out->id = xstrdup(db_text(r, 0));
        out->uploader = xstrdup(db_text(r, 1));
        out->ready = strcmp(db_text(r, 2), "ready") == 0;
        out->content_type = xstrdup(db_text(r, 3));
        out->size = db_int(r, 4);
        out->sha256 = xstrdup(db_text(r, 5));
        out->name = xstrdup(db_text(r, 6));
        out->skey = xstrdup(db_text(r, 7));
        out->upload_hash = xstrdup(db_text(r, 8));
        out->upload_expires_at = db_int(r, 9);
        out->created_at = db_int(r, 10);
        out->readable = *user && db_int(r, 11) != 0;
        rc = 0;
    } else if (rc == 0) {
        rc = lark_err_set(err, LARK_ENOTFOUND, "no such media");
    }
    db_done(r);
    return rc;
}

int op_media_usage(struct db *d, const char *user, int64_t *bytes, struct lark_err *err)
{
    int found = 0;
    *bytes = 0;
    return db_int1(d, DB_MEDIA_USAGE, DB_ARGS(DBT(user)), bytes, &found, err);
}

int op_media_key_used(struct db *d, const char *skey, int *used, struct lark_err *err)
{
    int64_t ignored = 0;
    return db_int1(d, DB_MEDIA_KEY_USED, DB_ARGS(DBT(skey)), &ignored, used, err);
}
