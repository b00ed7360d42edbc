/*
 * test_backoff.c - push/backoff.c: the jitter window doubles from base up
 * to cap without overflowing, every delay lies in [0, window], the draws
 * cover the window (full jitter, not "equal" jitter), and Retry-After is a
 * floor the delay never goes under.
 */
#include "push/backoff.h"

#include "tests/unit/unit.h"

#include <stdint.h>

START_TEST(test_window_doubles_to_cap)
{
    ck_assert_int_eq(backoff_window_ms(1, 1000, 600000), 1000);
    ck_assert_int_eq(backoff_window_ms(2, 1000, 600000), 2000);
    ck_assert_int_eq(backoff_window_ms(3, 1000, 600000), 4000);
    ck_assert_int_eq(backoff_window_ms(10, 1000, 600000), 512000);
    ck_assert_int_eq(backoff_window_ms(11, 1000, 600000), 600000);
    ck_assert_int_eq(backoff_window_ms(1000000, 1000, 600000), 600000);
    /* no overflow near INT64_MAX */
    ck_assert_int_eq(backoff_window_ms(200, INT64_MAX / 2, INT64_MAX), INT64_MAX);
    /* odd inputs stay sane */
    ck_assert_int_eq(backoff_window_ms(0, 1000, 600000), 1000);
    ck_assert_int_eq(backoff_window_ms(5, 0, 100), 16);
    ck_assert_int_eq(backoff_window_ms(5, 1000, 0), 0);
    ck_assert_int_eq(backoff_window_ms(5, 1000, -5), 0);
}
END_TEST

START_TEST(test_delay_within_window_and_covers_it)
{
    struct unit_rng rng;
    unit_rng_init(&rng, "test_backoff");
    for (unsigned attempt = 1; attempt <= 12; attempt++) {
        int64_t w = backoff_window_ms(attempt, 100, 60000);
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 2000; i++) {
            int64_t d = backoff_delay_ms(attempt, 100, 60000, 0, unit_rand(&rng));
            ck_assert_int_ge(d, 0);
            ck_assert_int_le(d, w);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* full jitter: the draws reach both ends of the window */
        ck_assert_int_le(lo, w / 10);
        ck_assert_int_ge(hi, w - w / 10);
    }
    ck_assert_int_eq(backoff_delay_ms(3, 100, 60000, 0, 0), 0);
    ck_assert_int_eq(backoff_delay_ms(3, 100, 60000, 0, 400), 400);
    ck_assert_int_eq(backoff_delay_ms(3, 100, 60000, 0, 401), 0);
    ck_assert_int_eq(backoff_delay_ms(3, 100, 60000, 0, UINT64_MAX), (int64_t)(UINT64_MAX % 401));
}
END_TEST

START_TEST(test_retry_after_is_a_floor)
{
    ck_assert_int_eq(backoff_delay_ms(1, 100, 60000, 5000, 0), 5000);
    ck_assert_int_eq(backoff_delay_ms(1, 100, 60000, 5000, 99), 5000);
    /* beyond the cap too: the provider's word wins */
    ck_assert_int_eq(backoff_delay_ms(1, 100, 1000, 120000, 7), 120000);
    /* a draw above the floor stays */
    ck_assert_int_eq(backoff_delay_ms(8, 1000, 600000, 10, 50000), 50000);
}
END_TEST

static Suite *backoff_suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_window_doubles_to_cap);
    tcase_add_test(tc, test_delay_within_window_and_covers_it);
    tcase_add_test(tc, test_retry_after_is_a_floor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(backoff_suite());
}
