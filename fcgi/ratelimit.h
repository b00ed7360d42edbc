/*
 * ratelimit.h - per-user token buckets (API.md: "sends per user 20/s with a
 * burst of 60", answered 429 with Retry-After).
 *
 * A bucket holds up to burst tokens and refills at rate per second; each
 * send takes one. Buckets live in memory, one per recently active user:
 * a bucket that has refilled completely carries no information and is
 * dropped by a periodic sweep, so memory follows the number of users active
 * in the last burst/rate seconds, not the number ever seen. With several
 * larkd processes each enforces its own share (documented in
 * docs/OPERATIONS.md). Thread-safe (one mutex; the critical section is a
 * hash lookup and a few float operations).
 */
#ifndef LARK_RATELIMIT_H
#define LARK_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

/* rate 0 disables limiting (every take succeeds). Caller frees. */
struct ratelimit *ratelimit_new(double rate, double burst);
void ratelimit_free(struct ratelimit *rl);

/*
 * Take one token for user at now_ms (monotonic). 0 if allowed; LARK_ERATE
 * if not, with *retry_after set to the whole seconds until a token is back
 * (at least 1).
 */
int ratelimit_take(struct ratelimit *rl, const char *user, int64_t now_ms, int *retry_after);

/* New rate and burst for every user from now on (SIGHUP; any thread). */
void ratelimit_set(struct ratelimit *rl, double rate, double burst);

/* Buckets currently held (for tests). */
unsigned long ratelimit_size(struct ratelimit *rl);

#endif
