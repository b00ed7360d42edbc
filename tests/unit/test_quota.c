/*
 * test_quota.c - fcgi/quota: one budget per class of write (issue 13:
 * group creation was not limited at all; 55 groups of 500 in 10 s wrote
 * 600 MB), each with its rate and burst from the configuration, and the
 * 429's message naming the limit.
 *
 * quota_take reads the monotonic clock itself; the tests take a burst's
 * worth in a row, far quicker than one unit refills at these rates, and
 * never assert a duration.
 */
#include "fcgi/quota.h"

#include "core/config.h"
#include "core/err.h"
#include "tests/unit/unit.h"

#include <string.h>

static void quota_cfg(struct config *cfg)
{
    struct lark_err err = {0};
    ck_assert_int_eq(config_load(cfg, NULL, &err), 0);
    cfg->group_per_min = 6; /* one every 10 s */
    cfg->group_burst = 2;
    cfg->send_rate = 20;
    cfg->send_burst = 3;
}

START_TEST(test_quota_classes)
{
    struct config cfg;
    struct lark_err err = {0};
    struct quota *q;
    int retry = 0;

    quota_cfg(&cfg);
    q = quota_new(&cfg);
    ck_assert_int_eq(quota_take(q, QUOTA_GROUP, "mallory", &retry, &err), 0);
    ck_assert_int_eq(quota_take(q, QUOTA_GROUP, "mallory", &retry, &err), 0);
    ck_assert_int_eq(quota_take(q, QUOTA_GROUP, "mallory", &retry, &err), LARK_ERATE);
    ck_assert_int_ge(retry, 9); /* 6 per minute: the next in about 10 s */
    ck_assert_int_le(retry, 10);
    ck_assert_msg(strstr(err.msg, "6 new groups per minute") != NULL, "%s", err.msg);
    /* the other classes and users keep their own budgets */
    ck_assert_int_eq(quota_take(q, QUOTA_SEND, "mallory", &retry, &err), 0);
    ck_assert_int_eq(quota_take(q, QUOTA_MEMBER, "mallory", &retry, &err), 0);
    ck_assert_int_eq(quota_take(q, QUOTA_GROUP, "alice", &retry, &err), 0);
    /* SIGHUP: a new rate for every later take (0: unlimited) */
    cfg.group_per_min = 0;
    quota_set(q, &cfg);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(quota_take(q, QUOTA_GROUP, "mallory", &retry, &err), 0);
    quota_free(q);
    quota_free(NULL);
    config_release(&cfg);
}
END_TEST

/* Every class is limited by its own keys, per second or per minute. */
START_TEST(test_quota_every_class)
{
    static const struct {
        enum quota_class c;
        const char *says;
    } classes[] = {
        {QUOTA_SEND, "1 messages per second"},
        {QUOTA_TYPING, "1 typing notices per second"},
        {QUOTA_GROUP, "1 new groups per minute"},
        {QUOTA_MEMBER, "1 membership changes per minute"},
        {QUOTA_READ, "1 read receipts per minute"},
        {QUOTA_DEVICE, "1 device registrations per minute"},
        {QUOTA_TICKET, "1 tickets per minute"},
    };
    struct config cfg;
    struct lark_err err = {0};
    struct quota *q;
    int retry = 0;

    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    cfg.send_burst = cfg.typing_burst = cfg.group_burst = cfg.member_burst = 1;
    cfg.read_burst = cfg.device_burst = cfg.ticket_burst = 1;
    /* the slowest rates: a unit takes a second or a minute to come back */
    cfg.send_rate = cfg.typing_rate = cfg.group_per_min = cfg.member_per_min = 1;
    cfg.read_per_min = cfg.device_per_min = cfg.ticket_per_min = 1;
    q = quota_new(&cfg);
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        memset(&err, 0, sizeof(err));
        ck_assert_int_eq(quota_take(q, classes[i].c, "mallory", &retry, &err), 0);
        ck_assert_int_eq(quota_take(q, classes[i].c, "mallory", &retry, &err), LARK_ERATE);
        ck_assert_int_ge(retry, 1);
        ck_assert_msg(strstr(err.msg, classes[i].says) != NULL, "%s", err.msg);
    }
    quota_free(q);
    config_release(&cfg);
}
END_TEST

static Suite *quota_suite(void)
{
    Suite *s = suite_create("quota");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_quota_classes);
    tcase_add_test(tc, test_quota_every_class);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(quota_suite());
}
