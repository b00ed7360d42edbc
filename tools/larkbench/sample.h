/*
 * sample.h - the servers' CPU and memory over a run: larkd (each of its
 * threads by role), lighttpd, PostgreSQL, nginx (Nchan), the bench itself,
 * and "other processes" (the machine's busy time minus all those: the
 * noise of a shared machine), from two /proc readings (procstat.h).
 *
 * larkd names its threads (lark-writer, lark-ckpt, lark-hub, lark-worker,
 * lark-reader, lark-ws, lark-later; the main thread keeps "larkd"), so
 * each thread's CPU goes to its role by name; a larkd whose threads carry
 * other names (an older build) is reported as a whole.
 *
 * The processes are the run's (B.o: --larkd-pid and the others), found by
 * the sockets they listen on unless given. One thread.
 */
#ifndef LARK_BENCH_SAMPLE_H
#define LARK_BENCH_SAMPLE_H

#include "tools/larkbench/procstat.h"

#include <stdint.h>

/* What larkd's environment says about it. */
struct sample_layout {
    int sqlite; /* the store is SQLite (writer and checkpointer threads) */
};

/* One larkd's CPU at one moment. */
struct larkd_cpu {
    unsigned long long ticks; /* clock ticks, whole process */
    struct procstat_threads th;
};

struct cpu_sample {
    int64_t t;                 /* ns */
    struct larkd_cpu larkd[2]; /* [0] on --port, [1] on --sub-port (two-process runs) */
    unsigned long long lighttpd[2];
    unsigned long long db;       /* the PostgreSQL server's processes, clock ticks */
    unsigned long long nginx;    /* nginx's master and workers, clock ticks */
    unsigned long long self_us;  /* our own user + system time */
    unsigned long long sys_busy; /* clock ticks all CPUs were busy (/proc/stat) */
};

/* One larkd's CPU between two samples, percent of one core. */
struct larkd_use {
    double total;
    int known;      /* the threads carry larkd's names: the fields below are set */
    double main;    /* the main thread (waits for the drain) */
    double ckpt;    /* SQLite checkpointer */
    double writer;  /* SQLite writer */
    double ws_pool; /* WebSocket command threads, together */
    double hub;     /* the event loop */
    double readers; /* the hub's catch-up readers, together */
    double later;   /* queued acknowledgements and presence */
    double workers; /* all FastCGI workers together */
    double busiest; /* the busiest worker */
};

/* CPU use between two samples, percent of one core. */
struct cpu_use {
    struct larkd_use larkd[2]; /* [1]: the subscribers' larkd of a two-process run */
    double lighttpd[2];
    double db;     /* PostgreSQL server processes (--db-pid) */
    double nginx;  /* nginx (--nginx-pid) */
    double self;   /* larkbench */
    double others; /* every other process on the machine (the noise) */
};

/* Memory of the servers that hold the streams, at one moment. */
struct mem {
    long larkd, lighttpd; /* VmRSS KiB, -1 unknown */
    long nginx;           /* nginx master + workers, VmRSS KiB, -1 unknown */
};

/* Find the processes not given on the command line, and larkd's layout. */
void sample_find_pids(void);

/* The larkd and lighttpd that hold the subscribers' streams. */
pid_t sample_sub_larkd(void);
pid_t sample_sub_lighttpd(void);

/* A reading now (the struct is large: keep it static). */
void cpu_take(struct cpu_sample *c);

/* What happened between a and b. */
void cpu_diff(const struct cpu_sample *a, const struct cpu_sample *b, struct cpu_use *u);

void mem_take(struct mem *m);

/* (after - before) / n, or -1 when unknown. */
double per_conn(long before, long after, unsigned n);

#endif
