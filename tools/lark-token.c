/*
 * lark-token - mint a JWT access token for lark (development and tests).
 *
 * Signs with the same configuration larkd verifies with: HS256 and
 * LARK_JWT_SECRET (or the development secret) by default, or RS256/ES256
 * with a private key file. Prints the token on stdout.
 */
#include "core/config.h"
#include "core/ids.h"
#include "core/version.h"

#include <getopt.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A PEM private key is a few KiB at most. */
#define KEY_MAX (64 * 1024)

static void usage(FILE *out)
{
    fprintf(out, "usage: lark-token [options] USER\n"
                 "\n"
                 "Print a signed JWT whose sub is USER.\n"
                 "\n"
                 "  --ttl SECONDS   lifetime, default 3600 (exp = now + ttl)\n"
                 "  --alg ALG       HS256 (default), RS256 or ES256\n"
                 "  --secret S      HS256 secret (default: $LARK_JWT_SECRET or the dev secret)\n"
                 "  --key FILE      PEM private key for RS256/ES256\n"
                 "  --aud AUD       add an aud claim\n"
                 "  --iss ISS       add an iss claim\n"
                 "  --version       print the release and commit, and exit\n"
                 "  --help          this text\n");
}

static unsigned char *read_key(const char *path, int *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    size_t n;
    if (!f)
        return NULL;
    buf = malloc(KEY_MAX + 1);
    n = buf ? fread(buf, 1, KEY_MAX, f) : 0;
    fclose(f);
    if (!buf || n == 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = (int)n;
    return buf;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"ttl", required_argument, NULL, 't'},
                                         {"alg", required_argument, NULL, 'a'},
                                         {"secret", required_argument, NULL, 's'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"aud", required_argument, NULL, 'u'},
                                         {"iss", required_argument, NULL, 'i'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *alg = "HS256", *secret = getenv("LARK_JWT_SECRET"), *keyfile = NULL;
    const char *aud = NULL, *iss = NULL;
    long ttl = 3600;
    unsigned char *key = NULL;
    int keylen = 0, c, status = 1;
    jwt_t *jwt = NULL;
    char *tok = NULL;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': ttl = strtol(optarg, NULL, 10); break;
        case 'a': alg = optarg; break;
        case 's': secret = optarg; break;
        case 'k': keyfile = optarg; break;
        case 'u': aud = optarg; break;
        case 'i': iss = optarg; break;
        case 'V': version_print(stdout, "lark-token"); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || !ids_valid_user(argv[optind], strlen(argv[optind]))) {
        usage(stderr);
        return 2;
    }
    if (strcmp(alg, "HS256") == 0) {
        if (!secret || !*secret)
            secret = CONFIG_DEV_SECRET;
        key = (unsigned char *)strdup(secret);
        keylen = (int)strlen(secret);
    } else if (keyfile) {
        key = read_key(keyfile, &keylen);
    }
    if (!key) {
        fprintf(stderr, "lark-token: no key (use --secret or --key)\n");
        return 2;
    }
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", argv[optind]) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)time(NULL)) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)time(NULL) + ttl) != 0 ||
        (aud && jwt_add_grant(jwt, "aud", aud) != 0) ||
        (iss && jwt_add_grant(jwt, "iss", iss) != 0) ||
        jwt_set_alg(jwt, jwt_str_alg(alg), key, keylen) != 0 || !(tok = jwt_encode_str(jwt))) {
        fprintf(stderr, "lark-token: cannot sign with %s\n", alg);
        goto out;
    }
    printf("%s\n", tok);
    status = 0;
out:
    free(tok);
    jwt_free(jwt);
    free(key);
    return status;
}
