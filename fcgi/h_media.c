/*
 * h_media.c - media (API.md "Media (attachments)"): uploads in one step
 * (POST /v1/media) or two (POST /v1/media/uploads, then a PUT to the URL
 * it answers with - lark's own, PUT /v1/media/{id}/upload, with local
 * storage), and downloads (GET /v1/media/{id}) that lighttpd or the bucket
 * serve after larkd checked who asks.
 *
 * An upload through larkd: its content type and name are checked, then
 * its size against media_max_bytes (413 before the body is read), the
 * per-user rate and quota, and a slot among media_uploads_max (attach.h);
 * the body is spooled to disk as it arrives, hashed on the way, and only
 * then does the item get its row (pending), its bytes their real name
 * (blob_commit), and its row the status ready - in that order, so that a
 * crash at any point leaves no half file under a real name and nothing a
 * message could name (blob.h).
 */
#include "core/blob.h"
#include "core/buf.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/media.h"
#include "core/mem.h"
#include "core/spool.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/attach.h"
#include "fcgi/handlers.h"
#include "fcgi/metrics.h"
#include "fcgi/quota.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of a key in a two-step upload URL of lark's own (random; only its
 * SHA-256 is stored). */
#define MEDIA_URL_KEY_BYTES 32
/* The longest Host header an upload URL is built from. */
#define MEDIA_HOST_MAX 255

/* The quota in bytes (0: none). */
static int64_t quota_bytes(const struct app *app)
{
    return (int64_t)app->cfg.media_quota_mb * 1024 * 1024;
}

/* The per-user upload rate (media_rate per minute). */
static int take_rate(struct req *r)
{
    return quota_take(r->app->quota, QUOTA_MEDIA, r->user, &r->retry_after, &r->err);
}

/* Refuse before reading a byte when the quota cannot take len more. */
static int quota_check(struct req *r, uint64_t len)
{
    int64_t quota = quota_bytes(r->app), used = 0;
    int rc;

    if (quota == 0 || len == UINT64_MAX)
        return 0;
    rc = store_media_usage(r->db, r->user, &used, &r->err);
    if (rc == 0 && (uint64_t)used + len > (uint64_t)quota)
        rc = lark_err_set(&r->err, LARK_EQUOTA,
                          "this upload would take your media past your %d MiB; send fewer or "
                          "smaller files, or wait until unsent uploads expire",
                          r->app->cfg.media_quota_mb);
    return rc;
}

/* A new item's row, its strings copied. */
static void media_fill(struct store_media *m, const char *id, const char *user, const char *type,
                       const char *name, const char *sha256, const char *skey, int64_t size,
                       int64_t now)
{
    memset(m, 0, sizeof(*m));
    m->id = xstrdup(id);
    m->uploader = xstrdup(user);
    m->content_type = xstrdup(type);
    m->name = xstrdup(name);
    m->sha256 = xstrdup(sha256);
    m->skey = xstrdup(skey);
    m->upload_hash = xstrdup("");
    m->size = size;
    m->created_at = now;
}

static void reply_media(struct req *r, int status, const struct store_media *m)
{
    json_t *body = json_obj();
    json_put(body, "media", store_media_json(m, 1));
    reply_json(r, status, body);
    json_decref(body);
}

/* The spool's bytes under the item's key, then the item ready. */
static int commit_ready(struct req *r, struct store_media *m, struct spool *sp)
{
    int rc = blob_commit(r->app->blob, sp->path, m->skey, (uint64_t)m->size, m->sha256,
                         m->content_type, &r->err);
    if (rc == 0)
        rc = store_media_ready(r->db, m->id, &r->err);
    if (rc == 0) {
        m->ready = 1;
        metrics_media_upload((uint64_t)m->size);
    }
    return rc;
}

int h_media_upload(struct req *r)
{
    struct app *app = r->app;
    const char *name = query_get(&r->query, "name");
    const char *cl = req_param(r, "CONTENT_LENGTH");
    char type[LIMIT_MEDIA_TYPE_MAX + 1], sha[MEDIA_SHA256_HEX], id[IDS_MEDIA_LEN];
    struct spool sp = SPOOL_INIT;
    struct store_media m = {0};
    uint64_t len = UINT64_MAX;
    int64_t now = time_now_ms(), t0 = time_mono_ns();
    int slot = 0, rc;

    r->body_unread = 1; /* until attach_spool has read it */
    if (!name)
        name = MEDIA_DEFAULT_NAME;
    if (!media_name_valid(name, strlen(name)))
        return lark_err_set(&r->err, LARK_EINVAL,
                            "'name' must be 1-%d bytes of UTF-8 without control characters, "
                            "'/' or '\\\\'",
                            LIMIT_MEDIA_NAME_MAX);
    if (media_type_normalize(req_param(r, "CONTENT_TYPE"), type) != 0)
        return lark_err_set(&r->err, LARK_EINVAL, "the Content-Type is not a media type");
    if (cl && *cl && parse_u64(cl, UINT64_MAX, &len) != 0)
        return lark_err_set(&r->err, LARK_EINVAL, "bad Content-Length");
    if (len != UINT64_MAX && len > (uint64_t)app->cfg.media_max_bytes)
        return lark_err_set(&r->err, LARK_EMEDIALARGE, "the upload is over %d bytes",
                            app->cfg.media_max_bytes);
    if ((rc = take_rate(r)) || (rc = quota_check(r, len)) || (rc = attach_slot_take(r)))
        return rc;
    slot = 1;
    rc = attach_spool(r, (uint64_t)app->cfg.media_max_bytes, &sp, sha);
    if (rc)
        goto out;
    ids_media(now, id);
    media_fill(&m, id, r->user, type, name, sha, blob_key(app->blob, id, sha), (int64_t)sp.size,
               now);
    /* the row first, naming the key: the retention sweep then never takes
     * the bytes of the same content away under this upload (blob.h) */
    rc = store_media_create(r->db, &m, quota_bytes(app), &r->err);
    if (rc == 0)
        rc = commit_ready(r, &m, &sp);
    if (rc)
        goto out;
    log_info("media upload id=%s user=%s size=%lld type=%s ms=%.1f", id, r->user, (long long)m.size,
             type, (double)(time_mono_ns() - t0) / 1e6);
    reply_media(r, 201, &m);
out:
    spool_release(&sp);
    store_media_release(&m);
    if (slot)
        attach_slot_give(app);
    return rc;
}

/* 1 if host may be put in a URL: a DNS name or address, an optional port. */
static int host_ok(const char *host)
{
    size_t n = strlen(host);
    if (n == 0 || n > MEDIA_HOST_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return 0;
    }
    return 1;
}

/* Where this lark is reached: media_public_url, else the request's own
 * scheme and Host (the client that asked uses the URL). Caller frees. */
static int public_base(struct req *r, char **out)
{
    const char *host = req_param(r, "HTTP_HOST");
    const char *scheme = req_param(r, "REQUEST_SCHEME");
    const char *https = req_param(r, "HTTPS");

    *out = NULL;
    if (*r->app->cfg.media_public_url) {
        *out = xstrdup(r->app->cfg.media_public_url);
        return 0;
    }
    if (!host || !host_ok(host))
        return lark_err_set(&r->err, LARK_EINVAL, "the Host header is missing or malformed");
    if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        scheme = https && strcmp(https, "on") == 0 ? "https" : "http";
    *out = xasprintf("%s://%s", scheme, host);
    return 0;
}

/* The upload half of a two-step answer: where and how to PUT the bytes. */
static int upload_target(struct req *r, struct store_media *m, int64_t expires_at, json_t **upload)
{
    struct app *app = r->app;
    struct blob_put put = {0};
    char ts[TIME_RFC3339_LEN];
    int rc = 0;

    if (blob_direct(app->blob)) {
        rc = blob_presign_put(app->blob, m->skey, m->content_type, (uint64_t)m->size, m->sha256,
                              app->cfg.media_upload_ttl, &put, &r->err);
    } else {
        /* lark's own URL: a random key, of which only the hash is kept */
        unsigned char raw[MEDIA_URL_KEY_BYTES];
        char key[2 * MEDIA_URL_KEY_BYTES + 1], hash[MEDIA_SHA256_HEX], *base = NULL;
        ids_random(raw, sizeof(raw));
        media_hex(raw, sizeof(raw), key);
        rc = public_base(r, &base);
        if (rc == 0) {
            media_sha256_of(key, strlen(key), hash);
            free(m->upload_hash);
            m->upload_hash = xstrdup(hash);
            m->upload_expires_at = expires_at;
            put.url = xasprintf("%s/v1/media/%s/upload?key=%s", base, m->id, key);
            put.headers = json_obj();
            json_put(put.headers, "Content-Type", json_string(m->content_type));
        }
        free(base);
    }
    if (rc)
        return rc;
    time_rfc3339(expires_at, ts);
    *upload = json_obj();
    json_put(*upload, "method", json_string("PUT"));
    json_put(*upload, "url", json_string(put.url));
    json_put(*upload, "headers", json_incref(put.headers));
    json_put(*upload, "expires_at", json_string(ts));
    blob_put_release(&put);
    return 0;
}

int h_media_uploads(struct req *r)
{
    struct app *app = r->app;
    struct media_decl decl;
    struct store_media m = {0};
    char id[IDS_MEDIA_LEN];
    int64_t now = time_now_ms();
    json_t *upload = NULL, *body;
    int rc = media_decl_parse(r->body, (uint64_t)app->cfg.media_max_bytes, &decl, &r->err);

    if (rc || (rc = take_rate(r)))
        return rc;
    ids_media(now, id);
    media_fill(&m, id, r->user, decl.type, decl.name, decl.sha256,
               blob_key(app->blob, id, decl.sha256), (int64_t)decl.size, now);
    rc = upload_target(r, &m, now + (int64_t)app->cfg.media_upload_ttl * 1000, &upload);
    if (rc == 0)
        rc = store_media_create(r->db, &m, quota_bytes(app), &r->err);
    if (rc == 0) {
        body = json_obj();
        json_put(body, "media", store_media_json(&m, 1));
        json_put(body, "upload", json_incref(upload));
        reply_json(r, 201, body);
        json_decref(body);
        log_info("media declared id=%s user=%s size=%llu type=%s direct=%d", id, r->user,
                 (unsigned long long)decl.size, decl.type, blob_direct(app->blob));
    }
    json_decref(upload);
    store_media_release(&m);
    return rc;
}

/* May this PUT fill m? 0, or the refusal. */
static int put_allowed(struct req *r, const struct store_media *m)
{
    const char *key = query_get(&r->query, "key");
    char hash[MEDIA_SHA256_HEX];

    if (!key || !*m->upload_hash)
        return lark_err_set(&r->err, LARK_EFORBIDDEN, "this upload URL is not valid");
    media_sha256_of(key, strlen(key), hash);
    if (!media_hex_equal(hash, m->upload_hash))
        return lark_err_set(&r->err, LARK_EFORBIDDEN, "this upload URL is not valid");
    if (time_now_ms() > m->upload_expires_at)
        return lark_err_set(&r->err, LARK_EFORBIDDEN,
                            "this upload URL has expired; ask POST /v1/media/uploads again");
    if (m->ready)
        return lark_err_set(&r->err, LARK_ECONFLICT, "these bytes are uploaded already");
    return 0;
}

int h_media_put(struct req *r)
{
    const char *id = r->params[0];
    struct store_media m = {0};
    struct spool sp = SPOOL_INIT;
    char sha[MEDIA_SHA256_HEX];
    int64_t t0 = time_mono_ns();
    int slot = 0, rc;

    r->body_unread = 1; /* until attach_spool has read it */
    /* a bucket takes its uploads itself (presigned PUT) */
    if (blob_direct(r->app->blob) || !ids_valid_media(id, strlen(id)))
        return lark_err_set(&r->err, LARK_ENOTFOUND, "no such upload");
    rc = store_media_get(r->db, id, "", &m, &r->err);
    if (rc == LARK_ENOTFOUND)
        lark_err_set(&r->err, rc, "no such upload (expired?)");
    if (rc || (rc = put_allowed(r, &m)) || (rc = attach_slot_take(r)))
        goto out;
    slot = 1;
    rc = attach_spool(r, (uint64_t)m.size, &sp, sha);
    if (rc == 0 && (sp.size != (uint64_t)m.size || strcmp(sha, m.sha256) != 0))
        rc = lark_err_set(&r->err, LARK_EINVAL,
                          "the bytes are not the %lld bytes with the sha256 declared",
                          (long long)m.size);
    if (rc == 0)
        rc = commit_ready(r, &m, &sp);
    if (rc)
        goto out;
    log_info("media upload id=%s user=%s size=%lld type=%s two-step ms=%.1f", id, m.uploader,
             (long long)m.size, m.content_type, (double)(time_mono_ns() - t0) / 1e6);
    reply_media(r, 200, &m);
out:
    spool_release(&sp);
    store_media_release(&m);
    if (slot)
        attach_slot_give(r->app);
    return rc;
}

int h_media_get(struct req *r)
{
    const char *id = r->params[0];
    struct store_media m = {0};
    struct blob_serve srv = {0};
    struct buf disp;
    int rc;

    if (!ids_valid_media(id, strlen(id)))
        return lark_err_set(&r->err, LARK_ENOTFOUND, "no such media");
    rc = store_media_get(r->db, id, r->user, &m, &r->err);
    /* someone else's item and no such item look the same (API.md: 404) */
    if (rc == LARK_ENOTFOUND || (rc == 0 && !m.readable))
        rc = lark_err_set(&r->err, LARK_ENOTFOUND, "no such media");
    if (rc == 0)
        rc = attach_confirm(r->app, r->db, &m, &r->err);
    if (rc == 0 && !m.ready)
        rc = lark_err_set(&r->err, LARK_EMEDIAPENDING, "media %s is not uploaded yet", id);
    if (rc == 0)
        rc = blob_serve(r->app->blob, m.skey, m.content_type, m.name, &srv, &r->err);
    if (rc == 0 && srv.path) {
        buf_init(&disp, MEDIA_DISPOSITION_MAX);
        rc = media_disposition(&disp, m.content_type, m.name);
        if (rc == 0)
            reply_sendfile(r, srv.path, m.content_type, m.sha256, disp.data);
        buf_release(&disp);
    } else if (rc == 0) {
        reply_redirect(r, srv.url);
    }
    blob_serve_release(&srv);
    store_media_release(&m);
    return rc;
}
