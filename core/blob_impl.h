/*
 * blob_impl.h - what a media storage back end implements (not for
 * handlers): one const struct blob_ops per back end, which embeds struct
 * blob first in its own struct. blob.c selects and dispatches; each
 * function has the contract of the blob_* function of the same name in
 * blob.h, and a NULL entry means the back end has no such thing.
 */
#ifndef LARK_BLOB_IMPL_H
#define LARK_BLOB_IMPL_H

#include "core/blob.h"

struct blob_ops {
    const char *name;      /* "local", "s3" */
    int content_addressed; /* 1: keys are SHA-256s; 0: media ids */
    int (*open)(const struct config *cfg, struct blob **out, struct lark_err *err);
    void (*close)(struct blob *b);
    int (*commit)(struct blob *b, const char *path, const char *key, uint64_t size,
                  const char *sha256, const char *type, struct lark_err *err);
    int (*serve)(struct blob *b, const char *key, const char *type, const char *name,
                 struct blob_serve *out, struct lark_err *err);
    /* NULL: no direct uploads (then confirm is NULL too) */
    int (*presign_put)(struct blob *b, const char *key, const char *type, uint64_t size,
                       const char *sha256, int ttl_s, struct blob_put *out, struct lark_err *err);
    int (*confirm)(struct blob *b, const char *key, uint64_t size, const char *sha256, int *stored,
                   struct lark_err *err);
    /*
     * Removal in three steps (blob_remove): hide takes key's bytes out of
     * sight and says how to find them (*aside, owned, NULL: there were
     * none); then either purge deletes them or restore puts them back
     * under key.
     */
    int (*hide)(struct blob *b, const char *key, char **aside, struct lark_err *err);
    int (*purge)(struct blob *b, const char *key, const char *aside, struct lark_err *err);
    int (*restore)(struct blob *b, const char *key, const char *aside, struct lark_err *err);
};

struct blob {
    const struct blob_ops *ops;
    char *spool_dir; /* owned, absolute: spool files and files set aside */
};

/* Files blob_local sets aside start with this (blob_sweep_spool removes
 * them once idle, like spool files). */
#define BLOB_ASIDE_PREFIX "gc-"

/* mkdir -p path (mode 0750); 0 or -1 with errno. */
int blob_mkdirs(const char *path);

/* Fill the base of a new back end: ops, and spool_dir = DIR/tmp made
 * under dir. 0 or LARK_ESTORAGE. */
int blob_base_init(struct blob *b, const struct blob_ops *ops, const char *dir,
                   struct lark_err *err);
void blob_base_release(struct blob *b);

extern const struct blob_ops blob_local_ops;
extern const struct blob_ops blob_s3_ops;

#endif
