/*
 * store_ops.c - helpers shared by the operation files (store_ops_*.c):
 * rows to JSON, membership checks, appending events to inboxes (with the
 * notes the hub delivers from), lock order, the direct-chat key. They use
 * db.h and store_json.c only: no operation file calls another's
 * internals, and nothing here calls back into an operation.
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *op_row_msg(struct db_rows *r, int col)
{
    struct store_msg_row m;
    m.id = db_text(r, col);
    m.conversation_id = db_text(r, col + 1);
    m.seq = (uint64_t)db_int(r, col + 2);
    m.sender = db_text(r, col + 3);
    m.client_msg_id = db_text(r, col + 4);
    m.type = db_text(r, col + 5);
    m.body = db_text(r, col + 6);
    m.body_len = db_len(r, col + 6);
    m.meta = db_text(r, col + 7);
    m.created_at = db_int(r, col + 8);
    m.media = db_is_null(r, col + 9) ? NULL : db_text(r, col + 9);
    return store_msg_json(&m);
}

int op_collect(struct db *d, enum db_stmt id, const struct db_arg *args, int n,
               json_t *(*map)(struct db_rows *r, void *ctx), void *ctx, json_t *arr,
               struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_query(d, id, args, n, &r, err);
    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        json_push(arr, map(r, ctx));
        rc = 0;
    }
    db_done(r);
    return rc < 0 ? rc : 0;
}

json_t *op_col0(struct db_rows *r, void *ctx)
{
    (void)ctx;
    return json_string(db_text(r, 0));
}

char *op_json_list(const char *const *items, size_t n)
{
    json_t *arr = json_arr();
    char *text;
    for (size_t i = 0; i < n; i++)
        json_push(arr, json_string(items[i]));
    text = json_dump(arr, 0, NULL);
    json_decref(arr);
    return text;
}

int op_ensure_user(struct db *d, const char *user, int64_t now, struct lark_err *err)
{
    return db_exec(d, DB_USER_ENSURE, DB_ARGS(DBT(user), DBI(now)), err);
}

int op_add_member(struct db *d, const char *conv, const char *user, const char *role, int64_t now,
                  struct lark_err *err)
{
    int rc = op_ensure_user(d, user, now, err);
    if (rc)
        return rc;
    return db_exec(d, DB_MEMBER_INSERT, DB_ARGS(DBT(conv), DBT(user), DBT(role), DBI(0), DBI(now)),
                   err);
}

int op_check_member(struct db *d, const char *conv, const char *user, const char **role,
                    struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_MEMBER_ROLE, DB_ARGS(DBT(conv), DBT(user)), &r, err);

    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        if (role)
            *role = strcmp(db_text(r, 0), "admin") == 0 ? "admin" : "member";
        db_done(r);
        return 0;
    }
    db_done(r);
    if (rc < 0)
        return rc;
    rc = db_query(d, DB_CONV_TYPE, DB_ARGS(DBT(conv)), &r, err);
    if (rc == 0)
        rc = db_next(r, err);
    db_done(r);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return lark_err_set(err, LARK_ENOTMEMBER, "you are not a member of %s", conv);
    return lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv);
}

int op_fanout(struct db *d, const char *conv, const char *except, const char *type,
              uint64_t msg_seq, const char *payload, const char *data, int64_t now,
              struct lark_err *err)
{
    struct db_rows *r = NULL;
    struct evdata *ev;
    int rc = db_exec(d, DB_LOCK_MEMBERS, DB_ARGS(DBT(conv)), err);

    if (rc)
        return rc;
    if (!data)
        data = payload;
    /* rendered once for every member: the hub delivers it as it is */
    ev = evdata_new(type, data, strlen(data));
    rc = db_query(d, DB_INBOX_BUMP_MEMBERS, DB_ARGS(DBT(conv), DBT(except)), &r, err);
    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        struct store_note n = {.kind = STORE_NOTE_EVENT,
                               .user = db_text(r, 0),
                               .seq = (uint64_t)db_int(r, 1),
                               .data = ev};
        db_note(d, &n);
        rc = 0;
    }
    db_done(r);
    evdata_unref(ev);
    if (rc < 0)
        return rc;
    return db_exec(d, DB_INBOX_INSERT_MEMBERS,
                   DB_ARGS(DBT(conv), DBT(type), payload ? DBNULL : DBI(msg_seq), DBT(payload),
                           DBI(now), DBT(except)),
                   err);
}

int op_inbox_append(struct db *d, const char *user, const char *type, const char *conv,
                    const char *payload, int64_t now, struct lark_err *err)
{
    int64_t seq = 0;
    int found = 0;
    int rc = op_ensure_user(d, user, now, err);

    if (rc == 0)
        rc = db_int1(d, DB_INBOX_BUMP_USER, DB_ARGS(DBT(user)), &seq, &found, err);
    if (rc == 0 && !found)
        rc = lark_err_set(err, LARK_EINTERNAL, "no inbox for %s", user);
    if (rc == 0)
        rc = db_exec(d, DB_INBOX_INSERT,
                     DB_ARGS(DBT(user), DBI(seq), DBT(type), DBT(conv), DBT(payload), DBI(now)),
                     err);
    if (rc == 0) {
        struct store_note n = {.kind = STORE_NOTE_EVENT,
                               .user = user,
                               .seq = (uint64_t)seq,
                               .data = evdata_new(type, payload, strlen(payload))};
        db_note(d, &n);
        evdata_unref(n.data);
    }
    return rc;
}

char *op_receipt_payload(const char *conv, const char *user, const char *status, uint64_t up_to)
{
    json_t *r = json_obj();
    char *text;
    json_put(r, "conversation_id", json_string(conv));
    json_put(r, "user", json_string(user));
    json_put(r, "status", json_string(status));
    json_put(r, "up_to", json_integer((json_int_t)up_to));
    text = json_dump(r, 0, NULL);
    json_decref(r);
    return text;
}

int op_lock_users(struct db *d, json_t *ids, struct lark_err *err)
{
    char *text = json_dump(ids, 0, NULL);
    int rc = db_exec(d, DB_LOCK_USERS, DB_ARGS(DBT(text)), err);
    free(text);
    return rc;
}

char *store_direct_key(const char *a, const char *b)
{
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    return xasprintf("%s\n%s", a, b);
}
