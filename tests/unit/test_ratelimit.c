/*
 * test_ratelimit.c - fcgi/ratelimit: per-user token buckets (API.md:
 * "sends per user 20/s with a burst of 60", 429 with Retry-After).
 *
 * Time is simulated: every call passes now_ms, so refill is exact and the
 * tests take no wall-clock time.
 */
#include "fcgi/ratelimit.h"

#include "core/err.h"
#include "tests/unit/unit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static int take(struct ratelimit *rl, const char *user, int64_t now, int *retry)
{
    *retry = -1;
    return ratelimit_take(rl, user, now, retry);
}

START_TEST(test_burst_then_refuse)
{
    struct ratelimit *rl = ratelimit_new(20, 60);
    int retry;

    for (int i = 0; i < 60; i++)
        ck_assert_msg(take(rl, "alice", 1000, &retry) == 0, "send %d refused", i);
    ck_assert_int_eq(retry, -1); /* untouched when allowed */
    ck_assert_int_eq(take(rl, "alice", 1000, &retry), LARK_ERATE);
    ck_assert_int_eq(retry, 1); /* 1/20 s rounds up to a whole second */
    ck_assert_int_eq(take(rl, "alice", 1000, &retry), LARK_ERATE);
    ck_assert_int_ge(retry, 1);
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_retry_after_slow_rate)
{
    struct ratelimit *rl = ratelimit_new(0.5, 1);
    int retry;

    ck_assert_int_eq(take(rl, "u", 0, &retry), 0);
    ck_assert_int_eq(take(rl, "u", 0, &retry), LARK_ERATE);
    ck_assert_int_eq(retry, 2); /* a token every 2 s */
    ck_assert_int_eq(take(rl, "u", 1000, &retry), LARK_ERATE);
    ck_assert_int_eq(retry, 1); /* half a token back: 1 s to go */
    ck_assert_int_eq(take(rl, "u", 1999, &retry), LARK_ERATE);
    ck_assert_int_eq(retry, 1);
    ck_assert_int_eq(take(rl, "u", 2000, &retry), 0);
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_refill)
{
    struct ratelimit *rl = ratelimit_new(20, 60);
    int retry;
    int64_t t = 5000;

    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(take(rl, "alice", t, &retry), 0);
    ck_assert_int_eq(take(rl, "alice", t, &retry), LARK_ERATE);
    /* 20/s: one token every 50 ms. */
    ck_assert_int_eq(take(rl, "alice", t + 49, &retry), LARK_ERATE);
    ck_assert_int_eq(take(rl, "alice", t + 50, &retry), 0);
    ck_assert_int_eq(take(rl, "alice", t + 50, &retry), LARK_ERATE);
    /* A steady 20/s is sustained indefinitely. */
    for (int i = 2; i < 200; i++)
        ck_assert_int_eq(take(rl, "alice", t + 50 * i, &retry), 0);
    /* After a long pause the bucket is full again, but never fuller. */
    t += 3600 * 1000;
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(take(rl, "alice", t, &retry), 0);
    ck_assert_int_eq(take(rl, "alice", t, &retry), LARK_ERATE);
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_clock_backwards)
{
    struct ratelimit *rl = ratelimit_new(10, 2);
    int retry;

    ck_assert_int_eq(take(rl, "u", 10000, &retry), 0);
    ck_assert_int_eq(take(rl, "u", 10000, &retry), 0);
    /* An earlier time refills nothing (and takes nothing away). */
    ck_assert_int_eq(take(rl, "u", 5000, &retry), LARK_ERATE);
    ck_assert_int_ge(retry, 1);
    ck_assert_int_eq(take(rl, "u", 10100, &retry), 0);
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_per_user)
{
    struct ratelimit *rl = ratelimit_new(1, 3);
    int retry;

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(take(rl, "alice", 0, &retry), 0);
    ck_assert_int_eq(take(rl, "alice", 0, &retry), LARK_ERATE);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(take(rl, "bob", 0, &retry), 0);
    ck_assert_int_eq(take(rl, "bob", 0, &retry), LARK_ERATE);
    /* Prefixes and case are different users. */
    ck_assert_int_eq(take(rl, "alic", 0, &retry), 0);
    ck_assert_int_eq(take(rl, "Alice", 0, &retry), 0);
    ck_assert_int_eq(take(rl, "alice2", 0, &retry), 0);
    ck_assert_uint_eq(ratelimit_size(rl), 5);
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_unlimited)
{
    struct ratelimit *rl = ratelimit_new(0, 60);
    int retry;

    for (int i = 0; i < 100000; i++)
        ck_assert_int_eq(take(rl, "alice", 0, &retry), 0);
    /* Nothing is tracked when there is no limit. */
    ck_assert_uint_eq(ratelimit_size(rl), 0);
    ratelimit_free(rl);
    ratelimit_free(NULL);
}
END_TEST

START_TEST(test_burst_below_one)
{
    struct ratelimit *rl = ratelimit_new(1, 0);
    int retry;

    /* A burst under 1 would refuse everything: it is taken as 1. */
    ck_assert_int_eq(take(rl, "u", 0, &retry), 0);
    ck_assert_int_eq(take(rl, "u", 0, &retry), LARK_ERATE);
    ck_assert_int_eq(take(rl, "u", 1000, &retry), 0);
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_sweep_bounds_memory)
{
    /* 200,000 distinct users, one send each, 1 ms apart. A bucket is full
     * again after 1 s, so only about 1,000 users are ever "recent": the
     * map must stay bounded however many users pass through. */
    struct ratelimit *rl = ratelimit_new(10, 10);
    unsigned long most = 0;
    int retry;

    for (int i = 0; i < 200000; i++) {
        char user[32];
        snprintf(user, sizeof(user), "user%d", i);
        if (take(rl, user, i, &retry) != 0) /* a plain check: a hot loop */
            ck_abort_msg("%s was refused its first send", user);
        if (ratelimit_size(rl) > most)
            most = ratelimit_size(rl);
    }
    ck_assert_msg(most <= 8192, "the map grew to %lu buckets", most);
    /* Swept users come back with a full bucket, as if new. */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(take(rl, "user0", 300000, &retry), 0);
    ck_assert_int_eq(take(rl, "user0", 300000, &retry), LARK_ERATE);
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_busy_users_kept)
{
    /* Buckets that are not full carry state and must not be swept, even
     * past the sweep threshold: each of these users stays limited. */
    struct ratelimit *rl = ratelimit_new(1, 2);
    int retry;

    for (int i = 0; i < 6000; i++) {
        char user[32];
        snprintf(user, sizeof(user), "busy%d", i);
        ck_assert_int_eq(take(rl, user, 0, &retry), 0);
        ck_assert_int_eq(take(rl, user, 0, &retry), 0);
    }
    ck_assert_uint_eq(ratelimit_size(rl), 6000);
    for (int i = 0; i < 6000; i += 7) {
        char user[32];
        snprintf(user, sizeof(user), "busy%d", i);
        ck_assert_int_eq(take(rl, user, 0, &retry), LARK_ERATE);
    }
    ratelimit_free(rl);
}
END_TEST

struct hammer {
    struct ratelimit *rl;
    int allowed; /* takes that succeeded */
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    int retry;
    for (int i = 0; i < 2000; i++)
        if (ratelimit_take(h->rl, "shared", 0, &retry) == 0)
            h->allowed++;
    return NULL;
}

START_TEST(test_threads_share_one_bucket)
{
    enum { T = 4 };
    struct ratelimit *rl = ratelimit_new(5, 60);
    struct hammer h[T];
    pthread_t th[T];
    int total = 0;

    for (int i = 0; i < T; i++) {
        h[i] = (struct hammer){rl, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        total += h[i].allowed;
    }
    /* At a frozen clock, exactly the burst gets through, no more. */
    ck_assert_int_eq(total, 60);
    ratelimit_free(rl);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_burst_then_refuse);
    tcase_add_test(tc, test_retry_after_slow_rate);
    tcase_add_test(tc, test_refill);
    tcase_add_test(tc, test_clock_backwards);
    tcase_add_test(tc, test_per_user);
    tcase_add_test(tc, test_unlimited);
    tcase_add_test(tc, test_burst_below_one);
    tcase_add_test(tc, test_sweep_bounds_memory);
    tcase_add_test(tc, test_busy_users_kept);
    tcase_add_test(tc, test_threads_share_one_bucket);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(ratelimit_suite());
}
