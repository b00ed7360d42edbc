/*
 * ratelimit.h - per-user token buckets (API.md: "sends per user 20/s with a
 * burst of 60", answered 429 with Retry-After).
 *
 * A bucket holds up to burst tokens and refills at rate per second; each
 * send takes one. Two back ends behind this one interface
 * (ratelimit_impl.h):
 *   - in memory (ratelimit_new, this file's ratelimit.c): larkd as a
 *     FastCGI daemon. One bucket per recently active user: a bucket that
 *     has refilled completely carries no information and is dropped by a
 *     periodic sweep, so memory follows the number of users active in the
 *     last burst/rate seconds, not the number ever seen. With several
 *     larkd processes each enforces its own share (documented in
 *     docs/OPERATIONS.md). Thread-safe (one mutex; the critical section is
 *     a hash lookup and a few float operations).
 *   - in the store (ratelimit_new_store, ratelimit_store.c): larkd as a
 *     CGI program, where every request is a new process, so the buckets
 *     live in the database that every process shares (store_rate_take),
 *     one short write per take. Only for the thread that owns the store
 *     connection it was given.
 * Both refuse with the same error and Retry-After.
 */
#ifndef LARK_RATELIMIT_H
#define LARK_RATELIMIT_H

#include <stdint.h>

struct ratelimit;

struct store_conn;

/* In memory. rate 0 disables limiting (every take succeeds). Caller frees. */
struct ratelimit *ratelimit_new(double rate, double burst);

/*
 * In the store: buckets of class cls ("send", "typing", ...; copied) in
 * the database behind db (borrowed; it must outlive the limiter, and only
 * its thread may take). rate 0 disables limiting. A take the database
 * cannot answer is allowed (and logged): the request that follows meets
 * the same database and fails there. now_ms is ignored: the store's
 * buckets run on the wall clock, which hosts agree on. Caller frees.
 */
struct ratelimit *ratelimit_new_store(struct store_conn *db, const char *cls, double rate,
                                      double burst);

/* Accepts NULL. */
void ratelimit_free(struct ratelimit *rl);

/*
 * Take one token for user at now_ms (monotonic). 0 if allowed; LARK_ERATE
 * if not, with *retry_after set to the whole seconds until a token is back
 * (at least 1).
 */
int ratelimit_take(struct ratelimit *rl, const char *user, int64_t now_ms, int *retry_after);

/* New rate and burst for every user from now on (SIGHUP; any thread). */
void ratelimit_set(struct ratelimit *rl, double rate, double burst);

/* Buckets currently held in memory (for tests; 0 for the store's). */
unsigned long ratelimit_size(struct ratelimit *rl);

#endif
