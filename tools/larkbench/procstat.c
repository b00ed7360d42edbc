/*
 * procstat.c - /proc readings for larkbench (see procstat.h).
 */
#include "tools/larkbench/procstat.h"

#include "core/err.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int procstat_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            *p++ = '\0';
        if (!*p)
            break;
        f[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return n;
}

int procstat_parse_stat(const char *text, struct procstat_stat *out)
{
    const char *p = strrchr(text, ')'), *open = strchr(text, '(');
    memset(out, 0, sizeof(*out));
    if (!p || !open || open > p)
        return LARK_EINVAL;
    snprintf(out->comm, sizeof(out->comm), "%.*s", (int)(p - open - 1), open + 1);
    p++;
    for (int field = 3; field <= 15; field++) { /* state is 3, ppid 4; 14, 15 are times */
        unsigned long long v = 0;
        char *end = NULL;
        while (*p == ' ')
            p++;
        if (!*p)
            return LARK_EINVAL;
        if (field == 3)
            out->state = *p;
        else if ((v = strtoull(p, &end, 10)) == 0 && end == p)
            return LARK_EINVAL;
        if (field == 4)
            out->ppid = (pid_t)v;
        if (field >= 14)
            out->ticks += v;
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

int procstat_parse_tcp_listen(const char *line, int port, unsigned long *inode)
{
    char copy[512], *fld[12], *colon;
    snprintf(copy, sizeof(copy), "%s", line);
    /* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
    if (procstat_fields(copy, fld, 12) < 10 || strcmp(fld[3], "0A") != 0)
        return 0; /* 0A: TCP_LISTEN */
    colon = strchr(fld[1], ':');
    if (!colon || strtol(colon + 1, NULL, 16) != port)
        return 0;
    *inode = strtoul(fld[9], NULL, 10);
    return 1;
}

int procstat_parse_unix_listen(const char *line, const char *path, unsigned long *inode)
{
    char copy[4200], *fld[8];
    snprintf(copy, sizeof(copy), "%s", line);
    /* Num RefCount Protocol Flags Type St Inode Path; flags 00010000 = listening */
    if (procstat_fields(copy, fld, 8) != 8 || strcmp(fld[3], "00010000") != 0 ||
        strcmp(fld[7], path) != 0)
        return 0;
    *inode = strtoul(fld[6], NULL, 10);
    return 1;
}

int procstat_parse_environ(const char *env, size_t n, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key), i = 0;
    while (i < n) { /* each pass moves past one entry */
        const char *e = env + i;
        const char *nul = memchr(e, '\0', n - i);
        size_t len = nul ? (size_t)(nul - e) : n - i;
        if (len > klen && strncmp(e, key, klen) == 0 && e[klen] == '=') {
            snprintf(out, outlen, "%.*s", (int)(len - klen - 1), e + klen + 1);
            return 0;
        }
        i += len + 1;
    }
    return -1;
}

long procstat_parse_status_kib(const char *line, const char *key)
{
    size_t klen = strlen(key);
    char *end;
    long v;
    if (strncmp(line, key, klen) != 0)
        return -1;
    v = strtol(line + klen, &end, 10);
    return end == line + klen ? -1 : v;
}

unsigned long long procstat_parse_cpu_busy(const char *line)
{
    char copy[512], *fld[12];
    unsigned long long busy = 0;
    int n;
    snprintf(copy, sizeof(copy), "%s", line);
    n = procstat_fields(copy, fld, 12);
    if (n < 5 || strcmp(fld[0], "cpu") != 0)
        return 0;
    /* user nice system idle iowait irq softirq steal: all but idle, iowait */
    for (int i = 1; i < n && i <= 8; i++)
        if (i != 4 && i != 5)
            busy += strtoull(fld[i], NULL, 10);
    return busy;
}

/* ---- reading /proc ---------------------------------------------------- */

/* Does process pid hold "socket:[inode]"? */
static int pid_holds(pid_t pid, const char *want)
{
    char dir[64], link[320], target[64];
    DIR *d;
    struct dirent *e;
    int found = 0;
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    if (!(d = opendir(dir)))
        return 0;
    while (!found && (e = readdir(d))) {
        ssize_t n;
        snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
        n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            found = strcmp(target, want) == 0;
        }
    }
    closedir(d);
    return found;
}

static int stat_of(pid_t pid, pid_t tid, struct procstat_stat *st)
{
    char path[96], text[1024];
    size_t n;
    FILE *f;
    if (tid)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    else
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (pid <= 0 || !(f = fopen(path, "r")))
        return -1;
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return procstat_parse_stat(text, st);
}

/* The process holding socket inode; of several, one whose parent does not. */
static pid_t socket_holder(unsigned long inode)
{
    char want[48];
    DIR *d;
    struct dirent *e;
    pid_t pid = 0;
    struct procstat_stat st;
    if (!inode || !(d = opendir("/proc")))
        return 0;
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    while (!pid && (e = readdir(d))) {
        pid_t p = (pid_t)strtol(e->d_name, NULL, 10);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || p == getpid())
            continue;
        if (pid_holds(p, want))
            pid = p;
    }
    closedir(d);
    while (pid && stat_of(pid, 0, &st) == 0 && st.ppid > 1 && pid_holds(st.ppid, want))
        pid = st.ppid; /* bounded by the depth of the process tree */
    return pid;
}

pid_t procstat_tcp_listener(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    unsigned long inode = 0;
    if (!f)
        return 0;
    while (!inode && fgets(line, sizeof(line), f))
        procstat_parse_tcp_listen(line, port, &inode);
    fclose(f);
    return socket_holder(inode);
}

pid_t procstat_unix_listener(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "r");
    char line[4200];
    unsigned long inode = 0;
    if (!f)
        return 0;
    while (!inode && fgets(line, sizeof(line), f))
        procstat_parse_unix_listen(line, path, &inode);
    fclose(f);
    return socket_holder(inode);
}

int procstat_environ(pid_t pid, const char *key, char *out, size_t outlen)
{
    char path[64], env[65536];
    size_t n;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    if (pid <= 0 || !(f = fopen(path, "r")))
        return -1;
    n = fread(env, 1, sizeof(env), f);
    fclose(f);
    return procstat_parse_environ(env, n, key, out, outlen);
}

long procstat_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (kib < 0 && fgets(line, sizeof(line), f))
        kib = procstat_parse_status_kib(line, "VmRSS:");
    fclose(f);
    return kib;
}

/* Calls fn for root and each process whose parent is root; the sum. */
static long long tree_sum(pid_t root, long long (*fn)(pid_t pid, const struct procstat_stat *st))
{
    DIR *d;
    struct dirent *e;
    long long sum = 0;
    if (root <= 0 || !(d = opendir("/proc")))
        return -1;
    while ((e = readdir(d))) {
        pid_t p = (pid_t)strtol(e->d_name, NULL, 10);
        struct procstat_stat st;
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || stat_of(p, 0, &st) != 0)
            continue;
        if (p == root || st.ppid == root) {
            long long v = fn(p, &st);
            sum += v > 0 ? v : 0;
        }
    }
    closedir(d);
    return sum;
}

static long long rss_of(pid_t pid, const struct procstat_stat *st)
{
    (void)st;
    return procstat_rss_kib(pid);
}

static long long ticks_of(pid_t pid, const struct procstat_stat *st)
{
    (void)pid;
    return (long long)st->ticks;
}

long procstat_tree_rss_kib(pid_t root)
{
    return (long)tree_sum(root, rss_of);
}

unsigned long long procstat_ticks(pid_t pid)
{
    struct procstat_stat st;
    return stat_of(pid, 0, &st) == 0 ? st.ticks : 0;
}

unsigned long long procstat_tree_ticks(pid_t root)
{
    long long t = tree_sum(root, ticks_of);
    return t > 0 ? (unsigned long long)t : 0;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

void procstat_threads(pid_t pid, struct procstat_threads *t)
{
    char path[96];
    DIR *d;
    struct dirent *e;
    t->n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if (pid <= 0 || !(d = opendir(path)))
        return;
    while (t->n < PROCSTAT_THREADS_MAX && (e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
            t->tid[t->n++] = (pid_t)strtol(e->d_name, NULL, 10);
    closedir(d);
    qsort(t->tid, t->n, sizeof(pid_t), cmp_pid);
    for (unsigned i = 0; i < t->n; i++) {
        struct procstat_stat st;
        int ok = stat_of(pid, t->tid[i], &st) == 0;
        t->ticks[i] = ok ? st.ticks : 0;
        snprintf(t->comm[i], sizeof(t->comm[i]), "%s", ok ? st.comm : "");
    }
}

unsigned long long procstat_busy_ticks(void)
{
    char line[512];
    unsigned long long busy = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    if (fgets(line, sizeof(line), f))
        busy = procstat_parse_cpu_busy(line);
    fclose(f);
    return busy;
}

long procstat_fds(pid_t pid)
{
    char path[64];
    DIR *d;
    long n = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if (pid <= 0 || !(d = opendir(path)))
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2; /* . and .. */
}
