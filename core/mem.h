/*
 * mem.h - allocation that never returns NULL.
 *
 * Out of memory is not recoverable in a server that must never write half
 * a message: like redis, lighttpd and h2o, lark logs one line and aborts.
 * Every size that comes from input is checked against a limit in limits.h
 * before it reaches these functions.
 */
#ifndef LARK_MEM_H
#define LARK_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
