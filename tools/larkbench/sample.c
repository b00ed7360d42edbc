/*
 * sample.c - the servers' CPU and memory (see sample.h).
 */
#include "tools/larkbench/sample.h"

#include "tools/larkbench/bench.h"
#include "tools/larkbench/target.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/*
 * lighttpd is whoever listens on the port; larkd is whoever listens on the
 * FastCGI socket named in lighttpd's environment (conf/lighttpd.conf reads
 * LARK_SOCKET from it).
 */
static void find_pair(const struct sockaddr_in *addr, pid_t *larkd, pid_t *lighttpd)
{
    char sock[4096];
    if (!*lighttpd)
        *lighttpd = procstat_tcp_listener(ntohs(addr->sin_port));
    if (!*larkd && *lighttpd && procstat_environ(*lighttpd, "LARK_SOCKET", sock, sizeof(sock)) == 0)
        *larkd = procstat_unix_listener(sock);
}

static void layout_read(pid_t pid, struct sample_layout *l)
{
    char v[4096];
    l->sqlite =
        !(procstat_environ(pid, "LARK_DB", v, sizeof(v)) == 0 && strncmp(v, "postgres", 8) == 0);
}

void sample_find_pids(void)
{
    if (B.o.target == &target_nchan) {
        if (!B.o.nginx_pid)
            B.o.nginx_pid = procstat_tcp_listener(ntohs(B.o.addr.sin_port));
        snprintf(B.backend, sizeof(B.backend), "memory");
        return;
    }
    find_pair(&B.o.addr, &B.o.larkd_pid, &B.o.lighttpd_pid);
    if (B.o.two)
        find_pair(&B.o.sub_addr, &B.o.sub_larkd_pid, &B.o.sub_lighttpd_pid);
    layout_read(B.o.larkd_pid, &B.layout[0]);
    layout_read(B.o.sub_larkd_pid, &B.layout[1]);
    snprintf(B.backend, sizeof(B.backend), "%s", B.layout[0].sqlite ? "sqlite" : "postgres");
}

pid_t sample_sub_larkd(void)
{
    return B.o.two ? B.o.sub_larkd_pid : B.o.larkd_pid;
}

pid_t sample_sub_lighttpd(void)
{
    return B.o.two ? B.o.sub_lighttpd_pid : B.o.lighttpd_pid;
}

static void larkd_take(pid_t pid, struct larkd_cpu *c)
{
    c->ticks = procstat_ticks(pid);
    procstat_threads(pid, &c->th);
}

void cpu_take(struct cpu_sample *c)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    c->t = now_ns();
    larkd_take(B.o.larkd_pid, &c->larkd[0]);
    larkd_take(B.o.two ? B.o.sub_larkd_pid : 0, &c->larkd[1]);
    c->lighttpd[0] = procstat_ticks(B.o.lighttpd_pid);
    c->lighttpd[1] = B.o.two ? procstat_ticks(B.o.sub_lighttpd_pid) : 0;
    c->db = procstat_tree_ticks(B.o.db_pid);
    c->nginx = procstat_tree_ticks(B.o.nginx_pid);
    c->sys_busy = procstat_busy_ticks();
    c->self_us =
        (unsigned long long)ru.ru_utime.tv_sec * 1000000 + (unsigned long long)ru.ru_utime.tv_usec +
        (unsigned long long)ru.ru_stime.tv_sec * 1000000 + (unsigned long long)ru.ru_stime.tv_usec;
}

static double ticks_pct(unsigned long long a, unsigned long long b, double secs)
{
    return b >= a && secs > 0 ? 100.0 * (double)(b - a) / (double)sysconf(_SC_CLK_TCK) / secs : 0;
}

/* The role a larkd thread's name says, or NULL for a name larkd does not
 * give (then no breakdown: an older larkd). */
static double *larkd_role(struct larkd_use *u, const char *comm, int *worker)
{
    static const struct {
        const char *name;
        size_t off;
    } roles[] = {
        {"larkd", offsetof(struct larkd_use, main)},
        {"lark-writer", offsetof(struct larkd_use, writer)},
        {"lark-ckpt", offsetof(struct larkd_use, ckpt)},
        {"lark-hub", offsetof(struct larkd_use, hub)},
        {"lark-reader", offsetof(struct larkd_use, readers)},
        {"lark-later", offsetof(struct larkd_use, later)},
        {"lark-ws", offsetof(struct larkd_use, ws_pool)},
        {"lark-worker", offsetof(struct larkd_use, workers)},
    };
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(comm, roles[i].name) == 0) {
            *worker = strcmp(comm, "lark-worker") == 0;
            return (double *)(void *)((char *)u + roles[i].off);
        }
    return NULL;
}

/* Thread i of b (its share over secs) goes to its role by name. */
static void larkd_diff(const struct larkd_cpu *a, const struct larkd_cpu *b, double secs,
                       struct larkd_use *u)
{
    memset(u, 0, sizeof(*u));
    u->total = ticks_pct(a->ticks, b->ticks, secs);
    u->known = b->th.n > 0;
    for (unsigned i = 0; u->known && i < b->th.n; i++) {
        unsigned j = 0;
        int worker = 0;
        double pct, *role = larkd_role(u, b->th.comm[i], &worker);
        if (!role) {
            u->known = 0;
            break;
        }
        while (j < a->th.n && a->th.tid[j] != b->th.tid[i])
            j++;
        pct = ticks_pct(j < a->th.n ? a->th.ticks[j] : 0, b->th.ticks[i], secs);
        *role += pct;
        if (worker && pct > u->busiest)
            u->busiest = pct;
    }
}

void cpu_diff(const struct cpu_sample *a, const struct cpu_sample *b, struct cpu_use *u)
{
    double secs = (double)(b->t - a->t) / NS_PER_S;
    memset(u, 0, sizeof(*u));
    for (int k = 0; k < 2; k++) {
        larkd_diff(&a->larkd[k], &b->larkd[k], secs, &u->larkd[k]);
        u->lighttpd[k] = ticks_pct(a->lighttpd[k], b->lighttpd[k], secs);
    }
    u->db = ticks_pct(a->db, b->db, secs);
    u->nginx = ticks_pct(a->nginx, b->nginx, secs);
    u->self = secs > 0 ? (double)(b->self_us - a->self_us) / 1e4 / secs : 0;
    u->others = ticks_pct(a->sys_busy, b->sys_busy, secs) - u->larkd[0].total - u->larkd[1].total -
                u->lighttpd[0] - u->lighttpd[1] - u->db - u->nginx - u->self;
    if (u->others < 0)
        u->others = 0;
}

void mem_take(struct mem *m)
{
    m->larkd = procstat_rss_kib(sample_sub_larkd());
    m->lighttpd = procstat_rss_kib(sample_sub_lighttpd());
    m->nginx = B.o.nginx_pid > 0 ? procstat_tree_rss_kib(B.o.nginx_pid) : -1;
}

double per_conn(long before, long after, unsigned n)
{
    return before >= 0 && after >= 0 && n ? (double)(after - before) / n : -1;
}
