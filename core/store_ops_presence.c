/*
 * store_ops_presence.c - who is online, once for every back end
 * (store_ops.h). Only transitions become notes for the hubs.
 *
 * Lists travel as one JSON-array parameter, so touching every connected
 * user of a process is three statements, not three per user.
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/json.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

int op_presence_touch(struct db *d, void *arg, struct lark_err *err)
{
    struct op_touch *ctx = arg;
    char *list = op_json_list(ctx->users, ctx->n);
    json_t *newly = json_arr(), *u;
    size_t i;
    int rc;

    /* who was not online before this touch: they come online now */
    if ((rc = db_exec(d, DB_PRESENCE_LOCK, DB_ARGS(DBT(list)), err)) ||
        (rc = op_collect(d, DB_PRESENCE_NEWLY_ONLINE, DB_ARGS(DBT(list)), op_col0, NULL, newly,
                         err)) ||
        (rc = db_exec(d, DB_PRESENCE_TOUCH, DB_ARGS(DBT(list), DBI(ctx->now)), err)))
        goto out;
    json_array_foreach (newly, i, u) {
        struct store_note n = {.kind = STORE_NOTE_PRESENCE,
                               .user = json_string_value(u),
                               .online = 1,
                               .last_seen = ctx->now};
        db_note(d, &n);
    }
out:
    json_decref(newly);
    free(list);
    return rc;
}

int op_presence_expire(struct db *d, void *arg, struct lark_err *err)
{
    const int64_t *cutoff = arg;
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_PRESENCE_EXPIRE, DB_ARGS(DBI(*cutoff)), &r, err);

    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        struct store_note n = {.kind = STORE_NOTE_PRESENCE,
                               .user = db_text(r, 0),
                               .online = 0,
                               .last_seen = db_int(r, 1)};
        db_note(d, &n);
        rc = 0;
    }
    db_done(r);
    return rc < 0 ? rc : 0;
}

int op_presence_visible(struct db *d, const char *viewer, const char *const *users, size_t n,
                        int *visible, struct lark_err *err)
{
    char *list = op_json_list(users, n);
    json_t *yes = json_arr();
    int rc = op_collect(d, DB_PRESENCE_VISIBLE, DB_ARGS(DBT(viewer), DBT(list)), op_col0, NULL, yes,
                        err);

    for (size_t i = 0; i < n; i++) {
        size_t j;
        json_t *u;
        visible[i] = 0;
        json_array_foreach (yes, j, u)
            visible[i] |= rc == 0 && strcmp(json_string_value(u), users[i]) == 0;
    }
    json_decref(yes);
    free(list);
    return rc;
}

int op_presence_get(struct db *d, const char *const *users, size_t n, json_t **out,
                    struct lark_err *err)
{
    json_t *obj = json_obj();

    for (size_t i = 0; i < n; i++) {
        struct db_rows *r = NULL;
        json_t *p = json_obj();
        int rc = db_query(d, DB_PRESENCE_GET, DB_ARGS(DBT(users[i])), &r, err);
        if (rc == 0 && (rc = db_next(r, err)) == 1) {
            char ts[TIME_RFC3339_LEN];
            time_rfc3339(db_int(r, 1), ts);
            json_put(p, "status", json_string(db_int(r, 0) ? "online" : "offline"));
            json_put(p, "last_seen", json_string(ts));
        } else {
            json_put(p, "status", json_string("offline"));
            json_put(p, "last_seen", json_null());
        }
        db_done(r);
        json_put(obj, users[i], p);
        if (rc < 0) {
            json_decref(obj);
            return rc;
        }
    }
    *out = obj;
    return 0;
}
