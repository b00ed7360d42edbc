/*
 * attach.c - receiving uploads, confirming direct ones, a message's media
 * list (attach.h).
 */
#include "fcgi/attach.h"

#include "core/blob.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/query.h"
#include "core/spool.h"
#include "core/store.h"
#include "fcgi/app.h"
#include "fcgi/http.h"

#include <stdlib.h>
#include <string.h>

int attach_slot_take(struct req *r)
{
    struct app *app = r->app;
    int now = atomic_fetch_add(&app->media_uploads, 1);

    if (now < app->cfg.media_uploads_max)
        return 0;
    atomic_fetch_sub(&app->media_uploads, 1);
    r->retry_after = 1;
    return lark_err_set(&r->err, LARK_ERATE, "%d uploads are arriving already; retry in a second",
                        app->cfg.media_uploads_max);
}

void attach_slot_give(struct app *app)
{
    atomic_fetch_sub(&app->media_uploads, 1);
}

int attach_spool(struct req *r, uint64_t max, struct spool *sp, char sha256[MEDIA_SHA256_HEX])
{
    const char *cl = req_param(r, "CONTENT_LENGTH");
    uint64_t len = UINT64_MAX; /* unknown: to the end of the body */
    char *chunk = NULL;
    int rc;

    if (cl && *cl && parse_u64(cl, UINT64_MAX, &len) != 0)
        return lark_err_set(&r->err, LARK_EINVAL, "bad Content-Length");
    /* before reading a byte: lighttpd streams the body to larkd
     * (conf/lighttpd.conf), so the client hears this before sending it */
    if (len != UINT64_MAX && len > max)
        return lark_err_set(&r->err, LARK_EMEDIALARGE, "the upload is over %llu bytes",
                            (unsigned long long)max);
    rc = spool_open(sp, blob_spool_dir(r->app->blob), &r->err);
    chunk = rc ? NULL : xmalloc(LIMIT_MEDIA_CHUNK);
    while (rc == 0 && sp->size < len) {
        uint64_t left = len - sp->size;
        size_t want = left < LIMIT_MEDIA_CHUNK ? (size_t)left : LIMIT_MEDIA_CHUNK;
        size_t got = req_read(r, chunk, want);
        if (got == 0)
            break;
        if (sp->size + got > max) /* no Content-Length: counted as it comes */
            rc = lark_err_set(&r->err, LARK_EMEDIALARGE, "the upload is over %llu bytes",
                              (unsigned long long)max);
        else
            rc = spool_write(sp, chunk, got, &r->err);
    }
    free(chunk);
    if (rc == 0)
        r->body_unread = 0; /* read to its end (or its early end) */
    if (rc == 0 && len != UINT64_MAX && sp->size < len)
        rc = lark_err_set(&r->err, LARK_EINVAL, "the body ended after %llu of %llu bytes",
                          (unsigned long long)sp->size, (unsigned long long)len);
    if (rc == 0)
        rc = spool_finish(sp, sha256, &r->err);
    return rc;
}

int attach_confirm(struct app *app, struct store_conn *db, struct store_media *m,
                   struct lark_err *err)
{
    int stored = 0;
    int rc;

    if (m->ready || !blob_direct(app->blob))
        return 0;
    rc = blob_confirm(app->blob, m->skey, (uint64_t)m->size, m->sha256, &stored, err);
    if (rc == 0 && stored)
        rc = store_media_ready(db, m->id, err);
    if (rc == 0 && stored)
        m->ready = 1;
    return rc;
}

int attach_message_list(struct app *app, struct store_conn *db, const char *user,
                        const char *const *ids, size_t n, char **json, struct lark_err *err)
{
    json_t *list = json_arr();
    int rc = 0;

    *json = NULL;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct store_media m;
        rc = store_media_get(db, ids[i], user, &m, err);
        if (rc == LARK_ENOTFOUND || (rc == 0 && strcmp(m.uploader, user) != 0))
            rc = lark_err_set(err, LARK_EBADMEDIA, "no media %s of yours", ids[i]);
        if (rc == 0)
            rc = attach_confirm(app, db, &m, err);
        if (rc == 0 && !m.ready)
            rc = lark_err_set(err, LARK_EMEDIAPENDING, "media %s is not uploaded yet", ids[i]);
        if (rc == 0)
            json_push(list, store_media_json(&m, 0));
        store_media_release(&m);
    }
    if (rc == 0)
        *json = json_dump(list, 0, NULL);
    json_decref(list);
    return rc;
}
