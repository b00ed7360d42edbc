/*
 * util.c - larkbench's small helpers (declared in bench.h): clocks,
 * latency samples and their percentiles, option numbers, tokens, names.
 */
#include "tools/larkbench/bench.h"

#include "core/mem.h"
#include "tools/larkbench/target.h"

#include <errno.h>
#include <jwt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench B;

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

void die(const char *what)
{
    fprintf(stderr, "larkbench: %s\n", what);
    exit(2);
}

uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

void samples_add(struct samples *s, int64_t v)
{
    if (s->n == s->cap) {
        if (s->cap >= SAMPLES_MAX)
            return; /* bounded: the percentiles of the first 20M are enough */
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double pct_ms(struct samples *s, double p)
{
    size_t k;
    if (s->n == 0)
        return -1;
    qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
    k = (size_t)ceil(p / 100.0 * (double)s->n);
    k = k ? k - 1 : 0;
    if (k >= s->n)
        k = s->n - 1;
    return (double)s->v[k] / NS_PER_MS;
}

double round3(double x)
{
    return round(x * 1000.0) / 1000.0;
}

int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

char *mint_token(const char *user)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    long now = (long)time(NULL);
    if (jwt_new(&jwt) == 0 && jwt_add_grant(jwt, "sub", user) == 0 &&
        jwt_add_grant_int(jwt, "iat", now) == 0 &&
        jwt_add_grant_int(jwt, "exp", now + TOKEN_TTL_S) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)B.o.secret,
                    (int)strlen(B.o.secret)) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (!tok)
        die("cannot sign a token (libjwt)");
    return tok;
}

void user_name(char *out, size_t len, const char *kind, unsigned i)
{
    snprintf(out, len, "%s-%s-%u", B.o.prefix, kind, i);
}

void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

int status_acked(int status)
{
    return B.o.target->acked(status);
}
