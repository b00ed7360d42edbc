/*
 * auth.c - JWT verification over libjwt, with lark's claim rules.
 */
#include "core/auth.h"

#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/mem.h"

#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A PEM public key is a few hundred bytes; this refuses a wrong file. */
#define AUTH_KEY_FILE_MAX (64 * 1024)

struct auth {
    jwt_alg_t alg;      /* the only algorithm accepted */
    unsigned char *key; /* secret (HS256) or PEM public key (RS/ES256) */
    size_t key_len;
    char *aud;  /* NULL: not checked */
    char *iss;  /* NULL: not checked */
    int leeway; /* seconds */
};

static int auth_read_key(const char *path, struct auth *a, struct lark_err *err)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    int rc = 0;

    if (!f)
        return lark_err_set(err, LARK_EINVAL, "cannot open jwt_key_file %s", path);
    a->key = xmalloc(AUTH_KEY_FILE_MAX + 1);
    n = fread(a->key, 1, AUTH_KEY_FILE_MAX + 1, f);
    if (n == 0 || n > AUTH_KEY_FILE_MAX)
        rc = lark_err_set(err, LARK_EINVAL, "jwt_key_file %s is empty or too large", path);
    a->key[n < AUTH_KEY_FILE_MAX ? n : AUTH_KEY_FILE_MAX] = '\0';
    a->key_len = n;
    fclose(f);
    return rc;
}

int auth_new(const struct config *cfg, struct auth **out, struct lark_err *err)
{
    struct auth *a = xcalloc(1, sizeof(*a));
    int rc = 0;

    *out = NULL;
    if (strcmp(cfg->jwt_alg, "HS256") == 0) {
        a->alg = JWT_ALG_HS256;
        if (strlen(cfg->jwt_secret) < 16) {
            rc = lark_err_set(err, LARK_EINVAL, "jwt_secret must be at least 16 bytes");
            goto out;
        }
        a->key = (unsigned char *)xstrdup(cfg->jwt_secret);
        a->key_len = strlen(cfg->jwt_secret);
    } else if (strcmp(cfg->jwt_alg, "RS256") == 0 || strcmp(cfg->jwt_alg, "ES256") == 0) {
        a->alg = cfg->jwt_alg[0] == 'R' ? JWT_ALG_RS256 : JWT_ALG_ES256;
        if (!*cfg->jwt_key_file) {
            rc = lark_err_set(err, LARK_EINVAL, "jwt_key_file is required for %s", cfg->jwt_alg);
            goto out;
        }
        rc = auth_read_key(cfg->jwt_key_file, a, err);
        if (rc)
            goto out;
    } else {
        rc = lark_err_set(err, LARK_EINVAL, "jwt_alg must be HS256, RS256 or ES256");
        goto out;
    }
    a->aud = *cfg->jwt_aud ? xstrdup(cfg->jwt_aud) : NULL;
    a->iss = *cfg->jwt_iss ? xstrdup(cfg->jwt_iss) : NULL;
    a->leeway = cfg->jwt_leeway;
    *out = a;
    a = NULL;
out:
    auth_free(a);
    return rc;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    if (a->key)
        memset(a->key, 0, a->key_len);
    free(a->key);
    free(a->aud);
    free(a->iss);
    free(a);
}

/* RFC 7519 NumericDate: a JSON number of seconds (fractions allowed). */
static int claim_time(json_t *claims, const char *name, int required, double *out,
                      struct lark_err *err)
{
    json_t *v = json_object_get(claims, name);
    if (!v) {
        if (required)
            return lark_err_set(err, LARK_ETOKEN, "the token has no '%s' claim", name);
        return 1;
    }
    if (!json_is_number(v))
        return lark_err_set(err, LARK_ETOKEN, "the '%s' claim must be a number", name);
    *out = json_number_value(v);
    return 0;
}

static int claim_aud_ok(json_t *claims, const char *want)
{
    json_t *v = json_object_get(claims, "aud");
    size_t i;
    json_t *item;

    if (json_is_string(v))
        return strcmp(json_string_value(v), want) == 0;
    if (json_is_array(v))
        json_array_foreach (v, i, item)
            if (json_is_string(item) && strcmp(json_string_value(item), want) == 0)
                return 1;
    return 0;
}

static int auth_check_claims(const struct auth *a, json_t *claims, int64_t now,
                             char user[LIMIT_USER_ID_MAX + 1], struct lark_err *err)
{
    double exp = 0, nbf = 0;
    json_t *sub;
    int rc;

    rc = claim_time(claims, "exp", 1, &exp, err);
    if (rc)
        return rc;
    if (exp + a->leeway <= (double)now)
        return lark_err_set(err, LARK_EEXPIRED, "the token expired");
    rc = claim_time(claims, "nbf", 0, &nbf, err);
    if (rc < 0)
        return rc;
    if (rc == 0 && nbf - a->leeway > (double)now)
        return lark_err_set(err, LARK_ETOKEN, "the token is not valid yet (nbf)");
    if (a->aud && !claim_aud_ok(claims, a->aud))
        return lark_err_set(err, LARK_ETOKEN, "the token's audience is not accepted");
    if (a->iss) {
        json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), a->iss) != 0)
            return lark_err_set(err, LARK_ETOKEN, "the token's issuer is not accepted");
    }
    sub = json_object_get(claims, "sub");
    if (!json_is_string(sub))
        return lark_err_set(err, LARK_ETOKEN, "the token has no 'sub' claim");
    if (!ids_valid_user(json_string_value(sub), json_string_length(sub)))
        return lark_err_set(err, LARK_ETOKEN, "'sub' must be 1-64 characters of [A-Za-z0-9_.@-]");
    memcpy(user, json_string_value(sub), json_string_length(sub) + 1);
    return 0;
}

int auth_verify(const struct auth *a, const char *token, size_t len, int64_t now,
                char user[LIMIT_USER_ID_MAX + 1], struct lark_err *err)
{
    char copy[LIMIT_TOKEN_MAX + 1];
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL;
    int rc;

    if (len == 0)
        return lark_err_set(err, LARK_ENOAUTH, "an access token is required");
    if (len > LIMIT_TOKEN_MAX)
        return lark_err_set(err, LARK_ETOKEN, "the token is longer than %d bytes", LIMIT_TOKEN_MAX);
    if (memchr(token, '\0', len))
        return lark_err_set(err, LARK_ETOKEN, "the token is malformed");
    memcpy(copy, token, len);
    copy[len] = '\0';
    if (jwt_decode(&jwt, copy, a->key, (int)a->key_len) != 0 || !jwt) {
        rc = lark_err_set(err, LARK_ETOKEN, "the token is malformed or its signature is bad");
        goto out;
    }
    /* libjwt verified with whatever alg the token named; only ours counts. */
    if (jwt_get_alg(jwt) != a->alg) {
        rc = lark_err_set(err, LARK_ETOKEN, "the token's algorithm is not accepted");
        goto out;
    }
    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants ? json_loads(grants, 0, NULL) : NULL;
    if (!json_is_object(claims)) {
        rc = lark_err_set(err, LARK_ETOKEN, "the token's claims are not an object");
        goto out;
    }
    rc = auth_check_claims(a, claims, now, user, err);
out:
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    return rc;
}

int auth_mint(const struct auth *a, const char *user, int64_t now, int ttl, char **token,
              struct lark_err *err)
{
    jwt_t *jwt = NULL;
    int rc = 0;

    *token = NULL;
    if (!ids_valid_user(user, strlen(user)))
        return lark_err_set(err, LARK_EFIELD, "a user id is 1-64 characters of [A-Za-z0-9_.@-]");
    if (a->alg != JWT_ALG_HS256)
        return lark_err_set(err, LARK_EINVAL, "only an HS256 secret can sign tokens");
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", user) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl)) != 0 ||
        (a->aud && jwt_add_grant(jwt, "aud", a->aud) != 0) ||
        (a->iss && jwt_add_grant(jwt, "iss", a->iss) != 0) ||
        jwt_set_alg(jwt, JWT_ALG_HS256, a->key, (int)a->key_len) != 0 ||
        !(*token = jwt_encode_str(jwt)))
        rc = lark_err_set(err, LARK_EINTERNAL, "libjwt could not sign the token");
    jwt_free(jwt);
    return rc;
}
