/*
 * ratelimit_impl.h - what a rate limiter back end implements (not for its
 * users, who see ratelimit.h only).
 *
 * Each back end embeds struct ratelimit first in its own struct and fills
 * one const struct ratelimit_ops; ratelimit.c dispatches. The functions
 * have the contracts of the ratelimit_* functions of the same names.
 */
#ifndef LARK_RATELIMIT_IMPL_H
#define LARK_RATELIMIT_IMPL_H

#include <stdint.h>

struct ratelimit;

struct ratelimit_ops {
    const char *name; /* "memory", "store" */
    int (*take)(struct ratelimit *rl, const char *user, int64_t now_ms, int *retry_after);
    void (*set)(struct ratelimit *rl, double rate, double burst);
    unsigned long (*size)(struct ratelimit *rl);
    void (*free)(struct ratelimit *rl);
};

struct ratelimit {
    const struct ratelimit_ops *ops;
};

#endif
