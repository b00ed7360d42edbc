/*
 * blob_s3.c - media in an S3-compatible bucket (blob.h), which every larkd
 * of every host shares: objects ENDPOINT/BUCKET/<media id> (path-style
 * addressing, which AWS and every S3-compatible server accept).
 *
 * Two kinds of requests:
 *   - larkd's own (an upload that came through larkd, a check that a
 *     direct upload arrived, a removal) go out through libcurl, which
 *     signs them (CURLOPT_AWS_SIGV4). A PUT carries x-amz-content-sha256
 *     with the body's real hash (S3 verifies it) and
 *     x-amz-checksum-sha256, so the bucket keeps the hash and refuses
 *     bytes that do not match it. Each request is bounded: connect
 *     LIMIT_S3_CONNECT_S, the whole media_s3_timeout, and a transfer
 *     slower than LIMIT_S3_STALL_BPS for LIMIT_S3_STALL_S is dropped.
 *   - the clients' (two-step uploads, downloads) use presigned URLs
 *     (sigv4.h): a PUT that signs the Content-Length, Content-Type and
 *     x-amz-checksum-sha256 the client declared - the bucket refuses any
 *     other length or bytes - and a GET that signs the response's
 *     Content-Type and Content-Disposition (response-content-type,
 *     response-content-disposition), valid media_url_ttl seconds.
 *
 * A direct upload is confirmed with a HEAD (x-amz-checksum-mode: ENABLED):
 * present with the declared length, and with the declared checksum when
 * the server keeps one.
 */
#include "core/blob_impl.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/media.h"
#include "core/mem.h"
#include "core/sigv4.h"
#include "core/timeutil.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The hash of an empty body, for requests without one. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Base64 of a SHA-256: 44 characters plus NUL. */
#define S3_B64_LEN 45

struct s3_blob {
    struct blob base;
    char *endpoint; /* "http(s)://host[:port]" */
    char *host;     /* the Host header clients send to it */
    char *bucket;
    char *access_key;
    char *secret_key;
    char *region;
    char *sigv4;   /* CURLOPT_AWS_SIGV4: "aws:amz:REGION:s3" */
    int timeout_s; /* media_s3_timeout */
    int url_ttl_s; /* media_url_ttl */
};

/* What one request to the bucket brought back. */
struct s3_answer {
    long status;
    long long length;          /* Content-Length, -1 if none */
    char checksum[S3_B64_LEN]; /* x-amz-checksum-sha256, "" if none */
    struct buf body;           /* the start of the body (errors) */
};

static struct sigv4_creds s3_creds(const struct s3_blob *s)
{
    return (struct sigv4_creds){s->access_key, s->secret_key, s->region, "s3"};
}

/* The Host header of endpoint: without the scheme, and without a port
 * that is the scheme's default (clients leave it out, and it is signed). */
static char *s3_host(const char *endpoint)
{
    int https = strncmp(endpoint, "https://", 8) == 0;
    const char *host = endpoint + (https ? 8 : 7);
    size_t len = strlen(host);
    const char *dflt = https ? ":443" : ":80";
    size_t dlen = strlen(dflt);

    if (len > dlen && strcmp(host + len - dlen, dflt) == 0)
        len -= dlen;
    return xstrndup(host, len);
}

/* Base64 of the SHA-256 whose hex is given (x-amz-checksum-sha256). */
static void s3_b64(const char *hex, char out[S3_B64_LEN])
{
    unsigned char raw[32];
    for (int i = 0; i < 32; i++) {
        unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10);
        unsigned lo =
            (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10);
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    EVP_EncodeBlock((unsigned char *)out, raw, 32);
}

static int s3_open(const struct config *cfg, struct blob **out, struct lark_err *err)
{
    struct s3_blob *s = xcalloc(1, sizeof(*s));
    int rc = blob_base_init(&s->base, &blob_s3_ops, cfg->media_dir, err);

    if (rc) {
        free(s);
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        blob_base_release(&s->base);
        free(s);
        return lark_err_set(err, LARK_EINVAL, "libcurl cannot start");
    }
    s->endpoint = xstrdup(cfg->media_s3_endpoint);
    s->host = s3_host(cfg->media_s3_endpoint);
    s->bucket = xstrdup(cfg->media_s3_bucket);
    s->access_key = xstrdup(cfg->media_s3_access_key);
    s->secret_key = xstrdup(cfg->media_s3_secret_key);
    s->region = xstrdup(cfg->media_s3_region);
    s->sigv4 = xasprintf("aws:amz:%s:s3", cfg->media_s3_region);
    s->timeout_s = cfg->media_s3_timeout;
    s->url_ttl_s = cfg->media_url_ttl;
    *out = &s->base;
    return 0;
}

static void s3_close(struct blob *b)
{
    struct s3_blob *s = (struct s3_blob *)b;
    free(s->endpoint);
    free(s->host);
    free(s->bucket);
    free(s->access_key);
    free(s->secret_key);
    free(s->region);
    free(s->sigv4);
    blob_base_release(b);
    free(s);
    curl_global_cleanup();
}

/* The object's path: /BUCKET/KEY (unencoded; keys are media ids). */
static char *s3_path(const struct s3_blob *s, const char *key)
{
    return xasprintf("/%s/%s", s->bucket, key);
}

static size_t s3_on_body(char *p, size_t size, size_t n, void *arg)
{
    struct s3_answer *a = arg;
    buf_append(&a->body, p, size * n); /* the rest of a long error is dropped */
    return size * n;
}

static size_t s3_on_header(char *p, size_t size, size_t n, void *arg)
{
    struct s3_answer *a = arg;
    size_t len = size * n;
    const char *v;

    if (len > 15 && strncasecmp(p, "content-length:", 15) == 0) {
        a->length = strtoll(p + 15, NULL, 10);
    } else if (len > 22 && strncasecmp(p, "x-amz-checksum-sha256:", 22) == 0) {
        size_t i = 0;
        for (v = p + 22; v < p + len && (*v == ' ' || *v == '\t'); v++)
            ;
        while (v < p + len && i < S3_B64_LEN - 1 && *v != '\r' && *v != '\n' && *v != ' ')
            a->checksum[i++] = *v++;
        a->checksum[i] = '\0';
    }
    return len;
}

/*
 * One signed request for key: method, the extra headers (NULL-terminated),
 * and for a PUT the file to send. The answer's status, length and checksum
 * into *a (a->body released by the caller). 0, or LARK_ESTORAGE when no
 * answer came (logged).
 */
static int s3_call(struct s3_blob *s, const char *method, const char *key,
                   const char *const *headers, FILE *body, uint64_t size, struct s3_answer *a,
                   struct lark_err *err)
{
    char *path = s3_path(s, key), *url = xasprintf("%s%s", s->endpoint, path);
    struct curl_slist *list = NULL;
    CURL *h = curl_easy_init();
    CURLcode cc;
    int rc = 0;

    a->status = 0;
    a->length = -1;
    a->checksum[0] = '\0';
    buf_init(&a->body, LIMIT_S3_ANSWER_MAX);
    if (!h) {
        rc = lark_err_set(err, LARK_ESTORAGE, "media storage is unavailable");
        goto out;
    }
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, s->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret_key);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)LIMIT_S3_CONNECT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)s->timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)LIMIT_S3_STALL_BPS);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)LIMIT_S3_STALL_S);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READDATA, body);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        log_error("media s3 %s %s: %s", method, path, curl_easy_strerror(cc));
        rc = lark_err_set(err, LARK_ESTORAGE, "media storage is unavailable");
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
out:
    curl_slist_free_all(list);
    if (h)
        curl_easy_cleanup(h);
    free(url);
    free(path);
    return rc;
}

/* An answer that is not success: logged with the start of its body. */
static int s3_refused(const char *method, const char *key, struct s3_answer *a,
                      struct lark_err *err)
{
    log_error("media s3 %s %s: status %ld %.300s", method, key, a->status,
              a->body.data ? a->body.data : "");
    return lark_err_set(err, LARK_ESTORAGE, "media storage refused the request");
}

static int s3_commit(struct blob *b, const char *path, const char *key, uint64_t size,
                     const char *sha256, const char *type, struct lark_err *err)
{
    struct s3_blob *s = (struct s3_blob *)b;
    char b64[S3_B64_LEN], *ctype, *content, *checksum;
    struct s3_answer a;
    FILE *f = fopen(path, "rb");
    int rc;

    if (!f) {
        log_error("media s3 PUT %s: cannot read the spool file %s", key, path);
        return lark_err_set(err, LARK_ESTORAGE, "media storage failed");
    }
    s3_b64(sha256, b64);
    ctype = xasprintf("Content-Type: %s", type);
    content = xasprintf("x-amz-content-sha256: %s", sha256);
    checksum = xasprintf("x-amz-checksum-sha256: %s", b64);
    {
        const char *const headers[] = {ctype, content, checksum, NULL};
        rc = s3_call(s, "PUT", key, headers, f, size, &a, err);
    }
    if (rc == 0 && a.status != 200)
        rc = s3_refused("PUT", key, &a, err);
    buf_release(&a.body);
    fclose(f);
    free(ctype);
    free(content);
    free(checksum);
    return rc;
}

static int s3_serve(struct blob *b, const char *key, const char *type, const char *name,
                    struct blob_serve *out, struct lark_err *err)
{
    struct s3_blob *s = (struct s3_blob *)b;
    struct sigv4_creds c = s3_creds(s);
    char *path = s3_path(s, key);
    struct buf disp;
    int rc;

    buf_init(&disp, MEDIA_DISPOSITION_MAX);
    rc = media_disposition(&disp, type, name);
    if (rc == 0) {
        /* the bucket answers with the stored type and lark's disposition */
        const struct sigv4_kv q[] = {{"response-content-type", type},
                                     {"response-content-disposition", disp.data}};
        const struct sigv4_req r = {"GET", s->host, path, q, 2, NULL, 0, NULL};
        out->url = sigv4_presign(&c, s->endpoint, &r, time_now_ms() / 1000, s->url_ttl_s);
        if (!out->url)
            rc = lark_err_set(err, LARK_EINTERNAL, "cannot presign a download");
    }
    buf_release(&disp);
    free(path);
    return rc;
}

static int s3_presign_put(struct blob *b, const char *key, const char *type, uint64_t size,
                          const char *sha256, int ttl_s, struct blob_put *out, struct lark_err *err)
{
    struct s3_blob *s = (struct s3_blob *)b;
    struct sigv4_creds c = s3_creds(s);
    char b64[S3_B64_LEN], len[24], *path = s3_path(s, key);

    s3_b64(sha256, b64);
    snprintf(len, sizeof(len), "%llu", (unsigned long long)size);
    {
        /* signed: the bucket refuses another length, type or content */
        const struct sigv4_kv h[] = {
            {"Content-Length", len}, {"Content-Type", type}, {"x-amz-checksum-sha256", b64}};
        const struct sigv4_req r = {"PUT", s->host, path, NULL, 0, h, 3, NULL};
        out->url = sigv4_presign(&c, s->endpoint, &r, time_now_ms() / 1000, ttl_s);
    }
    free(path);
    if (!out->url)
        return lark_err_set(err, LARK_EINTERNAL, "cannot presign an upload");
    out->headers = json_obj();
    json_put(out->headers, "Content-Type", json_string(type));
    json_put(out->headers, "Content-Length", json_string(len));
    json_put(out->headers, "x-amz-checksum-sha256", json_string(b64));
    return 0;
}

static int s3_confirm(struct blob *b, const char *key, uint64_t size, const char *sha256,
                      int *stored, struct lark_err *err)
{
    static const char *const headers[] = {"x-amz-content-sha256: " S3_EMPTY_SHA256,
                                          "x-amz-checksum-mode: ENABLED", NULL};
    char b64[S3_B64_LEN];
    struct s3_answer a;
    int rc = s3_call((struct s3_blob *)b, "HEAD", key, headers, NULL, 0, &a, err);

    if (rc == 0 && a.status == 200) {
        s3_b64(sha256, b64);
        /* the length was signed into the PUT; the checksum too, if the
         * server keeps checksums (AWS does) it must be the declared one */
        *stored = a.length == (long long)size && (!a.checksum[0] || strcmp(a.checksum, b64) == 0);
        if (!*stored)
            log_warn("media s3 %s: stored with length %lld checksum %s, not as declared", key,
                     a.length, a.checksum[0] ? a.checksum : "-");
    } else if (rc == 0 && a.status == 403) {
        /* AWS answers so for a missing key when the credentials may not
         * list the bucket - or when they are wrong */
        log_warn("media s3 HEAD %s: 403, taken as not uploaded yet", key);
    } else if (rc == 0 && a.status != 404) {
        rc = s3_refused("HEAD", key, &a, err);
    }
    buf_release(&a.body);
    return rc;
}

static int s3_hide(struct blob *b, const char *key, char **aside, struct lark_err *err)
{
    /* keys are media ids: nobody names this one again, nothing to guard */
    (void)b;
    (void)err;
    *aside = xstrdup(key);
    return 0;
}

static int s3_purge(struct blob *b, const char *key, const char *aside, struct lark_err *err)
{
    static const char *const headers[] = {"x-amz-content-sha256: " S3_EMPTY_SHA256, NULL};
    struct s3_answer a;
    int rc = s3_call((struct s3_blob *)b, "DELETE", key, headers, NULL, 0, &a, err);

    (void)aside;
    if (rc == 0 && a.status != 204 && a.status != 200 && a.status != 404)
        rc = s3_refused("DELETE", key, &a, err);
    buf_release(&a.body);
    return rc;
}

static int s3_restore(struct blob *b, const char *key, const char *aside, struct lark_err *err)
{
    (void)b;
    (void)key;
    (void)aside;
    (void)err;
    return 0;
}

const struct blob_ops blob_s3_ops = {
    .name = "s3",
    .content_addressed = 0,
    .open = s3_open,
    .close = s3_close,
    .commit = s3_commit,
    .serve = s3_serve,
    .presign_put = s3_presign_put,
    .confirm = s3_confirm,
    .hide = s3_hide,
    .purge = s3_purge,
    .restore = s3_restore,
};
