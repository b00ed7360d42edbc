/*
 * store_sqlite_msg.c - SQLite: sending, history, inboxes, acknowledgement
 * and delivery receipts (store.h has the contracts).
 */
#include "core/store_sqlite_int.h"

#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- send ------------------------------------------------------------- */

struct sq_send_ctx {
    const struct store_send_in *in;
    struct store_send_out *out;
};

int sq_ensure_user(struct sq_db *w, const char *user, int64_t now, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_USER_ENSURE);
    int rc;
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, now);
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "ensure user");
}

int sq_add_member(struct sq_db *w, const char *conv, const char *user, const char *role,
                  uint64_t joined_seq, int64_t now, struct lark_err *err)
{
    sqlite3_stmt *st;
    int rc = sq_ensure_user(w, user, now, err);
    if (rc)
        return rc;
    st = sq_stmt(w, SQ_MEMBER_INSERT);
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    sq_bind_text(st, 2, user);
    sq_bind_text(st, 3, role);
    sqlite3_bind_int64(st, 4, sq_u2i(joined_seq));
    sqlite3_bind_int64(st, 5, now);
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "insert member");
}

/* The direct conversation of sender and peer, created if new. */
static int sq_direct_conv(struct sq_db *w, const char *sender, const char *peer, int64_t now,
                          char conv[IDS_CONV_LEN], struct lark_err *err)
{
    char *key = store_direct_key(sender, peer);
    sqlite3_stmt *st = sq_stmt(w, SQ_CONV_BY_DIRECT);
    int rc;

    if (!st) {
        rc = sq_fail_prepare(w, err);
        goto out;
    }
    sq_bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(conv, IDS_CONV_LEN, "%s", sq_col_text(st, 0));
        sq_done(st);
        rc = 0;
        goto out;
    }
    sq_done(st);
    if (rc != SQLITE_DONE) {
        rc = sq_fail(w->db, rc, err, "find direct conversation");
        goto out;
    }
    ids_conversation(now, conv);
    st = sq_stmt(w, SQ_CONV_INSERT);
    if (!st) {
        rc = sq_fail_prepare(w, err);
        goto out;
    }
    sq_bind_text(st, 1, conv);
    sq_bind_text(st, 2, "direct");
    sq_bind_text(st, 3, NULL);
    sq_bind_text(st, 4, key);
    sq_bind_text(st, 5, sender);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int(st, 7, strcmp(sender, peer) == 0 ? 1 : 2);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE) {
        rc = sq_fail(w->db, rc, err, "create direct conversation");
        goto out;
    }
    rc = sq_add_member(w, conv, sender, "member", 0, now, err);
    if (rc == 0 && strcmp(sender, peer) != 0)
        rc = sq_add_member(w, conv, peer, "member", 0, now, err);
out:
    free(key);
    return rc;
}

int sq_check_member(struct sq_db *d, const char *conv, const char *user, const char **role,
                    struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, SQ_MEMBER_ROLE);
    int rc;

    if (!st)
        return sq_fail_prepare(d, err);
    sq_bind_text(st, 1, conv);
    sq_bind_text(st, 2, user);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && role)
        *role = strcmp(sq_col_text(st, 0), "admin") == 0 ? "admin" : "member";
    sq_done(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return sq_fail(d->db, rc, err, "check membership");
    st = sq_stmt(d, SQ_CONV_EXISTS);
    if (!st)
        return sq_fail_prepare(d, err);
    sq_bind_text(st, 1, conv);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc == SQLITE_ROW)
        return lark_err_set(err, LARK_ENOTMEMBER, "you are not a member of %s", conv);
    if (rc != SQLITE_DONE)
        return sq_fail(d->db, rc, err, "find conversation");
    return lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv);
}

/* 1 and out->message set if (sender, client_msg_id) is already stored. */
static int sq_find_duplicate(struct sq_db *w, const struct store_send_in *in,
                             struct store_send_out *out, struct lark_err *err)
{
    sqlite3_stmt *st;
    int rc;

    if (!in->client_msg_id)
        return 0;
    st = sq_stmt(w, SQ_MSG_BY_CLIENT);
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, in->sender);
    sq_bind_text(st, 2, in->client_msg_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->message = sq_row_msg(st, 0);
        out->duplicate = 1;
        sq_done(st);
        return 1;
    }
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "find duplicate");
}

int sq_fanout(struct sq_db *w, const char *conv, const char *type, uint64_t msg_seq,
              const char *payload, int64_t now, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_INBOX_BUMP_MEMBERS);
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_note n = {.kind = STORE_NOTE_WAKE,
                               .user = sq_col_text(st, 0),
                               .seq = (uint64_t)sqlite3_column_int64(st, 1)};
        sq_note(w, &n);
    }
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "advance inboxes");
    st = sq_stmt(w, SQ_INBOX_INSERT_MEMBERS);
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    sq_bind_text(st, 2, type);
    if (payload)
        sqlite3_bind_null(st, 3);
    else
        sqlite3_bind_int64(st, 3, sq_u2i(msg_seq));
    sq_bind_text(st, 4, payload);
    sqlite3_bind_int64(st, 5, now);
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "append inboxes");
}

int sq_inbox_append(struct sq_db *w, const char *user, const char *type, const char *conv,
                    const char *payload, int64_t now, struct lark_err *err)
{
    sqlite3_stmt *st;
    uint64_t seq;
    int rc = sq_ensure_user(w, user, now, err);

    if (rc)
        return rc;
    st = sq_stmt(w, SQ_INBOX_BUMP_USER);
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, user);
    rc = sqlite3_step(st);
    seq = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sq_done(st);
    if (rc != SQLITE_ROW)
        return sq_fail(w->db, rc, err, "advance inbox");
    st = sq_stmt(w, SQ_INBOX_INSERT);
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, sq_u2i(seq));
    sq_bind_text(st, 3, type);
    sq_bind_text(st, 4, conv);
    sq_bind_text(st, 5, payload);
    sqlite3_bind_int64(st, 6, now);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "append inbox");
    {
        struct store_note n = {.kind = STORE_NOTE_WAKE, .user = user, .seq = seq};
        sq_note(w, &n);
    }
    return 0;
}

char *sq_receipt_payload(const char *conv, const char *user, const char *status, uint64_t up_to)
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

static int sq_next_conv_seq(struct sq_db *w, const char *conv, int64_t now, uint64_t *seq,
                            struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_CONV_BUMP);
    int rc;
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, now);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
        sq_done(st);
        return 0;
    }
    sq_done(st);
    return rc == SQLITE_DONE ? lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv)
                             : sq_fail(w->db, rc, err, "advance conversation");
}

static int sq_send_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_send_ctx *ctx = arg;
    const struct store_send_in *in = ctx->in;
    int64_t now = time_now_ms();
    char conv[IDS_CONV_LEN];
    char id[IDS_UUID_LEN];
    struct store_msg_row row;
    uint64_t seq = 0;
    sqlite3_stmt *st;
    int rc;

    rc = sq_find_duplicate(w, in, ctx->out, err);
    if (rc)
        return rc < 0 ? rc : 0;
    if (in->to) {
        rc = sq_direct_conv(w, in->sender, in->to, now, conv, err);
    } else {
        snprintf(conv, sizeof(conv), "%s", in->conversation_id);
        rc = sq_check_member(w, conv, in->sender, NULL, err);
    }
    if (rc)
        return rc;
    rc = sq_next_conv_seq(w, conv, now, &seq, err);
    if (rc)
        return rc;
    ids_uuid7(now, id);
    row = (struct store_msg_row){.id = id,
                                 .conversation_id = conv,
                                 .seq = seq,
                                 .sender = in->sender,
                                 .client_msg_id = in->client_msg_id ? in->client_msg_id : id,
                                 .type = in->type,
                                 .body = in->body,
                                 .body_len = in->body_len,
                                 .meta = in->meta ? in->meta : "{}",
                                 .created_at = now};
    st = sq_stmt(w, SQ_MSG_INSERT);
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, row.conversation_id);
    sqlite3_bind_int64(st, 2, sq_u2i(seq));
    sq_bind_text(st, 3, row.id);
    sq_bind_text(st, 4, row.sender);
    sq_bind_text(st, 5, row.client_msg_id);
    sq_bind_text(st, 6, row.type);
    sqlite3_bind_text(st, 7, row.body, (int)row.body_len, SQLITE_STATIC);
    sq_bind_text(st, 8, row.meta);
    sqlite3_bind_int64(st, 9, now);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "insert message");
    rc = sq_fanout(w, conv, "message", seq, NULL, now, err);
    if (rc)
        return rc;
    /* In the same transaction: a 201 promises the offline members' pushes
     * too (store.h, "push jobs"). */
    rc = sq_push_enqueue(w, conv, seq, in->sender, now, err);
    if (rc)
        return rc;
    ctx->out->message = store_msg_json(&row);
    return 0;
}

int sq_send(struct store_conn *base, const struct store_send_in *in, struct store_send_out *out,
            struct lark_err *err)
{
    struct sq_store *s = (struct sq_store *)base->store;
    struct sq_send_ctx ctx = {in, out};
    int rc = sq_write(s, sq_send_op, &ctx, err);

    if (rc) {
        json_decref(out->message);
        out->message = NULL;
        out->duplicate = 0;
    }
    return rc;
}

/* ---- ack and delivery receipts --------------------------------------- */

struct sq_ack_ctx {
    const char *user;
    uint64_t seq;
};

/* Highest conversation seq acknowledged per conversation in (from, to]:
 * mark them delivered for user, as a JSON object {conv: up_to}. */
static int sq_ack_delivered(struct sq_db *w, const char *user, uint64_t from, uint64_t to,
                            json_t *upto, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_ACK_CONV_MAX);
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, sq_u2i(from));
    sqlite3_bind_int64(st, 3, sq_u2i(to));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_put(upto, sq_col_text(st, 0), json_integer(sqlite3_column_int64(st, 1)));
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "acknowledged range");
    const char *conv;
    json_t *v;
    json_object_foreach (upto, conv, v) {
        st = sq_stmt(w, SQ_DELIVERED);
        if (!st)
            return sq_fail_prepare(w, err);
        sq_bind_text(st, 1, conv);
        sq_bind_text(st, 2, user);
        sqlite3_bind_int64(st, 3, json_integer_value(v));
        rc = sqlite3_step(st);
        sq_done(st);
        if (rc != SQLITE_DONE)
            return sq_fail(w->db, rc, err, "mark delivered");
    }
    return 0;
}

/* One receipt per (conversation, sender) of the messages in (from, to]. */
static int sq_ack_receipts(struct sq_db *w, const char *user, uint64_t from, uint64_t to,
                           struct lark_err *err)
{
    json_t *upto = json_obj(), *pairs = json_arr();
    sqlite3_stmt *st;
    size_t i;
    json_t *pair;
    int rc = sq_ack_delivered(w, user, from, to, upto, err);

    if (rc)
        goto out;
    st = sq_stmt(w, SQ_ACK_SENDERS);
    if (!st) {
        rc = sq_fail_prepare(w, err);
        goto out;
    }
    sq_bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, sq_u2i(from));
    sqlite3_bind_int64(st, 3, sq_u2i(to));
    /* gathered first: appending to inboxes while stepping would disturb it */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_push(pairs, json_pack("[ss]", sq_col_text(st, 0), sq_col_text(st, 1)));
    sq_done(st);
    if (rc != SQLITE_DONE) {
        rc = sq_fail(w->db, rc, err, "acknowledged senders");
        goto out;
    }
    rc = 0;
    json_array_foreach (pairs, i, pair) {
        const char *conv = json_string_value(json_array_get(pair, 0));
        const char *sender = json_string_value(json_array_get(pair, 1));
        uint64_t up_to = (uint64_t)json_integer_value(json_object_get(upto, conv));
        char *payload = sq_receipt_payload(conv, user, "delivered", up_to);
        rc = sq_inbox_append(w, sender, "receipt", conv, payload, time_now_ms(), err);
        free(payload);
        if (rc)
            break;
    }
out:
    json_decref(upto);
    json_decref(pairs);
    return rc;
}

static int sq_ack_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_ack_ctx *ctx = arg;
    sqlite3_stmt *st = sq_stmt(w, SQ_INBOX_STATE);
    uint64_t head = 0, acked = 0, to;
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, ctx->user);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        head = (uint64_t)sqlite3_column_int64(st, 0);
        acked = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sq_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "inbox state");
    to = ctx->seq < head ? ctx->seq : head;
    if (to <= acked)
        return 0; /* already acknowledged (a concurrent ack got here first) */
    rc = sq_ack_receipts(w, ctx->user, acked, to, err);
    if (rc)
        return rc;
    st = sq_stmt(w, SQ_ACK);
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, ctx->user);
    sqlite3_bind_int64(st, 2, sq_u2i(to));
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "ack");
}

int sq_inbox_state(struct store_conn *base, const char *user, uint64_t *head, uint64_t *acked,
                   struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_INBOX_STATE);
    int rc;

    if (!st)
        return sq_fail_prepare(&c->rd, err);
    sq_bind_text(st, 1, user);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *head = (uint64_t)sqlite3_column_int64(st, 0);
        *acked = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sq_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(c->rd.db, rc, err, "inbox state");
}

int sq_ack(struct store_conn *base, const char *user, uint64_t seq, uint64_t *acked,
           struct lark_err *err)
{
    struct sq_store *s = (struct sq_store *)base->store;
    struct sq_ack_ctx ctx = {user, seq};
    uint64_t head = 0;
    int rc = sq_inbox_state(base, user, &head, acked, err);

    /* Most acks repeat what is stored; only a real advance costs a write. */
    if (rc || *acked >= seq || *acked >= head)
        return rc;
    rc = sq_write(s, sq_ack_op, &ctx, err);
    if (rc)
        return rc;
    return sq_inbox_state(base, user, &head, acked, err);
}

/* ---- reads ------------------------------------------------------------ */

int sq_inbox_read(struct store_conn *base, const char *user, uint64_t after, unsigned limit,
                  json_t **events, uint64_t *last, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_INBOX_READ);
    json_t *arr;
    int rc;

    if (!st)
        return sq_fail_prepare(&c->rd, err);
    arr = json_arr();
    sq_bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, sq_u2i(after));
    sqlite3_bind_int(st, 3, (int)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        const char *type = sq_col_text(st, 1);
        json_t *data;
        if (strcmp(type, "message") == 0 && sqlite3_column_type(st, 3) != SQLITE_NULL) {
            data = sq_row_msg(st, 3);
        } else {
            data = json_loads(sq_col_text(st, 2), 0, NULL);
            if (!data)
                data = json_obj();
        }
        json_push(arr, store_envelope(seq, type, data));
        *last = seq;
    }
    sq_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        *last = after;
        return sq_fail(c->rd.db, rc, err, "read inbox");
    }
    *events = arr;
    return 0;
}

int sq_history(struct store_conn *base, const char *user, const char *conv,
               const struct store_page *page, json_t **messages, int *has_more,
               struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st;
    json_t *arr;
    unsigned n = 0;
    int rc = sq_check_member(&c->rd, conv, user, NULL, err);

    if (rc)
        return rc;
    st = sq_stmt(&c->rd, page->ascending ? SQ_HIST_ASC : SQ_HIST_DESC);
    if (!st)
        return sq_fail_prepare(&c->rd, err);
    arr = json_arr();
    sq_bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, sq_u2i(page->before));
    sqlite3_bind_int64(st, 3, sq_u2i(page->after));
    sqlite3_bind_int(st, 4, (int)page->limit + 1); /* one more tells has_more */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++ == page->limit) {
            *has_more = 1;
            continue;
        }
        json_push(arr, sq_row_msg(st, 0));
    }
    sq_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        *has_more = 0;
        return sq_fail(c->rd.db, rc, err, "read history");
    }
    *messages = arr;
    return 0;
}
