/*
 * store.h - lark's storage: conversations, messages and per-user inboxes.
 *
 * One interface, two back ends behind struct store_ops (store_impl.h):
 * store_sqlite.c (embedded, one process) and store_pg.c (PostgreSQL, many
 * processes and hosts). Handlers call only these functions and never see
 * SQL or a back end.
 *
 * Data model (DESIGN.md): a message is stored once in its conversation with
 * a gapless conversation seq; every member gets one inbox row pointing at
 * it, with a gapless per-user inbox seq. A user's inbox is the one ordered,
 * resumable stream that SSE, long-poll and WebSocket serve.
 *
 * Threads: struct store is shared by every thread. struct store_conn is a
 * connection that only the thread that opened it may use; each worker
 * opens its own. Writes may be funnelled through a back end's own writer
 * thread (SQLite group commit); callers cannot tell.
 *
 * Durability: a write function returns 0 only after its transaction has
 * committed durably, so the HTTP answer that follows may promise the data
 * is kept. A write that fails leaves nothing behind. The *_later functions
 * are the exception, by design: acknowledged positions and presence are
 * queued and written by a background thread that nobody waits for (an
 * older stored position after a crash only means re-delivery, which
 * at-least-once allows).
 *
 * Notes: the store tells larkd's hub what it must push to live
 * connections - each stored event appended to an inbox, with its seq and
 * its data rendered once (evdata.h), after the commit that appended it; an
 * ephemeral event for a user (typing); a presence change - through one
 * listener (store_set_listener), called from whichever thread produced the
 * note. With SQLite (one process) notes go straight to the listener; a
 * back end shared by several processes carries them to every process's
 * listener (PostgreSQL: NOTIFY, with the event data when it fits), so the
 * hub never knows which host wrote.
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
struct evdata;
struct lark_err;
struct pushstat;
struct store;
struct store_conn;

enum store_note_kind {
    STORE_NOTE_EVENT,     /* a stored event was appended to user's inbox at seq */
    STORE_NOTE_EPHEMERAL, /* json is an event for user's live connections only */
    STORE_NOTE_PRESENCE,  /* user went online or offline */
};

/* A note for the hub. Strings and data are borrowed, valid during the call
 * (a listener that keeps data takes its own reference). */
struct store_note {
    enum store_note_kind kind;
    const char *user;
    uint64_t seq;        /* EVENT: its inbox seq */
    struct evdata *data; /* EVENT: its type and data; NULL when not carried
                            (another host's event too large for NOTIFY): read it */
    int64_t commit_ns;   /* EVENT: time_mono_ns() at commit; 0 if unknown (another host) */
    const char *json;    /* EPHEMERAL: the event envelope, compact JSON */
    int online;          /* PRESENCE: 1 online, 0 offline */
    int64_t last_seen;   /* PRESENCE: ms since the epoch */
};

/* A stored inbox event as read: its seq and its data (one reference). */
struct store_event {
    uint64_t seq;
    struct evdata *data;
};

/* Drop the references of n events and free the array. Accepts NULL. */
void store_events_free(struct store_event *evs, size_t n);

typedef void (*store_note_fn)(void *arg, const struct store_note *notes, size_t n);

/*
 * Open the store named by cfg->db ("sqlite:PATH" or "postgresql://...")
 * and apply pending migrations from cfg->migrations. Returns 0, LARK_EINVAL
 * (bad URL, migration error) or LARK_EUNAVAIL. The caller frees with
 * store_close after every connection is closed.
 */
int store_open(const struct config *cfg, struct store **out, struct lark_err *err);

/* How a process will use the store (store_open_flags). */
enum store_open_flags {
    /*
     * A process that serves one request and exits (larkd as a CGI
     * program): nothing is done at open or close that the next process
     * would only do again. SQLite: no checkpointer thread and no
     * checkpoint at close, and the -wal file is kept when the last
     * connection closes (it would be made again by the next process);
     * SQLite's automatic checkpoint, run by whichever process commits
     * past its threshold, keeps the WAL bounded instead.
     */
    STORE_OPEN_SHORT = 1 << 0,
};

/* store_open for a process that uses the store as flags (enum
 * store_open_flags) say. */
int store_open_flags(const struct config *cfg, unsigned flags, struct store **out,
                     struct lark_err *err);

/* Stop background threads and free. Accepts NULL. */
void store_close(struct store *s);

/* Name of the back end ("sqlite", "postgresql"). */
const char *store_backend(const struct store *s);

/* Set the listener (fn may be NULL). Once it returns, the previous
 * listener is neither running nor called again: set NULL before freeing
 * what arg points at. */
void store_set_listener(struct store *s, store_note_fn fn, void *arg);

/*
 * Deliver ephemeral notes (STORE_NOTE_EPHEMERAL) to every process's
 * listener. Nothing is stored; a note for a user with no live connection
 * is dropped. 0, or LARK_EUNAVAIL.
 */
int store_publish(struct store_conn *c, const struct store_note *notes, size_t n,
                  struct lark_err *err);

/*
 * Notes from other processes (a shared back end): the descriptor the hub
 * watches (-1 when there is none right now: SQLite, or between connection
 * attempts) and whether it waits to write (*want_write: while connecting)
 * or to read, and what the hub calls when it is ready or when the returned
 * ms have passed. Neither ever blocks: the listener connects
 * asynchronously. *reconnected is set after a reconnection: notes may have
 * been missed meanwhile, so the hub catches every stream up. Hub thread
 * only.
 */
int store_listener_fd(struct store *s, int *want_write);
int64_t store_listener_poll(struct store *s, int *reconnected);

/* Open a connection for the calling thread. Caller closes it. */
int store_conn_open(struct store *s, struct store_conn **out, struct lark_err *err);

/* Close a connection. Accepts NULL. */
void store_conn_close(struct store_conn *c);

/* 0 if the database answers, LARK_EUNAVAIL otherwise. */
int store_ping(struct store_conn *c, struct lark_err *err);

/*
 * Commit one small write the way a send commits (core/store_ops_health.c):
 * 0 once it is durable, LARK_EUNAVAIL if the database cannot take a write
 * right now (unreachable, full disk, failing file, read-only). Costs a
 * commit: callers cache the answer (fcgi/health.c).
 */
int store_check_write(struct store_conn *c, struct lark_err *err);

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
    /* API.md "Media": the media the message carries - ids of the sender's
     * ready items, distinct, at most LIMIT_MEDIA_PER_MESSAGE - and the
     * array the message shows for them (compact JSON, as store_media_json
     * renders each item without its status), read before the send; NULL
     * and 0 for none. */
    const char *const *media;
    size_t nmedia;
    const char *media_json;
};

struct store_send_out {
    json_t *message; /* the stored message object (API.md), caller decrefs */
    int duplicate;   /* 1: (sender, client_msg_id) was already stored; nothing new */
};

/*
 * Store a message and append it to every member's inbox, in one
 * transaction. A direct chat is created on first use (the same one whoever
 * starts it). Its media are checked in the same transaction and kept from
 * then on (never expired). Errors: LARK_ENOTFOUND (no such conversation),
 * LARK_ENOTMEMBER, LARK_EBADMEDIA (an item that is not the sender's, or no
 * longer exists), LARK_EMEDIAPENDING (not uploaded yet), LARK_EUNAVAIL,
 * LARK_EINTERNAL.
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
 * Up to limit inbox events of user with seq > after, oldest first: *evs is
 * a new array of *n events (NULL when none; store_events_free). *head is
 * the user's newest inbox seq as of the read (at least the last seq
 * returned), so that a caller can tell "all of it" (the last returned is
 * *head) from "more to come", and clamp a cursor past the end.
 */
int store_inbox_read(struct store_conn *c, const char *user, uint64_t after, unsigned limit,
                     struct store_event **evs, size_t *n, uint64_t *head, struct lark_err *err);

/* One user's part of store_inbox_read_many: user and after in; evs (a new
 * array of n events, store_events_free) and head out, as store_inbox_read
 * gives them. */
struct store_inbox_req {
    const char *user;
    uint64_t after;
    struct store_event *evs;
    size_t n;
    uint64_t head;
};

/*
 * store_inbox_read for each of n users, at most limit events each, in one
 * round trip where the back end can (PostgreSQL; SQLite reads them one by
 * one, which costs it no more): for the hub's catch-up after a
 * reconnection storm. On error every request is left empty.
 */
int store_inbox_read_many(struct store_conn *c, struct store_inbox_req *reqs, size_t n,
                          unsigned limit, struct lark_err *err);

/* The user's newest inbox seq and last acknowledged seq (0, 0 if none);
 * acked includes what this process has queued with store_ack_later. */
int store_inbox_state(struct store_conn *c, const char *user, uint64_t *head, uint64_t *acked,
                      struct lark_err *err);

/*
 * The client processed the inbox up to seq (clamped to the head; never
 * moves backwards). *acked receives the resulting acknowledged seq. The
 * messages from others in the newly acknowledged range become delivered:
 * their senders get one "receipt" event (status "delivered") per
 * (conversation, sender), with up_to the highest conversation seq
 * acknowledged in that conversation - coalesced, however many messages.
 * Durable on return; larkd's request paths use store_ack_later instead.
 */
int store_ack(struct store_conn *c, const char *user, uint64_t seq, uint64_t *acked,
              struct lark_err *err);

/* ---- writes nobody waits for (store_later.c) -------------------------- */

/*
 * Queue "user processed its inbox up to seq" (store_ack's meaning) and
 * return at once, whatever the database is doing: a background thread
 * writes queued positions a few milliseconds later, coalesced per user
 * (the highest wins), with their delivered receipts. While queued, a
 * position counts in store_inbox_state. If the database is unavailable the
 * thread keeps it and tries again; a crash loses at most the positions not
 * yet written (their events are delivered again). Any thread.
 */
void store_ack_later(struct store *s, const char *user, uint64_t seq);

/*
 * Queue store_presence_touch (users seen at now) and store_presence_expire
 * (cutoff); same background thread, same promise: nothing waits, nothing
 * blocks. The presence notes follow the write as usual. Any thread.
 */
void store_presence_touch_later(struct store *s, const char *const *users, size_t n, int64_t now);
void store_presence_expire_later(struct store *s, int64_t cutoff);

/* ---- conversations (groups) ------------------------------------------- */

/* A new group. Strings borrowed; members validated, without duplicates,
 * and not containing the creator. */
struct store_group_in {
    const char *creator;  /* becomes the admin */
    const char *title;    /* may be "" */
    const char **members; /* the others */
    size_t nmembers;
    unsigned max_members; /* group_max, the creator included */
};

/*
 * Create a group and tell every member: a "conversation" event (action
 * "created", data the conversation) in each member's inbox. *conv is the
 * conversation object as store_conversation_get returns it. Errors:
 * LARK_EGROUPFULL, LARK_EUNAVAIL.
 */
int store_group_create(struct store_conn *c, const struct store_group_in *in, json_t **conv,
                       struct lark_err *err);

/*
 * The user's conversations, most recent activity first: up to limit
 * objects {id, type, title, creator, created_at, last_seq, last_message,
 * unread, members: [{user, role}]}, starting after the conversation
 * before_id (NULL: from the newest). *has_more says whether more follow.
 */
int store_conversation_list(struct store_conn *c, const char *user, const char *before_id,
                            unsigned limit, json_t **list, int *has_more, struct lark_err *err);

/*
 * One conversation as the user sees it: the list's fields, each member
 * also with read_seq and delivered_seq. Errors: LARK_ENOTFOUND,
 * LARK_ENOTMEMBER.
 */
int store_conversation_get(struct store_conn *c, const char *user, const char *conversation_id,
                           json_t **conv, struct lark_err *err);

/*
 * The actor (an admin) adds user to a group. Every member, the new one
 * included, gets a "member" event {conversation_id, user, action "added",
 * by}. Adding a member again changes nothing (*added = 0). Errors:
 * LARK_ENOTFOUND, LARK_ENOTMEMBER (actor), LARK_EFORBIDDEN (not admin, or a
 * direct chat), LARK_EGROUPFULL.
 */
int store_member_add(struct store_conn *c, const char *actor, const char *conversation_id,
                     const char *user, unsigned max_members, int *added, struct lark_err *err);

/*
 * Remove user from a group: an admin removes anyone ("removed"), anyone
 * removes themself ("left"). Every member, the one leaving included, gets
 * a "member" event. When the last admin leaves, the longest-standing
 * member becomes admin. Errors: LARK_ENOTFOUND (no such conversation or
 * user not a member), LARK_ENOTMEMBER (actor), LARK_EFORBIDDEN.
 */
int store_member_remove(struct store_conn *c, const char *actor, const char *conversation_id,
                        const char *user, struct lark_err *err);

/*
 * The user has read conversation_id up to seq (clamped to its last seq;
 * never moves back; reading implies delivery). The senders of messages in
 * the newly read range get one "receipt" event each (status "read",
 * up_to). *read_seq receives the resulting position. Errors:
 * LARK_ENOTFOUND, LARK_ENOTMEMBER.
 */
int store_read(struct store_conn *c, const char *user, const char *conversation_id, uint64_t seq,
               uint64_t *read_seq, struct lark_err *err);

/*
 * The members of a conversation user belongs to, as a new JSON array of
 * ids (for typing). Errors: LARK_ENOTFOUND, LARK_ENOTMEMBER.
 */
int store_members(struct store_conn *c, const char *user, const char *conversation_id,
                  json_t **members, struct lark_err *err);

/* ---- presence --------------------------------------------------------- */

/*
 * The users were seen at now (a heartbeat, or a held connection). Those
 * that were offline become online: a STORE_NOTE_PRESENCE note each.
 */
int store_presence_touch(struct store_conn *c, const char *const *users, size_t n, int64_t now,
                         struct lark_err *err);

/*
 * Users not seen since before cutoff (ms) become offline: a
 * STORE_NOTE_PRESENCE note each. Any process may run this; a user goes
 * offline once.
 */
int store_presence_expire(struct store_conn *c, int64_t cutoff, struct lark_err *err);

/*
 * Presence of the users as a new JSON object {user: {status, last_seen}};
 * never seen users are "offline" with last_seen null.
 */
int store_presence_get(struct store_conn *c, const char *const *users, size_t n, json_t **out,
                       struct lark_err *err);

/* ---- waiting in a process of its own (larkd as a CGI program) --------- */
/*
 * A CGI process holds one long-poll or SSE stream of one user and has no
 * hub: nothing tells it of other processes' commits but this. After every
 * commit that appended inbox events, the committing process (whichever it
 * is) makes the users' watchers' descriptors readable:
 *   - SQLite: the writer touches, for each user it appended events for,
 *     one of 64 files in the directory "<database>-wake" (the user's
 *     shard, by a hash of the id), after the commit; a watcher has
 *     inotify on its user's shard file (store_sqlite_wake.h). Not on the
 *     -wal file,
 *     which is written before the commit is visible (measured: about one
 *     wake in ten saw no change yet, and the last commit of a burst was
 *     missed). Only users of the same shard wake each other spuriously.
 *   - PostgreSQL: LISTEN on c's own connection, the channel every larkd
 *     NOTIFYs on; the notes for the user are taken from the notifications.
 * Ephemeral notes for the user (typing; PostgreSQL only, where another
 * process's are carried) are handed to this process's listener
 * (store_set_listener) by store_inbox_watch_drain.
 *
 * store_inbox_watch starts watching user (one user per connection, for
 * the connection's life) and gives the descriptor to poll for input
 * (owned by c; it may change, so ask again after an error). Before each
 * wait, and after it polls readable, call store_inbox_watch_drain: it
 * takes what arrived (on PostgreSQL also what libpq buffered while c ran
 * other statements) and sets *changed when the user's inbox may have
 * grown: read it then. It may wake spuriously. LARK_EUNAVAIL: the watch
 * was lost (the database connection failed); *changed is set too, because
 * notes may have been missed.
 */
int store_inbox_watch(struct store_conn *c, const char *user, int *fd, struct lark_err *err);
int store_inbox_watch_drain(struct store_conn *c, int *changed, struct lark_err *err);

/* ---- per-user limits shared by processes (CGI mode) -------------------- */
/*
 * larkd as a FastCGI daemon enforces its per-user limits in memory; CGI
 * processes live for one request each, so they keep them here, where
 * every process (and, on PostgreSQL, every host) sees the same numbers.
 * Each call is one short write transaction (on SQLite a commit of the
 * writer, with its fsync). Times are wall-clock ms since the epoch, which
 * hosts agree on, unlike their monotonic clocks.
 */

/*
 * Take one token from user's bucket of class cls ("send", ...), which
 * refills at rate tokens per second up to burst (>= 1) and starts full.
 * The refill for the time since the last take and the take are one
 * statement, so concurrent takes never both spend the last token.
 * *wait_ms is 0 if a token was taken, else the ms until one is back.
 */
int store_rate_take(struct store_conn *c, const char *cls, const char *user, double rate,
                    double burst, int64_t now_ms, int64_t *wait_ms, struct lark_err *err);

/* A held connection asking for a slot. Strings borrowed. */
struct store_held_in {
    const char *user;
    const char *slot; /* the caller's random id for this connection */
    const char *host; /* gethostname() of the calling process */
    int64_t pid;      /* the calling process */
    int64_t now_ms;
    int64_t expires_ms; /* the slot frees itself then, whatever happens */
    unsigned max;       /* slots one user may hold at once */
};

/*
 * Take a slot for a held connection of in->user if the user holds fewer
 * than in->max live ones. A slot is live until its expires_ms and while
 * its process exists: a slot of this host whose pid is gone (a process
 * killed before it could release it) is freed here (kill(pid, 0)).
 * Errors: LARK_ETOOMANYCONN (in->max live slots), LARK_EUNAVAIL.
 */
int store_held_acquire(struct store_conn *c, const struct store_held_in *in, struct lark_err *err);

/* Free a slot store_held_acquire took. Releasing a freed slot is a no-op. */
int store_held_release(struct store_conn *c, const char *slot, struct lark_err *err);

/*
 * Which of the users viewer may see the presence of (API.md "Presence",
 * presence_visibility = shared): visible[i] = 1 for viewer itself and for
 * each users[i] that shares a conversation with viewer, else 0. n is at
 * most LIMIT_WATCH_MAX. On error every visible[i] is 0.
 */
int store_presence_visible(struct store_conn *c, const char *viewer, const char *const *users,
                           size_t n, int *visible, struct lark_err *err);

/* ---- tickets (API.md "Authentication"; core/ticket.h) ------------------- */

/* Bytes of the key tickets are signed with. */
#define STORE_TICKET_KEY_LEN 32

/*
 * The key every process signs and checks tickets with, as 64 hex digits:
 * made (random) by the first process to ask, then the same for every
 * process on this database. A write (durable on return). larkd asks once
 * at start.
 */
int store_ticket_key(struct store_conn *c, char hex[2 * STORE_TICKET_KEY_LEN + 1],
                     struct lark_err *err);

/*
 * Record the use of the ticket with this nonce (a string of at most 64
 * bytes), valid until expires_at (ms): *first = 1 the first time, 0 if it
 * was used before (on any process of this database). Uses that expired
 * before now (ms) are forgotten in the same transaction. Durable on return.
 */
int store_ticket_use(struct store_conn *c, const char *nonce, int64_t expires_at, int64_t now,
                     int *first, struct lark_err *err);

/* ---- media (API.md "Media (attachments)") ------------------------------ */
/*
 * What was uploaded; the bytes are in the media storage (blob.h) under
 * skey. An item is pending until its bytes are stored with the declared
 * size and sha256, then ready. A message that names it makes it
 * referenced (kept); an item no message names is deleted media_retention
 * seconds after its upload (store_media_expire).
 */

/* A media row. Strings owned (store_media_release), "" when absent. */
struct store_media {
    char *id;
    char *uploader;
    char *content_type; /* normalized (media.h) */
    char *name;
    char *sha256;              /* lowercase hex */
    char *skey;                /* the storage key (blob_key) */
    char *upload_hash;         /* sha256 hex of a two-step upload URL's key, "" if none */
    int64_t size;              /* bytes */
    int64_t created_at;        /* ms */
    int64_t upload_expires_at; /* ms; 0 if no upload URL */
    int ready;                 /* 1 ready, 0 pending */
    int readable;              /* store_media_get: the asking user may download it */
};

void store_media_release(struct store_media *m);

/* The API object of an item (API.md): {id, content_type, size, sha256,
 * name}, plus created_at and status when full (upload answers). New
 * reference. */
json_t *store_media_json(const struct store_media *m, int full);

/*
 * A new pending item described by in (id, uploader, content_type, name,
 * sha256, skey, size, created_at, and upload_hash / upload_expires_at or
 * ""/0). Refused with LARK_EQUOTA when the uploader's items would pass
 * quota bytes (0: no quota), counted in the same transaction.
 */
int store_media_create(struct store_conn *c, const struct store_media *in, int64_t quota,
                       struct lark_err *err);

/* The bytes of id are stored: it is ready. LARK_ENOTFOUND if it is gone
 * (expired meanwhile). */
int store_media_ready(struct store_conn *c, const char *id, struct lark_err *err);

/* Bytes of media user keeps now (the quota's count). */
int store_media_usage(struct store_conn *c, const char *user, int64_t *bytes, struct lark_err *err);

/*
 * The item id as user sees it (user "" for nobody: readable is then 0):
 * *out filled, to release. LARK_ENOTFOUND if there is none.
 */
int store_media_get(struct store_conn *c, const char *id, const char *user, struct store_media *out,
                    struct lark_err *err);

/*
 * Delete up to limit items no message names that were uploaded before
 * cutoff (ms), oldest first; *gone is a new array of [id, skey] pairs,
 * whose bytes the caller removes (blob_remove). Several processes may run
 * this at once: each row goes to one of them.
 */
int store_media_expire(struct store_conn *c, int64_t cutoff, unsigned limit, json_t **gone,
                       struct lark_err *err);

/* Whether any item still names skey (its bytes must stay). */
int store_media_key_used(struct store_conn *c, const char *skey, int *used, struct lark_err *err);

/* ---- devices (API.md "Push for offline users") ------------------------ */

/* A device registration. Strings borrowed, already validated. */
struct store_device_in {
    const char *user;
    const char *platform; /* "fcm" or "apns" */
    const char *token;
    const char *app; /* bundle id / package name */
};

/*
 * Register a device for in->user. A token is one app install; if another
 * user had registered it, it now belongs to in->user (the phone changed
 * hands or accounts), with that user's queued pushes for it dropped.
 * *created is 1 for a new registration of this user, 0 if it was already
 * theirs (app updated). *device is {platform, token, app, created_at}.
 * Errors: LARK_ETOOMANY (more than max_per_user devices), LARK_EUNAVAIL.
 */
int store_device_add(struct store_conn *c, const struct store_device_in *in, unsigned max_per_user,
                     json_t **device, int *created, struct lark_err *err);

/* The user's devices, oldest first, as a new JSON array of device objects. */
int store_device_list(struct store_conn *c, const char *user, json_t **devices,
                      struct lark_err *err);

/*
 * Remove the user's device with this token (either platform) and its
 * queued pushes. LARK_ENOTFOUND if the user has no such device (another
 * user's token is not found either).
 */
int store_device_remove(struct store_conn *c, const char *user, const char *token,
                        struct lark_err *err);

/* ---- push jobs (the push daemon's queue) ------------------------------ */
/*
 * Jobs are made inside store_send's transaction, one per device of each
 * member who is offline (no presence or presence offline), so that no
 * acknowledged message can miss its push. While a job's coalescing window
 * (cfg->push_window_ms from its first message) is open, later messages to
 * the same device fold into it: one notification with a count and the
 * newest message. Daemons claim due jobs with a lease; a job whose daemon
 * died is claimed again once its lease ends (at-least-once; a duplicate
 * needs a daemon that stalled past its lease). On PostgreSQL the claim
 * picks rows with SELECT ... FOR UPDATE SKIP LOCKED and leases them in the
 * same transaction, so several daemons share the queue without sending a
 * job twice (tests/integration/test_push_pg.mjs).
 */

/* A claimed job, with what sending it needs. Strings owned by the job
 * (store_push_jobs_free). */
struct store_push_job {
    int64_t id;
    char *user;
    char *platform; /* "fcm" or "apns" */
    char *token;
    char *app;             /* the device's app (APNs topic when not configured) */
    char *conversation_id; /* of the newest message */
    char *conv_title;      /* group title, or NULL (direct chat) */
    char *sender;          /* of the newest message, "" if it was deleted */
    char *msg_type;
    char *body;  /* the newest message's body, "" if gone */
    char *media; /* its media (JSON array text, API.md "Media"), "" if none */
    uint64_t msg_seq;
    uint64_t inbox_seq;
    unsigned count;    /* messages folded into this notification, >= 1 */
    unsigned attempts; /* claims so far, this one included */
    int user_online;   /* the user is online now: do not send */
    int user_read;     /* the user acknowledged inbox_seq already: do not send */
    int64_t created_at;
};

/*
 * Claim up to max jobs due at now (ms), oldest due first, leasing them
 * until lease_until: nobody else claims them before then. *jobs is a new
 * array of *n jobs (NULL when none), freed with store_push_jobs_free.
 */
int store_push_claim(struct store_conn *c, int64_t now, int64_t lease_until, unsigned max,
                     struct store_push_job **jobs, size_t *n, struct lark_err *err);

void store_push_jobs_free(struct store_push_job *jobs, size_t n);

enum store_push_outcome {
    STORE_PUSH_DONE,       /* sent, or skipped: delete the job */
    STORE_PUSH_RETRY,      /* try again at due_at */
    STORE_PUSH_DEAD,       /* give up: move it to push_dead with error */
    STORE_PUSH_TOKEN_GONE, /* the device token is dead: delete the device and its jobs */
};

/* What became of one claimed job. Strings borrowed. */
struct store_push_result {
    int64_t id;
    enum store_push_outcome outcome;
    int64_t due_at;       /* RETRY: ms */
    const char *error;    /* RETRY, DEAD: the last error, for operators */
    const char *platform; /* TOKEN_GONE: the device */
    const char *token;
};

/*
 * Record the outcomes of claimed jobs and add delta (may be NULL) to the
 * push counters, in one transaction. A job that no longer exists (its
 * device was removed meanwhile) is skipped.
 */
int store_push_finish(struct store_conn *c, const struct store_push_result *results, size_t n,
                      const struct pushstat *delta, int64_t now, struct lark_err *err);

/* When the next job falls due (ms; INT64_MAX if there is none). */
int store_push_next_due(struct store_conn *c, int64_t *due_at, struct lark_err *err);

/*
 * Watch for new jobs without polling: *fd (owned by c) becomes readable
 * after a commit that queued jobs - SQLite: inotify on the database's
 * directory, where the writer touches "<database>-push" after such a
 * commit; PostgreSQL: a LISTEN lark_push connection (the send NOTIFYs).
 * Call it again each time before polling: the descriptor may change after
 * a reconnection (-1 and LARK_EUNAVAIL while the database is unreachable).
 * After it polls readable, call store_push_watch_drain; *changed says
 * whether jobs may have been added. It may wake spuriously.
 */
int store_push_watch(struct store_conn *c, int *fd, struct lark_err *err);
int store_push_watch_drain(struct store_conn *c, int *changed, struct lark_err *err);

/* The counters (and gauges: queued jobs, dead letters) into *out. */
int store_push_stats(struct store_conn *c, struct pushstat *out, struct lark_err *err);

/*
 * Dead letters, newest first: up to limit objects {id, user, platform,
 * token, conversation_id, msg_seq, count, attempts, last_error,
 * created_at, died_at} with id < before_id (0: from the newest).
 */
int store_push_dead_list(struct store_conn *c, int64_t before_id, unsigned limit, json_t **out,
                         struct lark_err *err);

/*
 * Put dead letters back in the queue, due now with no attempts (id 0: all
 * of them). *n is how many were re-queued; a dead letter whose device is
 * gone is dropped instead. LARK_ENOTFOUND if id names no dead letter.
 */
int store_push_requeue(struct store_conn *c, int64_t id, int64_t now, size_t *n,
                       struct lark_err *err);

#endif
