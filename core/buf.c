/*
 * buf.c - bounded growable buffer.
 */
#include "core/buf.h"

#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_release(struct buf *b)
{
    free(b->data);
    buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Make room for extra more bytes plus the NUL. */
static int buf_grow(struct buf *b, size_t extra)
{
    size_t need, cap;

    if (extra > b->max - b->len)
        return LARK_ETOOLARGE;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    int rc = buf_grow(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    int rc;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return LARK_EINVAL;
    rc = buf_grow(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_truncate(struct buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    if (!p)
        p = xstrdup("");
    buf_init(b, b->max);
    return p;
}

int buf_read_file(struct buf *b, const char *path, struct lark_err *err)
{
    size_t start = b->len, got;
    char chunk[8192];
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if (!f)
        return lark_err_set(err, LARK_EINVAL, "cannot open %s", path);
    while (rc == 0 && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(b, chunk, got) != 0)
            rc = lark_err_set(err, LARK_EINVAL, "%s is over %zu bytes", path, b->max - start);
    if (rc == 0 && ferror(f))
        rc = lark_err_set(err, LARK_EINVAL, "cannot read %s", path);
    fclose(f);
    if (rc && b->data)
        buf_truncate(b, start);
    return rc;
}
