/*
 * spool.c - an upload written to a temporary file, hashed as it goes
 * (spool.h).
 */
#include "core/spool.h"

#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int spool_fail(struct spool *sp, int errnum, const char *what, struct lark_err *err)
{
    char msg[128];
    log_error("media spool %s %s: %s", what, sp->path ? sp->path : "-",
              log_errno(errnum, msg, sizeof(msg)));
    return lark_err_set(err, LARK_ESTORAGE, "media storage cannot take the upload");
}

int spool_open(struct spool *sp, const char *dir, struct lark_err *err)
{
    unsigned char rnd[8];
    char hex[17];

    sp->fd = -1;
    sp->size = 0;
    sp->md = NULL;
    ids_random(rnd, sizeof(rnd));
    media_hex(rnd, sizeof(rnd), hex);
    sp->path = xasprintf("%s/" SPOOL_PREFIX "%s", dir, hex);
    sp->fd = open(sp->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (sp->fd < 0) {
        int rc = spool_fail(sp, errno, "create", err);
        free(sp->path);
        sp->path = NULL; /* not ours: never unlink it */
        return rc;
    }
    sp->md = EVP_MD_CTX_new();
    if (!sp->md || EVP_DigestInit_ex(sp->md, EVP_sha256(), NULL) != 1) {
        log_error("media spool: no SHA-256 context");
        abort(); /* out of memory, as mem.h does */
    }
    return 0;
}

int spool_write(struct spool *sp, const void *data, size_t n, struct lark_err *err)
{
    const char *p = data;
    size_t left = n;

    EVP_DigestUpdate(sp->md, data, n);
    while (left > 0) {
        ssize_t w = write(sp->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return spool_fail(sp, w < 0 ? errno : ENOSPC, "write", err);
        p += w;
        left -= (size_t)w;
    }
    sp->size += n;
    return 0;
}

int spool_finish(struct spool *sp, char sha256[MEDIA_SHA256_HEX], struct lark_err *err)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int fd = sp->fd;

    EVP_DigestFinal_ex(sp->md, digest, &len);
    EVP_MD_CTX_free(sp->md);
    sp->md = NULL;
    media_hex(digest, len, sha256);
    sp->fd = -1;
    /* durable before it may be renamed to its real name: a crash after the
     * rename must not leave a name pointing at blocks never written */
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return spool_fail(sp, e, "fsync", err);
    }
    if (close(fd) != 0)
        return spool_fail(sp, errno, "close", err);
    return 0;
}

void spool_release(struct spool *sp)
{
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = -1;
    if (sp->md)
        EVP_MD_CTX_free(sp->md);
    sp->md = NULL;
    if (sp->path)
        unlink(sp->path); /* ENOENT once storage took it: nothing to do */
    free(sp->path);
    sp->path = NULL;
    sp->size = 0;
}
