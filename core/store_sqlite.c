/*
 * store_sqlite.c - the embedded SQLite back end.
 *
 * Shape (DESIGN.md): SQLite has one writer at a time, and several writers
 * fighting over the lock are unfair and spin on SQLITE_BUSY. So every write
 * goes through one connection owned by one writer thread. Callers queue a
 * write op and sleep; the writer takes every queued op, runs them in one
 * transaction (each inside its own SAVEPOINT, so one failing op does not
 * undo the others), commits once, and only then wakes each caller: group
 * commit. One fsync covers a whole batch, which is how synchronous=FULL
 * still sustains thousands of sends per second. Reads use per-thread
 * connections in WAL mode, which never block on the writer.
 *
 * Because commits happen in one thread in order, inbox seqs reach the wake
 * function in commit order, and conversation and inbox seqs are gapless by
 * construction (each is "last + 1" inside the single writing transaction).
 */
#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/migrate.h"
#include "core/store_impl.h"
#include "core/timeutil.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* How long a connection waits on a lock held by another process (e.g. an
 * operator's sqlite3 shell) before the request fails with 503. */
#define SQ_BUSY_TIMEOUT_MS 5000

#define MSG_COLS                                                                                   \
    "m.id, m.conversation_id, m.seq, m.sender, m.client_msg_id, m.type, m.body, m.meta, "          \
    "m.created_at"

enum sq_stmt {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SAVEPOINT,
    SQ_ROLLBACK_TO,
    SQ_RELEASE,
    SQ_PING,
    SQ_MSG_BY_CLIENT,
    SQ_CONV_BY_DIRECT,
    SQ_CONV_INSERT,
    SQ_CONV_EXISTS,
    SQ_CONV_BUMP,
    SQ_USER_ENSURE,
    SQ_MEMBER_INSERT,
    SQ_MEMBER_ROLE,
    SQ_MSG_INSERT,
    SQ_INBOX_BUMP_MEMBERS,
    SQ_INBOX_INSERT_MEMBERS,
    SQ_ACK,
    SQ_INBOX_STATE,
    SQ_INBOX_READ,
    SQ_HIST_DESC,
    SQ_HIST_ASC,
    SQ_NSTMT
};

static const char *const sq_sql[SQ_NSTMT] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_SAVEPOINT] = "SAVEPOINT op",
    [SQ_ROLLBACK_TO] = "ROLLBACK TO op",
    [SQ_RELEASE] = "RELEASE op",
    [SQ_PING] = "SELECT 1",
    [SQ_MSG_BY_CLIENT] = "SELECT " MSG_COLS " FROM messages m"
                         " WHERE m.sender = ?1 AND m.client_msg_id = ?2",
    [SQ_CONV_BY_DIRECT] = "SELECT id FROM conversations WHERE direct_key = ?1",
    [SQ_CONV_INSERT] = "INSERT INTO conversations (id, type, title, direct_key, creator,"
                       " last_seq, last_activity, member_count, created_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?6)",
    [SQ_CONV_EXISTS] = "SELECT 1 FROM conversations WHERE id = ?1",
    [SQ_CONV_BUMP] = "UPDATE conversations SET last_seq = last_seq + 1, last_activity = ?2"
                     " WHERE id = ?1 RETURNING last_seq",
    [SQ_USER_ENSURE] = "INSERT INTO users (id, created_at) VALUES (?1, ?2)"
                       " ON CONFLICT (id) DO NOTHING",
    [SQ_MEMBER_INSERT] = "INSERT INTO members (conversation_id, user_id, role, joined_seq,"
                         " joined_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQ_MEMBER_ROLE] = "SELECT role FROM members WHERE conversation_id = ?1 AND user_id = ?2",
    [SQ_MSG_INSERT] = "INSERT INTO messages (conversation_id, seq, id, sender, client_msg_id,"
                      " type, body, meta, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [SQ_INBOX_BUMP_MEMBERS] = "UPDATE users SET inbox_head = inbox_head + 1 WHERE id IN"
                              " (SELECT user_id FROM members WHERE conversation_id = ?1)"
                              " RETURNING id, inbox_head",
    [SQ_INBOX_INSERT_MEMBERS] =
        "INSERT INTO inbox (user_id, seq, type, conversation_id, msg_seq, payload, created_at)"
        " SELECT u.id, u.inbox_head, 'message', ?1, ?2, NULL, ?3"
        " FROM members mb JOIN users u ON u.id = mb.user_id WHERE mb.conversation_id = ?1",
    [SQ_ACK] = "UPDATE users SET acked_seq = MIN(?2, inbox_head)"
               " WHERE id = ?1 AND acked_seq < MIN(?2, inbox_head)",
    [SQ_INBOX_STATE] = "SELECT inbox_head, acked_seq FROM users WHERE id = ?1",
    [SQ_INBOX_READ] = "SELECT i.seq, i.type, i.payload, " MSG_COLS " FROM inbox i"
                      " LEFT JOIN messages m ON i.type = 'message'"
                      " AND m.conversation_id = i.conversation_id AND m.seq = i.msg_seq"
                      " WHERE i.user_id = ?1 AND i.seq > ?2 ORDER BY i.seq LIMIT ?3",
    [SQ_HIST_DESC] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = ?1"
                     " AND m.seq < ?2 AND m.seq > ?3 ORDER BY m.seq DESC LIMIT ?4",
    [SQ_HIST_ASC] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = ?1"
                    " AND m.seq < ?2 AND m.seq > ?3 ORDER BY m.seq ASC LIMIT ?4",
};

/* A connection and its prepared statements (prepared on first use). */
struct sq_db {
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ_NSTMT];
};

/* A queued write: run fn inside the writer's transaction. */
struct sq_op {
    int (*fn)(struct sq_db *w, void *arg, struct lark_err *err);
    void *arg;
    int rc;               /* result, valid once done */
    struct lark_err *err; /* the caller's */
    int done;
    pthread_cond_t cv;
    struct sq_op *next;
};

/* Wake-ups gathered during a batch, emitted after its commit. */
struct sq_wakes {
    struct store_wake *v; /* v[i].user aliases owned[i] */
    char **owned;
    size_t n, cap;
};

struct sq_store {
    struct store base;
    char *path;
    struct sq_db writer; /* used only by the writer thread after open */
    struct sq_wakes wakes;
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
};

/* ---- statements ------------------------------------------------------- */

static int sq_fail(sqlite3 *db, int src, struct lark_err *err, const char *what)
{
    int prim = src & 0xff;
    log_error("sqlite %s: %s (code %d)", what, db ? sqlite3_errmsg(db) : "", src);
    if (prim == SQLITE_FULL || prim == SQLITE_IOERR || prim == SQLITE_BUSY ||
        prim == SQLITE_LOCKED || prim == SQLITE_CANTOPEN || prim == SQLITE_READONLY ||
        prim == SQLITE_NOMEM)
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    return lark_err_set(err, LARK_EINTERNAL, "database error");
}

/* The prepared statement id, reset and with bindings cleared. */
static sqlite3_stmt *sq_stmt(struct sq_db *d, enum sq_stmt id)
{
    sqlite3_stmt *st = d->stmt[id];
    if (!st) {
        int rc = sqlite3_prepare_v3(d->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK) {
            log_error("sqlite prepare %d: %s", (int)id, sqlite3_errmsg(d->db));
            return NULL;
        }
        d->stmt[id] = st;
    }
    return st;
}

static void sq_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows we need. */
static int sq_exec(struct sq_db *d, enum sq_stmt id, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, id);
    int rc;
    if (!st)
        return sq_fail(d->db, SQLITE_ERROR, err, "prepare");
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(d->db, rc, err, sq_sql[id]);
    return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int64_t u2i(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : "";
}

/* Read MSG_COLS starting at column base. */
static json_t *sq_row_msg(sqlite3_stmt *st, int base)
{
    struct store_msg_row r;
    r.id = col_text(st, base);
    r.conversation_id = col_text(st, base + 1);
    r.seq = (uint64_t)sqlite3_column_int64(st, base + 2);
    r.sender = col_text(st, base + 3);
    r.client_msg_id = col_text(st, base + 4);
    r.type = col_text(st, base + 5);
    r.body = col_text(st, base + 6);
    r.body_len = (size_t)sqlite3_column_bytes(st, base + 6);
    r.meta = col_text(st, base + 7);
    r.created_at = sqlite3_column_int64(st, base + 8);
    return store_msg_json(&r);
}

/* ---- connections ------------------------------------------------------ */

static int sq_db_open(struct sq_db *d, const char *path, struct lark_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc;

    memset(d, 0, sizeof(*d));
    rc = sqlite3_open_v2(path, &d->db, flags, NULL);
    if (rc != SQLITE_OK) {
        int r = sq_fail(d->db, rc, err, "open");
        lark_err_set(err, r, "cannot open SQLite database %s", path);
        sqlite3_close(d->db);
        d->db = NULL;
        return r;
    }
    sqlite3_busy_timeout(d->db, SQ_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(d->db, 1);
    return 0;
}

static void sq_db_close(struct sq_db *d)
{
    for (int i = 0; i < SQ_NSTMT; i++)
        sqlite3_finalize(d->stmt[i]);
    sqlite3_close(d->db);
    memset(d, 0, sizeof(*d));
}

/* PRAGMAs take no parameters; they are fixed text chosen here. */
static int sq_pragma(struct sq_db *d, const char *sql, struct lark_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_error("sqlite %s: %s", sql, msg ? msg : "");
        sqlite3_free(msg);
        return lark_err_set(err, LARK_EUNAVAIL, "cannot configure the database (%s)", sql);
    }
    return 0;
}

/* ---- migrations ------------------------------------------------------- */

static int sq_schema_version(struct sq_db *d, int *version, struct lark_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_pragma(d,
                       "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                       " name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                       err);
    if (rc)
        return rc;
    rc = sqlite3_prepare_v2(d->db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", -1, &st,
                            NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = 0;
    } else {
        rc = sq_fail(d->db, rc, err, "read schema_version");
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_apply(struct sq_db *d, const struct migration *m, struct lark_err *err)
{
    sqlite3_stmt *st = NULL;
    char *msg = NULL;
    int rc;

    if (sq_pragma(d, "BEGIN IMMEDIATE", err))
        return LARK_EUNAVAIL;
    /* Migration files are trusted schema text, run as a script. */
    rc = sqlite3_exec(d->db, m->sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        lark_err_set(err, LARK_EINVAL, "migration %s failed: %s", m->name, msg ? msg : "");
        sqlite3_free(msg);
        goto fail;
    }
    rc = sqlite3_prepare_v2(d->db,
                            "INSERT INTO schema_version (version, name, applied_at)"
                            " VALUES (?1, ?2, ?3)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, m->version);
        sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, time_now_ms());
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sq_fail(d->db, rc, err, "record migration");
        goto fail;
    }
    if (sq_pragma(d, "COMMIT", err))
        goto fail;
    log_info("migration applied version=%d name=%s", m->version, m->name);
    return 0;
fail:
    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    return err && err->code ? err->code : LARK_EINVAL;
}

static int sq_migrate(struct sq_db *d, const char *root, struct lark_err *err)
{
    struct migration *m = NULL;
    int n = 0, current = 0;
    int rc = migrate_list(root, "sqlite", &m, &n, err);
    if (rc)
        return rc;
    rc = sq_schema_version(d, &current, err);
    for (int i = 0; i < n && rc == 0; i++)
        if (m[i].version > current)
            rc = sq_apply(d, &m[i], err);
    migrate_free(m, n);
    return rc;
}

/* ---- the writer ------------------------------------------------------- */

static void sq_wakes_add(struct sq_wakes *w, const char *user, uint64_t seq)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
        w->owned = xrealloc(w->owned, w->cap * sizeof(*w->owned));
    }
    w->owned[w->n] = xstrdup(user);
    w->v[w->n].user = w->owned[w->n];
    w->v[w->n].seq = seq;
    w->v[w->n].commit_ns = 0;
    w->n++;
}

static void sq_wakes_truncate(struct sq_wakes *w, size_t n)
{
    while (w->n > n)
        free(w->owned[--w->n]);
}

static struct sq_store *sq_store_of(struct sq_db *w)
{
    return (struct sq_store *)((char *)w - offsetof(struct sq_store, writer));
}

/* Fail every op of the batch that had succeeded: its work was undone. */
static void sq_batch_lost(struct sq_op *ops)
{
    for (struct sq_op *op = ops; op; op = op->next)
        if (op->rc == 0)
            op->rc = lark_err_set(op->err, LARK_EUNAVAIL, "the database is unavailable");
}

static void sq_run_batch(struct sq_store *s, struct sq_op *ops)
{
    struct lark_err scratch = {0};
    int rc = sq_exec(&s->writer, SQ_BEGIN, &scratch);

    for (struct sq_op *op = ops; op; op = op->next) {
        size_t mark = s->wakes.n;
        if (rc) {
            op->rc = lark_err_set(op->err, rc, "%s", scratch.msg);
            continue;
        }
        if (sq_exec(&s->writer, SQ_SAVEPOINT, op->err)) {
            op->rc = op->err->code;
            continue;
        }
        op->rc = op->fn(&s->writer, op->arg, op->err);
        if (op->rc) {
            sq_wakes_truncate(&s->wakes, mark);
            sq_exec(&s->writer, SQ_ROLLBACK_TO, &scratch);
        }
        sq_exec(&s->writer, SQ_RELEASE, &scratch);
        /* After SQLITE_FULL, IOERR or NOMEM SQLite may roll the whole
         * transaction back on its own: nothing of this batch is stored. */
        if (sqlite3_get_autocommit(s->writer.db)) {
            rc = LARK_EUNAVAIL;
            lark_err_set(&scratch, rc, "the database is unavailable");
        }
    }
    if (rc == 0)
        rc = sq_exec(&s->writer, SQ_COMMIT, &scratch);
    if (rc) {
        if (!sqlite3_get_autocommit(s->writer.db))
            sq_exec(&s->writer, SQ_ROLLBACK, &scratch);
        sq_batch_lost(ops);
        sq_wakes_truncate(&s->wakes, 0);
    }
    if (s->wakes.n) {
        int64_t now = time_mono_ns();
        for (size_t i = 0; i < s->wakes.n; i++)
            s->wakes.v[i].commit_ns = now;
        store_emit_wake(&s->base, s->wakes.v, s->wakes.n);
        sq_wakes_truncate(&s->wakes, 0);
    }

    pthread_mutex_lock(&s->mu);
    for (struct sq_op *op = ops, *next; op; op = next) {
        next = op->next; /* op lives on its caller's stack: gone after done */
        op->done = 1;
        pthread_cond_signal(&op->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *sq_writer_main(void *arg)
{
    struct sq_store *s = arg;

    for (;;) {
        struct sq_op *batch, *last;
        int n = 1;
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->head) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        batch = last = s->head;
        while (last->next && n < LIMIT_WRITER_BATCH) {
            last = last->next;
            n++;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->mu);
        sq_run_batch(s, batch);
    }
    return NULL;
}

/* Queue fn to run in the writer's transaction; return after the commit. */
static int sq_write(struct sq_store *s, int (*fn)(struct sq_db *, void *, struct lark_err *),
                    void *arg, struct lark_err *err)
{
    struct sq_op op = {.fn = fn, .arg = arg, .err = err};

    pthread_cond_init(&op.cv, NULL);
    pthread_mutex_lock(&s->mu);
    /* op lives on this stack: safe, because this thread waits below until
     * the writer has run it and taken it off the queue. */
    if (s->tail)
        s->tail->next = &op;
    else
        s->head = &op; /* cppcheck-suppress autoVariables */
    s->tail = &op;     /* cppcheck-suppress autoVariables ; op outlives its stay in the queue */
    pthread_cond_signal(&s->cv);
    while (!op.done)
        pthread_cond_wait(&op.cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&op.cv);
    return op.rc;
}

/* ---- open / close ----------------------------------------------------- */

static void sq_close(struct store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    sq_db_close(&s->writer);
    sq_wakes_truncate(&s->wakes, 0);
    free(s->wakes.v);
    free(s->wakes.owned);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->path);
    free(s);
}

static int sq_open(const struct config *cfg, const char *target, struct store **out,
                   struct lark_err *err)
{
    struct sq_store *s = xcalloc(1, sizeof(*s));
    char *sync = NULL;
    int rc;

    s->base.ops = &store_sqlite_ops;
    s->path = xstrdup(target);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (strcmp(cfg->sqlite_sync, "FULL") != 0 && strcmp(cfg->sqlite_sync, "NORMAL") != 0) {
        rc = lark_err_set(err, LARK_EINVAL, "sqlite_sync must be FULL or NORMAL");
        goto fail;
    }
    rc = sq_db_open(&s->writer, s->path, err);
    if (rc)
        goto fail;
    sync = xasprintf("PRAGMA synchronous = %s", cfg->sqlite_sync);
    if ((rc = sq_pragma(&s->writer, "PRAGMA journal_mode = WAL", err)) ||
        (rc = sq_pragma(&s->writer, sync, err)) ||
        (rc = sq_pragma(&s->writer, "PRAGMA foreign_keys = ON", err)))
        goto fail;
    rc = sq_migrate(&s->writer, cfg->migrations, err);
    if (rc)
        goto fail;
    if (pthread_create(&s->thread, NULL, sq_writer_main, s) != 0) {
        rc = lark_err_set(err, LARK_EINTERNAL, "cannot start the SQLite writer thread");
        goto fail;
    }
    s->thread_started = 1;
    free(sync);
    *out = &s->base;
    return 0;
fail:
    free(sync);
    sq_close(&s->base);
    return rc;
}

static int sq_conn_open(struct store *base, struct store_conn **out, struct lark_err *err)
{
    struct sq_store *s = (struct sq_store *)base;
    struct sq_conn *c = xcalloc(1, sizeof(*c));
    int rc = sq_db_open(&c->rd, s->path, err);

    if (rc == 0)
        rc = sq_pragma(&c->rd, "PRAGMA query_only = 1", err);
    if (rc) {
        sq_db_close(&c->rd);
        free(c);
        return rc;
    }
    c->base.store = base;
    *out = &c->base;
    return 0;
}

static void sq_conn_close(struct store_conn *base)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sq_db_close(&c->rd);
    free(c);
}

static int sq_ping(struct store_conn *base, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    return sq_exec(&c->rd, SQ_PING, err);
}

/* ---- send ------------------------------------------------------------- */

struct sq_send_ctx {
    const struct store_send_in *in;
    struct store_send_out *out;
};

static int sq_ensure_user(struct sq_db *w, const char *user, int64_t now, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_USER_ENSURE);
    int rc;
    if (!st)
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, now);
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "ensure user");
}

static int sq_add_member(struct sq_db *w, const char *conv, const char *user, const char *role,
                         uint64_t joined_seq, int64_t now, struct lark_err *err)
{
    sqlite3_stmt *st;
    int rc = sq_ensure_user(w, user, now, err);
    if (rc)
        return rc;
    st = sq_stmt(w, SQ_MEMBER_INSERT);
    if (!st)
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, conv);
    bind_text(st, 2, user);
    bind_text(st, 3, role);
    sqlite3_bind_int64(st, 4, u2i(joined_seq));
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
        rc = sq_fail(w->db, SQLITE_ERROR, err, "prepare");
        goto out;
    }
    bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(conv, IDS_CONV_LEN, "%s", col_text(st, 0));
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
        rc = sq_fail(w->db, SQLITE_ERROR, err, "prepare");
        goto out;
    }
    bind_text(st, 1, conv);
    bind_text(st, 2, "direct");
    bind_text(st, 3, NULL);
    bind_text(st, 4, key);
    bind_text(st, 5, sender);
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

/* LARK_ENOTMEMBER or LARK_ENOTFOUND when user may not use conv. */
static int sq_check_member(struct sq_db *d, const char *conv, const char *user,
                           struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, SQ_MEMBER_ROLE);
    int rc;

    if (!st)
        return sq_fail(d->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, conv);
    bind_text(st, 2, user);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return sq_fail(d->db, rc, err, "check membership");
    st = sq_stmt(d, SQ_CONV_EXISTS);
    if (!st)
        return sq_fail(d->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, conv);
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
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, in->sender);
    bind_text(st, 2, in->client_msg_id);
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

/* Append message seq of conv to every member's inbox; gather wakes. */
static int sq_fanout(struct sq_db *w, const char *conv, uint64_t seq, int64_t now,
                     struct lark_err *err)
{
    struct sq_store *s = sq_store_of(w);
    sqlite3_stmt *st = sq_stmt(w, SQ_INBOX_BUMP_MEMBERS);
    int rc;

    if (!st)
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, conv);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        sq_wakes_add(&s->wakes, col_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "advance inboxes");
    st = sq_stmt(w, SQ_INBOX_INSERT_MEMBERS);
    if (!st)
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, u2i(seq));
    sqlite3_bind_int64(st, 3, now);
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "append inboxes");
}

static int sq_next_conv_seq(struct sq_db *w, const char *conv, int64_t now, uint64_t *seq,
                            struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_CONV_BUMP);
    int rc;
    if (!st)
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, conv);
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
        rc = sq_check_member(w, conv, in->sender, err);
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
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, row.conversation_id);
    sqlite3_bind_int64(st, 2, u2i(seq));
    bind_text(st, 3, row.id);
    bind_text(st, 4, row.sender);
    bind_text(st, 5, row.client_msg_id);
    bind_text(st, 6, row.type);
    sqlite3_bind_text(st, 7, row.body, (int)row.body_len, SQLITE_STATIC);
    bind_text(st, 8, row.meta);
    sqlite3_bind_int64(st, 9, now);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "insert message");
    rc = sq_fanout(w, conv, seq, now, err);
    if (rc)
        return rc;
    ctx->out->message = store_msg_json(&row);
    return 0;
}

static int sq_send(struct store_conn *base, const struct store_send_in *in,
                   struct store_send_out *out, struct lark_err *err)
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

/* ---- ack -------------------------------------------------------------- */

struct sq_ack_ctx {
    const char *user;
    uint64_t seq;
};

static int sq_ack_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_ack_ctx *ctx = arg;
    sqlite3_stmt *st = sq_stmt(w, SQ_ACK);
    int rc;

    if (!st)
        return sq_fail(w->db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, ctx->user);
    sqlite3_bind_int64(st, 2, u2i(ctx->seq));
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "ack");
}

static int sq_inbox_state(struct store_conn *base, const char *user, uint64_t *head,
                          uint64_t *acked, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_INBOX_STATE);
    int rc;

    if (!st)
        return sq_fail(c->rd.db, SQLITE_ERROR, err, "prepare");
    bind_text(st, 1, user);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *head = (uint64_t)sqlite3_column_int64(st, 0);
        *acked = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sq_done(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(c->rd.db, rc, err, "inbox state");
}

static int sq_ack(struct store_conn *base, const char *user, uint64_t seq, uint64_t *acked,
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

static int sq_inbox_read(struct store_conn *base, const char *user, uint64_t after, unsigned limit,
                         json_t **events, uint64_t *last, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_INBOX_READ);
    json_t *arr;
    int rc;

    if (!st)
        return sq_fail(c->rd.db, SQLITE_ERROR, err, "prepare");
    arr = json_arr();
    bind_text(st, 1, user);
    sqlite3_bind_int64(st, 2, u2i(after));
    sqlite3_bind_int(st, 3, (int)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        const char *type = col_text(st, 1);
        json_t *data;
        if (strcmp(type, "message") == 0 && sqlite3_column_type(st, 3) != SQLITE_NULL) {
            data = sq_row_msg(st, 3);
        } else {
            data = json_loads(col_text(st, 2), 0, NULL);
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

static int sq_history(struct store_conn *base, const char *user, const char *conv,
                      const struct store_page *page, json_t **messages, int *has_more,
                      struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st;
    json_t *arr;
    unsigned n = 0;
    int rc = sq_check_member(&c->rd, conv, user, err);

    if (rc)
        return rc;
    st = sq_stmt(&c->rd, page->ascending ? SQ_HIST_ASC : SQ_HIST_DESC);
    if (!st)
        return sq_fail(c->rd.db, SQLITE_ERROR, err, "prepare");
    arr = json_arr();
    bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, u2i(page->before));
    sqlite3_bind_int64(st, 3, u2i(page->after));
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

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .ping = sq_ping,
    .send = sq_send,
    .history = sq_history,
    .inbox_read = sq_inbox_read,
    .inbox_state = sq_inbox_state,
    .ack = sq_ack,
};
