/*
 * keyset.h - the keys a token may be signed with, from the configuration.
 *
 * Why several: rotating a key must not log everybody out. The identity
 * provider starts signing with a new key while tokens signed with the old
 * one are still in use, so for a while both must verify; then the old one
 * is removed. Keys are told apart by the token header's "kid" (RFC 7515
 * 4.1.4). Sources, all of the one algorithm jwt_alg:
 *
 *   HS256   jwt_secret         the key without a kid (ignored while it is
 *                              the development secret and a secrets file
 *                              is set: that default must never verify
 *                              beside real keys)
 *           jwt_secrets_file   "kid secret" lines, '#' comments
 *   RS256,  jwt_key_file       a PEM public key: the key without a kid
 *   ES256   jwt_jwks_file      a JWKS (core/jwk.h): keys by kid
 *
 * At most one key has no kid, kids are unique, secrets are at least
 * KEYSET_SECRET_MIN bytes, and there is at least one key. A keyset is built
 * once and then only read, so any thread may use it.
 */
#ifndef LARK_KEYSET_H
#define LARK_KEYSET_H

#include <jwt.h>
#include <stddef.h>

struct config;
struct lark_err;

/* HS256 secrets shorter than this are refused (RFC 7518 3.2: the key is at
 * least as long as the hash; 16 bytes is lark's long-standing floor). */
#define KEYSET_SECRET_MIN 16
/* Keys a set may hold: a rotation needs two or three; an identity
 * provider's JWKS a handful. A token without a kid may be tried against
 * each, so the number also bounds the work one bad token can cause. */
#define KEYSET_MAX 32
/* Longest kid kept (longer ones are refused in files; in tokens, unknown). */
#define KEYSET_KID_MAX 128

struct keyset_key {
    char *kid;          /* NULL: the key without a kid */
    unsigned char *key; /* HS256: the secret; RS256/ES256: a PEM public key; NUL-terminated */
    size_t len;         /* bytes of key, without the NUL */
};

struct keyset {
    jwt_alg_t alg;        /* JWT_ALG_HS256, _RS256 or _ES256: every key's */
    struct keyset_key *v; /* owned */
    size_t n;
};

/*
 * Load the keys cfg names (reads the files). Returns 0, or LARK_EINVAL with
 * err naming the key or line. On error ks is empty. The caller releases it.
 */
int keyset_load(const struct config *cfg, struct keyset *ks, struct lark_err *err);

/* Free the keys (secrets are wiped first). Accepts an empty set. */
void keyset_release(struct keyset *ks);

/* The key with this kid (kid NULL: the key without one), or NULL. */
const struct keyset_key *keyset_find(const struct keyset *ks, const char *kid);

/*
 * "HS256 keys: k1, k2, (no kid)" into out (cap bytes): what a log line may
 * say about the set. Never a secret.
 */
void keyset_describe(const struct keyset *ks, char *out, size_t cap);

#endif
