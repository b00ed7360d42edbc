/*
 * auth.h - JWT access-token verification (API.md "Authentication").
 *
 * libjwt 1.10 checks the signature but takes the algorithm from the token
 * and checks no claims, so this module adds every rule API.md sets: the
 * token's alg must equal the configured one (which also refuses "none" and
 * the HS256-with-a-public-key confusion), exp is required and must be in
 * the future, nbf must not be, aud and iss must match when configured, and
 * sub must be a well-formed user id.
 *
 * Keys (core/keyset.h): several may verify at once, told apart by the
 * token header's kid. A token with a kid is checked against the key with
 * that kid, else the key without a kid; a token without a kid against the
 * key without a kid, else against each key in turn. An unknown kid with no
 * key without a kid is refused.
 *
 * Rotation: auth_reload swaps in a new key set (and aud, iss, leeway) while
 * other threads verify. Each verification takes a reference to the set in
 * force when it starts, so a set is freed only after its last use; a reload
 * that fails leaves the current set in force.
 *
 * It also signs, for one purpose only: development tokens (auth_mint),
 * which need the HS256 secret without a kid the verifier already holds.
 *
 * Any thread may call auth_verify, auth_mint, auth_describe and
 * auth_reload concurrently.
 */
#ifndef LARK_AUTH_H
#define LARK_AUTH_H

#include "core/limits.h"

#include <stddef.h>
#include <stdint.h>

struct config;
struct lark_err;
struct auth;

/*
 * Build a verifier from cfg (jwt_alg, the keys of core/keyset.h, jwt_aud,
 * jwt_iss, jwt_leeway). Reads the key files. Returns 0, or LARK_EINVAL with
 * err set. The caller frees *out with auth_free.
 */
int auth_new(const struct config *cfg, struct auth **out, struct lark_err *err);

/*
 * Load the keys and claim settings of cfg and put them in force for every
 * verification that starts afterwards. Returns 0, or LARK_EINVAL with err
 * set and the settings in force unchanged.
 */
int auth_reload(struct auth *a, const struct config *cfg, struct lark_err *err);

/* Free once no other thread uses it. Accepts NULL. */
void auth_free(struct auth *a);

/* What is in force, for a log line: "HS256 keys: k1, k2" (never a secret). */
void auth_describe(const struct auth *a, char *out, size_t cap);

/* 1 if the development secret (config.h) verifies tokens right now. */
int auth_dev_secret_in_use(const struct auth *a);

/*
 * Verify token (len bytes, need not be NUL-terminated) at time now (Unix
 * seconds). On success copies the subject into user and returns 0.
 * Errors: LARK_ENOAUTH (empty), LARK_EEXPIRED (exp passed),
 * LARK_ETOKEN (anything else), with the reason in err.
 */
int auth_verify(const struct auth *a, const char *token, size_t len, int64_t now,
                char user[LIMIT_USER_ID_MAX + 1], struct lark_err *err);

/*
 * Sign an HS256 token for user (a valid user id) with the verifier's own
 * secret: sub = user, iat = now, exp = now + ttl (seconds), plus the
 * configured aud and iss, so that auth_verify accepts it until exp. On
 * success *token is a NUL-terminated string the caller frees with free().
 * Errors: LARK_EFIELD (user is not a user id), LARK_EINVAL (the verifier
 * is not HS256 with a secret without a kid: a public key cannot sign),
 * LARK_EINTERNAL (libjwt failed).
 * Callers decide whether minting is allowed at all (config.h dev_tokens).
 */
int auth_mint(const struct auth *a, const char *user, int64_t now, int ttl, char **token,
              struct lark_err *err);

#endif
