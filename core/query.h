/*
 * query.h - URL query strings, path segments, cookies and numbers.
 *
 * Everything here parses bytes that come straight from the network, so it
 * is small, bounded (LIMIT_QUERY_PARAMS, LIMIT_URI_MAX) and fuzzed
 * (tests/fuzz/fuzz_query.c). Percent-escapes are decoded; a malformed
 * escape, a decoded NUL byte or a repeated key is an error rather than a
 * guess, because two readings of one request must never both be possible.
 */
#ifndef LARK_QUERY_H
#define LARK_QUERY_H

#include "core/limits.h"

#include <stddef.h>
#include <stdint.h>

struct lark_err;

struct query_param {
    const char *key; /* decoded, NUL-terminated, inside query.mem */
    const char *val; /* decoded, "" when the parameter had no '=' */
};

struct query {
    struct query_param p[LIMIT_QUERY_PARAMS];
    int n;
    char *mem; /* owned: the decoded strings */
};

/*
 * Parse "a=1&b=x%20y" (len bytes, no leading '?'). '+' decodes to a space.
 * Empty pieces ("a=1&&b=2") are skipped. Errors (LARK_EINVAL): bad escape,
 * NUL, more than LIMIT_QUERY_PARAMS parameters, a repeated key, or longer
 * than LIMIT_URI_MAX. On error q is released. Caller releases q.
 */
int query_parse(const char *qs, size_t len, struct query *q, struct lark_err *err);

/* The value of key, or NULL. Borrowed from q. */
const char *query_get(const struct query *q, const char *key);

void query_release(struct query *q);

/*
 * Percent-decode len bytes of a path segment into out (room for len + 1
 * bytes); '+' stays '+'. Returns the decoded length, or -1 for a bad escape
 * or a decoded NUL.
 */
long url_decode_segment(const char *s, size_t len, char *out);

/*
 * Find cookie name in a Cookie header value ("a=1; lark_token=xyz").
 * Returns a pointer into header and sets *len, or NULL.
 */
const char *cookie_find(const char *header, const char *name, size_t *len);

/* Strict decimal: digits only, no sign or space, value <= max. 0 or -1. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/* The value of one hexadecimal digit (either case), or -1. */
int hex_digit(int c);

#endif
