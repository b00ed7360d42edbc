/*
 * lark-token - mint a JWT access token for lark (development, tests, and
 * an operator checking a deployment).
 *
 * Signs with the same keys larkd verifies with: with --config, larkd's
 * configuration file (the HS256 key named by --kid, else the key without a
 * kid, else the first key of jwt_secrets_file with its kid; and jwt_aud,
 * jwt_iss); otherwise HS256 with --secret, LARK_JWT_SECRET or the
 * development secret, or RS256/ES256 with a private key file. Prints the
 * token on stdout.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/keyset.h"
#include "core/mem.h"
#include "core/version.h"

#include <getopt.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A PEM private key is a few KiB at most. */
#define KEY_MAX (64 * 1024)

struct opts {
    const char *alg, *secret, *keyfile, *aud, *iss, *kid, *config;
    long ttl;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: lark-token [options] USER\n"
                 "\n"
                 "Print a signed JWT whose sub is USER.\n"
                 "\n"
                 "  --ttl SECONDS   lifetime, default 3600 (exp = now + ttl)\n"
                 "  --config FILE   sign with larkd's HS256 key from FILE (jwt_secret,\n"
                 "                  jwt_secrets_file; and its jwt_aud, jwt_iss)\n"
                 "  --kid KID       put KID in the header (with --config: use that key)\n"
                 "  --alg ALG       HS256 (default), RS256 or ES256\n"
                 "  --secret S      HS256 secret (default: $LARK_JWT_SECRET or the dev secret)\n"
                 "  --key FILE      PEM private key for RS256/ES256\n"
                 "  --aud AUD       add an aud claim\n"
                 "  --iss ISS       add an iss claim\n"
                 "  --version       print the release and commit, and exit\n"
                 "  --help          this text\n");
}

/* The key file's bytes (NULL with a message when unreadable or empty). */
static unsigned char *read_key(const char *path, int *len)
{
    struct lark_err err = {0};
    struct buf b;
    size_t n = 0;
    char *key = NULL;

    buf_init(&b, KEY_MAX);
    if (buf_read_file(&b, path, &err) != 0)
        fprintf(stderr, "lark-token: %s\n", err.msg);
    else if (b.len)
        key = buf_detach(&b, &n);
    buf_release(&b);
    *len = (int)n;
    return (unsigned char *)key;
}

/* The signing key from larkd's configuration: 0, or 2 with a message. */
static int key_from_config(struct opts *o, struct config *cfg, unsigned char **key, int *len,
                           char **kid)
{
    struct lark_err err = {0};
    struct keyset ks;
    const struct keyset_key *k;

    if (config_load(cfg, o->config, &err) != 0 || keyset_load(cfg, &ks, &err) != 0) {
        fprintf(stderr, "lark-token: %s\n", err.msg);
        return 2;
    }
    k = keyset_find(&ks, o->kid);
    if (!k && !o->kid)
        k = &ks.v[0];
    if (ks.alg != JWT_ALG_HS256 || !k) {
        fprintf(stderr, "lark-token: %s\n",
                ks.alg != JWT_ALG_HS256 ? "a public key cannot sign: use --alg and --key"
                                        : "no key with that kid");
        keyset_release(&ks);
        return 2;
    }
    *key = (unsigned char *)xstrdup((const char *)k->key);
    *len = (int)k->len;
    *kid = k->kid ? xstrdup(k->kid) : NULL;
    o->alg = "HS256";
    if (!o->aud && *cfg->jwt_aud)
        o->aud = cfg->jwt_aud;
    if (!o->iss && *cfg->jwt_iss)
        o->iss = cfg->jwt_iss;
    keyset_release(&ks);
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option opts[] = {{"ttl", required_argument, NULL, 't'},
                                         {"alg", required_argument, NULL, 'a'},
                                         {"secret", required_argument, NULL, 's'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"aud", required_argument, NULL, 'u'},
                                         {"iss", required_argument, NULL, 'i'},
                                         {"kid", required_argument, NULL, 'K'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': o->ttl = strtol(optarg, NULL, 10); break;
        case 'a': o->alg = optarg; break;
        case 's': o->secret = optarg; break;
        case 'k': o->keyfile = optarg; break;
        case 'u': o->aud = optarg; break;
        case 'i': o->iss = optarg; break;
        case 'K': o->kid = optarg; break;
        case 'c': o->config = optarg; break;
        case 'V': version_print(stdout, "lark-token"); exit(0);
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || !ids_valid_user(argv[optind], strlen(argv[optind]))) {
        usage(stderr);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.alg = "HS256", .secret = getenv("LARK_JWT_SECRET"), .ttl = 3600};
    struct config cfg = {0};
    unsigned char *key = NULL;
    char *kid = NULL, *tok = NULL;
    int keylen = 0, status = parse(argc, argv, &o);
    jwt_t *jwt = NULL;

    if (status)
        return status;
    if (o.config) {
        status = key_from_config(&o, &cfg, &key, &keylen, &kid);
        if (status)
            goto out;
    } else if (!o.alg || strcmp(o.alg, "HS256") == 0) {
        const char *secret = o.secret && *o.secret ? o.secret : CONFIG_DEV_SECRET;
        key = (unsigned char *)xstrdup(secret);
        keylen = (int)strlen(secret);
    } else if (o.keyfile) {
        key = read_key(o.keyfile, &keylen);
    }
    status = 2;
    if (!key) {
        fprintf(stderr, "lark-token: no key (use --secret, --key or --config)\n");
        goto out;
    }
    if (!kid && o.kid)
        kid = xstrdup(o.kid);
    status = 1;
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", argv[optind]) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)time(NULL)) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)time(NULL) + o.ttl) != 0 ||
        (o.aud && jwt_add_grant(jwt, "aud", o.aud) != 0) ||
        (o.iss && jwt_add_grant(jwt, "iss", o.iss) != 0) ||
        (kid && jwt_add_header(jwt, "kid", kid) != 0) ||
        jwt_set_alg(jwt, jwt_str_alg(o.alg), key, keylen) != 0 || !(tok = jwt_encode_str(jwt))) {
        fprintf(stderr, "lark-token: cannot sign with %s\n", o.alg);
        goto out;
    }
    printf("%s\n", tok);
    status = 0;
out:
    free(tok);
    free(kid);
    jwt_free(jwt);
    if (key)
        memset(key, 0, (size_t)keylen);
    free(key);
    config_release(&cfg);
    return status;
}
