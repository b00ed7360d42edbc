/*
 * store_impl.h - what a storage back end implements (not for handlers).
 *
 * Like curl's struct Curl_ssl: each back end fills one const struct
 * store_ops and embeds struct store / struct store_conn as the first member
 * of its own structs. store.c dispatches; it never knows a back end's
 * internals. Each function pointer has exactly the contract of the
 * store_* function of the same name in store.h.
 *
 * Below the ops table, what the store's own files share, each defined
 * in one file that calls nothing above it: the JSON renderers
 * (store_json.c: both back ends produce byte-identical JSON, made in one
 * place), handing notes to the listener (store_notes.c), the direct-chat
 * key (store_ops.c) and the queue of writes nobody waits for
 * (store_later.c). store.c calls down into all of them and the back ends;
 * none calls back into store.c.
 */
#ifndef LARK_STORE_IMPL_H
#define LARK_STORE_IMPL_H

#include "core/store.h"
#include "core/store_notes.h"

#include <pthread.h>

struct db;

/* A write operation (store_ops.h), run by write() inside a transaction. */
typedef int (*store_write_fn)(struct db *d, void *arg, struct lark_err *err);

struct store_ops {
    const char *name; /* "sqlite", "postgresql" */
    /* target is cfg->db without "sqlite:" (SQLite) or whole (PostgreSQL) */
    int (*open)(const struct config *cfg, const char *target, unsigned flags, struct store **out,
                struct lark_err *err);
    void (*close)(struct store *s);
    int (*conn_open)(struct store *s, struct store_conn **out, struct lark_err *err);
    void (*conn_close)(struct store_conn *c);
    /*
     * Run fn inside a transaction and return after it committed durably
     * (0) or rolled back (fn's error, or LARK_EUNAVAIL). fn may run more
     * than once (after a serialization failure or deadlock); only the last
     * run's notes are delivered, after the commit.
     */
    int (*write)(struct store_conn *c, store_write_fn fn, void *arg, struct lark_err *err);
    /* store_send in the back end's own way (PostgreSQL: one round trip);
     * NULL: the shared op_send through write(). */
    int (*send)(struct store_conn *c, const struct store_send_in *in, struct store_send_out *out,
                struct lark_err *err);
    /* The calling thread's connection for reads; NULL and LARK_EUNAVAIL
     * when the database cannot be reached right now. */
    struct db *(*reader)(struct store_conn *c, struct lark_err *err);
    /* Deliver ephemeral notes to every process's listener. */
    int (*publish)(struct store_conn *c, const struct store_note *notes, size_t n,
                   struct lark_err *err);
    /*
     * Cross-process notes (may be NULL: one process only). listener_fd is
     * a descriptor to poll (for output when *want_write, while it
     * connects), -1 between connection attempts; listener_poll advances
     * the connection without blocking, takes what arrived (handing notes
     * to the listener), sets *reconnected after a reconnection (notes may
     * have been missed meanwhile) and returns the ms until it wants to run
     * again. Hub thread only.
     */
    int (*listener_fd)(struct store *s, int *want_write);
    int64_t (*listener_poll)(struct store *s, int *reconnected);
    /* Push daemons' wake-ups: store_push_watch and store_push_watch_drain
     * (store.h), on the calling thread's connection. */
    int (*push_watch)(struct store_conn *c, int *fd, struct lark_err *err);
    int (*push_watch_drain)(struct store_conn *c, int *changed, struct lark_err *err);
    /* A CGI process's wake-ups: store_inbox_watch and
     * store_inbox_watch_drain (store.h), on the calling thread's connection. */
    int (*inbox_watch)(struct store_conn *c, const char *user, int *fd, struct lark_err *err);
    int (*inbox_watch_drain)(struct store_conn *c, int *changed, struct lark_err *err);
};

struct store_later;

struct store {
    const struct store_ops *ops;
    pthread_mutex_t listener_mu; /* guards listener, held while it runs */
    store_note_fn listener;      /* may be NULL */
    void *listener_arg;
    int64_t push_window_ms;    /* cfg->push_window_ms, for the push jobs sends make */
    struct store_later *later; /* store_later.c: queued acks and presence; NULL until used */
};

struct store_conn {
    struct store *store;
};

/* A message as read from a row; strings borrowed from the result. */
struct store_msg_row {
    const char *id;
    const char *conversation_id;
    uint64_t seq;
    const char *sender;
    const char *client_msg_id;
    const char *type;
    const char *body;
    size_t body_len;
    const char *meta;   /* JSON object text */
    int64_t created_at; /* ms since the epoch */
    const char *media;  /* JSON array text (API.md "Media"); NULL or "" for none */
};

/* The API message object for a row (new reference). */
json_t *store_msg_json(const struct store_msg_row *row);

/* An inbox envelope {"seq", "type", "data"}; takes ownership of data. */
json_t *store_envelope(uint64_t seq, const char *type, json_t *data);

/*
 * The key that makes a direct chat unique: the two ids in byte order,
 * joined by '\n' (which no user id contains). Caller frees. (store_ops.c)
 */
char *store_direct_key(const char *a, const char *b);

/* Hand notes to this process's listener, if any (store_notes.c). */
void store_emit_notes(struct store *s, const struct store_note *notes, size_t n);

/* The highest position store_ack_later has queued for user and not yet
 * written (0 if none); store_inbox_state folds it in. */
uint64_t store_later_acked(struct store *s, const char *user);

/* Write what is queued and stop the thread (store_close, before the back
 * end closes). Accepts s->later == NULL. */
void store_later_stop(struct store *s);

/* A device object {platform, token, app, created_at} (API.md). */
json_t *store_device_json(const char *platform, const char *token, const char *app,
                          int64_t created_at);

/* Free a claimed job's strings and zero it. */
void store_push_job_release(struct store_push_job *j);

/* A member object {user, role} (detail: also read_seq, delivered_seq). */
json_t *store_member_json(const char *user, const char *role, uint64_t read_seq,
                          uint64_t delivered_seq, int detail);

/*
 * The conversation object of API.md: fields from its row, plus
 * last_message (taken: may be NULL), unread and members (taken).
 */
json_t *store_conversation_json(const char *id, const char *type, const char *title,
                                const char *creator, int64_t created_at, uint64_t last_seq,
                                json_t *last_message, uint64_t unread, json_t *members);

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

#endif
