/*
 * blob.h - where the bytes of media live (API.md "Media (attachments)"):
 * a directory on this host (blob_local.c) or an S3-compatible bucket that
 * every host shares (blob_s3.c), behind one table of functions
 * (blob_impl.h). The media's metadata - who uploaded it, its type, size,
 * hash, and which messages name it - is in the store like everything else
 * (store.h "media"); this module only moves bytes and says how to serve
 * them.
 *
 * The life of an item's bytes:
 *   - an upload through larkd is spooled (spool.h) and then committed to
 *     its key: renamed into place (a directory) or PUT to the bucket;
 *   - a two-step upload may go straight to the bucket (blob_presign_put),
 *     and is confirmed afterwards (blob_confirm) - a directory takes its
 *     two-step uploads through larkd instead;
 *   - a download is handed to lighttpd (X-Sendfile of the file's path) or
 *     redirected to a presigned GET of the bucket (blob_serve): the bytes
 *     never pass through larkd;
 *   - an item no message names is removed after the retention period
 *     (blob_remove, called by the sweep).
 *
 * Keys: a directory is content-addressed (the key is the SHA-256, the file
 * DIR/ab/abcd...): one upload of the same bytes replaces the file with an
 * identical one, and a file is removed only when no media row names its
 * key any more (blob_remove's check). A bucket is keyed by media id: the
 * client that holds a presigned PUT may only ever write its own item.
 *
 * Crashes: a directory only ever renames a complete, fsynced spool file
 * into place, so a crash leaves at most a spool file (removed once idle by
 * blob_sweep_spool), never half a file under a real name.
 *
 * Errors: 0 or a LARK_E* code with err filled; LARK_ESTORAGE means the
 * storage failed or is unreachable (logged with the detail). Every network
 * call is bounded (media_s3_timeout, LIMIT_S3_CONNECT_S, LIMIT_S3_STALL_S).
 *
 * Threads: struct blob is read-only after blob_open and may be used by any
 * thread (each call makes its own connection). blob_open and blob_close
 * run in the main thread, before and after the others (libcurl's global
 * set-up is not thread-safe).
 */
#ifndef LARK_BLOB_H
#define LARK_BLOB_H

#include <jansson.h>
#include <stdint.h>

struct blob;
struct config;
struct lark_err;

/* How a download is served; exactly one of the two is set, owned. */
struct blob_serve {
    char *path; /* a file for lighttpd to send (X-Sendfile) */
    char *url;  /* a presigned GET to redirect to */
};

/* Where the client sends a two-step upload itself. */
struct blob_put {
    char *url;       /* owned: a presigned PUT URL */
    json_t *headers; /* owned: {name: value} the client must send with it */
};

/*
 * The storage cfg->media_storage names, with its spool directory made if
 * missing. 0, LARK_EINVAL (cannot be used: the detail says why) or
 * LARK_ESTORAGE.
 */
int blob_open(const struct config *cfg, struct blob **out, struct lark_err *err);

/* Free. Accepts NULL. */
void blob_close(struct blob *b);

/* "local" or "s3". */
const char *blob_backend(const struct blob *b);

/* The directory spool files go to (borrowed, absolute). */
const char *blob_spool_dir(const struct blob *b);

/* The key an item is stored under: its sha256 (content-addressed) or its
 * id; borrowed from the arguments. */
const char *blob_key(const struct blob *b, const char *id, const char *sha256);

/*
 * Store the finished spool file at path (spool_finish) under key: size
 * bytes of type whose SHA-256 is sha256. Afterwards the spool file may be
 * gone (renamed) or not (copied): spool_release either way.
 */
int blob_commit(struct blob *b, const char *path, const char *key, uint64_t size,
                const char *sha256, const char *type, struct lark_err *err);

/*
 * How to serve key as type and name (the Content-Disposition). LARK_ENOTFOUND if
 * the bytes are missing where they should be (logged: data loss).
 */
int blob_serve(struct blob *b, const char *key, const char *type, const char *name,
               struct blob_serve *out, struct lark_err *err);
void blob_serve_release(struct blob_serve *s);

/* 1 if clients upload straight to the storage (blob_presign_put works). */
int blob_direct(const struct blob *b);

/*
 * A presigned PUT for an upload of size bytes of type whose SHA-256 is
 * sha256, valid ttl_s seconds: the storage refuses any other length or
 * bytes. LARK_ENOTFOUND when !blob_direct(b).
 */
int blob_presign_put(struct blob *b, const char *key, const char *type, uint64_t size,
                     const char *sha256, int ttl_s, struct blob_put *out, struct lark_err *err);
void blob_put_release(struct blob_put *p);

/*
 * Are key's bytes stored, size bytes with that SHA-256 (a direct upload
 * that came in)? *stored = 0 when not (yet), or when the storage takes no
 * direct uploads.
 */
int blob_confirm(struct blob *b, const char *key, uint64_t size, const char *sha256, int *stored,
                 struct lark_err *err);

/* Whether a media row still names key (*used), asked by blob_remove
 * between taking the bytes out of sight and deleting them. 0 or an error
 * (the bytes are then put back). */
typedef int (*blob_used_fn)(void *arg, const char *key, int *used);

/*
 * Remove key's bytes unless used() says a media row names the key again:
 * a directory first renames the file aside, then asks, then deletes it or
 * renames it back - so an upload of the same bytes that lands meanwhile
 * (it names the key before it renames its file into place) is never lost.
 * Missing bytes are not an error.
 */
int blob_remove(struct blob *b, const char *key, blob_used_fn used, void *arg,
                struct lark_err *err);

/* Delete spool files (and files set aside by blob_remove) untouched for
 * idle_s seconds: what uploads and removals that died left. */
void blob_sweep_spool(struct blob *b, int64_t idle_s);

#endif
