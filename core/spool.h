/*
 * spool.h - an upload on its way to storage: a temporary file that is
 * written as the bytes arrive, hashed (SHA-256) as it is written, and made
 * durable (fsync) before anyone may rename it to its real name.
 *
 * Why: API.md's uploads may be large (media_max_bytes, 25 MiB by default)
 * and larkd must not hold them in memory: the body goes from the FastCGI
 * stream to this file a chunk at a time (LIMIT_MEDIA_CHUNK), and its hash,
 * which names it in content-addressed storage and which the client may
 * have declared, is known the moment the last byte is written. The file
 * lives in the spool directory ("up-" + 16 random hex digits, created
 * exclusively, mode 0640); a process that dies mid-upload leaves it there,
 * never under a real name, and the retention sweep removes it once it has
 * been idle for LIMIT_MEDIA_SPOOL_IDLE_S (blob.h).
 *
 * Ownership: the caller owns the struct; spool_release closes, deletes the
 * file if it is still there and frees. One thread at a time.
 */
#ifndef LARK_SPOOL_H
#define LARK_SPOOL_H

#include "core/media.h"

#include <stdint.h>

struct lark_err;
typedef struct evp_md_ctx_st EVP_MD_CTX;

/* Spool files start with this; the sweep recognizes them by it. */
#define SPOOL_PREFIX "up-"

struct spool {
    int fd;         /* open for writing until spool_finish, else -1 */
    char *path;     /* owned: the temporary file, NULL before spool_open */
    EVP_MD_CTX *md; /* the running SHA-256, NULL after spool_finish */
    uint64_t size;  /* bytes written so far */
};

/* A spool not opened yet (spool_release accepts it). */
#define SPOOL_INIT                                                                                 \
    {                                                                                              \
        -1, NULL, NULL, 0                                                                          \
    }

/*
 * Create a new spool file in dir. 0, or LARK_ESTORAGE (the directory
 * cannot be written: logged). The struct is ready for spool_release
 * either way.
 */
int spool_open(struct spool *sp, const char *dir, struct lark_err *err);

/* Append n bytes and hash them. 0, or LARK_ESTORAGE (disk full, I/O
 * error: logged). */
int spool_write(struct spool *sp, const void *data, size_t n, struct lark_err *err);

/*
 * All bytes are in: fsync and close the file (its path stays valid) and
 * give the SHA-256 of its contents as lowercase hex. 0, or LARK_ESTORAGE.
 */
int spool_finish(struct spool *sp, char sha256[MEDIA_SHA256_HEX], struct lark_err *err);

/* Close, remove the file if it still exists (a rename took it, or not),
 * free. Accepts SPOOL_INIT and a released struct. */
void spool_release(struct spool *sp);

#endif
