/*
 * keyset.c - build the key list from jwt_secret, jwt_secrets_file,
 * jwt_key_file and jwt_jwks_file.
 */
#include "core/keyset.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/jwk.h"
#include "core/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A PEM public key is a few hundred bytes; this refuses a wrong file. */
#define KEYSET_PEM_MAX (64 * 1024)
/* A secrets file line: a kid, blanks and a secret. */
#define KEYSET_LINE_MAX 1024

static int set(const char *s)
{
    return s && *s;
}

/* Add a key, taking ownership of kid and key; refuses a second key with
 * the same kid (or a second one without). */
static int add(struct keyset *ks, char *kid, unsigned char *key, size_t len, struct lark_err *err)
{
    if (keyset_find(ks, kid) || ks->n == KEYSET_MAX) {
        int rc = ks->n == KEYSET_MAX
                     ? lark_err_set(err, LARK_EINVAL, "more than %d keys", KEYSET_MAX)
                     : lark_err_set(err, LARK_EINVAL, "two keys with kid %s",
                                    kid ? kid : "(none): one key at most may have no kid");
        if (key)
            memset(key, 0, len);
        free(key);
        free(kid);
        return rc;
    }
    if (!ks->v)
        ks->v = xcalloc(KEYSET_MAX, sizeof(*ks->v));
    ks->v[ks->n++] = (struct keyset_key){kid, key, len};
    return 0;
}

static int kid_ok(const char *kid, size_t len)
{
    if (len == 0 || len > KEYSET_KID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)kid[i]))
            return 0;
    return 1;
}

static int add_secret(struct keyset *ks, const char *kid, size_t kid_len, const char *secret,
                      const char *where, struct lark_err *err)
{
    if (strlen(secret) < KEYSET_SECRET_MIN)
        return lark_err_set(err, LARK_EINVAL, "%s must be at least %d bytes", where,
                            KEYSET_SECRET_MIN);
    return add(ks, kid ? xstrndup(kid, kid_len) : NULL, (unsigned char *)xstrdup(secret),
               strlen(secret), err);
}

/* "kid secret" lines; blank lines and '#' comments are skipped. */
static int load_secrets(struct keyset *ks, const char *path, struct lark_err *err)
{
    char line[KEYSET_LINE_MAX + 2];
    int lineno = 0, rc = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return lark_err_set(err, LARK_EINVAL, "cannot open jwt_secrets_file %s", path);
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        char where[64];
        char *p = line, *kid, *end;
        size_t n = strlen(line);
        lineno++;
        if (n > KEYSET_LINE_MAX) {
            rc = lark_err_set(err, LARK_EINVAL, "%s:%d: line too long", path, lineno);
            break;
        }
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        kid = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        end = p;
        while (isspace((unsigned char)*p))
            p++;
        if (!kid_ok(kid, (size_t)(end - kid)) || *p == '\0') {
            rc = lark_err_set(err, LARK_EINVAL, "%s:%d: expected \"kid secret\"", path, lineno);
            break;
        }
        snprintf(where, sizeof(where), "line %d's secret", lineno);
        rc = add_secret(ks, kid, (size_t)(end - kid), p, where, err);
        if (rc) {
            char why[LARK_ERR_MSG_MAX];
            snprintf(why, sizeof(why), "%s", err ? err->msg : "");
            rc = lark_err_set(err, LARK_EINVAL, "%s: %s", path, why);
        }
    }
    memset(line, 0, sizeof(line));
    fclose(f);
    return rc;
}

static int load_pem(struct keyset *ks, const char *path, struct lark_err *err)
{
    unsigned char *key;
    struct buf b;
    size_t n;
    int rc;

    buf_init(&b, KEYSET_PEM_MAX);
    rc = buf_read_file(&b, path, err);
    if (rc == 0 && b.len == 0)
        rc = lark_err_set(err, LARK_EINVAL, "jwt_key_file %s is empty", path);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    key = (unsigned char *)buf_detach(&b, &n);
    return add(ks, NULL, key, n, err);
}

static int load_jwks(struct keyset *ks, const char *path, struct lark_err *err)
{
    struct jwk_key *keys = NULL;
    size_t n = 0;
    int rc = jwk_load(path, ks->alg == JWT_ALG_RS256 ? JWK_RS256 : JWK_ES256, KEYSET_MAX, &keys, &n,
                      err);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (keys[i].kid && !kid_ok(keys[i].kid, strlen(keys[i].kid))) {
            rc = lark_err_set(err, LARK_EINVAL, "%s: a kid is empty, too long or has blanks", path);
            break;
        }
        rc = add(ks, keys[i].kid, (unsigned char *)keys[i].pem, strlen(keys[i].pem), err);
        keys[i].kid = NULL; /* taken, even on error */
        keys[i].pem = NULL;
    }
    jwk_keys_free(keys, n);
    return rc;
}

/* jwt_secret is a key unless it is the unchanged development default
 * beside a secrets file. */
static int load_hs256(const struct config *cfg, struct keyset *ks, struct lark_err *err)
{
    int rc = 0;

    if (set(cfg->jwt_key_file) || set(cfg->jwt_jwks_file))
        return lark_err_set(err, LARK_EINVAL,
                            "jwt_key_file and jwt_jwks_file hold public keys: HS256 takes "
                            "jwt_secret and jwt_secrets_file");
    if (!(set(cfg->jwt_secrets_file) && cfg->jwt_secret &&
          strcmp(cfg->jwt_secret, CONFIG_DEV_SECRET) == 0))
        rc = add_secret(ks, NULL, 0, cfg->jwt_secret ? cfg->jwt_secret : "", "jwt_secret", err);
    if (rc == 0 && set(cfg->jwt_secrets_file))
        rc = load_secrets(ks, cfg->jwt_secrets_file, err);
    return rc;
}

static int load_public(const struct config *cfg, struct keyset *ks, struct lark_err *err)
{
    int rc = 0;

    if (set(cfg->jwt_secrets_file))
        return lark_err_set(err, LARK_EINVAL, "jwt_secrets_file holds HS256 secrets, not %s keys",
                            cfg->jwt_alg);
    if (!set(cfg->jwt_key_file) && !set(cfg->jwt_jwks_file))
        return lark_err_set(err, LARK_EINVAL, "jwt_key_file or jwt_jwks_file is required for %s",
                            cfg->jwt_alg);
    if (set(cfg->jwt_key_file))
        rc = load_pem(ks, cfg->jwt_key_file, err);
    if (rc == 0 && set(cfg->jwt_jwks_file))
        rc = load_jwks(ks, cfg->jwt_jwks_file, err);
    return rc;
}

int keyset_load(const struct config *cfg, struct keyset *ks, struct lark_err *err)
{
    const char *alg = cfg->jwt_alg ? cfg->jwt_alg : "";
    int rc;

    memset(ks, 0, sizeof(*ks));
    if (strcmp(alg, "HS256") == 0) {
        ks->alg = JWT_ALG_HS256;
        rc = load_hs256(cfg, ks, err);
    } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
        ks->alg = alg[0] == 'R' ? JWT_ALG_RS256 : JWT_ALG_ES256;
        rc = load_public(cfg, ks, err);
    } else {
        rc = lark_err_set(err, LARK_EINVAL, "jwt_alg must be HS256, RS256 or ES256");
    }
    if (rc == 0 && ks->n == 0)
        rc = lark_err_set(err, LARK_EINVAL, "no key: the key files hold no %s key", alg);
    if (rc)
        keyset_release(ks);
    return rc;
}

void keyset_release(struct keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        memset(ks->v[i].key, 0, ks->v[i].len);
        free(ks->v[i].key);
        free(ks->v[i].kid);
    }
    free(ks->v);
    ks->v = NULL;
    ks->n = 0;
}

const struct keyset_key *keyset_find(const struct keyset *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n; i++) {
        const char *k = ks->v[i].kid;
        if ((!kid && !k) || (kid && k && strcmp(kid, k) == 0))
            return &ks->v[i];
    }
    return NULL;
}

void keyset_describe(const struct keyset *ks, char *out, size_t cap)
{
    size_t used = 0;
    int n = snprintf(out, cap, "%s keys:", jwt_alg_str(ks->alg));

    for (size_t i = 0; n >= 0 && (size_t)n < cap - used && i < ks->n; i++) {
        used += (size_t)n;
        n = snprintf(out + used, cap - used, "%s %s", i ? "," : "",
                     ks->v[i].kid ? ks->v[i].kid : "(no kid)");
    }
}
