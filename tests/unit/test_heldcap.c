/*
 * test_heldcap.c - fcgi/heldcap_local.c: the held-connection cap counted in
 * larkd's memory (heldcap.h; API.md "Operations": at most 8 held
 * connections per user, one more refused with 429 too_many_connections and
 * Retry-After).
 */
#include "fcgi/heldcap.h"

#include "core/err.h"
#include "tests/unit/unit.h"

#include <pthread.h>
#include <stdatomic.h>

static int take(struct heldcap *cap, const char *user, struct heldcap_slot **slot, int *retry)
{
    struct lark_err err = {0};
    int rc;

    *retry = -1;
    rc = heldcap_acquire(cap, user, 60, slot, retry, &err);
    if (rc)
        ck_assert_msg(err.msg[0] != '\0', "a refusal without a message");
    return rc;
}

START_TEST(test_cap_then_refuse)
{
    struct heldcap *cap = heldcap_new_local(8);
    struct heldcap_slot *s[9];
    int retry;

    for (int i = 0; i < 8; i++) {
        ck_assert_msg(take(cap, "alice", &s[i], &retry) == 0, "slot %d refused", i);
        ck_assert_ptr_nonnull(s[i]);
        ck_assert_int_eq(retry, -1); /* untouched when granted */
    }
    ck_assert_int_eq(take(cap, "alice", &s[8], &retry), LARK_ETOOMANYCONN);
    ck_assert_ptr_null(s[8]);
    ck_assert_int_eq(retry, HELDCAP_RETRY_AFTER_S);
    /* another user is not affected */
    ck_assert_int_eq(take(cap, "bob", &s[8], &retry), 0);
    heldcap_release(cap, s[8]);
    /* one given back: one more fits, and no more */
    heldcap_release(cap, s[3]);
    ck_assert_int_eq(take(cap, "alice", &s[3], &retry), 0);
    ck_assert_int_eq(take(cap, "alice", &s[8], &retry), LARK_ETOOMANYCONN);
    for (int i = 0; i < 8; i++)
        heldcap_release(cap, s[i]);
    /* all back: the user starts from nothing (its entry is gone) */
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(take(cap, "alice", &s[i], &retry), 0);
    for (int i = 0; i < 8; i++)
        heldcap_release(cap, s[i]);
    heldcap_release(cap, NULL); /* accepted */
    heldcap_free(cap);
}
END_TEST

START_TEST(test_no_cap)
{
    struct heldcap *cap = heldcap_new_local(0);
    struct heldcap_slot *s = (struct heldcap_slot *)&s; /* must be reset */
    int retry;

    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(take(cap, "alice", &s, &retry), 0);
        ck_assert_ptr_null(s); /* nothing to give back */
    }
    heldcap_free(cap);
}
END_TEST

/* Threads take and give back slots of one user at once: the count never
 * passes the cap and ends at zero. held counts slots between a grant and
 * its release (so never more than the cap holds); most is its maximum. */
static atomic_int held, most;

struct hammer {
    struct heldcap *cap;
    int granted, refused;
};

static void note_granted(void)
{
    int now = atomic_fetch_add(&held, 1) + 1, m = atomic_load(&most);
    while (now > m && !atomic_compare_exchange_weak(&most, &m, now))
        ;
}

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    struct heldcap_slot *mine[4];

    for (int round = 0; round < 2000; round++) {
        int n = 0, retry;
        for (int i = 0; i < 4; i++) {
            struct lark_err err = {0};
            if (heldcap_acquire(h->cap, "carol", 60, &mine[n], &retry, &err) == 0) {
                n++;
                h->granted++;
                note_granted();
            } else {
                h->refused++;
            }
        }
        while (n > 0) {
            atomic_fetch_sub(&held, 1);
            heldcap_release(h->cap, mine[--n]);
        }
    }
    return NULL;
}

START_TEST(test_threads_share_one_count)
{
    struct heldcap *cap = heldcap_new_local(8);
    struct hammer h[4];
    pthread_t th[4];
    struct heldcap_slot *s[8], *extra;
    int retry;

    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){cap, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(h[i].granted + h[i].refused, 2000 * 4);
    ck_assert_int_le(atomic_load(&most), 8);
    /* every slot came back: the whole cap is free again */
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(take(cap, "carol", &s[i], &retry), 0);
    ck_assert_int_eq(take(cap, "carol", &extra, &retry), LARK_ETOOMANYCONN);
    for (int i = 0; i < 8; i++)
        heldcap_release(cap, s[i]);
    heldcap_free(cap);
}
END_TEST

static Suite *heldcap_suite(void)
{
    Suite *s = suite_create("heldcap");
    TCase *tc = tcase_create("local");

    tcase_add_test(tc, test_cap_then_refuse);
    tcase_add_test(tc, test_no_cap);
    tcase_add_test(tc, test_threads_share_one_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(heldcap_suite());
}
