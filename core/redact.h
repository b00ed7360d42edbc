/*
 * redact.h - passwords out of text that is about to be logged.
 *
 * Why: database URLs carry passwords (postgresql://lark:PASSWORD@db/lark),
 * and they reach log lines in many ways: larkd naming the store it migrated,
 * a libpq error quoting its connection string, a configuration error. Rather
 * than trust every call site, log.c passes every line through here, so a
 * password is never written to a log (docs/OPERATIONS.md "Logs").
 *
 * What is replaced by "***":
 *   - the password of a URI's user information: scheme://user:PASSWORD@host
 *     (the authority ends at '/', '?', '#', white space or a quote);
 *   - the value of a "password=" parameter, as in a URI's query string or a
 *     libpq "key=value" connection string (case-insensitive; the value ends
 *     at '&', '#', white space or the end, or at the closing quote of a
 *     quoted value).
 * Everything else is copied unchanged. Pure; any thread.
 */
#ifndef LARK_REDACT_H
#define LARK_REDACT_H

#include <stddef.h>

/* The string that stands for a removed password. */
#define REDACT_MASK "***"

/*
 * Copy len bytes of in to out (cap bytes, cap > 0) with every password
 * replaced; the result is NUL-terminated and cut at cap - 1 bytes. Returns
 * its length.
 */
size_t redact_secrets(const char *in, size_t len, char *out, size_t cap);

#endif
