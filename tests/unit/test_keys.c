/*
 * test_keys.c - several keys at once (core/keyset, core/jwk) and rotation
 * (auth_reload): API.md "Authentication" with keys told apart by kid.
 *
 * Keys are made here with OpenSSL (the library libjwt uses) and written as
 * an identity provider would publish them: PEM private keys to sign tokens
 * with libjwt, a JWKS with the public halves, a secrets file for HS256.
 */
#include "core/auth.h"

#include "core/config.h"
#include "core/err.h"
#include "core/jwk.h"
#include "core/keyset.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "tests/unit/unit.h"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000LL
#define CLAIMS "{\"sub\":\"alice\",\"exp\":1700000060}"
#define SECRET1 "first-secret-0123456789abcdef"
#define SECRET2 "second-secret-0123456789abcdef"

static char *dir;

struct pair {
    EVP_PKEY *pkey;
    unsigned char *priv; /* PEM private key, for libjwt */
    int priv_len;
    char *jwk; /* its public JWK without kid: {"kty":...} members only */
};

static struct pair rsa1, rsa2, ec1, ec2;

/* ---- keys ------------------------------------------------------------------ */

/* A BIO's bytes (not NUL-terminated) as a string. */
static char *bio_text(BIO *bio, long *len)
{
    char *data = NULL, *s;
    *len = BIO_get_mem_data(bio, &data);
    ck_assert_int_gt(*len, 0);
    s = xmalloc((size_t)*len + 1);
    memcpy(s, data, (size_t)*len);
    s[*len] = '\0';
    return s;
}

static char *b64url(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    ck_assert_int_ge(len, 0);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static char *bn_member(EVP_PKEY *pkey, const char *name)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(pkey, name, &bn), 1);
    n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (size_t)n);
}

static void make_pair(struct pair *p, const char *type)
{
    BIO *bio = BIO_new(BIO_s_mem());
    long len;

    if (strcmp(type, "RSA") == 0)
        p->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else
        p->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(p->pkey);
    ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, p->pkey, NULL, NULL, 0, NULL, NULL), 1);
    p->priv = (unsigned char *)bio_text(bio, &len);
    p->priv_len = (int)len;
    BIO_free(bio);
    if (strcmp(type, "RSA") == 0) {
        char *n = bn_member(p->pkey, OSSL_PKEY_PARAM_RSA_N);
        char *e = bn_member(p->pkey, OSSL_PKEY_PARAM_RSA_E);
        p->jwk = xasprintf("\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"", n, e);
        free(n);
        free(e);
    } else {
        unsigned char pt[65];
        size_t ptlen = 0;
        char *x, *y;
        ck_assert_int_eq(EVP_PKEY_get_octet_string_param(p->pkey, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                                         sizeof(pt), &ptlen),
                         1);
        ck_assert_uint_eq(ptlen, 65);
        x = b64url(pt + 1, 32);
        y = b64url(pt + 33, 32);
        p->jwk = xasprintf("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"", x, y);
        free(x);
        free(y);
    }
}

static void free_pair(struct pair *p)
{
    EVP_PKEY_free(p->pkey);
    free(p->priv);
    free(p->jwk);
    memset(p, 0, sizeof(*p));
}

static void keys_setup(void)
{
    dir = unit_tmpdir();
    make_pair(&rsa1, "RSA");
    make_pair(&rsa2, "RSA");
    make_pair(&ec1, "EC");
    make_pair(&ec2, "EC");
}

static void keys_teardown(void)
{
    free_pair(&rsa1);
    free_pair(&rsa2);
    free_pair(&ec1);
    free_pair(&ec2);
    unit_rmtree(dir);
    free(dir);
    dir = NULL;
}

/* Write text to dir/name; the caller frees the path. */
static char *file(const char *name, const char *text)
{
    char *path = unit_path(dir, name);
    unit_write_file(path, text);
    return path;
}

/* ---- tokens and verifiers ---------------------------------------------------- */

/* A token for CLAIMS signed with alg and key, with a kid header unless NULL. */
static char *sign(jwt_alg_t alg, const unsigned char *key, int len, const char *kid)
{
    jwt_t *jwt = NULL;
    char *tok;

    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, CLAIMS), 0);
    if (kid)
        ck_assert_int_eq(jwt_add_header(jwt, "kid", kid), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, alg, key, len), 0);
    tok = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(tok);
    jwt_free(jwt);
    return tok;
}

static char *hs(const char *secret, const char *kid)
{
    return sign(JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret), kid);
}

static void cfg_init(struct config *cfg, const char *alg, const char *secret, const char *key_file,
                     const char *jwks, const char *secrets)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->jwt_alg = xstrdup(alg);
    cfg->jwt_secret = xstrdup(secret ? secret : "");
    cfg->jwt_key_file = xstrdup(key_file ? key_file : "");
    cfg->jwt_jwks_file = xstrdup(jwks ? jwks : "");
    cfg->jwt_secrets_file = xstrdup(secrets ? secrets : "");
    cfg->jwt_aud = xstrdup("");
    cfg->jwt_iss = xstrdup("");
}

/* auth_new with these settings: the code, and *out on success. */
static int build(const char *alg, const char *secret, const char *key_file, const char *jwks,
                 const char *secrets, struct auth **out, struct lark_err *err)
{
    struct config cfg;
    int rc;
    cfg_init(&cfg, alg, secret, key_file, jwks, secrets);
    rc = auth_new(&cfg, out, err);
    config_release(&cfg);
    return rc;
}

static struct auth *must(const char *alg, const char *secret, const char *key_file,
                         const char *jwks, const char *secrets)
{
    struct auth *a = NULL;
    struct lark_err err = {0};
    int rc = build(alg, secret, key_file, jwks, secrets, &a, &err);
    ck_assert_msg(rc == 0, "auth_new: %s", err.msg);
    return a;
}

/* Fails with LARK_EINVAL and a message mentioning what. */
static void refused(const char *alg, const char *secret, const char *key_file, const char *jwks,
                    const char *secrets, const char *what)
{
    struct auth *a = NULL;
    struct lark_err err = {0};
    int rc = build(alg, secret, key_file, jwks, secrets, &a, &err);
    ck_assert_msg(rc == LARK_EINVAL, "accepted, wanted an error about %s", what);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err.msg, what) != NULL, "'%s' does not mention '%s'", err.msg, what);
}

/* Verify tok (and free it): the code. */
static int check(const struct auth *a, char *tok)
{
    char user[LIMIT_USER_ID_MAX + 1];
    struct lark_err err = {0};
    int rc = auth_verify(a, tok, strlen(tok), NOW, user, &err);
    if (rc == 0)
        ck_assert_str_eq(user, "alice");
    free(tok);
    return rc;
}

/* ---- HS256 by kid ----------------------------------------------------------- */

START_TEST(test_secrets_by_kid)
{
    char *secrets = file("secrets", "# rotation\nk1 " SECRET1 "\n\n  k2\t" SECRET2 "  \n");
    struct auth *a = must("HS256", CONFIG_DEV_SECRET, NULL, NULL, secrets);

    ck_assert_int_eq(check(a, hs(SECRET1, "k1")), 0);
    ck_assert_int_eq(check(a, hs(SECRET2, "k2")), 0);
    /* a kid names its key: another key's signature is refused */
    ck_assert_int_eq(check(a, hs(SECRET2, "k1")), LARK_ETOKEN);
    /* an unknown kid, with no key without a kid */
    ck_assert_int_eq(check(a, hs(SECRET1, "k3")), LARK_ETOKEN);
    /* no kid: each key in turn */
    ck_assert_int_eq(check(a, hs(SECRET2, NULL)), 0);
    ck_assert_int_eq(check(a, hs("some-other-secret-0123456789", NULL)), LARK_ETOKEN);
    /* the development default is not a key beside a secrets file */
    ck_assert_int_eq(check(a, hs(CONFIG_DEV_SECRET, NULL)), LARK_ETOKEN);
    ck_assert_int_eq(check(a, hs(CONFIG_DEV_SECRET, "k1")), LARK_ETOKEN);
    ck_assert_int_eq(auth_dev_secret_in_use(a), 0);
    auth_free(a);
    free(secrets);
}
END_TEST

START_TEST(test_secret_without_kid_beside_file)
{
    char *secrets = file("secrets", "k2 " SECRET2 "\n");
    struct auth *a = must("HS256", SECRET1, NULL, NULL, secrets);

    /* jwt_secret, set on purpose, is the key without a kid */
    ck_assert_int_eq(check(a, hs(SECRET1, NULL)), 0);
    ck_assert_int_eq(check(a, hs(SECRET2, "k2")), 0);
    /* an unknown kid falls back to the key without a kid */
    ck_assert_int_eq(check(a, hs(SECRET1, "elsewhere")), 0);
    /* with one key without a kid, a token without one is checked against it alone */
    ck_assert_int_eq(check(a, hs(SECRET2, NULL)), LARK_ETOKEN);
    auth_free(a);
    free(secrets);

    a = must("HS256", CONFIG_DEV_SECRET, NULL, NULL, NULL);
    ck_assert_int_eq(auth_dev_secret_in_use(a), 1);
    auth_free(a);
}
END_TEST

START_TEST(test_secrets_file_errors)
{
    char *p;

    refused("HS256", SECRET1, NULL, NULL, "/nonexistent/secrets", "cannot open");
    p = file("short", "k1 tooshort\n");
    refused("HS256", SECRET1, NULL, NULL, p, "at least 16 bytes");
    free(p);
    p = file("nosecret", "k1\n");
    refused("HS256", SECRET1, NULL, NULL, p, "kid secret");
    free(p);
    p = file("dup", "k1 " SECRET1 "\nk1 " SECRET2 "\n");
    refused("HS256", SECRET1, NULL, NULL, p, "two keys with kid k1");
    free(p);
    p = file("comments", "# nothing but a comment\n");
    refused("HS256", CONFIG_DEV_SECRET, NULL, NULL, p, "no key");
    /* secrets are HS256's */
    refused("RS256", NULL, NULL, NULL, p, "jwt_secrets_file");
    free(p);
    /* public keys are not HS256's */
    p = file("jwks", "{\"keys\":[]}");
    refused("HS256", SECRET1, NULL, p, NULL, "public keys");
    free(p);
}
END_TEST

/* ---- JWKS --------------------------------------------------------------------- */

/* A JWKS with these keys: each entry "kid" (or NULL) and its pair's members. */
static char *jwks(const char *kid1, const struct pair *p1, const char *kid2, const struct pair *p2)
{
    char *one = kid1 ? xasprintf("{\"kid\":\"%s\",\"use\":\"sig\",%s}", kid1, p1->jwk)
                     : xasprintf("{%s}", p1->jwk);
    char *two =
        p2 ? (kid2 ? xasprintf(",{\"kid\":\"%s\",%s}", kid2, p2->jwk) : xasprintf(",{%s}", p2->jwk))
           : xstrdup("");
    char *text = xasprintf("{\"keys\":[%s%s]}", one, two);
    char *path = file("jwks.json", text);
    free(one);
    free(two);
    free(text);
    return path;
}

START_TEST(test_jwks_rs256)
{
    char *path = jwks("a", &rsa1, "b", &rsa2);
    struct auth *a = must("RS256", NULL, NULL, path, NULL);
    const struct keyset_key *ka;
    struct keyset ks;
    struct config cfg;
    struct lark_err err = {0};

    ck_assert_int_eq(check(a, sign(JWT_ALG_RS256, rsa1.priv, rsa1.priv_len, "a")), 0);
    ck_assert_int_eq(check(a, sign(JWT_ALG_RS256, rsa2.priv, rsa2.priv_len, "b")), 0);
    ck_assert_int_eq(check(a, sign(JWT_ALG_RS256, rsa2.priv, rsa2.priv_len, "a")), LARK_ETOKEN);
    ck_assert_int_eq(check(a, sign(JWT_ALG_RS256, rsa1.priv, rsa1.priv_len, "c")), LARK_ETOKEN);
    ck_assert_int_eq(check(a, sign(JWT_ALG_RS256, rsa2.priv, rsa2.priv_len, NULL)), 0);
    ck_assert_int_eq(check(a, sign(JWT_ALG_ES256, ec1.priv, ec1.priv_len, "a")), LARK_ETOKEN);

    /* the JWK became the PEM libjwt verifies with; HMAC keyed with that
     * PEM text (the alg confusion) is refused */
    cfg_init(&cfg, "RS256", NULL, NULL, path, NULL);
    ck_assert_int_eq(keyset_load(&cfg, &ks, &err), 0);
    ka = keyset_find(&ks, "a");
    ck_assert_ptr_nonnull(ka);
    ck_assert_ptr_nonnull(strstr((const char *)ka->key, "BEGIN PUBLIC KEY"));
    ck_assert_int_eq(check(a, sign(JWT_ALG_HS256, ka->key, (int)ka->len, "a")), LARK_ETOKEN);
    keyset_release(&ks);
    config_release(&cfg);
    auth_free(a);
    free(path);
}
END_TEST

START_TEST(test_jwks_es256_with_key_file)
{
    char *path = jwks("e1", &ec1, "r1", &rsa1); /* the RSA key is skipped for ES256 */
    char *pem_path;
    struct auth *a;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    long len;
    char desc[256];

    ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, ec2.pkey), 1);
    pem = bio_text(bio, &len);
    BIO_free(bio);
    pem_path = file("ec2.pub", pem);
    free(pem);
    a = must("ES256", NULL, pem_path, path, NULL);
    ck_assert_int_eq(check(a, sign(JWT_ALG_ES256, ec1.priv, ec1.priv_len, "e1")), 0);
    /* the PEM key file is the key without a kid */
    ck_assert_int_eq(check(a, sign(JWT_ALG_ES256, ec2.priv, ec2.priv_len, NULL)), 0);
    ck_assert_int_eq(check(a, sign(JWT_ALG_ES256, ec2.priv, ec2.priv_len, "other")), 0);
    ck_assert_int_eq(check(a, sign(JWT_ALG_ES256, ec1.priv, ec1.priv_len, NULL)), LARK_ETOKEN);
    ck_assert_int_eq(check(a, sign(JWT_ALG_RS256, rsa1.priv, rsa1.priv_len, "r1")), LARK_ETOKEN);
    auth_describe(a, desc, sizeof(desc));
    ck_assert_str_eq(desc, "ES256 keys: (no kid), e1");
    auth_free(a);
    free(pem_path);
    free(path);
}
END_TEST

START_TEST(test_jwks_errors)
{
    static const struct {
        const char *text, *what;
    } bad[] = {
        {"not json", "not a JWKS"},
        {"{\"keys\": {}}", "not a JWKS"},
        {"{\"keys\": [7]}", "not a JSON object"},
        {"{\"keys\": [{\"kid\": 7, \"kty\": \"RSA\"}]}", "kid is not a string"},
        {"{\"keys\": [{\"kid\":\"x\",\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", "'n' is missing"},
        {"{\"keys\": [{\"kid\":\"x\",\"kty\":\"RSA\",\"n\":\"ab+/\",\"e\":\"AQAB\"}]}",
         "not base64url"},
        {"{\"keys\": [{\"kid\":\"x\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
         "not a valid RSA public key"},
        {"{\"keys\": [{\"kty\": \"oct\", \"k\": \"AAAA\"}]}", "no key"},
    };
    char *p;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = file("bad.json", bad[i].text);
        refused("RS256", NULL, NULL, p, NULL, bad[i].what);
        free(p);
    }
    /* EC: the wrong curve, and a point that is not on P-256 */
    p = file("crv.json",
             "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}");
    refused("ES256", NULL, NULL, p, NULL, "P-256");
    free(p);
    {
        char *x = xmalloc(44), *text;
        memset(x, 'A', 43);
        x[43] = '\0';
        text = xasprintf(
            "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, x);
        p = file("offcurve.json", text);
        refused("ES256", NULL, NULL, p, NULL, "not a valid P-256 public key");
        free(p);
        free(text);
        free(x);
    }
    /* the same kid twice, and two keys without a kid */
    p = jwks("a", &rsa1, "a", &rsa2);
    refused("RS256", NULL, NULL, p, NULL, "two keys with kid a");
    free(p);
    p = jwks(NULL, &rsa1, NULL, &rsa2);
    refused("RS256", NULL, NULL, p, NULL, "two keys");
    free(p);
    refused("RS256", NULL, NULL, "/nonexistent.json", NULL, "cannot open");
    refused("RS256", NULL, NULL, NULL, NULL, "jwt_key_file or jwt_jwks_file");
}
END_TEST

/* ---- rotation ------------------------------------------------------------------ */

static void reload(struct auth *a, const char *secret, const char *secrets, int want)
{
    struct config cfg;
    struct lark_err err = {0};
    cfg_init(&cfg, "HS256", secret, NULL, NULL, secrets);
    ck_assert_int_eq(auth_reload(a, &cfg, &err), want);
    config_release(&cfg);
}

START_TEST(test_reload)
{
    char *old = file("old", "k1 " SECRET1 "\n");
    char *both = file("both", "k1 " SECRET1 "\nk2 " SECRET2 "\n");
    char *new = file("new", "k2 " SECRET2 "\n");
    char *broken = file("broken", "k2\n");
    struct auth *a = must("HS256", CONFIG_DEV_SECRET, NULL, NULL, old);
    char desc[128];

    ck_assert_int_eq(check(a, hs(SECRET2, "k2")), LARK_ETOKEN);
    reload(a, CONFIG_DEV_SECRET, both, 0);
    ck_assert_int_eq(check(a, hs(SECRET1, "k1")), 0);
    ck_assert_int_eq(check(a, hs(SECRET2, "k2")), 0);
    reload(a, CONFIG_DEV_SECRET, new, 0);
    ck_assert_int_eq(check(a, hs(SECRET1, "k1")), LARK_ETOKEN);
    ck_assert_int_eq(check(a, hs(SECRET2, "k2")), 0);
    /* a reload that fails keeps what is in force */
    reload(a, CONFIG_DEV_SECRET, broken, LARK_EINVAL);
    ck_assert_int_eq(check(a, hs(SECRET2, "k2")), 0);
    auth_describe(a, desc, sizeof(desc));
    ck_assert_str_eq(desc, "HS256 keys: k2");
    ck_assert_ptr_null(strstr(desc, SECRET2));
    auth_free(a);
    free(old);
    free(both);
    free(new);
    free(broken);
}
END_TEST

struct hammer {
    const struct auth *a;
    atomic_int *stop;
    atomic_long ok, bad; /* verifications that passed / failed */
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    char *t1 = hs(SECRET1, "k1"), *t2 = hs(SECRET2, "k2");
    char user[LIMIT_USER_ID_MAX + 1];
    struct lark_err err = {0};

    while (!atomic_load(h->stop)) {
        /* k2 is in every set the main thread installs: always accepted */
        if (auth_verify(h->a, t2, strlen(t2), NOW, user, &err) == 0)
            atomic_fetch_add(&h->ok, 1);
        else
            atomic_fetch_add(&h->bad, 1);
        auth_verify(h->a, t1, strlen(t1), NOW, user, &err);
    }
    free(t1);
    free(t2);
    return NULL;
}

/* Reloads while other threads verify: every token of a key present in
 * every set verifies, and (under ASan) no set is used after it is freed. */
START_TEST(test_reload_while_verifying)
{
    char *both = file("both", "k1 " SECRET1 "\nk2 " SECRET2 "\n");
    char *new = file("new", "k2 " SECRET2 "\n");
    struct auth *a = must("HS256", CONFIG_DEV_SECRET, NULL, NULL, both);
    atomic_int stop = 0;
    struct hammer h[2] = {{a, &stop, 0, 0}, {a, &stop, 0, 0}};
    pthread_t t[2];
    int64_t deadline = time_mono_ms() + 20000;
    int i = 0;

    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, hammer_main, &h[k]), 0);
    /* at least 300 reloads, and until both threads have verified a good
     * many times across them (bounded: a slow machine ends the loop) */
    for (; i < 300 || atomic_load(&h[0].ok) < 500 || atomic_load(&h[1].ok) < 500; i++) {
        reload(a, CONFIG_DEV_SECRET, i % 2 ? both : new, 0);
        if (time_mono_ms() > deadline)
            break;
    }
    atomic_store(&stop, 1);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(atomic_load(&h[k].ok) > 0, "thread %d never verified in %d reloads", k, i);
        ck_assert_int_eq(atomic_load(&h[k].bad), 0);
    }
    auth_free(a);
    free(both);
    free(new);
}
END_TEST

static Suite *keys_suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("keys");

    tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_secrets_by_kid);
    tcase_add_test(tc, test_secret_without_kid_beside_file);
    tcase_add_test(tc, test_secrets_file_errors);
    tcase_add_test(tc, test_jwks_rs256);
    tcase_add_test(tc, test_jwks_es256_with_key_file);
    tcase_add_test(tc, test_jwks_errors);
    tcase_add_test(tc, test_reload);
    tcase_add_test(tc, test_reload_while_verifying);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(keys_suite());
}
