/*
 * lockfile.h - one process per resource: a file locked with flock(2) that
 * holds the owner's pid.
 *
 * Why: two larkd on one socket path take the socket from each other, and
 * two on one SQLite file fight over its write lock (DESIGN.md: one writer
 * process). A second `make run` on the same data directory did both. The
 * lock is the kernel's, so it goes away with its process however that ends
 * (no stale lock after kill -9), and the pid inside is only for the message.
 * The file itself stays (removing it would race a process that just opened
 * it); its mode is 0640.
 */
#ifndef LARK_LOCKFILE_H
#define LARK_LOCKFILE_H

struct lark_err;

/*
 * Take the lock at path (created if missing) and write our pid into it.
 * On success *fd holds it until lockfile_release (or exit). Errors:
 * LARK_ECONFLICT when another process holds it (err names the path and its
 * pid), LARK_EINVAL when the file cannot be opened. what ("the socket") is
 * for the message.
 */
int lockfile_take(const char *path, const char *what, int *fd, struct lark_err *err);

/* Give the lock up. Accepts -1. */
void lockfile_release(int fd);

#endif
