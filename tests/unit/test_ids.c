/*
 * test_ids.c - core/ids: UUIDv7 (RFC 9562), conversation ids and user id
 * validation (API.md: 1-64 characters of [A-Za-z0-9_.@-]).
 */
#include "core/ids.h"

#include "core/limits.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The 48-bit millisecond time stamp in the first 12 hex digits. */
static uint64_t hex_prefix(const char *s, int digits)
{
    char tmp[16];
    int o = 0;
    for (int i = 0; o < digits; i++)
        if (s[i] != '-')
            tmp[o++] = s[i];
    tmp[o] = '\0';
    return strtoull(tmp, NULL, 16);
}

START_TEST(test_uuid7_format)
{
    char id[IDS_UUID_LEN];
    int64_t ms = 0x0123456789abLL;

    memset(id, 'X', sizeof(id));
    ids_uuid7(ms, id);
    ck_assert_uint_eq(strlen(id), IDS_UUID_LEN - 1);
    for (int i = 0; i < IDS_UUID_LEN - 1; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ck_assert_int_eq(id[i], '-');
        else
            ck_assert_msg(is_lower_hex(id[i]), "id[%d] = '%c' in %s", i, id[i], id);
    }
    ck_assert_int_eq(id[14], '7');                 /* version 7 */
    ck_assert_ptr_nonnull(strchr("89ab", id[19])); /* variant 10xx */
    ck_assert_int_eq(strncmp(id, "01234567-89ab-7", 15), 0);
    ck_assert_uint_eq(hex_prefix(id, 12), (uint64_t)ms);
}
END_TEST

START_TEST(test_uuid7_version_variant_always)
{
    char id[IDS_UUID_LEN];
    for (int i = 0; i < 2000; i++) {
        ids_uuid7(1700000000000LL + i, id);
        ck_assert_int_eq(id[14], '7');
        ck_assert_ptr_nonnull(strchr("89ab", id[19]));
        ck_assert_uint_eq(hex_prefix(id, 12), 1700000000000ULL + (uint64_t)i);
    }
}
END_TEST

START_TEST(test_uuid7_time_ordered)
{
    char prev[IDS_UUID_LEN], cur[IDS_UUID_LEN];
    int64_t ms = 1700000000000LL;

    /* Ids of later milliseconds sort after earlier ones as strings. */
    ids_uuid7(ms, prev);
    for (int i = 1; i < 1000; i++) {
        ms += 1 + i % 7;
        ids_uuid7(ms, cur);
        ck_assert_msg(strcmp(prev, cur) < 0, "%s !< %s", prev, cur);
        memcpy(prev, cur, sizeof(cur));
    }
    /* The whole 48-bit range orders too. */
    ids_uuid7(0, prev);
    ids_uuid7(0xffffffffffffLL, cur);
    ck_assert_int_eq(strncmp(prev, "00000000-0000-7", 15), 0);
    ck_assert_int_eq(strncmp(cur, "ffffffff-ffff-7", 15), 0);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

START_TEST(test_uuid7_unique_within_ms)
{
    enum { N = 4096 };
    char(*ids)[IDS_UUID_LEN] = malloc(sizeof(*ids) * N);

    for (int i = 0; i < N; i++)
        ids_uuid7(1700000000000LL, ids[i]);
    qsort(ids, N, sizeof(*ids), cmp_str);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
    free(ids);
}
END_TEST

START_TEST(test_conversation_id)
{
    char id[IDS_CONV_LEN], other[IDS_CONV_LEN];

    ids_conversation(0x0123456789abLL, id);
    ck_assert_uint_eq(strlen(id), IDS_CONV_LEN - 1);
    ck_assert_int_eq(strncmp(id, "c_0123456789ab7", 15), 0);
    ck_assert(ids_valid_conversation(id, strlen(id)));
    for (int i = 2; i < IDS_CONV_LEN - 1; i++)
        ck_assert(is_lower_hex(id[i]));
    ids_conversation(0x0123456789abLL, other);
    ck_assert_str_ne(id, other); /* random, not derived */
}
END_TEST

START_TEST(test_valid_conversation)
{
    char id[IDS_CONV_LEN];
    const char *ok = "c_0123456789abcdef0123456789abcdef";

    ck_assert(ids_valid_conversation(ok, strlen(ok)));
    ck_assert(!ids_valid_conversation(ok, strlen(ok) - 1));
    ck_assert(!ids_valid_conversation("c_0123456789abcdef0123456789abcdef0", 35));
    ck_assert(!ids_valid_conversation("", 0));
    ck_assert(!ids_valid_conversation("c_", 2));
    memcpy(id, ok, sizeof(id));
    id[0] = 'C';
    ck_assert(!ids_valid_conversation(id, 34));
    memcpy(id, ok, sizeof(id));
    id[1] = '-';
    ck_assert(!ids_valid_conversation(id, 34));
    memcpy(id, ok, sizeof(id));
    id[20] = 'A'; /* upper-case hex is not what the server makes */
    ck_assert(!ids_valid_conversation(id, 34));
    id[20] = 'g';
    ck_assert(!ids_valid_conversation(id, 34));
    id[20] = '\0';
    ck_assert(!ids_valid_conversation(id, 34));
    id[20] = '/';
    ck_assert(!ids_valid_conversation(id, 34));
}
END_TEST

START_TEST(test_valid_user_bounds)
{
    char id[LIMIT_USER_ID_MAX + 2];

    memset(id, 'a', sizeof(id));
    ck_assert(!ids_valid_user(id, 0));
    ck_assert(ids_valid_user(id, 1));
    ck_assert(ids_valid_user(id, LIMIT_USER_ID_MAX));
    ck_assert(!ids_valid_user(id, LIMIT_USER_ID_MAX + 1));
    /* Only len bytes are looked at. */
    ck_assert(ids_valid_user("bob/evil", 3));
    ck_assert(!ids_valid_user("bob/evil", 4));
}
END_TEST

START_TEST(test_valid_user_charset)
{
    const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-";
    char one[2] = {0, 0};

    for (int c = 1; c < 256; c++) {
        int want = strchr(allowed, c) != NULL;
        one[0] = (char)c;
        ck_assert_msg(ids_valid_user(one, 1) == want, "byte 0x%02x", c);
    }
    ck_assert(!ids_valid_user("\0", 1));
    ck_assert(!ids_valid_user("a\0b", 3));
    ck_assert(ids_valid_user("alice.smith@example-1_x", 23));
    ck_assert(!ids_valid_user("alice smith", 11));
    ck_assert(!ids_valid_user("caf\xc3\xa9", 5));
}
END_TEST

START_TEST(test_random)
{
    unsigned char a[32], b[32], z[32] = {0};

    ids_random(a, sizeof(a));
    ids_random(b, sizeof(b));
    ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
    ck_assert_int_ne(memcmp(a, z, sizeof(a)), 0);
    ids_random(a, 0);
}
END_TEST

static Suite *ids_suite(void)
{
    Suite *s = suite_create("ids");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_uuid7_format);
    tcase_add_test(tc, test_uuid7_version_variant_always);
    tcase_add_test(tc, test_uuid7_time_ordered);
    tcase_add_test(tc, test_uuid7_unique_within_ms);
    tcase_add_test(tc, test_conversation_id);
    tcase_add_test(tc, test_valid_conversation);
    tcase_add_test(tc, test_valid_user_bounds);
    tcase_add_test(tc, test_valid_user_charset);
    tcase_add_test(tc, test_random);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(ids_suite());
}
