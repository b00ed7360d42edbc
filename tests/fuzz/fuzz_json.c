/*
 * fuzz_json.c - libFuzzer target for request bodies: json_parse_object and
 * the typed field getters on whatever parses.
 *
 * Besides "no crash, no leak, no undefined behaviour", it checks what the
 * API promises about a body:
 *   - a parse error is LARK_EJSON or LARK_EUTF8 and leaves *out NULL;
 *     LARK_EUTF8 only for input that really is not UTF-8, and a body that
 *     parses is valid UTF-8 throughout (RFC 3629, checked independently);
 *   - what parses is an object, and dumping it (plain or ASCII-only) and
 *     parsing that again gives an equal object;
 *   - every getter on every member answers exactly as its JSON type says.
 */
#include "core/err.h"
#include "core/json.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 1 if [p, p+n) is well-formed UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF). */
static int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static void check_getters(json_t *obj, const char *key, json_t *v)
{
    static const uint64_t maxes[] = {0, 1, 200, 1000, INT64_MAX, UINT64_MAX};
    struct lark_err err;
    const char *s;
    size_t len;
    json_t *got;
    int absent = json_is_null(v);

    int rc = json_get_str(obj, key, JSON_FIELD_REQUIRED, &s, &len, &err);
    if (json_is_string(v))
        CHECK(rc == 0 && s == json_string_value(v) && len == json_string_length(v));
    else
        CHECK(rc == (absent ? LARK_EMISSING : LARK_ETYPE) && s == NULL && len == 0);
    rc = json_get_str(obj, key, JSON_FIELD_OPTIONAL, &s, NULL, &err);
    CHECK(rc == (json_is_string(v) || absent ? 0 : LARK_ETYPE));

    for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
        uint64_t out = 12345;
        rc = json_get_uint(obj, key, JSON_FIELD_REQUIRED, maxes[i], &out, &err);
        if (absent) {
            CHECK(rc == LARK_EMISSING && out == 12345);
        } else if (!json_is_integer(v)) {
            CHECK(rc == LARK_ETYPE && out == 12345);
        } else {
            json_int_t n = json_integer_value(v);
            if (n >= 0 && (uint64_t)n <= maxes[i])
                CHECK(rc == 0 && out == (uint64_t)n);
            else
                CHECK(rc == LARK_EFIELD && out == 12345);
        }
    }

    rc = json_get_object(obj, key, JSON_FIELD_REQUIRED, &got, &err);
    CHECK(json_is_object(v) ? rc == 0 && got == v
                            : rc == (absent ? LARK_EMISSING : LARK_ETYPE) && got == NULL);
    rc = json_get_array(obj, key, JSON_FIELD_OPTIONAL, &got, &err);
    CHECK(json_is_array(v) ? rc == 0 && got == v : rc == (absent ? 0 : LARK_ETYPE) && got == NULL);
}

static void check_round_trip(json_t *obj, int ascii)
{
    struct lark_err err;
    size_t len;
    char *text = json_dump(obj, ascii, &len);
    json_t *again = NULL;

    CHECK(len == strlen(text));
    if (ascii)
        for (size_t i = 0; i < len; i++)
            CHECK((unsigned char)text[i] < 0x80);
    CHECK(memchr(text, '\n', len) == NULL); /* compact: one SSE data: line */
    CHECK(json_parse_object(text, len, &again, &err) == 0);
    CHECK(json_equal(obj, again));
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lark_err err = {0};
    json_t *obj = (json_t *)(uintptr_t)1; /* must be reset to NULL */
    const char *key;
    json_t *v;
    int rc = json_parse_object((const char *)data, size, &obj, &err);

    if (rc) {
        CHECK(rc == LARK_EJSON || rc == LARK_EUTF8);
        CHECK(err.code == rc && err.msg[0] != '\0');
        CHECK(obj == NULL);
        if (rc == LARK_EUTF8)
            CHECK(!utf8_valid(data, size));
        return 0;
    }
    CHECK(json_is_object(obj));
    CHECK(utf8_valid(data, size));
    json_object_foreach (obj, key, v)
        check_getters(obj, key, v);
    {
        /* A key the body does not have. */
        const char *s;
        uint64_t u = 7;
        if (!json_object_get(obj, "\x01 absent")) {
            CHECK(json_get_str(obj, "\x01 absent", JSON_FIELD_REQUIRED, &s, NULL, &err) ==
                  LARK_EMISSING);
            CHECK(json_get_uint(obj, "\x01 absent", 0, 10, &u, &err) == 0 && u == 7);
        }
    }
    check_round_trip(obj, 0);
    check_round_trip(obj, 1);
    json_decref(obj);
    return 0;
}
