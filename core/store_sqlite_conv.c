/*
 * store_sqlite_conv.c - SQLite: groups, membership, conversation lists and
 * read positions (store.h has the contracts).
 */
#include "core/store_sqlite_int.h"

#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading conversations --------------------------------------------- */

/* The members of conv as a JSON array of member objects. */
static int sq_member_list(struct sq_db *d, const char *conv, int detail, json_t **out,
                          struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, SQ_MEMBERS);
    json_t *arr;
    int rc;

    *out = NULL;
    if (!st)
        return sq_fail_prepare(d, err);
    arr = json_arr();
    sq_bind_text(st, 1, conv);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_push(arr, store_member_json(sq_col_text(st, 0), sq_col_text(st, 1),
                                         (uint64_t)sqlite3_column_int64(st, 2),
                                         (uint64_t)sqlite3_column_int64(st, 3), detail));
    sq_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return sq_fail(d->db, rc, err, "list members");
    }
    *out = arr;
    return 0;
}

/* The newest message of conv (NULL if none) and user's unread count. */
static int sq_conv_activity(struct sq_db *d, const char *conv, const char *user, json_t **last,
                            uint64_t *unread, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, SQ_MSG_LAST);
    uint64_t read_seq = 0;
    int rc;

    *last = NULL;
    *unread = 0;
    if (!st)
        return sq_fail_prepare(d, err);
    sq_bind_text(st, 1, conv);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *last = sq_row_msg(st, 0);
    sq_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(d->db, rc, err, "last message");
    if (!(st = sq_stmt(d, SQ_MEMBER_READ_GET)))
        return sq_fail_prepare(d, err);
    sq_bind_text(st, 1, conv);
    sq_bind_text(st, 2, user);
    if (sqlite3_step(st) == SQLITE_ROW) /* not a member: nothing read */
        read_seq = (uint64_t)sqlite3_column_int64(st, 0);
    sq_done(st);
    if (!(st = sq_stmt(d, SQ_UNREAD)))
        return sq_fail_prepare(d, err);
    sq_bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, sq_u2i(read_seq));
    sq_bind_text(st, 3, user);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *unread = (uint64_t)sqlite3_column_int64(st, 0);
    sq_done(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(d->db, rc, err, "unread count");
}

/* The conversation object of conv as user sees it (no membership check). */
static int sq_conv_json(struct sq_db *d, const char *conv, const char *user, int detail,
                        json_t **out, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, SQ_CONV_GET);
    json_t *members = NULL, *last = NULL;
    uint64_t unread = 0;
    int rc;

    *out = NULL;
    if (!st)
        return sq_fail_prepare(d, err);
    if ((rc = sq_member_list(d, conv, detail, &members, err)) ||
        (rc = sq_conv_activity(d, conv, user, &last, &unread, err)))
        goto fail;
    sq_bind_text(st, 1, conv);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *title = sqlite3_column_text(st, 2);
        *out = store_conversation_json(
            sq_col_text(st, 0), sq_col_text(st, 1), title ? (const char *)title : NULL,
            sq_col_text(st, 3), sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5),
            last, unread, members);
        sq_done(st);
        return 0;
    }
    sq_done(st);
    rc = rc == SQLITE_DONE ? lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv)
                           : sq_fail(d->db, rc, err, "read conversation");
fail:
    json_decref(members);
    json_decref(last);
    return rc;
}

int sq_conversation_get(struct store_conn *base, const char *user, const char *conv, json_t **out,
                        struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    int rc = sq_check_member(&c->rd, conv, user, NULL, err);
    return rc ? rc : sq_conv_json(&c->rd, conv, user, 1, out, err);
}

int sq_conversation_list(struct store_conn *base, const char *user, const char *before_id,
                         unsigned limit, json_t **list, int *has_more, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st;
    json_t *ids = json_arr(), *arr = json_arr();
    int64_t before_activity = 0;
    size_t i;
    json_t *id;
    int rc;

    if (before_id) {
        /* a cursor is a conversation of the caller's: page after it */
        rc = sq_check_member(&c->rd, before_id, user, NULL, err);
        if (rc)
            goto out;
        if (!(st = sq_stmt(&c->rd, SQ_CONV_ACTIVITY))) {
            rc = sq_fail_prepare(&c->rd, err);
            goto out;
        }
        sq_bind_text(st, 1, before_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            before_activity = sqlite3_column_int64(st, 0);
        sq_done(st);
    }
    st = sq_stmt(&c->rd, before_id ? SQ_CONV_LIST_AFTER : SQ_CONV_LIST);
    if (!st) {
        rc = sq_fail_prepare(&c->rd, err);
        goto out;
    }
    sq_bind_text(st, 1, user);
    sqlite3_bind_int(st, 2, (int)limit + 1); /* one more tells has_more */
    if (before_id) {
        sqlite3_bind_int64(st, 3, before_activity);
        sq_bind_text(st, 4, before_id);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_push(ids, json_string(sq_col_text(st, 0)));
    sq_done(st);
    if (rc != SQLITE_DONE) {
        rc = sq_fail(c->rd.db, rc, err, "list conversations");
        goto out;
    }
    rc = 0;
    *has_more = json_array_size(ids) > limit;
    json_array_foreach (ids, i, id) {
        json_t *conv;
        if (i == limit)
            break;
        rc = sq_conv_json(&c->rd, json_string_value(id), user, 0, &conv, err);
        if (rc)
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

int sq_members(struct store_conn *base, const char *user, const char *conv, json_t **members,
               struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st;
    json_t *arr;
    int rc = sq_check_member(&c->rd, conv, user, NULL, err);

    if (rc)
        return rc;
    if (!(st = sq_stmt(&c->rd, SQ_MEMBERS)))
        return sq_fail_prepare(&c->rd, err);
    arr = json_arr();
    sq_bind_text(st, 1, conv);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_push(arr, json_string(sq_col_text(st, 0)));
    sq_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return sq_fail(c->rd.db, rc, err, "list members");
    }
    *members = arr;
    return 0;
}

/* ---- groups ----------------------------------------------------------- */

struct sq_group_ctx {
    const struct store_group_in *in;
    json_t **conv;
};

/* A payload {conversation_id, action, ...extra}; extra is taken. */
static char *sq_event_payload(const char *conv, const char *action, json_t *extra)
{
    json_t *p = extra ? extra : json_obj();
    char *text;
    json_put(p, "conversation_id", json_string(conv));
    json_put(p, "action", json_string(action));
    text = json_dump(p, 0, NULL);
    json_decref(p);
    return text;
}

static int sq_group_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_group_ctx *ctx = arg;
    const struct store_group_in *in = ctx->in;
    int64_t now = time_now_ms();
    char conv[IDS_CONV_LEN];
    sqlite3_stmt *st;
    json_t *extra;
    char *payload;
    int rc;

    if (in->nmembers + 1 > in->max_members)
        return lark_err_set(err, LARK_EGROUPFULL, "a group has at most %u members",
                            in->max_members);
    ids_conversation(now, conv);
    if (!(st = sq_stmt(w, SQ_CONV_INSERT)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    sq_bind_text(st, 2, "group");
    sq_bind_text(st, 3, in->title);
    sq_bind_text(st, 4, NULL);
    sq_bind_text(st, 5, in->creator);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, (int64_t)in->nmembers + 1);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "create group");
    rc = sq_add_member(w, conv, in->creator, "admin", 0, now, err);
    for (size_t i = 0; rc == 0 && i < in->nmembers; i++)
        rc = sq_add_member(w, conv, in->members[i], "member", 0, now, err);
    if (rc == 0)
        rc = sq_conv_json(w, conv, in->creator, 0, ctx->conv, err);
    if (rc)
        return rc;
    /* every member learns of the group from its own inbox */
    extra = json_obj();
    json_put(extra, "conversation", json_incref(*ctx->conv));
    payload = sq_event_payload(conv, "created", extra);
    rc = sq_fanout(w, conv, "conversation", 0, payload, now, err);
    free(payload);
    return rc;
}

int sq_group_create(struct store_conn *base, const struct store_group_in *in, json_t **conv,
                    struct lark_err *err)
{
    struct sq_group_ctx ctx = {in, conv};
    int rc = sq_write((struct sq_store *)base->store, sq_group_op, &ctx, err);
    if (rc) {
        json_decref(*conv);
        *conv = NULL;
    }
    return rc;
}

/* ---- membership ------------------------------------------------------- */

struct sq_member_ctx {
    const char *actor, *conv, *user;
    unsigned max_members;
    int *added;
};

/* The conversation's type ("direct"/"group") into type; LARK_ENOTFOUND. */
static int sq_conv_type(struct sq_db *d, const char *conv, char type[8], struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, SQ_CONV_EXISTS);
    int rc;
    if (!st)
        return sq_fail_prepare(d, err);
    sq_bind_text(st, 1, conv);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(type, 8, "%s", sq_col_text(st, 0));
    sq_done(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv)
                             : sq_fail(d->db, rc, err, "find conversation");
}

/* The member_count of conv. */
static int sq_member_count(struct sq_db *w, const char *conv, int64_t *count, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_CONV_GET);
    int rc;
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 6) : 0;
    sq_done(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(w->db, rc, err, "member count");
}

static int sq_count_add(struct sq_db *w, const char *conv, int delta, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_CONV_COUNT_ADD);
    int rc;
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    sqlite3_bind_int(st, 2, delta);
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "member count");
}

/* Tell every member of conv that user was added/removed/left (by actor). */
static int sq_member_event(struct sq_db *w, const char *conv, const char *user, const char *action,
                           const char *actor, int64_t now, struct lark_err *err)
{
    json_t *extra = json_obj();
    char *payload;
    int rc;
    json_put(extra, "user", json_string(user));
    json_put(extra, "by", json_string(actor));
    payload = sq_event_payload(conv, action, extra);
    rc = sq_fanout(w, conv, "member", 0, payload, now, err);
    free(payload);
    return rc;
}

static int sq_member_add_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_member_ctx *ctx = arg;
    int64_t now = time_now_ms(), count = 0;
    const char *role = NULL;
    char type[8];
    int rc;

    if ((rc = sq_conv_type(w, ctx->conv, type, err)) ||
        (rc = sq_check_member(w, ctx->conv, ctx->actor, &role, err)))
        return rc;
    if (strcmp(type, "group") != 0)
        return lark_err_set(err, LARK_EFORBIDDEN, "a direct chat has no members to add");
    if (strcmp(role, "admin") != 0)
        return lark_err_set(err, LARK_EFORBIDDEN, "only an admin adds members");
    if (sq_check_member(w, ctx->conv, ctx->user, NULL, err) == 0)
        return 0; /* already a member: nothing changes */
    if ((rc = sq_member_count(w, ctx->conv, &count, err)))
        return rc;
    if (count + 1 > (int64_t)ctx->max_members)
        return lark_err_set(err, LARK_EGROUPFULL, "the group has its %u members already",
                            ctx->max_members);
    if ((rc = sq_add_member(w, ctx->conv, ctx->user, "member", 0, now, err)) ||
        (rc = sq_count_add(w, ctx->conv, 1, err)) ||
        (rc = sq_member_event(w, ctx->conv, ctx->user, "added", ctx->actor, now, err)))
        return rc;
    *ctx->added = 1;
    return 0;
}

int sq_member_add(struct store_conn *base, const char *actor, const char *conv, const char *user,
                  unsigned max_members, int *added, struct lark_err *err)
{
    struct sq_member_ctx ctx = {actor, conv, user, max_members, added};
    return sq_write((struct sq_store *)base->store, sq_member_add_op, &ctx, err);
}

/* After an admin left: if no admin remains, promote the longest-standing
 * member, so that a group never loses its last admin. */
static int sq_keep_an_admin(struct sq_db *w, const char *conv, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_MEMBER_ADMINS);
    int64_t admins = 0;
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        admins = sqlite3_column_int64(st, 0);
    sq_done(st);
    if (rc != SQLITE_ROW)
        return sq_fail(w->db, rc, err, "count admins");
    if (admins > 0)
        return 0;
    if (!(st = sq_stmt(w, SQ_MEMBER_PROMOTE)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "promote admin");
}

static int sq_member_remove_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_member_ctx *ctx = arg;
    int self = strcmp(ctx->actor, ctx->user) == 0;
    const char *actor_role = NULL, *user_role = NULL;
    int64_t now = time_now_ms();
    sqlite3_stmt *st;
    char type[8];
    int rc;

    if ((rc = sq_conv_type(w, ctx->conv, type, err)) ||
        (rc = sq_check_member(w, ctx->conv, ctx->actor, &actor_role, err)))
        return rc;
    if (strcmp(type, "group") != 0)
        return lark_err_set(err, LARK_EFORBIDDEN, "nobody leaves a direct chat");
    if (!self && strcmp(actor_role, "admin") != 0)
        return lark_err_set(err, LARK_EFORBIDDEN, "only an admin removes other members");
    if (sq_check_member(w, ctx->conv, ctx->user, &user_role, err) != 0)
        return lark_err_set(err, LARK_ENOTFOUND, "%s is not a member", ctx->user);
    /* the one leaving is told too: the event goes out before the delete */
    rc = sq_member_event(w, ctx->conv, ctx->user, self ? "left" : "removed", ctx->actor, now, err);
    if (rc)
        return rc;
    if (!(st = sq_stmt(w, SQ_MEMBER_DELETE)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, ctx->conv);
    sq_bind_text(st, 2, ctx->user);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "remove member");
    if ((rc = sq_count_add(w, ctx->conv, -1, err)))
        return rc;
    return strcmp(user_role, "admin") == 0 ? sq_keep_an_admin(w, ctx->conv, err) : 0;
}

int sq_member_remove(struct store_conn *base, const char *actor, const char *conv, const char *user,
                     struct lark_err *err)
{
    struct sq_member_ctx ctx = {actor, conv, user, 0, NULL};
    return sq_write((struct sq_store *)base->store, sq_member_remove_op, &ctx, err);
}

/* ---- read receipts ---------------------------------------------------- */

struct sq_read_ctx {
    const char *user, *conv;
    uint64_t seq;
    uint64_t *read_seq;
};

static int sq_read_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_read_ctx *ctx = arg;
    json_t *senders = NULL;
    sqlite3_stmt *st;
    uint64_t old = 0, last = 0, to;
    int64_t now = time_now_ms();
    size_t i;
    json_t *s;
    int rc;

    if ((rc = sq_check_member(w, ctx->conv, ctx->user, NULL, err)))
        return rc;
    if (!(st = sq_stmt(w, SQ_MEMBER_READ_GET)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, ctx->conv);
    sq_bind_text(st, 2, ctx->user);
    if (sqlite3_step(st) == SQLITE_ROW)
        old = (uint64_t)sqlite3_column_int64(st, 0);
    sq_done(st);
    if (!(st = sq_stmt(w, SQ_CONV_GET)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, ctx->conv);
    if (sqlite3_step(st) == SQLITE_ROW)
        last = (uint64_t)sqlite3_column_int64(st, 5);
    sq_done(st);
    to = ctx->seq < last ? ctx->seq : last;
    *ctx->read_seq = old > to ? old : to;
    if (to <= old)
        return 0;
    /* receipts to the senders of what was just read */
    if (!(st = sq_stmt(w, SQ_READ_SENDERS)))
        return sq_fail_prepare(w, err);
    senders = json_arr();
    sq_bind_text(st, 1, ctx->conv);
    sqlite3_bind_int64(st, 2, sq_u2i(old));
    sqlite3_bind_int64(st, 3, sq_u2i(to));
    sq_bind_text(st, 4, ctx->user);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_push(senders, json_string(sq_col_text(st, 0)));
    sq_done(st);
    rc = rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "read senders");
    json_array_foreach (senders, i, s) {
        char *payload;
        if (rc)
            break;
        payload = sq_receipt_payload(ctx->conv, ctx->user, "read", to);
        rc = sq_inbox_append(w, json_string_value(s), "receipt", ctx->conv, payload, now, err);
        free(payload);
    }
    json_decref(senders);
    if (rc)
        return rc;
    if (!(st = sq_stmt(w, SQ_MEMBER_READ_SET)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, ctx->conv);
    sq_bind_text(st, 2, ctx->user);
    sqlite3_bind_int64(st, 3, sq_u2i(to));
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "set read position");
}

int sq_read(struct store_conn *base, const char *user, const char *conv, uint64_t seq,
            uint64_t *read_seq, struct lark_err *err)
{
    struct sq_read_ctx ctx = {user, conv, seq, read_seq};
    return sq_write((struct sq_store *)base->store, sq_read_op, &ctx, err);
}
