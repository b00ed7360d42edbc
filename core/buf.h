/*
 * buf.h - the one growable byte buffer (git's strbuf, curl's dynbuf).
 *
 * Invariants: b->data is NULL until the first append, then always NUL
 * terminated at b->len (the NUL is not counted); b->len <= b->max. A buffer
 * never grows past its max: an append that would returns LARK_ETOOLARGE and
 * leaves the buffer unchanged, so input-driven buffers are bounded by
 * construction. The caller owns the struct; buf_release frees the bytes.
 * Not thread-safe; one owner at a time.
 */
#ifndef LARK_BUF_H
#define LARK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* owned; NULL when empty and never grown */
    size_t len; /* bytes used, excluding the terminating NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* most bytes len may ever reach */
};

/* Initialise an empty buffer that may grow to max bytes. */
void buf_init(struct buf *b, size_t max);

/* Free the bytes; the buffer is empty and reusable with the same max. */
void buf_release(struct buf *b);

/* Forget the contents, keep the allocation. */
void buf_reset(struct buf *b);

/* Append; 0 or LARK_ETOOLARGE (buffer unchanged). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Shorten to len bytes (len <= b->len). */
void buf_truncate(struct buf *b, size_t len);

/* Remove the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

/* Take the bytes out: the caller frees the result; the buffer is empty. */
char *buf_detach(struct buf *b, size_t *len);

struct lark_err;
/*
 * Append the whole file at path (configuration, keys, migrations: small
 * files read once). 0, or LARK_EINVAL with err naming the file when it
 * cannot be opened or read, or would take the buffer past its max; the
 * buffer then keeps what it held before.
 */
int buf_read_file(struct buf *b, const char *path, struct lark_err *err);

#endif
