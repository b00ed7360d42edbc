/*
 * media_sweep.h - the retention of media (API.md: "Media that no message
 * names within 24 h of upload is deleted (configurable)"): a thread of its
 * own ("lark-media") that, every half retention period (at most every
 * LIMIT_MEDIA_SWEEP_MS), deletes the rows of items uploaded more than
 * media_retention seconds ago that no message names, removes their bytes
 * from the storage (blob_remove), and clears the spool of what interrupted
 * uploads left (blob_sweep_spool).
 *
 * Why a thread: the deletions are database writes and, with S3, network
 * calls; the hub's event loop must never wait on either (DESIGN.md), and a
 * worker thread belongs to requests. Several larkd processes may sweep one
 * database at once: each deleted row goes to one of them.
 */
#ifndef LARK_MEDIA_SWEEP_H
#define LARK_MEDIA_SWEEP_H

struct app;
struct lark_err;
struct media_sweep;

/* Start the thread (its first sweep at once). 0, or an error (no store
 * connection). */
int media_sweep_start(struct app *app, struct media_sweep **out, struct lark_err *err);

/* Stop it (a sweep in progress finishes its current batch) and free.
 * Accepts NULL. */
void media_sweep_stop(struct media_sweep *s);

#endif
