/*
 * test_query.c - core/query: query strings, path segments, cookies and
 * strict numbers. Everything here reads bytes straight from the network:
 * anything ambiguous (bad escape, decoded NUL, repeated key) is an error,
 * never a guess.
 */
#include "core/query.h"

#include "core/err.h"
#include "core/limits.h"
#include "core/mem.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int qparse(const char *qs, struct query *q)
{
    struct lark_err err = {0};
    int rc = query_parse(qs, strlen(qs), q, &err);
    if (rc)
        ck_assert_msg(err.code == rc && err.msg[0], "'%s': rc %d without err", qs, rc);
    return rc;
}

/* Assert qs is refused and q left released. */
static void q_refused(const char *qs)
{
    struct query q;
    ck_assert_msg(qparse(qs, &q) == LARK_EINVAL, "'%s' was accepted", qs);
    ck_assert_ptr_null(q.mem);
    ck_assert_int_eq(q.n, 0);
}

START_TEST(test_parse_basic)
{
    struct query q;

    ck_assert_int_eq(qparse("a=1&b=x%20y&c=p+q&d=%41%4a%4A%2b", &q), 0);
    ck_assert_int_eq(q.n, 4);
    ck_assert_str_eq(q.p[0].key, "a");
    ck_assert_str_eq(query_get(&q, "a"), "1");
    ck_assert_str_eq(query_get(&q, "b"), "x y");
    ck_assert_str_eq(query_get(&q, "c"), "p q");
    ck_assert_str_eq(query_get(&q, "d"), "AJJ+");
    ck_assert_ptr_null(query_get(&q, "e"));
    ck_assert_ptr_null(query_get(&q, "A"));
    query_release(&q);
    ck_assert_ptr_null(q.mem);
    ck_assert_int_eq(q.n, 0);
    query_release(&q); /* releasing twice is harmless */
}
END_TEST

START_TEST(test_parse_keys_decoded)
{
    struct query q;

    ck_assert_int_eq(qparse("a%3Db=c%26d&x+y=1&%C3%A9=utf8", &q), 0);
    ck_assert_str_eq(query_get(&q, "a=b"), "c&d");
    ck_assert_str_eq(query_get(&q, "x y"), "1");
    ck_assert_str_eq(query_get(&q, "\xc3\xa9"), "utf8");
    query_release(&q);
}
END_TEST

START_TEST(test_parse_values_without_eq)
{
    struct query q;

    ck_assert_int_eq(qparse("flag&e=&==x&k==v", &q), 0);
    ck_assert_int_eq(q.n, 4);
    ck_assert_str_eq(query_get(&q, "flag"), "");
    ck_assert_str_eq(query_get(&q, "e"), "");
    ck_assert_str_eq(query_get(&q, ""), "=x");
    ck_assert_str_eq(query_get(&q, "k"), "=v");
    query_release(&q);
}
END_TEST

START_TEST(test_parse_empty_pieces)
{
    struct query q;

    ck_assert_int_eq(qparse("", &q), 0);
    ck_assert_int_eq(q.n, 0);
    query_release(&q);
    ck_assert_int_eq(qparse("&", &q), 0);
    ck_assert_int_eq(q.n, 0);
    query_release(&q);
    ck_assert_int_eq(qparse("&&a=1&&&b=2&&", &q), 0);
    ck_assert_int_eq(q.n, 2);
    ck_assert_str_eq(query_get(&q, "a"), "1");
    ck_assert_str_eq(query_get(&q, "b"), "2");
    query_release(&q);
}
END_TEST

START_TEST(test_parse_bad_escapes)
{
    q_refused("a=%zz");
    q_refused("a=%4");
    q_refused("a=%");
    q_refused("a=1%");
    q_refused("a=%g0");
    q_refused("a=%0g");
    q_refused("a=%%41");
    q_refused("%=1");
    q_refused("%4=1");
    q_refused("ok=1&bad=%x1&z=2");
    /* A bad escape in a later parameter still refuses the whole query. */
    q_refused("a=1&b=2&c=%");
}
END_TEST

START_TEST(test_parse_decoded_nul)
{
    q_refused("a=%00");
    q_refused("a=x%00y");
    q_refused("%00=1");
    q_refused("a%00b=1");
}
END_TEST

START_TEST(test_parse_repeated_key)
{
    q_refused("a=1&a=2");
    q_refused("a=1&a=1");
    q_refused("a&a");
    q_refused("a=1&a");
    q_refused("since=1&limit=5&since=2");
    /* Equal after decoding is the same key. */
    q_refused("a=1&%61=2");
    q_refused("a+b=1&a%20b=2");
    q_refused("=1&=2");
}
END_TEST

START_TEST(test_parse_param_limit)
{
    char qs[LIMIT_QUERY_PARAMS * 8 + 64];
    size_t n = 0;
    struct query q;

    for (int i = 0; i < LIMIT_QUERY_PARAMS; i++)
        n += (size_t)snprintf(qs + n, sizeof(qs) - n, "%sk%d=%d&", i % 3 ? "" : "&", i, i);
    ck_assert_int_eq(qparse(qs, &q), 0);
    ck_assert_int_eq(q.n, LIMIT_QUERY_PARAMS);
    ck_assert_str_eq(query_get(&q, "k31"), "31");
    query_release(&q);
    /* Empty pieces do not count; one more real parameter does. */
    snprintf(qs + n, sizeof(qs) - n, "&&&");
    ck_assert_int_eq(qparse(qs, &q), 0);
    query_release(&q);
    snprintf(qs + n, sizeof(qs) - n, "one=more");
    q_refused(qs);
    snprintf(qs + n, sizeof(qs) - n, "x");
    q_refused(qs);
}
END_TEST

START_TEST(test_parse_length_limit)
{
    char *qs = xmalloc(LIMIT_URI_MAX + 2);
    struct query q;
    struct lark_err err;

    memset(qs, 'v', LIMIT_URI_MAX + 1);
    qs[0] = 'k';
    qs[1] = '=';
    qs[LIMIT_URI_MAX + 1] = '\0';
    ck_assert_int_eq(query_parse(qs, LIMIT_URI_MAX, &q, &err), 0);
    ck_assert_uint_eq(strlen(query_get(&q, "k")), LIMIT_URI_MAX - 2);
    query_release(&q);
    ck_assert_int_eq(query_parse(qs, LIMIT_URI_MAX + 1, &q, &err), LARK_EINVAL);
    ck_assert_ptr_null(q.mem);
    free(qs);
}
END_TEST

START_TEST(test_parse_len_honoured)
{
    const char *qs = "a=1&b=2%";
    struct query q;
    struct lark_err err;

    /* Only len bytes: the bad escape lies beyond them. */
    ck_assert_int_eq(query_parse(qs, 5, &q, &err), 0);
    ck_assert_int_eq(q.n, 2);
    ck_assert_str_eq(query_get(&q, "b"), "");
    query_release(&q);
    ck_assert_int_eq(query_parse(qs, 7, &q, &err), 0);
    ck_assert_str_eq(query_get(&q, "b"), "2");
    query_release(&q);
    ck_assert_int_eq(query_parse(qs, 8, &q, &err), LARK_EINVAL);
}
END_TEST

START_TEST(test_parse_worst_case_memory)
{
    /* 32 one-byte keys without '=' need 2 NULs each: the most decoded
     * bytes per input byte. ASan checks the arena is big enough. */
    char qs[LIMIT_QUERY_PARAMS * 2 + 1];
    struct query q;

    for (int i = 0; i < LIMIT_QUERY_PARAMS; i++) {
        qs[2 * i] = (char)(i < 26 ? 'a' + i : 'A' + i - 26);
        qs[2 * i + 1] = '&';
    }
    qs[sizeof(qs) - 2] = '\0';
    ck_assert_int_eq(qparse(qs, &q), 0);
    ck_assert_int_eq(q.n, LIMIT_QUERY_PARAMS);
    ck_assert_str_eq(query_get(&q, "F"), "");
    query_release(&q);
}
END_TEST

START_TEST(test_url_decode_segment)
{
    char out[64];

    ck_assert_int_eq(url_decode_segment("c_abc", 5, out), 5);
    ck_assert_str_eq(out, "c_abc");
    ck_assert_int_eq(url_decode_segment("a%2Fb%2f", 8, out), 4);
    ck_assert_str_eq(out, "a/b/");
    /* In a path, '+' is a plus. */
    ck_assert_int_eq(url_decode_segment("a+b", 3, out), 3);
    ck_assert_str_eq(out, "a+b");
    ck_assert_int_eq(url_decode_segment("%7e%7E", 6, out), 2);
    ck_assert_str_eq(out, "~~");
    ck_assert_int_eq(url_decode_segment("", 0, out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(url_decode_segment("%zz", 3, out), -1);
    ck_assert_int_eq(url_decode_segment("%4", 2, out), -1);
    ck_assert_int_eq(url_decode_segment("ab%", 3, out), -1);
    ck_assert_int_eq(url_decode_segment("%00", 3, out), -1);
    ck_assert_int_eq(url_decode_segment("a%2", 3, out), -1);
    /* len bounds the input: "%41" cut to 2 bytes is a bad escape. */
    ck_assert_int_eq(url_decode_segment("%41", 2, out), -1);
    ck_assert_int_eq(url_decode_segment("ab%41", 2, out), 2);
    ck_assert_str_eq(out, "ab");
}
END_TEST

/* cookie_find as a C string, or NULL. */
static char *cookie(const char *header, const char *name)
{
    size_t len = 999;
    const char *v = cookie_find(header, name, &len);
    if (!v) {
        ck_assert_uint_eq(len, 999);
        return NULL;
    }
    ck_assert_uint_le(len, strlen(v));
    return xstrndup(v, len);
}

static void cookie_is(const char *header, const char *want)
{
    char *got = cookie(header, "lark_token");
    if (!want) {
        ck_assert_msg(got == NULL, "'%s' gave '%s'", header, got);
        return;
    }
    ck_assert_msg(got != NULL, "'%s' gave nothing", header);
    ck_assert_msg(strcmp(got, want) == 0, "'%s' gave '%s', want '%s'", header, got, want);
    free(got);
}

START_TEST(test_cookie_find)
{
    cookie_is("lark_token=abc", "abc");
    cookie_is("a=1; lark_token=xyz", "xyz");
    cookie_is("a=1;lark_token=xyz;b=2", "xyz");
    cookie_is("a=1;\tlark_token=xyz ; b=2", "xyz");
    cookie_is("lark_token=eyJ.eyJ.sig; other=1", "eyJ.eyJ.sig");
    cookie_is("lark_token=a=b", "a=b");
    cookie_is("lark_token=", "");
    /* The first one wins. */
    cookie_is("lark_token=one; lark_token=two", "one");
}
END_TEST

START_TEST(test_cookie_similar_names)
{
    cookie_is("xlark_token=bad", NULL);
    cookie_is("xlark_token=bad; lark_token=good", "good");
    cookie_is("lark_token_2=bad; lark_token=good", "good");
    cookie_is("lark_tokens=bad", NULL);
    cookie_is("lark_token2=bad", NULL);
    cookie_is("LARK_TOKEN=bad", NULL);
    cookie_is("a=lark_token=bad", NULL);
    cookie_is("lark_token", NULL);
    cookie_is("lark_token; a=1", NULL);
    cookie_is("lark_tok=x", NULL);
    cookie_is("", NULL);
    cookie_is(";;;", NULL);
    cookie_is("a=1; b=2", NULL);
}
END_TEST

START_TEST(test_cookie_quoted)
{
    /* RFC 6265: cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE ) */
    cookie_is("lark_token=\"abc\"", "abc");
    cookie_is("a=1; lark_token=\"abc\"; b=2", "abc");
    cookie_is("lark_token=\"\"", "");
    cookie_is("lark_token=\"", "\"");
    cookie_is("lark_token=\"abc", "\"abc");
    /* Whitespace before the separator is not part of the value, quoted or not. */
    cookie_is("lark_token=\"abc\" ; b=2", "abc");
    cookie_is("lark_token=\"abc\"\t", "abc");
}
END_TEST

static int u64(const char *s, uint64_t max, uint64_t *out)
{
    *out = 4242;
    return parse_u64(s, max, out);
}

START_TEST(test_parse_u64)
{
    uint64_t v;

    ck_assert_int_eq(u64("0", 0, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(u64("42", 100, &v), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(u64("007", 100, &v), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(u64("200", 200, &v), 0);
    ck_assert_uint_eq(v, 200);
    ck_assert_int_eq(u64("201", 200, &v), -1);
    ck_assert_uint_eq(v, 4242);
    ck_assert_int_eq(u64("1", 0, &v), -1);
    ck_assert_int_eq(u64("18446744073709551615", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(u64("18446744073709551616", UINT64_MAX, &v), -1);
    ck_assert_int_eq(u64("18446744073709551620", UINT64_MAX, &v), -1);
    ck_assert_int_eq(u64("99999999999999999999", UINT64_MAX, &v), -1);
    ck_assert_int_eq(u64("000000000000000000000000000001", UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, 1);
    ck_assert_int_eq(u64("9223372036854775807", INT64_MAX, &v), 0);
    ck_assert_uint_eq(v, (uint64_t)INT64_MAX);
    ck_assert_int_eq(u64("9223372036854775808", INT64_MAX, &v), -1);
    ck_assert_uint_eq(v, 4242);
}
END_TEST

START_TEST(test_parse_u64_strict)
{
    static const char *const bad[] = {"",     "-1",  "+1",  " 1", "1 ",  "1a",
                                      "0x10", "1.0", "1e3", "１", "\t1", "1\n"};
    uint64_t v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(u64(bad[i], UINT64_MAX, &v) == -1, "'%s' accepted", bad[i]);
        ck_assert_uint_eq(v, 4242);
    }
    ck_assert_int_eq(parse_u64(NULL, UINT64_MAX, &v), -1);
}
END_TEST

static Suite *query_suite(void)
{
    Suite *s = suite_create("query");
    TCase *p = tcase_create("query_parse");
    TCase *o = tcase_create("other");

    tcase_add_test(p, test_parse_basic);
    tcase_add_test(p, test_parse_keys_decoded);
    tcase_add_test(p, test_parse_values_without_eq);
    tcase_add_test(p, test_parse_empty_pieces);
    tcase_add_test(p, test_parse_bad_escapes);
    tcase_add_test(p, test_parse_decoded_nul);
    tcase_add_test(p, test_parse_repeated_key);
    tcase_add_test(p, test_parse_param_limit);
    tcase_add_test(p, test_parse_length_limit);
    tcase_add_test(p, test_parse_len_honoured);
    tcase_add_test(p, test_parse_worst_case_memory);
    tcase_add_test(o, test_url_decode_segment);
    tcase_add_test(o, test_cookie_find);
    tcase_add_test(o, test_cookie_similar_names);
    tcase_add_test(o, test_cookie_quoted);
    tcase_add_test(o, test_parse_u64);
    tcase_add_test(o, test_parse_u64_strict);
    suite_add_tcase(s, p);
    suite_add_tcase(s, o);
    return s;
}

int main(void)
{
    return unit_run(query_suite());
}
