/*
 * store_sqlite.c - the embedded SQLite back end: connections, the writer
 * thread and migrations (the operations live in store_sqlite_msg.c,
 * store_sqlite_conv.c, store_sqlite_presence.c and store_sqlite_push.c).
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
 * Because commits happen in one thread in order, inbox seqs reach the
 * listener in commit order, and conversation and inbox seqs are gapless by
 * construction (each is "last + 1" inside the single writing transaction).
 */
#include "core/store_sqlite_int.h"

#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/migrate.h"
#include "core/timeutil.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a connection waits on a lock held by another process (e.g. an
 * operator's sqlite3 shell) before the request fails with 503. */
#define SQ_BUSY_TIMEOUT_MS 5000

/* A queued write: run fn inside the writer's transaction. */
struct sq_op {
    sq_op_fn fn;
    void *arg;
    int rc;               /* result, valid once done */
    struct lark_err *err; /* the caller's */
    int done;
    pthread_cond_t cv;
    struct sq_op *next;
};

/* ---- statements ------------------------------------------------------- */

int sq_fail(sqlite3 *db, int src, struct lark_err *err, const char *what)
{
    int prim = src & 0xff;
    log_error("sqlite %s: %s (code %d)", what, db ? sqlite3_errmsg(db) : "", src);
    if (prim == SQLITE_FULL || prim == SQLITE_IOERR || prim == SQLITE_BUSY ||
        prim == SQLITE_LOCKED || prim == SQLITE_CANTOPEN || prim == SQLITE_READONLY ||
        prim == SQLITE_NOMEM)
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    return lark_err_set(err, LARK_EINTERNAL, "database error");
}

sqlite3_stmt *sq_stmt(struct sq_db *d, enum sq_stmt id)
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

void sq_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int sq_fail_prepare(struct sq_db *d, struct lark_err *err)
{
    return sq_fail(d->db, SQLITE_ERROR, err, "prepare");
}

int sq_exec(struct sq_db *d, enum sq_stmt id, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(d, id);
    int rc;
    if (!st)
        return sq_fail_prepare(d, err);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(d->db, rc, err, sq_sql[id]);
    return 0;
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int64_t sq_u2i(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

const char *sq_col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? (const char *)s : "";
}

json_t *sq_row_msg(sqlite3_stmt *st, int base)
{
    struct store_msg_row r;
    r.id = sq_col_text(st, base);
    r.conversation_id = sq_col_text(st, base + 1);
    r.seq = (uint64_t)sqlite3_column_int64(st, base + 2);
    r.sender = sq_col_text(st, base + 3);
    r.client_msg_id = sq_col_text(st, base + 4);
    r.type = sq_col_text(st, base + 5);
    r.body = sq_col_text(st, base + 6);
    r.body_len = (size_t)sqlite3_column_bytes(st, base + 6);
    r.meta = sq_col_text(st, base + 7);
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

struct sq_store *sq_store_of(struct sq_db *w)
{
    return (struct sq_store *)((char *)w - offsetof(struct sq_store, writer));
}

void sq_note(struct sq_db *w, const struct store_note *note)
{
    struct sq_notes *ns = &sq_store_of(w)->notes;
    if (ns->n == ns->cap) {
        ns->cap = ns->cap ? ns->cap * 2 : 64;
        ns->v = xrealloc(ns->v, ns->cap * sizeof(*ns->v));
        ns->owned = xrealloc(ns->owned, ns->cap * sizeof(*ns->owned));
    }
    ns->owned[ns->n] = xstrdup(note->user);
    ns->v[ns->n] = *note;
    ns->v[ns->n].user = ns->owned[ns->n];
    ns->v[ns->n].json = NULL; /* ephemeral notes never wait for a commit */
    ns->n++;
}

static void sq_notes_truncate(struct sq_notes *ns, size_t n)
{
    while (ns->n > n)
        free(ns->owned[--ns->n]);
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
        size_t mark = s->notes.n;
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
            sq_notes_truncate(&s->notes, mark);
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
    if (rc == 0)
        sq_push_signal(s);
    s->push_queued = 0;
    if (rc) {
        if (!sqlite3_get_autocommit(s->writer.db))
            sq_exec(&s->writer, SQ_ROLLBACK, &scratch);
        sq_batch_lost(ops);
        sq_notes_truncate(&s->notes, 0);
    }
    if (s->notes.n) {
        int64_t now = time_mono_ns();
        for (size_t i = 0; i < s->notes.n; i++)
            if (s->notes.v[i].kind == STORE_NOTE_WAKE)
                s->notes.v[i].commit_ns = now;
        store_emit_notes(&s->base, s->notes.v, s->notes.n);
        sq_notes_truncate(&s->notes, 0);
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

int sq_write(struct sq_store *s, sq_op_fn fn, void *arg, struct lark_err *err)
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
    sq_notes_truncate(&s->notes, 0);
    free(s->notes.v);
    free(s->notes.owned);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->push_signal);
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
    s->push_window_ms = cfg->push_window_ms;
    s->push_signal = xasprintf("%s-push", target);
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

    c->watch_fd = -1;
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
    sq_push_watch_close(c);
    sq_db_close(&c->rd);
    free(c);
}

static int sq_ping(struct store_conn *base, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    return sq_exec(&c->rd, SQ_PING, err);
}

static int sq_publish(struct store_conn *base, const struct store_note *notes, size_t n,
                      struct lark_err *err)
{
    (void)err;
    /* One process: the listener is the only one there is. */
    store_emit_notes(base->store, notes, n);
    return 0;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .ping = sq_ping,
    .publish = sq_publish,
    .send = sq_send,
    .history = sq_history,
    .inbox_read = sq_inbox_read,
    .inbox_state = sq_inbox_state,
    .ack = sq_ack,
    .group_create = sq_group_create,
    .conversation_list = sq_conversation_list,
    .conversation_get = sq_conversation_get,
    .member_add = sq_member_add,
    .member_remove = sq_member_remove,
    .read = sq_read,
    .members = sq_members,
    .presence_touch = sq_presence_touch,
    .presence_expire = sq_presence_expire,
    .presence_get = sq_presence_get,
    .device_add = sq_device_add,
    .device_list = sq_device_list,
    .device_remove = sq_device_remove,
    .push_claim = sq_push_claim,
    .push_finish = sq_push_finish,
    .push_next_due = sq_push_next_due,
    .push_watch = sq_push_watch,
    .push_watch_drain = sq_push_watch_drain,
    .push_stats = sq_push_stats,
    .push_dead_list = sq_push_dead_list,
    .push_requeue = sq_push_requeue,
};
