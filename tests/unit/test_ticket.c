/*
 * test_ticket.c - core/ticket (signed single-use tickets, API.md
 * "Authentication") and core/b64url, the strict base64url under it.
 *
 * Single use is the store's (store_ticket_use, test_store.c and the
 * integration suite test_harden.mjs); here: what a ticket carries, that
 * nothing but the key makes one, and when it expires.
 */
#include "core/ticket.h"

#include "core/b64url.h"
#include "core/err.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

#define NOW 1700000000000LL

static const unsigned char KEY[TICKET_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char OTHER[TICKET_KEY_LEN] = "fedcba9876543210fedcba9876543210";

START_TEST(test_b64url_roundtrip)
{
    unsigned char in[64], *out = NULL;
    char text[B64URL_LEN(64) + 1];
    size_t n;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(in); len++) {
        ck_assert_uint_eq(b64url_encode(in, len, text), B64URL_LEN(len));
        ck_assert_int_eq(b64url_decode(text, strlen(text), &out, &n), 0);
        ck_assert_uint_eq(n, len);
        ck_assert_int_eq(memcmp(out, in, len), 0);
        ck_assert_int_eq(out[n], 0); /* a spare NUL */
        free(out);
    }
    b64url_encode("\xfb\xff", 2, text);
    ck_assert_str_eq(text, "-_8"); /* the URL-safe alphabet */
}
END_TEST

START_TEST(test_b64url_strict)
{
    const char *bad[] = {"QQ==", "QQ=", "Q", "QUJD\n", "QU JD", "QU+D", "QU/D", "QR", "QUF"};
    static unsigned char untouched[] = "untouched";
    unsigned char *out = untouched;
    size_t n = 7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(b64url_decode(bad[i], strlen(bad[i]), &out, &n) == -1, "%s", bad[i]);
        ck_assert_ptr_null(out);
    }
    /* "QQ" is the canonical "A"; "QR" sets bits past the byte: refused above */
    ck_assert_int_eq(b64url_decode("QQ", 2, &out, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 'A');
    free(out);
}
END_TEST

START_TEST(test_ticket_roundtrip)
{
    char text[TICKET_TEXT_MAX], again[TICKET_TEXT_MAX];
    struct lark_err err = {0};
    struct ticket t, u;
    const char *longest = "a123456789012345678901234567890123456789012345678901234567890123";

    ck_assert_int_eq(ticket_mint(KEY, "alice", NOW + 60000, text), 0);
    ck_assert_int_eq(ticket_open(KEY, text, strlen(text), NOW, &t, &err), 0);
    ck_assert_str_eq(t.user, "alice");
    ck_assert_int_eq(t.expires_at, NOW + 60000);
    ck_assert_uint_eq(strlen(t.nonce), 2 * TICKET_NONCE_LEN);
    /* two tickets for the same user and time differ (their nonces) */
    ck_assert_int_eq(ticket_mint(KEY, "alice", NOW + 60000, again), 0);
    ck_assert_str_ne(text, again);
    ck_assert_int_eq(ticket_open(KEY, again, strlen(again), NOW, &u, &err), 0);
    ck_assert_str_ne(t.nonce, u.nonce);
    /* the longest user id fits */
    ck_assert_int_eq(ticket_mint(KEY, longest, NOW + 1, text), 0);
    ck_assert_uint_lt(strlen(text), TICKET_TEXT_MAX);
    ck_assert_int_eq(ticket_open(KEY, text, strlen(text), NOW, &t, &err), 0);
    ck_assert_str_eq(t.user, longest);
    ck_assert_int_eq(ticket_mint(KEY, "not a user", NOW + 1, text), LARK_EFIELD);
}
END_TEST

START_TEST(test_ticket_refused)
{
    char text[TICKET_TEXT_MAX], copy[TICKET_TEXT_MAX];
    struct lark_err err = {0};
    struct ticket t;
    size_t len;

    ck_assert_int_eq(ticket_mint(KEY, "alice", NOW + 60000, text), 0);
    len = strlen(text);
    /* another key, at the expiry, after it */
    ck_assert_int_eq(ticket_open(OTHER, text, len, NOW, &t, &err), LARK_ETOKEN);
    ck_assert_int_eq(ticket_open(KEY, text, len, NOW + 60000, &t, &err), LARK_ETOKEN);
    ck_assert_msg(strstr(err.msg, "expired") != NULL, "%s", err.msg);
    ck_assert_str_eq(t.user, ""); /* nothing filled on failure */
    /* every character changed, one at a time */
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, text, len + 1);
        copy[i] = copy[i] == 'A' ? 'B' : 'A';
        ck_assert_msg(ticket_open(KEY, copy, len, NOW, &t, &err) == LARK_ETOKEN, "byte %zu", i);
    }
    /* cut short, or with bytes after it */
    ck_assert_int_eq(ticket_open(KEY, text, len - 4, NOW, &t, &err), LARK_ETOKEN);
    memcpy(copy, text, len);
    memcpy(copy + len, "AAAA", 5);
    ck_assert_int_eq(ticket_open(KEY, copy, len + 4, NOW, &t, &err), LARK_ETOKEN);
    ck_assert_int_eq(ticket_open(KEY, "", 0, NOW, &t, &err), LARK_ETOKEN);
    /* a JWT is not a ticket */
    ck_assert_int_eq(ticket_open(KEY, "eyJhbGciOiJIUzI1NiJ9.e30.x", 26, NOW, &t, &err),
                     LARK_ETOKEN);
}
END_TEST

START_TEST(test_ticket_key_hex)
{
    unsigned char key[TICKET_KEY_LEN];
    ck_assert_int_eq(ticket_key_from_hex(
                         "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F", key),
                     0);
    ck_assert_int_eq(key[0], 0);
    ck_assert_int_eq(key[31], 0x1f);
    ck_assert_int_eq(ticket_key_from_hex("0001", key), -1);
    ck_assert_int_eq(ticket_key_from_hex(
                         "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", key),
                     -1);
}
END_TEST

static Suite *ticket_suite(void)
{
    Suite *s = suite_create("ticket");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_b64url_roundtrip);
    tcase_add_test(tc, test_b64url_strict);
    tcase_add_test(tc, test_ticket_roundtrip);
    tcase_add_test(tc, test_ticket_refused);
    tcase_add_test(tc, test_ticket_key_hex);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(ticket_suite());
}
