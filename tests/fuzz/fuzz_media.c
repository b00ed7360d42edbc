/*
 * fuzz_media.c - libFuzzer target for what clients send about media:
 * the Content-Type of an upload (media_type_normalize), its name
 * (media_name_valid, then media_disposition, which puts it in a response
 * header), a two-step upload's declaration and a message's media list
 * (media_decl_parse, media_list_parse on whatever parses as a body), and
 * SigV4's URI encoding of any string (sigv4_encode).
 *
 * Beyond memory safety it checks what goes out:
 *   - a normalized type is printable ASCII without ';' runs or blanks at
 *     its ends, at most LIMIT_MEDIA_TYPE_MAX bytes, and normalizing it
 *     again gives it unchanged; a refused one leaves "";
 *   - a valid name yields a Content-Disposition of printable ASCII only
 *     (no CR, LF or control that could split a header), within
 *     MEDIA_DISPOSITION_MAX, "inline" exactly for media_inline types;
 *   - a parsed declaration has 64 lowercase hex digits, a size within the
 *     limit, a type that normalizes to itself and a valid name; a parsed
 *     list has 1-10 distinct valid ids, or none;
 *   - sigv4_encode writes only unreserved characters and %XX escapes, and
 *     decoding them gives the input back.
 */
#include "core/buf.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/media.h"
#include "core/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static void check_type(const char *in)
{
    char out[LIMIT_MEDIA_TYPE_MAX + 1], again[LIMIT_MEDIA_TYPE_MAX + 1];
    size_t n;

    if (media_type_normalize(in, out) != 0) {
        CHECK(out[0] == '\0');
        return;
    }
    n = strlen(out);
    CHECK(n > 0 && n <= LIMIT_MEDIA_TYPE_MAX);
    CHECK(printable(out));
    CHECK(strchr(out, '/') != NULL);
    CHECK(out[0] != ' ' && out[n - 1] != ' ' && out[n - 1] != ';');
    CHECK(media_type_normalize(out, again) == 0 && strcmp(out, again) == 0);
}

/* name: NUL-terminated after len bytes (media_disposition reads a string). */
static void check_name(const char *name, size_t len, const char *type)
{
    struct buf b;

    if (!media_name_valid(name, len))
        return;
    CHECK(len > 0 && len <= LIMIT_MEDIA_NAME_MAX && memchr(name, '\0', len) == NULL);
    buf_init(&b, MEDIA_DISPOSITION_MAX);
    CHECK(media_disposition(&b, type, name) == 0);
    CHECK(printable(b.data));
    CHECK((strncmp(b.data, "inline;", 7) == 0) == (media_inline(type) != 0));
    buf_release(&b);
}

static void check_body(const char *data, size_t size)
{
    const char *ids[LIMIT_MEDIA_PER_MESSAGE];
    struct media_decl d;
    struct lark_err err;
    json_t *body = NULL;
    size_t n = 99;

    if (json_parse_object(data, size, &body, &err) != 0)
        return;
    if (media_decl_parse(body, LIMIT_MEDIA_DEFAULT, &d, &err) == 0) {
        char again[LIMIT_MEDIA_TYPE_MAX + 1];
        CHECK(d.size <= LIMIT_MEDIA_DEFAULT);
        CHECK(strlen(d.sha256) == 64 && media_sha256_valid(d.sha256, 64));
        for (int i = 0; i < 64; i++)
            CHECK(d.sha256[i] < 'A' || d.sha256[i] > 'Z');
        CHECK(media_type_normalize(d.type, again) == 0 && strcmp(again, d.type) == 0);
        CHECK(media_name_valid(d.name, strlen(d.name)));
    } else {
        CHECK(err.code < 0);
    }
    if (media_list_parse(body, ids, &n, &err) == 0) {
        CHECK(n <= LIMIT_MEDIA_PER_MESSAGE);
        for (size_t i = 0; i < n; i++) {
            CHECK(ids_valid_media(ids[i], strlen(ids[i])));
            for (size_t j = 0; j < i; j++)
                CHECK(strcmp(ids[i], ids[j]) != 0);
        }
    } else {
        CHECK(n == 0 || n == 99);
    }
    json_decref(body);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_encode(const char *s, size_t len, int keep_slash)
{
    struct buf b;
    size_t o = 0;

    buf_init(&b, 3 * len + 1);
    CHECK(sigv4_encode(&b, s, len, keep_slash) == 0);
    for (size_t i = 0; i < b.len; i++) {
        char c = b.data[i];
        if (c == '%') {
            CHECK(i + 2 < b.len);
            CHECK(hexval(b.data[i + 1]) >= 0 && hexval(b.data[i + 2]) >= 0);
            CHECK((unsigned char)s[o] ==
                  (unsigned char)(hexval(b.data[i + 1]) * 16 + hexval(b.data[i + 2])));
            i += 2;
        } else {
            CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'));
            CHECK(s[o] == c);
        }
        o++;
    }
    CHECK(o == len);
    buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size copies, so that ASan sees any read past the end */
    char *raw = malloc(size ? size : 1);
    char *str = malloc(size + 1);
    char type[LIMIT_MEDIA_TYPE_MAX + 1];

    memcpy(raw, data, size);
    memcpy(str, data, size);
    str[size] = '\0';
    check_type(str);
    /* the exact bytes: a NUL inside, or anything past them, is never read */
    if (media_name_valid(raw, size))
        CHECK(memchr(raw, '\0', size) == NULL);
    check_name(str, size, "image/png");
    check_name(str, size, "text/html");
    if (media_type_normalize(str, type) == 0)
        check_name(str, strlen(str), type);
    check_body(raw, size);
    check_encode(raw, size, 0);
    check_encode(raw, size, 1);
    free(raw);
    free(str);
    return 0;
}
