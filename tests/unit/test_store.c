/*
 * test_store.c - the SQLite back end, through core/store.h only.
 *
 * Each test opens a fresh database in a temporary directory with the
 * repository's migrations, and checks the promises store.h makes: direct
 * chats are one per pair whichever side starts, retries are idempotent,
 * conversation and inbox seqs are gapless even with many writers, history
 * pages cleanly in both directions, acks never go backwards, the wake
 * function hears of every (user, seq) only after its commit, and a failed
 * write leaves nothing behind.
 *
 * Faults are injected from outside the process's store, the way real ones
 * arrive, so no hook is needed in store_sqlite.c:
 *   - disk full: RLIMIT_FSIZE caps the size of any file the process writes
 *     (the kernel then fails the write with EFBIG, exactly like a full
 *     disk fails it with ENOSPC);
 *   - a lock held by someone else: a second SQLite connection (as an
 *     operator's sqlite3 shell would) holds the write lock;
 *   - a statement failing mid-transaction: a second connection installs a
 *     trigger that makes one user's inbox insert fail after the message
 *     and the conversation counter were already written.
 */
#include "core/store.h"

#include "core/config.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/mem.h"
#include "tests/unit/unit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---- fixture -------------------------------------------------------------- */

struct wake_rec {
    char user[LIMIT_USER_ID_MAX + 1];
    uint64_t seq;
    char type[EVDATA_TYPE_MAX + 1];
    char *data; /* the note's data (copied), NULL if it carried none */
};

/* Everything the wake function was told, filled from the writer thread. */
struct wake_log {
    pthread_mutex_t mu;
    struct wake_rec *v;
    size_t n, cap;
    int verify;        /* 1: check each wake against a fresh connection */
    int not_committed; /* wakes whose seq a new reader could not see yet */
    int no_time;       /* wakes without a commit time */
};

static char *dir;         /* the test's temporary directory */
static struct config cfg; /* db in dir, the repository's migrations */
static struct store *st;
static struct store_conn *conn; /* the test thread's connection */
static struct wake_log wakes;

static void on_wake(void *arg, const struct store_note *w, size_t n)
{
    struct wake_log *log = arg;
    struct store_conn *c = NULL;
    struct lark_err err;

    /* Runs in the writer thread: record only, never assert here. */
    if (log->verify && store_conn_open(st, &c, &err) != 0)
        c = NULL;
    pthread_mutex_lock(&log->mu);
    for (size_t i = 0; i < n; i++) {
        uint64_t head = 0, acked = 0;
        if (w[i].kind != STORE_NOTE_EVENT)
            continue;
        if (log->n == log->cap) {
            log->cap = log->cap ? log->cap * 2 : 256;
            log->v = xrealloc(log->v, log->cap * sizeof(*log->v));
        }
        snprintf(log->v[log->n].user, sizeof(log->v[log->n].user), "%s", w[i].user);
        log->v[log->n].seq = w[i].seq;
        snprintf(log->v[log->n].type, sizeof(log->v[log->n].type), "%s",
                 w[i].data ? w[i].data->type : "");
        log->v[log->n].data = w[i].data ? xstrdup(w[i].data->json) : NULL;
        log->n++;
        if (w[i].commit_ns <= 0)
            log->no_time++;
        if (log->verify &&
            (!c || store_inbox_state(c, w[i].user, &head, &acked, &err) != 0 || head < w[i].seq))
            log->not_committed++;
    }
    pthread_mutex_unlock(&log->mu);
    store_conn_close(c);
}

static void open_store(void)
{
    struct lark_err err = {0};
    int rc = store_open(&cfg, &st, &err);

    ck_assert_msg(rc == 0, "store_open: %d %s", rc, err.msg);
    ck_assert_str_eq(store_backend(st), "sqlite");
    store_set_listener(st, on_wake, &wakes);
    rc = store_conn_open(st, &conn, &err);
    ck_assert_msg(rc == 0, "store_conn_open: %s", err.msg);
}

static void close_store(void)
{
    store_conn_close(conn);
    store_close(st);
    conn = NULL;
    st = NULL;
}

static void setup(void)
{
    dir = unit_tmpdir();
    memset(&cfg, 0, sizeof(cfg));
    cfg.db = xasprintf("sqlite:%s/lark.db", dir);
    cfg.migrations = xstrdup(LARK_MIGRATIONS_DIR);
    cfg.sqlite_sync = xstrdup("FULL");
    memset(&wakes, 0, sizeof(wakes));
    pthread_mutex_init(&wakes.mu, NULL);
    wakes.verify = 1;
    open_store();
}

static void teardown(void)
{
    close_store();
    config_release(&cfg);
    pthread_mutex_destroy(&wakes.mu);
    for (size_t i = 0; i < wakes.n; i++)
        free(wakes.v[i].data);
    free(wakes.v);
    unit_rmtree(dir);
    free(dir);
    dir = NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static int send_msg(struct store_conn *c, const char *sender, const char *to, const char *conv,
                    const char *client_msg_id, const char *body, struct store_send_out *out,
                    struct lark_err *err)
{
    struct store_send_in in = {.sender = sender,
                               .to = to,
                               .conversation_id = conv,
                               .client_msg_id = client_msg_id,
                               .type = "text",
                               .body = body,
                               .body_len = strlen(body),
                               .meta = NULL};
    memset(err, 0, sizeof(*err));
    return store_send(c, &in, out, err);
}

/* Send that must succeed; the new message (caller decrefs). */
static json_t *sent(const char *sender, const char *to, const char *client_msg_id, const char *body)
{
    struct store_send_out out;
    struct lark_err err;
    int rc = send_msg(conn, sender, to, NULL, client_msg_id, body, &out, &err);

    ck_assert_msg(rc == 0, "send %s->%s: %d %s", sender, to, rc, err.msg);
    ck_assert_ptr_nonnull(out.message);
    ck_assert_int_eq(out.duplicate, 0);
    return out.message;
}

/* store_inbox_read as a JSON array of envelopes {seq, type, data} (the
 * data parsed), and the seq of the last one (after when none). */
static int inbox_json(struct store_conn *c, const char *user, uint64_t after, unsigned limit,
                      json_t **out, uint64_t *last, struct lark_err *err)
{
    struct store_event *evs = NULL;
    uint64_t head = 0;
    size_t n = 0;
    int rc = store_inbox_read(c, user, after, limit, &evs, &n, &head, err);

    *out = json_arr();
    *last = after;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *ev = json_obj();
        json_put(ev, "seq", json_integer((json_int_t)evs[i].seq));
        json_put(ev, "type", json_string(evs[i].data->type));
        json_put(ev, "data", json_loads(evs[i].data->json, 0, NULL));
        json_push(*out, ev);
        *last = evs[i].seq;
        ck_assert_uint_ge(head, evs[i].seq); /* the head is at least what was read */
    }
    store_events_free(evs, n);
    return rc;
}

static uint64_t jseq(const json_t *m)
{
    return (uint64_t)json_integer_value(json_object_get(m, "seq"));
}

static const char *jstr(const json_t *m, const char *key)
{
    const char *s = json_string_value(json_object_get(m, key));
    ck_assert_msg(s != NULL, "no string '%s'", key);
    return s;
}

static void state(const char *user, uint64_t *head, uint64_t *acked)
{
    struct lark_err err;
    ck_assert_int_eq(store_inbox_state(conn, user, head, acked, &err), 0);
}

static uint64_t head_of(const char *user)
{
    uint64_t head, acked;
    state(user, &head, &acked);
    return head;
}

/* A history page; asserts success. */
static json_t *page(const char *user, const char *conv, uint64_t before, uint64_t after, int asc,
                    unsigned limit, int *has_more)
{
    struct store_page p = {.before = before, .after = after, .ascending = asc, .limit = limit};
    struct lark_err err;
    json_t *msgs = NULL;
    int rc = store_history(conn, user, conv, &p, &msgs, has_more, &err);

    ck_assert_msg(rc == 0, "history: %d %s", rc, err.msg);
    ck_assert(json_is_array(msgs));
    return msgs;
}

/* Assert msgs holds exactly the seqs from..to (step +1 or -1). */
static void seqs_are(const json_t *msgs, uint64_t from, uint64_t to)
{
    size_t n = from <= to ? to - from + 1 : from - to + 1;
    ck_assert_uint_eq(json_array_size(msgs), n);
    for (size_t i = 0; i < n; i++) {
        uint64_t want = from <= to ? from + i : from - i;
        ck_assert_uint_eq(jseq(json_array_get(msgs, i)), want);
    }
}

static size_t wake_count(void)
{
    size_t n;
    pthread_mutex_lock(&wakes.mu);
    n = wakes.n;
    pthread_mutex_unlock(&wakes.mu);
    return n;
}

/* Size of dir/name, 0 if absent. */
static off_t file_size(const char *name)
{
    char *path = unit_path(dir, name);
    struct stat sb;
    off_t n = stat(path, &sb) == 0 ? sb.st_size : 0;
    free(path);
    return n;
}

/* A second, raw connection to the database file (fault injection). */
static sqlite3 *raw_open(void)
{
    char *path = unit_path(dir, "lark.db");
    sqlite3 *db = NULL;

    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    free(path);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
}

/* ---- open, migrations ----------------------------------------------------- */

START_TEST(test_ping)
{
    struct lark_err err;
    ck_assert_int_eq(store_ping(conn, &err), 0);
}
END_TEST

/* Tickets (core/ticket.h): one key for every process, made once; a nonce
 * is used once, and forgotten after its expiry. */
START_TEST(test_ticket_key_and_uses)
{
    char key1[2 * STORE_TICKET_KEY_LEN + 1], key2[2 * STORE_TICKET_KEY_LEN + 1];
    struct lark_err err = {0};
    int first = -1;

    ck_assert_int_eq(store_ticket_key(conn, key1, &err), 0);
    ck_assert_uint_eq(strlen(key1), 2 * STORE_TICKET_KEY_LEN);
    close_store(); /* another process, later: the same key */
    open_store();
    ck_assert_int_eq(store_ticket_key(conn, key2, &err), 0);
    ck_assert_str_eq(key1, key2);
    ck_assert_int_eq(store_ticket_use(conn, "n1", 2000, 1000, &first, &err), 0);
    ck_assert_int_eq(first, 1);
    ck_assert_int_eq(store_ticket_use(conn, "n1", 2000, 1500, &first, &err), 0);
    ck_assert_int_eq(first, 0); /* used */
    ck_assert_int_eq(store_ticket_use(conn, "n2", 2000, 1500, &first, &err), 0);
    ck_assert_int_eq(first, 1);
    /* past their expiry the uses are purged (the ticket itself is refused
     * by its expiry before the store is asked) */
    ck_assert_int_eq(store_ticket_use(conn, "n3", 9000, 2000, &first, &err), 0);
    ck_assert_int_eq(first, 1);
    ck_assert_int_eq(store_ticket_use(conn, "n1", 9000, 2001, &first, &err), 0);
    ck_assert_int_eq(first, 1);
}
END_TEST

START_TEST(test_reopen_keeps_data)
{
    json_t *m = sent("alice", "bob", "first", "hello");
    char conv[IDS_CONV_LEN];
    json_t *msgs;
    int more;

    snprintf(conv, sizeof(conv), "%s", jstr(m, "conversation_id"));
    /* Re-opening finds the schema current and applies nothing again. */
    for (int i = 0; i < 3; i++) {
        close_store();
        open_store();
    }
    msgs = page("bob", conv, UINT64_MAX, 0, 0, 50, &more);
    seqs_are(msgs, 1, 1);
    ck_assert(json_equal(json_array_get(msgs, 0), m));
    json_decref(msgs);
    json_decref(m);
    m = sent("bob", "alice", NULL, "again");
    ck_assert_uint_eq(jseq(m), 2);
    ck_assert_str_eq(jstr(m, "conversation_id"), conv);
    json_decref(m);
}
END_TEST

/* Copy migrations/sqlite/NNNN_*.sql with NNNN <= upto into dir/mig-old/sqlite. */
static char *old_migrations(int upto)
{
    char *root = unit_path(dir, "mig-old");
    char *sub = unit_path(root, "sqlite");
    char *cmd;

    ck_assert_int_eq(mkdir(root, 0700), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    for (int v = 1; v <= upto; v++) {
        cmd = xasprintf("cp %s/sqlite/%04d_*.sql %s/", LARK_MIGRATIONS_DIR, v, sub);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
    }
    free(sub);
    return root;
}

START_TEST(test_migration_0004_keeps_data)
{
    /* A database in the layout before 0004 (written through today's store,
     * whose statements read and write both layouts) is rewritten in place:
     * every message, inbox event, position and key survives, and seqs go
     * on without a gap or a duplicate. */
    const char *members[] = {"bob", "carol"};
    struct store_group_in g = {
        .creator = "alice", .members = members, .nmembers = 2, .max_members = 10};
    char *old = old_migrations(3), *orig = cfg.migrations;
    json_t *m1, *m2, *conv = NULL, *before = NULL, *after = NULL, *hist;
    struct store_send_out out;
    struct lark_err err;
    uint64_t acked = 0, head_b = 0, head_after = 0, last = 0;
    int more = 0;

    close_store();
    cfg.migrations = old;
    open_store();
    m1 = sent("alice", "bob", "keep-1", "one");
    m2 = sent("bob", "alice", "keep-2", "two");
    ck_assert_int_eq(store_group_create(conn, &g, &conv, &err), 0);
    ck_assert_int_eq(send_msg(conn, "carol", NULL, jstr(conv, "id"), "keep-3", "three", &out, &err),
                     0);
    json_decref(out.message);
    ck_assert_int_eq(store_ack(conn, "bob", 2, &acked, &err), 0);
    head_b = head_of("bob");
    ck_assert_int_eq(inbox_json(conn, "bob", 0, 100, &before, &last, &err), 0);
    close_store();
    cfg.migrations = orig;
    open_store(); /* applies 0004 */
    ck_assert_int_eq(inbox_json(conn, "bob", 0, 100, &after, &last, &err), 0);
    ck_assert(json_equal(before, after));
    ck_assert_uint_eq(head_of("bob"), head_b);
    {
        uint64_t h, a;
        state("bob", &h, &a);
        ck_assert_uint_eq(a, 2);
    }
    /* history in both directions, then a retry and a new message */
    hist = page("alice", jstr(m1, "conversation_id"), UINT64_MAX, 0, 0, 50, &more);
    seqs_are(hist, 2, 1);
    json_decref(hist);
    ck_assert_int_eq(send_msg(conn, "alice", "bob", NULL, "keep-1", "one", &out, &err), 0);
    ck_assert_int_eq(out.duplicate, 1);
    ck_assert(json_equal(out.message, m1));
    json_decref(out.message);
    json_decref(sent("alice", "bob", "new-1", "after the migration"));
    head_after = head_of("bob");
    ck_assert_uint_eq(head_after, head_b + 1);
    json_decref(before);
    json_decref(after);
    json_decref(conv);
    json_decref(m1);
    json_decref(m2);
    free(old);
}
END_TEST

static int open_paged(const char *db, const char *migrations, const char *sync, int page_size)
{
    struct config c;
    struct lark_err err = {0};
    struct store *s = (struct store *)0x1;
    int rc;

    memset(&c, 0, sizeof(c));
    c.db = xstrdup(db);
    c.migrations = xstrdup(migrations);
    c.sqlite_sync = xstrdup(sync);
    c.sqlite_page_size = page_size;
    rc = store_open(&c, &s, &err);
    if (rc) {
        ck_assert_ptr_null(s);
        ck_assert_int_eq(err.code, rc);
    }
    store_close(rc ? NULL : s);
    config_release(&c);
    return rc;
}

static int open_gives(const char *db, const char *migrations, const char *sync)
{
    return open_paged(db, migrations, sync, 0);
}

/* The page size SQLite wrote in the database header (bytes 16-17). */
static int file_page_size(const char *path)
{
    unsigned char head[18];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(head, 1, sizeof(head), f) : 0;

    if (f)
        fclose(f);
    ck_assert_uint_eq(n, sizeof(head));
    return head[16] << 8 | head[17];
}

/* sqlite_page_size shapes a new database only; an existing file keeps its
 * own, and a size SQLite cannot use is refused rather than ignored. */
START_TEST(test_page_size)
{
    char *path = unit_path(dir, "paged.db");
    char *db = xasprintf("sqlite:%s", path);

    ck_assert_int_eq(open_paged(db, LARK_MIGRATIONS_DIR, "FULL", 1000), LARK_EINVAL);
    ck_assert_int_eq(open_paged(db, LARK_MIGRATIONS_DIR, "FULL", 1024), 0);
    ck_assert_int_eq(file_page_size(path), 1024);
    ck_assert_int_eq(open_paged(db, LARK_MIGRATIONS_DIR, "FULL", 8192), 0);
    ck_assert_int_eq(file_page_size(path), 1024);
    free(db);
    free(path);
}
END_TEST

START_TEST(test_open_errors)
{
    char *db = xasprintf("sqlite:%s/other.db", dir);
    char *nodir = xasprintf("sqlite:%s/no/such/dir/x.db", dir);
    char *nomig = unit_path(dir, "no-migrations");

    ck_assert_int_eq(open_gives(db, LARK_MIGRATIONS_DIR, "NORMAL"), 0);
    /* PostgreSQL nobody listens for: unavailable (503), not a bad URL */
    ck_assert_int_eq(open_gives("postgresql://127.0.0.1:1/lark", LARK_MIGRATIONS_DIR, "FULL"),
                     LARK_EUNAVAIL);
    ck_assert_int_eq(open_gives("mysql:x", LARK_MIGRATIONS_DIR, "FULL"), LARK_EINVAL);
    ck_assert_int_eq(open_gives(db, LARK_MIGRATIONS_DIR, "OFF"), LARK_EINVAL);
    ck_assert_int_eq(open_gives(db, nomig, "FULL"), LARK_EINVAL);
    ck_assert_int_eq(open_gives(nodir, LARK_MIGRATIONS_DIR, "FULL"), LARK_EUNAVAIL);
    free(db);
    free(nodir);
    free(nomig);
}
END_TEST

/* Copy the repository's SQLite migrations into root/sqlite. */
static void copy_migrations(const char *root)
{
    char *sub = unit_path(root, "sqlite");
    char *src = xasprintf("%s/sqlite/0001_init.sql", LARK_MIGRATIONS_DIR);
    char *dst = unit_path(sub, "0001_init.sql");
    FILE *in, *out;
    char chunk[4096];
    size_t n;

    ck_assert_int_eq(mkdir(root, 0700), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    in = fopen(src, "rb");
    out = fopen(dst, "wb");
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
        ck_assert_uint_eq(fwrite(chunk, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    free(sub);
    free(src);
    free(dst);
}

START_TEST(test_migration_failure_rolls_back)
{
    char *root = unit_path(dir, "mig");
    char *m2 = unit_path(root, "sqlite/9002_extra.sql");
    json_t *m;

    copy_migrations(root);
    m = sent("alice", "bob", NULL, "before the new migration");
    json_decref(m);
    close_store();
    free(cfg.migrations);
    cfg.migrations = xstrdup(root);

    /* A migration that fails half-way is undone whole. */
    unit_write_file(m2, "CREATE TABLE extra (x INTEGER);\nSELECT no_such_function();\n");
    {
        struct lark_err err = {0};
        ck_assert_int_eq(store_open(&cfg, &st, &err), LARK_EINVAL);
        ck_assert_ptr_null(st);
        ck_assert_ptr_nonnull(strstr(err.msg, "9002_extra.sql"));
    }
    /* Fixed, it applies: had the failed run left table extra behind, the
     * CREATE TABLE would now fail. Re-opening does not apply it again. */
    unit_write_file(m2, "CREATE TABLE extra (x INTEGER);\n");
    open_store();
    close_store();
    open_store();
    ck_assert_uint_eq(head_of("alice"), 1);
    m = sent("alice", "bob", NULL, "after");
    ck_assert_uint_eq(jseq(m), 2);
    json_decref(m);
    free(m2);
    free(root);
}
END_TEST

/* ---- send ----------------------------------------------------------------- */

START_TEST(test_send_message_fields)
{
    json_t *m = sent("alice", "bob", "cm-1", "hello \xc3\xa9");
    const char *id = jstr(m, "id");
    const char *created = jstr(m, "created_at");

    ck_assert_uint_eq(strlen(id), IDS_UUID_LEN - 1);
    ck_assert_int_eq(id[14], '7');
    ck_assert(
        ids_valid_conversation(jstr(m, "conversation_id"), strlen(jstr(m, "conversation_id"))));
    ck_assert_uint_eq(jseq(m), 1);
    ck_assert_str_eq(jstr(m, "sender"), "alice");
    ck_assert_str_eq(jstr(m, "client_msg_id"), "cm-1");
    ck_assert_str_eq(jstr(m, "type"), "text");
    ck_assert_str_eq(jstr(m, "body"), "hello \xc3\xa9");
    ck_assert(json_is_object(json_object_get(m, "meta")));
    ck_assert_uint_eq(json_object_size(json_object_get(m, "meta")), 0);
    /* API.md: "2026-11-23T07:00:00.123Z" */
    ck_assert_uint_eq(strlen(created), 24);
    ck_assert_int_eq(created[10], 'T');
    ck_assert_int_eq(created[19], '.');
    ck_assert_int_eq(created[23], 'Z');
    json_decref(m);
}
END_TEST

START_TEST(test_send_meta_and_type)
{
    struct store_send_in in = {.sender = "alice",
                               .to = "bob",
                               .type = "image",
                               .body = "b\0dy",
                               .body_len = 4,
                               .meta = "{\"w\":640,\"h\":480}"};
    struct store_send_out out;
    struct lark_err err;
    json_t *msgs;
    int more;

    ck_assert_int_eq(store_send(conn, &in, &out, &err), 0);
    ck_assert_str_eq(jstr(out.message, "type"), "image");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(out.message, "meta"), "w")),
                     640);
    /* body_len bytes are the body, whatever they hold. */
    ck_assert_uint_eq(json_string_length(json_object_get(out.message, "body")), 4);
    msgs = page("bob", jstr(out.message, "conversation_id"), UINT64_MAX, 0, 0, 10, &more);
    ck_assert(json_equal(json_array_get(msgs, 0), out.message));
    json_decref(msgs);
    json_decref(out.message);
}
END_TEST

START_TEST(test_direct_either_way)
{
    json_t *a = sent("alice", "bob", NULL, "1");
    json_t *b = sent("bob", "alice", NULL, "2");
    json_t *c = sent("alice", "bob", NULL, "3");
    json_t *other = sent("alice", "carol", NULL, "x");
    json_t *self = sent("alice", "alice", NULL, "note to self");

    /* One conversation for the pair, whoever starts it. */
    ck_assert_str_eq(jstr(a, "conversation_id"), jstr(b, "conversation_id"));
    ck_assert_str_eq(jstr(a, "conversation_id"), jstr(c, "conversation_id"));
    ck_assert_uint_eq(jseq(a), 1);
    ck_assert_uint_eq(jseq(b), 2);
    ck_assert_uint_eq(jseq(c), 3);
    ck_assert_str_ne(jstr(other, "conversation_id"), jstr(a, "conversation_id"));
    ck_assert_uint_eq(jseq(other), 1);
    ck_assert_str_ne(jstr(self, "conversation_id"), jstr(a, "conversation_id"));
    ck_assert_uint_eq(jseq(self), 1);
    /* Inboxes: alice has all five (her own chat with herself once), bob
     * three, carol one. */
    ck_assert_uint_eq(head_of("alice"), 5);
    ck_assert_uint_eq(head_of("bob"), 3);
    ck_assert_uint_eq(head_of("carol"), 1);
    ck_assert_uint_eq(head_of("nobody"), 0);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(other);
    json_decref(self);
}
END_TEST

START_TEST(test_send_by_conversation_id)
{
    json_t *a = sent("alice", "bob", NULL, "1");
    const char *conv = jstr(a, "conversation_id");
    struct store_send_out out;
    struct lark_err err;

    ck_assert_int_eq(send_msg(conn, "bob", NULL, conv, NULL, "2", &out, &err), 0);
    ck_assert_uint_eq(jseq(out.message), 2);
    ck_assert_str_eq(jstr(out.message, "conversation_id"), conv);
    json_decref(out.message);
    json_decref(a);
}
END_TEST

START_TEST(test_idempotent_retry)
{
    json_t *m = sent("alice", "bob", "retry-1", "original");
    struct store_send_out out;
    struct lark_err err;
    size_t w = wake_count();
    json_t *other;

    /* The same (sender, client_msg_id) again, even with another body: the
     * stored message comes back and nothing new is written. */
    ck_assert_int_eq(send_msg(conn, "alice", "bob", NULL, "retry-1", "changed", &out, &err), 0);
    ck_assert_int_eq(out.duplicate, 1);
    ck_assert(json_equal(out.message, m));
    ck_assert_str_eq(jstr(out.message, "body"), "original");
    json_decref(out.message);
    ck_assert_uint_eq(head_of("alice"), 1);
    ck_assert_uint_eq(head_of("bob"), 1);
    ck_assert_uint_eq(wake_count(), w);

    /* Another sender may use the same client_msg_id. */
    other = sent("bob", "alice", "retry-1", "bob's own");
    ck_assert_uint_eq(jseq(other), 2);
    ck_assert_str_ne(jstr(other, "id"), jstr(m, "id"));
    json_decref(other);

    /* Without a client_msg_id every send is new; the id stands in for it. */
    other = sent("alice", "bob", NULL, "no id");
    ck_assert_str_eq(jstr(other, "client_msg_id"), jstr(other, "id"));
    json_decref(other);
    other = sent("alice", "bob", NULL, "no id");
    ck_assert_uint_eq(jseq(other), 4);
    json_decref(other);
    json_decref(m);
}
END_TEST

START_TEST(test_not_member_not_found)
{
    json_t *m = sent("alice", "bob", NULL, "private");
    const char *conv = jstr(m, "conversation_id");
    const char *ghost = "c_0123456789abcdef0123456789abcdef";
    struct store_page p = {.before = UINT64_MAX, .after = 0, .ascending = 0, .limit = 10};
    struct store_send_out out;
    struct lark_err err;
    json_t *msgs = (json_t *)0x1;
    int more = 7;

    ck_assert_int_eq(send_msg(conn, "carol", NULL, conv, NULL, "let me in", &out, &err),
                     LARK_ENOTMEMBER);
    ck_assert_int_eq(err.code, LARK_ENOTMEMBER);
    ck_assert_ptr_null(out.message);
    ck_assert_int_eq(send_msg(conn, "carol", NULL, ghost, NULL, "hello?", &out, &err),
                     LARK_ENOTFOUND);
    ck_assert_ptr_null(out.message);
    ck_assert_int_eq(store_history(conn, "carol", conv, &p, &msgs, &more, &err), LARK_ENOTMEMBER);
    ck_assert_ptr_null(msgs);
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(store_history(conn, "alice", ghost, &p, &msgs, &more, &err), LARK_ENOTFOUND);
    ck_assert_ptr_null(msgs);
    /* Nothing was written by the refused sends. */
    ck_assert_uint_eq(head_of("alice"), 1);
    ck_assert_uint_eq(head_of("carol"), 0);
    json_decref(m);
    m = sent("bob", "alice", NULL, "next");
    ck_assert_uint_eq(jseq(m), 2);
    json_decref(m);
}
END_TEST

/* ---- history -------------------------------------------------------------- */

START_TEST(test_history_paging)
{
    json_t *all[26] = {NULL};
    char conv[IDS_CONV_LEN];
    json_t *msgs;
    int more;

    for (int i = 1; i <= 25; i++) {
        char body[16];
        snprintf(body, sizeof(body), "m%d", i);
        all[i] = sent(i % 2 ? "alice" : "bob", i % 2 ? "bob" : "alice", NULL, body);
        ck_assert_uint_eq(jseq(all[i]), (uint64_t)i);
    }
    snprintf(conv, sizeof(conv), "%s", jstr(all[1], "conversation_id"));

    /* Newest first, walking back with before. */
    msgs = page("alice", conv, UINT64_MAX, 0, 0, 10, &more);
    seqs_are(msgs, 25, 16);
    ck_assert_int_eq(more, 1);
    for (int i = 0; i < 10; i++)
        ck_assert(json_equal(json_array_get(msgs, (size_t)i), all[25 - i]));
    json_decref(msgs);
    msgs = page("alice", conv, 16, 0, 0, 10, &more);
    seqs_are(msgs, 15, 6);
    ck_assert_int_eq(more, 1);
    json_decref(msgs);
    msgs = page("alice", conv, 6, 0, 0, 10, &more);
    seqs_are(msgs, 5, 1);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);
    /* Exactly the rest fits: no more. */
    msgs = page("alice", conv, 11, 0, 0, 10, &more);
    seqs_are(msgs, 10, 1);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);
    msgs = page("alice", conv, 1, 0, 0, 10, &more);
    ck_assert_uint_eq(json_array_size(msgs), 0);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);

    /* Oldest first, walking forward with after. */
    msgs = page("bob", conv, UINT64_MAX, 0, 1, 10, &more);
    seqs_are(msgs, 1, 10);
    ck_assert_int_eq(more, 1);
    ck_assert(json_equal(json_array_get(msgs, 0), all[1]));
    json_decref(msgs);
    msgs = page("bob", conv, UINT64_MAX, 15, 1, 10, &more);
    seqs_are(msgs, 16, 25);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);
    msgs = page("bob", conv, UINT64_MAX, 20, 1, 10, &more);
    seqs_are(msgs, 21, 25);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);
    msgs = page("bob", conv, UINT64_MAX, 25, 1, 10, &more);
    ck_assert_uint_eq(json_array_size(msgs), 0);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);

    /* Both bounds: the window between them, in either order. */
    msgs = page("bob", conv, 10, 3, 1, 50, &more);
    seqs_are(msgs, 4, 9);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);
    msgs = page("bob", conv, 10, 3, 0, 2, &more);
    seqs_are(msgs, 9, 8);
    ck_assert_int_eq(more, 1);
    json_decref(msgs);
    /* The largest page. */
    msgs = page("bob", conv, UINT64_MAX, 0, 0, LIMIT_HISTORY_MAX, &more);
    seqs_are(msgs, 25, 1);
    ck_assert_int_eq(more, 0);
    json_decref(msgs);
    msgs = page("bob", conv, UINT64_MAX, 0, 0, 1, &more);
    seqs_are(msgs, 25, 25);
    ck_assert_int_eq(more, 1);
    json_decref(msgs);
    for (int i = 1; i <= 25; i++)
        json_decref(all[i]);
}
END_TEST

/* ---- inbox and ack -------------------------------------------------------- */

START_TEST(test_inbox_read)
{
    json_t *m1 = sent("alice", "bob", NULL, "one");
    json_t *m2 = sent("carol", "bob", NULL, "two");
    json_t *m3 = sent("bob", "alice", NULL, "three");
    struct lark_err err;
    json_t *evs;
    uint64_t last;

    ck_assert_int_eq(inbox_json(conn, "bob", 0, 100, &evs, &last, &err), 0);
    ck_assert_uint_eq(json_array_size(evs), 3);
    ck_assert_uint_eq(last, 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *ev = json_array_get(evs, i);
        json_t *want = i == 0 ? m1 : i == 1 ? m2 : m3;
        ck_assert_uint_eq(json_object_size(ev), 3);
        ck_assert_uint_eq(jseq(ev), i + 1);
        ck_assert_str_eq(jstr(ev, "type"), "message");
        ck_assert(json_equal(json_object_get(ev, "data"), want));
    }
    json_decref(evs);

    /* after and limit */
    ck_assert_int_eq(inbox_json(conn, "bob", 1, 1, &evs, &last, &err), 0);
    ck_assert_uint_eq(json_array_size(evs), 1);
    ck_assert_uint_eq(jseq(json_array_get(evs, 0)), 2);
    ck_assert_uint_eq(last, 2);
    json_decref(evs);
    /* Nothing new: an empty array and last = after. */
    ck_assert_int_eq(inbox_json(conn, "bob", 3, 100, &evs, &last, &err), 0);
    ck_assert_uint_eq(json_array_size(evs), 0);
    ck_assert_uint_eq(last, 3);
    json_decref(evs);
    ck_assert_int_eq(inbox_json(conn, "bob", 99, 100, &evs, &last, &err), 0);
    ck_assert_uint_eq(json_array_size(evs), 0);
    ck_assert_uint_eq(last, 99);
    json_decref(evs);
    ck_assert_int_eq(inbox_json(conn, "nobody", 0, 100, &evs, &last, &err), 0);
    ck_assert_uint_eq(json_array_size(evs), 0);
    ck_assert_uint_eq(last, 0);
    json_decref(evs);
    /* alice's own inbox numbers its events from 1 too. */
    ck_assert_int_eq(inbox_json(conn, "alice", 0, 100, &evs, &last, &err), 0);
    ck_assert_uint_eq(json_array_size(evs), 2);
    ck_assert(json_equal(json_object_get(json_array_get(evs, 1), "data"), m3));
    json_decref(evs);
    json_decref(m1);
    json_decref(m2);
    json_decref(m3);
}
END_TEST

/* The batched read gives each user what store_inbox_read gives them, in
 * the order asked, the same user twice included. */
START_TEST(test_inbox_read_many)
{
    json_decref(sent("alice", "bob", NULL, "one"));
    json_decref(sent("carol", "bob", NULL, "two"));
    json_decref(sent("bob", "alice", NULL, "three"));
    json_decref(sent("bob", "carol", NULL, "four"));
    struct store_inbox_req reqs[] = {
        {.user = "bob", .after = 0},    {.user = "alice", .after = 0},
        {.user = "nobody", .after = 0}, {.user = "carol", .after = 1},
        {.user = "bob", .after = 1},    {.user = "bob", .after = 99},
    };
    size_t nreqs = sizeof reqs / sizeof reqs[0];
    const unsigned limit = 2;
    struct lark_err err;

    for (size_t i = 0; i < nreqs; i++) /* out fields start dirty: the call sets them */
        reqs[i].head = reqs[i].n = 777;
    ck_assert_int_eq(store_inbox_read_many(conn, reqs, nreqs, limit, &err), 0);
    for (size_t i = 0; i < nreqs; i++) {
        struct store_event *evs = NULL;
        size_t n = 0;
        uint64_t head = 0;
        ck_assert_int_eq(
            store_inbox_read(conn, reqs[i].user, reqs[i].after, limit, &evs, &n, &head, &err), 0);
        ck_assert_uint_eq(reqs[i].n, n);
        ck_assert_uint_eq(reqs[i].head, head);
        for (size_t k = 0; k < n; k++) {
            ck_assert_uint_eq(reqs[i].evs[k].seq, evs[k].seq);
            ck_assert_str_eq(reqs[i].evs[k].data->type, evs[k].data->type);
            ck_assert_str_eq(reqs[i].evs[k].data->json, evs[k].data->json);
        }
        store_events_free(evs, n);
        store_events_free(reqs[i].evs, reqs[i].n);
    }
    /* bob has 4 events: the limit holds, the head says there is more */
    ck_assert_uint_eq(reqs[0].n, 2);
    ck_assert_uint_eq(reqs[0].head, 4);
    ck_assert_uint_eq(reqs[2].n, 0);
    ck_assert_uint_eq(reqs[2].head, 0);
    ck_assert_uint_eq(reqs[5].n, 0);
    /* none asked: nothing read, no error */
    ck_assert_int_eq(store_inbox_read_many(conn, reqs, 0, limit, &err), 0);
}
END_TEST

static uint64_t ack(const char *user, uint64_t seq)
{
    struct lark_err err;
    uint64_t acked = 12345;
    ck_assert_int_eq(store_ack(conn, user, seq, &acked, &err), 0);
    return acked;
}

START_TEST(test_ack)
{
    uint64_t head, acked;

    for (int i = 0; i < 10; i++)
        json_decref(sent("alice", "bob", NULL, "x"));
    state("bob", &head, &acked);
    ck_assert_uint_eq(head, 10);
    ck_assert_uint_eq(acked, 0);
    ck_assert_uint_eq(ack("bob", 5), 5);
    ck_assert_uint_eq(ack("bob", 3), 5); /* never backwards */
    ck_assert_uint_eq(ack("bob", 0), 5);
    ck_assert_uint_eq(ack("bob", 5), 5);
    ck_assert_uint_eq(ack("bob", 100), 10); /* clamped to the head */
    ck_assert_uint_eq(ack("bob", UINT64_MAX), 10);
    state("bob", &head, &acked);
    ck_assert_uint_eq(acked, 10);
    /* alice sent all ten: bob's two acknowledgements reached her as two
     * coalesced "delivered" receipts (5 and 10), not ten */
    ck_assert_uint_eq(head_of("alice"), 12);
    state("alice", &head, &acked);
    ck_assert_uint_eq(acked, 0); /* per user */
    /* A user with no inbox stays at 0. */
    ck_assert_uint_eq(ack("nobody", 7), 0);
    head = acked = 7;
    state("nobody", &head, &acked);
    ck_assert_uint_eq(head, 0);
    ck_assert_uint_eq(acked, 0);
    json_decref(sent("alice", "bob", NULL, "y"));
    ck_assert_uint_eq(ack("bob", 11), 11);
}
END_TEST

/* ---- wake-ups ------------------------------------------------------------- */

START_TEST(test_notes_carry_what_a_read_returns)
{
    /* The hub delivers the data a note carries without reading it back
     * (DESIGN.md "The delivery path, second design"), so for every kind of
     * stored event the note's type and data must be the very bytes a later
     * read returns: messages (with UTF-8 and escapes), group creation,
     * member changes, read and delivered receipts. */
    const char *members[] = {"bob", "carol"};
    struct store_group_in g = {.creator = "alice",
                               .title = "Caf\xc3\xa9 \"\\\n",
                               .members = members,
                               .nmembers = 2,
                               .max_members = 10};
    struct store_send_out out;
    struct lark_err err;
    json_t *conv = NULL;
    uint64_t acked = 0, read_seq = 0;
    int added = 0;
    size_t checked = 0;

    json_decref(sent("alice", "bob", NULL, "caf\xc3\xa9 \xe2\x98\x83 \"q\" \\ \n\t"));
    ck_assert_int_eq(store_group_create(conn, &g, &conv, &err), 0);
    ck_assert_int_eq(
        send_msg(conn, "bob", NULL, jstr(conv, "id"), "g1", "in the group", &out, &err), 0);
    json_decref(out.message);
    ck_assert_int_eq(store_member_add(conn, "alice", jstr(conv, "id"), "dave", 10, &added, &err),
                     0);
    ck_assert_int_eq(store_read(conn, "carol", jstr(conv, "id"), 1, &read_seq, &err), 0);
    ck_assert_int_eq(store_ack(conn, "carol", head_of("carol"), &acked, &err), 0);
    pthread_mutex_lock(&wakes.mu);
    for (size_t i = 0; i < wakes.n; i++) {
        const struct wake_rec *w = &wakes.v[i];
        struct store_event *evs = NULL;
        uint64_t head = 0;
        size_t n = 0;
        ck_assert_ptr_nonnull(w->data); /* one process: every note carries its data */
        ck_assert_int_eq(store_inbox_read(conn, w->user, w->seq - 1, 1, &evs, &n, &head, &err), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(evs[0].seq, w->seq);
        ck_assert_str_eq(evs[0].data->type, w->type);
        ck_assert_str_eq(evs[0].data->json, w->data);
        store_events_free(evs, n);
        checked++;
    }
    pthread_mutex_unlock(&wakes.mu);
    /* 2 + 3 (created) + 3 (bob's message) + 4 (dave added) + 3 (read
     * receipt to the other members) + 1 (delivered receipt to bob) */
    ck_assert_uint_eq(checked, 16);
    json_decref(conv);
}
END_TEST

START_TEST(test_wake_after_commit)
{
    json_decref(sent("alice", "bob", NULL, "1"));
    json_decref(sent("bob", "alice", NULL, "2"));
    json_decref(sent("alice", "carol", NULL, "3"));
    json_decref(sent("dave", "dave", NULL, "4"));
    pthread_mutex_lock(&wakes.mu);
    ck_assert_uint_eq(wakes.n, 7);
    /* in commit order: (alice 1, bob 1), (alice 2, bob 2), (alice 3,
     * carol 1), (dave 1); each pair's order within a send is free. */
    {
        uint64_t alice = 0, bob = 0, carol = 0, dave = 0;
        for (size_t i = 0; i < wakes.n; i++) {
            const struct wake_rec *w = &wakes.v[i];
            uint64_t *last = strcmp(w->user, "alice") == 0   ? &alice
                             : strcmp(w->user, "bob") == 0   ? &bob
                             : strcmp(w->user, "carol") == 0 ? &carol
                                                             : &dave;
            ck_assert_uint_eq(w->seq, *last + 1);
            *last = w->seq;
        }
        ck_assert_uint_eq(alice, 3);
        ck_assert_uint_eq(bob, 2);
        ck_assert_uint_eq(carol, 1);
        ck_assert_uint_eq(dave, 1);
    }
    ck_assert_int_eq(wakes.not_committed, 0);
    ck_assert_int_eq(wakes.no_time, 0);
    pthread_mutex_unlock(&wakes.mu);
}
END_TEST

/* ---- many writers --------------------------------------------------------- */

struct sender {
    struct store *s;
    const char *from, *to;
    const char *cmid_prefix; /* NULL: no client_msg_id */
    int idx, n;
    int fails, first_rc;
    char first_err[LARK_ERR_MSG_MAX];
    uint64_t *seqs;            /* per send */
    char conv[IDS_CONV_LEN];   /* of the last send */
    char (*ids)[IDS_UUID_LEN]; /* per send */
    int duplicates;
};

static void *sender_main(void *arg)
{
    struct sender *t = arg;
    struct store_conn *c = NULL;
    struct lark_err err = {0};

    if (store_conn_open(t->s, &c, &err) != 0) {
        t->fails = t->n;
        t->first_rc = err.code;
        return NULL;
    }
    for (int i = 0; i < t->n; i++) {
        char cmid[64];
        struct store_send_out out;
        int rc;
        if (t->cmid_prefix)
            snprintf(cmid, sizeof(cmid), "%s-%d", t->cmid_prefix, i);
        rc = send_msg(c, t->from, t->to, NULL, t->cmid_prefix ? cmid : NULL, "concurrent", &out,
                      &err);
        if (rc) {
            if (!t->fails++) {
                t->first_rc = rc;
                snprintf(t->first_err, sizeof(t->first_err), "%s", err.msg);
            }
            continue;
        }
        t->seqs[i] = jseq(out.message);
        snprintf(t->conv, sizeof(t->conv), "%s",
                 json_string_value(json_object_get(out.message, "conversation_id")));
        snprintf(t->ids[i], IDS_UUID_LEN, "%s",
                 json_string_value(json_object_get(out.message, "id")));
        t->duplicates += out.duplicate;
        json_decref(out.message);
    }
    store_conn_close(c);
    return NULL;
}

static void run_senders(struct sender *t, int nt)
{
    pthread_t th[16];

    ck_assert_int_le(nt, 16);
    for (int i = 0; i < nt; i++) {
        t[i].s = st;
        t[i].idx = i;
        t[i].seqs = xcalloc((size_t)t[i].n, sizeof(*t[i].seqs));
        t[i].ids = xcalloc((size_t)t[i].n, sizeof(*t[i].ids));
        ck_assert_int_eq(pthread_create(&th[i], NULL, sender_main, &t[i]), 0);
    }
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
}

static void free_senders(struct sender *t, int nt)
{
    for (int i = 0; i < nt; i++) {
        free(t[i].seqs);
        free(t[i].ids);
    }
}

/* Assert the seqs of all senders into conv are exactly 1..n. */
static void conv_gapless(const struct sender *t, int nt, const char *conv, uint64_t n)
{
    unsigned char *seen = xcalloc(n + 1, 1);
    uint64_t total = 0;

    for (int i = 0; i < nt; i++) {
        if (strcmp(t[i].conv, conv) != 0)
            continue;
        for (int j = 0; j < t[i].n; j++) {
            ck_assert_uint_ge(t[i].seqs[j], 1);
            ck_assert_uint_le(t[i].seqs[j], n);
            ck_assert_msg(!seen[t[i].seqs[j]], "seq %llu twice", (unsigned long long)t[i].seqs[j]);
            seen[t[i].seqs[j]] = 1;
            total++;
        }
    }
    ck_assert_uint_eq(total, n);
    free(seen);
}

/* Assert user's inbox is 1..n gapless, with per_conv[k] events of conv[k]
 * in increasing conversation seq; and that wakes named each seq once. */
static void inbox_gapless(const char *user, uint64_t n, const char *const *convs, int nconv,
                          const uint64_t *per_conv)
{
    struct lark_err err;
    uint64_t after = 0, last;
    uint64_t count[4] = {0}, prev[4] = {0};
    unsigned char *woken = xcalloc(n + 1, 1);

    ck_assert_int_le(nconv, 4);
    while (after < n) {
        json_t *evs;
        size_t i;
        json_t *ev;
        ck_assert_int_eq(inbox_json(conn, user, after, 500, &evs, &last, &err), 0);
        ck_assert_uint_gt(json_array_size(evs), 0);
        json_array_foreach (evs, i, ev) {
            json_t *msg = json_object_get(ev, "data");
            const char *conv = jstr(msg, "conversation_id");
            int k = 0;
            ck_assert_uint_eq(jseq(ev), after + 1 + i);
            while (k < nconv && strcmp(convs[k], conv) != 0)
                k++;
            ck_assert_int_lt(k, nconv);
            ck_assert_uint_eq(jseq(msg), prev[k] + 1); /* commit order per conversation */
            prev[k] = jseq(msg);
            count[k]++;
        }
        after = last;
        json_decref(evs);
    }
    ck_assert_uint_eq(after, n);
    ck_assert_uint_eq(head_of(user), n);
    for (int k = 0; k < nconv; k++)
        ck_assert_uint_eq(count[k], per_conv[k]);
    pthread_mutex_lock(&wakes.mu);
    for (size_t i = 0; i < wakes.n; i++) {
        if (strcmp(wakes.v[i].user, user) != 0)
            continue;
        ck_assert_uint_le(wakes.v[i].seq, n);
        ck_assert(!woken[wakes.v[i].seq]);
        woken[wakes.v[i].seq] = 1;
    }
    pthread_mutex_unlock(&wakes.mu);
    for (uint64_t s = 1; s <= n; s++)
        ck_assert_msg(woken[s], "%s: no wake for seq %llu", user, (unsigned long long)s);
    free(woken);
}

START_TEST(test_concurrent_senders_gapless)
{
    /* 8 threads x 200 sends, each thread with its own connection: alice
     * and bob talk in one conversation from four threads, and each of
     * them also writes to carol, so alice's and bob's inbox seqs
     * interleave two conversations. */
    enum { N = 200 };
    struct sender t[8] = {
        {.from = "alice", .to = "bob", .cmid_prefix = "a0", .n = N},
        {.from = "bob", .to = "alice", .cmid_prefix = "b0", .n = N},
        {.from = "alice", .to = "bob", .cmid_prefix = "a1", .n = N},
        {.from = "bob", .to = "alice", .cmid_prefix = NULL, .n = N},
        {.from = "alice", .to = "carol", .cmid_prefix = "a2", .n = N},
        {.from = "carol", .to = "alice", .cmid_prefix = NULL, .n = N},
        {.from = "bob", .to = "carol", .cmid_prefix = "b1", .n = N},
        {.from = "carol", .to = "bob", .cmid_prefix = "c0", .n = N},
    };
    const char *ab, *ac, *bc;

    wakes.verify = 0; /* a reader per wake would slow the writer down */
    run_senders(t, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_msg(t[i].fails == 0, "thread %d: %d failed, first %d %s", i, t[i].fails,
                      t[i].first_rc, t[i].first_err);
        ck_assert_int_eq(t[i].duplicates, 0);
    }
    ab = t[0].conv;
    ac = t[4].conv;
    bc = t[6].conv;
    ck_assert_str_eq(t[1].conv, ab);
    ck_assert_str_eq(t[3].conv, ab);
    ck_assert_str_eq(t[5].conv, ac);
    ck_assert_str_eq(t[7].conv, bc);
    conv_gapless(t, 8, ab, 4 * N);
    conv_gapless(t, 8, ac, 2 * N);
    conv_gapless(t, 8, bc, 2 * N);
    {
        const char *alice_convs[] = {ab, ac};
        const uint64_t alice_n[] = {4 * N, 2 * N};
        const char *bob_convs[] = {ab, bc};
        const uint64_t bob_n[] = {4 * N, 2 * N};
        const char *carol_convs[] = {ac, bc};
        const uint64_t carol_n[] = {2 * N, 2 * N};
        inbox_gapless("alice", 6 * N, alice_convs, 2, alice_n);
        inbox_gapless("bob", 6 * N, bob_convs, 2, bob_n);
        inbox_gapless("carol", 4 * N, carol_convs, 2, carol_n);
    }
    pthread_mutex_lock(&wakes.mu);
    ck_assert_uint_eq(wakes.n, 16 * N);
    ck_assert_int_eq(wakes.no_time, 0);
    pthread_mutex_unlock(&wakes.mu);
    free_senders(t, 8);
}
END_TEST

START_TEST(test_concurrent_duplicates)
{
    /* Four threads retry the same 50 client_msg_ids at once: each id is
     * stored once, every thread gets the same message for it. */
    enum { N = 50 };
    struct sender t[4];
    int fresh = 0;

    memset(t, 0, sizeof(t));
    for (int i = 0; i < 4; i++)
        t[i] = (struct sender){.from = "alice", .to = "bob", .cmid_prefix = "same", .n = N};
    run_senders(t, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(t[i].fails, 0);
        fresh += N - t[i].duplicates;
    }
    ck_assert_int_eq(fresh, N);
    for (int j = 0; j < N; j++)
        for (int i = 1; i < 4; i++) {
            ck_assert_str_eq(t[i].ids[j], t[0].ids[j]);
            ck_assert_uint_eq(t[i].seqs[j], t[0].seqs[j]);
        }
    ck_assert_uint_eq(head_of("alice"), N);
    ck_assert_uint_eq(head_of("bob"), N);
    free_senders(t, 4);
}
END_TEST

struct acker {
    struct store *s;
    uint64_t first; /* acks first, first + stride, ... up to last */
    uint64_t stride, last;
    int fails, backwards; /* failed acks; answers below an earlier one */
};

static void *acker_main(void *arg)
{
    struct acker *a = arg;
    struct store_conn *c = NULL;
    struct lark_err err;
    uint64_t seen = 0;

    if (store_conn_open(a->s, &c, &err) != 0) {
        a->fails++;
        return NULL;
    }
    for (uint64_t seq = a->first; seq <= a->last; seq += a->stride) {
        uint64_t acked = 0;
        if (store_ack(c, "bob", seq, &acked, &err) != 0) {
            a->fails++;
            continue;
        }
        a->backwards += acked < seen || acked < seq;
        seen = acked;
    }
    store_conn_close(c);
    return NULL;
}

/* Reads bob's acked seq over and over until *stop; counts decreases. */
struct observer {
    struct store *s;
    atomic_int stop;
    int reads, backwards, fails;
};

static void *observer_main(void *arg)
{
    struct observer *o = arg;
    struct store_conn *c = NULL;
    struct lark_err err;
    uint64_t seen = 0;

    if (store_conn_open(o->s, &c, &err) != 0) {
        o->fails++;
        return NULL;
    }
    while (!atomic_load(&o->stop)) {
        uint64_t head, acked;
        if (store_inbox_state(c, "bob", &head, &acked, &err) != 0) {
            o->fails++;
            break;
        }
        o->backwards += acked < seen;
        seen = acked;
        o->reads++;
    }
    store_conn_close(c);
    return NULL;
}

/* Samples the WAL's size while senders run; reads all the while, as the
 * hub's readers and the workers do (the reason a WAL never restarts by
 * itself under load). */
struct wal_watch {
    struct store *s;
    atomic_int stop;
    off_t max;
    int reads;
};

static void *wal_watch_main(void *arg)
{
    struct wal_watch *w = arg;
    struct store_conn *c = NULL;
    struct lark_err err;

    if (store_conn_open(w->s, &c, &err) != 0)
        return NULL;
    while (!atomic_load(&w->stop)) {
        uint64_t head, acked;
        off_t size = file_size("lark.db-wal");
        if (size > w->max)
            w->max = size;
        if (store_inbox_state(c, "w-rcpt-0", &head, &acked, &err) == 0)
            w->reads++;
    }
    store_conn_close(c);
    return NULL;
}

START_TEST(test_wal_bounded)
{
    /* sqlite_wal_max_mb: with the writer kept busy and readers reading,
     * the WAL still starts over once it passes the bound - it stays within
     * the bound and one batch, after many times the bound was written */
    char from[8][32], to[8][32];
    struct sender t[8];
    struct wal_watch w = {0};
    pthread_t th;

    close_store();
    cfg.sqlite_wal_max_mb = 4;
    open_store();
    memset(t, 0, sizeof(t));
    w.s = st;
    ck_assert_int_eq(pthread_create(&th, NULL, wal_watch_main, &w), 0);
    for (int i = 0; i < 8; i++) {
        snprintf(from[i], sizeof(from[i]), "w-snd-%d", i);
        snprintf(to[i], sizeof(to[i]), "w-rcpt-%d", i);
        t[i] = (struct sender){.from = from[i], .to = to[i], .n = 400};
    }
    run_senders(t, 8); /* 3,200 sends: about 4 times the bound of WAL */
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(t[i].fails, 0);
    ck_assert_int_gt(w.reads, 0);
    ck_assert_msg(w.max <= 4 << 20, "the WAL reached %lld bytes", (long long)w.max);
    ck_assert_int_gt(w.max, 1 << 20); /* it was written, and grew before starting over */
    free_senders(t, 8);
}
END_TEST

START_TEST(test_concurrent_acks)
{
    /* Six connections ack interleaved, rising seqs at once (1, 7, 13, ...
     * on one, 2, 8, 14, ... on the next): acks pass each other between
     * reading the state and reaching the writer. The acknowledged seq
     * must still only grow, as an observer reading all the while sees,
     * and end at the largest seq asked. */
    enum { T = 6, HEAD = 240 };
    struct acker a[T];
    struct observer o = {.s = st};
    pthread_t th[T], obs;
    uint64_t head, acked;

    for (int i = 0; i < HEAD; i++)
        json_decref(sent("alice", "bob", NULL, "x"));
    ck_assert_int_eq(pthread_create(&obs, NULL, observer_main, &o), 0);
    for (int i = 0; i < T; i++) {
        a[i] = (struct acker){.s = st, .first = 1 + (uint64_t)i, .stride = T, .last = HEAD};
        ck_assert_int_eq(pthread_create(&th[i], NULL, acker_main, &a[i]), 0);
    }
    /* Every thread is joined before any assertion: a failed ck_assert
     * leaves this frame, which the threads still use. */
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    atomic_store(&o.stop, 1);
    pthread_join(obs, NULL);
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(a[i].fails, 0);
        ck_assert_int_eq(a[i].backwards, 0);
    }
    ck_assert_int_eq(o.fails, 0);
    ck_assert_int_gt(o.reads, 0);
    ck_assert_int_eq(o.backwards, 0);
    state("bob", &head, &acked);
    ck_assert_uint_eq(head, HEAD);
    ck_assert_uint_eq(acked, HEAD);
}
END_TEST

/* ---- faults --------------------------------------------------------------- */

/* What a conversation and two inboxes look like, to compare after a fault. */
struct snapshot {
    uint64_t head_a, head_b, newest;
    size_t wakes;
};

static void snap(const char *a, const char *b, const char *conv, struct snapshot *s)
{
    int more;
    json_t *msgs = page(a, conv, UINT64_MAX, 0, 0, 1, &more);
    s->head_a = head_of(a);
    s->head_b = head_of(b);
    s->newest = json_array_size(msgs) ? jseq(json_array_get(msgs, 0)) : 0;
    s->wakes = wake_count();
    json_decref(msgs);
}

static void same_snapshot(const char *a, const char *b, const char *conv,
                          const struct snapshot *before)
{
    struct snapshot now;
    struct lark_err err;
    json_t *evs;
    uint64_t last;

    snap(a, b, conv, &now);
    ck_assert_uint_eq(now.head_a, before->head_a);
    ck_assert_uint_eq(now.head_b, before->head_b);
    ck_assert_uint_eq(now.newest, before->newest);
    ck_assert_uint_eq(now.wakes, before->wakes);
    ck_assert_int_eq(inbox_json(conn, b, before->head_b, 10, &evs, &last, &err), 0);
    ck_assert_uint_eq(json_array_size(evs), 0);
    json_decref(evs);
}

START_TEST(test_fault_disk_full)
{
    json_t *m = sent("alice", "bob", NULL, "1");
    char conv[IDS_CONV_LEN];
    size_t big_len = 8 << 20;
    char *big = xmalloc(big_len + 1);
    struct store_send_in in = {.sender = "alice", .to = "bob", .type = "text", .body = big};
    struct store_send_out out;
    struct lark_err err = {0};
    struct snapshot before;
    struct rlimit old, lim;
    struct sigaction ign, prev;
    off_t biggest;
    int rc;

    snprintf(conv, sizeof(conv), "%s", jstr(m, "conversation_id"));
    json_decref(m);
    json_decref(sent("bob", "alice", NULL, "2"));
    snap("alice", "bob", conv, &before);
    memset(big, 'z', big_len);
    big[big_len] = '\0';
    in.body_len = big_len;

    /* The files may grow by 1 MiB more, the message needs 8: the write
     * fails with EFBIG part-way, as on a full disk. SIGXFSZ is ignored so
     * that the write returns the error instead of killing the process. */
    biggest = file_size("lark.db");
    if (file_size("lark.db-wal") > biggest)
        biggest = file_size("lark.db-wal");
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)biggest + (1 << 20);
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    ck_assert_int_eq(sigaction(SIGXFSZ, &ign, &prev), 0);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc = store_send(conn, &in, &out, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &prev, NULL);

    ck_assert_int_eq(rc, LARK_EUNAVAIL);
    ck_assert_int_eq(err.code, LARK_EUNAVAIL);
    ck_assert_ptr_null(out.message);
    same_snapshot("alice", "bob", conv, &before);

    /* The store recovers once there is room again, and no seq was used up. */
    m = sent("alice", "bob", NULL, "3");
    ck_assert_uint_eq(jseq(m), 3);
    json_decref(m);
    ck_assert_int_eq(store_send(conn, &in, &out, &err), 0);
    ck_assert_uint_eq(jseq(out.message), 4);
    json_decref(out.message);
    close_store();
    open_store();
    ck_assert_uint_eq(head_of("alice"), 4);
    ck_assert_uint_eq(head_of("bob"), 4);
    free(big);
}
END_TEST

START_TEST(test_fault_database_locked)
{
    /* Someone else holds the write lock for longer than the busy timeout:
     * the send fails with 503-class LARK_EUNAVAIL, reads still work (WAL),
     * and nothing was written. */
    json_t *m = sent("alice", "bob", NULL, "1");
    char conv[IDS_CONV_LEN];
    struct store_send_out out;
    struct lark_err err;
    struct snapshot before;
    sqlite3 *other = raw_open();
    int rc;

    snprintf(conv, sizeof(conv), "%s", jstr(m, "conversation_id"));
    json_decref(m);
    snap("alice", "bob", conv, &before);
    raw_exec(other, "BEGIN IMMEDIATE");
    rc = send_msg(conn, "alice", "bob", NULL, NULL, "blocked", &out, &err);
    ck_assert_int_eq(rc, LARK_EUNAVAIL);
    ck_assert_ptr_null(out.message);
    same_snapshot("alice", "bob", conv, &before);
    raw_exec(other, "ROLLBACK");
    sqlite3_close(other);
    m = sent("alice", "bob", NULL, "2");
    ck_assert_uint_eq(jseq(m), 2);
    json_decref(m);
}
END_TEST

START_TEST(test_fault_mid_transaction)
{
    /* A statement fails after the conversation counter, the message and
     * the inbox heads were already updated inside the send's transaction.
     * Meanwhile other threads' sends share the writer's batches: they must
     * all commit, gapless, and the failed sends must leave no trace. */
    enum { N = 60 };
    struct sender t[4];
    json_t *m = sent("alice", "victim", NULL, "before the fault");
    char conv[IDS_CONV_LEN];
    sqlite3 *other = raw_open();
    struct snapshot before;
    size_t mark;

    snprintf(conv, sizeof(conv), "%s", jstr(m, "conversation_id"));
    json_decref(m);
    snap("alice", "victim", conv, &before);
    raw_exec(other, "CREATE TRIGGER fault_inbox BEFORE INSERT ON inbox"
                    " WHEN NEW.user_id = 'victim'"
                    " BEGIN SELECT RAISE(ABORT, 'injected fault'); END");
    memset(t, 0, sizeof(t));
    t[0] = (struct sender){.from = "alice", .to = "victim", .n = N};
    t[1] = (struct sender){.from = "carol", .to = "dave", .n = N};
    t[2] = (struct sender){.from = "dave", .to = "carol", .n = N};
    t[3] = (struct sender){.from = "mallory", .to = "victim", .n = N}; /* a new chat */
    wakes.verify = 0;
    mark = wake_count();
    run_senders(t, 4);
    ck_assert_int_eq(t[0].fails, N);
    ck_assert_int_eq(t[0].first_rc, LARK_EINTERNAL);
    ck_assert_int_eq(t[3].fails, N);
    ck_assert_int_eq(t[1].fails, 0);
    ck_assert_int_eq(t[2].fails, 0);
    ck_assert_str_eq(t[1].conv, t[2].conv);
    conv_gapless(t, 4, t[1].conv, 2 * N);
    ck_assert_uint_eq(head_of("carol"), 2 * N);
    ck_assert_uint_eq(head_of("dave"), 2 * N);
    /* Wakes came for carol's and dave's sends only, none for the failed
     * ones (whose inbox heads had moved inside the undone savepoint). */
    pthread_mutex_lock(&wakes.mu);
    ck_assert_uint_eq(wakes.n - mark, 4 * N);
    for (size_t i = mark; i < wakes.n; i++)
        ck_assert_msg(strcmp(wakes.v[i].user, "carol") == 0 || strcmp(wakes.v[i].user, "dave") == 0,
                      "a wake for %s", wakes.v[i].user);
    pthread_mutex_unlock(&wakes.mu);
    before.wakes = wake_count();
    same_snapshot("alice", "victim", conv, &before);
    ck_assert_uint_eq(head_of("mallory"), 0);

    raw_exec(other, "DROP TRIGGER fault_inbox");
    sqlite3_close(other);
    /* No seq was used up by the failed sends; mallory's chat is new. */
    m = sent("alice", "victim", NULL, "after the fault");
    ck_assert_uint_eq(jseq(m), 2);
    ck_assert_str_eq(jstr(m, "conversation_id"), conv);
    json_decref(m);
    m = sent("mallory", "victim", NULL, "hi");
    ck_assert_uint_eq(jseq(m), 1);
    json_decref(m);
    ck_assert_uint_eq(head_of("victim"), 3);
    free_senders(t, 4);
}
END_TEST

/* ---- media (store.h "media") ------------------------------------------------ */

/* Declare a pending item of user (size bytes, a made-up hash, created at
 * created_at); its id into id. The store's code. */
static int media_new(const char *user, int64_t size, int64_t quota, int64_t created_at,
                     char id[IDS_MEDIA_LEN])
{
    struct store_media m = {0};
    struct lark_err err;
    char sha[65];
    int rc;

    ids_media(created_at, id);
    snprintf(sha, sizeof(sha), "%064llx", (unsigned long long)created_at);
    m.id = xstrdup(id);
    m.uploader = xstrdup(user);
    m.content_type = xstrdup("image/png");
    m.name = xstrdup("p.png");
    m.sha256 = xstrdup(sha);
    m.skey = xstrdup(sha);
    m.upload_hash = xstrdup("");
    m.size = size;
    m.created_at = created_at;
    rc = store_media_create(conn, &m, quota, &err);
    store_media_release(&m);
    return rc;
}

static int send_media(const char *sender, const char *to, const char *client_msg_id, const char *id,
                      struct store_send_out *out, struct lark_err *err)
{
    const char *ids[1] = {id};
    char *json = xasprintf("[{\"id\":\"%s\",\"content_type\":\"image/png\",\"size\":5,"
                           "\"sha256\":\"00\",\"name\":\"p.png\"}]",
                           id);
    struct store_send_in in = {.sender = sender,
                               .to = to,
                               .client_msg_id = client_msg_id,
                               .type = "text",
                               .body = "",
                               .body_len = 0,
                               .media = ids,
                               .nmedia = 1,
                               .media_json = json};
    int rc;

    memset(err, 0, sizeof(*err));
    rc = store_send(conn, &in, out, err);
    free(json);
    return rc;
}

static int readable_by(const char *id, const char *user)
{
    struct store_media m;
    struct lark_err err;
    int r;

    ck_assert_int_eq(store_media_get(conn, id, user, &m, &err), 0);
    r = m.readable;
    store_media_release(&m);
    return r;
}

START_TEST(test_media_lifecycle)
{
    struct store_send_out out;
    struct lark_err err;
    struct store_media m;
    char id[IDS_MEDIA_LEN], other[IDS_MEDIA_LEN];
    int64_t now = 1800000000000LL, used = 0;
    json_t *media;

    ck_assert_int_eq(media_new("alice", 5, 0, now, id), 0);
    ck_assert_int_eq(store_media_get(conn, id, "alice", &m, &err), 0);
    ck_assert_int_eq(m.ready, 0);
    ck_assert_int_eq(m.readable, 1); /* the uploader */
    ck_assert_str_eq(m.uploader, "alice");
    ck_assert_int_eq(m.size, 5);
    store_media_release(&m);
    ck_assert_int_eq(readable_by(id, "bob"), 0);
    ck_assert_int_eq(readable_by(id, ""), 0);

    /* pending: a message may not name it yet */
    ck_assert_int_eq(send_media("alice", "bob", "m1", id, &out, &err), LARK_EMEDIAPENDING);
    ck_assert_int_eq(store_media_ready(conn, id, &err), 0);
    /* someone else's: refused like an unknown one */
    ck_assert_int_eq(send_media("bob", "alice", "m2", id, &out, &err), LARK_EBADMEDIA);
    ids_media(now, other);
    ck_assert_int_eq(send_media("alice", "bob", "m3", other, &out, &err), LARK_EBADMEDIA);
    /* nothing of the refused sends was stored */
    ck_assert_uint_eq(head_of("bob"), 0);

    ck_assert_int_eq(send_media("alice", "bob", "m4", id, &out, &err), 0);
    media = json_object_get(out.message, "media");
    ck_assert_uint_eq(json_array_size(media), 1);
    ck_assert_str_eq(jstr(json_array_get(media, 0), "id"), id);
    ck_assert_str_eq(jstr(out.message, "body"), "");
    json_decref(out.message);
    /* bob shares the conversation now; carol does not */
    ck_assert_int_eq(readable_by(id, "bob"), 1);
    ck_assert_int_eq(readable_by(id, "carol"), 0);
    /* the inbox gives the message with its media */
    {
        json_t *evs = NULL;
        uint64_t last = 0;
        ck_assert_int_eq(inbox_json(conn, "bob", 0, 10, &evs, &last, &err), 0);
        ck_assert_uint_eq(json_array_size(evs), 1);
        media = json_object_get(json_object_get(json_array_get(evs, 0), "data"), "media");
        ck_assert_str_eq(jstr(json_array_get(media, 0), "name"), "p.png");
        json_decref(evs);
    }
    /* a retry is the stored message, media included */
    ck_assert_int_eq(send_media("alice", "bob", "m4", id, &out, &err), 0);
    ck_assert_int_eq(out.duplicate, 1);
    ck_assert_uint_eq(json_array_size(json_object_get(out.message, "media")), 1);
    json_decref(out.message);

    ck_assert_int_eq(store_media_usage(conn, "alice", &used, &err), 0);
    ck_assert_int_eq(used, 5);
    /* the hub delivers a note's data as it is: the very bytes a read gives */
    pthread_mutex_lock(&wakes.mu);
    for (size_t i = 0; i < wakes.n; i++) {
        struct store_event *evs = NULL;
        uint64_t head = 0;
        size_t n = 0;
        if (strcmp(wakes.v[i].user, "bob") != 0)
            continue;
        ck_assert_int_eq(
            store_inbox_read(conn, "bob", wakes.v[i].seq - 1, 1, &evs, &n, &head, &err), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(evs[0].data->json, wakes.v[i].data);
        ck_assert_ptr_nonnull(strstr(wakes.v[i].data, "\"media\":[{\"id\":\"m_"));
        store_events_free(evs, n);
    }
    pthread_mutex_unlock(&wakes.mu);
}
END_TEST

START_TEST(test_media_quota)
{
    struct lark_err err;
    char id[IDS_MEDIA_LEN];

    ck_assert_int_eq(media_new("alice", 600, 1000, 1, id), 0);
    ck_assert_int_eq(media_new("alice", 400, 1000, 2, id), 0); /* exactly full */
    ck_assert_int_eq(media_new("alice", 1, 1000, 3, id), LARK_EQUOTA);
    ck_assert_int_eq(media_new("bob", 1000, 1000, 4, id), 0); /* per user */
    ck_assert_int_eq(media_new("alice", 1, 0, 5, id), 0);     /* 0: no quota */
    (void)err;
}
END_TEST

START_TEST(test_media_expire)
{
    struct store_send_out out;
    struct lark_err err;
    char old1[IDS_MEDIA_LEN], old2[IDS_MEDIA_LEN], fresh[IDS_MEDIA_LEN], named[IDS_MEDIA_LEN];
    json_t *gone = NULL;
    int used = 0;
    struct store_media m;

    ck_assert_int_eq(media_new("alice", 1, 0, 1000, old1), 0);
    ck_assert_int_eq(media_new("alice", 1, 0, 1001, old2), 0);
    ck_assert_int_eq(media_new("alice", 1, 0, 1002, named), 0);
    ck_assert_int_eq(media_new("alice", 1, 0, 9000, fresh), 0);
    ck_assert_int_eq(store_media_ready(conn, named, &err), 0);
    ck_assert_int_eq(send_media("alice", "bob", "x", named, &out, &err), 0);
    json_decref(out.message);

    /* one at a time, oldest first; named and fresh stay */
    ck_assert_int_eq(store_media_expire(conn, 5000, 1, &gone, &err), 0);
    ck_assert_uint_eq(json_array_size(gone), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_array_get(gone, 0), 0)), old1);
    json_decref(gone);
    ck_assert_int_eq(store_media_expire(conn, 5000, 10, &gone, &err), 0);
    ck_assert_uint_eq(json_array_size(gone), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_array_get(gone, 0), 0)), old2);
    json_decref(gone);
    ck_assert_int_eq(store_media_expire(conn, 5000, 10, &gone, &err), 0);
    ck_assert_uint_eq(json_array_size(gone), 0);
    json_decref(gone);
    ck_assert_int_eq(store_media_get(conn, old1, "alice", &m, &err), LARK_ENOTFOUND);
    ck_assert_int_eq(store_media_get(conn, named, "alice", &m, &err), 0);
    store_media_release(&m);
    /* the keys are made-up hashes of the creation times */
    ck_assert_int_eq(store_media_key_used(conn,
                                          "00000000000000000000000000000000000000000000"
                                          "000000000000000003e8",
                                          &used, &err),
                     0);
    ck_assert_int_eq(used, 0);
    ck_assert_int_eq(store_media_key_used(conn,
                                          "00000000000000000000000000000000000000000000"
                                          "00000000000000002328",
                                          &used, &err),
                     0);
    ck_assert_int_eq(used, 1);
    /* gone means gone: ready fails, a send refuses it */
    ck_assert_int_eq(store_media_ready(conn, old1, &err), LARK_ENOTFOUND);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *basic = tcase_create("basic");
    TCase *conc = tcase_create("concurrency");
    TCase *fault = tcase_create("faults");

    tcase_add_checked_fixture(basic, setup, teardown);
    tcase_add_test(basic, test_ping);
    tcase_add_test(basic, test_reopen_keeps_data);
    tcase_add_test(basic, test_ticket_key_and_uses);
    tcase_add_test(basic, test_open_errors);
    tcase_add_test(basic, test_page_size);
    tcase_add_test(basic, test_migration_failure_rolls_back);
    tcase_add_test(basic, test_send_message_fields);
    tcase_add_test(basic, test_send_meta_and_type);
    tcase_add_test(basic, test_direct_either_way);
    tcase_add_test(basic, test_send_by_conversation_id);
    tcase_add_test(basic, test_idempotent_retry);
    tcase_add_test(basic, test_not_member_not_found);
    tcase_add_test(basic, test_history_paging);
    tcase_add_test(basic, test_inbox_read);
    tcase_add_test(basic, test_inbox_read_many);
    tcase_add_test(basic, test_ack);
    tcase_add_test(basic, test_wake_after_commit);
    tcase_add_test(basic, test_notes_carry_what_a_read_returns);
    tcase_add_test(basic, test_wal_bounded);
    tcase_add_test(basic, test_migration_0004_keeps_data);
    tcase_add_test(basic, test_media_lifecycle);
    tcase_add_test(basic, test_media_quota);
    tcase_add_test(basic, test_media_expire);
    tcase_add_checked_fixture(conc, setup, teardown);
    tcase_add_test(conc, test_concurrent_senders_gapless);
    tcase_add_test(conc, test_concurrent_duplicates);
    tcase_add_test(conc, test_concurrent_acks);
    tcase_add_checked_fixture(fault, setup, teardown);
    tcase_add_test(fault, test_fault_disk_full);
    tcase_add_test(fault, test_fault_database_locked);
    tcase_add_test(fault, test_fault_mid_transaction);
    suite_add_tcase(s, basic);
    suite_add_tcase(s, conc);
    suite_add_tcase(s, fault);
    return s;
}

int main(void)
{
    return unit_run(store_suite());
}
