/*
 * store_pg.c - the PostgreSQL back end: connections, transactions with
 * retry, LISTEN/NOTIFY between processes, migrations, and db.h's executor
 * for libpq. The operations are shared with SQLite (store_ops_*.c); the
 * SQL is in store_pg_sql.c.
 *
 * Shape: many larkd processes (on many hosts) share one database
 * (DESIGN.md "Scale beyond one machine").
 *   - Each thread has its own connection, made on first use and remade
 *     after a failure with a backoff; while the database is unreachable a
 *     request fails at once with LARK_EUNAVAIL (503 + Retry-After), never
 *     waits on it. Statements have a timeout, TCP connections keepalives.
 *     An idle connection the server closed (a restart, a failover) is
 *     remade before use, and a thread in backoff tries at once when
 *     another has connected meanwhile: after a failover every thread
 *     serves again as soon as one has found the new primary.
 *   - A write runs in a transaction on the calling thread. Concurrent
 *     writers serialize on row locks taken in one order (store_ops_msg.c);
 *     a deadlock, a serialization failure or a lost unique-key race rolls
 *     back and runs the operation again.
 *   - Notes (inbox wake-ups, presence) go to this process's hub directly
 *     after the commit, and to every other process by NOTIFY inside the
 *     transaction, so they are delivered exactly when it commits. Each
 *     process LISTENs on a connection of its own whose socket sits in the
 *     hub's epoll set, and skips the notifications it sent itself.
 */
#include "core/store_pg_int.h"

#include "core/config.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/migrate.h"
#include "core/pgnote.h"
#include "core/store_impl.h"
#include "core/store_ops.h"
#include "core/timeutil.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds libpq may spend connecting to one server before it tries the
 * next (the listener, which connects asynchronously, enforces the same in
 * ms). */
#define PG_CONNECT_TIMEOUT "3"
#define PG_CONNECT_TIMEOUT_MS 3000
/* ms a connection may leave data unacknowledged (TCP_USER_TIMEOUT). A
 * primary that vanished from the network (nothing answers, nothing is
 * closed) fails the statement waiting on it after this; the kernel's own
 * retransmissions would take 15 minutes, and every thread would hang
 * (test_failover.mjs, zone a cut off). A server, however busy, has its
 * kernel acknowledge within milliseconds. */
#define PG_TCP_USER_TIMEOUT "5000"
/* The listener's keep-alive: idle seconds before the first probe. An idle
 * LISTEN connection to a server that vanished is found after this plus
 * PG_TCP_USER_TIMEOUT, or within a second of another thread's finding. */
#define PG_LISTEN_KEEPALIVE_IDLE "2"
/* How often a listening connection is checked against the other threads'
 * findings (pg_store.lost): a server that vanished is left within this of
 * a worker's timing out on it, rather than after the keep-alive (ms). */
#define PG_LISTEN_CHECK_MS 1000
/* Most servers a connection string may name for larkd to rotate through
 * (libpq's multi-host list; beyond this libpq alone goes through them). */
#define PG_MAX_HOSTS 8
/* A statement running longer than this fails the request (503), so no
 * request hangs on a stuck database (ms). */
#define PG_STATEMENT_TIMEOUT_MS 10000
/* Reconnection backoff after a failure: first and longest wait (ms). */
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 2000
/* Times an operation is run again after a deadlock or serialization failure. */
#define PG_TXN_TRIES 8
/* The advisory lock that makes concurrent migrations take turns. */
#define PG_MIGRATE_LOCK 7315220
/* The channel every larkd LISTENs on. */
#define PG_CHANNEL "lark"
/* The channel push daemons LISTEN on (store_ops_push.c NOTIFYs it). */
#define PG_PUSH_CHANNEL "lark_push"

struct pg_store;

struct pg_rows {
    struct db_rows base;
    PGresult *res;
    int row; /* the current row, -1 before the first */
};

struct pg_db {
    struct db base;
    struct pg_store *s;
    PGconn *pg;                       /* NULL until connected (or after a failure) */
    unsigned char prepared[DB_NSTMT]; /* statement prepared on this connection */
    int notify_prepared;
    int send_prepared; /* lark_send is prepared on this connection */
    int listening;     /* LISTEN lark ran on this connection (store_inbox_watch) */
    int64_t retry_at;  /* monotonic ms: no connection attempt before */
    int backoff_ms;
    unsigned long connects_seen; /* pg_store.connects when this connection failed */
    int host;                    /* pg_store.hosts index of the server, -1: not known */
    unsigned long lost_seen;     /* pg_store.lost[host] when it connected */
    int retry_txn;               /* the last failure asks for the transaction again */
    struct pg_rows rows[DB_NSTMT];
    struct note_buf notes; /* of the running transaction */
};

enum pg_listen_state {
    PGL_IDLE,       /* no connection; the next attempt at retry_at */
    PGL_CONNECTING, /* PQconnectPoll in progress */
    PGL_LISTENING,  /* LISTEN sent, its answer awaited */
    PGL_READY,      /* notifications arrive */
};

/* The connection that LISTENs for other processes' notes (hub thread). */
struct pg_listener {
    PGconn *pg;
    enum pg_listen_state state;
    int want_write;          /* the socket is awaited for output (connecting, flushing) */
    int64_t deadline;        /* mono ms: a connection attempt gives up then */
    int64_t retry_at;        /* mono ms: no attempt before */
    int backoff_ms;          /* after failed attempts */
    int host;                /* pg_store.hosts index of this attempt or connection */
    int tried;               /* servers tried since the last full round */
    unsigned long lost_seen; /* pg_store.lost[host] when it connected */
};

/* One server of a multi-host connection string: libpq's host, hostaddr
 * and port values (NULL: not in the string) to connect to it alone, and to
 * try every server starting with it. */
struct pg_host {
    char *alone[3]; /* owned */
    char *from[3];  /* owned */
};

struct pg_store {
    struct store base;
    char *uri;
    /* connections made by any thread: one that waits out its backoff
     * tries again at once when another has connected since it failed */
    atomic_ulong connects;
    /* The servers the string names (nhosts 1: one, or libpq's business).
     * good: the one a connection was last made to - the primary, with
     * target_session_attrs=read-write - so new connections try it first
     * instead of timing out on a dead one listed before it. lost[i]:
     * established connections to server i that failed; one older than the
     * last such failure is remade before use, not waited on. */
    struct pg_host hosts[PG_MAX_HOSTS];
    int nhosts;
    atomic_int good;
    atomic_ulong lost[PG_MAX_HOSTS];
    char origin[PGNOTE_ORIGIN_LEN + 1]; /* this process, in every NOTIFY it sends */
    struct pg_listener listen;          /* hub thread only */
};

struct pg_conn {
    struct store_conn base;
    struct pg_db db;
    struct pg_db watch; /* store_push_watch: LISTEN lark_push, connected when asked */
    char *inbox_user;   /* store_inbox_watch: whose notes db's LISTEN is for */
    int inbox_changed;  /* set by pg_inbox_emit: a note of an inbox event for inbox_user */
};

/* ---- connecting ----------------------------------------------------------- */

static int pg_sqlstate_is(const PGresult *res, const char *state)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s && strncmp(s, state, strlen(state)) == 0;
}

/* An established connection failed (a server restart, a dead peer): the
 * next use may reconnect at once; backoff is for failed connects. */
static void pg_lost(struct pg_db *d)
{
    if (d->pg)
        PQfinish(d->pg);
    d->pg = NULL;
    memset(d->prepared, 0, sizeof(d->prepared));
    d->notify_prepared = 0;
    d->send_prepared = 0;
    d->listening = 0;
    d->backoff_ms = 0;
    d->retry_at = 0;
}

/* Routes the server's notices (e.g. "terminating connection") to the log. */
static void pg_notice(void *arg, const char *message)
{
    size_t len = strlen(message);
    (void)arg;
    while (len && message[len - 1] == '\n')
        len--;
    log_warn("postgresql notice: %.*s", (int)len, message);
}

/* libpq's last error as one log line (its messages span several). */
static const char *pg_one_line(PGconn *pg)
{
    static _Thread_local char line[512];
    const char *msg = pg ? PQerrorMessage(pg) : "no memory";
    size_t n = 0;

    for (; *msg && n < sizeof(line) - 1; msg++)
        line[n++] = (*msg == '\n' || *msg == '\r' || *msg == '\t') ? ' ' : *msg;
    while (n && line[n - 1] == ' ')
        n--;
    line[n] = '\0';
    return line;
}

/* pgnote_decode's emit: notes from another process, to this one's hub. */
static void pg_emit(void *arg, const struct store_note *notes, size_t n)
{
    store_emit_notes(&((struct pg_store *)arg)->base, notes, n);
}

/* ---- the servers of the connection string ---------------------------------- */

/* LARK_DB may name several servers (libpq's multi-host list, with
 * target_session_attrs=read-write: whichever is the primary). libpq tries
 * them in the order written, each for PG_CONNECT_TIMEOUT; larkd starts
 * with the one it last reached, so that after a failover to the second a
 * new connection does not first wait out the first, dead one. */

static int pg_list_len(const char *list)
{
    int n = 1;
    for (; *list; list++)
        n += *list == ',';
    return n;
}

/* Item i of a comma-separated list (caller frees). */
static char *pg_list_item(const char *list, int i)
{
    const char *end;

    for (; i > 0 && list; i--) {
        list = strchr(list, ',');
        if (list)
            list++;
    }
    if (!list)
        return xstrdup("");
    end = strchr(list, ',');
    return end ? xstrndup(list, (size_t)(end - list)) : xstrdup(list);
}

/* The n items of list from item first on, wrapping around (caller frees). */
static char *pg_list_from(const char *list, int n, int first)
{
    char *out = NULL;

    for (int k = 0; k < n; k++) {
        char *item = pg_list_item(list, (first + k) % n);
        char *next = out ? xasprintf("%s,%s", out, item) : xstrdup(item);
        free(item);
        free(out);
        out = next;
    }
    return out;
}

/* s->hosts from the connection string; nhosts stays 1 (no rotation) when
 * it names one server, or more than PG_MAX_HOSTS, or libpq cannot parse
 * it (the connection will say why). */
static void pg_hosts_init(struct pg_store *s)
{
    static const char *const names[3] = {"host", "hostaddr", "port"};
    const char *lists[3] = {NULL, NULL, NULL};
    PQconninfoOption *opts = PQconninfoParse(s->uri, NULL);
    int n = 1, len[3] = {0, 0, 0};

    s->nhosts = 1;
    if (!opts)
        return;
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        for (int k = 0; k < 3; k++)
            if (strcmp(o->keyword, names[k]) == 0 && o->val && *o->val)
                lists[k] = o->val;
    for (int k = 0; k < 3; k++) {
        len[k] = lists[k] ? pg_list_len(lists[k]) : 0;
        if (k < 2 && len[k] > n)
            n = len[k];
    }
    if (n > 1 && n <= PG_MAX_HOSTS) {
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++) {
                if (len[k] != n) /* unset, or one port for every server */
                    continue;
                s->hosts[i].alone[k] = pg_list_item(lists[k], i);
                s->hosts[i].from[k] = pg_list_from(lists[k], n, i);
            }
        s->nhosts = n;
    }
    PQconninfoFree(opts);
}

static void pg_hosts_release(struct pg_store *s)
{
    for (int i = 0; i < PG_MAX_HOSTS; i++)
        for (int k = 0; k < 3; k++) {
            free(s->hosts[i].alone[k]);
            free(s->hosts[i].from[k]);
        }
}

/* Which server of the string pg is connected to, or -1. */
static int pg_host_of(const struct pg_store *s, PGconn *pg)
{
    const char *host = PQhost(pg), *port = PQport(pg);

    if (s->nhosts == 1)
        return 0;
    for (int i = 0; i < s->nhosts && host && port; i++) {
        const struct pg_host *h = &s->hosts[i];
        const char *name = h->alone[0] && *h->alone[0] ? h->alone[0] : h->alone[1];
        if (name && strcmp(name, host) == 0 && (!h->alone[2] || strcmp(h->alone[2], port) == 0))
            return i;
    }
    return -1;
}

/* A connection was made to server i: it takes writes, start there. */
static void pg_host_reached(struct pg_store *s, int i)
{
    if (i >= 0)
        atomic_store_explicit(&s->good, i, memory_order_relaxed);
}

/* An established connection to server i failed: the others to it are
 * suspect (a black-holed server would keep each waiting its timeout), and
 * new connections try the next server first - the standby that is being
 * promoted, rather than PG_CONNECT_TIMEOUT on the lost one. */
static void pg_host_lost(struct pg_store *s, int i)
{
    int was = i;

    if (i < 0)
        return;
    atomic_fetch_add_explicit(&s->lost[i], 1, memory_order_relaxed);
    atomic_compare_exchange_strong_explicit(&s->good, &was, (i + 1) % s->nhosts,
                                            memory_order_relaxed, memory_order_relaxed);
}

static unsigned long pg_host_losses(struct pg_store *s, int i)
{
    return i >= 0 ? atomic_load_explicit(&s->lost[i], memory_order_relaxed) : 0;
}

/* ---- connecting, per thread ----------------------------------------------------- */

static void pg_drop(struct pg_db *d)
{
    if (d->pg)
        PQfinish(d->pg);
    d->pg = NULL;
    memset(d->prepared, 0, sizeof(d->prepared));
    d->notify_prepared = 0;
    d->send_prepared = 0;
    d->listening = 0;
    d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
    if (d->backoff_ms > PG_BACKOFF_MAX_MS)
        d->backoff_ms = PG_BACKOFF_MAX_MS;
    d->retry_at = time_mono_ms() + d->backoff_ms;
    d->connects_seen = atomic_load_explicit(&d->s->connects, memory_order_relaxed);
}

/* A server that went away (a crash, a restart, a failover) closed this
 * idle connection, yet libpq says CONNECTION_OK until it is used: the first
 * statement of every thread would fail, and a read answer 503, long after
 * the database was back (test_failover.mjs). The close is already on the
 * socket (a FIN, often after a FATAL message nobody read): poll says so
 * without waiting. Anything else that came unasked (a notice) is read. */
static int pg_closed_by_server(PGconn *pg)
{
    struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN | POLLRDHUP};

    if (p.fd < 0 || poll(&p, 1, 0) < 0)
        return 0; /* the statement will tell */
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
        return 1;
    return (p.revents & POLLIN) && !PQconsumeInput(pg);
}

/* A connection that works, or LARK_EUNAVAIL. The settings before dbname
 * are defaults the connection string may override; the servers after it
 * are the string's own, rotated to start with the last one reached. */
static int pg_ready(struct pg_db *d, struct lark_err *err)
{
    static const char *const keys[] = {"connect_timeout",
                                       "application_name",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "dbname",
                                       "host",
                                       "hostaddr",
                                       "port",
                                       NULL};
    struct pg_store *s = d->s;
    const struct pg_host *h = &s->hosts[atomic_load_explicit(&s->good, memory_order_relaxed)];
    const char *values[] = {
        PG_CONNECT_TIMEOUT, "larkd",    "10",       "3", "3", PG_TCP_USER_TIMEOUT, s->uri,
        h->from[0],         h->from[1], h->from[2], NULL};
    char set[64];
    PGresult *res;

    if (d->pg && PQstatus(d->pg) == CONNECTION_OK) {
        if (pg_host_losses(s, d->host) != d->lost_seen) {
            log_info("postgresql: another connection to this server failed; reconnecting");
            pg_lost(d);
        } else if (pg_closed_by_server(d->pg)) {
            log_info("postgresql: the server closed an idle connection; reconnecting");
            pg_host_lost(s, d->host);
            pg_lost(d);
        } else {
            return 0;
        }
    }
    if (d->pg)
        pg_drop(d);
    /* The backoff spares a database that is down; once another thread has
     * connected (after a failover, the new primary takes writes) waiting
     * it out would only answer 503s (test_failover.mjs). */
    if (time_mono_ms() < d->retry_at &&
        atomic_load_explicit(&s->connects, memory_order_relaxed) == d->connects_seen)
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    d->pg = PQconnectdbParams(keys, values, 1);
    if (!d->pg || PQstatus(d->pg) != CONNECTION_OK) {
        log_warn("postgresql: cannot connect: %s", d->pg ? PQerrorMessage(d->pg) : "no memory");
        pg_drop(d);
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    }
    PQsetNoticeProcessor(d->pg, pg_notice, NULL);
    snprintf(set, sizeof(set), "SET statement_timeout = %d", PG_STATEMENT_TIMEOUT_MS);
    res = PQexec(d->pg, set);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        /* a connection without it could wait on a lock forever */
        log_warn("postgresql: cannot set statement_timeout: %s", pg_one_line(d->pg));
        PQclear(res);
        pg_drop(d);
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    }
    PQclear(res);
    d->backoff_ms = 0;
    d->host = pg_host_of(s, d->pg);
    d->lost_seen = pg_host_losses(s, d->host);
    pg_host_reached(s, d->host);
    atomic_fetch_add_explicit(&s->connects, 1, memory_order_relaxed);
    return 0;
}

/* Classify a failed result; drops a broken connection. */
static int pg_fail(struct pg_db *d, PGresult *res, struct lark_err *err, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    /* No SQLSTATE: libpq made the error itself, i.e. the connection failed.
     * After a server crash (pg_ctl stop -m immediate) the first statement
     * on a stale connection fails with "server closed the connection
     * unexpectedly" while PQstatus() still says CONNECTION_OK. */
    int broken = !d->pg || PQstatus(d->pg) != CONNECTION_OK || !state;

    if (pg_sqlstate_is(res, "40001") || pg_sqlstate_is(res, "40P01")) {
        d->retry_txn = 1; /* serialization failure or deadlock: run it again */
        return lark_err_set(err, LARK_EUNAVAIL, "the database is busy, retry shortly");
    }
    if (pg_sqlstate_is(res, "23505")) {
        d->retry_txn = 1; /* a concurrent writer won a race the next run sees */
        return lark_err_set(err, LARK_ECONFLICT, "conflict");
    }
    log_error("postgresql %s: %s (state %s)", what, d->pg ? PQerrorMessage(d->pg) : "",
              state ? state : "-");
    if (broken || pg_sqlstate_is(res, "08") || pg_sqlstate_is(res, "57") ||
        pg_sqlstate_is(res, "53")) {
        if (broken) {
            pg_host_lost(d->s, d->host);
            pg_lost(d);
            /* a stale connection (the server restarted since its last
             * use) fails its first statement: if that was BEGIN nothing
             * was done, and a fresh connection may well succeed */
            if (strcmp(what, "BEGIN") == 0)
                d->retry_txn = 1;
        }
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    }
    return lark_err_set(err, LARK_EINTERNAL, "database error");
}

/* Run fixed text (transaction control). */
static int pg_simple(struct pg_db *d, const char *sql, struct lark_err *err)
{
    PGresult *res = PQexec(d->pg, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pg_fail(d, res, err, sql);
    PQclear(res);
    return rc;
}

/* ---- db.h's executor ---------------------------------------------------------- */

static int pg_query(struct db *base, enum db_stmt id, const struct db_arg *args, int n,
                    struct db_rows **out, struct lark_err *err)
{
    struct pg_db *d = (struct pg_db *)base;
    struct pg_rows *r = &d->rows[id];
    const char *values[16];
    int lengths[16];
    char nums[16][24];
    char name[16];
    PGresult *res;

    r->base.db = base;
    r->res = NULL;
    r->row = -1;
    *out = &r->base;
    if (!pg_sql[id])
        return 0;
    if (n > 16 || !d->pg)
        return lark_err_set(err, !d->pg ? LARK_EUNAVAIL : LARK_EINTERNAL, "database error");
    snprintf(name, sizeof(name), "s%d", (int)id);
    if (!d->prepared[id]) {
        res = PQprepare(d->pg, name, pg_sql[id], 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            int rc = pg_fail(d, res, err, "prepare");
            PQclear(res);
            return rc;
        }
        PQclear(res);
        d->prepared[id] = 1;
    }
    for (int i = 0; i < n; i++) {
        const struct db_arg *a = &args[i];
        lengths[i] = 0;
        if (a->type == DB_ARG_INT) {
            snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)a->i);
            values[i] = nums[i];
        } else if (a->type == DB_ARG_TEXT && a->s) {
            values[i] = a->s;
            if (a->len != DB_LEN_NUL && memchr(a->s, '\0', a->len))
                return lark_err_set(err, LARK_EINTERNAL, "a NUL byte in a text parameter");
            if (a->len != DB_LEN_NUL && a->s[a->len] != '\0') {
                /* text format needs NUL-terminated values */
                return lark_err_set(err, LARK_EINTERNAL, "an unterminated text parameter");
            }
        } else {
            values[i] = NULL;
        }
    }
    res = PQexecPrepared(d->pg, name, n, values, lengths, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        int rc = pg_fail(d, res, err, pg_sql[id]);
        PQclear(res);
        return rc;
    }
    r->res = res;
    return 0;
}

static int pg_next(struct db_rows *base, struct lark_err *err)
{
    struct pg_rows *r = (struct pg_rows *)base;
    (void)err;
    if (!r->res || r->row + 1 >= PQntuples(r->res))
        return 0;
    r->row++;
    return 1;
}

static const char *pg_text(struct db_rows *base, int col)
{
    struct pg_rows *r = (struct pg_rows *)base;
    return PQgetvalue(r->res, r->row, col);
}

static size_t pg_len(struct db_rows *base, int col)
{
    struct pg_rows *r = (struct pg_rows *)base;
    return (size_t)PQgetlength(r->res, r->row, col);
}

static int pg_is_null(struct db_rows *base, int col)
{
    struct pg_rows *r = (struct pg_rows *)base;
    return PQgetisnull(r->res, r->row, col);
}

static void pg_done(struct db_rows *base)
{
    struct pg_rows *r = (struct pg_rows *)base;
    PQclear(r->res);
    r->res = NULL;
}

static void pg_note(struct db *base, const struct store_note *note)
{
    note_buf_add(&((struct pg_db *)base)->notes, note);
}

static int pg_has(struct db *base, enum db_stmt id)
{
    (void)base;
    return pg_sql[id] != NULL;
}

static const struct db_ops pg_db_ops = {
    .query = pg_query,
    .has = pg_has,
    .next = pg_next,
    .text = pg_text,
    .len = pg_len,
    .is_null = pg_is_null,
    .done = pg_done,
    .note = pg_note,
};

/* ---- NOTIFY ------------------------------------------------------------------ */

static int pg_notify1(struct pg_db *d, const char *payload, struct lark_err *err)
{
    const char *values[1] = {payload};
    PGresult *res;
    int rc = 0;

    if (!d->notify_prepared) {
        res = PQprepare(d->pg, "notify", "SELECT pg_notify('" PG_CHANNEL "', $1)", 1, NULL);
        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pg_fail(d, res, err, "prepare notify");
        PQclear(res);
        if (rc)
            return rc;
        d->notify_prepared = 1;
    }
    res = PQexecPrepared(d->pg, "notify", 1, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = pg_fail(d, res, err, "notify");
    PQclear(res);
    return rc;
}

struct pg_notify_ctx {
    struct pg_db *d;
    struct lark_err *err;
};

static int pg_notify_send(void *arg, const char *payload, size_t len)
{
    struct pg_notify_ctx *ctx = arg;
    (void)len;
    return pg_notify1(ctx->d, payload, ctx->err);
}

/* Tell the other processes about notes, inside the transaction (pgnote.h:
 * stored events travel with their data when it fits). */
static int pg_notify_notes(struct pg_db *d, const struct store_note *notes, size_t n,
                           struct lark_err *err)
{
    struct pg_notify_ctx ctx = {d, err};
    return n ? pgnote_encode(d->s->origin, notes, n, pg_notify_send, &ctx) : 0;
}

/* ---- transactions -------------------------------------------------------------- */

static int pg_txn_once(struct pg_db *d, store_write_fn fn, void *arg, struct lark_err *err)
{
    int rc;

    d->retry_txn = 0;
    if ((rc = pg_ready(d, err)) || (rc = pg_simple(d, "BEGIN", err)))
        return rc;
    rc = fn(&d->base, arg, err);
    if (rc == 0)
        rc = pg_notify_notes(d, d->notes.v, d->notes.n, err);
    if (rc == 0)
        rc = pg_simple(d, "COMMIT", err);
    if (rc && d->pg && PQtransactionStatus(d->pg) != PQTRANS_IDLE) {
        PGresult *res = PQexec(d->pg, "ROLLBACK");
        PQclear(res);
    }
    return rc;
}

/* One try of a write: 0, or a LARK_E* code with d->retry_txn set when
 * running it again may succeed (a deadlock, a serialization failure, a
 * lost race, a stale connection). Its notes go to d->notes. */
typedef int (*pg_try_fn)(struct pg_db *d, void *arg, struct lark_err *err);

struct pg_txn_arg {
    store_write_fn fn;
    void *arg;
};

static int pg_txn_try(struct pg_db *d, void *arg, struct lark_err *err)
{
    struct pg_txn_arg *t = arg;
    return pg_txn_once(d, t->fn, t->arg, err);
}

/* Run try until it succeeds or may not be retried; then deliver its notes
 * to this process's hub (the other processes had them by NOTIFY). */
static int pg_retry(struct pg_db *d, pg_try_fn try_fn, void *arg, struct lark_err *err)
{
    int rc = LARK_EUNAVAIL;

    for (int attempt = 0; attempt < PG_TXN_TRIES; attempt++) {
        note_buf_truncate(&d->notes, 0);
        d->retry_txn = 0;
        rc = try_fn(d, arg, err);
        if (rc == 0) {
            int64_t now = time_mono_ns();
            for (size_t i = 0; i < d->notes.n; i++)
                d->notes.v[i].commit_ns = now;
            store_emit_notes(&d->s->base, d->notes.v, d->notes.n);
            note_buf_truncate(&d->notes, 0);
            return 0;
        }
        if (!d->retry_txn)
            break;
        /* a deadlock or race: let the other transaction finish first */
        struct timespec ts = {0, (long)(1 + attempt * attempt) * 1000000};
        nanosleep(&ts, NULL);
    }
    note_buf_truncate(&d->notes, 0);
    if (rc == LARK_ECONFLICT) /* still racing after every try: treat as busy */
        rc = lark_err_set(err, LARK_EUNAVAIL, "the database is busy, retry shortly");
    return rc;
}

static int pg_write(struct store_conn *base, store_write_fn fn, void *arg, struct lark_err *err)
{
    struct pg_txn_arg t = {fn, arg};
    return pg_retry(&((struct pg_conn *)base)->db, pg_txn_try, &t, err);
}

/* ---- a send in one round trip (migrations/postgres/0004_send_function.sql) ---- */

/* What lark_send needs besides the request, made once per send. */
struct pg_send_ctx {
    const struct store_send_in *in;
    struct store_send_out *out;
    int64_t now;
    char id[IDS_UUID_LEN];
    char new_conv[IDS_CONV_LEN];
    char *direct_key;
    char *head, *tail; /* the message's JSON around its conversation id and seq */
    char *media_ids;   /* the media ids as a JSON array, NULL for none */
};

/* The message's JSON as store_msg_json renders it, cut around the
 * conversation id and the seq, which only the function knows. */
static void pg_send_template(struct pg_send_ctx *x)
{
    static const char mark[] = "\"conversation_id\":\"\",\"seq\":0,";
    const struct store_send_in *in = x->in;
    struct store_msg_row row = {.id = x->id,
                                .conversation_id = "",
                                .seq = 0,
                                .sender = in->sender,
                                .client_msg_id = in->client_msg_id ? in->client_msg_id : x->id,
                                .type = in->type,
                                .body = in->body,
                                .body_len = in->body_len,
                                .meta = in->meta ? in->meta : "{}",
                                .created_at = x->now,
                                .media = in->nmedia ? in->media_json : NULL};
    json_t *m = store_msg_json(&row);
    char *text = json_dump(m, 0, NULL);
    char *at = strstr(text, mark); /* keys come first, in store_msg_json's order */

    json_decref(m);
    x->head = xstrndup(text, (size_t)(at - text) + strlen("\"conversation_id\":\""));
    x->tail = xstrdup(at + strlen(mark) - 1); /* from the ',' after the seq */
    free(text);
}

/* The primary message of a raised error ("no media m_... of yours"). */
static const char *pg_error_text(const PGresult *res)
{
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return m ? m : "refused";
}

/* The message object of a 'duplicate' row (columns 1.. as named). */
static json_t *pg_send_dup(PGresult *res)
{
    struct store_msg_row m = {.id = PQgetvalue(res, 0, 4),
                              .conversation_id = PQgetvalue(res, 0, 1),
                              .seq = strtoull(PQgetvalue(res, 0, 2), NULL, 10),
                              .sender = PQgetvalue(res, 0, 5),
                              .client_msg_id = PQgetvalue(res, 0, 6),
                              .type = PQgetvalue(res, 0, 7),
                              .body = PQgetvalue(res, 0, 8),
                              .body_len = (size_t)PQgetlength(res, 0, 8),
                              .meta = PQgetvalue(res, 0, 9),
                              .created_at = strtoll(PQgetvalue(res, 0, 10), NULL, 10),
                              .media = PQgetisnull(res, 0, 11) ? NULL : PQgetvalue(res, 0, 11)};
    return store_msg_json(&m);
}

/* The 'sent' rows: the message (as its 201 shows it) and a note per
 * member's new inbox event, with the very bytes the NOTIFY carried. */
static void pg_send_sent(struct pg_db *d, struct pg_send_ctx *x, PGresult *res)
{
    const char *conv = PQgetvalue(res, 0, 1);
    char *text = xasprintf("%s%s\",\"seq\":%s%s", x->head, conv, PQgetvalue(res, 0, 2), x->tail);
    struct evdata *data = evdata_new("message", text, strlen(text));
    json_error_t jerr;

    x->out->message = json_loads(text, 0, &jerr);
    for (int i = 1; i < PQntuples(res); i++) {
        struct store_note n = {.kind = STORE_NOTE_EVENT,
                               .user = PQgetvalue(res, i, 3),
                               .seq = strtoull(PQgetvalue(res, i, 2), NULL, 10),
                               .data = data};
        note_buf_add(&d->notes, &n);
    }
    evdata_unref(data);
    free(text);
}

static int pg_send_try(struct pg_db *d, void *arg, struct lark_err *err)
{
    static const char sql[] = "SELECT * FROM lark_send($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
                              " $11, $12, $13, $14, $15, $16, $17)";
    struct pg_send_ctx *x = arg;
    const struct store_send_in *in = x->in;
    char now[24], window[24];
    const char *values[17] = {in->sender,
                              in->to,
                              in->conversation_id,
                              in->client_msg_id ? in->client_msg_id : x->id,
                              x->id,
                              in->type,
                              in->body,
                              in->meta ? in->meta : "{}",
                              now,
                              x->new_conv,
                              x->direct_key,
                              window,
                              d->s->origin,
                              x->head,
                              x->tail,
                              x->media_ids,
                              in->nmedia ? in->media_json : NULL};
    int lengths[17] = {0};
    PGresult *res;
    int rc;

    json_decref(x->out->message); /* a retried send starts afresh */
    x->out->message = NULL;
    x->out->duplicate = 0;
    if ((rc = pg_ready(d, err)))
        return rc;
    if (!d->send_prepared) {
        res = PQprepare(d->pg, "lark_send", sql, 0, NULL);
        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : pg_fail(d, res, err, "prepare send");
        PQclear(res);
        if (rc)
            return rc;
        d->send_prepared = 1;
    }
    snprintf(now, sizeof(now), "%lld", (long long)x->now);
    snprintf(window, sizeof(window), "%lld", (long long)d->s->base.push_window_ms);
    res = PQexecPrepared(d->pg, "lark_send", 17, values, lengths, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (pg_sqlstate_is(res, "LK400"))
            rc = lark_err_set(err, LARK_EBADMEDIA, "%s", pg_error_text(res));
        else if (pg_sqlstate_is(res, "LK409"))
            rc = lark_err_set(err, LARK_EMEDIAPENDING, "%s", pg_error_text(res));
        else if (pg_sqlstate_is(res, "LK404"))
            rc = lark_err_set(err, LARK_ENOTFOUND, "no conversation %s", in->conversation_id);
        else if (pg_sqlstate_is(res, "LK403"))
            rc = lark_err_set(err, LARK_ENOTMEMBER, "you are not a member of %s",
                              in->conversation_id);
        else
            rc = pg_fail(d, res, err, "lark_send");
        /* the connection broke: whether the call ran or not, running it
         * again is safe - the same client_msg_id (the id itself when the
         * client sent none) finds the message if it was stored */
        if (!d->pg)
            d->retry_txn = 1;
    } else if (PQntuples(res) < 1) {
        rc = lark_err_set(err, LARK_EINTERNAL, "lark_send returned nothing");
    } else if (strcmp(PQgetvalue(res, 0, 0), "duplicate") == 0) {
        x->out->message = pg_send_dup(res);
        x->out->duplicate = 1;
    } else {
        pg_send_sent(d, x, res);
    }
    PQclear(res);
    return rc;
}

static int pg_send(struct store_conn *base, const struct store_send_in *in,
                   struct store_send_out *out, struct lark_err *err)
{
    struct pg_send_ctx x = {.in = in, .out = out, .now = time_now_ms()};
    int rc;

    ids_uuid7(x.now, x.id);
    ids_conversation(x.now, x.new_conv);
    x.direct_key = in->to ? store_direct_key(in->sender, in->to) : NULL;
    x.media_ids = in->nmedia ? op_json_list(in->media, in->nmedia) : NULL;
    pg_send_template(&x);
    rc = pg_retry(&((struct pg_conn *)base)->db, pg_send_try, &x, err);
    free(x.direct_key);
    free(x.media_ids);
    free(x.head);
    free(x.tail);
    return rc;
}

static struct db *pg_reader(struct store_conn *base, struct lark_err *err)
{
    struct pg_db *d = &((struct pg_conn *)base)->db;
    return pg_ready(d, err) == 0 ? &d->base : NULL;
}

static int pg_publish(struct store_conn *base, const struct store_note *notes, size_t n,
                      struct lark_err *err)
{
    struct pg_db *d = &((struct pg_conn *)base)->db;
    int rc = pg_ready(d, err);

    store_emit_notes(base->store, notes, n); /* this process's own hub, directly */
    if (rc == 0)
        rc = pg_notify_notes(d, notes, n, err); /* autocommit: sent at once */
    return rc;
}

/* ---- LISTEN (hub thread, never blocking) ---------------------------------------- */

/* The listening connection is made with PQconnectStartParams and driven by
 * PQconnectPoll from the hub's epoll loop, and LISTEN is sent with
 * PQsendQuery: a database that stops answering (or a host that drops
 * packets) never holds up the hub, which keeps serving keep-alives and
 * ephemeral events. libpq's connect_timeout does not apply to this mode, so
 * PG_CONNECT_TIMEOUT_MS is enforced here. (A host name in the URL is still
 * resolved synchronously by libpq; docs/OPERATIONS.md advises an address
 * or a unix socket.) */

/* An attempt failed, or the connection did: the next server of the string
 * is tried at once; after a round of them all, the backoff. */
static void pgl_fail(struct pg_store *s, const char *what)
{
    struct pg_listener *l = &s->listen;

    if (l->pg) {
        log_warn("postgresql: the listening connection %s: %s", what, pg_one_line(l->pg));
        PQfinish(l->pg);
    }
    l->pg = NULL;
    l->state = PGL_IDLE;
    if (++l->tried < s->nhosts) {
        l->retry_at = 0;
        return;
    }
    l->tried = 0;
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
    if (l->backoff_ms > PG_BACKOFF_MAX_MS)
        l->backoff_ms = PG_BACKOFF_MAX_MS;
    l->retry_at = time_mono_ms() + l->backoff_ms;
}

/* The established connection failed (or is suspect): remade at once,
 * from the server last reached (workers may know the new primary). */
static void pgl_lost(struct pg_store *s, const char *what)
{
    struct pg_listener *l = &s->listen;

    l->tried = 0;
    pgl_fail(s, what);
    l->tried = 0;
    l->retry_at = 0;
}

static int pg_listener_fd(struct store *base, int *want_write)
{
    struct pg_listener *l = &((struct pg_store *)base)->listen;
    if (!l->pg || l->state == PGL_IDLE)
        return -1;
    *want_write = l->want_write;
    return PQsocket(l->pg);
}

/* One notification from another process: hand its notes to the hub. */
static void pg_dispatch(struct pg_store *s, const char *payload)
{
    if (pgnote_decode(payload, strlen(payload), s->origin, pg_emit, s) < 0)
        log_warn("postgresql: a malformed note on channel " PG_CHANNEL " was ignored");
}

/* One server at a time, each with its own deadline (libpq only moves to
 * the next server of a list when one fails, and a server that vanished
 * from the network never fails, it times out): the one workers last
 * reached first, then the others in turn. */
static void pgl_start(struct pg_store *s)
{
    static const char *const keys[] = {"application_name",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "dbname",
                                       "host",
                                       "hostaddr",
                                       "port",
                                       NULL};
    struct pg_listener *l = &s->listen;
    int i = (atomic_load_explicit(&s->good, memory_order_relaxed) + l->tried) % s->nhosts;
    const struct pg_host *h = &s->hosts[i];
    const char *values[] = {"larkd-listen",
                            PG_LISTEN_KEEPALIVE_IDLE,
                            "1",
                            "3",
                            PG_TCP_USER_TIMEOUT,
                            s->uri,
                            h->alone[0],
                            h->alone[1],
                            h->alone[2],
                            NULL};

    l->host = i;
    l->pg = PQconnectStartParams(keys, values, 1);
    if (!l->pg || PQstatus(l->pg) == CONNECTION_BAD) {
        pgl_fail(s, "could not start");
        return;
    }
    PQsetNoticeProcessor(l->pg, pg_notice, NULL);
    l->state = PGL_CONNECTING;
    l->want_write = 1; /* libpq: act as if PQconnectPoll had said WRITING */
    l->deadline = time_mono_ms() + PG_CONNECT_TIMEOUT_MS;
}

/* Connecting: one step of PQconnectPoll; then LISTEN is sent. */
static void pgl_connect_step(struct pg_store *s)
{
    struct pg_listener *l = &s->listen;
    PostgresPollingStatusType st = PQconnectPoll(l->pg);

    if (st == PGRES_POLLING_FAILED) {
        pgl_fail(s, "could not connect");
        return;
    }
    if (st != PGRES_POLLING_OK) {
        l->want_write = st == PGRES_POLLING_WRITING;
        return;
    }
    if (PQsetnonblocking(l->pg, 1) != 0 || !PQsendQuery(l->pg, "LISTEN " PG_CHANNEL)) {
        pgl_fail(s, "could not send LISTEN");
        return;
    }
    l->state = PGL_LISTENING;
}

/* Sending or awaiting LISTEN's answer, or listening: read what came. */
static void pgl_read(struct pg_store *s, int *reconnected)
{
    struct pg_listener *l = &s->listen;
    PGnotify *note;
    int flushed = PQflush(l->pg);

    if (flushed < 0 || !PQconsumeInput(l->pg)) {
        if (l->state == PGL_READY)
            pg_host_lost(s, l->host);
        pgl_lost(s, "failed");
        return;
    }
    l->want_write = flushed == 1;
    while (l->state == PGL_LISTENING && !PQisBusy(l->pg)) {
        PGresult *res = PQgetResult(l->pg);
        if (!res) {
            l->state = PGL_READY;
            l->backoff_ms = 0;
            l->tried = 0;
            l->lost_seen = pg_host_losses(s, l->host);
            pg_host_reached(s, l->host);
            *reconnected = 1;
            log_info("postgresql: listening for other processes' notes");
            break;
        }
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            PQclear(res);
            pgl_fail(s, "LISTEN failed");
            return;
        }
        PQclear(res);
    }
    while ((note = PQnotifies(l->pg)) != NULL) {
        pg_dispatch(s, note->extra);
        PQfreemem(note);
    }
}

static int64_t pg_listener_poll(struct store *base, int *reconnected)
{
    struct pg_store *s = (struct pg_store *)base;
    struct pg_listener *l = &s->listen;
    int64_t now = time_mono_ms();

    if (l->state == PGL_READY && pg_host_losses(s, l->host) != l->lost_seen)
        pgl_lost(s, "is to a server another connection lost");
    if (l->state == PGL_IDLE) {
        if (now < l->retry_at)
            return l->retry_at - now;
        pgl_start(s);
    }
    if (l->state == PGL_CONNECTING)
        pgl_connect_step(s);
    if (l->state == PGL_LISTENING || l->state == PGL_READY)
        pgl_read(s, reconnected);
    if (l->state == PGL_IDLE)
        return l->retry_at > now ? l->retry_at - now : 0;
    if (l->state != PGL_READY) {
        if (now >= l->deadline) {
            pgl_fail(s, "timed out");
            return l->retry_at > now ? l->retry_at - now : 0;
        }
        return l->deadline - now;
    }
    return PG_LISTEN_CHECK_MS;
}

/* ---- push daemons' wake-ups ------------------------------------------------------- */

static int pg_push_watch(struct store_conn *base, int *fd, struct lark_err *err)
{
    struct pg_db *w = &((struct pg_conn *)base)->watch;

    if (!w->pg || PQstatus(w->pg) != CONNECTION_OK) {
        int rc = pg_ready(w, err);
        if (rc == 0)
            rc = pg_simple(w, "LISTEN " PG_PUSH_CHANNEL, err);
        if (rc) {
            if (w->pg)
                pg_drop(w);
            return rc;
        }
        PQsetnonblocking(w->pg, 1);
    }
    *fd = PQsocket(w->pg);
    return 0;
}

static int pg_push_watch_drain(struct store_conn *base, int *changed, struct lark_err *err)
{
    struct pg_db *w = &((struct pg_conn *)base)->watch;
    PGnotify *note;

    if (!w->pg)
        return lark_err_set(err, LARK_EUNAVAIL, "not listening");
    if (!PQconsumeInput(w->pg)) {
        log_warn("postgresql: the push listening connection failed: %s", PQerrorMessage(w->pg));
        pg_lost(w);
        *changed = 1; /* notifications may have been missed: look again */
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    }
    while ((note = PQnotifies(w->pg)) != NULL) {
        *changed = 1;
        PQfreemem(note);
    }
    return 0;
}

/* ---- a CGI process's wake-ups (store_inbox_watch) --------------------------------- */

/* LISTEN on the connection the process reads with: a held CGI request
 * costs the database one connection, not two (max_connections is what
 * bounds how many requests a CGI site on PostgreSQL can hold). */
static int pg_inbox_watch(struct store_conn *base, const char *user, int *fd, struct lark_err *err)
{
    struct pg_conn *c = (struct pg_conn *)base;
    struct pg_db *d = &c->db;
    int rc;

    if (!c->inbox_user)
        c->inbox_user = xstrdup(user);
    if (!d->listening) {
        if ((rc = pg_ready(d, err)) || (rc = pg_simple(d, "LISTEN " PG_CHANNEL, err)))
            return rc;
        d->listening = 1;
    }
    *fd = PQsocket(d->pg);
    return 0;
}

/* pgnote_decode's emit for a watching CGI process: its user's notes only. */
static void pg_inbox_emit(void *arg, const struct store_note *notes, size_t n)
{
    struct pg_conn *c = arg;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(notes[i].user, c->inbox_user) != 0)
            continue;
        if (notes[i].kind == STORE_NOTE_EVENT)
            c->inbox_changed = 1;
        else if (notes[i].kind == STORE_NOTE_EPHEMERAL)
            store_emit_notes(c->base.store, &notes[i], 1);
    }
}

static int pg_inbox_watch_drain(struct store_conn *base, int *changed, struct lark_err *err)
{
    struct pg_conn *c = (struct pg_conn *)base;
    struct pg_db *d = &c->db;
    PGnotify *note;

    if (!c->inbox_user)
        return 0;
    if (!d->pg || !d->listening || !PQconsumeInput(d->pg)) {
        /* lost (here, or under a statement that failed meanwhile) */
        if (d->pg && d->listening)
            pg_lost(d);
        *changed = 1;
        return lark_err_set(err, LARK_EUNAVAIL, "the database is unavailable");
    }
    c->inbox_changed = 0;
    while ((note = PQnotifies(d->pg)) != NULL) {
        if (pgnote_decode(note->extra, strlen(note->extra),
                          ((struct pg_store *)base->store)->origin, pg_inbox_emit, c) < 0)
            log_warn("postgresql: a malformed note on channel " PG_CHANNEL " was ignored");
        PQfreemem(note);
    }
    *changed = c->inbox_changed;
    return 0;
}

/* ---- migrations ----------------------------------------------------------------- */

static int pg_migrate(struct pg_db *d, const char *root, struct lark_err *err)
{
    struct migration *m = NULL;
    char lock[64];
    int n = 0, current = 0, rc;
    PGresult *res;

    if ((rc = migrate_list(root, "postgres", &m, &n, err)))
        return rc;
    /* several larkd may start at once: one migrates, the others wait */
    snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%d)", PG_MIGRATE_LOCK);
    res = PQexec(d->pg, lock);
    rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : pg_fail(d, res, err, "advisory lock");
    PQclear(res);
    if (rc == 0)
        rc = pg_simple(d,
                       "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                       " name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                       err);
    if (rc == 0) {
        res = PQexec(d->pg, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            current = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        else
            rc = pg_fail(d, res, err, "read schema_version");
        PQclear(res);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        char version[16], at[24];
        const char *values[3] = {version, m[i].name, at};
        if (m[i].version <= current)
            continue;
        snprintf(version, sizeof(version), "%d", m[i].version);
        snprintf(at, sizeof(at), "%lld", (long long)time_now_ms());
        if ((rc = pg_simple(d, "BEGIN", err)))
            break;
        /* migration files are trusted schema text, run as a script */
        res = PQexec(d->pg, m[i].sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
            rc = lark_err_set(err, LARK_EINVAL, "migration %s failed: %s", m[i].name,
                              PQerrorMessage(d->pg));
        PQclear(res);
        if (rc == 0) {
            res = PQexecParams(d->pg,
                               "INSERT INTO schema_version (version, name, applied_at)"
                               " VALUES ($1, $2, $3)",
                               3, NULL, values, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                rc = pg_fail(d, res, err, "record migration");
            PQclear(res);
        }
        if (rc == 0)
            rc = pg_simple(d, "COMMIT", err);
        if (rc) {
            res = PQexec(d->pg, "ROLLBACK");
            PQclear(res);
        } else {
            log_info("migration applied version=%d name=%s", m[i].version, m[i].name);
        }
    }
    res = PQexec(d->pg, "SELECT pg_advisory_unlock_all()");
    PQclear(res);
    migrate_free(m, n);
    return rc;
}

/* ---- open / close ----------------------------------------------------------------- */

static void pg_db_init(struct pg_db *d, struct pg_store *s)
{
    memset(d, 0, sizeof(*d));
    d->base.ops = &pg_db_ops;
    d->s = s;
    d->host = -1;
}

static void pg_db_release(struct pg_db *d)
{
    for (int i = 0; i < DB_NSTMT; i++)
        PQclear(d->rows[i].res);
    if (d->pg)
        PQfinish(d->pg);
    note_buf_release(&d->notes);
    memset(d, 0, sizeof(*d));
}

static void pg_close(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->listen.pg)
        PQfinish(s->listen.pg);
    pg_hosts_release(s);
    free(s->uri);
    free(s);
}

static int pg_open(const struct config *cfg, const char *target, unsigned flags, struct store **out,
                   struct lark_err *err)
{
    struct pg_store *s = xcalloc(1, sizeof(*s));
    struct pg_db mig;
    unsigned char rnd[8];
    int rc;

    (void)flags; /* nothing of PostgreSQL's outlives a process anyway */
    s->base.ops = &store_pg_ops;
    s->uri = xstrdup(target);
    atomic_init(&s->connects, 0);
    atomic_init(&s->good, 0);
    for (int i = 0; i < PG_MAX_HOSTS; i++)
        atomic_init(&s->lost[i], 0);
    pg_hosts_init(s);
    ids_random(rnd, sizeof(rnd));
    for (int i = 0; i < 8; i++)
        snprintf(s->origin + 2 * i, 3, "%02x", rnd[i]);
    pg_db_init(&mig, s);
    rc = pg_ready(&mig, err);
    if (rc == 0)
        rc = pg_migrate(&mig, cfg->migrations, err);
    else
        lark_err_set(err, rc, "cannot connect to PostgreSQL (%s)", "see the log");
    pg_db_release(&mig);
    if (rc) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

static int pg_conn_open(struct store *base, struct store_conn **out, struct lark_err *err)
{
    struct pg_conn *c = xcalloc(1, sizeof(*c));
    (void)err;
    c->base.store = base;
    /* connected on first use, so that a database down now does not stop
     * larkd from starting its threads */
    pg_db_init(&c->db, (struct pg_store *)base);
    pg_db_init(&c->watch, (struct pg_store *)base);
    *out = &c->base;
    return 0;
}

static void pg_conn_close(struct store_conn *base)
{
    struct pg_conn *c = (struct pg_conn *)base;
    pg_db_release(&c->db);
    pg_db_release(&c->watch);
    free(c->inbox_user);
    free(c);
}

const struct store_ops store_pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .conn_open = pg_conn_open,
    .conn_close = pg_conn_close,
    .write = pg_write,
    .send = pg_send,
    .reader = pg_reader,
    .publish = pg_publish,
    .listener_fd = pg_listener_fd,
    .listener_poll = pg_listener_poll,
    .push_watch = pg_push_watch,
    .push_watch_drain = pg_push_watch_drain,
    .inbox_watch = pg_inbox_watch,
    .inbox_watch_drain = pg_inbox_watch_drain,
};
