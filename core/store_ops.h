/*
 * store_ops.h - the store's operations, written once over db.h (private
 * to core/store*.c).
 *
 * store.c calls a write operation through its back end's write() - inside
 * a transaction, which a back end may run again from the start after a
 * serialization failure, so every write op first resets its outputs - and
 * a read operation on the back end's reader() connection. The contracts
 * are those of the store_* function of the same name in store.h.
 */
#ifndef LARK_STORE_OPS_H
#define LARK_STORE_OPS_H

#include "core/db.h"
#include "core/store.h"

#include <stdint.h>

struct db;
struct db_rows;
struct pushstat;

/* ---- write operations: int fn(struct db *, void *arg, struct lark_err *) ---- */

struct op_send {
    const struct store_send_in *in;
    struct store_send_out *out;
    int64_t push_window_ms; /* coalescing window of the push jobs it makes */
};
int op_send(struct db *d, void *arg, struct lark_err *err);

struct op_ack {
    const char *user;
    uint64_t seq;
};
int op_ack(struct db *d, void *arg, struct lark_err *err);

struct op_group {
    const struct store_group_in *in;
    json_t **conv;
};
int op_group_create(struct db *d, void *arg, struct lark_err *err);

struct op_member {
    const char *actor, *conv, *user;
    unsigned max_members;
    int *added;
};
int op_member_add(struct db *d, void *arg, struct lark_err *err);
int op_member_remove(struct db *d, void *arg, struct lark_err *err);

struct op_read {
    const char *user, *conv;
    uint64_t seq;
    uint64_t *read_seq;
};
int op_read(struct db *d, void *arg, struct lark_err *err);

struct op_touch {
    const char *const *users;
    size_t n;
    int64_t now;
};
int op_presence_touch(struct db *d, void *arg, struct lark_err *err);

/* tickets (store_ops_ticket.c) */
struct op_ticket_key {
    int64_t now;
    char *hex; /* out: STORE_TICKET_KEY_LEN * 2 hex digits + NUL */
};
int op_ticket_key(struct db *d, void *arg, struct lark_err *err);

struct op_ticket_use {
    const char *nonce;
    int64_t expires_at, now;
    int *first; /* out */
};
int op_ticket_use(struct db *d, void *arg, struct lark_err *err);

/* arg: const int64_t *cutoff */
int op_presence_expire(struct db *d, void *arg, struct lark_err *err);

/* devices and push jobs (store_ops_push.c) */
struct op_device_add {
    const struct store_device_in *in;
    unsigned max;
    int64_t now;
    int64_t created_at; /* out */
    int created;        /* out */
};
int op_device_add(struct db *d, void *arg, struct lark_err *err);

struct op_device_remove {
    const char *user, *token;
};
int op_device_remove(struct db *d, void *arg, struct lark_err *err);

struct op_push_claim {
    int64_t now, lease_until;
    unsigned max;
    struct store_push_job *jobs; /* out: max entries, allocated by the caller */
    size_t n;                    /* out */
};
int op_push_claim(struct db *d, void *arg, struct lark_err *err);

struct op_push_finish {
    const struct store_push_result *results;
    size_t n;
    const struct pushstat *delta;
    int64_t now;
};
int op_push_finish(struct db *d, void *arg, struct lark_err *err);

struct op_push_requeue {
    int64_t id, now;
    size_t n; /* out */
};
int op_push_requeue(struct db *d, void *arg, struct lark_err *err);

/* per-user limits shared by processes (store_ops_limits.c) */
struct op_rate_take {
    const char *cls, *user;
    int64_t rate_u;  /* refill: millionths of a token per ms */
    int64_t burst_u; /* capacity: millionths of a token */
    int64_t now_ms;
    int64_t wait_ms; /* out: 0 if taken, else ms until a token is back */
};
int op_rate_take(struct db *d, void *arg, struct lark_err *err);

struct op_held {
    const struct store_held_in *in;
    int refused; /* out: in->max live slots already; nothing taken */
};
int op_held_acquire(struct db *d, void *arg, struct lark_err *err);
struct op_held_release {
    const char *slot;
};
int op_held_release(struct db *d, void *arg, struct lark_err *err);

/* media (store_ops_media.c) */
struct op_media_create {
    const struct store_media *in;
    int64_t quota; /* bytes, 0 = none */
};
int op_media_create(struct db *d, void *arg, struct lark_err *err);

struct op_media_ready {
    const char *id;
};
int op_media_ready(struct db *d, void *arg, struct lark_err *err);

struct op_media_expire {
    int64_t cutoff;
    unsigned limit;
    json_t *gone; /* out: [[id, skey], ...], allocated by the caller */
};
int op_media_expire(struct db *d, void *arg, struct lark_err *err);

/* Inside a send: the sender's ready item id becomes referenced
 * (LARK_EBADMEDIA, LARK_EMEDIAPENDING otherwise); after the message row,
 * op_media_link records that the message (conv, seq) carries it. */
int op_media_take(struct db *d, const char *sender, const char *id, struct lark_err *err);
int op_media_link(struct db *d, const char *id, const char *conv, uint64_t seq,
                  struct lark_err *err);

/* Inside a send: push jobs for the offline members of conv but sender,
 * coalesced per device; wakes the push daemons after the commit. */
int op_push_enqueue(struct db *d, const char *conv, uint64_t msg_seq, const char *sender,
                    int64_t now, int64_t window_ms, struct lark_err *err);

/* ---- read operations --------------------------------------------------- */

int op_ping(struct db *d, struct lark_err *err);
int op_history(struct db *d, const char *user, const char *conv, const struct store_page *page,
               json_t **messages, int *has_more, struct lark_err *err);
int op_inbox_read(struct db *d, const char *user, uint64_t after, unsigned limit,
                  struct store_event **evs, size_t *n, struct lark_err *err);
int op_inbox_state(struct db *d, const char *user, uint64_t *head, uint64_t *acked,
                   struct lark_err *err);
int op_inbox_read_many(struct db *d, struct store_inbox_req *reqs, size_t n, unsigned limit,
                       struct lark_err *err);
int op_conversation_list(struct db *d, const char *user, const char *before_id, unsigned limit,
                         json_t **list, int *has_more, struct lark_err *err);
int op_conversation_get(struct db *d, const char *user, const char *conv, json_t **out,
                        struct lark_err *err);
int op_members(struct db *d, const char *user, const char *conv, json_t **members,
               struct lark_err *err);
int op_presence_get(struct db *d, const char *const *users, size_t n, json_t **out,
                    struct lark_err *err);
int op_presence_visible(struct db *d, const char *viewer, const char *const *users, size_t n,
                        int *visible, struct lark_err *err);
int op_device_list(struct db *d, const char *user, json_t **devices, struct lark_err *err);
int op_push_next_due(struct db *d, int64_t *due_at, struct lark_err *err);
int op_push_stats(struct db *d, struct pushstat *out, struct lark_err *err);
int op_push_dead_list(struct db *d, int64_t before_id, unsigned limit, json_t **out,
                      struct lark_err *err);
int op_media_get(struct db *d, const char *id, const char *user, struct store_media *out,
                 struct lark_err *err);
int op_media_usage(struct db *d, const char *user, int64_t *bytes, struct lark_err *err);
int op_media_key_used(struct db *d, const char *skey, int *used, struct lark_err *err);

/* ---- shared by the operation files (store_ops.c) ------------------------- */

/* 0 if user belongs to conv (*role, if not NULL: "admin" or "member");
 * LARK_ENOTMEMBER or LARK_ENOTFOUND otherwise. */
int op_check_member(struct db *d, const char *conv, const char *user, const char **role,
                    struct lark_err *err);

/* Make sure user has a users row. */
int op_ensure_user(struct db *d, const char *user, int64_t now, struct lark_err *err);

/* Insert a member (and its users row). */
int op_add_member(struct db *d, const char *conv, const char *user, const char *role, int64_t now,
                  struct lark_err *err);

/* Append one event to the inbox of every member but except (NULL: every
 * member): the message msg_seq (payload NULL) or a JSON payload. data is
 * the event's data as compact JSON (NULL: the payload itself), rendered
 * once into the note of each member's new event (STORE_NOTE_EVENT). */
int op_fanout(struct db *d, const char *conv, const char *except, const char *type,
              uint64_t msg_seq, const char *payload, const char *data, int64_t now,
              struct lark_err *err);

/* Append one event with a JSON payload (its data) to user's inbox, and
 * note it. */
int op_inbox_append(struct db *d, const char *user, const char *type, const char *conv,
                    const char *payload, int64_t now, struct lark_err *err);

/* Lock the users rows of ids (a JSON array of user ids) in id order, so
 * that concurrent transactions always take them in one order (PostgreSQL;
 * nothing in SQLite, which has one writer). */
int op_lock_users(struct db *d, json_t *ids, struct lark_err *err);

/* A "receipt" event's payload (caller frees). */
char *op_receipt_payload(const char *conv, const char *user, const char *status, uint64_t up_to);

/* A message object from the message columns starting at col. */
json_t *op_row_msg(struct db_rows *r, int col);

/* Run statement id and append map(row, ctx) for every row to arr. */
int op_collect(struct db *d, enum db_stmt id, const struct db_arg *args, int n,
               json_t *(*map)(struct db_rows *r, void *ctx), void *ctx, json_t *arr,
               struct lark_err *err);

/* A map for op_collect: the first column as a JSON string. */
json_t *op_col0(struct db_rows *r, void *ctx);

/* The JSON array text of n strings (caller frees), for statements that
 * take a list as one parameter. */
char *op_json_list(const char *const *items, size_t n);

#endif
