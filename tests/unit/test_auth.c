/*
 * test_auth.c - core/auth: JWT verification and every claim rule of
 * API.md "Authentication".
 *
 * Tokens are minted here with libjwt, the way an identity provider would.
 * RS256 and ES256 keys are generated at test time with the openssl command
 * into a temporary directory (nothing secret is kept in the repository).
 * The clock is a fixed NOW passed to auth_verify, so exp and nbf edges are
 * exact.
 */
#include "core/auth.h"

#include "core/b64url.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mem.h"
#include "tests/unit/unit.h"

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define NOW 1700000000LL
#define SECRET "0123456789abcdef0123456789abcdef"
#define OTHER_SECRET "fedcba9876543210fedcba9876543210"

/* Keys generated once for the whole program (see keys_setup). */
static char *key_dir;
static unsigned char *rsa_priv, *rsa2_priv, *ec_priv, *ec2_priv, *rsa_pub_pem;
static int rsa_priv_len, rsa2_priv_len, ec_priv_len, ec2_priv_len, rsa_pub_len;
static char *rsa_pub_path, *ec_pub_path;

/* ---- helpers ------------------------------------------------------------ */

/* Run args (NULL-terminated, no shell), output discarded; assert it
 * exits 0. */
static void run(const char *const args[])
{
    char *argv[16];
    int status = 0, n = 0;
    pid_t pid;

    for (; args[n]; n++) {
        ck_assert_int_lt(n, 15);
        argv[n] = xstrdup(args[n]);
    }
    argv[n] = NULL;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "'%s %s' failed (status %d); is the openssl command installed?", argv[0], argv[1],
                  status);
    for (int i = 0; i < n; i++)
        free(argv[i]);
}

static unsigned char *slurp(const char *path, int *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *p = xmalloc(16384);
    size_t n;

    ck_assert_msg(f != NULL, "cannot read %s", path);
    n = fread(p, 1, 16383, f);
    fclose(f);
    ck_assert_uint_gt(n, 0);
    p[n] = '\0';
    *len = (int)n;
    return p;
}

/* Generate a private key (genpkey args) and its public half; read both. */
static unsigned char *keypair(const char *name, const char *alg, const char *opt, int *len,
                              char **pub_path)
{
    char *priv = unit_path(key_dir, name);
    size_t plen = strlen(priv) + 5;
    char *pub = xmalloc(plen);
    unsigned char *bytes;

    snprintf(pub, plen, "%s.pub", priv);
    {
        const char *gen[] = {"openssl", "genpkey", "-algorithm", alg, "-pkeyopt",
                             opt,       "-out",    priv,         NULL};
        const char *pubout[] = {"openssl", "pkey", "-in", priv, "-pubout", "-out", pub, NULL};
        run(gen);
        run(pubout);
    }
    bytes = slurp(priv, len);
    free(priv);
    if (pub_path)
        *pub_path = pub;
    else
        free(pub);
    return bytes;
}

static void keys_setup(void)
{
    key_dir = unit_tmpdir();
    rsa_priv = keypair("rsa.pem", "RSA", "rsa_keygen_bits:2048", &rsa_priv_len, &rsa_pub_path);
    rsa2_priv = keypair("rsa2.pem", "RSA", "rsa_keygen_bits:2048", &rsa2_priv_len, NULL);
    ec_priv = keypair("ec.pem", "EC", "ec_paramgen_curve:P-256", &ec_priv_len, &ec_pub_path);
    ec2_priv = keypair("ec2.pem", "EC", "ec_paramgen_curve:P-256", &ec2_priv_len, NULL);
    rsa_pub_pem = slurp(rsa_pub_path, &rsa_pub_len);
}

static void keys_teardown(void)
{
    free(rsa_priv);
    free(rsa2_priv);
    free(ec_priv);
    free(ec2_priv);
    free(rsa_pub_pem);
    free(rsa_pub_path);
    free(ec_pub_path);
    unit_rmtree(key_dir);
    free(key_dir);
    key_dir = NULL;
}

/* A token with claims (JSON object text) signed with alg and key. */
static char *mint_key(jwt_alg_t alg, const unsigned char *key, int key_len, const char *claims)
{
    jwt_t *jwt = NULL;
    char *tok;

    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_msg(jwt_add_grants_json(jwt, claims) == 0, "bad claims %s", claims);
    ck_assert_int_eq(jwt_set_alg(jwt, alg, key, key_len), 0);
    tok = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(tok);
    jwt_free(jwt);
    return tok;
}

static char *mint(const char *claims)
{
    return mint_key(JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET), claims);
}

/* A verifier for alg; aud, iss and key_file may be NULL. */
static struct auth *verifier(const char *alg, const char *secret, const char *key_file,
                             const char *aud, const char *iss, int leeway)
{
    struct config cfg;
    struct lark_err err = {0};
    struct auth *a = NULL;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.jwt_alg = xstrdup(alg);
    cfg.jwt_secret = xstrdup(secret ? secret : "");
    cfg.jwt_key_file = xstrdup(key_file ? key_file : "");
    cfg.jwt_aud = xstrdup(aud ? aud : "");
    cfg.jwt_iss = xstrdup(iss ? iss : "");
    cfg.jwt_leeway = leeway;
    rc = auth_new(&cfg, &a, &err);
    config_release(&cfg);
    ck_assert_msg(rc == 0, "auth_new %s: %s", alg, err.msg);
    return a;
}

static struct auth *hs256(void)
{
    return verifier("HS256", SECRET, NULL, NULL, NULL, 0);
}

/* auth_verify on a NUL-terminated token; the user on success. */
static int verify(const struct auth *a, const char *tok, char user[LIMIT_USER_ID_MAX + 1])
{
    struct lark_err err = {0};
    int rc;

    memset(user, 'X', LIMIT_USER_ID_MAX + 1);
    rc = auth_verify(a, tok, strlen(tok), NOW, user, &err);
    if (rc)
        ck_assert_msg(err.code == rc && err.msg[0], "rc %d without matching err", rc);
    return rc;
}

/* Assert claims, signed HS256 with the right secret, verify to code. */
static void claims_give(const struct auth *a, const char *claims, int code)
{
    char user[LIMIT_USER_ID_MAX + 1];
    char *tok = mint(claims);
    int rc = verify(a, tok, user);
    ck_assert_msg(rc == code, "%s: got %d, want %d", claims, rc, code);
    free(tok);
}

/* A token of exactly this header and claims text, signed HS256 with
 * SECRET: libjwt would re-serialize (and so de-duplicate) the JSON. */
static char *mint_raw(const char *header, const char *claims)
{
    char *tok = xmalloc(B64URL_LEN(strlen(header)) + B64URL_LEN(strlen(claims)) + 64);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    size_t n = b64url_encode(header, strlen(header), tok);

    tok[n++] = '.';
    n += b64url_encode(claims, strlen(claims), tok + n);
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok, n, mac, &maclen));
    tok[n++] = '.';
    b64url_encode(mac, maclen, tok + n);
    return tok;
}

/* ---- HS256 -------------------------------------------------------------- */

START_TEST(test_hs256_valid)
{
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];
    char *tok = mint("{\"sub\":\"alice\",\"exp\":1700000060,\"iat\":1699999990}");

    ck_assert_int_eq(verify(a, tok, user), 0);
    ck_assert_str_eq(user, "alice");
    free(tok);
    auth_free(a);
}
END_TEST

START_TEST(test_hs256_len_not_nul_terminated)
{
    struct auth *a = hs256();
    struct lark_err err;
    char user[LIMIT_USER_ID_MAX + 1];
    char *tok = mint("{\"sub\":\"bob\",\"exp\":1700000060}");
    size_t n = strlen(tok);
    char *padded = xmalloc(n + 8);

    /* The token is read for len bytes only, whatever follows it. */
    memcpy(padded, tok, n);
    memcpy(padded + n, "garbage", 8);
    ck_assert_int_eq(auth_verify(a, padded, n, NOW, user, &err), 0);
    ck_assert_str_eq(user, "bob");
    /* One byte short breaks the signature. */
    ck_assert_int_eq(auth_verify(a, padded, n - 1, NOW, user, &err), LARK_ETOKEN);
    free(padded);
    free(tok);
    auth_free(a);
}
END_TEST

START_TEST(test_hs256_bad_signature)
{
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];
    const char *claims = "{\"sub\":\"alice\",\"exp\":1700000060}";
    char *other = mint_key(JWT_ALG_HS256, (const unsigned char *)OTHER_SECRET,
                           (int)strlen(OTHER_SECRET), claims);
    char *good = mint(claims);
    char *evil = mint("{\"sub\":\"mallory\",\"exp\":1700000060}");
    char *dot1 = strchr(good, '.'), *dot2 = strrchr(good, '.');
    char *edot1 = strchr(evil, '.'), *edot2 = strrchr(evil, '.');
    char *spliced;
    size_t len;

    ck_assert_int_eq(verify(a, other, user), LARK_ETOKEN);
    /* mallory's claims under alice's signature. */
    len = strlen(good) + strlen(evil);
    spliced = xmalloc(len);
    snprintf(spliced, len, "%.*s%.*s%s", (int)(dot1 - good), good, (int)(edot2 - edot1), edot1,
             dot2);
    ck_assert_int_eq(verify(a, spliced, user), LARK_ETOKEN);
    /* No signature at all. */
    dot2[1] = '\0';
    ck_assert_int_eq(verify(a, good, user), LARK_ETOKEN);
    free(spliced);
    free(other);
    free(good);
    free(evil);
    auth_free(a);
}
END_TEST

/* Issue 13: jansson keeps the last of two equal names, so a token with
 * "sub" twice was read as its second sub; such a token is refused. */
START_TEST(test_duplicate_claims_refused)
{
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *ok = mint_raw(hdr, "{\"sub\":\"alice\",\"exp\":1700000060}");
    char *dup_sub = mint_raw(hdr, "{\"sub\":\"alice\",\"exp\":1700000060,\"sub\":\"admin\"}");
    char *dup_exp = mint_raw(hdr, "{\"sub\":\"alice\",\"exp\":1,\"exp\":1700000060}");
    char *dup_hdr =
        mint_raw("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"exp\":1700000060}");

    ck_assert_int_eq(verify(a, ok, user), 0); /* the hand-made token is sound */
    ck_assert_str_eq(user, "alice");
    ck_assert_int_eq(verify(a, dup_sub, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, dup_exp, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, dup_hdr, user), LARK_ETOKEN);
    free(ok);
    free(dup_sub);
    free(dup_exp);
    free(dup_hdr);
    auth_free(a);
}
END_TEST

START_TEST(test_alg_none_refused)
{
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];
    char *tok = mint_key(JWT_ALG_NONE, NULL, 0, "{\"sub\":\"alice\",\"exp\":1700000060}");

    ck_assert_int_eq(verify(a, tok, user), LARK_ETOKEN);
    free(tok);
    auth_free(a);
}
END_TEST

START_TEST(test_other_hmac_algs_refused)
{
    /* The same secret, a stronger HMAC: still not the configured alg. */
    static const jwt_alg_t algs[] = {JWT_ALG_HS384, JWT_ALG_HS512};
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];

    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        struct lark_err err = {0};
        char *tok = mint_key(algs[i], (const unsigned char *)SECRET, (int)strlen(SECRET),
                             "{\"sub\":\"alice\",\"exp\":1700000060}");
        ck_assert_int_eq(auth_verify(a, tok, strlen(tok), NOW, user, &err), LARK_ETOKEN);
        ck_assert_ptr_nonnull(strstr(err.msg, "algorithm"));
        free(tok);
    }
    auth_free(a);
}
END_TEST

START_TEST(test_rs256_token_for_hs256_refused)
{
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];
    char *tok =
        mint_key(JWT_ALG_RS256, rsa_priv, rsa_priv_len, "{\"sub\":\"alice\",\"exp\":1700000060}");

    ck_assert_int_eq(verify(a, tok, user), LARK_ETOKEN);
    free(tok);
    auth_free(a);
}
END_TEST

START_TEST(test_exp)
{
    struct auth *a = hs256();
    struct auth *lee = verifier("HS256", SECRET, NULL, NULL, NULL, 30);

    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000001}", 0);
    /* exp is the first second the token is no longer valid. */
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000000}", LARK_EEXPIRED);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1699999999}", LARK_EEXPIRED);
    claims_give(a, "{\"sub\":\"u\",\"exp\":0}", LARK_EEXPIRED);
    claims_give(a, "{\"sub\":\"u\",\"exp\":-5}", LARK_EEXPIRED);
    /* NumericDate may have a fraction. */
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000000.5}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1699999999.5}", LARK_EEXPIRED);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1e300}", 0);
    /* Leeway: expired 10 s ago passes with 30 s of leeway, 30 s does not. */
    claims_give(lee, "{\"sub\":\"u\",\"exp\":1699999990}", 0);
    claims_give(lee, "{\"sub\":\"u\",\"exp\":1699999970}", LARK_EEXPIRED);
    auth_free(lee);
    auth_free(a);
}
END_TEST

START_TEST(test_exp_malformed)
{
    struct auth *a = hs256();

    claims_give(a, "{\"sub\":\"u\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":\"1700000060\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":null}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":true}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":[1700000060]}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":{}}", LARK_ETOKEN);
    auth_free(a);
}
END_TEST

START_TEST(test_nbf)
{
    struct auth *a = hs256();
    struct auth *lee = verifier("HS256", SECRET, NULL, NULL, NULL, 30);

    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":1700000000}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":1699990000}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":1700000001}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":1700000010}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":\"1699990000\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":null}", LARK_ETOKEN);
    claims_give(lee, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":1700000010}", 0);
    claims_give(lee, "{\"sub\":\"u\",\"exp\":1700000060,\"nbf\":1700000031}", LARK_ETOKEN);
    auth_free(lee);
    auth_free(a);
}
END_TEST

START_TEST(test_aud)
{
    struct auth *a = verifier("HS256", SECRET, NULL, "lark", NULL, 0);
    struct auth *any = hs256();

    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"lark\"}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":[\"web\",\"lark\"]}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":[\"lark\"]}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"other\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"lark2\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"lar\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"LARK\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":[\"web\",\"app\"]}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":[]}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":[[\"lark\"]]}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":7}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060}", LARK_ETOKEN);
    /* Not configured: any audience, or none, is accepted. */
    claims_give(any, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"other\"}", 0);
    claims_give(any, "{\"sub\":\"u\",\"exp\":1700000060}", 0);
    auth_free(any);
    auth_free(a);
}
END_TEST

START_TEST(test_iss)
{
    struct auth *a = verifier("HS256", SECRET, NULL, NULL, "https://id.example", 0);

    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"iss\":\"https://id.example\"}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"iss\":\"https://id.example/\"}",
                LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"iss\":\"https://evil.example\"}",
                LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"iss\":[\"https://id.example\"]}",
                LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060}", LARK_ETOKEN);
    auth_free(a);
}
END_TEST

START_TEST(test_aud_and_iss_together)
{
    struct auth *a = verifier("HS256", SECRET, NULL, "lark", "idp", 0);

    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"lark\",\"iss\":\"idp\"}", 0);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"aud\":\"lark\"}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"u\",\"exp\":1700000060,\"iss\":\"idp\"}", LARK_ETOKEN);
    auth_free(a);
}
END_TEST

START_TEST(test_sub)
{
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];
    char claims[256];
    char id[LIMIT_USER_ID_MAX + 2];
    char *tok;

    claims_give(a, "{\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"\",\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":null,\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":42,\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":[\"alice\"],\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"al ice\",\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"al/ice\",\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"alice\\n\",\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"al:ice\",\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"caf\\u00e9\",\"exp\":1700000060}", LARK_ETOKEN);
    claims_give(a, "{\"sub\":\"a_b.c@d-E9\",\"exp\":1700000060}", 0);

    /* 64 characters is the longest id, copied whole; 65 is refused. */
    memset(id, 'u', LIMIT_USER_ID_MAX);
    id[0] = 'A';
    id[LIMIT_USER_ID_MAX - 1] = 'Z';
    id[LIMIT_USER_ID_MAX] = '\0';
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":1700000060}", id);
    tok = mint(claims);
    ck_assert_int_eq(verify(a, tok, user), 0);
    ck_assert_str_eq(user, id);
    ck_assert_uint_eq(strlen(user), LIMIT_USER_ID_MAX);
    free(tok);
    id[LIMIT_USER_ID_MAX] = 'x';
    id[LIMIT_USER_ID_MAX + 1] = '\0';
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":1700000060}", id);
    claims_give(a, claims, LARK_ETOKEN);
    auth_free(a);
}
END_TEST

START_TEST(test_token_length_limit)
{
    struct auth *a = hs256();
    char user[LIMIT_USER_ID_MAX + 1];
    char *claims = xmalloc(LIMIT_TOKEN_MAX + 64);
    int under = 0, over = 0;

    /* Grow a padding claim until the token passes LIMIT_TOKEN_MAX: every
     * valid token up to the limit is accepted, the first past it is not. */
    for (size_t pad = 2800; pad < LIMIT_TOKEN_MAX && !over; pad++) {
        char *tok;
        size_t len;
        int rc;

        snprintf(claims, LIMIT_TOKEN_MAX + 64, "{\"sub\":\"u\",\"exp\":1700000060,\"p\":\"%0*d\"}",
                 (int)pad, 0);
        tok = mint(claims);
        len = strlen(tok);
        rc = verify(a, tok, user);
        if (len <= LIMIT_TOKEN_MAX) {
            ck_assert_msg(rc == 0, "a %zu-byte token was refused", len);
            under += len > LIMIT_TOKEN_MAX - 8;
        } else {
            ck_assert_msg(rc == LARK_ETOKEN, "a %zu-byte token gave %d", len, rc);
            over = 1;
        }
        free(tok);
    }
    ck_assert_int_gt(under, 0);
    ck_assert_int_eq(over, 1);
    free(claims);
    auth_free(a);
}
END_TEST

START_TEST(test_garbage)
{
    static const char *const bad[] = {
        "x",
        "abc.def",
        "abc.def.ghi",
        "..",
        "...",
        "a.b.c.d",
        "eyJhbGciOiJIUzI1NiJ9..",
        "eyJhbGciOiJIUzI1NiJ9.eyJ9.x",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.x",     /* body "not json" */
        "bm90IGpzb24.eyJzdWIiOiJ1In0.x",          /* header "not json" */
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.",   /* alg none, unsigned */
        "eyJhbGciOiJYWVoifQ.eyJzdWIiOiJ1In0.abc", /* alg XYZ */
        "!!!.???.***",
        "Bearer abc",
    };
    struct auth *a = hs256();
    struct lark_err err;
    char user[LIMIT_USER_ID_MAX + 1];
    char *tok = mint("{\"sub\":\"u\",\"exp\":1700000060}");

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(verify(a, bad[i], user) == LARK_ETOKEN, "'%s' was not refused", bad[i]);
    ck_assert_int_eq(auth_verify(a, "", 0, NOW, user, &err), LARK_ENOAUTH);
    ck_assert_int_eq(auth_verify(a, tok, 0, NOW, user, &err), LARK_ENOAUTH);
    /* An embedded NUL: the token is the full len bytes, not a C string. */
    tok[10] = '\0';
    ck_assert_int_eq(auth_verify(a, tok, 20, NOW, user, &err), LARK_ETOKEN);
    free(tok);
    auth_free(a);
}
END_TEST

START_TEST(test_random_bytes)
{
    struct auth *a = hs256();
    struct lark_err err;
    char user[LIMIT_USER_ID_MAX + 1];
    char tok[600];
    struct unit_rng rng;

    unit_rng_init(&rng, "test_random_bytes");
    for (int i = 0; i < 2000; i++) {
        size_t len = 1 + unit_below(&rng, sizeof(tok));
        for (size_t j = 0; j < len; j++)
            tok[j] = i & 1 ? (char)unit_rand(&rng) : "ab.-_0eyJ"[unit_below(&rng, 9)];
        ck_assert_int_eq(auth_verify(a, tok, len, NOW, user, &err), LARK_ETOKEN);
    }
    auth_free(a);
}
END_TEST

/* ---- RS256 / ES256 -------------------------------------------------------- */

START_TEST(test_rs256)
{
    struct auth *a = verifier("RS256", NULL, rsa_pub_path, NULL, NULL, 0);
    char user[LIMIT_USER_ID_MAX + 1];
    const char *claims = "{\"sub\":\"carol\",\"exp\":1700000060}";
    char *good = mint_key(JWT_ALG_RS256, rsa_priv, rsa_priv_len, claims);
    char *wrong_key = mint_key(JWT_ALG_RS256, rsa2_priv, rsa2_priv_len, claims);
    char *rs512 = mint_key(JWT_ALG_RS512, rsa_priv, rsa_priv_len, claims);
    /* The classic confusion: HMAC keyed with the public key's PEM text. */
    char *confused = mint_key(JWT_ALG_HS256, rsa_pub_pem, rsa_pub_len, claims);
    char *none = mint_key(JWT_ALG_NONE, NULL, 0, claims);
    char *es = mint_key(JWT_ALG_ES256, ec_priv, ec_priv_len, claims);
    char *expired =
        mint_key(JWT_ALG_RS256, rsa_priv, rsa_priv_len, "{\"sub\":\"carol\",\"exp\":1699999999}");

    ck_assert_int_eq(verify(a, good, user), 0);
    ck_assert_str_eq(user, "carol");
    ck_assert_int_eq(verify(a, wrong_key, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, rs512, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, confused, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, none, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, es, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, expired, user), LARK_EEXPIRED);
    free(good);
    free(wrong_key);
    free(rs512);
    free(confused);
    free(none);
    free(es);
    free(expired);
    auth_free(a);
}
END_TEST

START_TEST(test_es256)
{
    struct auth *a = verifier("ES256", NULL, ec_pub_path, "lark", NULL, 0);
    char user[LIMIT_USER_ID_MAX + 1];
    const char *claims = "{\"sub\":\"dave\",\"exp\":1700000060,\"aud\":\"lark\"}";
    char *good = mint_key(JWT_ALG_ES256, ec_priv, ec_priv_len, claims);
    char *wrong_key = mint_key(JWT_ALG_ES256, ec2_priv, ec2_priv_len, claims);
    char *rs = mint_key(JWT_ALG_RS256, rsa_priv, rsa_priv_len, claims);
    char *hs = mint(claims);
    char *bad_aud = mint_key(JWT_ALG_ES256, ec_priv, ec_priv_len,
                             "{\"sub\":\"dave\",\"exp\":1700000060,\"aud\":\"web\"}");

    ck_assert_int_eq(verify(a, good, user), 0);
    ck_assert_str_eq(user, "dave");
    ck_assert_int_eq(verify(a, wrong_key, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, rs, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, hs, user), LARK_ETOKEN);
    ck_assert_int_eq(verify(a, bad_aud, user), LARK_ETOKEN);
    free(good);
    free(wrong_key);
    free(rs);
    free(hs);
    free(bad_aud);
    auth_free(a);
}
END_TEST

/* ---- configuration -------------------------------------------------------- */

static int new_gives(const char *alg, const char *secret, const char *key_file)
{
    struct config cfg;
    struct lark_err err = {0};
    struct auth *a = (struct auth *)0x1;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.jwt_alg = xstrdup(alg);
    cfg.jwt_secret = xstrdup(secret);
    cfg.jwt_key_file = xstrdup(key_file);
    cfg.jwt_aud = xstrdup("");
    cfg.jwt_iss = xstrdup("");
    rc = auth_new(&cfg, &a, &err);
    config_release(&cfg);
    if (rc) {
        ck_assert_ptr_null(a);
        ck_assert_int_eq(err.code, rc);
    }
    auth_free(rc ? NULL : a);
    return rc;
}

START_TEST(test_auth_new_errors)
{
    char *empty = unit_path(key_dir, "empty.pem");
    char *missing = unit_path(key_dir, "missing.pem");

    unit_write_file(empty, "");
    ck_assert_int_eq(new_gives("HS256", SECRET, ""), 0);
    ck_assert_int_eq(new_gives("HS256", "0123456789abcdef", ""), 0);
    ck_assert_int_eq(new_gives("HS256", "0123456789abcde", ""), LARK_EINVAL);
    ck_assert_int_eq(new_gives("HS256", "", ""), LARK_EINVAL);
    ck_assert_int_eq(new_gives("HS384", SECRET, ""), LARK_EINVAL);
    ck_assert_int_eq(new_gives("none", SECRET, ""), LARK_EINVAL);
    ck_assert_int_eq(new_gives("hs256", SECRET, ""), LARK_EINVAL);
    ck_assert_int_eq(new_gives("RS256", SECRET, ""), LARK_EINVAL);
    ck_assert_int_eq(new_gives("RS256", "", missing), LARK_EINVAL);
    ck_assert_int_eq(new_gives("ES256", "", empty), LARK_EINVAL);
    ck_assert_int_eq(new_gives("RS256", "", rsa_pub_path), 0);
    ck_assert_int_eq(new_gives("ES256", "", ec_pub_path), 0);
    free(empty);
    free(missing);
}
END_TEST

/* ---- minting (development tokens) ---------------------------------------- */

START_TEST(test_mint_verifies)
{
    struct auth *a = verifier("HS256", SECRET, NULL, "lark", "https://id.example", 0);
    struct auth *other = verifier("HS256", OTHER_SECRET, NULL, NULL, NULL, 0);
    struct lark_err err = {0};
    char user[LIMIT_USER_ID_MAX + 1];
    char *tok = NULL;

    ck_assert_int_eq(auth_mint(a, "alice", NOW, 60, &tok, &err), 0);
    ck_assert_ptr_nonnull(tok);
    /* accepted by the verifier that minted it, aud and iss included */
    ck_assert_int_eq(verify(a, tok, user), 0);
    ck_assert_str_eq(user, "alice");
    /* exp = now + ttl exactly */
    ck_assert_int_eq(auth_verify(a, tok, strlen(tok), NOW + 59, user, &err), 0);
    ck_assert_int_eq(auth_verify(a, tok, strlen(tok), NOW + 60, user, &err), LARK_EEXPIRED);
    /* signed with that secret and no other */
    ck_assert_int_eq(verify(other, tok, user), LARK_ETOKEN);
    free(tok);
    auth_free(a);
    auth_free(other);
}
END_TEST

START_TEST(test_mint_refuses)
{
    struct auth *a = hs256();
    struct auth *rs = verifier("RS256", NULL, rsa_pub_path, NULL, NULL, 0);
    struct lark_err err = {0};
    char *tok = NULL;

    ck_assert_int_eq(auth_mint(a, "", NOW, 60, &tok, &err), LARK_EFIELD);
    ck_assert_int_eq(auth_mint(a, "bad id", NOW, 60, &tok, &err), LARK_EFIELD);
    ck_assert_ptr_null(tok);
    /* a public key cannot sign */
    ck_assert_int_eq(auth_mint(rs, "alice", NOW, 60, &tok, &err), LARK_EINVAL);
    ck_assert_ptr_null(tok);
    auth_free(a);
    auth_free(rs);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("verify");

    /* One set of keys for every test: RSA generation takes a while. */
    tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_test(tc, test_hs256_valid);
    tcase_add_test(tc, test_hs256_len_not_nul_terminated);
    tcase_add_test(tc, test_hs256_bad_signature);
    tcase_add_test(tc, test_duplicate_claims_refused);
    tcase_add_test(tc, test_alg_none_refused);
    tcase_add_test(tc, test_other_hmac_algs_refused);
    tcase_add_test(tc, test_rs256_token_for_hs256_refused);
    tcase_add_test(tc, test_exp);
    tcase_add_test(tc, test_exp_malformed);
    tcase_add_test(tc, test_nbf);
    tcase_add_test(tc, test_aud);
    tcase_add_test(tc, test_iss);
    tcase_add_test(tc, test_aud_and_iss_together);
    tcase_add_test(tc, test_sub);
    tcase_add_test(tc, test_token_length_limit);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_random_bytes);
    tcase_add_test(tc, test_rs256);
    tcase_add_test(tc, test_es256);
    tcase_add_test(tc, test_auth_new_errors);
    tcase_add_test(tc, test_mint_verifies);
    tcase_add_test(tc, test_mint_refuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(auth_suite());
}
