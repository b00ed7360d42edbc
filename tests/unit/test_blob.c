/*
 * test_blob.c - core/spool and core/blob: an upload spooled and hashed as
 * it arrives; the media directory (content-addressed, rename into place,
 * removal that puts the bytes back when a media row names them again,
 * the sweep of what dead uploads left); and what the S3 back end hands
 * out without the network (presigned PUT and GET URLs).
 */
#include "core/blob.h"

#include "core/config.h"
#include "core/err.h"
#include "core/media.h"
#include "core/mem.h"
#include "core/spool.h"
#include "tests/unit/unit.h"

#include <sys/stat.h>
#include <sys/time.h>

static char *dir;
static struct config cfg;
static struct blob *b;

static void setup(void)
{
    struct lark_err err = {0};

    dir = unit_tmpdir();
    memset(&cfg, 0, sizeof(cfg));
    cfg.media_storage = xstrdup("local");
    cfg.media_dir = unit_path(dir, "media");
    cfg.media_s3_endpoint = xstrdup("http://127.0.0.1:9000");
    cfg.media_s3_bucket = xstrdup("lark");
    cfg.media_s3_region = xstrdup("us-east-1");
    cfg.media_s3_access_key = xstrdup("AKIDEXAMPLE");
    cfg.media_s3_secret_key = xstrdup("secret");
    cfg.media_s3_timeout = 5;
    cfg.media_url_ttl = 300;
    ck_assert_msg(blob_open(&cfg, &b, &err) == 0, "%s", err.msg);
}

static void teardown(void)
{
    blob_close(b);
    b = NULL;
    free(cfg.media_storage);
    free(cfg.media_dir);
    free(cfg.media_s3_endpoint);
    free(cfg.media_s3_bucket);
    free(cfg.media_s3_region);
    free(cfg.media_s3_access_key);
    free(cfg.media_s3_secret_key);
    unit_rmtree(dir);
    free(dir);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static unsigned count_files(const char *d)
{
    char *cmd = xasprintf("find '%s' -type f | wc -l", d);
    FILE *p = popen(cmd, "r");
    unsigned n = 0;
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%u", &n), 1);
    pclose(p);
    free(cmd);
    return n;
}

/* Spool text as an upload would: in pieces; its hash into sha. */
static void spool_text(struct spool *sp, const char *text, char sha[MEDIA_SHA256_HEX])
{
    struct lark_err err;
    size_t n = strlen(text);

    ck_assert_int_eq(spool_open(sp, blob_spool_dir(b), &err), 0);
    for (size_t i = 0; i < n; i += 3)
        ck_assert_int_eq(spool_write(sp, text + i, n - i < 3 ? n - i : 3, &err), 0);
    ck_assert_int_eq(spool_finish(sp, sha, &err), 0);
}

START_TEST(test_spool)
{
    struct spool sp = SPOOL_INIT;
    char sha[MEDIA_SHA256_HEX], *path;

    spool_text(&sp, "hello, world", sha);
    ck_assert_str_eq(sha, "09ca7e4eaa6e8ae9c7d261167129184883644d07dfba7cbfbc4c8a2e08360d5b");
    ck_assert_uint_eq(sp.size, 12);
    ck_assert(strncmp(sp.path, blob_spool_dir(b), strlen(blob_spool_dir(b))) == 0);
    path = xstrdup(sp.path);
    ck_assert(exists(path));
    spool_release(&sp);
    ck_assert(!exists(path)); /* never committed: gone */
    free(path);
    spool_release(&sp); /* twice is fine */
    /* an empty upload */
    spool_text(&sp, "", sha);
    ck_assert_str_eq(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    spool_release(&sp);
}
END_TEST

START_TEST(test_local_commit_serve)
{
    struct spool sp = SPOOL_INIT;
    struct blob_serve srv = {0};
    struct lark_err err;
    char sha[MEDIA_SHA256_HEX], *want;

    ck_assert_str_eq(blob_backend(b), "local");
    ck_assert_int_eq(blob_direct(b), 0);
    spool_text(&sp, "a picture", sha);
    ck_assert_str_eq(blob_key(b, "m_x", sha), sha); /* content-addressed */
    ck_assert_int_eq(blob_commit(b, sp.path, sha, sp.size, sha, "image/png", &err), 0);
    ck_assert(!exists(sp.path)); /* renamed, not copied */
    spool_release(&sp);
    ck_assert_int_eq(blob_serve(b, sha, "image/png", "p.png", &srv, &err), 0);
    want = xasprintf("%s/media/%.2s/%s", dir, sha, sha);
    ck_assert_str_eq(srv.path, want);
    ck_assert_ptr_null(srv.url);
    blob_serve_release(&srv);
    free(want);
    /* the same bytes again: one file */
    spool_text(&sp, "a picture", sha);
    ck_assert_int_eq(blob_commit(b, sp.path, sha, sp.size, sha, "image/png", &err), 0);
    spool_release(&sp);
    ck_assert_uint_eq(count_files(cfg.media_dir), 1);
    /* a key that is not a hash never becomes a path */
    ck_assert_int_eq(blob_serve(b, "../../etc/passwd", "text/plain", "x", &srv, &err),
                     LARK_EINTERNAL);
    /* missing bytes */
    ck_assert_int_eq(blob_serve(b,
                                "0000000000000000000000000000000000000000000000000000000000000000",
                                "text/plain", "x", &srv, &err),
                     LARK_ENOTFOUND);
    /* no direct uploads here */
    {
        struct blob_put put;
        int stored = 1;
        ck_assert_int_eq(blob_presign_put(b, sha, "image/png", 9, sha, 60, &put, &err),
                         LARK_ENOTFOUND);
        ck_assert_int_eq(blob_confirm(b, sha, 9, sha, &stored, &err), 0);
        ck_assert_int_eq(stored, 0);
    }
}
END_TEST

/* blob_used_fn answering *arg, and counting the questions. */
static int asked;
static int used_answer(void *arg, const char *key, int *used)
{
    (void)key;
    asked++;
    *used = *(int *)arg;
    return 0;
}

START_TEST(test_local_remove)
{
    struct spool sp = SPOOL_INIT;
    struct lark_err err;
    char sha[MEDIA_SHA256_HEX], *path;
    int yes = 1, no = 0;

    spool_text(&sp, "kept or not", sha);
    ck_assert_int_eq(blob_commit(b, sp.path, sha, sp.size, sha, "text/plain", &err), 0);
    spool_release(&sp);
    path = xasprintf("%s/%.2s/%s", cfg.media_dir, sha, sha);
    /* a media row names the key again: the bytes come back */
    asked = 0;
    ck_assert_int_eq(blob_remove(b, sha, used_answer, &yes, &err), 0);
    ck_assert_int_eq(asked, 1);
    ck_assert(exists(path));
    ck_assert_uint_eq(count_files(cfg.media_dir), 1); /* nothing left aside */
    /* nobody does: gone */
    ck_assert_int_eq(blob_remove(b, sha, used_answer, &no, &err), 0);
    ck_assert(!exists(path));
    ck_assert_uint_eq(count_files(cfg.media_dir), 0);
    /* already gone: nothing to ask, no error */
    asked = 0;
    ck_assert_int_eq(blob_remove(b, sha, used_answer, &no, &err), 0);
    ck_assert_int_eq(asked, 0);
    free(path);
}
END_TEST

START_TEST(test_sweep_spool)
{
    struct spool old = SPOOL_INIT, fresh = SPOOL_INIT;
    struct timeval hours_ago[2];
    char sha[MEDIA_SHA256_HEX], *other;
    struct lark_err err;

    /* an upload that died two hours ago, one in progress, and a file the
     * sweep does not own */
    ck_assert_int_eq(spool_open(&old, blob_spool_dir(b), &err), 0);
    spool_text(&fresh, "in progress", sha);
    other = unit_path(blob_spool_dir(b), "not-ours");
    unit_write_file(other, "x");
    gettimeofday(&hours_ago[0], NULL);
    hours_ago[0].tv_sec -= 7200;
    hours_ago[1] = hours_ago[0];
    ck_assert_int_eq(utimes(old.path, hours_ago), 0);
    ck_assert_int_eq(utimes(other, hours_ago), 0);
    blob_sweep_spool(b, LIMIT_MEDIA_SPOOL_IDLE_S);
    ck_assert(!exists(old.path));
    ck_assert(exists(fresh.path));
    ck_assert(exists(other));
    spool_release(&old);
    spool_release(&fresh);
    free(other);
}
END_TEST

START_TEST(test_s3_urls)
{
    struct blob *s3 = NULL;
    struct blob_put put = {0};
    struct blob_serve srv = {0};
    struct lark_err err;
    const char *sha = "09ca7e4eaa6e8ae9c7d261167129184883644d07dfba7cbfbc4c8a2e08360d5b";

    free(cfg.media_storage);
    cfg.media_storage = xstrdup("s3");
    ck_assert_int_eq(blob_open(&cfg, &s3, &err), 0);
    ck_assert_str_eq(blob_backend(s3), "s3");
    ck_assert_int_eq(blob_direct(s3), 1);
    ck_assert_str_eq(blob_key(s3, "m_x", sha), "m_x"); /* keyed by id */
    ck_assert_int_eq(blob_presign_put(s3, "m_x", "image/png", 12, sha, 900, &put, &err), 0);
    ck_assert(strncmp(put.url, "http://127.0.0.1:9000/lark/m_x?X-Amz-Algorithm=AWS4-HMAC-SHA256",
                      62) == 0);
    ck_assert_ptr_nonnull(strstr(
        put.url,
        "&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256"));
    ck_assert_ptr_nonnull(strstr(put.url, "&X-Amz-Expires=900&"));
    ck_assert_str_eq(json_string_value(json_object_get(put.headers, "Content-Length")), "12");
    ck_assert_str_eq(json_string_value(json_object_get(put.headers, "Content-Type")), "image/png");
    /* base64 of the raw digest */
    ck_assert_str_eq(json_string_value(json_object_get(put.headers, "x-amz-checksum-sha256")),
                     "Ccp+TqpuiunH0mEWcSkYSINkTQffuny/vEyKLgg2DVs=");
    blob_put_release(&put);
    ck_assert_int_eq(blob_serve(s3, "m_x", "text/html", "page.html", &srv, &err), 0);
    ck_assert_ptr_null(srv.path);
    ck_assert_ptr_nonnull(strstr(srv.url, "&X-Amz-Expires=300&"));
    ck_assert_ptr_nonnull(
        strstr(srv.url, "&response-content-disposition=attachment%3B%20filename%3D%22page.html"));
    ck_assert_ptr_nonnull(strstr(srv.url, "&response-content-type=text%2Fhtml&"));
    blob_serve_release(&srv);
    blob_close(s3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("blob");
    TCase *tc = tcase_create("blob");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_spool);
    tcase_add_test(tc, test_local_commit_serve);
    tcase_add_test(tc, test_local_remove);
    tcase_add_test(tc, test_sweep_spool);
    tcase_add_test(tc, test_s3_urls);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
