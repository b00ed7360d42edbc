/*
 * store_sqlite_push.c - SQLite: devices and the push job queue (store.h
 * has the contracts; migrations/sqlite/0003_push.sql the tables).
 *
 * Jobs are written by larkd's writer inside the send transaction
 * (sq_push_enqueue) and claimed and finished by lark-push, a second
 * process with its own writer thread. That makes two writing processes on
 * one database, which DESIGN.md warns is unfair under contention; it is
 * acceptable here because lark-push writes a few short transactions per
 * batch (a claim, a finish), each waits at most SQ_BUSY_TIMEOUT_MS, and a
 * failed claim or finish is simply tried again (the lease keeps the job).
 *
 * Wake-ups, SQLite's stand-in for PostgreSQL's NOTIFY: after a commit
 * that queued jobs (a send, a re-queue), the writer touches the file
 * "<database>-push" next to the database (utimensat: one syscall), and
 * lark-push's inotify watch on that directory hears it within a
 * millisecond, without polling. Why not watch the -wal file that every
 * commit writes: its last write comes before the commit is visible to
 * readers (the wal-index in -shm is updated after it, through mmap, which
 * inotify does not see), so a reader woken by it can miss the new rows -
 * measured: it did, every time. The touch comes after the commit. The
 * directory is watched, not the file, so that the file may be created
 * (and deleted by an operator) at any time.
 */
#include "core/store_sqlite_int.h"

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/pushstat.h"
#include "core/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* inotify read buffer: room for many events (each is 16 bytes + name). */
#define SQ_INOTIFY_BUF 4096

/* ---- job creation (inside the send transaction) ----------------------- */

int sq_push_enqueue(struct sq_db *w, const char *conv, uint64_t msg_seq, const char *sender,
                    int64_t now, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_PUSH_ENQUEUE);
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, conv);
    sqlite3_bind_int64(st, 2, sq_u2i(msg_seq));
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + sq_store_of(w)->push_window_ms);
    sq_bind_text(st, 5, sender);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "enqueue push jobs");
    if (sqlite3_changes(w->db) > 0)
        sq_store_of(w)->push_queued = 1;
    return 0;
}

void sq_push_signal(struct sq_store *s)
{
    int fd;

    if (!s->push_queued)
        return;
    if (utimensat(AT_FDCWD, s->push_signal, NULL, 0) == 0 || errno != ENOENT)
        return; /* another error: lark-push still wakes on its timer */
    fd = open(s->push_signal, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0)
        close(fd);
}

/* ---- devices ---------------------------------------------------------- */

struct sq_device_ctx {
    const struct store_device_in *in;
    unsigned max;
    int64_t now;
    int64_t created_at; /* out */
    int created;        /* out */
};

/* Step a statement with two text parameters that returns no rows. */
static int sq_exec2(struct sq_db *w, enum sq_stmt id, const char *a, const char *b,
                    struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, id);
    int rc;
    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, a);
    sq_bind_text(st, 2, b);
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, sq_sql[id]);
}

/* The user's device count, or the previous owner of (platform, token). */
static int sq_device_facts(struct sq_db *w, const struct store_device_in *in, int *theirs,
                           int *owned, int64_t *count, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_DEVICE_OWNER);
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, in->platform);
    sq_bind_text(st, 2, in->token);
    rc = sqlite3_step(st);
    *owned = rc == SQLITE_ROW;
    *theirs = rc == SQLITE_ROW && strcmp(sq_col_text(st, 0), in->user) == 0;
    sq_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "device owner");
    if (!(st = sq_stmt(w, SQ_DEVICE_COUNT)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, in->user);
    rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sq_done(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(w->db, rc, err, "count devices");
}

static int sq_device_add_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_device_ctx *ctx = arg;
    const struct store_device_in *in = ctx->in;
    int theirs = 0, owned = 0, rc;
    int64_t count = 0;
    sqlite3_stmt *st;

    if ((rc = sq_device_facts(w, in, &theirs, &owned, &count, err)))
        return rc;
    if (!theirs && count >= (int64_t)ctx->max)
        return lark_err_set(err, LARK_ETOOMANY, "at most %u devices per user", ctx->max);
    /* Another user's pushes must not reach the phone's new owner. */
    if (owned && !theirs && (rc = sq_exec2(w, SQ_DEVICE_JOBS_DELETE, in->platform, in->token, err)))
        return rc;
    if (!(st = sq_stmt(w, SQ_DEVICE_UPSERT)))
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, in->platform);
    sq_bind_text(st, 2, in->token);
    sq_bind_text(st, 3, in->user);
    sq_bind_text(st, 4, in->app);
    sqlite3_bind_int64(st, 5, ctx->now);
    rc = sqlite3_step(st);
    ctx->created_at = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : ctx->now;
    sq_done(st);
    if (rc != SQLITE_ROW)
        return sq_fail(w->db, rc, err, "register device");
    ctx->created = !theirs;
    return 0;
}

int sq_device_add(struct store_conn *base, const struct store_device_in *in, unsigned max_per_user,
                  json_t **device, int *created, struct lark_err *err)
{
    struct sq_device_ctx ctx = {.in = in, .max = max_per_user, .now = time_now_ms()};
    int rc = sq_write((struct sq_store *)base->store, sq_device_add_op, &ctx, err);

    if (rc)
        return rc;
    *device = store_device_json(in->platform, in->token, in->app, ctx.created_at);
    *created = ctx.created;
    return 0;
}

int sq_device_list(struct store_conn *base, const char *user, json_t **devices,
                   struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_DEVICE_LIST);
    json_t *arr;
    int rc;

    if (!st)
        return sq_fail_prepare(&c->rd, err);
    arr = json_arr();
    sq_bind_text(st, 1, user);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_push(arr, store_device_json(sq_col_text(st, 0), sq_col_text(st, 1), sq_col_text(st, 2),
                                         sqlite3_column_int64(st, 3)));
    sq_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return sq_fail(c->rd.db, rc, err, "list devices");
    }
    *devices = arr;
    return 0;
}

struct sq_device_rm_ctx {
    const char *user;
    const char *token;
};

static int sq_device_remove_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_device_rm_ctx *ctx = arg;
    sqlite3_stmt *st = sq_stmt(w, SQ_DEVICE_DELETE_OWN);
    char platforms[2][8] = {"", ""}; /* "fcm", "apns": a token may be both */
    int n = 0, rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sq_bind_text(st, 1, ctx->user);
    sq_bind_text(st, 2, ctx->token);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (n < 2)
            snprintf(platforms[n++], sizeof(platforms[0]), "%s", sq_col_text(st, 0));
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "remove device");
    if (n == 0)
        return lark_err_set(err, LARK_ENOTFOUND, "you have no device with this token");
    for (int i = 0; i < n; i++)
        if ((rc = sq_exec2(w, SQ_DEVICE_JOBS_DELETE, platforms[i], ctx->token, err)))
            return rc;
    return 0;
}

int sq_device_remove(struct store_conn *base, const char *user, const char *token,
                     struct lark_err *err)
{
    struct sq_device_rm_ctx ctx = {user, token};
    return sq_write((struct sq_store *)base->store, sq_device_remove_op, &ctx, err);
}

/* ---- claiming --------------------------------------------------------- */

struct sq_claim_ctx {
    int64_t now, lease_until;
    unsigned max;
    struct store_push_job *jobs; /* out, max entries */
    size_t n;
};

static char *sq_col_dup(sqlite3_stmt *st, int i)
{
    return xstrdup(sq_col_text(st, i));
}

static void sq_job_fill(struct store_push_job *j, sqlite3_stmt *st)
{
    j->id = sqlite3_column_int64(st, 0);
    j->user = sq_col_dup(st, 1);
    j->platform = sq_col_dup(st, 2);
    j->token = sq_col_dup(st, 3);
    j->app = sq_col_dup(st, 4);
    j->conversation_id = sq_col_dup(st, 5);
    j->conv_title = strcmp(sq_col_text(st, 7), "group") == 0 ? sq_col_dup(st, 6) : NULL;
    j->sender = sq_col_dup(st, 8);
    j->msg_type = sq_col_dup(st, 9);
    j->body = sq_col_dup(st, 10);
    j->msg_seq = (uint64_t)sqlite3_column_int64(st, 11);
    j->inbox_seq = (uint64_t)sqlite3_column_int64(st, 12);
    j->count = (unsigned)sqlite3_column_int(st, 13);
    j->attempts = (unsigned)sqlite3_column_int(st, 14);
    j->user_online = sqlite3_column_int(st, 15) != 0;
    j->user_read = sqlite3_column_int(st, 16) != 0;
    j->created_at = sqlite3_column_int64(st, 17);
}

/* Seal and lease job id, then read it into ctx->jobs (a job whose device
 * has gone is deleted instead). */
static int sq_claim_one(struct sq_db *w, struct sq_claim_ctx *ctx, int64_t id, struct lark_err *err)
{
    sqlite3_stmt *st = sq_stmt(w, SQ_PUSH_SEAL);
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, ctx->lease_until);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "seal push job");
    if (!(st = sq_stmt(w, SQ_PUSH_JOB_GET)))
        return sq_fail_prepare(w, err);
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        sq_job_fill(&ctx->jobs[ctx->n++], st);
    sq_done(st);
    if (rc == SQLITE_DONE) {
        if (!(st = sq_stmt(w, SQ_PUSH_DELETE)))
            return sq_fail_prepare(w, err);
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        sq_done(st);
    }
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "read push job");
}

static int sq_claim_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_claim_ctx *ctx = arg;
    sqlite3_stmt *st = sq_stmt(w, SQ_PUSH_DUE_IDS);
    int64_t *ids = xcalloc(ctx->max, sizeof(*ids));
    size_t nids = 0;
    int rc;

    if (!st) {
        free(ids);
        return sq_fail_prepare(w, err);
    }
    sqlite3_bind_int64(st, 1, ctx->now);
    sqlite3_bind_int64(st, 2, ctx->max);
    /* gathered first: updating rows while stepping would disturb the scan */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && nids < ctx->max)
        ids[nids++] = sqlite3_column_int64(st, 0);
    sq_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        free(ids);
        return sq_fail(w->db, rc, err, "due push jobs");
    }
    rc = 0;
    for (size_t i = 0; i < nids && rc == 0; i++)
        rc = sq_claim_one(w, ctx, ids[i], err);
    free(ids);
    return rc;
}

int sq_push_claim(struct store_conn *base, int64_t now, int64_t lease_until, unsigned max,
                  struct store_push_job **jobs, size_t *n, struct lark_err *err)
{
    struct sq_claim_ctx ctx = {.now = now, .lease_until = lease_until, .max = max};
    int rc;

    ctx.jobs = xcalloc(max, sizeof(*ctx.jobs));
    rc = sq_write((struct sq_store *)base->store, sq_claim_op, &ctx, err);
    if (rc || ctx.n == 0) {
        /* a failed batch was rolled back: the jobs read are not claimed */
        store_push_jobs_free(ctx.jobs, ctx.n);
        return rc;
    }
    *jobs = ctx.jobs;
    *n = ctx.n;
    return 0;
}

/* ---- finishing -------------------------------------------------------- */

struct sq_finish_ctx {
    const struct store_push_result *results;
    size_t n;
    const struct pushstat *delta;
    int64_t now;
};

static int sq_finish_one(struct sq_db *w, const struct store_push_result *r, int64_t now,
                         struct lark_err *err)
{
    sqlite3_stmt *st;
    int rc;

    switch (r->outcome) {
    case STORE_PUSH_TOKEN_GONE:
        if ((rc = sq_exec2(w, SQ_DEVICE_DELETE, r->platform, r->token, err)))
            return rc;
        return sq_exec2(w, SQ_DEVICE_JOBS_DELETE, r->platform, r->token, err);
    case STORE_PUSH_RETRY:
        if (!(st = sq_stmt(w, SQ_PUSH_RETRY)))
            return sq_fail_prepare(w, err);
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_int64(st, 2, r->due_at);
        sq_bind_text(st, 3, r->error);
        break;
    case STORE_PUSH_DEAD:
        if (!(st = sq_stmt(w, SQ_PUSH_BURY)))
            return sq_fail_prepare(w, err);
        sqlite3_bind_int64(st, 1, r->id);
        sq_bind_text(st, 2, r->error);
        sqlite3_bind_int64(st, 3, now);
        rc = sqlite3_step(st);
        sq_done(st);
        if (rc != SQLITE_DONE)
            return sq_fail(w->db, rc, err, "bury push job");
        if (!(st = sq_stmt(w, SQ_PUSH_DELETE)))
            return sq_fail_prepare(w, err);
        sqlite3_bind_int64(st, 1, r->id);
        break;
    case STORE_PUSH_DONE:
    default:
        if (!(st = sq_stmt(w, SQ_PUSH_DELETE)))
            return sq_fail_prepare(w, err);
        sqlite3_bind_int64(st, 1, r->id);
        break;
    }
    rc = sqlite3_step(st);
    sq_done(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(w->db, rc, err, "finish push job");
}

static int sq_stats_add(struct sq_db *w, const struct pushstat *d, struct lark_err *err)
{
    for (int p = 0; p < PUSHSTAT_NPROV; p++) {
        for (int i = 0; i < PUSHSTAT_NSLOTS; i++) {
            sqlite3_stmt *st;
            int rc;
            if (!d->v[p][i])
                continue;
            if (!(st = sq_stmt(w, SQ_PUSH_STAT_ADD)))
                return sq_fail_prepare(w, err);
            sq_bind_text(st, 1, pushstat_provider_name((enum pushstat_provider)p));
            sq_bind_text(st, 2, pushstat_slot_name(i));
            sqlite3_bind_int64(st, 3, sq_u2i(d->v[p][i]));
            rc = sqlite3_step(st);
            sq_done(st);
            if (rc != SQLITE_DONE)
                return sq_fail(w->db, rc, err, "push stats");
        }
    }
    return 0;
}

static int sq_finish_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_finish_ctx *ctx = arg;
    int rc = 0;

    for (size_t i = 0; i < ctx->n && rc == 0; i++)
        rc = sq_finish_one(w, &ctx->results[i], ctx->now, err);
    if (rc == 0 && ctx->delta)
        rc = sq_stats_add(w, ctx->delta, err);
    return rc;
}

int sq_push_finish(struct store_conn *base, const struct store_push_result *results, size_t n,
                   const struct pushstat *delta, int64_t now, struct lark_err *err)
{
    struct sq_finish_ctx ctx = {results, n, delta, now};
    return sq_write((struct sq_store *)base->store, sq_finish_op, &ctx, err);
}

/* ---- reads ------------------------------------------------------------ */

int sq_push_next_due(struct store_conn *base, int64_t *due_at, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_PUSH_NEXT_DUE);
    int rc;

    if (!st)
        return sq_fail_prepare(&c->rd, err);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *due_at = sqlite3_column_int64(st, 0);
    sq_done(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(c->rd.db, rc, err, "next push job");
}

int sq_push_stats(struct store_conn *base, struct pushstat *out, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_PUSH_STATS);
    int rc;

    if (!st)
        return sq_fail_prepare(&c->rd, err);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int p = pushstat_provider_parse(sq_col_text(st, 0));
        int slot = pushstat_slot_parse(sq_col_text(st, 1));
        if (p >= 0 && slot >= 0)
            out->v[p][slot] = (uint64_t)sqlite3_column_int64(st, 2);
    }
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c->rd.db, rc, err, "push stats");
    if (!(st = sq_stmt(&c->rd, SQ_PUSH_COUNTS)))
        return sq_fail_prepare(&c->rd, err);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->queued = sqlite3_column_int64(st, 0);
        out->dead_letters = sqlite3_column_int64(st, 1);
    }
    sq_done(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(c->rd.db, rc, err, "push counts");
}

int sq_push_dead_list(struct store_conn *base, int64_t before_id, unsigned limit, json_t **out,
                      struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    sqlite3_stmt *st = sq_stmt(&c->rd, SQ_PUSH_DEAD_LIST);
    json_t *arr;
    int rc;

    if (!st)
        return sq_fail_prepare(&c->rd, err);
    arr = json_arr();
    sqlite3_bind_int64(st, 1, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int(st, 2, (int)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char created[TIME_RFC3339_LEN], died[TIME_RFC3339_LEN];
        json_t *d = json_obj();
        time_rfc3339(sqlite3_column_int64(st, 9), created);
        time_rfc3339(sqlite3_column_int64(st, 10), died);
        json_put(d, "id", json_integer(sqlite3_column_int64(st, 0)));
        json_put(d, "user", json_string(sq_col_text(st, 1)));
        json_put(d, "platform", json_string(sq_col_text(st, 2)));
        json_put(d, "token", json_string(sq_col_text(st, 3)));
        json_put(d, "conversation_id", json_string(sq_col_text(st, 4)));
        json_put(d, "msg_seq", json_integer(sqlite3_column_int64(st, 5)));
        json_put(d, "count", json_integer(sqlite3_column_int64(st, 6)));
        json_put(d, "attempts", json_integer(sqlite3_column_int64(st, 7)));
        json_put(d, "last_error", json_string(sq_col_text(st, 8)));
        json_put(d, "created_at", json_string(created));
        json_put(d, "died_at", json_string(died));
        json_push(arr, d);
    }
    sq_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return sq_fail(c->rd.db, rc, err, "list dead letters");
    }
    *out = arr;
    return 0;
}

struct sq_requeue_ctx {
    int64_t id, now;
    size_t n; /* out */
};

static int sq_requeue_op(struct sq_db *w, void *arg, struct lark_err *err)
{
    struct sq_requeue_ctx *ctx = arg;
    sqlite3_stmt *st = sq_stmt(w, SQ_PUSH_REQUEUE);
    int rc;

    if (!st)
        return sq_fail_prepare(w, err);
    sqlite3_bind_int64(st, 1, ctx->id);
    sqlite3_bind_int64(st, 2, ctx->now);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "requeue");
    ctx->n = (size_t)sqlite3_changes(w->db);
    if (ctx->n)
        sq_store_of(w)->push_queued = 1;
    if (!(st = sq_stmt(w, SQ_PUSH_DEAD_DELETE)))
        return sq_fail_prepare(w, err);
    sqlite3_bind_int64(st, 1, ctx->id);
    rc = sqlite3_step(st);
    sq_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(w->db, rc, err, "requeue");
    if (ctx->id != 0 && sqlite3_changes(w->db) == 0)
        return lark_err_set(err, LARK_ENOTFOUND, "no dead letter %lld", (long long)ctx->id);
    return 0;
}

int sq_push_requeue(struct store_conn *base, int64_t id, int64_t now, size_t *n,
                    struct lark_err *err)
{
    struct sq_requeue_ctx ctx = {id, now, 0};
    int rc = sq_write((struct sq_store *)base->store, sq_requeue_op, &ctx, err);
    if (rc == 0)
        *n = ctx.n;
    return rc;
}

/* ---- wake-ups --------------------------------------------------------- */

int sq_push_watch(struct store_conn *base, int *fd, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    struct sq_store *s = (struct sq_store *)base->store;
    const char *slash = strrchr(s->path, '/');
    char *dir = slash ? xstrndup(s->path, (size_t)(slash - s->path)) : xstrdup(".");
    int rc = 0;

    if (c->watch_fd < 0) {
        char ebuf[64];
        c->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (c->watch_fd < 0 ||
            inotify_add_watch(c->watch_fd, *dir ? dir : "/",
                              IN_ATTRIB | IN_CREATE | IN_MODIFY | IN_MOVED_TO) < 0) {
            rc = lark_err_set(err, LARK_EUNAVAIL, "cannot watch %s: %s", dir,
                              log_errno(errno, ebuf, sizeof(ebuf)));
            sq_push_watch_close(c);
        }
    }
    free(dir);
    *fd = c->watch_fd;
    return rc;
}

int sq_push_watch_drain(struct store_conn *base, int *changed, struct lark_err *err)
{
    struct sq_conn *c = (struct sq_conn *)base;
    struct sq_store *s = (struct sq_store *)base->store;
    const char *slash = strrchr(s->push_signal, '/');
    const char *name = slash ? slash + 1 : s->push_signal;
    char buf[SQ_INOTIFY_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));

    (void)err;
    for (;;) {
        ssize_t got = read(c->watch_fd, buf, sizeof(buf));
        if (got <= 0)
            return 0; /* EAGAIN: drained (other errors: the next poll tells) */
        for (char *p = buf; p < buf + got;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && strcmp(ev->name, name) == 0))
                *changed = 1;
            p += sizeof(*ev) + ev->len;
        }
    }
}

void sq_push_watch_close(struct sq_conn *c)
{
    if (c->watch_fd >= 0)
        close(c->watch_fd);
    c->watch_fd = -1;
}
