/*
 * store_sqlite.c - the embedded SQLite back end: connections, the writer
 * thread, the checkpointer, migrations, and db.h's executor for SQLite.
 * The operations themselves are shared with PostgreSQL (store_ops_*.c);
 * the SQL is in store_sqlite_sql.c.
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
 *
 * Push daemons (another process) are woken the way PostgreSQL's NOTIFY
 * would: a transaction that queued push jobs runs DB_PUSH_SIGNAL, which
 * here only marks the batch; after its commit the writer touches the file
 * "<database>-push" (utimensat: one syscall), and lark-push's inotify
 * watch on the database's directory (sq_push_watch) hears it within a
 * millisecond. Not the -wal file, which every commit writes: its last
 * write comes before the commit is visible (the wal-index in -shm is
 * updated after it, through mmap, which inotify does not see), so a reader
 * woken by it missed the new rows - measured, every time.
 */
#include "core/store_sqlite_int.h"

#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/migrate.h"
#include "core/store_impl.h"
#include "core/store_sqlite_wake.h"
#include "core/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long a connection waits on a lock held by another process (e.g. an
 * operator's sqlite3 shell) before the request fails with 503. */
#define SQ_BUSY_TIMEOUT_MS 5000
/* The WAL is bounded (sqlite_wal_max_mb), and copied into the database
 * in two ways:
 *   - the checkpointer thread copies what it can every SQ_CKPT_IDLE_MS
 *     (PASSIVE: it never blocks the writer or readers), so that at a
 *     moderate load the WAL stays small and starts over by itself. SQLite's
 *     own automatic checkpoint would run inside the writer's commit, with
 *     its fsyncs, holding up every sender queued behind it;
 *   - under a load that keeps the writer busy, the writer itself, between
 *     two batches, makes a WAL past the bound start over (RESTART: it
 *     copies what is left and waits at most SQ_RESTART_WAIT_MS for
 *     readers). A WAL is reused from its beginning only when it is fully
 *     copied and no reader reads its frames, which under a steady load
 *     never happens by itself - it grew by 150-330 MB per 10 s of
 *     saturation - and a separate checkpointer cannot do it: it never gets
 *     the write lock. Copying rarely is also what keeps the bytes down: a
 *     page changed by many commits meanwhile is copied once. Measured
 *     against copying every 1,000 pages (half the bound, a quarter):
 *     28-30 KiB written per message against 34-40, and more messages per
 *     second (docs/BENCHMARKS.md, "SQLite layout"). */
#define SQ_CKPT_IDLE_MS 1000
#define SQ_RESTART_WAIT_MS 100
/* inotify read buffer: room for many events (each is 16 bytes + a name). */
#define SQ_INOTIFY_BUF 4096

/* The writer's transaction control, outside the catalogue. */
enum sq_ctl {
    CTL_BEGIN,
    CTL_COMMIT,
    CTL_ROLLBACK,
    CTL_SAVEPOINT,
    CTL_ROLLBACK_TO,
    CTL_RELEASE,
    CTL_N
};
static const char *const sq_ctl_sql[CTL_N] = {"BEGIN IMMEDIATE", "COMMIT",         "ROLLBACK",
                                              "SAVEPOINT op",    "ROLLBACK TO op", "RELEASE op"};

struct sq_store;

/* One statement's running query. */
struct sq_rows {
    struct db_rows base;
    sqlite3_stmt *st; /* NULL: a statement SQLite does not need */
};

/* A connection, its prepared statements, and db.h's view of it. */
struct sq_db {
    struct db base;
    sqlite3 *db;
    sqlite3_stmt *stmt[DB_NSTMT]; /* prepared on first use */
    sqlite3_stmt *ctl[CTL_N];
    struct sq_rows rows[DB_NSTMT]; /* one open query per statement */
    struct sq_store *writer_of;    /* set on the writer's connection (notes) */
};

/* A queued write: run fn inside the writer's transaction. */
struct sq_op {
    store_write_fn fn;
    void *arg;
    int rc;               /* result, valid once done */
    struct lark_err *err; /* the caller's */
    int done;
    pthread_cond_t cv;
    struct sq_op *next;
};

struct sq_store {
    struct store base;
    char *path;
    char *push_signal;   /* "<path>-push", touched to wake push daemons */
    char *wake_dir;      /* "<path>-wake": inbox watchers' files (store_sqlite_wake.h) */
    int short_lived;     /* STORE_OPEN_SHORT */
    int push_signalled;  /* the batch being written ran DB_PUSH_SIGNAL (writer only) */
    struct sq_db writer; /* used only by the writer thread after open */
    struct note_buf notes;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sq_op *head, *tail; /* queue, guarded by mu */
    int stopping;              /* guarded by mu */
    /* the checkpointer */
    struct sq_db ckpt; /* its own connection */
    pthread_t ckpt_thread;
    int ckpt_started;
    pthread_cond_t ckpt_cv;
    int wal_max_pages; /* WAL pages past which the writer restarts it */
    int wal_pages;     /* writer only: pages in the WAL after the last commit */
};

struct sq_conn {
    struct store_conn base;
    struct sq_db rd;
    int watch_fd; /* store_push_watch: inotify descriptor, -1 until asked for */
    int inbox_fd; /* store_inbox_watch: inotify descriptor, -1 until asked for */
};

/* ---- failures ------------------------------------------------------------ */

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

/* ---- db.h's executor ------------------------------------------------------- */

static sqlite3_stmt *sq_prepare(struct sq_db *d, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot &&
        sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
        log_error("sqlite prepare \"%.60s\": %s", sql, sqlite3_errmsg(d->db));
        *slot = NULL;
    }
    return *slot;
}

static int sq_query(struct db *base, enum db_stmt id, const struct db_arg *args, int n,
                    struct db_rows **out, struct lark_err *err)
{
    struct sq_db *d = (struct sq_db *)base;
    struct sq_rows *r = &d->rows[id];
    sqlite3_stmt *st = NULL;

    r->base.db = base;
    r->st = NULL;
    *out = &r->base;
    if (id == DB_PUSH_SIGNAL && d->writer_of)
        d->writer_of->push_signalled = 1; /* acted on after the commit */
    if (!sq_sql[id])
        return 0; /* nothing to do in SQLite */
    if (!(st = sq_prepare(d, &d->stmt[id], sq_sql[id])))
        return sq_fail(d->db, SQLITE_ERROR, err, "prepare");
    for (int i = 0; i < n; i++) {
        const struct db_arg *a = &args[i];
        if (a->type == DB_ARG_INT)
            sqlite3_bind_int64(st, i + 1, a->i);
        else if (a->type == DB_ARG_TEXT && a->s)
            sqlite3_bind_text(st, i + 1, a->s, a->len == DB_LEN_NUL ? -1 : (int)a->len,
                              SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i + 1);
    }
    r->st = st;
    return 0;
}

static int sq_next(struct db_rows *base, struct lark_err *err)
{
    struct sq_rows *r = (struct sq_rows *)base;
    int rc;
    if (!r->st)
        return 0;
    rc = sqlite3_step(r->st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_fail(sqlite3_db_handle(r->st), rc, err, sqlite3_sql(r->st));
}

static const char *sq_text(struct db_rows *base, int col)
{
    const unsigned char *s = sqlite3_column_text(((struct sq_rows *)base)->st, col);
    return s ? (const char *)s : "";
}

static size_t sq_len(struct db_rows *base, int col)
{
    return (size_t)sqlite3_column_bytes(((struct sq_rows *)base)->st, col);
}

static int sq_is_null(struct db_rows *base, int col)
{
    return sqlite3_column_type(((struct sq_rows *)base)->st, col) == SQLITE_NULL;
}

static void sq_done(struct db_rows *base)
{
    struct sq_rows *r = (struct sq_rows *)base;
    if (r->st) {
        sqlite3_reset(r->st);
        sqlite3_clear_bindings(r->st);
        r->st = NULL;
    }
}

static void sq_note(struct db *base, const struct store_note *note)
{
    struct sq_db *d = (struct sq_db *)base;
    if (!d->writer_of) {
        log_error("sqlite: a note outside a write transaction was dropped");
        return;
    }
    note_buf_add(&d->writer_of->notes, note);
}

static int sq_has(struct db *base, enum db_stmt id)
{
    (void)base;
    return sq_sql[id] != NULL;
}

static const struct db_ops sq_db_ops = {
    .query = sq_query,
    .has = sq_has,
    .next = sq_next,
    .text = sq_text,
    .len = sq_len,
    .is_null = sq_is_null,
    .done = sq_done,
    .note = sq_note,
};

/* Run a transaction-control statement. */
static int sq_ctl(struct sq_db *d, enum sq_ctl id, struct lark_err *err)
{
    sqlite3_stmt *st = sq_prepare(d, &d->ctl[id], sq_ctl_sql[id]);
    int rc;
    if (!st)
        return sq_fail(d->db, SQLITE_ERROR, err, "prepare");
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_fail(d->db, rc, err, sq_ctl_sql[id]);
}

/* ---- connections ------------------------------------------------------------ */

static int sq_db_open(struct sq_db *d, const char *path, struct sq_store *writer_of,
                      struct lark_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc;

    memset(d, 0, sizeof(*d));
    d->base.ops = &sq_db_ops;
    d->writer_of = writer_of;
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

/* STORE_OPEN_SHORT: a connection that is the last to close neither
 * checkpoints nor deletes the -wal file, work the next CGI process would
 * only undo by making it again (measured: 3.5 ms of a 18 ms request). */
static void sq_db_short(struct sq_db *d)
{
    int on = 1;
    sqlite3_db_config(d->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_file_control(d->db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
}

static void sq_db_close(struct sq_db *d)
{
    for (int i = 0; i < DB_NSTMT; i++)
        sqlite3_finalize(d->stmt[i]);
    for (int i = 0; i < CTL_N; i++)
        sqlite3_finalize(d->ctl[i]);
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

/* After a commit that queued push jobs: wake the push daemons. */
static void sq_push_signal(struct sq_store *s)
{
    int fd;

    if (utimensat(AT_FDCWD, s->push_signal, NULL, 0) == 0 || errno != ENOENT)
        return; /* another error: the daemons still wake on their timers */
    fd = open(s->push_signal, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0)
        close(fd);
}

/* After a commit: wake the other processes watching the inboxes it
 * appended to (store_sqlite_wake.h). */
static void sq_wake_watchers(struct sq_store *s)
{
    uint64_t mask = 0;

    for (size_t i = 0; i < s->notes.n; i++)
        if (s->notes.v[i].kind == STORE_NOTE_EVENT)
            mask |= (uint64_t)1 << sqwake_shard(s->notes.v[i].user);
    if (mask)
        sqwake_touch(s->wake_dir, mask);
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
    int rc = sq_ctl(&s->writer, CTL_BEGIN, &scratch);

    for (struct sq_op *op = ops; op; op = op->next) {
        size_t mark = s->notes.n;
        if (rc) {
            op->rc = lark_err_set(op->err, rc, "%s", scratch.msg);
            continue;
        }
        if (sq_ctl(&s->writer, CTL_SAVEPOINT, op->err)) {
            op->rc = op->err->code;
            continue;
        }
        op->rc = op->fn(&s->writer.base, op->arg, op->err);
        if (op->rc) {
            note_buf_truncate(&s->notes, mark);
            sq_ctl(&s->writer, CTL_ROLLBACK_TO, &scratch);
        }
        sq_ctl(&s->writer, CTL_RELEASE, &scratch);
        /* After SQLITE_FULL, IOERR or NOMEM SQLite may roll the whole
         * transaction back on its own: nothing of this batch is stored. */
        if (sqlite3_get_autocommit(s->writer.db)) {
            rc = LARK_EUNAVAIL;
            lark_err_set(&scratch, rc, "the database is unavailable");
        }
    }
    if (rc == 0)
        rc = sq_ctl(&s->writer, CTL_COMMIT, &scratch);
    if (rc == 0 && s->push_signalled)
        sq_push_signal(s);
    if (rc == 0)
        sq_wake_watchers(s);
    s->push_signalled = 0;
    if (rc) {
        if (!sqlite3_get_autocommit(s->writer.db))
            sq_ctl(&s->writer, CTL_ROLLBACK, &scratch);
        sq_batch_lost(ops);
        note_buf_truncate(&s->notes, 0);
    }
    if (s->notes.n) {
        int64_t now = time_mono_ns();
        for (size_t i = 0; i < s->notes.n; i++)
            if (s->notes.v[i].kind == STORE_NOTE_EVENT)
                s->notes.v[i].commit_ns = now;
        store_emit_notes(&s->base, s->notes.v, s->notes.n);
        note_buf_truncate(&s->notes, 0);
    }

    pthread_mutex_lock(&s->mu);
    for (struct sq_op *op = ops, *next; op; op = next) {
        next = op->next; /* op lives on its caller's stack: gone after done */
        op->done = 1;
        pthread_cond_signal(&op->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Between batches: a WAL past the bound starts over (see SQ_CKPT_IDLE_MS).
 * The senders of the batch before were answered already. */
static void sq_wal_bound(struct sq_store *s)
{
    int log = 0, done = 0, rc;

    if (s->wal_pages < s->wal_max_pages)
        return;
    sqlite3_busy_timeout(s->writer.db, SQ_RESTART_WAIT_MS);
    rc = sqlite3_wal_checkpoint_v2(s->writer.db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
    sqlite3_busy_timeout(s->writer.db, SQ_BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK)
        s->wal_pages = 0; /* the next commit writes from the start */
    else if (rc != SQLITE_BUSY)
        log_warn("sqlite WAL restart: %s (code %d)", sqlite3_errmsg(s->writer.db), rc);
    log_debug("sqlite WAL restart rc=%d frames=%d copied=%d", rc, log, done);
}

static void *sq_writer_main(void *arg)
{
    struct sq_store *s = arg;

    pthread_setname_np(pthread_self(), "lark-writer");
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
        sq_wal_bound(s);
    }
    return NULL;
}

static int sq_write(struct sq_store *s, store_write_fn fn, void *arg, struct lark_err *err)
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

/* Called by SQLite in the writer thread after each commit. */
static int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sq_store *s = arg;
    (void)db;
    (void)name;
    s->wal_pages = pages; /* sq_wal_bound, after the batch */
    return SQLITE_OK;
}

static void *sq_ckpt_main(void *arg)
{
    struct sq_store *s = arg;

    pthread_setname_np(pthread_self(), "lark-ckpt");
    for (;;) {
        struct timespec ts;
        int log = 0, done = 0, rc;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += SQ_CKPT_IDLE_MS / 1000;
        pthread_mutex_lock(&s->mu);
        if (!s->stopping)
            pthread_cond_timedwait(&s->ckpt_cv, &s->mu, &ts);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);
        /* PASSIVE: copies what it can without blocking the writer or readers */
        rc = sqlite3_wal_checkpoint_v2(s->ckpt.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("sqlite checkpoint: %s (code %d)", sqlite3_errmsg(s->ckpt.db), rc);
        log_debug("sqlite checkpoint rc=%d wal_frames=%d copied=%d", rc, log, done);
    }
    return NULL;
}

/* The WAL's bound in pages of this database (whose page size may not be
 * the configured one: an existing file keeps its own). */
static void sq_wal_limits(struct sq_store *s, int max_mb)
{
    sqlite3_stmt *st = NULL;
    int64_t page = 4096;

    if (sqlite3_prepare_v2(s->writer.db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        page = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    /* restart a sixteenth early: the batch that crosses the mark still
     * fits under the bound */
    s->wal_max_pages = (int)(((int64_t)(max_mb > 0 ? max_mb : 64) << 20) / (page + 24) * 15 / 16);
}

static int sq_ckpt_start(struct sq_store *s, struct lark_err *err)
{
    /* the connection must have read the file to know it is in WAL mode;
     * until then a checkpoint on it does nothing (and says -1 frames) */
    int rc = sq_db_open(&s->ckpt, s->path, NULL, err);
    if (rc || (rc = sq_pragma(&s->ckpt, "PRAGMA journal_mode = WAL", err)))
        return rc;
    sqlite3_busy_timeout(s->ckpt.db, SQ_RESTART_WAIT_MS);
    sqlite3_wal_autocheckpoint(s->writer.db, 0);
    sqlite3_wal_hook(s->writer.db, sq_wal_hook, s);
    if (pthread_create(&s->ckpt_thread, NULL, sq_ckpt_main, s) != 0)
        return lark_err_set(err, LARK_EINTERNAL, "cannot start the SQLite checkpointer");
    s->ckpt_started = 1;
    return 0;
}

static void sq_close(struct store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started)
        pthread_join(s->thread, NULL);
    if (s->ckpt_started) {
        pthread_join(s->ckpt_thread, NULL);
        /* leave a small WAL behind for the next start */
        sqlite3_wal_checkpoint_v2(s->ckpt.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    sq_db_close(&s->ckpt);
    sq_db_close(&s->writer);
    note_buf_release(&s->notes);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->ckpt_cv);
    free(s->push_signal);
    free(s->wake_dir);
    free(s->path);
    free(s);
}

static int sq_open(const struct config *cfg, const char *target, unsigned flags, struct store **out,
                   struct lark_err *err)
{
    struct sq_store *s = xcalloc(1, sizeof(*s));
    char *sync = NULL;
    int rc;

    s->base.ops = &store_sqlite_ops;
    s->path = xstrdup(target);
    s->push_signal = xasprintf("%s-push", target);
    s->wake_dir = xasprintf("%s-wake", target);
    s->short_lived = (flags & STORE_OPEN_SHORT) != 0;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->ckpt_cv, NULL);
    if (strcmp(cfg->sqlite_sync, "FULL") != 0 && strcmp(cfg->sqlite_sync, "NORMAL") != 0) {
        rc = lark_err_set(err, LARK_EINVAL, "sqlite_sync must be FULL or NORMAL");
        goto fail;
    }
    if (cfg->sqlite_page_size & (cfg->sqlite_page_size - 1)) {
        rc = lark_err_set(err, LARK_EINVAL, "sqlite_page_size must be a power of two");
        goto fail;
    }
    rc = sq_db_open(&s->writer, s->path, s, err);
    if (rc)
        goto fail;
    if (s->short_lived)
        sq_db_short(&s->writer);
    /* Only a new database takes it: it must come before the first write,
     * which switching to WAL is. An existing file keeps its page size. */
    if (cfg->sqlite_page_size) {
        char *page = xasprintf("PRAGMA page_size = %d", cfg->sqlite_page_size);
        rc = sq_pragma(&s->writer, page, err);
        free(page);
        if (rc)
            goto fail;
    }
    sync = xasprintf("PRAGMA synchronous = %s", cfg->sqlite_sync);
    if ((rc = sq_pragma(&s->writer, "PRAGMA journal_mode = WAL", err)) ||
        (rc = sq_pragma(&s->writer, sync, err)) ||
        (rc = sq_pragma(&s->writer, "PRAGMA foreign_keys = ON", err)))
        goto fail;
    rc = sq_migrate(&s->writer, cfg->migrations, err);
    if (rc == 0)
        sq_wal_limits(s, cfg->sqlite_wal_max_mb);
    /* a short-lived process leaves checkpoints to SQLite's automatic one */
    if (rc || (!s->short_lived && (rc = sq_ckpt_start(s, err))))
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
    int rc = sq_db_open(&c->rd, s->path, NULL, err);

    c->watch_fd = -1;
    c->inbox_fd = -1;
    if (rc == 0 && s->short_lived)
        sq_db_short(&c->rd);
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
    if (c->watch_fd >= 0)
        close(c->watch_fd);
    if (c->inbox_fd >= 0)
        close(c->inbox_fd);
    sq_db_close(&c->rd);
    free(c);
}

/* The directory holding path (caller frees). */
static char *sq_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

static int sq_push_watch(struct store_conn *base, int *fd, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    struct sq_store *s = (struct sq_store *)base->store;
    int rc = 0;

    if (c->watch_fd < 0) {
        char *dir = sq_dirname(s->push_signal);
        char ebuf[64];
        c->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (c->watch_fd < 0 ||
            inotify_add_watch(c->watch_fd, dir, IN_ATTRIB | IN_CREATE | IN_MODIFY | IN_MOVED_TO) <
                0) {
            rc = lark_err_set(err, LARK_EUNAVAIL, "cannot watch %s: %s", dir,
                              log_errno(errno, ebuf, sizeof(ebuf)));
            if (c->watch_fd >= 0)
                close(c->watch_fd);
            c->watch_fd = -1;
        }
        free(dir);
    }
    *fd = c->watch_fd;
    return rc;
}

static int sq_push_watch_drain(struct store_conn *base, int *changed, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    struct sq_store *s = (struct sq_store *)base->store;
    const char *slash = strrchr(s->push_signal, '/');
    const char *name = slash ? slash + 1 : s->push_signal;
    char buf[SQ_INOTIFY_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));

    (void)err;
    for (;;) {
        ssize_t got = c->watch_fd >= 0 ? read(c->watch_fd, buf, sizeof(buf)) : -1;
        if (got <= 0)
            return 0; /* EAGAIN: drained (another error: the next poll tells) */
        for (char *p = buf; p < buf + got;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && strcmp(ev->name, name) == 0))
                *changed = 1;
            p += sizeof(*ev) + ev->len;
        }
    }
}

static int sq_inbox_watch(struct store_conn *base, const char *user, int *fd, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    int rc = 0;

    if (c->inbox_fd < 0)
        rc = sqwake_watch(((struct sq_store *)base->store)->wake_dir, user, &c->inbox_fd, err);
    *fd = c->inbox_fd;
    return rc;
}

static int sq_inbox_watch_drain(struct store_conn *base, int *changed, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;

    if (c->inbox_fd < 0)
        return 0;
    if (sqwake_drain(c->inbox_fd, changed)) {
        /* its file was removed: watch it again on the next store_inbox_watch */
        close(c->inbox_fd);
        c->inbox_fd = -1;
        *changed = 1;
        return lark_err_set(err, LARK_EUNAVAIL, "the wake file was removed");
    }
    return 0;
}

static struct db *sq_reader(struct store_conn *base, struct lark_err *err)
{
    (void)err;
    return &((struct sq_conn *)base)->rd.base;
}

static int sq_write_op(struct store_conn *base, store_write_fn fn, void *arg, struct lark_err *err)
{
    return sq_write((struct sq_store *)base->store, fn, arg, err);
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
    .write = sq_write_op,
    .reader = sq_reader,
    .publish = sq_publish,
    .listener_fd = NULL,
    .listener_poll = NULL,
    .push_watch = sq_push_watch,
    .push_watch_drain = sq_push_watch_drain,
    .inbox_watch = sq_inbox_watch,
    .inbox_watch_drain = sq_inbox_watch_drain,
};
