/*
 * store_sqlite_wake.c - touching and watching the wake files of SQLite's
 * inbox watchers (store_sqlite_wake.h).
 */
#include "core/store_sqlite_wake.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room for many inotify events (each is 16 bytes; these carry no name). */
#define SQWAKE_READ_BUF 1024
/* What a watcher hears: a touch changes the times (IN_ATTRIB); the rest
 * say the file is gone. */
#define SQWAKE_EVENTS (IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF)

unsigned sqwake_shard(const char *user)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)user; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % SQWAKE_SHARDS;
}

/* dir/xx for shard (caller frees). */
static char *sqwake_path(const char *dir, unsigned shard)
{
    return xasprintf("%s/%02x", dir, shard);
}

void sqwake_touch(const char *dir, uint64_t mask)
{
    for (unsigned i = 0; mask && i < SQWAKE_SHARDS; i++) {
        char *path;
        if (!(mask & ((uint64_t)1 << i)))
            continue;
        mask &= ~((uint64_t)1 << i);
        path = sqwake_path(dir, i);
        utimensat(AT_FDCWD, path, NULL, 0);
        free(path);
    }
}

int sqwake_watch(const char *dir, const char *user, int *fd, struct lark_err *err)
{
    char *path = sqwake_path(dir, sqwake_shard(user));
    char ebuf[64];
    int file, rc = 0;

    *fd = -1;
    if (mkdir(dir, 0770) != 0 && errno != EEXIST) {
        rc = lark_err_set(err, LARK_EUNAVAIL, "cannot make %s: %s", dir,
                          log_errno(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    file = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
    if (file < 0) {
        rc = lark_err_set(err, LARK_EUNAVAIL, "cannot make %s: %s", path,
                          log_errno(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    close(file);
    *fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (*fd < 0 || inotify_add_watch(*fd, path, SQWAKE_EVENTS) < 0) {
        rc = lark_err_set(err, LARK_EUNAVAIL, "cannot watch %s: %s", path,
                          log_errno(errno, ebuf, sizeof(ebuf)));
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
    }
out:
    free(path);
    return rc;
}

int sqwake_drain(int fd, int *changed)
{
    char buf[SQWAKE_READ_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
    int gone = 0;

    for (;;) {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got <= 0)
            return gone; /* EAGAIN: drained */
        *changed = 1;
        for (char *p = buf; p < buf + got;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
                gone = 1;
            p += sizeof(*ev) + ev->len;
        }
    }
}
