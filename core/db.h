/*
 * db.h - the little SQL a store operation needs, whatever the engine.
 *
 * Why: lark stores the same data model in SQLite and in PostgreSQL, and a
 * send, an acknowledgement or a group change is the same sequence of
 * statements in both. So the operations (store_ops_*.c) are written once
 * against this interface, and each back end supplies an executor (its
 * struct db_ops) and a catalogue of its dialect's SQL for every enum
 * db_stmt (store_sqlite_sql.c, store_pg_sql.c). A statement whose SQL is
 * NULL in a catalogue does nothing there (e.g. row locks SQLite does not
 * need because it has one writer).
 *
 * Values are bound, never spliced: struct db_arg carries text (with a
 * length), an integer or NULL. A text argument whose pointer is NULL is
 * bound as SQL NULL.
 *
 * A struct db is one connection, used by one thread. A write operation
 * runs inside the transaction its back end opened for it (SQLite: the
 * writer thread's batch; PostgreSQL: this connection); db_note queues a
 * note for the hub that is delivered only if that transaction commits.
 * Only one query per statement id may be open at a time on a connection
 * (finish it with db_done before running the same statement again).
 */
#ifndef LARK_DB_H
#define LARK_DB_H

#include <stddef.h>
#include <stdint.h>

struct lark_err;
struct store_note;
struct db;
struct db_rows;

enum db_stmt {
    /* transactions (SQLite's writer; PostgreSQL's begin/commit) */
    DB_PING,
    /* messages and inboxes */
    DB_MSG_BY_CLIENT,
    DB_MSG_INSERT,
    DB_MSG_LAST,
    DB_MSG_LAST_SEQ,
    DB_CONV_BY_DIRECT,
    DB_CONV_INSERT,
    DB_CONV_TYPE,
    DB_CONV_BUMP,
    DB_USER_ENSURE,
    DB_MEMBER_INSERT,
    DB_MEMBER_ROLE,
    DB_LOCK_MEMBERS,
    DB_LOCK_USERS,
    DB_INBOX_BUMP_MEMBERS,
    DB_INBOX_INSERT_MEMBERS,
    DB_INBOX_BUMP_USER,
    DB_INBOX_INSERT,
    DB_ACK,
    DB_ACK_SENDERS,
    DB_ACK_CONV_MAX,
    DB_DELIVERED,
    DB_INBOX_STATE,
    DB_INBOX_READ,
    DB_INBOX_READ_MANY,  /* $1 JSON array of users, $2 of their afters, $3 limit each */
    DB_INBOX_HEADS_MANY, /* $1 JSON array of users: (id, inbox_head) */
    DB_HIST_DESC,
    DB_HIST_ASC,
    /* conversations */
    DB_CONV_GET,
    DB_CONV_COUNT_ADD,
    DB_CONV_LIST,
    DB_CONV_LIST_AFTER,
    DB_CONV_ACTIVITY,
    DB_MEMBERS,
    DB_MEMBER_DELETE,
    DB_MEMBER_ADMINS,
    DB_MEMBER_PROMOTE,
    DB_MEMBER_READ_GET,
    DB_MEMBER_READ_SET,
    DB_UNREAD,
    /* presence; $1 is a JSON array of user ids */
    DB_PRESENCE_LOCK,
    DB_PRESENCE_NEWLY_ONLINE,
    DB_PRESENCE_TOUCH,
    DB_PRESENCE_EXPIRE,
    DB_PRESENCE_GET,
    DB_PRESENCE_VISIBLE, /* $1 the viewer, $2 a JSON array: those who share a conversation */
    /* devices and push jobs (store_ops_push.c) */
    DB_DEVICE_COUNT,
    DB_DEVICE_OWNER,
    DB_DEVICE_UPSERT,
    DB_DEVICE_LIST,
    DB_DEVICE_DELETE_OWN,
    DB_DEVICE_DELETE,
    DB_DEVICE_JOBS_DELETE,
    DB_PUSH_ENQUEUE,
    DB_PUSH_SIGNAL, /* wake the push daemons after this commit (see store_ops_push.c) */
    DB_PUSH_DUE_IDS,
    DB_PUSH_SEAL,
    DB_PUSH_JOB_GET,
    DB_PUSH_DELETE,
    DB_PUSH_RETRY,
    DB_PUSH_BURY,
    DB_PUSH_STAT_ADD,
    DB_PUSH_STATS,
    DB_PUSH_COUNTS,
    DB_PUSH_NEXT_DUE,
    DB_PUSH_DEAD_LIST,
    DB_PUSH_REQUEUE,
    DB_PUSH_DEAD_DELETE,
    /* per-user limits shared by processes (store_ops_limits.c) */
    DB_RATE_TAKE,
    DB_RATE_SWEEP,
    DB_HELD_LOCK, /* serialize one user's slot changes (PostgreSQL) */
    DB_HELD_EXPIRE,
    DB_HELD_LIST,
    DB_HELD_INSERT,
    DB_HELD_DELETE,
    /* tickets (store_ops_ticket.c) */
    DB_SECRET_INSERT, /* $1 name, $2 value, $3 now: keeps an existing one */
    DB_SECRET_GET,
    DB_TICKET_PURGE, /* $1 now: forget uses that expired */
    DB_TICKET_USE,   /* $1 nonce, $2 expires_at: a row back only if it was new */
    /* media (store_ops_media.c) */
    DB_MEDIA_INSERT,
    DB_MEDIA_USAGE,
    DB_MEDIA_READY,
    DB_MEDIA_GET,
    DB_MEDIA_TAKE,  /* a send names the sender's ready item: referenced from now on */
    DB_MEDIA_OWNED, /* the status of the sender's item, for the error when TAKE fails */
    DB_MEDIA_LINK,
    DB_MEDIA_EXPIRE,
    DB_MEDIA_KEY_USED,
    DB_NSTMT
};

enum db_arg_type { DB_ARG_NULL, DB_ARG_TEXT, DB_ARG_INT };

struct db_arg {
    enum db_arg_type type;
    const char *s; /* DB_ARG_TEXT; NULL binds SQL NULL */
    size_t len;    /* bytes of s; DB_LEN_NUL: up to its NUL */
    int64_t i;     /* DB_ARG_INT */
};

#define DB_LEN_NUL ((size_t)-1)
#define DBT(str) ((struct db_arg){DB_ARG_TEXT, (str), DB_LEN_NUL, 0})
#define DBTN(str, n) ((struct db_arg){DB_ARG_TEXT, (str), (n), 0})
#define DBI(v) ((struct db_arg){DB_ARG_INT, NULL, 0, (int64_t)(v)})
#define DBNULL ((struct db_arg){DB_ARG_NULL, NULL, 0, 0})
#define DB_ARGS(...)                                                                               \
    ((const struct db_arg[]){__VA_ARGS__}),                                                        \
        (int)(sizeof((struct db_arg[]){__VA_ARGS__}) / sizeof(struct db_arg))

/* What a back end implements (its connections embed struct db first). */
struct db_ops {
    int (*query)(struct db *d, enum db_stmt id, const struct db_arg *args, int n,
                 struct db_rows **rows, struct lark_err *err);
    int (*has)(struct db *d, enum db_stmt id);
    int (*next)(struct db_rows *r, struct lark_err *err);
    const char *(*text)(struct db_rows *r, int col);
    size_t (*len)(struct db_rows *r, int col);
    int (*is_null)(struct db_rows *r, int col);
    void (*done)(struct db_rows *r);
    void (*note)(struct db *d, const struct store_note *note);
};

struct db {
    const struct db_ops *ops;
};

/* A running query. Back ends embed it first in their own result struct. */
struct db_rows {
    struct db *db; /* the connection it runs on */
};

/*
 * Run statement id. On success *rows is the result to step with db_next
 * and finish with db_done. Errors: LARK_EUNAVAIL (the database is down,
 * full, busy, or the transaction must be retried), LARK_EINTERNAL (a bug),
 * LARK_ECONFLICT (a unique constraint: a concurrent writer won a race the
 * caller may retry).
 */
int db_query(struct db *d, enum db_stmt id, const struct db_arg *args, int n, struct db_rows **rows,
             struct lark_err *err);

/* 1 when a row is ready, 0 after the last row, a LARK_E* code on error. */
int db_next(struct db_rows *r, struct lark_err *err);

/* A column of the current row: text ("" for NULL), its length, as an
 * integer (0 for NULL or not a number), or whether it is NULL. */
const char *db_text(struct db_rows *r, int col);
size_t db_len(struct db_rows *r, int col);
int64_t db_int(struct db_rows *r, int col);
int db_is_null(struct db_rows *r, int col);

/* Finish a query. Accepts NULL. */
void db_done(struct db_rows *r);

/* 1 if this engine's catalogue has SQL for id (a statement without SQL
 * does nothing), for operations that have a faster way on some engines. */
int db_has(struct db *d, enum db_stmt id);

/* Run a statement, ignoring any rows. */
int db_exec(struct db *d, enum db_stmt id, const struct db_arg *args, int n, struct lark_err *err);

/* The first column of the first row as an integer; *found = 0 (and *out
 * untouched) when there is no row. */
int db_int1(struct db *d, enum db_stmt id, const struct db_arg *args, int n, int64_t *out,
            int *found, struct lark_err *err);

/* Deliver note to the hub if, and when, this transaction commits. */
void db_note(struct db *d, const struct store_note *note);

#endif
