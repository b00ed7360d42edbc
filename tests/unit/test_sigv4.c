/*
 * test_sigv4.c - core/sigv4: AWS Signature Version 4 against the examples
 * AWS publishes for S3 ("Signature Calculations for the Authorization
 * Header" and "Authenticating Requests: Using Query Parameters"): GET
 * Object with a Range, PUT Object with a '$' in the key, GET Bucket
 * Lifecycle, GET Bucket (List Objects) and a presigned GET URL. Each uses
 * the documented example credentials, bucket and time.
 */
#include "core/sigv4.h"

#include "core/buf.h"
#include "tests/unit/unit.h"

static const struct sigv4_creds aws = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};
#define HOST "examplebucket.s3.amazonaws.com"
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define DATE "20130524T000000Z"
/* 2013-05-24T00:00:00Z */
#define DATE_S 1369353600

/* The canonical request and signature of r at DATE. */
static void sign(const struct sigv4_req *r, struct buf *canonical, char sig[SIGV4_SIG_LEN])
{
    buf_init(canonical, 1 << 16);
    ck_assert_int_eq(sigv4_canonical(r, canonical, NULL), 0);
    sigv4_sign(&aws, DATE, canonical->data, sig);
}

START_TEST(test_date)
{
    char d[SIGV4_DATE_LEN];
    sigv4_date(DATE_S, d);
    ck_assert_str_eq(d, DATE);
    sigv4_date(0, d);
    ck_assert_str_eq(d, "19700101T000000Z");
}
END_TEST

START_TEST(test_get_object)
{
    const struct sigv4_kv h[] = {
        {"Range", "bytes=0-9"}, {"x-amz-content-sha256", EMPTY}, {"x-amz-date", DATE}};
    const struct sigv4_req r = {"GET", HOST, "/test.txt", NULL, 0, h, 3, EMPTY};
    struct buf c;
    char sig[SIGV4_SIG_LEN];

    sign(&r, &c, sig);
    ck_assert_str_eq(c.data, "GET\n/test.txt\n\nhost:" HOST "\nrange:bytes=0-9\n"
                             "x-amz-content-sha256:" EMPTY "\nx-amz-date:" DATE "\n\n"
                             "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY);
    ck_assert_str_eq(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    buf_release(&c);
}
END_TEST

START_TEST(test_put_object)
{
    static const char payload[] =
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    /* headers in another order and case than they sign in: they sort */
    const struct sigv4_kv h[] = {{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                 {"X-Amz-Date", DATE},
                                 {"x-amz-content-sha256", payload}};
    const struct sigv4_req r = {"PUT", HOST, "/test$file.text", NULL, 0, h, 4, payload};
    struct buf c;
    char sig[SIGV4_SIG_LEN];

    sign(&r, &c, sig);
    ck_assert_msg(strstr(c.data, "PUT\n/test%24file.text\n\n") == c.data, "%s", c.data);
    ck_assert_str_eq(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    buf_release(&c);
}
END_TEST

START_TEST(test_get_lifecycle)
{
    const struct sigv4_kv q[] = {{"lifecycle", ""}};
    const struct sigv4_kv h[] = {{"x-amz-date", DATE}, {"x-amz-content-sha256", EMPTY}};
    const struct sigv4_req r = {"GET", HOST, "/", q, 1, h, 2, EMPTY};
    struct buf c;
    char sig[SIGV4_SIG_LEN];

    sign(&r, &c, sig);
    ck_assert_msg(strstr(c.data, "GET\n/\nlifecycle=\n") == c.data, "%s", c.data);
    ck_assert_str_eq(sig, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    buf_release(&c);
}
END_TEST

START_TEST(test_list_objects)
{
    /* parameters sort by name whatever order they come in */
    const struct sigv4_kv q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    const struct sigv4_kv h[] = {{"x-amz-date", DATE}, {"x-amz-content-sha256", EMPTY}};
    const struct sigv4_req r = {"GET", HOST, "/", q, 2, h, 2, EMPTY};
    struct buf c;
    char sig[SIGV4_SIG_LEN];

    sign(&r, &c, sig);
    ck_assert_msg(strstr(c.data, "GET\n/\nmax-keys=2&prefix=J\n") == c.data, "%s", c.data);
    ck_assert_str_eq(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    buf_release(&c);
}
END_TEST

START_TEST(test_presigned_get)
{
    const struct sigv4_req r = {"GET", HOST, "/test.txt", NULL, 0, NULL, 0, NULL};
    char *url = sigv4_presign(&aws, "https://" HOST, &r, DATE_S, 86400);

    ck_assert_str_eq(url, "https://" HOST "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                          "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
                          "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
                          "&X-Amz-SignedHeaders=host&X-Amz-Signature="
                          "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    free(url);
}
END_TEST

START_TEST(test_presign_params_and_headers)
{
    /* response overrides sort among the X-Amz-* parameters, signed
     * headers are listed sorted and lowercase */
    const struct sigv4_kv q[] = {{"response-content-type", "image/png"},
                                 {"response-content-disposition", "inline; filename=\"a b\""}};
    const struct sigv4_kv h[] = {{"Content-Type", "image/png"}, {"Content-Length", "5"}};
    const struct sigv4_req r = {"PUT", "127.0.0.1:9000", "/bucket/m_1", q, 2, h, 2, NULL};
    char *url = sigv4_presign(&aws, "http://127.0.0.1:9000", &r, DATE_S, 900);

    ck_assert_msg(
        strncmp(url, "http://127.0.0.1:9000/bucket/m_1?X-Amz-Algorithm=AWS4-HMAC-SHA256&", 63) == 0,
        "%s", url);
    ck_assert_ptr_nonnull(strstr(url, "&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost"
                                      "&response-content-disposition=inline%3B%20filename%3D%22a"
                                      "%20b%22&response-content-type=image%2Fpng"
                                      "&X-Amz-Signature="));
    free(url);
}
END_TEST

START_TEST(test_encode)
{
    struct buf b;
    buf_init(&b, 1024);
    ck_assert_int_eq(sigv4_encode(&b, "a/b c~-._*é", strlen("a/b c~-._*é"), 1), 0);
    ck_assert_str_eq(b.data, "a/b%20c~-._%2A%C3%A9");
    buf_reset(&b);
    ck_assert_int_eq(sigv4_encode(&b, "a/b", 3, 0), 0);
    ck_assert_str_eq(b.data, "a%2Fb");
    buf_release(&b);
}
END_TEST

START_TEST(test_header_values_trimmed)
{
    const struct sigv4_kv h[] = {{"X-Amz-Meta-Note", "  two   words\tand  more  "}};
    const struct sigv4_req r = {"GET", HOST, "/", NULL, 0, h, 1, EMPTY};
    struct buf c;
    char sig[SIGV4_SIG_LEN];

    sign(&r, &c, sig);
    ck_assert_ptr_nonnull(strstr(c.data, "\nx-amz-meta-note:two words and more\n"));
    buf_release(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("aws");
    tcase_add_test(tc, test_date);
    tcase_add_test(tc, test_get_object);
    tcase_add_test(tc, test_put_object);
    tcase_add_test(tc, test_get_lifecycle);
    tcase_add_test(tc, test_list_objects);
    tcase_add_test(tc, test_presigned_get);
    tcase_add_test(tc, test_presign_params_and_headers);
    tcase_add_test(tc, test_encode);
    tcase_add_test(tc, test_header_values_trimmed);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
