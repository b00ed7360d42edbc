/*
 * store_sqlite_wake.h - how a SQLite writer wakes the inbox watchers of
 * other processes (store.h, "waiting in a process of its own"; the
 * SQLite back end's third file).
 *
 * A directory "<database>-wake" holds one empty file per shard of users,
 * "00" to "3f". After a commit that appended inbox events, the writer
 * touches (utimensat: one syscall, no data written) the file of each
 * user's shard it appended for; a watcher - a CGI process holding one
 * user's long-poll or SSE stream - has inotify on its user's file only,
 * so a commit wakes the watchers of its users' shards, not every waiting
 * process. The files are made by watchers; a writer never makes one, so
 * with nobody watching a touch fails at once (ENOENT) and costs nothing
 * else.
 *
 * Why not inotify on the -wal file, as a first design had it: SQLite
 * writes a commit's frames to the WAL before the commit is visible to
 * readers (the wal-index in -shm, updated through mmap, which inotify does
 * not see, comes after), so a reader woken by the write may find nothing
 * new - measured: about one wake in ten, and the last commit of a burst
 * was missed for good (see store_sqlite.c on push wake-ups, which found
 * the same).
 *
 * Pure file operations; sqwake_touch runs on the writer thread, the rest
 * on the watching thread.
 */
#ifndef LARK_STORE_SQLITE_WAKE_H
#define LARK_STORE_SQLITE_WAKE_H

#include <stdint.h>

struct lark_err;

/* Shards of users: one bit each in a uint64_t mask. 64 keeps a batch's
 * touches to at most 64 syscalls, and spurious wake-ups of a watcher to
 * one commit in 64 of other users' traffic. */
#define SQWAKE_SHARDS 64

/* The shard of a user id (FNV-1a: the same in every process and version). */
unsigned sqwake_shard(const char *user);

/* Touch the files of the shards set in mask (bit i: shard i) under dir.
 * Errors are ignored: a missing file has no watcher. */
void sqwake_touch(const char *dir, uint64_t mask);

/*
 * Watch user's shard file under dir, making the directory and the file if
 * missing. *fd is a new non-blocking inotify descriptor, the caller's to
 * close. 0, or LARK_EUNAVAIL (the directory cannot be made or watched).
 */
int sqwake_watch(const char *dir, const char *user, int *fd, struct lark_err *err);

/*
 * Read everything fd has; *changed = 1 if any touch arrived. Returns 1 if
 * the watch is gone (its file was removed or replaced: nothing more will
 * arrive on fd), else 0.
 */
int sqwake_drain(int fd, int *changed);

#endif
