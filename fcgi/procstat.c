/*
 * procstat.c - /proc/self/stat, /proc/self/fd and /proc/stat to Prometheus.
 */
#include "fcgi/procstat.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/version.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* /proc/self/stat is one line of a few hundred bytes. */
#define PROCSTAT_LINE_MAX 1024

struct procstat {
    double cpu_s;             /* user + system time, seconds */
    unsigned long long vsize; /* virtual memory, bytes */
    unsigned long long rss;   /* resident memory, bytes */
    long threads;
    double start_s; /* start time, seconds since the epoch */
};

/* Seconds since the epoch at which the machine booted ("btime"), or -1. */
static long long boot_time(void)
{
    char line[256];
    long long btime = -1;
    FILE *f = fopen("/proc/stat", "r");

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "btime ", 6) == 0) {
            btime = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return btime;
}

/*
 * proc(5) stat fields after the command name, which may hold spaces and
 * parentheses, so the scan starts after its last ')': field 3 (state) is
 * the first, utime is 14, stime 15, num_threads 20, starttime 22, vsize 23,
 * rss 24 (pages).
 */
static int read_stat(struct procstat *ps)
{
    char line[PROCSTAT_LINE_MAX];
    unsigned long long v[25] = {0};
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    long long boot = boot_time();
    FILE *f = fopen("/proc/self/stat", "r");
    char *p, *end;
    int field = 3;

    if (!f)
        return -1;
    p = fgets(line, sizeof(line), f);
    fclose(f);
    if (!p || !(p = strrchr(line, ')')) || ticks <= 0 || page <= 0 || boot < 0)
        return -1;
    p += 2; /* ") " */
    while (*p && field <= 24) {
        end = strchr(p, ' ');
        if (field != 3) /* the state is a letter */
            v[field] = strtoull(p, NULL, 10);
        if (!end)
            break;
        p = end + 1;
        field++;
    }
    if (field < 24)
        return -1;
    ps->cpu_s = (double)(v[14] + v[15]) / (double)ticks;
    ps->threads = (long)v[20];
    ps->start_s = (double)boot + (double)v[22] / (double)ticks;
    ps->vsize = v[23];
    ps->rss = v[24] * (unsigned long long)page;
    return 0;
}

/* Open descriptors, or -1. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the descriptor opendir itself holds */
}

int procstat_render(struct buf *out)
{
    struct procstat ps;
    struct rlimit rl;
    long fds = open_fds();
    int rc = 0;

    if (read_stat(&ps) == 0)
        rc |= buf_printf(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
            "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
            "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
            "# HELP process_start_time_seconds Start time of the process since unix epoch in "
            "seconds.\n"
            "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n"
            "# HELP process_threads Threads of the process.\n"
            "# TYPE process_threads gauge\nprocess_threads %ld\n",
            ps.cpu_s, ps.vsize, ps.rss, ps.start_s, ps.threads);
    if (fds >= 0)
        rc |= buf_printf(out,
                         "# HELP process_open_fds Number of open file descriptors.\n"
                         "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                         fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        rc |= buf_printf(out,
                         "# HELP process_max_fds Maximum number of open file descriptors.\n"
                         "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                         (unsigned long long)rl.rlim_cur);
    rc |= buf_printf(out,
                     "# HELP lark_build_info The build answering: release and commit.\n"
                     "# TYPE lark_build_info gauge\n"
                     "lark_build_info{version=\"%s\",commit=\"%s\"} 1\n",
                     version_release(), version_commit());
    return rc ? LARK_ETOOLARGE : 0;
}
