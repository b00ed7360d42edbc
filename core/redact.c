/*
 * redact.c - find URI passwords and password= values, copy the rest.
 */
#include "core/redact.h"

#include <string.h>
#include <strings.h>

/* Bounded output: appends never pass cap - 1 bytes. */
struct redact_out {
    char *p;
    size_t len, cap;
};

static void out_put(struct redact_out *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static int ends_authority(char c)
{
    return c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '"' || c == '\'' ||
           c == '\0';
}

/*
 * in[i] starts "://": if the authority after it holds "user:PASSWORD@",
 * set [*from, *to) to the password and return 1.
 */
static int uri_password(const char *in, size_t len, size_t i, size_t *from, size_t *to)
{
    size_t start = i + 3, at = 0, colon = 0, j;

    for (j = start; j < len && !ends_authority(in[j]); j++)
        if (in[j] == '@')
            at = j; /* the last '@' ends the user information */
    if (!at)
        return 0;
    for (j = start; j < at; j++)
        if (in[j] == ':') {
            colon = j;
            break;
        }
    if (!colon)
        return 0;
    *from = colon + 1;
    *to = at;
    return 1;
}

/*
 * in[i] starts "password=" (case-insensitive) at a word start: set
 * [*from, *to) to its value and return 1.
 */
static int param_password(const char *in, size_t len, size_t i, size_t *from, size_t *to)
{
    static const char key[] = "password=";
    size_t k = sizeof(key) - 1, j;
    char c = i ? in[i - 1] : ' ';

    if (len - i < k || strncasecmp(in + i, key, k) != 0)
        return 0;
    if (!(c == ' ' || c == '\t' || c == '?' || c == '&' || c == ';' || c == ',' || c == '('))
        return 0;
    j = i + k;
    if (j < len && (in[j] == '\'' || in[j] == '"')) {
        char q = in[j];
        size_t end = j + 1;
        while (end < len && in[end] != q)
            end += in[end] == '\\' && end + 1 < len ? 2 : 1;
        *from = j + 1;
        *to = end < len ? end : len;
        return 1;
    }
    *from = j;
    while (j < len && in[j] != '&' && in[j] != '#' && in[j] != ' ' && in[j] != '\t')
        j++;
    *to = j;
    return 1;
}

size_t redact_secrets(const char *in, size_t len, char *out, size_t cap)
{
    struct redact_out o = {out, 0, cap};
    size_t i = 0, done = 0;

    while (i < len) {
        size_t from, to;
        int hit = 0;
        if (in[i] == ':' && len - i >= 3 && in[i + 1] == '/' && in[i + 2] == '/')
            hit = uri_password(in, len, i, &from, &to);
        else if (in[i] == 'p' || in[i] == 'P')
            hit = param_password(in, len, i, &from, &to);
        if (!hit) {
            i++;
            continue;
        }
        out_put(&o, in + done, from - done);
        out_put(&o, REDACT_MASK, sizeof(REDACT_MASK) - 1);
        done = to;
        i = to > i ? to : i + 1;
    }
    out_put(&o, in + done, len - done);
    out[o.len] = '\0';
    return o.len;
}
