/*
 * test_media.c - core/media: what a media item may be called and typed,
 * which types are shown inline (API.md: raster images, audio, video, never
 * SVG or HTML), the Content-Disposition it is served with, and what
 * clients send (a two-step upload's declaration, a message's media list).
 */
#include "core/media.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "tests/unit/unit.h"

static int name_ok(const char *s)
{
    return media_name_valid(s, strlen(s));
}

START_TEST(test_names)
{
    char longest[LIMIT_MEDIA_NAME_MAX + 2];

    ck_assert(name_ok("photo.jpg"));
    ck_assert(name_ok("Report (final) v2.pdf"));
    ck_assert(name_ok("caf\xc3\xa9 \xe2\x98\x83.png")); /* é, a snowman */
    ck_assert(name_ok("\xf0\x9f\x98\x80.gif"));         /* U+1F600 */
    ck_assert(name_ok("...hidden"));
    ck_assert(name_ok("quote\"and'apostrophe%20.txt"));
    ck_assert(!name_ok(""));
    ck_assert(!name_ok("."));
    ck_assert(!name_ok(".."));
    ck_assert(!name_ok("a/b"));
    ck_assert(!name_ok("a\\b"));
    ck_assert(!name_ok("tab\there"));
    ck_assert(!name_ok("nl\n"));
    ck_assert(!name_ok("del\x7f"));
    ck_assert(!name_ok("c1\xc2\x85")); /* U+0085 */
    ck_assert(!name_ok("evil\xe2\x80\xae"
                       "gpj.exe"));             /* U+202E RLO */
    ck_assert(!name_ok("x\xe2\x81\xa6y"));      /* U+2066 */
    ck_assert(!name_ok("x\xe2\x80\x8f"));       /* U+200F */
    ck_assert(!name_ok("bad\xc3"));             /* cut */
    ck_assert(!name_ok("over\xc0\xaf"));        /* overlong '/' */
    ck_assert(!name_ok("sur\xed\xa0\x80"));     /* a surrogate */
    ck_assert(!name_ok("big\xf4\x90\x80\x80")); /* past U+10FFFF */
    ck_assert(!media_name_valid("a\0b", 3));    /* NUL */
    memset(longest, 'x', sizeof(longest));
    ck_assert(media_name_valid(longest, LIMIT_MEDIA_NAME_MAX));
    ck_assert(!media_name_valid(longest, LIMIT_MEDIA_NAME_MAX + 1));
}
END_TEST

static const char *norm(const char *in)
{
    static char out[LIMIT_MEDIA_TYPE_MAX + 1];
    return media_type_normalize(in, out) == 0 ? out : NULL;
}

START_TEST(test_types)
{
    char big[LIMIT_MEDIA_TYPE_MAX + 10];

    ck_assert_str_eq(norm(NULL), "application/octet-stream");
    ck_assert_str_eq(norm("  "), "application/octet-stream");
    ck_assert_str_eq(norm("image/PNG"), "image/png");
    ck_assert_str_eq(norm(" Text/Plain ;Charset=UTF-8"), "text/plain; charset=UTF-8");
    ck_assert_str_eq(norm("text/plain; ; a=\"x y\\\"z\"; b=c"), "text/plain; a=\"x y\\\"z\"; b=c");
    ck_assert_str_eq(
        norm("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
    ck_assert_ptr_null(norm("image"));
    ck_assert_ptr_null(norm("image/"));
    ck_assert_ptr_null(norm("/png"));
    ck_assert_ptr_null(norm("image/png\r\nX-Evil: 1"));
    ck_assert_ptr_null(norm("image/png; a"));
    ck_assert_ptr_null(norm("image/png; a=\"open"));
    ck_assert_ptr_null(norm("image/png; a=\"\x01\""));
    ck_assert_ptr_null(norm("image/p\xc3\xa9"));
    ck_assert_ptr_null(norm("image/png x"));
    memset(big, 'a', sizeof(big));
    memcpy(big, "text/", 5);
    big[sizeof(big) - 1] = '\0';
    ck_assert_ptr_null(norm(big));
}
END_TEST

START_TEST(test_inline)
{
    ck_assert(media_inline("image/png"));
    ck_assert(media_inline("image/jpeg"));
    ck_assert(media_inline("image/gif"));
    ck_assert(media_inline("image/webp"));
    ck_assert(media_inline("audio/ogg"));
    ck_assert(media_inline("video/mp4"));
    ck_assert(media_inline("image/png; x=y"));
    ck_assert(!media_inline("image/svg+xml"));
    ck_assert(!media_inline("image/pngx"));
    ck_assert(!media_inline("text/html"));
    ck_assert(!media_inline("text/plain"));
    ck_assert(!media_inline("application/pdf"));
    ck_assert(!media_inline("application/xhtml+xml"));
    ck_assert(!media_inline("application/octet-stream"));
    ck_assert(media_is_image("image/jpeg"));
    ck_assert(!media_is_image("image/svg+xml"));
    ck_assert(!media_is_image("video/mp4"));
}
END_TEST

static char *disposition(const char *type, const char *name)
{
    struct buf b;
    buf_init(&b, MEDIA_DISPOSITION_MAX);
    ck_assert_int_eq(media_disposition(&b, type, name), 0);
    return buf_detach(&b, NULL);
}

START_TEST(test_disposition)
{
    char *d = disposition("image/png", "a b.png");
    char longest[LIMIT_MEDIA_NAME_MAX + 1];

    ck_assert_str_eq(d, "inline; filename=\"a b.png\"; filename*=UTF-8''a%20b.png");
    free(d);
    d = disposition("text/html", "x\".html");
    ck_assert_str_eq(d, "attachment; filename=\"x_.html\"; filename*=UTF-8''x%22.html");
    free(d);
    d = disposition("application/pdf", "caf\xc3\xa9%\\.pdf");
    ck_assert_str_eq(d,
                     "attachment; filename=\"caf____.pdf\"; filename*=UTF-8''caf%C3%A9%25%5C.pdf");
    free(d);
    /* the worst name fits: every byte %-encoded */
    for (size_t i = 0; i < LIMIT_MEDIA_NAME_MAX; i++)
        longest[i] = i % 2 ? '\xa9' : '\xc3';
    longest[LIMIT_MEDIA_NAME_MAX - 1] = 'x';
    longest[LIMIT_MEDIA_NAME_MAX] = '\0';
    d = disposition("image/svg+xml", longest);
    ck_assert_ptr_nonnull(d);
    ck_assert(strncmp(d, "attachment; ", 12) == 0);
    free(d);
}
END_TEST

static json_t *obj(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(v);
    return v;
}

#define SHA "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"

/* The declaration's strings are borrowed from the body: it lives until
 * the next call (and the last one until the end of the test). */
static json_t *decl_body;

static int decl(const char *text, struct media_decl *d)
{
    struct lark_err err;
    json_decref(decl_body);
    decl_body = obj(text);
    return media_decl_parse(decl_body, 1000, d, &err);
}

START_TEST(test_declaration)
{
    struct media_decl d;

    ck_assert_int_eq(decl("{\"size\": 4, \"sha256\": \"" SHA "\", \"content_type\": "
                          "\"Image/PNG\", \"name\": \"a.png\"}",
                          &d),
                     0);
    ck_assert_uint_eq(d.size, 4);
    ck_assert_str_eq(d.sha256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    ck_assert_str_eq(d.type, "image/png");
    ck_assert_str_eq(d.name, "a.png");
    ck_assert_int_eq(decl("{\"size\": 0, \"sha256\": \"" SHA "\"}", &d), 0);
    ck_assert_str_eq(d.type, "application/octet-stream");
    ck_assert_str_eq(d.name, "file");
    ck_assert_int_eq(decl("{\"sha256\": \"" SHA "\"}", &d), LARK_EMISSING);
    ck_assert_int_eq(decl("{\"size\": 4}", &d), LARK_EMISSING);
    ck_assert_int_eq(decl("{\"size\": \"4\", \"sha256\": \"" SHA "\"}", &d), LARK_ETYPE);
    ck_assert_int_eq(decl("{\"size\": -1, \"sha256\": \"" SHA "\"}", &d), LARK_EFIELD);
    ck_assert_int_eq(decl("{\"size\": 1001, \"sha256\": \"" SHA "\"}", &d), LARK_EMEDIALARGE);
    ck_assert_int_eq(decl("{\"size\": 4, \"sha256\": \"abc\"}", &d), LARK_EFIELD);
    ck_assert_int_eq(decl("{\"size\": 4, \"sha256\": \"" SHA "\", \"name\": \"../x\"}", &d),
                     LARK_EFIELD);
    ck_assert_int_eq(decl("{\"size\": 4, \"sha256\": \"" SHA "\", \"name\": 5}", &d), LARK_ETYPE);
    ck_assert_int_eq(
        decl("{\"size\": 4, \"sha256\": \"" SHA "\", \"content_type\": \"nonsense\"}", &d),
        LARK_EFIELD);
    json_decref(decl_body);
    decl_body = NULL;
}
END_TEST

static int list(const char *text, const char *ids[LIMIT_MEDIA_PER_MESSAGE], size_t *n)
{
    json_t *b = obj(text);
    struct lark_err err;
    int rc = media_list_parse(b, ids, n, &err);
    json_decref(b);
    return rc;
}

#define M1 "m_0123456789abcdef0123456789abcdef"
#define M2 "m_fedcba9876543210fedcba9876543210"

START_TEST(test_media_list)
{
    const char *ids[LIMIT_MEDIA_PER_MESSAGE];
    size_t n = 99;

    ck_assert_int_eq(list("{}", ids, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(list("{\"media\": null}", ids, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(list("{\"media\": [\"" M1 "\", \"" M2 "\"]}", ids, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(list("{\"media\": []}", ids, &n), LARK_EFIELD);
    ck_assert_int_eq(list("{\"media\": \"" M1 "\"}", ids, &n), LARK_ETYPE);
    ck_assert_int_eq(list("{\"media\": [1]}", ids, &n), LARK_ETYPE);
    ck_assert_int_eq(list("{\"media\": [\"" M1 "\", \"" M1 "\"]}", ids, &n), LARK_EFIELD);
    ck_assert_int_eq(list("{\"media\": [\"c_0123456789abcdef0123456789abcdef\"]}", ids, &n),
                     LARK_EBADMEDIA);
    ck_assert_int_eq(list("{\"media\": [\"m_0123456789ABCDEF0123456789abcdef\"]}", ids, &n),
                     LARK_EBADMEDIA);
    ck_assert_int_eq(list("{\"media\": [\"" M1 "\",\"" M1 "\",\"" M1 "\",\"" M1 "\",\"" M1
                          "\",\"" M1 "\",\"" M1 "\",\"" M1 "\",\"" M1 "\",\"" M1 "\",\"" M1 "\"]}",
                          ids, &n),
                     LARK_ETOOMANY);
}
END_TEST

START_TEST(test_ids_and_hashes)
{
    char id[IDS_MEDIA_LEN], hex[MEDIA_SHA256_HEX];

    ids_media(1700000000000LL, id);
    ck_assert_uint_eq(strlen(id), IDS_MEDIA_LEN - 1);
    ck_assert(strncmp(id, "m_", 2) == 0);
    ck_assert(ids_valid_media(id, strlen(id)));
    ck_assert(!ids_valid_conversation(id, strlen(id)));
    media_sha256_of("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert(
        media_hex_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    ck_assert(
        !media_hex_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae"));
    ck_assert(!media_hex_equal(hex, "ba78"));
    ck_assert(!media_hex_equal("", ""));
    ck_assert(media_sha256_valid(SHA, 64));
    ck_assert(!media_sha256_valid(SHA, 63));
    ck_assert(!media_sha256_valid("g" SHA, 64));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("media");
    TCase *tc = tcase_create("media");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_types);
    tcase_add_test(tc, test_inline);
    tcase_add_test(tc, test_disposition);
    tcase_add_test(tc, test_declaration);
    tcase_add_test(tc, test_media_list);
    tcase_add_test(tc, test_ids_and_hashes);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
