/*
 * jwk.c - JWKS parsing with jansson, JWK to PEM with OpenSSL 3.
 */
#include "core/jwk.h"

#include "core/b64url.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JWKS of a few keys is a few KiB; this refuses a wrong file early. */
#define JWK_FILE_MAX (256 * 1024)
/* A base64url member of a key: an RSA modulus of 16384 bits is 2731
 * characters; nothing legitimate is longer. */
#define JWK_FIELD_MAX 4096
/* RFC 7518 3.3: RS256 keys are at least this many bits. */
#define JWK_RSA_MIN_BITS 2048
/* P-256 coordinates are 32 bytes each. */
#define JWK_P256_COORD 32

/* A key's base64url member, decoded; 0, or -1 with err set. */
static int member(json_t *jwk, const char *name, const char *kid, unsigned char **out, size_t *len,
                  struct lark_err *err)
{
    json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > JWK_FIELD_MAX ||
        b64url_decode(json_string_value(v), json_string_length(v), out, len) != 0)
        return lark_err_set(err, LARK_EINVAL, "key %s: '%s' is missing or not base64url",
                            kid ? kid : "(no kid)", name);
    return 0;
}

/* The PEM text of pkey (SubjectPublicKeyInfo), or NULL. */
static char *pkey_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem = NULL;
    long len;

    if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1 && (len = BIO_get_mem_data(bio, &data)) > 0) {
        /* the BIO's bytes are not NUL-terminated: no strndup */
        pem = xmalloc((size_t)len + 1);
        memcpy(pem, data, (size_t)len);
        pem[len] = '\0';
    }
    BIO_free(bio);
    return pem;
}

/* A public key of type ("RSA", "EC") from params, checked; NULL if refused. */
static EVP_PKEY *pkey_from(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *pkey = NULL;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!check || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static int rsa_pem(json_t *jwk, const char *kid, char **pem, struct lark_err *err)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    int rc;

    rc = member(jwk, "n", kid, &n, &nlen, err);
    if (rc == 0)
        rc = member(jwk, "e", kid, &e, &elen, err);
    if (rc)
        goto out;
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1 ||
        !(pkey = pkey_from("RSA", bld))) {
        rc = lark_err_set(err, LARK_EINVAL, "key %s: not a valid RSA public key",
                          kid ? kid : "(no kid)");
        goto out;
    }
    if (EVP_PKEY_get_bits(pkey) < JWK_RSA_MIN_BITS) {
        rc = lark_err_set(err, LARK_EINVAL, "key %s: RSA keys for RS256 have at least %d bits",
                          kid ? kid : "(no kid)", JWK_RSA_MIN_BITS);
        goto out;
    }
    *pem = pkey_pem(pkey);
    if (!*pem)
        rc = lark_err_set(err, LARK_EINVAL, "key %s: cannot write it as PEM",
                          kid ? kid : "(no kid)");
out:
    EVP_PKEY_free(pkey);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return rc;
}

static int ec_pem(json_t *jwk, const char *kid, char **pem, struct lark_err *err)
{
    unsigned char *x = NULL, *y = NULL, point[1 + 2 * JWK_P256_COORD];
    size_t xlen = 0, ylen = 0;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *pkey = NULL;
    int rc;

    if (!json_is_string(json_object_get(jwk, "crv")) ||
        strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256") != 0)
        return lark_err_set(err, LARK_EINVAL, "key %s: ES256 keys are on curve P-256",
                            kid ? kid : "(no kid)");
    rc = member(jwk, "x", kid, &x, &xlen, err);
    if (rc == 0)
        rc = member(jwk, "y", kid, &y, &ylen, err);
    if (rc)
        goto out;
    if (xlen != JWK_P256_COORD || ylen != JWK_P256_COORD) {
        rc = lark_err_set(err, LARK_EINVAL, "key %s: x and y must be %d bytes each",
                          kid ? kid : "(no kid)", JWK_P256_COORD);
        goto out;
    }
    point[0] = 0x04; /* uncompressed (SEC 1 2.3.3) */
    memcpy(point + 1, x, JWK_P256_COORD);
    memcpy(point + 1 + JWK_P256_COORD, y, JWK_P256_COORD);
    bld = OSSL_PARAM_BLD_new();
    if (!bld ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) != 1 ||
        !(pkey = pkey_from("EC", bld))) {
        rc = lark_err_set(err, LARK_EINVAL, "key %s: not a valid P-256 public key",
                          kid ? kid : "(no kid)");
        goto out;
    }
    *pem = pkey_pem(pkey);
    if (!*pem)
        rc = lark_err_set(err, LARK_EINVAL, "key %s: cannot write it as PEM",
                          kid ? kid : "(no kid)");
out:
    EVP_PKEY_free(pkey);
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return rc;
}

/* Why a key is not for alg, or NULL when it is. */
static const char *skip_reason(json_t *jwk, enum jwk_alg alg)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const char *jalg = json_string_value(json_object_get(jwk, "alg"));
    const char *want = alg == JWK_RS256 ? "RS256" : "ES256";

    if (!kty)
        return "no kty";
    if (strcmp(kty, alg == JWK_RS256 ? "RSA" : "EC") != 0)
        return "another key type than jwt_alg's";
    if (use && strcmp(use, "sig") != 0)
        return "not a signing key (use)";
    if (jalg && strcmp(jalg, want) != 0)
        return "another algorithm than jwt_alg (alg)";
    return NULL;
}

static int read_file(const char *path, char **text, struct lark_err *err)
{
    struct buf b;
    int rc;

    buf_init(&b, JWK_FILE_MAX);
    rc = buf_read_file(&b, path, err);
    *text = rc ? NULL : b.data ? buf_detach(&b, NULL) : xstrdup("");
    buf_release(&b);
    return rc;
}

/* Add one JWK to keys if it is for alg. */
static int jwk_one(json_t *jwk, enum jwk_alg alg, size_t max, struct jwk_key *keys, size_t *n,
                   struct lark_err *err)
{
    json_t *kidv = json_object_get(jwk, "kid");
    const char *kid = json_is_string(kidv) ? json_string_value(kidv) : NULL;
    const char *why;
    char *pem = NULL;
    int rc;

    if (!json_is_object(jwk))
        return lark_err_set(err, LARK_EINVAL, "a key is not a JSON object");
    if (kidv && !kid)
        return lark_err_set(err, LARK_EINVAL, "a key's kid is not a string");
    why = skip_reason(jwk, alg);
    if (why) {
        log_info("jwks: key %s skipped: %s", kid ? kid : "(no kid)", why);
        return 0;
    }
    for (size_t i = 0; i < *n; i++)
        if ((!kid && !keys[i].kid) || (kid && keys[i].kid && strcmp(kid, keys[i].kid) == 0))
            return lark_err_set(err, LARK_EINVAL, "two keys with kid %s", kid ? kid : "(none)");
    if (*n == max)
        return lark_err_set(err, LARK_EINVAL, "more than %zu keys", max);
    rc = alg == JWK_RS256 ? rsa_pem(jwk, kid, &pem, err) : ec_pem(jwk, kid, &pem, err);
    if (rc)
        return rc;
    keys[*n].kid = kid ? xstrdup(kid) : NULL;
    keys[*n].pem = pem;
    (*n)++;
    return 0;
}

int jwk_load(const char *path, enum jwk_alg alg, size_t max, struct jwk_key **keys, size_t *n,
             struct lark_err *err)
{
    char *text = NULL;
    json_error_t jerr;
    json_t *root = NULL, *list, *jwk;
    struct jwk_key *v = NULL;
    size_t i, count = 0;
    int rc;

    *keys = NULL;
    *n = 0;
    rc = read_file(path, &text, err);
    if (rc)
        return rc;
    root = json_loads(text, 0, &jerr);
    list = json_object_get(root, "keys");
    if (!json_is_array(list)) {
        rc = lark_err_set(err, LARK_EINVAL, "%s: not a JWKS ({\"keys\": [...]}): %s", path,
                          root ? "no keys array" : jerr.text);
        goto out;
    }
    v = xcalloc(max ? max : 1, sizeof(*v));
    json_array_foreach (list, i, jwk) {
        rc = jwk_one(jwk, alg, max, v, &count, err);
        if (rc) {
            char why[LARK_ERR_MSG_MAX];
            snprintf(why, sizeof(why), "%s", err ? err->msg : "");
            rc = lark_err_set(err, LARK_EINVAL, "%s: %s", path, why);
            goto out;
        }
    }
    *keys = v;
    *n = count;
    v = NULL;
    count = 0;
out:
    jwk_keys_free(v, count);
    json_decref(root);
    free(text);
    return rc;
}

void jwk_keys_free(struct jwk_key *keys, size_t n)
{
    for (size_t i = 0; keys && i < n; i++) {
        free(keys[i].kid);
        free(keys[i].pem);
    }
    free(keys);
}
