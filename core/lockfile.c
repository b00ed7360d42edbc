/*
 * lockfile.c - flock(2) and a pid.
 */
#include "core/lockfile.h"

#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int lockfile_take(const char *path, const char *what, int *fd, struct lark_err *err)
{
    char pid[32] = "";
    ssize_t n;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);

    *fd = -1;
    if (f < 0)
        return lark_err_set(err, LARK_EINVAL, "cannot open the lock file %s (errno %d)", path,
                            errno);
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        n = pread(f, pid, sizeof(pid) - 1, 0);
        close(f);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return lark_err_set(err, LARK_ECONFLICT, "another process (pid %s) is using %s (lock %s)",
                            pid[0] ? pid : "unknown", what, path);
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
        close(f);
        return lark_err_set(err, LARK_EINVAL, "cannot write the lock file %s (errno %d)", path,
                            errno);
    }
    *fd = f;
    return 0;
}

void lockfile_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
