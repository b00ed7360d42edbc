/*
 * store_sqlite_presence.c - SQLite: who is online (store.h has the
 * contracts). The transitions, and only they, become notes for the hub.
 */
#include "core/store_sqlite_int.h"

#include "core/err.h"
#include "core/json.h"
#include "core/timeutil.h"

#include <string.h>

struct sq_touch_ctx {
    const char *const *users;
    size_t n;
    int64_t now;
};

static int sq_touch_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_touch_ctx *ctx = arg;

    for (size_t i = 0; i < ctx->n; i++) {
        sqlite3_stmt *st = sq_stmt(w, SQ_PRESENCE_GET);
        int was_online = 0, rc;
        if (!st)
            return sq_fail_prepare(w, err);
        sq_bind_text(st, 1, ctx->users[i]);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW)
            was_online = sqlite3_column_int(st, 0);
        sq_done(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return sq_fail(w->db, rc, err, "presence");
        if (!(st = sq_stmt(w, SQ_PRESENCE_UPSERT)))
            return sq_fail_prepare(w, err);
        sq_bind_text(st, 1, ctx->users[i]);
        sqlite3_bind_int64(st, 2, ctx->now);
        rc = sqlite3_step(st);
        sq_done(st);
        if (rc != SQLITE_DONE)
            return sq_fail(w->db, rc, err, "touch presence");
        if (!was_online) {
            struct store_note n = {.kind = STORE_NOTE_PRESENCE,
                                   .user = ctx->users[i],
                                   .online = 1,
                                   .last_seen = ctx->now};
            sq_note(w, &n);
        }
    }
    return 0;
}

int sq_presence_touch(struct store_conn *base, const char *const *users, size_t n, int64_t now,
                      struct lark_err *err)
{
    struct sq_touch_ctx ctx = {users, n, now};
    return sq_write((struct sq_store *)base->store, sq_touch_op, &ctx, err);
}

static int sq_expire_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    const int64_t *cutoff = arg;
    sqlite3_stmt *st = sq_stmt(w, SQ_PRESENCE_EXPIRE);
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sqlite3_bind_int64(st, 1, *cutoff);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_note n = {.kind = STORE_NOTE_PRESENCE,
                               .user = sq_col_text(st, 0),
                               .online = 0,
                               .last_seen = sqlite3_column_int64(st, 1)};
        sq_note(w, &n);
    }
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "expire presence");
}

int sq_presence_expire(struct store_conn *base, int64_t cutoff, struct lark_err *err)
{
    return sq_write((struct sq_store *)base->store, sq_expire_op, &cutoff, err);
}

int sq_presence_get(struct store_conn *base, const char *const *users, size_t n, json_t **out,
                    struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    json_t *obj = json_obj();

    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = sq_stmt(&c->rd, SQ_PRESENCE_GET);
        json_t *p = json_obj();
        int rc;
        if (!st) {
            json_decref(p);
            json_decref(obj);
            return sq_fail_prepare(&c->rd, err);
        }
        sq_bind_text(st, 1, users[i]);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            char ts[TIME_RFC3339_LEN];
            time_rfc3339(sqlite3_column_int64(st, 1), ts);
            json_put(p, "status", json_string(sqlite3_column_int(st, 0) ? "online" : "offline"));
            json_put(p, "last_seen", json_string(ts));
        } else {
            json_put(p, "status", json_string("offline"));
            json_put(p, "last_seen", json_null());
        }
        sq_done(st);
        json_put(obj, users[i], p);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            json_decref(obj);
            return sq_fail(c->rd.db, rc, err, "read presence");
        }
    }
    *out = obj;
    return 0;
}
