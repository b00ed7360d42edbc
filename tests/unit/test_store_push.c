/*
 * test_store_push.c - devices and push jobs in the SQLite back end,
 * through core/store.h only (the promises store.h makes):
 *   - devices belong to one user; a token registered again moves; at most
 *     max_per_user; removing someone else's token is "not found";
 *   - a send makes one job per device of each offline member but the
 *     sender, in its transaction; online members get none;
 *   - a burst folds into one job per device while its window is open;
 *     a sealed (claimed) job takes no more messages;
 *   - claims lease jobs: nobody claims them again before the lease ends,
 *     anyone may after (a daemon that died);
 *   - outcomes: done deletes, retry reschedules, dead moves to push_dead
 *     (and re-queue brings it back), a dead token removes its device and
 *     every job for it; counters add up;
 *   - the watch descriptor wakes after a commit that queued jobs.
 */
#include "core/store.h"

#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/pushstat.h"
#include "core/timeutil.h"
#include "tests/unit/unit.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MS 1000
#define APP "com.example.lark"

static char *dir;
static struct config cfg;
static struct store *st;
static struct store_conn *conn;

static void setup(void)
{
    struct lark_err err = {0};
    dir = unit_tmpdir();
    memset(&cfg, 0, sizeof(cfg));
    cfg.db = xasprintf("sqlite:%s/lark.db", dir);
    cfg.migrations = xstrdup(LARK_MIGRATIONS_DIR);
    cfg.sqlite_sync = xstrdup("NORMAL");
    cfg.push_window_ms = WINDOW_MS;
    ck_assert_msg(store_open(&cfg, &st, &err) == 0, "store_open: %s", err.msg);
    ck_assert_msg(store_conn_open(st, &conn, &err) == 0, "conn: %s", err.msg);
}

static void teardown(void)
{
    store_conn_close(conn);
    store_close(st);
    config_release(&cfg);
    unit_rmtree(dir);
    free(dir);
}

static int add_device(const char *user, const char *platform, const char *token, int *created)
{
    struct store_device_in in = {user, platform, token, APP};
    struct lark_err err = {0};
    json_t *d = NULL;
    int c = 0;
    int rc = store_device_add(conn, &in, 3, &d, &c, &err);
    if (rc == 0) {
        ck_assert_str_eq(json_string_value(json_object_get(d, "token")), token);
        ck_assert_str_eq(json_string_value(json_object_get(d, "app")), APP);
    }
    json_decref(d);
    if (created)
        *created = c;
    return rc;
}

static size_t device_count(const char *user)
{
    struct lark_err err = {0};
    json_t *list = NULL;
    size_t n;
    ck_assert_int_eq(store_device_list(conn, user, &list, &err), 0);
    n = json_array_size(list);
    json_decref(list);
    return n;
}

static json_t *send_to(const char *sender, const char *to, const char *body)
{
    struct store_send_in in = {
        .sender = sender, .to = to, .type = "text", .body = body, .body_len = strlen(body)};
    struct store_send_out out = {0};
    struct lark_err err = {0};
    ck_assert_msg(store_send(conn, &in, &out, &err) == 0, "send: %s", err.msg);
    return out.message;
}

static void send_drop(const char *sender, const char *to, const char *body)
{
    json_decref(send_to(sender, to, body));
}

/* Claim at now (lease 10 s); the caller frees. */
static size_t claim_at(int64_t now, struct store_push_job **jobs)
{
    struct lark_err err = {0};
    size_t n = 0;
    ck_assert_int_eq(store_push_claim(conn, now, now + 10000, 100, jobs, &n, &err), 0);
    return n;
}

static void finish(const struct store_push_result *r, size_t n, const struct pushstat *d)
{
    struct lark_err err = {0};
    ck_assert_msg(store_push_finish(conn, r, n, d, time_now_ms(), &err) == 0, "%s", err.msg);
}

START_TEST(test_devices)
{
    struct lark_err err = {0};
    int created = -1;

    ck_assert_int_eq(add_device("ann", "apns", "aa01", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(add_device("ann", "apns", "aa01", &created), 0);
    ck_assert_int_eq(created, 0);
    ck_assert_int_eq(add_device("ann", "fcm", "aa01", &created), 0); /* same text, other platform */
    ck_assert_int_eq(created, 1);
    ck_assert_int_eq(add_device("ann", "fcm", "f2", NULL), 0);
    ck_assert_int_eq(add_device("ann", "fcm", "f3", NULL), LARK_ETOOMANY);
    ck_assert_uint_eq(device_count("ann"), 3);
    /* ben takes over f2 (the phone changed hands) */
    ck_assert_int_eq(add_device("ben", "fcm", "f2", &created), 0);
    ck_assert_int_eq(created, 1);
    ck_assert_uint_eq(device_count("ann"), 2);
    ck_assert_uint_eq(device_count("ben"), 1);
    ck_assert_int_eq(store_device_remove(conn, "ben", "aa01", &err), LARK_ENOTFOUND);
    ck_assert_int_eq(store_device_remove(conn, "ann", "aa01", &err), 0); /* both platforms */
    ck_assert_uint_eq(device_count("ann"), 0);
    ck_assert_int_eq(store_device_remove(conn, "ann", "aa01", &err), LARK_ENOTFOUND);
}
END_TEST

START_TEST(test_jobs_for_offline_members_coalesced)
{
    struct store_push_job *jobs = NULL;
    struct lark_err err = {0};
    const char *online = "carl";
    int64_t t0 = time_now_ms();
    size_t n;

    ck_assert_int_eq(add_device("bob", "apns", "b1", NULL), 0);
    ck_assert_int_eq(add_device("bob", "fcm", "b2", NULL), 0);
    ck_assert_int_eq(add_device("carl", "apns", "c1", NULL), 0);
    ck_assert_int_eq(add_device("alice", "apns", "a1", NULL), 0);
    ck_assert_int_eq(store_presence_touch(conn, &online, 1, t0, &err), 0);
    send_drop("alice", "bob", "one");
    send_drop("alice", "bob", "two");
    send_drop("alice", "carl", "online");
    send_drop("alice", "bob", "three");
    /* nothing due inside the window */
    ck_assert_uint_eq(claim_at(t0, &jobs), 0);
    n = claim_at(time_now_ms() + WINDOW_MS + 1, &jobs);
    ck_assert_uint_eq(n, 2); /* bob's two devices; not carl (online), not alice (sender) */
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(jobs[i].user, "bob");
        ck_assert_uint_eq(jobs[i].count, 3);
        ck_assert_str_eq(jobs[i].body, "three");
        ck_assert_str_eq(jobs[i].sender, "alice");
        ck_assert_str_eq(jobs[i].app, APP);
        ck_assert_ptr_null(jobs[i].conv_title);
        ck_assert_uint_eq(jobs[i].attempts, 1);
        ck_assert_int_eq(jobs[i].user_online, 0);
        ck_assert_int_eq(jobs[i].user_read, 0);
        ck_assert_uint_eq(jobs[i].msg_seq, 3);
        ck_assert_uint_eq(jobs[i].inbox_seq, 3);
    }
    store_push_jobs_free(jobs, n);
    /* sealed jobs take no more messages: a new one opens */
    send_drop("alice", "bob", "four");
    n = claim_at(time_now_ms() + WINDOW_MS + 1, &jobs);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(jobs[0].count, 1);
    ck_assert_str_eq(jobs[0].body, "four");
    store_push_jobs_free(jobs, n);
}
END_TEST

START_TEST(test_lease)
{
    struct store_push_job *jobs = NULL;
    int64_t t;
    size_t n;

    ck_assert_int_eq(add_device("bob", "apns", "b1", NULL), 0);
    send_drop("alice", "bob", "hi");
    t = time_now_ms() + WINDOW_MS + 1;
    ck_assert_uint_eq(n = claim_at(t, &jobs), 1);
    store_push_jobs_free(jobs, n);
    ck_assert_uint_eq(claim_at(t + 9999, &jobs), 0);      /* leased */
    ck_assert_uint_eq(n = claim_at(t + 10000, &jobs), 1); /* the lease ended: a dead daemon */
    ck_assert_uint_eq(jobs[0].attempts, 2);
    store_push_jobs_free(jobs, n);
}
END_TEST

START_TEST(test_outcomes_and_stats)
{
    struct store_push_job *jobs = NULL;
    struct store_push_result r[4];
    struct pushstat d, got;
    struct lark_err err = {0};
    json_t *dead = NULL;
    int64_t t, due = INT64_MAX;
    size_t n, k;

    ck_assert_int_eq(add_device("u1", "apns", "t1", NULL), 0);
    ck_assert_int_eq(add_device("u2", "apns", "t2", NULL), 0);
    ck_assert_int_eq(add_device("u3", "fcm", "t3", NULL), 0);
    ck_assert_int_eq(add_device("u4", "fcm", "t4", NULL), 0);
    send_drop("alice", "u1", "m");
    send_drop("alice", "u2", "m");
    send_drop("alice", "u3", "m");
    send_drop("alice", "u4", "m");
    t = time_now_ms() + WINDOW_MS + 1;
    ck_assert_uint_eq(n = claim_at(t, &jobs), 4);
    for (size_t i = 0; i < n; i++) {
        const char *u = jobs[i].user;
        r[i] = (struct store_push_result){
            .id = jobs[i].id, .platform = jobs[i].platform, .token = jobs[i].token};
        r[i].outcome = strcmp(u, "u1") == 0   ? STORE_PUSH_DONE
                       : strcmp(u, "u2") == 0 ? STORE_PUSH_RETRY
                       : strcmp(u, "u3") == 0 ? STORE_PUSH_DEAD
                                              : STORE_PUSH_TOKEN_GONE;
        r[i].due_at = t + 5000;
        r[i].error = "boom";
    }
    memset(&d, 0, sizeof(d));
    d.v[PUSHSTAT_APNS][PUSHSTAT_SENT] = 1;
    d.v[PUSHSTAT_FCM][PUSHSTAT_DEAD] = 1;
    pushstat_latency(&d, PUSHSTAT_APNS, 30000);
    finish(r, n, &d);
    finish(r, n, NULL); /* again: the jobs are gone or unchanged, nothing breaks */
    store_push_jobs_free(jobs, n);

    ck_assert_int_eq(store_push_next_due(conn, &due, &err), 0);
    ck_assert_int_eq(due, t + 5000); /* u2's retry */
    ck_assert_uint_eq(claim_at(t + 4999, &jobs), 0);
    ck_assert_uint_eq(n = claim_at(t + 5000, &jobs), 1);
    ck_assert_str_eq(jobs[0].user, "u2");
    store_push_jobs_free(jobs, n);
    ck_assert_uint_eq(device_count("u4"), 0); /* dead token: device removed */
    ck_assert_uint_eq(device_count("u3"), 1);

    ck_assert_int_eq(store_push_dead_list(conn, 0, 10, &dead, &err), 0);
    ck_assert_uint_eq(json_array_size(dead), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(dead, 0), "user")), "u3");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(dead, 0), "last_error")),
                     "boom");
    ck_assert_int_eq(store_push_stats(conn, &got, &err), 0);
    ck_assert_uint_eq(got.v[PUSHSTAT_APNS][PUSHSTAT_SENT], 1);
    ck_assert_uint_eq(got.v[PUSHSTAT_FCM][PUSHSTAT_DEAD], 1);
    ck_assert_uint_eq(got.v[PUSHSTAT_APNS][PUSHSTAT_LATENCY_0 + 3], 1); /* 30 ms: le 0.05 */
    ck_assert_uint_eq(got.v[PUSHSTAT_APNS][PUSHSTAT_LATENCY_SUM_US], 30000);
    ck_assert_int_eq(got.queued, 1);
    ck_assert_int_eq(got.dead_letters, 1);

    /* re-queue: due at once, attempts reset */
    ck_assert_int_eq(store_push_requeue(conn, 999999, t, &k, &err), LARK_ENOTFOUND);
    ck_assert_int_eq(
        store_push_requeue(conn, json_integer_value(json_object_get(json_array_get(dead, 0), "id")),
                           t, &k, &err),
        0);
    ck_assert_uint_eq(k, 1);
    json_decref(dead);
    ck_assert_uint_eq(n = claim_at(t, &jobs), 1);
    ck_assert_str_eq(jobs[0].user, "u3");
    ck_assert_uint_eq(jobs[0].attempts, 1);
    store_push_jobs_free(jobs, n);
    ck_assert_int_eq(store_push_dead_list(conn, 0, 10, &dead, &err), 0);
    ck_assert_uint_eq(json_array_size(dead), 0);
    json_decref(dead);
}
END_TEST

START_TEST(test_online_and_read_flags)
{
    struct store_push_job *jobs = NULL;
    struct lark_err err = {0};
    const char *bob = "bob";
    uint64_t acked = 0;
    size_t n;

    ck_assert_int_eq(add_device("bob", "apns", "b1", NULL), 0);
    ck_assert_int_eq(add_device("dan", "apns", "d1", NULL), 0);
    send_drop("alice", "bob", "hi");
    send_drop("alice", "dan", "hi");
    ck_assert_int_eq(store_presence_touch(conn, &bob, 1, time_now_ms(), &err), 0); /* bob is back */
    ck_assert_int_eq(store_ack(conn, "dan", 1, &acked, &err), 0);                  /* dan read it */
    ck_assert_uint_eq(n = claim_at(time_now_ms() + WINDOW_MS + 1, &jobs), 2);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(jobs[i].user, "bob") == 0) {
            ck_assert_int_eq(jobs[i].user_online, 1);
            ck_assert_int_eq(jobs[i].user_read, 0);
        } else {
            ck_assert_int_eq(jobs[i].user_online, 0);
            ck_assert_int_eq(jobs[i].user_read, 1);
        }
    }
    store_push_jobs_free(jobs, n);
}
END_TEST

START_TEST(test_watch_wakes_after_commit)
{
    struct lark_err err = {0};
    struct pollfd p = {.events = POLLIN};
    int changed = 0;

    ck_assert_int_eq(store_push_watch(conn, &p.fd, &err), 0);
    ck_assert_int_ge(p.fd, 0);
    ck_assert_int_eq(add_device("bob", "apns", "b1", NULL), 0);
    ck_assert_int_eq(store_push_watch_drain(conn, &changed, &err), 0); /* device writes: no job */
    ck_assert_int_eq(changed, 0);
    send_drop("alice", "carl", "no device, no job");
    ck_assert_int_eq(store_push_watch_drain(conn, &changed, &err), 0);
    ck_assert_int_eq(changed, 0);
    send_drop("alice", "bob", "a job");
    ck_assert_int_eq(poll(&p, 1, 2000), 1);
    ck_assert_int_eq(store_push_watch_drain(conn, &changed, &err), 0);
    ck_assert_int_eq(changed, 1);
    /* and the job is visible to a reader at that point */
    {
        int64_t due = INT64_MAX;
        ck_assert_int_eq(store_push_next_due(conn, &due, &err), 0);
        ck_assert_int_lt(due, INT64_MAX);
    }
}
END_TEST

static Suite *store_push_suite(void)
{
    Suite *s = suite_create("store_push");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_devices);
    tcase_add_test(tc, test_jobs_for_offline_members_coalesced);
    tcase_add_test(tc, test_lease);
    tcase_add_test(tc, test_outcomes_and_stats);
    tcase_add_test(tc, test_online_and_read_flags);
    tcase_add_test(tc, test_watch_wakes_after_commit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(store_push_suite());
}
