/*
 * sigv4.c - AWS Signature Version 4 (sigv4.h).
 */
#include "core/sigv4.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/media.h"
#include "core/mem.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The most bytes a canonical request or a presigned URL may take: lark's
 * requests carry a few short headers and parameters. */
#define SIGV4_TEXT_MAX (64 * 1024)
/* Headers and parameters one request may sign. */
#define SIGV4_FIELDS_MAX 32

void sigv4_date(int64_t unix_s, char out[SIGV4_DATE_LEN])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, SIGV4_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm);
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int sigv4_encode(struct buf *out, const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = buf_putc(out, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_append(out, esc, 3);
        }
    }
    return rc;
}

/* One canonical header or query parameter: its two halves as they are
 * signed, in bufs that sort. */
struct field {
    struct buf name, value;
};

static int field_cmp(const void *a, const void *b)
{
    const struct field *x = a, *y = b;
    int c = strcmp(x->name.data ? x->name.data : "", y->name.data ? y->name.data : "");
    if (c)
        return c;
    return strcmp(x->value.data ? x->value.data : "", y->value.data ? y->value.data : "");
}

static void fields_release(struct field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_release(&f[i].name);
        buf_release(&f[i].value);
    }
}

/* A header as AWS canonicalizes it: the name lowercased; the value with
 * leading and trailing blanks trimmed and inner runs of blanks as one. */
static int header_field(struct field *f, const char *name, const char *value)
{
    int rc = 0, blank = 0;

    buf_init(&f->name, SIGV4_TEXT_MAX);
    buf_init(&f->value, SIGV4_TEXT_MAX);
    for (const char *p = name; rc == 0 && *p; p++)
        rc = buf_putc(&f->name, (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p);
    while (*value == ' ' || *value == '\t')
        value++;
    for (const char *p = value; rc == 0 && *p; p++) {
        if (*p == ' ' || *p == '\t') {
            blank = 1;
            continue;
        }
        if (blank && f->value.len)
            rc = buf_putc(&f->value, ' ');
        blank = 0;
        if (rc == 0)
            rc = buf_putc(&f->value, *p);
    }
    /* an empty value still needs its buffer for sorting and printing */
    return rc ? rc : buf_puts(&f->value, "");
}

static int query_field(struct field *f, const struct sigv4_kv *kv)
{
    int rc;
    buf_init(&f->name, SIGV4_TEXT_MAX);
    buf_init(&f->value, SIGV4_TEXT_MAX);
    rc = sigv4_encode(&f->name, kv->name, strlen(kv->name), 0);
    if (rc == 0)
        rc = sigv4_encode(&f->value, kv->value, strlen(kv->value), 0);
    if (rc == 0)
        rc = buf_puts(&f->value, ""); /* allocated even when empty */
    return rc ? rc : buf_puts(&f->name, "");
}

/* The canonical query string of r's parameters, appended to out. */
static int canonical_query(const struct sigv4_req *r, struct buf *out)
{
    struct field f[SIGV4_FIELDS_MAX];
    size_t n = 0;
    int rc = 0;

    if (r->nquery > SIGV4_FIELDS_MAX)
        return LARK_ETOOLARGE;
    for (; rc == 0 && n < r->nquery; n++)
        rc = query_field(&f[n], &r->query[n]);
    if (rc == 0)
        qsort(f, n, sizeof(f[0]), field_cmp);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = buf_printf(out, "%s%s=%s", i ? "&" : "", f[i].name.data, f[i].value.data);
    fields_release(f, n);
    return rc;
}

int sigv4_canonical(const struct sigv4_req *r, struct buf *canonical, struct buf *signed_headers)
{
    struct field f[SIGV4_FIELDS_MAX];
    size_t n = 0;
    int rc;

    if (r->nheaders + 1 > SIGV4_FIELDS_MAX)
        return LARK_ETOOLARGE;
    rc = buf_printf(canonical, "%s\n", r->method);
    if (rc == 0)
        rc = sigv4_encode(canonical, r->path, strlen(r->path), 1);
    if (rc == 0)
        rc = buf_putc(canonical, '\n');
    if (rc == 0)
        rc = canonical_query(r, canonical);
    if (rc == 0)
        rc = buf_putc(canonical, '\n');
    if (rc == 0)
        rc = header_field(&f[n++], "host", r->host);
    for (size_t i = 0; rc == 0 && i < r->nheaders; i++)
        rc = header_field(&f[n++], r->headers[i].name, r->headers[i].value);
    if (rc == 0)
        qsort(f, n, sizeof(f[0]), field_cmp);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = buf_printf(canonical, "%s:%s\n", f[i].name.data, f[i].value.data);
    if (rc == 0)
        rc = buf_putc(canonical, '\n');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = buf_printf(canonical, "%s%s", i ? ";" : "", f[i].name.data);
        if (rc == 0 && signed_headers)
            rc = buf_printf(signed_headers, "%s%s", i ? ";" : "", f[i].name.data);
    }
    if (rc == 0)
        rc = buf_printf(canonical, "\n%s", r->payload_hash);
    fields_release(f, n);
    return rc;
}

static void hmac(const unsigned char *key, size_t keylen, const char *data, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, strlen(data), out, &len);
}

void sigv4_sign(const struct sigv4_creds *c, const char *amz_date, const char *canonical,
                char sig[SIGV4_SIG_LEN])
{
    unsigned char digest[32], k1[32], k2[32], k3[32], k4[32], mac[32];
    char hash[MEDIA_SHA256_HEX], day[9], *secret, *sts;
    unsigned int dlen = 32;

    EVP_Digest(canonical, strlen(canonical), digest, &dlen, EVP_sha256(), NULL);
    media_hex(digest, 32, hash);
    memcpy(day, amz_date, 8);
    day[8] = '\0';
    sts = xasprintf("AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, day, c->region,
                    c->service, hash);
    secret = xasprintf("AWS4%s", c->secret_key);
    hmac((const unsigned char *)secret, strlen(secret), day, k1);
    hmac(k1, 32, c->region, k2);
    hmac(k2, 32, c->service, k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, sts, mac);
    media_hex(mac, 32, sig);
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    free(sts);
}

char *sigv4_presign(const struct sigv4_creds *c, const char *base, const struct sigv4_req *r,
                    int64_t now_s, int expires_s)
{
    struct sigv4_kv q[SIGV4_FIELDS_MAX];
    struct sigv4_req pr = *r;
    struct buf canonical, signed_headers, url;
    char date[SIGV4_DATE_LEN], expires[16], sig[SIGV4_SIG_LEN], *credential, *out = NULL;
    size_t n = r->nquery;
    int rc;

    if (n > SIGV4_FIELDS_MAX - 5)
        return NULL;
    sigv4_date(now_s, date);
    snprintf(expires, sizeof(expires), "%d", expires_s);
    credential =
        xasprintf("%s/%.8s/%s/%s/aws4_request", c->access_key, date, c->region, c->service);
    buf_init(&canonical, SIGV4_TEXT_MAX);
    buf_init(&signed_headers, SIGV4_TEXT_MAX);
    buf_init(&url, SIGV4_TEXT_MAX);
    /* the signed headers first: X-Amz-SignedHeaders names them */
    pr.nquery = 0;
    pr.payload_hash = SIGV4_UNSIGNED;
    rc = sigv4_canonical(&pr, &canonical, &signed_headers);
    buf_reset(&canonical);
    if (n)
        memcpy(q, r->query, n * sizeof(q[0]));
    q[n++] = (struct sigv4_kv){"X-Amz-Algorithm", "AWS4-HMAC-SHA256"};
    q[n++] = (struct sigv4_kv){"X-Amz-Credential", credential};
    q[n++] = (struct sigv4_kv){"X-Amz-Date", date};
    q[n++] = (struct sigv4_kv){"X-Amz-Expires", expires};
    q[n++] =
        (struct sigv4_kv){"X-Amz-SignedHeaders", signed_headers.data ? signed_headers.data : ""};
    pr.query = q;
    pr.nquery = n;
    if (rc == 0)
        rc = sigv4_canonical(&pr, &canonical, NULL);
    if (rc == 0) {
        sigv4_sign(c, date, canonical.data, sig);
        rc = buf_puts(&url, base);
    }
    if (rc == 0)
        rc = sigv4_encode(&url, r->path, strlen(r->path), 1);
    if (rc == 0)
        rc = buf_putc(&url, '?');
    if (rc == 0)
        rc = canonical_query(&pr, &url);
    if (rc == 0)
        rc = buf_printf(&url, "&X-Amz-Signature=%s", sig);
    if (rc == 0)
        out = buf_detach(&url, NULL);
    buf_release(&url);
    buf_release(&canonical);
    buf_release(&signed_headers);
    free(credential);
    return out;
}
