/*
 * attach.h - what larkd does with media between HTTP and storage, shared
 * by the media handlers (h_media.c) and the send action (actions.c):
 * receiving an upload into a spool file a chunk at a time, limiting how
 * many uploads it receives at once, confirming an item a client uploaded
 * straight to the storage, and the media list a message carries.
 *
 * Why uploads are limited apart from the per-user rate: an upload through
 * larkd holds a worker thread for as long as its client takes to send the
 * bytes (conf/lighttpd.conf streams request bodies to larkd, so that a 413
 * is answered before the body is sent), and the workers must stay free for
 * short requests. So at most media_uploads_max uploads are received at
 * once; the others are told to retry (429 with Retry-After). Large or
 * many uploads belong on S3, where clients PUT straight to the bucket.
 *
 * Any worker thread, with its own store connection.
 */
#ifndef LARK_ATTACH_H
#define LARK_ATTACH_H

#include "core/media.h"

#include <stddef.h>
#include <stdint.h>

struct app;
struct lark_err;
struct req;
struct spool;
struct store_conn;
struct store_media;

/*
 * Take one of the media_uploads_max slots for an upload through larkd:
 * 0, or LARK_ERATE (with r->retry_after) when every slot is taken.
 * attach_slot_give returns it.
 */
int attach_slot_take(struct req *r);
void attach_slot_give(struct app *app);

/*
 * Read the body of r - Content-Length bytes, or to its end when it has
 * none - into sp, opened in the storage's spool directory, at most max
 * bytes, and finish it (spool_finish: durable and hashed into sha256).
 * Errors: LARK_EMEDIALARGE (over max: before reading anything when the
 * Content-Length says so), LARK_EINVAL (the body ended early, or a bad
 * Content-Length), LARK_ESTORAGE. The caller releases sp either way.
 */
int attach_spool(struct req *r, uint64_t max, struct spool *sp, char sha256[MEDIA_SHA256_HEX]);

/*
 * m is pending: if its client uploaded the bytes straight to the storage
 * (blob_direct) and they are there as declared, it is ready now (in the
 * store, and m->ready = 1). Otherwise m stays pending. 0 or an error.
 */
int attach_confirm(struct app *app, struct store_conn *db, struct store_media *m,
                   struct lark_err *err);

/*
 * The media list a message of user shows for ids (n of them, distinct,
 * already well-formed): *json, a compact JSON array of {id, content_type,
 * size, sha256, name}, the caller frees. Errors: LARK_EBADMEDIA (unknown
 * or someone else's), LARK_EMEDIAPENDING (not uploaded yet), and the
 * store's and storage's.
 */
int attach_message_list(struct app *app, struct store_conn *db, const char *user,
                        const char *const *ids, size_t n, char **json, struct lark_err *err);

#endif
