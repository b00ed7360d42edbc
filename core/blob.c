/*
 * blob.c - media storage: back-end selection, dispatch, the removal
 * protocol and the spool sweep (blob.h).
 */
#include "core/blob.h"

#include "core/blob_impl.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/spool.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int blob_mkdirs(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;

    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST)
            rc = -1;
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

int blob_base_init(struct blob *b, const struct blob_ops *ops, const char *dir,
                   struct lark_err *err)
{
    char *spool = xasprintf("%s/tmp", dir);
    char real[PATH_MAX], msg[128];

    b->ops = ops;
    b->spool_dir = NULL;
    /* absolute: lighttpd is handed paths under it and may run elsewhere */
    if (blob_mkdirs(spool) != 0 || !realpath(spool, real)) {
        log_error("media: cannot make %s: %s", spool, log_errno(errno, msg, sizeof(msg)));
        free(spool);
        return lark_err_set(err, LARK_ESTORAGE, "cannot make the media spool directory");
    }
    free(spool);
    b->spool_dir = xstrdup(real);
    return 0;
}

void blob_base_release(struct blob *b)
{
    free(b->spool_dir);
    b->spool_dir = NULL;
}

int blob_open(const struct config *cfg, struct blob **out, struct lark_err *err)
{
    const struct blob_ops *ops =
        strcmp(cfg->media_storage, "s3") == 0 ? &blob_s3_ops : &blob_local_ops;
    *out = NULL;
    return ops->open(cfg, out, err);
}

void blob_close(struct blob *b)
{
    if (b)
        b->ops->close(b);
}

const char *blob_backend(const struct blob *b)
{
    return b->ops->name;
}

const char *blob_spool_dir(const struct blob *b)
{
    return b->spool_dir;
}

const char *blob_key(const struct blob *b, const char *id, const char *sha256)
{
    return b->ops->content_addressed ? sha256 : id;
}

int blob_commit(struct blob *b, const char *path, const char *key, uint64_t size,
                const char *sha256, const char *type, struct lark_err *err)
{
    return b->ops->commit(b, path, key, size, sha256, type, err);
}

int blob_serve(struct blob *b, const char *key, const char *type, const char *name,
               struct blob_serve *out, struct lark_err *err)
{
    out->path = out->url = NULL;
    return b->ops->serve(b, key, type, name, out, err);
}

void blob_serve_release(struct blob_serve *s)
{
    free(s->path);
    free(s->url);
    s->path = s->url = NULL;
}

int blob_direct(const struct blob *b)
{
    return b->ops->presign_put != NULL;
}

int blob_presign_put(struct blob *b, const char *key, const char *type, uint64_t size,
                     const char *sha256, int ttl_s, struct blob_put *out, struct lark_err *err)
{
    out->url = NULL;
    out->headers = NULL;
    if (!b->ops->presign_put)
        return lark_err_set(err, LARK_ENOTFOUND, "this storage takes no direct uploads");
    return b->ops->presign_put(b, key, type, size, sha256, ttl_s, out, err);
}

void blob_put_release(struct blob_put *p)
{
    free(p->url);
    json_decref(p->headers);
    p->url = NULL;
    p->headers = NULL;
}

int blob_confirm(struct blob *b, const char *key, uint64_t size, const char *sha256, int *stored,
                 struct lark_err *err)
{
    *stored = 0;
    return b->ops->confirm ? b->ops->confirm(b, key, size, sha256, stored, err) : 0;
}

int blob_remove(struct blob *b, const char *key, blob_used_fn used, void *arg, struct lark_err *err)
{
    char *aside = NULL;
    int in_use = 0;
    int rc = b->ops->hide(b, key, &aside, err);

    if (rc || !aside)
        return rc;
    /* Out of sight now; a media row that names the key again (an upload
     * of the same bytes, which names it before its file lands) keeps it. */
    if (used(arg, key, &in_use) != 0 || in_use)
        rc = b->ops->restore(b, key, aside, err);
    else
        rc = b->ops->purge(b, key, aside, err);
    free(aside);
    return rc;
}

void blob_sweep_spool(struct blob *b, int64_t idle_s)
{
    DIR *d = opendir(b->spool_dir);
    struct dirent *e;
    time_t cutoff = time(NULL) - (time_t)idle_s;
    unsigned removed = 0;

    if (!d)
        return;
    while ((e = readdir(d))) {
        struct stat st;
        char *path;
        if (strncmp(e->d_name, SPOOL_PREFIX, strlen(SPOOL_PREFIX)) != 0 &&
            strncmp(e->d_name, BLOB_ASIDE_PREFIX, strlen(BLOB_ASIDE_PREFIX)) != 0)
            continue;
        path = xasprintf("%s/%s", b->spool_dir, e->d_name);
        /* untouched since the cutoff: its writer is gone (spool.h) */
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < cutoff &&
            unlink(path) == 0)
            removed++;
        free(path);
    }
    closedir(d);
    if (removed)
        log_info("media spool swept removed=%u", removed);
}
