/*
 * jwk.h - public keys from a JSON Web Key Set (RFC 7517, RFC 7518 section 6).
 *
 * Why: identity providers publish their signing keys as a JWKS, several at
 * once and each named by a "kid", so that a new key can be published before
 * tokens are signed with it and the old one withdrawn after the last token
 * signed with it has expired. libjwt 1.10 verifies only against a PEM key,
 * so this module turns each JWK into one (with OpenSSL, which libjwt uses
 * too) and libjwt still does every verification.
 *
 * Understood: "RSA" keys (n, e; at least 2048 bits, RFC 7518 3.3) for RS256
 * and "EC" keys on P-256 (crv, x, y; the point is checked to be on the
 * curve) for ES256. A key whose "use" is not "sig", whose "alg" names
 * another algorithm, or of another type is skipped and reported; a key of
 * the wanted kind that is malformed is an error (a half-read key set must
 * not quietly lose a key). Pure apart from reading the file; any thread.
 */
#ifndef LARK_JWK_H
#define LARK_JWK_H

#include <stddef.h>

struct lark_err;

/* The two algorithms a JWKS may serve here. */
enum jwk_alg { JWK_RS256, JWK_ES256 };

/* One usable key. */
struct jwk_key {
    char *kid; /* its "kid", NULL when it has none */
    char *pem; /* "-----BEGIN PUBLIC KEY-----..." NUL-terminated, owned */
};

/*
 * Read the JWKS file at path and return the keys for alg in *keys (*n of
 * them, caller frees with jwk_keys_free). Keys skipped for another use or
 * algorithm are logged at info (kid and reason). Errors: LARK_EINVAL with
 * err naming the file and the key (unreadable, not JSON, no "keys" array,
 * a malformed key of the wanted kind, more than max keys).
 */
int jwk_load(const char *path, enum jwk_alg alg, size_t max, struct jwk_key **keys, size_t *n,
             struct lark_err *err);

/* Free what jwk_load returned. Accepts NULL. */
void jwk_keys_free(struct jwk_key *keys, size_t n);

#endif
