/*
 * fuzz_auth.c - libFuzzer target for access tokens: auth_verify with an
 * HS256 configuration.
 *
 * The first input byte picks the mode:
 *   even  the rest is the token, as a client could send anything;
 *   odd   the rest is a claims object, signed here with the configured
 *         secret, so that every claim rule is reached; the verdict must
 *         then equal an independent reading of API.md's rules (exp
 *         required and in the future, nbf not in the future, aud and iss
 *         as configured, sub a well-formed user id). The verifier used is
 *         chosen by the second byte: without or with aud/iss/leeway.
 * In both modes the only answers are 0, LARK_ENOAUTH, LARK_ETOKEN and
 * LARK_EEXPIRED, and a success names a well-formed user.
 */
#include "core/auth.h"

#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/mem.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <jwt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000LL
#define SECRET "fuzz-secret-0123456789abcdef"

/* Built once: [0] plain HS256, [1] aud "lark", iss "idp", leeway 30 s. */
static struct auth *verifiers[2];

static struct auth *make_verifier(const char *aud, const char *iss, int leeway)
{
    struct config cfg;
    struct lark_err err;
    struct auth *a = NULL;

    memset(&cfg, 0, sizeof(cfg));
    cfg.jwt_alg = xstrdup("HS256");
    cfg.jwt_secret = xstrdup(SECRET);
    cfg.jwt_key_file = xstrdup("");
    cfg.jwt_aud = xstrdup(aud);
    cfg.jwt_iss = xstrdup(iss);
    cfg.jwt_leeway = leeway;
    CHECK(auth_new(&cfg, &a, &err) == 0);
    config_release(&cfg);
    return a;
}

static int verify(const struct auth *a, const char *tok, size_t len)
{
    char user[LIMIT_USER_ID_MAX + 1];
    struct lark_err err = {0};
    int rc = auth_verify(a, tok, len, NOW, user, &err);

    CHECK(rc == 0 || rc == LARK_ENOAUTH || rc == LARK_ETOKEN || rc == LARK_EEXPIRED);
    if (rc == 0)
        CHECK(ids_valid_user(user, strlen(user)));
    else
        CHECK(err.code == rc && err.msg[0] != '\0');
    return rc;
}

/* API.md's rules, read independently of auth.c, on the signed claims. */
static int expected(json_t *claims, size_t token_len, const char *aud, const char *iss, int leeway)
{
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *sub = json_object_get(claims, "sub");

    if (token_len > LIMIT_TOKEN_MAX)
        return LARK_ETOKEN;
    if (!json_is_number(exp))
        return LARK_ETOKEN;
    if (json_number_value(exp) + leeway <= (double)NOW)
        return LARK_EEXPIRED;
    if (nbf && !json_is_number(nbf))
        return LARK_ETOKEN;
    if (nbf && json_number_value(nbf) - leeway > (double)NOW)
        return LARK_ETOKEN;
    if (aud) {
        json_t *v = json_object_get(claims, "aud");
        int ok = json_is_string(v) && strcmp(json_string_value(v), aud) == 0;
        for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
            json_t *item = json_array_get(v, i);
            ok |= json_is_string(item) && strcmp(json_string_value(item), aud) == 0;
        }
        if (!ok)
            return LARK_ETOKEN;
    }
    if (iss) {
        json_t *v = json_object_get(claims, "iss");
        if (!json_is_string(v) || strcmp(json_string_value(v), iss) != 0)
            return LARK_ETOKEN;
    }
    if (!json_is_string(sub) || !ids_valid_user(json_string_value(sub), json_string_length(sub)))
        return LARK_ETOKEN;
    return 0;
}

static void signed_claims(const char *claims, int strict)
{
    jwt_t *jwt = NULL;
    char *tok = NULL, *grants = NULL;
    json_t *parsed = NULL;

    CHECK(jwt_new(&jwt) == 0);
    /* Claims libjwt will not take (not an object) cannot be signed. */
    if (jwt_add_grants_json(jwt, claims) != 0)
        goto out;
    CHECK(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET)) == 0);
    tok = jwt_encode_str(jwt);
    grants = jwt_get_grants_json(jwt, NULL);
    if (!tok || !grants)
        goto out;
    /* The claims as signed: what the verifier will see. */
    parsed = json_loads(grants, 0, NULL);
    CHECK(json_is_object(parsed));
    if (strict)
        CHECK(verify(verifiers[1], tok, strlen(tok)) ==
              expected(parsed, strlen(tok), "lark", "idp", 30));
    else
        CHECK(verify(verifiers[0], tok, strlen(tok)) ==
              expected(parsed, strlen(tok), NULL, NULL, 0));
out:
    json_decref(parsed);
    free(grants);
    free(tok);
    jwt_free(jwt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!verifiers[0]) {
        verifiers[0] = make_verifier("", "", 0);
        verifiers[1] = make_verifier("lark", "idp", 30);
    }
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0) {
        /* An exact-size copy: ASan sees any read past the token. */
        char *tok = malloc(size - 1 ? size - 1 : 1);
        memcpy(tok, data + 1, size - 1);
        verify(verifiers[data[0] / 2 % 2], tok, size - 1);
        free(tok);
    } else if (size >= 2) {
        char *claims = malloc(size - 1);
        memcpy(claims, data + 2, size - 2);
        claims[size - 2] = '\0';
        signed_claims(claims, data[1] % 2);
        free(claims);
    }
    return 0;
}
