/*
 * procstat.h - what larkbench reads from /proc: which process listens on a
 * socket, its environment, its memory (VmRSS), its CPU ticks and those of
 * its threads and children, its descriptors, and the machine's busy time.
 *
 * Why from /proc: every memory and CPU figure of docs/BENCHMARKS.md is a
 * difference of two such readings, and the processes are found by the
 * sockets they listen on (not by name), so that other engineers' servers
 * on the same machine stay out of the figures.
 *
 * Two layers. The procstat_parse_* functions are pure: they read the text
 * of one /proc file (or one line of it) and are unit-tested on captured
 * text (tests/unit/test_bench_proc.c). The others read /proc with them;
 * they return 0 (or -1 for the fd count) when a file cannot be read, as a
 * process may end at any moment. Any thread; nothing is kept.
 */
#ifndef LARK_BENCH_PROCSTAT_H
#define LARK_BENCH_PROCSTAT_H

#include <stddef.h>
#include <sys/types.h>

/* The most threads of one process that are listed. */
#define PROCSTAT_THREADS_MAX 512

/* Longest command (thread) name the kernel keeps, with its NUL. */
#define PROCSTAT_COMM_MAX 16

/* One /proc/PID/stat (or /proc/PID/task/TID/stat) line. */
struct procstat_stat {
    char comm[PROCSTAT_COMM_MAX]; /* field 2, without its parentheses (cut to fit) */
    char state;                   /* field 3: R, S, D, Z... */
    pid_t ppid;                   /* field 4 */
    unsigned long long ticks;     /* utime + stime (fields 14 and 15), clock ticks */
};

/* A process's threads at one moment, by tid in creation order. */
struct procstat_threads {
    unsigned n;
    pid_t tid[PROCSTAT_THREADS_MAX];
    unsigned long long ticks[PROCSTAT_THREADS_MAX];     /* utime + stime of each */
    char comm[PROCSTAT_THREADS_MAX][PROCSTAT_COMM_MAX]; /* each one's name (larkd names them) */
};

/* Split line in place on blanks into at most max fields; the count. */
int procstat_fields(char *line, char **f, int max);

/* A stat line: the command name may hold blanks and parentheses, so
 * fields count from its last ')'. 0, or LARK_EINVAL. */
int procstat_parse_stat(const char *text, struct procstat_stat *out);

/* One line of /proc/net/tcp: 1 if it is a socket listening on port (any
 * local address), its inode in *inode; else 0. The line is not changed. */
int procstat_parse_tcp_listen(const char *line, int port, unsigned long *inode);

/* One line of /proc/net/unix: 1 if it is a socket listening at path, its
 * inode in *inode; else 0. */
int procstat_parse_unix_listen(const char *line, const char *path, unsigned long *inode);

/* The value of key in an environ block (NUL-separated entries) env[0..n),
 * copied into out (cut to outlen); 0, or -1 if key is not set. */
int procstat_parse_environ(const char *env, size_t n, const char *key, char *out, size_t outlen);

/* "VmRSS:   1234 kB" from one line of /proc/PID/status: the KiB of key
 * ("VmRSS:"), or -1 if the line is another. */
long procstat_parse_status_kib(const char *line, const char *key);

/* The first line of /proc/stat ("cpu  user nice system idle iowait irq
 * softirq steal ..."): ticks the CPUs were busy (all but idle and
 * iowait), or 0 if the line is not that. */
unsigned long long procstat_parse_cpu_busy(const char *line);

/* The process that holds the socket listening on 127.0.0.1/0.0.0.0:port,
 * or 0. When several do (nginx's master and workers), the one whose
 * parent does not: the master. */
pid_t procstat_tcp_listener(int port);

/* The process that holds the unix socket listening at path, or 0. */
pid_t procstat_unix_listener(const char *path);

/* key from /proc/pid/environ; 0 or -1. */
int procstat_environ(pid_t pid, const char *key, char *out, size_t outlen);

/* VmRSS of pid in KiB, or -1. */
long procstat_rss_kib(pid_t pid);

/* VmRSS of pid and its children (one level: nginx's workers), or -1. */
long procstat_tree_rss_kib(pid_t root);

/* utime + stime of pid in clock ticks, or 0. */
unsigned long long procstat_ticks(pid_t pid);

/* CPU ticks of a process and its children (one level: PostgreSQL's
 * backends, nginx's workers). A child that exits takes its ticks along. */
unsigned long long procstat_tree_ticks(pid_t root);

/* The threads of pid and their ticks; t->n is 0 if pid is gone. */
void procstat_threads(pid_t pid, struct procstat_threads *t);

/* Ticks the machine's CPUs were busy since boot. */
unsigned long long procstat_busy_ticks(void);

/* Descriptors pid holds, or -1. */
long procstat_fds(pid_t pid);

#endif
