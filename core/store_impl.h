/*
 * store_impl.h - what a storage back end implements (not for handlers).
 *
 * Like curl's struct Curl_ssl: each back end fills one const struct
 * store_ops and embeds struct store / struct store_conn as the first member
 * of its own structs. store.c dispatches; it never knows a back end's
 * internals. Each function pointer has exactly the contract of the
 * store_* function of the same name in store.h.
 *
 * Shared helpers for back ends (message rendering, direct-chat keys) live
 * here too, so both back ends produce byte-identical JSON.
 */
#ifndef LARK_STORE_IMPL_H
#define LARK_STORE_IMPL_H

#include "core/store.h"

struct store_ops {
    const char *name; /* "sqlite", "postgresql" */
    /* target is cfg->db with the scheme prefix removed (sqlite) or whole */
    int (*open)(const struct config *cfg, const char *target, struct store **out,
                struct lark_err *err);
    void (*close)(struct store *s);
    int (*conn_open)(struct store *s, struct store_conn **out, struct lark_err *err);
    void (*conn_close)(struct store_conn *c);
    int (*ping)(struct store_conn *c, struct lark_err *err);
    int (*send)(struct store_conn *c, const struct store_send_in *in, struct store_send_out *out,
                struct lark_err *err);
    int (*history)(struct store_conn *c, const char *user, const char *conversation_id,
                   const struct store_page *page, json_t **messages, int *has_more,
                   struct lark_err *err);
    int (*inbox_read)(struct store_conn *c, const char *user, uint64_t after, unsigned limit,
                      json_t **events, uint64_t *last, struct lark_err *err);
    int (*inbox_state)(struct store_conn *c, const char *user, uint64_t *head, uint64_t *acked,
                       struct lark_err *err);
    int (*ack)(struct store_conn *c, const char *user, uint64_t seq, uint64_t *acked,
               struct lark_err *err);
    int (*publish)(struct store_conn *c, const struct store_note *notes, size_t n,
                   struct lark_err *err);
    int (*group_create)(struct store_conn *c, const struct store_group_in *in, json_t **conv,
                        struct lark_err *err);
    int (*conversation_list)(struct store_conn *c, const char *user, const char *before_id,
                             unsigned limit, json_t **list, int *has_more, struct lark_err *err);
    int (*conversation_get)(struct store_conn *c, const char *user, const char *conversation_id,
                            json_t **conv, struct lark_err *err);
    int (*member_add)(struct store_conn *c, const char *actor, const char *conversation_id,
                      const char *user, unsigned max_members, int *added, struct lark_err *err);
    int (*member_remove)(struct store_conn *c, const char *actor, const char *conversation_id,
                         const char *user, struct lark_err *err);
    int (*read)(struct store_conn *c, const char *user, const char *conversation_id, uint64_t seq,
                uint64_t *read_seq, struct lark_err *err);
    int (*members)(struct store_conn *c, const char *user, const char *conversation_id,
                   json_t **members, struct lark_err *err);
    int (*presence_touch)(struct store_conn *c, const char *const *users, size_t n, int64_t now,
                          struct lark_err *err);
    int (*presence_expire)(struct store_conn *c, int64_t cutoff, struct lark_err *err);
    int (*presence_get)(struct store_conn *c, const char *const *users, size_t n, json_t **out,
                        struct lark_err *err);
    /* devices and push jobs */
    int (*device_add)(struct store_conn *c, const struct store_device_in *in, unsigned max_per_user,
                      json_t **device, int *created, struct lark_err *err);
    int (*device_list)(struct store_conn *c, const char *user, json_t **devices,
                       struct lark_err *err);
    int (*device_remove)(struct store_conn *c, const char *user, const char *token,
                         struct lark_err *err);
    int (*push_claim)(struct store_conn *c, int64_t now, int64_t lease_until, unsigned max,
                      struct store_push_job **jobs, size_t *n, struct lark_err *err);
    int (*push_finish)(struct store_conn *c, const struct store_push_result *results, size_t n,
                       const struct pushstat *delta, int64_t now, struct lark_err *err);
    int (*push_next_due)(struct store_conn *c, int64_t *due_at, struct lark_err *err);
    int (*push_watch)(struct store_conn *c, int *fd, struct lark_err *err);
    int (*push_watch_drain)(struct store_conn *c, int *changed, struct lark_err *err);
    int (*push_stats)(struct store_conn *c, struct pushstat *out, struct lark_err *err);
    int (*push_dead_list)(struct store_conn *c, int64_t before_id, unsigned limit, json_t **out,
                          struct lark_err *err);
    int (*push_requeue)(struct store_conn *c, int64_t id, int64_t now, size_t *n,
                        struct lark_err *err);
};

struct store {
    const struct store_ops *ops;
    store_note_fn listener; /* may be NULL */
    void *listener_arg;
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
};

/* The API message object for a row (new reference). */
json_t *store_msg_json(const struct store_msg_row *row);

/* An inbox envelope {"seq", "type", "data"}; takes ownership of data. */
json_t *store_envelope(uint64_t seq, const char *type, json_t *data);

/*
 * The key that makes a direct chat unique: the two ids in byte order,
 * joined by '\n' (which no user id contains). Caller frees.
 */
char *store_direct_key(const char *a, const char *b);

/* Hand notes to this process's listener, if any. */
void store_emit_notes(struct store *s, const struct store_note *notes, size_t n);

/* A device object {platform, token, app, created_at} (API.md). */
json_t *store_device_json(const char *platform, const char *token, const char *app,
                          int64_t created_at);

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

#endif
