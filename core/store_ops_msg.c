/*
 * store_ops_msg.c - sending, history, inboxes, acknowledgement and delivery
 * receipts, once for every back end (store_ops.h).
 *
 * Gapless seqs: a send takes the conversation row (its last_seq + 1) and
 * then every member's users row (inbox_head + 1) in one transaction. With
 * SQLite's single writer that is trivially serial; on PostgreSQL the
 * UPDATE ... RETURNING holds the conversation's row lock to commit, and
 * DB_LOCK_MEMBERS takes the members' users rows in id order first, so two
 * sends that share members always lock them in the same order (no
 * deadlock) and commit their inbox seqs one after the other.
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/store_impl.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- send --------------------------------------------------------------- */

/* 1 and out->message set if (sender, client_msg_id) is already stored. */
static int send_find_duplicate(struct db *d, const struct store_send_in *in,
                               struct store_send_out *out, struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc;

    if (!in->client_msg_id)
        return 0;
    rc = db_query(d, DB_MSG_BY_CLIENT, DB_ARGS(DBT(in->sender), DBT(in->client_msg_id)), &r, err);
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        out->message = op_row_msg(r, 0);
        out->duplicate = 1;
    }
    db_done(r);
    return rc;
}

/* The direct conversation of sender and peer, created if new. */
static int send_direct_conv(struct db *d, const char *sender, const char *peer, int64_t now,
                            char conv[IDS_CONV_LEN], struct lark_err *err)
{
    char *key = store_direct_key(sender, peer);
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_CONV_BY_DIRECT, DB_ARGS(DBT(key)), &r, err);

    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        snprintf(conv, IDS_CONV_LEN, "%s", db_text(r, 0));
        rc = 0;
        goto out;
    }
    db_done(r);
    r = NULL;
    if (rc < 0)
        goto out;
    ids_conversation(now, conv);
    /* A concurrent first message of the pair (another process) fails this
     * with a unique-key conflict; the back end then runs the send again and
     * the lookup above finds the winner's conversation. */
    rc = db_exec(d, DB_CONV_INSERT,
                 DB_ARGS(DBT(conv), DBT("direct"), DBNULL, DBT(key), DBT(sender), DBI(now),
                         DBI(strcmp(sender, peer) == 0 ? 1 : 2)),
                 err);
    if (rc == 0)
        rc = op_add_member(d, conv, sender, "member", now, err);
    if (rc == 0 && strcmp(sender, peer) != 0)
        rc = op_add_member(d, conv, peer, "member", now, err);
out:
    db_done(r);
    free(key);
    return rc;
}

int op_send(struct db *d, void *arg, struct lark_err *err)
{
    struct op_send *ctx = arg;
    const struct store_send_in *in = ctx->in;
    int64_t now = time_now_ms(), seq = 0;
    char conv[IDS_CONV_LEN];
    char id[IDS_UUID_LEN];
    struct store_msg_row row;
    char *text;
    int found = 0;
    int rc;

    json_decref(ctx->out->message); /* a retried transaction starts afresh */
    ctx->out->message = NULL;
    ctx->out->duplicate = 0;
    rc = send_find_duplicate(d, in, ctx->out, err);
    if (rc)
        return rc < 0 ? rc : 0;
    /* the media first: the sender's, uploaded, and kept from now on */
    for (size_t i = 0; rc == 0 && i < in->nmedia; i++)
        rc = op_media_take(d, in->sender, in->media[i], err);
    if (rc)
        return rc;
    if (in->to) {
        rc = send_direct_conv(d, in->sender, in->to, now, conv, err);
    } else {
        snprintf(conv, sizeof(conv), "%s", in->conversation_id);
        rc = op_check_member(d, conv, in->sender, NULL, err);
    }
    if (rc == 0)
        rc = db_int1(d, DB_CONV_BUMP, DB_ARGS(DBT(conv), DBI(now)), &seq, &found, err);
    if (rc == 0 && !found)
        rc = lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", conv);
    if (rc)
        return rc;
    ids_uuid7(now, id);
    row = (struct store_msg_row){.id = id,
                                 .conversation_id = conv,
                                 .seq = (uint64_t)seq,
                                 .sender = in->sender,
                                 .client_msg_id = in->client_msg_id ? in->client_msg_id : id,
                                 .type = in->type,
                                 .body = in->body,
                                 .body_len = in->body_len,
                                 .meta = in->meta ? in->meta : "{}",
                                 .created_at = now,
                                 .media = in->nmedia ? in->media_json : NULL};
    rc = db_exec(d, DB_MSG_INSERT,
                 DB_ARGS(DBT(conv), DBI(seq), DBT(row.id), DBT(row.sender), DBT(row.client_msg_id),
                         DBT(row.type), DBTN(row.body, row.body_len), DBT(row.meta), DBI(now),
                         DBT(row.media)),
                 err);
    /* who may read each item: the members of this conversation */
    for (size_t i = 0; rc == 0 && i < in->nmedia; i++)
        rc = op_media_link(d, in->media[i], conv, (uint64_t)seq, err);
    if (rc)
        return rc;
    ctx->out->message = store_msg_json(&row);
    text = json_dump(ctx->out->message, 0, NULL);
    rc = op_fanout(d, conv, NULL, "message", (uint64_t)seq, NULL, text, now, err);
    free(text);
    /* in the same transaction: a 201 promises the offline members' pushes
     * too (store.h, "push jobs") */
    if (rc == 0)
        rc = op_push_enqueue(d, conv, (uint64_t)seq, in->sender, now, ctx->push_window_ms, err);
    return rc;
}

/* ---- ack and delivery receipts -------------------------------------------- */

/* Mark delivered, per conversation, the highest seq acknowledged in (from,
 * to]; upto receives {conversation: up_to}. */
static int ack_delivered(struct db *d, const char *user, uint64_t from, uint64_t to, json_t *upto,
                         struct lark_err *err)
{
    struct db_rows *r = NULL;
    const char *conv;
    json_t *v;
    int rc = db_query(d, DB_ACK_CONV_MAX, DB_ARGS(DBT(user), DBI(from), DBI(to)), &r, err);

    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        json_put(upto, db_text(r, 0), json_integer(db_int(r, 1)));
        rc = 0;
    }
    db_done(r);
    if (rc < 0)
        return rc;
    json_object_foreach (upto, conv, v) {
        rc = db_exec(d, DB_DELIVERED, DB_ARGS(DBT(conv), DBT(user), DBI(json_integer_value(v))),
                     err);
        if (rc)
            return rc;
    }
    return 0;
}

static json_t *pair_of_row(struct db_rows *r, void *ctx)
{
    (void)ctx;
    return json_pack("[ss]", db_text(r, 0), db_text(r, 1));
}

/* The senders (other than user) of the messages in (from, to], per
 * conversation, as [[conversation, sender], ...]. */
static int ack_senders(struct db *d, const char *user, uint64_t from, uint64_t to, json_t *pairs,
                       struct lark_err *err)
{
    return op_collect(d, DB_ACK_SENDERS, DB_ARGS(DBT(user), DBI(from), DBI(to)), pair_of_row, NULL,
                      pairs, err);
}

int op_ack(struct db *d, void *arg, struct lark_err *err)
{
    struct op_ack *ctx = arg;
    json_t *upto = json_obj(), *pairs = json_arr(), *ids = json_arr(), *pair;
    struct db_rows *r = NULL;
    uint64_t head = 0, acked = 0, to;
    int64_t now = time_now_ms();
    size_t i;
    int rc;

    rc = db_query(d, DB_INBOX_STATE, DB_ARGS(DBT(ctx->user)), &r, err);
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        head = (uint64_t)db_int(r, 0);
        acked = (uint64_t)db_int(r, 1);
        rc = 0;
    }
    db_done(r);
    to = ctx->seq < head ? ctx->seq : head;
    if (rc || to <= acked)
        goto out; /* an error, or acknowledged already (a concurrent ack won) */
    if ((rc = ack_senders(d, ctx->user, acked, to, pairs, err)))
        goto out;
    /* every users row this transaction will change, locked in id order */
    json_push(ids, json_string(ctx->user));
    json_array_foreach (pairs, i, pair) {
        json_push(ids, json_incref(json_array_get(pair, 1)));
    }
    if ((rc = op_lock_users(d, ids, err)) ||
        (rc = ack_delivered(d, ctx->user, acked, to, upto, err)))
        goto out;
    json_array_foreach (pairs, i, pair) {
        const char *conv = json_string_value(json_array_get(pair, 0));
        uint64_t up_to = (uint64_t)json_integer_value(json_object_get(upto, conv));
        char *payload = op_receipt_payload(conv, ctx->user, "delivered", up_to);
        rc = op_inbox_append(d, json_string_value(json_array_get(pair, 1)), "receipt", conv,
                             payload, now, err);
        free(payload);
        if (rc)
            goto out;
    }
    rc = db_exec(d, DB_ACK, DB_ARGS(DBT(ctx->user), DBI(to)), err);
out:
    json_decref(upto);
    json_decref(pairs);
    json_decref(ids);
    return rc;
}

/* ---- reads --------------------------------------------------------------- */

int op_ping(struct db *d, struct lark_err *err)
{
    return db_exec(d, DB_PING, NULL, 0, err);
}

int op_inbox_state(struct db *d, const char *user, uint64_t *head, uint64_t *acked,
                   struct lark_err *err)
{
    struct db_rows *r = NULL;
    int rc = db_query(d, DB_INBOX_STATE, DB_ARGS(DBT(user)), &r, err);
    if (rc == 0 && (rc = db_next(r, err)) == 1) {
        *head = (uint64_t)db_int(r, 0);
        *acked = (uint64_t)db_int(r, 1);
        rc = 0;
    }
    db_done(r);
    return rc < 0 ? rc : 0;
}

/* The event of an inbox row whose seq, type and payload are the columns
 * from col on, followed by a message's columns (NULL unless a message). */
static struct store_event inbox_row_event(struct db_rows *r, int col)
{
    const char *type = db_text(r, col + 1);
    json_t *data = NULL;
    char *text = NULL;
    size_t len = 0;
    struct store_event ev;

    if (strcmp(type, "message") == 0 && !db_is_null(r, col + 3))
        data = op_row_msg(r, col + 3);
    else
        data = json_loads(db_text(r, col + 2), 0, NULL);
    /* the same bytes the send's note carried (json_dump, compact) */
    text = data ? json_dump(data, 0, &len) : NULL;
    ev.seq = (uint64_t)db_int(r, col);
    ev.data = text ? evdata_new(type, text, len) : evdata_new(type, "{}", 2);
    json_decref(data);
    free(text);
    return ev;
}

static void events_push(struct store_event **v, size_t *n, size_t *cap, struct store_event ev)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = ev;
}

int op_inbox_read(struct db *d, const char *user, uint64_t after, unsigned limit,
                  struct store_event **evs, size_t *n, struct lark_err *err)
{
    struct db_rows *r = NULL;
    struct store_event *v = NULL;
    size_t cap = 0, count = 0;
    int rc = db_query(d, DB_INBOX_READ, DB_ARGS(DBT(user), DBI(after), DBI(limit)), &r, err);

    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        events_push(&v, &count, &cap, inbox_row_event(r, 0));
        rc = 0;
    }
    db_done(r);
    if (rc < 0) {
        store_events_free(v, count);
        return rc;
    }
    *evs = v;
    *n = count;
    return 0;
}

/* One user at a time: what op_inbox_read_many does where the engine has
 * no statement for many. */
static int inbox_read_each(struct db *d, struct store_inbox_req *reqs, size_t n, unsigned limit,
                           struct lark_err *err)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t acked = 0;
        int rc = op_inbox_state(d, reqs[i].user, &reqs[i].head, &acked, err);
        if (rc == 0)
            rc =
                op_inbox_read(d, reqs[i].user, reqs[i].after, limit, &reqs[i].evs, &reqs[i].n, err);
        if (rc)
            return rc;
    }
    return 0;
}

int op_inbox_read_many(struct db *d, struct store_inbox_req *reqs, size_t n, unsigned limit,
                       struct lark_err *err)
{
    json_t *users = json_arr(), *afters = json_arr();
    struct db_rows *r = NULL;
    size_t *cap = xcalloc(n ? n : 1, sizeof(*cap));
    char *ujson = NULL, *ajson = NULL;
    int rc = 0;

    if (!db_has(d, DB_INBOX_READ_MANY)) {
        rc = inbox_read_each(d, reqs, n, limit, err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_push(users, json_string(reqs[i].user));
        json_push(afters, json_integer((json_int_t)reqs[i].after));
    }
    ujson = json_dump(users, 0, NULL);
    ajson = json_dump(afters, 0, NULL);
    /* the heads first: an event committed between the two reads lifts
     * the head below, never the other way round (store_inbox_read) */
    rc = db_query(d, DB_INBOX_HEADS_MANY, DB_ARGS(DBT(ujson)), &r, err);
    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(reqs[i].user, db_text(r, 0)) == 0)
                reqs[i].head = (uint64_t)db_int(r, 1);
        rc = 0;
    }
    db_done(r);
    r = NULL;
    if (rc < 0)
        goto out;
    rc = db_query(d, DB_INBOX_READ_MANY, DB_ARGS(DBT(ujson), DBT(ajson), DBI(limit)), &r, err);
    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        int64_t ord = db_int(r, 0);
        rc = 0;
        if (ord < 1 || (size_t)ord > n)
            continue;
        events_push(&reqs[ord - 1].evs, &reqs[ord - 1].n, &cap[ord - 1], inbox_row_event(r, 1));
    }
    db_done(r);
out:
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (reqs[i].n && reqs[i].evs[reqs[i].n - 1].seq > reqs[i].head)
            reqs[i].head = reqs[i].evs[reqs[i].n - 1].seq;
    json_decref(users);
    json_decref(afters);
    free(ujson);
    free(ajson);
    free(cap);
    return rc < 0 ? rc : 0;
}

int op_history(struct db *d, const char *user, const char *conv, const struct store_page *page,
               json_t **messages, int *has_more, struct lark_err *err)
{
    struct db_rows *r = NULL;
    json_t *arr;
    unsigned n = 0;
    int64_t before = page->before > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)page->before;
    int rc = op_check_member(d, conv, user, NULL, err);

    if (rc)
        return rc;
    arr = json_arr();
    /* one more row than asked tells has_more */
    rc = db_query(d, page->ascending ? DB_HIST_ASC : DB_HIST_DESC,
                  DB_ARGS(DBT(conv), DBI(before), DBI(page->after), DBI(page->limit + 1)), &r, err);
    while (rc == 0 && (rc = db_next(r, err)) == 1) {
        rc = 0;
        if (n++ == page->limit) {
            *has_more = 1;
            continue;
        }
        json_push(arr, op_row_msg(r, 0));
    }
    db_done(r);
    if (rc < 0) {
        json_decref(arr);
        *has_more = 0;
        return rc;
    }
    *messages = arr;
    return 0;
}
