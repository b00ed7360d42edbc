/*
 * store_sqlite_int.h - what the SQLite back end's files share (private).
 *
 * The back end is split by job: store_sqlite.c (connections, the writer
 * thread, migrations), store_sqlite_sql.c (every SQL statement, in one
 * catalogue indexed by enum sq_stmt), store_sqlite_msg.c (messages,
 * inboxes, acknowledgements), store_sqlite_conv.c (groups, members, read
 * positions), store_sqlite_presence.c and store_sqlite_push.c (devices,
 * push jobs). Nothing here is visible outside
 * core/store_sqlite*.c.
 *
 * Writes run only inside a writer op (sq_write), on the writer's
 * connection, inside the writer's transaction; an op that fails is rolled
 * back to its savepoint, notes and all. Reads use the calling thread's own
 * connection (struct sq_conn).
 */
#ifndef LARK_STORE_SQLITE_INT_H
#define LARK_STORE_SQLITE_INT_H

#include "core/store_impl.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

enum sq_stmt {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SAVEPOINT,
    SQ_ROLLBACK_TO,
    SQ_RELEASE,
    SQ_PING,
    /* messages and inboxes */
    SQ_MSG_BY_CLIENT,
    SQ_MSG_INSERT,
    SQ_MSG_LAST,
    SQ_CONV_BY_DIRECT,
    SQ_CONV_INSERT,
    SQ_CONV_EXISTS,
    SQ_CONV_BUMP,
    SQ_USER_ENSURE,
    SQ_MEMBER_INSERT,
    SQ_MEMBER_ROLE,
    SQ_INBOX_BUMP_MEMBERS,
    SQ_INBOX_INSERT_MEMBERS,
    SQ_INBOX_BUMP_USER,
    SQ_INBOX_INSERT,
    SQ_ACK,
    SQ_ACK_SENDERS,
    SQ_ACK_CONV_MAX,
    SQ_DELIVERED,
    SQ_INBOX_STATE,
    SQ_INBOX_READ,
    SQ_HIST_DESC,
    SQ_HIST_ASC,
    /* conversations */
    SQ_CONV_GET,
    SQ_CONV_COUNT_ADD,
    SQ_CONV_LIST,
    SQ_CONV_LIST_AFTER,
    SQ_CONV_ACTIVITY,
    SQ_MEMBERS,
    SQ_MEMBER_DELETE,
    SQ_MEMBER_ADMINS,
    SQ_MEMBER_PROMOTE,
    SQ_MEMBER_READ_GET,
    SQ_MEMBER_READ_SET,
    SQ_READ_SENDERS,
    SQ_UNREAD,
    /* presence */
    SQ_PRESENCE_GET,
    SQ_PRESENCE_UPSERT,
    SQ_PRESENCE_EXPIRE,
    /* devices and push jobs */
    SQ_DEVICE_COUNT,
    SQ_DEVICE_OWNER,
    SQ_DEVICE_UPSERT,
    SQ_DEVICE_LIST,
    SQ_DEVICE_DELETE_OWN,
    SQ_DEVICE_DELETE,
    SQ_DEVICE_JOBS_DELETE,
    SQ_PUSH_ENQUEUE,
    SQ_PUSH_DUE_IDS,
    SQ_PUSH_SEAL,
    SQ_PUSH_JOB_GET,
    SQ_PUSH_DELETE,
    SQ_PUSH_RETRY,
    SQ_PUSH_BURY,
    SQ_PUSH_STAT_ADD,
    SQ_PUSH_STATS,
    SQ_PUSH_COUNTS,
    SQ_PUSH_NEXT_DUE,
    SQ_PUSH_DEAD_LIST,
    SQ_PUSH_REQUEUE,
    SQ_PUSH_DEAD_DELETE,
    SQ_NSTMT
};

/* store_sqlite_sql.c */
extern const char *const sq_sql[SQ_NSTMT];

/* A connection and its prepared statements (prepared on first use). */
struct sq_db {
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ_NSTMT];
};

/* Notes gathered during a batch, emitted after its commit. */
struct sq_notes {
    struct store_note *v; /* v[i].user aliases owned[i] */
    char **owned;
    size_t n, cap;
};

struct sq_store {
    struct store base;
    char *path;
    int64_t push_window_ms; /* cfg->push_window_ms: coalescing window of a push job */
    char *push_signal;      /* "<path>-push": touched after a commit that queued push jobs */
    int push_queued;        /* the batch being written queued push jobs (writer only) */
    struct sq_db writer;    /* used only by the writer thread after open */
    struct sq_notes notes;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sq_op *head, *tail; /* queue, guarded by mu */
    int stopping;              /* guarded by mu */
};

struct sq_conn {
    struct store_conn base;
    struct sq_db rd;
    int watch_fd; /* store_push_watch: inotify descriptor, -1 until asked for */
};

/* A writer op: runs on the writer's connection inside its transaction. */
typedef int (*sq_op_fn)(struct sq_db *w, void *arg, struct lark_err *err);

/* Queue fn and wait until its transaction has committed (or failed). */
int sq_write(struct sq_store *s, sq_op_fn fn, void *arg, struct lark_err *err);

/* The store that owns the writer connection w. */
struct sq_store *sq_store_of(struct sq_db *w);

/* The prepared statement id, reset and unbound after each use (sq_done);
 * NULL if it cannot be prepared (logged). */
sqlite3_stmt *sq_stmt(struct sq_db *d, enum sq_stmt id);
void sq_done(sqlite3_stmt *st);

/* Step a statement that returns no rows we need. */
int sq_exec(struct sq_db *d, enum sq_stmt id, struct lark_err *err);

/* Map a SQLite failure to LARK_EUNAVAIL / LARK_EINTERNAL, logging it. */
int sq_fail(sqlite3 *db, int src, struct lark_err *err, const char *what);

/* sq_fail for a statement that could not be prepared. */
int sq_fail_prepare(struct sq_db *d, struct lark_err *err);

void sq_bind_text(sqlite3_stmt *st, int i, const char *s);
int64_t sq_u2i(uint64_t v);
const char *sq_col_text(sqlite3_stmt *st, int i);

/* A message object from the message columns starting at column base. */
json_t *sq_row_msg(sqlite3_stmt *st, int base);

/* Queue a note for after the commit (writer thread only). */
void sq_note(struct sq_db *w, const struct store_note *note);

/* Make sure user has a users row (writer). */
int sq_ensure_user(struct sq_db *w, const char *user, int64_t now, struct lark_err *err);

/* Insert a member row (and its users row) with role (writer). */
int sq_add_member(struct sq_db *w, const char *conv, const char *user, const char *role,
                  uint64_t joined_seq, int64_t now, struct lark_err *err);

/* 0 if user is a member of conv; else LARK_ENOTMEMBER or LARK_ENOTFOUND.
 * *role, if not NULL, receives "admin" or "member" (static strings). */
int sq_check_member(struct sq_db *d, const char *conv, const char *user, const char **role,
                    struct lark_err *err);

/*
 * Append one event to the inbox of every member of conv (writer): type,
 * and either the message msg_seq (payload NULL) or a JSON payload.
 */
int sq_fanout(struct sq_db *w, const char *conv, const char *type, uint64_t msg_seq,
              const char *payload, int64_t now, struct lark_err *err);

/* Append one event with a JSON payload to one user's inbox (writer). */
int sq_inbox_append(struct sq_db *w, const char *user, const char *type, const char *conv,
                    const char *payload, int64_t now, struct lark_err *err);

/* A "receipt" event's payload (caller frees). */
char *sq_receipt_payload(const char *conv, const char *user, const char *status, uint64_t up_to);

/* The operations, with the contracts of store.h, by file. */
/* store_sqlite_msg.c */
int sq_send(struct store_conn *c, const struct store_send_in *in, struct store_send_out *out,
            struct lark_err *err);
int sq_history(struct store_conn *c, const char *user, const char *conv,
               const struct store_page *page, json_t **messages, int *has_more,
               struct lark_err *err);
int sq_inbox_read(struct store_conn *c, const char *user, uint64_t after, unsigned limit,
                  json_t **events, uint64_t *last, struct lark_err *err);
int sq_inbox_state(struct store_conn *c, const char *user, uint64_t *head, uint64_t *acked,
                   struct lark_err *err);
int sq_ack(struct store_conn *c, const char *user, uint64_t seq, uint64_t *acked,
           struct lark_err *err);
/* store_sqlite_conv.c */
int sq_group_create(struct store_conn *c, const struct store_group_in *in, json_t **conv,
                    struct lark_err *err);
int sq_conversation_list(struct store_conn *c, const char *user, const char *before_id,
                         unsigned limit, json_t **list, int *has_more, struct lark_err *err);
int sq_conversation_get(struct store_conn *c, const char *user, const char *conv, json_t **out,
                        struct lark_err *err);
int sq_member_add(struct store_conn *c, const char *actor, const char *conv, const char *user,
                  unsigned max_members, int *added, struct lark_err *err);
int sq_member_remove(struct store_conn *c, const char *actor, const char *conv, const char *user,
                     struct lark_err *err);
int sq_read(struct store_conn *c, const char *user, const char *conv, uint64_t seq,
            uint64_t *read_seq, struct lark_err *err);
int sq_members(struct store_conn *c, const char *user, const char *conv, json_t **members,
               struct lark_err *err);
/* store_sqlite_presence.c */
int sq_presence_touch(struct store_conn *c, const char *const *users, size_t n, int64_t now,
                      struct lark_err *err);
int sq_presence_expire(struct store_conn *c, int64_t cutoff, struct lark_err *err);
int sq_presence_get(struct store_conn *c, const char *const *users, size_t n, json_t **out,
                    struct lark_err *err);
/* store_sqlite_push.c */
int sq_push_enqueue(struct sq_db *w, const char *conv, uint64_t msg_seq, const char *sender,
                    int64_t now, struct lark_err *err);
void sq_push_watch_close(struct sq_conn *c);
/* After a commit: tell push daemons if the batch queued jobs (writer). */
void sq_push_signal(struct sq_store *s);
int sq_device_add(struct store_conn *c, const struct store_device_in *in, unsigned max_per_user,
                  json_t **device, int *created, struct lark_err *err);
int sq_device_list(struct store_conn *c, const char *user, json_t **devices, struct lark_err *err);
int sq_device_remove(struct store_conn *c, const char *user, const char *token,
                     struct lark_err *err);
int sq_push_claim(struct store_conn *c, int64_t now, int64_t lease_until, unsigned max,
                  struct store_push_job **jobs, size_t *n, struct lark_err *err);
int sq_push_finish(struct store_conn *c, const struct store_push_result *results, size_t n,
                   const struct pushstat *delta, int64_t now, struct lark_err *err);
int sq_push_next_due(struct store_conn *c, int64_t *due_at, struct lark_err *err);
int sq_push_watch(struct store_conn *c, int *fd, struct lark_err *err);
int sq_push_watch_drain(struct store_conn *c, int *changed, struct lark_err *err);
int sq_push_stats(struct store_conn *c, struct pushstat *out, struct lark_err *err);
int sq_push_dead_list(struct store_conn *c, int64_t before_id, unsigned limit, json_t **out,
                      struct lark_err *err);
int sq_push_requeue(struct store_conn *c, int64_t id, int64_t now, size_t *n, struct lark_err *err);

#endif
