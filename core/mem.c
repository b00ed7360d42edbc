/*
 * mem.c - allocation wrappers that abort on exhaustion.
 */
#include "core/mem.h"

#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *mem_check(void *p, size_t n)
{
    if (!p && n) {
        log_error("out of memory allocating %zu bytes", n);
        abort();
    }
    return p;
}

void *xmalloc(size_t n)
{
    return mem_check(malloc(n ? n : 1), n ? n : 1);
}

void *xcalloc(size_t count, size_t size)
{
    return mem_check(calloc(count ? count : 1, size ? size : 1), 1);
}

void *xrealloc(void *p, size_t n)
{
    return mem_check(realloc(p, n ? n : 1), n ? n : 1);
}

char *xstrdup(const char *s)
{
    return mem_check(strdup(s), strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
    return mem_check(strndup(s, n), n + 1);
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        log_error("out of memory formatting a string");
        abort();
    }
    return s;
}
