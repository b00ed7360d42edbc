/*
 * store.h - lark's storage: conversations, messages and per-user inboxes.
 *
 * One interface, several back ends (store_sqlite.c today; PostgreSQL slots
 * in behind the same struct store_ops, see store_impl.h). Handlers call
 * only these functions and never see SQL or a back end.
 *
 * Data model (DESIGN.md): a message is stored once in its conversation with
 * a gapless conversation seq; every member gets one inbox row pointing at
 * it, with a gapless per-user inbox seq. A user's inbox is the one ordered,
 * resumable stream that SSE, long-poll and WebSocket serve.
 *
 * Threads: struct store is shared by every thread. struct store_conn is a
 * connection that only the thread that opened it may use; each worker and
 * the hub open their own. Writes may be funnelled through a back end's own
 * writer thread (SQLite group commit); callers cannot tell.
 *
 * Durability: a write function returns 0 only after its transaction has
 * committed durably, so the HTTP answer that follows may promise the data
 * is kept. A write that fails leaves nothing behind.
 *
 * Wake-ups: after each commit that appends inbox events the store calls
 * the wake function (store_set_wake) once with every (user, new seq), from
 * the committing thread. The hub uses it to wake held connections.
 *
 * Errors: 0 or a negative LARK_E* code with err filled. LARK_EUNAVAIL means
 * the database is unreachable, full or failing (503, retry); LARK_EINTERNAL
 * is a bug or corruption. JSON results are new references the caller must
 * json_decref.
 */
#ifndef LARK_STORE_H
#define LARK_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct lark_err;
struct store;
struct store_conn;

/* One user's inbox advanced to seq (borrowed strings, valid during the call). */
struct store_wake {
    const char *user;
    uint64_t seq;
    int64_t commit_ns; /* time_mono_ns() at commit; 0 if unknown (another host) */
};

typedef void (*store_wake_fn)(void *arg, const struct store_wake *wakes, size_t n);

/*
 * Open the store named by cfg->db ("sqlite:PATH" or "postgresql://...")
 * and apply pending migrations from cfg->migrations. Returns 0, LARK_EINVAL
 * (bad URL, migration error) or LARK_EUNAVAIL. The caller frees with
 * store_close after every connection is closed.
 */
int store_open(const struct config *cfg, struct store **out, struct lark_err *err);

/* Stop background threads and free. Accepts NULL. */
void store_close(struct store *s);

/* Name of the back end ("sqlite", "postgresql"). */
const char *store_backend(const struct store *s);

/* Set the wake function before any connection writes. fn may be NULL. */
void store_set_wake(struct store *s, store_wake_fn fn, void *arg);

/* Open a connection for the calling thread. Caller closes it. */
int store_conn_open(struct store *s, struct store_conn **out, struct lark_err *err);

/* Close a connection. Accepts NULL. */
void store_conn_close(struct store_conn *c);

/* 0 if the database answers, LARK_EUNAVAIL otherwise. */
int store_ping(struct store_conn *c, struct lark_err *err);

/* A message to store. All strings are borrowed and already validated. */
struct store_send_in {
    const char *sender;          /* the authenticated user */
    const char *to;              /* direct chat peer, or NULL */
    const char *conversation_id; /* or NULL; exactly one of to / conversation_id */
    const char *client_msg_id;   /* NULL: the server makes one (no idempotency) */
    const char *type;            /* "text" unless the client said otherwise */
    const char *body;            /* UTF-8, body_len bytes, no NUL */
    size_t body_len;
    const char *meta; /* compact JSON object text, or NULL for {} */
};

struct store_send_out {
    json_t *message; /* the stored message object (API.md), caller decrefs */
    int duplicate;   /* 1: (sender, client_msg_id) was already stored; nothing new */
};

/*
 * Store a message and append it to every member's inbox, in one
 * transaction. A direct chat is created on first use (the same one whoever
 * starts it). Errors: LARK_ENOTFOUND (no such conversation),
 * LARK_ENOTMEMBER, LARK_EUNAVAIL, LARK_EINTERNAL.
 */
int store_send(struct store_conn *c, const struct store_send_in *in, struct store_send_out *out,
               struct lark_err *err);

/* A history page. Both bounds may be set; at least one direction is used. */
struct store_page {
    uint64_t before; /* only seq < before; UINT64_MAX = no bound */
    uint64_t after;  /* only seq > after; 0 = no bound */
    int ascending;   /* 1: oldest first (after given), 0: newest first */
    unsigned limit;  /* 1..LIMIT_HISTORY_MAX */
};

/*
 * Messages of a conversation the user belongs to. *messages is a new JSON
 * array; *has_more says whether more lie beyond the page in its direction.
 * Errors: LARK_ENOTFOUND, LARK_ENOTMEMBER, LARK_EUNAVAIL.
 */
int store_history(struct store_conn *c, const char *user, const char *conversation_id,
                  const struct store_page *page, json_t **messages, int *has_more,
                  struct lark_err *err);

/*
 * Up to limit inbox events of user with seq > after, oldest first, as a
 * new JSON array of envelopes {"seq", "type", "data"}. *last is the seq of
 * the last event returned, or after when none.
 */
int store_inbox_read(struct store_conn *c, const char *user, uint64_t after, unsigned limit,
                     json_t **events, uint64_t *last, struct lark_err *err);

/* The user's newest inbox seq and last acknowledged seq (0, 0 if none). */
int store_inbox_state(struct store_conn *c, const char *user, uint64_t *head, uint64_t *acked,
                      struct lark_err *err);

/*
 * The client processed the inbox up to seq (clamped to the head; never
 * moves backwards). *acked receives the resulting acknowledged seq.
 */
int store_ack(struct store_conn *c, const char *user, uint64_t seq, uint64_t *acked,
              struct lark_err *err);

#endif
