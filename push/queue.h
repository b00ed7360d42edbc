/*
 * queue.h - lark-push's work: claim due jobs, hand them to the providers,
 * sort the answers, record the outcomes.
 *
 * One turn (queue_turn) at a time, from main's loop: collect finished
 * transfers, record every outcome of the turn in one store transaction
 * (store_push_finish, counters included), then claim as many due jobs as
 * there is room for (push_inflight) under a lease of push_lease_ms, and
 * start them. A job whose user is online again, or has read the message
 * meanwhile, is dropped unsent. Failures are retried with backoff.h's
 * delays, honouring Retry-After, until push_attempts; then, or at once
 * for a permanent failure, the job moves to push_dead with its last
 * error. A dead token removes its device.
 *
 * Crash safety: nothing is deleted before its outcome is known; a job
 * claimed by a daemon that died (kill -9) is claimed again when its lease
 * ends, so a crash may repeat a notification but never loses one.
 *
 * Waking: the turn returns how long main may sleep - until the next job is
 * due (read from the store only when the database changed, queue_wake),
 * a transfer needs curl, or QUEUE_IDLE_RECHECK_MS at most.
 *
 * Ownership: struct queue owns its store connection, the provider clients
 * and every request in flight. Single-threaded.
 */
#ifndef LARK_PUSH_QUEUE_H
#define LARK_PUSH_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct lark_err;
struct net;
struct queue;
struct store;

/* Longest sleep without news: a safety net should a wake-up ever be
 * missed (the database directory replaced under us), not a poll for work. */
#define QUEUE_IDLE_RECHECK_MS 30000
/* After a store error (database busy or unreachable), wait this long. */
#define QUEUE_STORE_RETRY_MS 1000
/* Jobs claimed in one transaction: keeps each claim short for larkd,
 * which shares the SQLite write lock. */
#define QUEUE_CLAIM_MAX 256

/*
 * A queue over store, sending through net (both borrowed, must outlive
 * it) to the providers cfg configures. 0 or LARK_EINVAL (a provider's
 * credentials are unusable), LARK_EUNAVAIL.
 */
int queue_new(const struct config *cfg, struct store *store, struct net *net, struct queue **out,
              struct lark_err *err);

/* Abort the requests in flight (their leases will expire) and free.
 * Accepts NULL. */
void queue_free(struct queue *q);

/* The descriptor that becomes readable when jobs may have been added
 * (store_push_watch); ask again before each poll. */
int queue_watch(struct queue *q, int *fd, struct lark_err *err);

/* The watch descriptor polled readable: consume it. */
void queue_watch_drain(struct queue *q);

/* One turn (see above); claims nothing while draining. Returns how many
 * ms main may wait before the next turn. */
int64_t queue_turn(struct queue *q, int draining);

/* Requests in flight plus outcomes not yet recorded. */
size_t queue_busy(const struct queue *q);

#endif
