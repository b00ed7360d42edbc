/*
 * auth.c - JWT verification over libjwt, with lark's claim rules.
 */
#include "core/auth.h"

#include "core/b64url.h"
#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/keyset.h"
#include "core/mem.h"

#include <jansson.h>
#include <jwt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The settings one verification uses: built whole, never changed, freed
 * when the last verification that took it is done. */
struct auth_keys {
    atomic_int refs; /* the verifier's own reference + one per verification */
    struct keyset ks;
    char *aud;  /* NULL: not checked */
    char *iss;  /* NULL: not checked */
    int leeway; /* seconds */
};

/* What auth_reload changes, apart from the const handle callers hold. */
struct auth_state {
    pthread_mutex_t mu;    /* guards cur: held for a pointer copy and a count */
    struct auth_keys *cur; /* in force; never NULL */
};

struct auth {
    struct auth_state *st;
};

static void keys_put(struct auth_keys *k)
{
    if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    keyset_release(&k->ks);
    free(k->aud);
    free(k->iss);
    free(k);
}

static int keys_build(const struct config *cfg, struct auth_keys **out, struct lark_err *err)
{
    struct auth_keys *k = xcalloc(1, sizeof(*k));
    int rc = keyset_load(cfg, &k->ks, err);

    *out = NULL;
    if (rc) {
        free(k);
        return rc;
    }
    atomic_init(&k->refs, 1);
    k->aud = cfg->jwt_aud && *cfg->jwt_aud ? xstrdup(cfg->jwt_aud) : NULL;
    k->iss = cfg->jwt_iss && *cfg->jwt_iss ? xstrdup(cfg->jwt_iss) : NULL;
    k->leeway = cfg->jwt_leeway;
    *out = k;
    return 0;
}

/* The settings in force, with a reference the caller puts back. */
static struct auth_keys *keys_get(const struct auth *a)
{
    struct auth_keys *k;
    pthread_mutex_lock(&a->st->mu);
    k = a->st->cur;
    atomic_fetch_add(&k->refs, 1);
    pthread_mutex_unlock(&a->st->mu);
    return k;
}

int auth_new(const struct config *cfg, struct auth **out, struct lark_err *err)
{
    struct auth_keys *k = NULL;
    struct auth *a;
    int rc = keys_build(cfg, &k, err);

    *out = NULL;
    if (rc)
        return rc;
    a = xcalloc(1, sizeof(*a));
    a->st = xcalloc(1, sizeof(*a->st));
    pthread_mutex_init(&a->st->mu, NULL);
    a->st->cur = k;
    *out = a;
    return 0;
}

int auth_reload(struct auth *a, const struct config *cfg, struct lark_err *err)
{
    struct auth_keys *k = NULL, *old;
    int rc = keys_build(cfg, &k, err);

    if (rc)
        return rc;
    pthread_mutex_lock(&a->st->mu);
    old = a->st->cur;
    a->st->cur = k;
    pthread_mutex_unlock(&a->st->mu);
    keys_put(old);
    return 0;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    keys_put(a->st->cur);
    pthread_mutex_destroy(&a->st->mu);
    free(a->st);
    free(a);
}

void auth_describe(const struct auth *a, char *out, size_t cap)
{
    struct auth_keys *k = keys_get(a);
    keyset_describe(&k->ks, out, cap);
    keys_put(k);
}

int auth_dev_secret_in_use(const struct auth *a)
{
    struct auth_keys *k = keys_get(a);
    const struct keyset_key *key = keyset_find(&k->ks, NULL);
    int yes =
        k->ks.alg == JWT_ALG_HS256 && key && strcmp((const char *)key->key, CONFIG_DEV_SECRET) == 0;
    keys_put(k);
    return yes;
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

/*
 * 1 if token has the compact JWS shape: three non-empty base64url segments.
 * libjwt 1.10 reads past a zero-byte allocation when a segment decodes to
 * nothing (seen by valgrind with "abc.def" and ".."), and lark never
 * accepts an unsigned token, so anything else is refused before it.
 */
static int token_shape_ok(const char *t, size_t len)
{
    size_t seg = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '.') {
            if (seg == 0)
                return 0;
            dots++;
            seg = 0;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '='))
            return 0;
        seg++;
    }
    return dots == 2 && seg > 0;
}

static int auth_check_claims(const struct auth_keys *a, json_t *claims, int64_t now,
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

/*
 * Segment seg (0 header, 1 claims) of a token of the right shape, decoded
 * and parsed as a JSON object that names no member twice, or NULL. Why
 * not libjwt's own parse: jansson keeps the last of two equal names, so
 * {"sub":"alice","sub":"admin"} would be read as whichever a reader of the
 * token did not expect; RFC 7519 4 lets a parser refuse such a token, and
 * lark does (docs/API.md "Authentication").
 */
static json_t *token_segment_json(const char *token, int seg)
{
    const char *p = token, *end;
    unsigned char *text = NULL;
    size_t len = 0;
    json_t *obj;

    for (int i = 0; i < seg; i++)
        p = strchr(p, '.') + 1; /* token_shape_ok: three segments */
    end = strchr(p, '.');
    if (b64url_decode(p, (size_t)(end - p), &text, &len) != 0)
        return NULL;
    obj = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Decode copy with key; the decoded token, or NULL if the signature or the
 * shape is bad. */
static jwt_t *decode_with(const char *copy, const struct keyset_key *key)
{
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, copy, key->key, (int)key->len) != 0)
        return NULL;
    return jwt;
}

/*
 * The token (NUL-terminated copy) decoded and verified with the key its
 * header asks for (auth.h says which), or NULL with err set. With one key
 * and no kid in the set the header need not be read first.
 */
static jwt_t *decode_for_key(const struct keyset *ks, const char *copy, struct lark_err *err)
{
    char kid[KEYSET_KID_MAX + 1] = "";
    const struct keyset_key *key;
    const char *k;
    jwt_t *peek = NULL, *jwt = NULL;
    int has_kid;

    if (ks->n == 1 && !ks->v[0].kid)
        key = &ks->v[0];
    else {
        /* no key: libjwt reads the header and checks no signature */
        if (jwt_decode(&peek, copy, NULL, 0) != 0 || !peek) {
            lark_err_set(err, LARK_ETOKEN, "the token is malformed or its signature is bad");
            return NULL;
        }
        k = jwt_get_header(peek, "kid");
        has_kid = k != NULL;
        if (k && strlen(k) <= KEYSET_KID_MAX)
            snprintf(kid, sizeof(kid), "%s", k);
        jwt_free(peek);
        key = has_kid && kid[0] ? keyset_find(ks, kid) : NULL;
        if (!key)
            key = keyset_find(ks, NULL);
        if (!key && has_kid) {
            lark_err_set(err, LARK_ETOKEN, "the token's key id (kid) is not known");
            return NULL;
        }
        if (!key) {
            /* no kid and no key without one: each key in turn (bounded by
             * KEYSET_MAX) */
            for (size_t i = 0; i < ks->n && !jwt; i++)
                jwt = decode_with(copy, &ks->v[i]);
            if (!jwt)
                lark_err_set(err, LARK_ETOKEN, "the token is malformed or its signature is bad");
            return jwt;
        }
    }
    jwt = decode_with(copy, key);
    if (!jwt)
        lark_err_set(err, LARK_ETOKEN, "the token is malformed or its signature is bad");
    return jwt;
}

int auth_verify(const struct auth *a, const char *token, size_t len, int64_t now,
                char user[LIMIT_USER_ID_MAX + 1], struct lark_err *err)
{
    char copy[LIMIT_TOKEN_MAX + 1];
    struct auth_keys *k = NULL;
    jwt_t *jwt = NULL;
    json_t *header = NULL, *claims = NULL;
    int rc;

    if (len == 0)
        return lark_err_set(err, LARK_ENOAUTH, "an access token is required");
    if (len > LIMIT_TOKEN_MAX)
        return lark_err_set(err, LARK_ETOKEN, "the token is longer than %d bytes", LIMIT_TOKEN_MAX);
    if (!token_shape_ok(token, len))
        return lark_err_set(err, LARK_ETOKEN, "the token is malformed");
    memcpy(copy, token, len);
    copy[len] = '\0';
    k = keys_get(a);
    jwt = decode_for_key(&k->ks, copy, err);
    if (!jwt) {
        rc = LARK_ETOKEN;
        goto out;
    }
    /* libjwt verified with whatever alg the token named; only ours counts
     * (an HS256 token "signed" with a public key's PEM text stops here). */
    if (jwt_get_alg(jwt) != k->ks.alg) {
        rc = lark_err_set(err, LARK_ETOKEN, "the token's algorithm is not accepted");
        goto out;
    }
    header = token_segment_json(copy, 0);
    claims = token_segment_json(copy, 1);
    if (!header || !claims) {
        rc = lark_err_set(err, LARK_ETOKEN,
                          "the token's header or claims are not a JSON object with unique names");
        goto out;
    }
    rc = auth_check_claims(k, claims, now, user, err);
out:
    json_decref(header);
    json_decref(claims);
    jwt_free(jwt);
    keys_put(k);
    return rc;
}

int auth_mint(const struct auth *a, const char *user, int64_t now, int ttl, char **token,
              struct lark_err *err)
{
    struct auth_keys *k;
    const struct keyset_key *key;
    jwt_t *jwt = NULL;
    int rc = 0;

    *token = NULL;
    if (!ids_valid_user(user, strlen(user)))
        return lark_err_set(err, LARK_EFIELD, "a user id is 1-64 characters of [A-Za-z0-9_.@-]");
    k = keys_get(a);
    key = keyset_find(&k->ks, NULL);
    if (k->ks.alg != JWT_ALG_HS256 || !key) {
        keys_put(k);
        return lark_err_set(err, LARK_EINVAL, "only an HS256 secret can sign tokens");
    }
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", user) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl)) != 0 ||
        (k->aud && jwt_add_grant(jwt, "aud", k->aud) != 0) ||
        (k->iss && jwt_add_grant(jwt, "iss", k->iss) != 0) ||
        jwt_set_alg(jwt, JWT_ALG_HS256, key->key, (int)key->len) != 0 ||
        !(*token = jwt_encode_str(jwt)))
        rc = lark_err_set(err, LARK_EINTERNAL, "libjwt could not sign the token");
    jwt_free(jwt);
    keys_put(k);
    return rc;
}
