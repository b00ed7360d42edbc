/*
 * blob_local.c - media in a directory of this host (blob.h): DIR/ab/<sha256>,
 * content-addressed, spool files in DIR/tmp on the same file system so
 * that a finished upload is renamed into place, never copied.
 *
 * Durability: the spool file was fsynced (spool_finish) before the rename,
 * and the directory that receives it is fsynced after, so a file under a
 * real name is whole and its name survives a power cut once the upload
 * has been answered. Serving: lighttpd sends the file (X-Sendfile, with
 * Range and If-None-Match; conf/lighttpd.conf restricts x-sendfile-docroot
 * to DIR); larkd only checks access and names the path.
 */
#include "core/blob_impl.h"

#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/media.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct local_blob {
    struct blob base;
    char *dir; /* absolute: the media directory */
};

static int local_fail(const char *what, const char *path, int errnum, struct lark_err *err)
{
    char msg[128];
    log_error("media %s %s: %s", what, path, log_errno(errnum, msg, sizeof(msg)));
    return lark_err_set(err, LARK_ESTORAGE, "media storage failed");
}

/* DIR/ab for key "ab..."; caller frees. */
static char *local_subdir(const struct local_blob *lb, const char *key)
{
    return xasprintf("%s/%.2s", lb->dir, key);
}

static char *local_path(const struct local_blob *lb, const char *key)
{
    return xasprintf("%s/%.2s/%s", lb->dir, key, key);
}

/* A content-addressed key is a SHA-256: anything else would let a path
 * escape the directory. */
static int local_key_ok(const char *key, struct lark_err *err)
{
    if (media_sha256_valid(key, strlen(key)))
        return 0;
    return lark_err_set(err, LARK_EINTERNAL, "a local media key that is not a sha256");
}

static int local_open(const struct config *cfg, struct blob **out, struct lark_err *err)
{
    struct local_blob *lb = xcalloc(1, sizeof(*lb));
    char real[PATH_MAX];
    int rc = blob_base_init(&lb->base, &blob_local_ops, cfg->media_dir, err);

    if (rc == 0 && !realpath(cfg->media_dir, real))
        rc = local_fail("directory", cfg->media_dir, errno, err);
    if (rc) {
        blob_base_release(&lb->base);
        free(lb);
        return rc;
    }
    lb->dir = xstrdup(real);
    *out = &lb->base;
    return 0;
}

static void local_close(struct blob *b)
{
    struct local_blob *lb = (struct local_blob *)b;
    free(lb->dir);
    blob_base_release(b);
    free(lb);
}

/* fsync a directory, so that a rename into it survives a power cut. */
static int sync_dir(const char *dir, struct lark_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0)
        rc = local_fail("fsync", dir, errno, err);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int local_commit(struct blob *b, const char *path, const char *key, uint64_t size,
                        const char *sha256, const char *type, struct lark_err *err)
{
    struct local_blob *lb = (struct local_blob *)b;
    char *sub = NULL, *dest = NULL;
    int rc = local_key_ok(key, err);

    (void)size;
    (void)sha256;
    (void)type;
    if (rc)
        return rc;
    sub = local_subdir(lb, key);
    dest = local_path(lb, key);
    if (mkdir(sub, 0750) != 0 && errno != EEXIST)
        rc = local_fail("mkdir", sub, errno, err);
    /* the same bytes again replace the file with an identical one */
    else if (rename(path, dest) != 0)
        rc = local_fail("rename", dest, errno, err);
    else
        rc = sync_dir(sub, err);
    free(sub);
    free(dest);
    return rc;
}

static int local_serve(struct blob *b, const char *key, const char *type, const char *name,
                       struct blob_serve *out, struct lark_err *err)
{
    struct local_blob *lb = (struct local_blob *)b;
    struct stat st;
    char *path;
    int rc = local_key_ok(key, err);

    (void)type;
    (void)name;
    if (rc)
        return rc;
    path = local_path(lb, key);
    if (stat(path, &st) != 0) {
        log_error("media file missing: %s", path);
        free(path);
        return lark_err_set(err, LARK_ENOTFOUND, "no such media");
    }
    out->path = path;
    return 0;
}

static int local_hide(struct blob *b, const char *key, char **aside, struct lark_err *err)
{
    struct local_blob *lb = (struct local_blob *)b;
    unsigned char rnd[8];
    char hex[17], *path;
    int rc = local_key_ok(key, err);

    *aside = NULL;
    if (rc)
        return rc;
    ids_random(rnd, sizeof(rnd));
    media_hex(rnd, sizeof(rnd), hex);
    path = local_path(lb, key);
    *aside = xasprintf("%s/" BLOB_ASIDE_PREFIX "%s", b->spool_dir, hex);
    if (rename(path, *aside) != 0) {
        if (errno != ENOENT)
            rc = local_fail("rename aside", path, errno, err);
        free(*aside);
        *aside = NULL;
    }
    free(path);
    return rc;
}

static int local_purge(struct blob *b, const char *key, const char *aside, struct lark_err *err)
{
    (void)b;
    (void)key;
    if (unlink(aside) != 0 && errno != ENOENT)
        return local_fail("unlink", aside, errno, err);
    return 0;
}

static int local_restore(struct blob *b, const char *key, const char *aside, struct lark_err *err)
{
    struct local_blob *lb = (struct local_blob *)b;
    char *dest = local_path(lb, key);
    int rc = 0;

    /* if an upload put the bytes back meanwhile, this replaces them with
     * identical ones */
    if (rename(aside, dest) != 0)
        rc = local_fail("restore", dest, errno, err);
    free(dest);
    return rc;
}

const struct blob_ops blob_local_ops = {
    .name = "local",
    .content_addressed = 1,
    .open = local_open,
    .close = local_close,
    .commit = local_commit,
    .serve = local_serve,
    .presign_put = NULL,
    .confirm = NULL,
    .hide = local_hide,
    .purge = local_purge,
    .restore = local_restore,
};
