/*
 * store_ops_conv.c - groups, membership, conversation lists and read
 * positions, once for every back end (store_ops.h).
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/store_impl.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading conversations ------------------------------------------------ */

static json_t *member_of_row(struct db_rows *r, void *detail)
{
    return store_member_json(db_text(r, 0), db_text(r, 1), (uint64_t)db_int(r, 2),
                             (uint64_t)db_int(r, 3), detail != NULL);
}

/* The members of conv as member objects (detail: with their positions). */
static int member_list(struct db *d, const char *conv, int detail, json_t **out,
                       struct lark_err *err)
{
    json_t *arr = json_arr();
    int rc =
        op_collect(d, DB_MEMBERS, DB_ARGS(DBT(conv)), member_of_row, detail ? arr : NULL, arr, err);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* The newest message of conv (NULL if none) and user's unread count. */
static int conv_activity(struct db *d, const char *conv, const char *user, json_t **last,
                         uint64_t *unread, struct lark_err *err)
{
    struct db_rows *r = NULL;
    int64_t read_seq = 0, count = 0;
    int found = 0;
    int rc = db_query(d, DB_MSG_LAST, DB_ARGS(DBT(conv)), &r, err);

    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        *last = op_row_msg(r, 0);
        rc = 0;
    }
    db_done(r);
    if (rc == 0) /* not a member: nothing read */
        rc = db_int1(d, DB_MEMBER_READ_GET, DB_ARGS(DBT(conv), DBT(user)), &read_seq, &found, err);
    if (rc == 0)
        rc = db_int1(d, DB_UNREAD, DB_ARGS(DBT(conv), DBI(read_seq), DBT(user)), &count, &found,
                     err);
    *unread = (uint64_t)count;
    return rc;
}

/* The conversation object of conv as user sees it (no membership check). */
static int conv_json(struct db *d, const char *conv, const char *user, int detail, json_t **out,
                     struct lark_err *err)
{
    struct db_rows *r = NULL;
    json_t *members = NULL, *last = NULL;
    uint64_t unread = 0;
    int rc;

    *out = NULL;
    if ((rc = member_list(d, conv, detail, &members, err)) ||
        (rc = conv_activity(d, conv, user, &last, &unread, err)) ||
        (rc = db_query(d, DB_CONV_GET, DB_ARGS(DBT(conv)), &r, err)))
        goto fail;
    if ((rc = db_next(r, err)) == 1) {
        *out = store_conversation_json(db_text(r, 0), db_text(r, 1),
                                       db_is_null(r, 2) ? NULL : db_text(r, 2), db_text(r, 3),
                                       db_int(r, 4), (uint64_t)db_int(r, 5), last, unread, members);
        db_done(r);
        return 0;
    }
    if (rc == 0)
        rc = lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv);
fail:
    db_done(r);
    json_decref(members);
    json_decref(last);
    return rc;
}

int op_conversation_get(struct db *d, const char *user, const char *conv, json_t **out,
                        struct lark_err *err)
{
    int rc = op_check_member(d, conv, user, NULL, err);
    return rc ? rc : conv_json(d, conv, user, 1, out, err);
}

/* Up to limit + 1 conversation ids of user, newest activity first,
 * after before_id (NULL: from the newest). */
static int conv_ids(struct db *d, const char *user, const char *before_id, unsigned limit,
                    json_t *ids, struct lark_err *err)
{
    int64_t activity = 0;
    int found = 0;
    int rc;

    if (!before_id)
        return op_collect(d, DB_CONV_LIST, DB_ARGS(DBT(user), DBI(limit + 1)), op_col0, NULL, ids,
                          err);
    /* a cursor is a conversation of the caller's: page after it */
    if ((rc = op_check_member(d, before_id, user, NULL, err)) ||
        (rc = db_int1(d, DB_CONV_ACTIVITY, DB_ARGS(DBT(before_id)), &activity, &found, err)))
        return rc;
    return op_collect(d, DB_CONV_LIST_AFTER,
                      DB_ARGS(DBT(user), DBI(limit + 1), DBI(activity), DBT(before_id)), op_col0,
                      NULL, ids, err);
}

int op_conversation_list(struct db *d, const char *user, const char *before_id, unsigned limit,
                         json_t **list, int *has_more, struct lark_err *err)
{
    json_t *ids = json_arr(), *arr = json_arr(), *id;
    size_t i;
    int rc = conv_ids(d, user, before_id, limit, ids, err);

    if (rc)
        goto out;
    *has_more = json_array_size(ids) > limit;
    json_array_foreach (ids, i, id) {
        json_t *conv;
        if (i == limit)
            break;
        if ((rc = conv_json(d, json_string_value(id), user, 0, &conv, err)))
            goto out;
        json_push(arr, conv);
    }
    *list = arr;
    arr = NULL;
out:
    json_decref(ids);
    json_decref(arr);
    return rc;
}

int op_members(struct db *d, const char *user, const char *conv, json_t **members,
               struct lark_err *err)
{
    json_t *arr;
    int rc = op_check_member(d, conv, user, NULL, err);

    if (rc)
        return rc;
    arr = json_arr();
    rc = op_collect(d, DB_MEMBERS, DB_ARGS(DBT(conv)), op_col0, NULL, arr, err);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *members = arr;
    return 0;
}

/* ---- groups ---------------------------------------------------------------- */

/* A payload {conversation_id, action, ...extra}; extra is taken. */
static char *event_payload(const char *conv, const char *action, json_t *extra)
{
    json_t *p = extra ? extra : json_obj();
    char *text;
    json_put(p, "conversation_id", json_string(conv));
    json_put(p, "action", json_string(action));
    text = json_dump(p, 0, NULL);
    json_decref(p);
    return text;
}

int op_group_create(struct db *d, void *arg, struct lark_err *err)
{
    struct op_group *ctx = arg;
    const struct store_group_in *in = ctx->in;
    int64_t now = time_now_ms();
    char conv[IDS_CONV_LEN];
    json_t *extra;
    char *payload;
    int rc;

    json_decref(*ctx->conv); /* a retried transaction starts afresh */
    *ctx->conv = NULL;
    if (in->nmembers + 1 > in->max_members)
        return lark_err_set(err, LARK_EGROUPFULL, "a group has at most %u members",
                            in->max_members);
    ids_conversation(now, conv);
    rc = db_exec(d, DB_CONV_INSERT,
                 DB_ARGS(DBT(conv), DBT("group"), DBT(in->title), DBNULL, DBT(in->creator),
                         DBI(now), DBI(in->nmembers + 1)),
                 err);
    if (rc == 0)
        rc = op_add_member(d, conv, in->creator, "admin", now, err);
    for (size_t i = 0; rc == 0 && i < in->nmembers; i++)
        rc = op_add_member(d, conv, in->members[i], "member", now, err);
    if (rc == 0)
        rc = conv_json(d, conv, in->creator, 0, ctx->conv, err);
    if (rc)
        return rc;
    /* every member learns of the group from its own inbox: what it is, not
     * who is in it (a list of 500 members in 500 inboxes was 8 MB per
     * request, issue 13); clients ask GET /v1/conversations/{id} */
    extra = json_obj();
    json_put(extra, "type", json_string("group"));
    json_put(extra, "title", in->title ? json_string(in->title) : json_null());
    json_put(extra, "by", json_string(in->creator));
    json_put(extra, "member_count", json_integer((json_int_t)in->nmembers + 1));
    payload = event_payload(conv, "created", extra);
    rc = op_fanout(d, conv, NULL, "conversation", 0, payload, NULL, now, err);
    free(payload);
    return rc;
}

/* ---- membership -------------------------------------------------------------- */

/* The conversation's type, title (a new JSON string or null) and member
 * count; LARK_ENOTFOUND. */
static int conv_info(struct db *d, const char *conv, char type[8], json_t **title, int64_t *count,
                     struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_CONV_GET, DB_ARGS(DBT(conv)), &r, err);
    *title = NULL;
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        snprintf(type, 8, "%s", db_text(r, 1));
        *title = db_is_null(r, 2) ? json_null() : json_stringn(db_text(r, 2), db_len(r, 2));
        *count = db_int(r, 6);
        rc = 0;
    } else if (rc == 0) {
        rc = lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv);
    }
    db_done(r);
    return rc;
}

/* Tell every member of conv that user was added/removed/left (by actor):
 * the member concerned, the title and the count after the change (taken),
 * never the member list (store.h). */
static int member_event(struct db *d, const char *conv, const char *user, const char *action,
                        const char *actor, json_t *title, int64_t count, int64_t now,
                        struct lark_err *err)
{
    json_t *extra = json_obj();
    char *payload;
    int rc;
    json_put(extra, "user", json_string(user));
    json_put(extra, "by", json_string(actor));
    json_put(extra, "title", title);
    json_put(extra, "member_count", json_integer((json_int_t)count));
    payload = event_payload(conv, action, extra);
    rc = op_fanout(d, conv, NULL, "member", 0, payload, NULL, now, err);
    free(payload);
    return rc;
}

int op_member_add(struct db *d, void *arg, struct lark_err *err)
{
    struct op_member *ctx = arg;
    int64_t now = time_now_ms(), count = 0;
    const char *role = NULL;
    json_t *title = NULL;
    char type[8];
    int rc;

    *ctx->added = 0;
    if ((rc = conv_info(d, ctx->conv, type, &title, &count, err)) ||
        (rc = op_check_member(d, ctx->conv, ctx->actor, &role, err)))
        goto out;
    if (strcmp(type, "group") != 0) {
        rc = lark_err_set(err, LARK_EFORBIDDEN, "a direct chat has no members to add");
        goto out;
    }
    if (strcmp(role, "admin") != 0) {
        rc = lark_err_set(err, LARK_EFORBIDDEN, "only an admin adds members");
        goto out;
    }
    rc = op_check_member(d, ctx->conv, ctx->user, NULL, err);
    if (rc == 0 || rc != LARK_ENOTMEMBER)
        goto out; /* 0: already a member, nothing changes */
    if (count + 1 > (int64_t)ctx->max_members) {
        rc = lark_err_set(err, LARK_EGROUPFULL, "the group has its %u members already",
                          ctx->max_members);
        goto out;
    }
    if ((rc = op_add_member(d, ctx->conv, ctx->user, "member", now, err)) ||
        (rc = db_exec(d, DB_CONV_COUNT_ADD, DB_ARGS(DBT(ctx->conv), DBI(1)), err)))
        goto out;
    rc = member_event(d, ctx->conv, ctx->user, "added", ctx->actor, title, count + 1, now, err);
    title = NULL;
    if (rc == 0)
        *ctx->added = 1;
out:
    json_decref(title);
    return rc;
}

/* After an admin left: if no admin remains, promote the longest-standing
 * member, so that a group never loses its last admin. */
static int keep_an_admin(struct db *d, const char *conv, struct lark_err *err)
{
    int64_t admins = 0;
    int found = 0;
    int rc = db_int1(d, DB_MEMBER_ADMINS, DB_ARGS(DBT(conv)), &admins, &found, err);
    if (rc || admins > 0)
        return rc;
    return db_exec(d, DB_MEMBER_PROMOTE, DB_ARGS(DBT(conv)), err);
}

int op_member_remove(struct db *d, void *arg, struct lark_err *err)
{
    struct op_member *ctx = arg;
    int self = strcmp(ctx->actor, ctx->user) == 0;
    const char *actor_role = NULL, *user_role = NULL;
    int64_t now = time_now_ms(), count = 0;
    json_t *title = NULL;
    char type[8];
    int rc;

    if ((rc = conv_info(d, ctx->conv, type, &title, &count, err)) ||
        (rc = op_check_member(d, ctx->conv, ctx->actor, &actor_role, err)))
        goto fail;
    if (strcmp(type, "group") != 0) {
        rc = lark_err_set(err, LARK_EFORBIDDEN, "nobody leaves a direct chat");
        goto fail;
    }
    if (!self && strcmp(actor_role, "admin") != 0) {
        rc = lark_err_set(err, LARK_EFORBIDDEN, "only an admin removes other members");
        goto fail;
    }
    rc = op_check_member(d, ctx->conv, ctx->user, &user_role, err);
    if (rc == LARK_ENOTMEMBER)
        rc = lark_err_set(err, LARK_ENOTFOUND, "%s is not a member", ctx->user);
    if (rc)
        goto fail;
    /* the one leaving is told too: the event goes out before the delete */
    if ((rc = member_event(d, ctx->conv, ctx->user, self ? "left" : "removed", ctx->actor, title,
                           count - 1, now, err)) ||
        (rc = db_exec(d, DB_MEMBER_DELETE, DB_ARGS(DBT(ctx->conv), DBT(ctx->user)), err)) ||
        (rc = db_exec(d, DB_CONV_COUNT_ADD, DB_ARGS(DBT(ctx->conv), DBI(-1)), err)))
        return rc;
    return strcmp(user_role, "admin") == 0 ? keep_an_admin(d, ctx->conv, err) : 0;
fail:
    json_decref(title);
    return rc;
}

/* ---- read receipts ------------------------------------------------------------ */

int op_read(struct db *d, void *arg, struct lark_err *err)
{
    struct op_read *ctx = arg;
    int64_t old = 0, last = 0, now = time_now_ms();
    char *payload;
    uint64_t to;
    int found = 0;
    int rc;

    if ((rc = op_check_member(d, ctx->conv, ctx->user, NULL, err)) ||
        (rc = db_int1(d, DB_MEMBER_READ_GET, DB_ARGS(DBT(ctx->conv), DBT(ctx->user)), &old, &found,
                      err)) ||
        (rc = db_int1(d, DB_MSG_LAST_SEQ, DB_ARGS(DBT(ctx->conv)), &last, &found, err)))
        return rc;
    to = ctx->seq < (uint64_t)last ? ctx->seq : (uint64_t)last;
    *ctx->read_seq = (uint64_t)old > to ? (uint64_t)old : to;
    if (to <= (uint64_t)old)
        return 0;
    /* API.md: a read receipt to the other members */
    payload = op_receipt_payload(ctx->conv, ctx->user, "read", to);
    rc = op_fanout(d, ctx->conv, ctx->user, "receipt", 0, payload, NULL, now, err);
    free(payload);
    if (rc == 0)
        rc = db_exec(d, DB_MEMBER_READ_SET, DB_ARGS(DBT(ctx->conv), DBT(ctx->user), DBI(to)), err);
    return rc;
}
