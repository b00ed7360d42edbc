/*
 * test_json.c - core/json: body parsing and the typed field getters.
 *
 * API.md: a body that is not one JSON object is invalid_json, bad UTF-8 is
 * invalid_utf8 (told apart), duplicate keys are refused, and each getter
 * names the exact error (missing_field, wrong_type, invalid_field).
 */
#include "core/json.h"

#include "core/err.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parse a C string; the expected code; the object (or NULL) to decref. */
static int parse(const char *text, json_t **out, struct lark_err *err)
{
    memset(err, 0, sizeof(*err));
    return json_parse_object(text, strlen(text), out, err);
}

/* Assert text is refused with code, *out stays NULL and err says why. */
static void refused(const char *text, int code)
{
    struct lark_err err;
    json_t *v = (json_t *)0x1;
    int rc = parse(text, &v, &err);
    ck_assert_msg(rc == code, "'%s': got %d, want %d", text, rc, code);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(err.code, code);
    ck_assert_msg(err.msg[0] != '\0', "'%s': no message", text);
}

START_TEST(test_parse_object)
{
    struct lark_err err;
    json_t *v = NULL;

    ck_assert_int_eq(parse("{\"to\":\"bob\",\"n\":1,\"meta\":{}}", &v, &err), 0);
    ck_assert(json_is_object(v));
    ck_assert_uint_eq(json_object_size(v), 3);
    ck_assert_str_eq(json_string_value(json_object_get(v, "to")), "bob");
    json_decref(v);
    ck_assert_int_eq(parse(" \n{}\t ", &v, &err), 0);
    ck_assert_uint_eq(json_object_size(v), 0);
    json_decref(v);
    /* Non-ASCII in valid UTF-8 (2, 3 and 4-byte sequences) is fine. */
    ck_assert_int_eq(parse("{\"b\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", &v, &err), 0);
    json_decref(v);
}
END_TEST

START_TEST(test_parse_len_honoured)
{
    struct lark_err err;
    const char *text = "{\"a\":1}garbage";
    json_t *v = NULL;

    /* Only len bytes are read: the trailing garbage is outside. */
    ck_assert_int_eq(json_parse_object(text, 7, &v, &err), 0);
    ck_assert_ptr_nonnull(v);
    json_decref(v);
    ck_assert_int_eq(json_parse_object(text, strlen(text), &v, &err), LARK_EJSON);
    ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_parse_invalid_json)
{
    refused("", LARK_EJSON);
    refused("   ", LARK_EJSON);
    refused("{", LARK_EJSON);
    refused("{\"a\":}", LARK_EJSON);
    refused("{\"a\":1,}", LARK_EJSON);
    refused("{'a':1}", LARK_EJSON);
    refused("{\"a\":1} {\"b\":2}", LARK_EJSON);
    refused("{\"a\":1}x", LARK_EJSON);
    refused("{\"a\":01}", LARK_EJSON);
    refused("{\"a\":NaN}", LARK_EJSON);
    refused("{\"a\":\"\\x41\"}", LARK_EJSON);
    refused("{\"a\":\"tab\there\"}", LARK_EJSON);
    /* An integer past int64 is refused, not wrapped or rounded. */
    refused("{\"a\":18446744073709551616}", LARK_EJSON);
}
END_TEST

START_TEST(test_parse_invalid_utf8)
{
    refused("{\"a\":\"\xff\"}", LARK_EUTF8);
    refused("{\"a\":\"\xc3\"}", LARK_EUTF8);             /* truncated sequence */
    refused("{\"a\":\"\xc0\xaf\"}", LARK_EUTF8);         /* overlong '/' */
    refused("{\"a\":\"\xed\xa0\x80\"}", LARK_EUTF8);     /* UTF-16 surrogate */
    refused("{\"a\":\"\xf4\x90\x80\x80\"}", LARK_EUTF8); /* past U+10FFFF */
    refused("{\"\xfe\":1}", LARK_EUTF8);                 /* in a key */
    refused("\xef\xbb\xbf{}", LARK_EJSON);               /* a BOM is valid UTF-8, not JSON */
}
END_TEST

START_TEST(test_parse_duplicate_keys)
{
    refused("{\"to\":\"bob\",\"to\":\"eve\"}", LARK_EJSON);
    refused("{\"a\":1,\"b\":2,\"a\":1}", LARK_EJSON);
    refused("{\"m\":{\"x\":1,\"x\":2}}", LARK_EJSON);
    /* Keys equal after unescaping are the same key. */
    refused("{\"to\":1,\"t\\u006f\":2}", LARK_EJSON);
}
END_TEST

START_TEST(test_parse_not_object)
{
    refused("[]", LARK_EJSON);
    refused("[{\"a\":1}]", LARK_EJSON);
    refused("1", LARK_EJSON);
    refused("\"text\"", LARK_EJSON);
    refused("null", LARK_EJSON);
    refused("true", LARK_EJSON);
}
END_TEST

START_TEST(test_parse_nul)
{
    static const char raw[] = "{\"a\":\"x\0y\"}";
    struct lark_err err;
    json_t *v = NULL;

    refused("{\"a\":\"x\\u0000y\"}", LARK_EJSON);
    refused("{\"a\\u0000\":1}", LARK_EJSON);
    /* A raw NUL byte inside the body. */
    ck_assert_int_eq(json_parse_object(raw, sizeof(raw) - 1, &v, &err), LARK_EJSON);
    ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_parse_deep_nesting)
{
    /* Far deeper than any parser stack should go: refused, not a crash. */
    size_t depth = 100000;
    char *text = malloc(depth * 2 + 16);
    struct lark_err err;
    json_t *v = NULL;
    size_t n = 0;

    text[n++] = '{';
    memcpy(text + n, "\"a\":", 4);
    n += 4;
    for (size_t i = 0; i < depth; i++)
        text[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        text[n++] = ']';
    text[n++] = '}';
    ck_assert_int_eq(json_parse_object(text, n, &v, &err), LARK_EJSON);
    ck_assert_ptr_null(v);
    free(text);
}
END_TEST

/* The object the getter tests read. */
static json_t *fields(void)
{
    struct lark_err err;
    json_t *v = NULL;
    int rc = parse("{\"s\":\"hello\",\"empty\":\"\",\"n\":42,\"zero\":0,\"neg\":-1,"
                   "\"real\":1.0,\"big\":9223372036854775807,\"t\":true,\"nil\":null,"
                   "\"o\":{\"k\":1},\"a\":[1,2],\"snum\":\"7\"}",
                   &v, &err);
    ck_assert_int_eq(rc, 0);
    return v;
}

START_TEST(test_get_str)
{
    json_t *o = fields();
    struct lark_err err = {0};
    const char *s = (const char *)0x1;
    size_t len = 99;

    ck_assert_int_eq(json_get_str(o, "s", JSON_FIELD_REQUIRED, &s, &len, &err), 0);
    ck_assert_str_eq(s, "hello");
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(json_get_str(o, "empty", JSON_FIELD_REQUIRED, &s, &len, &err), 0);
    ck_assert_str_eq(s, "");
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(json_get_str(o, "s", 0, &s, NULL, &err), 0);
    ck_assert_str_eq(s, "hello");

    /* Missing optional: NULL and 0, no error. */
    ck_assert_int_eq(json_get_str(o, "absent", JSON_FIELD_OPTIONAL, &s, &len, &err), 0);
    ck_assert_ptr_null(s);
    ck_assert_uint_eq(len, 0);
    /* null counts as missing. */
    ck_assert_int_eq(json_get_str(o, "nil", JSON_FIELD_OPTIONAL, &s, &len, &err), 0);
    ck_assert_ptr_null(s);

    ck_assert_int_eq(json_get_str(o, "absent", JSON_FIELD_REQUIRED, &s, &len, &err), LARK_EMISSING);
    ck_assert_int_eq(err.code, LARK_EMISSING);
    ck_assert_ptr_nonnull(strstr(err.msg, "'absent'"));
    ck_assert_int_eq(json_get_str(o, "nil", JSON_FIELD_REQUIRED, &s, &len, &err), LARK_EMISSING);

    ck_assert_int_eq(json_get_str(o, "n", 0, &s, &len, &err), LARK_ETYPE);
    ck_assert_ptr_nonnull(strstr(err.msg, "'n'"));
    ck_assert_ptr_null(s);
    ck_assert_int_eq(json_get_str(o, "t", 0, &s, &len, &err), LARK_ETYPE);
    ck_assert_int_eq(json_get_str(o, "o", 0, &s, &len, &err), LARK_ETYPE);
    ck_assert_int_eq(json_get_str(o, "a", JSON_FIELD_REQUIRED, &s, &len, &err), LARK_ETYPE);
    json_decref(o);
}
END_TEST

START_TEST(test_get_uint)
{
    json_t *o = fields();
    struct lark_err err = {0};
    uint64_t v = 12345;

    ck_assert_int_eq(json_get_uint(o, "n", JSON_FIELD_REQUIRED, 100, &v, &err), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(json_get_uint(o, "zero", JSON_FIELD_REQUIRED, 0, &v, &err), 0);
    ck_assert_uint_eq(v, 0);
    /* The bound is inclusive. */
    ck_assert_int_eq(json_get_uint(o, "n", 0, 42, &v, &err), 0);
    ck_assert_uint_eq(v, 42);
    v = 7;
    ck_assert_int_eq(json_get_uint(o, "n", 0, 41, &v, &err), LARK_EFIELD);
    ck_assert_int_eq(err.code, LARK_EFIELD);
    ck_assert_ptr_nonnull(strstr(err.msg, "41"));
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(json_get_uint(o, "big", 0, UINT64_MAX, &v, &err), 0);
    ck_assert_uint_eq(v, (uint64_t)INT64_MAX);
    ck_assert_int_eq(json_get_uint(o, "big", 0, (uint64_t)INT64_MAX - 1, &v, &err), LARK_EFIELD);

    v = 7;
    ck_assert_int_eq(json_get_uint(o, "neg", 0, UINT64_MAX, &v, &err), LARK_EFIELD);
    ck_assert_uint_eq(v, 7);
    /* 1.0 is a real, not an integer. */
    ck_assert_int_eq(json_get_uint(o, "real", 0, 100, &v, &err), LARK_ETYPE);
    ck_assert_int_eq(json_get_uint(o, "snum", 0, 100, &v, &err), LARK_ETYPE);
    ck_assert_int_eq(json_get_uint(o, "t", 0, 100, &v, &err), LARK_ETYPE);
    ck_assert_int_eq(json_get_uint(o, "a", 0, 100, &v, &err), LARK_ETYPE);
    ck_assert_uint_eq(v, 7);

    /* A missing optional field leaves *out as it was (the default). */
    ck_assert_int_eq(json_get_uint(o, "absent", JSON_FIELD_OPTIONAL, 100, &v, &err), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(json_get_uint(o, "nil", JSON_FIELD_OPTIONAL, 100, &v, &err), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(json_get_uint(o, "absent", JSON_FIELD_REQUIRED, 100, &v, &err), LARK_EMISSING);
    ck_assert_ptr_nonnull(strstr(err.msg, "'absent'"));
    json_decref(o);
}
END_TEST

START_TEST(test_get_object_array)
{
    json_t *o = fields();
    struct lark_err err = {0};
    json_t *v = (json_t *)0x1;

    ck_assert_int_eq(json_get_object(o, "o", JSON_FIELD_REQUIRED, &v, &err), 0);
    ck_assert(json_is_object(v));
    ck_assert_ptr_eq(v, json_object_get(o, "o"));
    ck_assert_int_eq(json_get_object(o, "a", 0, &v, &err), LARK_ETYPE);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(json_get_object(o, "s", 0, &v, &err), LARK_ETYPE);
    ck_assert_int_eq(json_get_object(o, "absent", 0, &v, &err), 0);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(json_get_object(o, "nil", JSON_FIELD_REQUIRED, &v, &err), LARK_EMISSING);

    ck_assert_int_eq(json_get_array(o, "a", JSON_FIELD_REQUIRED, &v, &err), 0);
    ck_assert(json_is_array(v));
    ck_assert_uint_eq(json_array_size(v), 2);
    ck_assert_int_eq(json_get_array(o, "o", 0, &v, &err), LARK_ETYPE);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(json_get_array(o, "absent", 0, &v, &err), 0);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(json_get_array(o, "absent", JSON_FIELD_REQUIRED, &v, &err), LARK_EMISSING);
    json_decref(o);
}
END_TEST

START_TEST(test_dump)
{
    json_t *o = json_obj();
    json_t *a = json_arr();
    size_t len = 0;
    char *s;

    json_put(o, "b", json_string("caf\xc3\xa9\n"));
    json_push(a, json_integer(1));
    json_push(a, json_true());
    json_put(o, "a", a);
    s = json_dump(o, 0, &len);
    /* Compact, insertion order, UTF-8 kept, control characters escaped. */
    ck_assert_str_eq(s, "{\"b\":\"caf\xc3\xa9\\n\",\"a\":[1,true]}");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
    s = json_dump(o, 1, NULL);
    ck_assert_str_eq(s, "{\"b\":\"caf\\u00E9\\n\",\"a\":[1,true]}");
    free(s);
    /* Not only objects: any value serializes. */
    s = json_dump(json_object_get(o, "a"), 0, &len);
    ck_assert_str_eq(s, "[1,true]");
    free(s);
    json_decref(o);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *p = tcase_create("parse");
    TCase *g = tcase_create("getters");

    tcase_add_test(p, test_parse_object);
    tcase_add_test(p, test_parse_len_honoured);
    tcase_add_test(p, test_parse_invalid_json);
    tcase_add_test(p, test_parse_invalid_utf8);
    tcase_add_test(p, test_parse_duplicate_keys);
    tcase_add_test(p, test_parse_not_object);
    tcase_add_test(p, test_parse_nul);
    tcase_add_test(p, test_parse_deep_nesting);
    tcase_add_test(g, test_get_str);
    tcase_add_test(g, test_get_uint);
    tcase_add_test(g, test_get_object_array);
    tcase_add_test(g, test_dump);
    suite_add_tcase(s, p);
    suite_add_tcase(s, g);
    return s;
}

int main(void)
{
    return unit_run(json_suite());
}
