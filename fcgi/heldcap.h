/*
 * heldcap.h - the per-user cap on held connections (API.md "Operations":
 * "at most 8 held connections (SSE, long-poll, WebSocket) per user";
 * max_held_per_user). A connection that would pass it is refused with 429
 * too_many_connections and Retry-After, before anything of its answer is
 * written, so one user cannot take a server's connections.
 *
 * An interface with back ends (struct heldcap_ops below, heldcap.c
 * dispatches):
 *   - in the store (heldcap_new_store, heldcap_store.c): larkd as a CGI
 *     program, where each held connection is a process of its own and only
 *     the database sees them all. A slot is a row with its process's host,
 *     pid and an expiry, so that a process killed before it could release
 *     its slot does not hold it for ever (store_held_acquire).
 * larkd as a FastCGI daemon holds every connection of its process in the
 * hub, which can count them in memory behind this same interface.
 *
 * Not thread-safe: one owner (a CGI process has one thread that serves).
 */
#ifndef LARK_HELDCAP_H
#define LARK_HELDCAP_H

struct heldcap;
struct heldcap_slot;
struct lark_err;
struct store_conn;

/* Retry-After of a refusal (s): the user's other held connections end
 * within a long-poll timeout or free themselves; this spreads the retries
 * of a client that keeps opening streams without leaving it long without
 * one. */
#define HELDCAP_RETRY_AFTER_S 5

struct heldcap_ops {
    int (*acquire)(struct heldcap *cap, const char *user, int hold_s, struct heldcap_slot **slot,
                   int *retry_after, struct lark_err *err);
    void (*release)(struct heldcap *cap, struct heldcap_slot *slot);
    void (*free)(struct heldcap *cap);
};

/* Back ends embed this first. */
struct heldcap {
    const struct heldcap_ops *ops;
};

/*
 * In the store behind db (borrowed: it must outlive the cap; its thread
 * only), at most max held connections per user (0: no cap, nothing is
 * written). Caller frees.
 */
struct heldcap *heldcap_new_store(struct store_conn *db, unsigned max);

/*
 * Take a slot for one held connection of user that will be held at most
 * hold_s seconds (a back end may free it after that whatever became of
 * its holder). *slot is the caller's until heldcap_release (NULL when
 * there is no cap). Errors, with err: LARK_ETOOMANYCONN (*retry_after set,
 * seconds), LARK_EUNAVAIL (the cap cannot be checked: 503).
 */
int heldcap_acquire(struct heldcap *cap, const char *user, int hold_s, struct heldcap_slot **slot,
                    int *retry_after, struct lark_err *err);

/* Give a slot back. Accepts NULL. */
void heldcap_release(struct heldcap *cap, struct heldcap_slot *slot);

/* Accepts NULL. */
void heldcap_free(struct heldcap *cap);

#endif
