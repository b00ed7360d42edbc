/*
 * larkbench - the load generator behind `make bench` (docs/BENCHMARKS.md).
 *
 * Three scenarios against a running lighttpd + larkd (tools/bench.sh starts
 * a fresh pair for each):
 *
 *   fanout      N SSE subscribers, S senders posting 1:1 messages at a fixed
 *               total rate: loss, duplicates, delivery latency (from the
 *               moment the POST was written to the moment its SSE event was
 *               read), and memory per held stream.
 *   throughput  C senders posting as fast as the server answers: stored
 *               messages per second, errors by status, POST latency.
 *   idle        N held SSE streams: larkd and lighttpd memory per stream.
 *
 * Shape: one thread, one epoll loop, non-blocking sockets. A tool that holds
 * 9,000 streams and times each event to the microsecond must be neither the
 * bottleneck nor the memory hog it measures, so a connection is a small
 * struct with three bounded buffers, and the HTTP/1.1 client is the minimum
 * lighttpd's answers need: a status line, Content-Length or chunked bodies,
 * and the SSE lines (id:, event:, data:) inside a chunked stream. (DESIGN.md
 * asks the service for library parsers; this is a test tool reading one
 * known server.) Event data is parsed with jansson; tokens are minted with
 * libjwt exactly as tools/lark-token.c does.
 *
 * Every wait has a deadline and every loop a bound. The report is what was
 * observed; one JSON line follows it for scripts.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

/* A response head from lighttpd is well under 1 KiB. */
#define HEAD_MAX (16 * 1024)
/* One SSE event or send answer: a message with the API's largest body
 * (16 KiB, escaped up to 6x) and meta stays under this. */
#define EVENT_MAX (256 * 1024)
/* Unparsed input one connection may hold. */
#define IN_MAX (EVENT_MAX + HEAD_MAX)
/* One request: headers with a token (~500 bytes) and a body. */
#define OUT_MAX (80 * 1024)
/* What is kept of an error answer, for the report. */
#define ERRBODY_MAX 300
/* epoll events taken per wake. */
#define EPOLL_BATCH 512
/* recv() calls per readiness event, so one busy stream cannot starve the rest. */
#define READS_PER_EVENT 8
/* Messages one fanout sender may have waiting (at 20 msg/s each: 200 s). */
#define SENDER_QUEUE 4096
#define STATUS_MAX 600
/* Upper bounds on what a run may plan or record (memory: ~40 B each). */
#define MSGS_MAX (20u * 1000 * 1000)
#define SAMPLES_MAX (20u * 1000 * 1000)
#define CONNS_MAX 60000u
/* Reconnections per connection during a run; bounds a refused-connect loop. */
#define RECONNECT_MAX 20
/* larkd has a main thread, a writer, a hub and its workers. */
#define THREADS_MAX 512
#define TOKEN_TTL_S 7200
/* Warm-up (warm_up): streams held from before the "before" memory sample to
 * the end, and connections for the burst of short requests. Few of those:
 * lighttpd keeps closed connections' structs for reuse, so each one would
 * lower its measured cost of the streams that follow (64 did by 0.3 KiB at
 * 1,000 streams); larkd's FastCGI connections are new per request anyway. */
#define WARM_STREAMS 16
#define WARM_CONNS 8
/* How often deadlines are checked. */
#define TIMEOUT_CHECK_NS (100 * NS_PER_MS)

enum scenario { SC_FANOUT, SC_THROUGHPUT, SC_IDLE };
enum role { ROLE_SUB, ROLE_SENDER, ROLE_COUNT };
enum cstate { CS_CLOSED, CS_CONNECTING, CS_OPEN };
/* Where the response parser is: head, then one of three body framings. */
enum rphase {
    RP_IDLE,       /* no request outstanding: input now is a protocol error */
    RP_HEAD,       /* status line and headers */
    RP_LEN,        /* Content-Length body, remain bytes to go */
    RP_CHUNK_SIZE, /* chunked: the size line */
    RP_CHUNK_DATA, /* chunked: remain bytes of chunk data */
    RP_CHUNK_END,  /* chunked: the CRLF after the data */
    RP_TRAILER,    /* chunked: trailer lines up to an empty one */
    RP_EOF         /* body until the server closes */
};
enum fail { FAIL_CONNECT, FAIL_RESET, FAIL_EOF, FAIL_PROTO, FAIL_TIMEOUT, FAIL_COUNT };
static const char *const fail_name[FAIL_COUNT] = {"connect", "reset", "eof", "protocol", "timeout"};
/* What one parser step found. */
enum { HP_HEAD = 1, HP_DONE = 2 };

struct conn {
    int fd;              /* -1 when closed */
    uint32_t slot;       /* index in B.conns */
    uint32_t gen;        /* bumped at every close: stale epoll events are dropped */
    uint32_t idx;        /* subscriber or sender number */
    enum role role;      /* what the callbacks do with the answers */
    enum cstate state;   /* socket state */
    enum rphase phase;   /* response parser state */
    int status;          /* HTTP status of the answer being read, 0 before its head */
    int close_after;     /* that answer ends the connection (Connection: close) */
    int want_out;        /* EPOLLOUT is registered */
    int busy;            /* sender: a request is written or being written */
    int ready;           /* subscriber: its stream is up (200 head read) */
    uint64_t remain;     /* bytes left of a Content-Length body or of a chunk */
    size_t sse_scan;     /* subscriber: body bytes already searched for line ends */
    struct buf in;       /* bytes read, not yet parsed */
    struct buf out;      /* request bytes not yet written */
    struct buf body;     /* subscriber: SSE bytes not yet parsed; sender: error body */
    int64_t t_start;     /* ns: connect (subscriber) or request queued (sender) */
    int64_t t_write;     /* ns: request fully handed to the kernel, 0 before */
    int64_t msg;         /* fanout sender: message in flight, -1 none */
    uint64_t nsent;      /* sender: requests started by this user (client_msg_id) */
    unsigned nreq;       /* answers read on this socket (keep-alive) */
    uint64_t last_id;    /* subscriber: last SSE id, for Last-Event-ID and gap checks */
    unsigned reconnects; /* reconnections during this run */
    uint32_t *q;         /* fanout sender: ring of message numbers due */
    unsigned qhead;      /* first entry of q */
    unsigned qlen;       /* entries in q */
};

/* One fanout message: what happened to it. */
struct msg {
    int64_t t_write; /* ns: POST fully written, 0 if never */
    int64_t t_done;  /* ns: answer read */
    int64_t t_deliv; /* ns: first arrival at its recipient */
    uint32_t to;     /* subscriber number */
    uint16_t status; /* HTTP status of the POST, 0 if none */
    uint8_t ndeliv;  /* arrivals at its recipient (saturates at 255) */
};

/* Latency samples in ns. */
struct samples {
    int64_t *v;
    size_t n, cap;
};

struct opts {
    enum scenario sc;
    struct sockaddr_in addr; /* lighttpd */
    char host[64];           /* Host header */
    const char *secret;      /* HS256 secret */
    const char *prefix;      /* user ids start with this */
    const char *json_path;   /* append the JSON line here too */
    const char *dump_path;   /* fanout: one CSV line per message */
    unsigned subs;           /* fanout subscribers / idle streams */
    unsigned senders;        /* sender connections (one user each) */
    unsigned recipients;     /* throughput: distinct recipients */
    unsigned batch;          /* streams opened per connect batch */
    unsigned body_bytes;     /* message body size */
    double rate;             /* fanout: messages per second in total */
    double duration;         /* seconds of sending */
    double grace;            /* fanout: seconds to wait for late deliveries */
    double settle;           /* seconds idle before the "after" memory sample */
    double hold;             /* idle: seconds to hold the streams */
    double timeout;          /* seconds per connect, request, batch */
    unsigned warmup;         /* short requests before the memory samples */
    double p99_target_ms;    /* fanout target */
    pid_t larkd_pid, lighttpd_pid;
    int strict; /* exit 3 when a target is missed */
};

struct stats {
    uint64_t status[STATUS_MAX];           /* send answers by status */
    uint64_t sub_status[STATUS_MAX];       /* non-200 answers to GET /v1/events */
    uint64_t fail[ROLE_COUNT][FAIL_COUNT]; /* transport failures by role and kind */
    uint64_t sent;                         /* POSTs written to the kernel in full */
    uint64_t answered;                     /* POST answers read */
    uint64_t acked;                        /* 201 answers */
    uint64_t ok_in_window;                 /* throughput: 201s read within the window */
    uint64_t delivered;                    /* fanout: first arrivals at the right subscriber */
    uint64_t acked_delivered;              /* fanout: acknowledged and delivered */
    uint64_t dup;                          /* fanout: same message again at the same subscriber */
    uint64_t misrouted;        /* fanout: a message at a subscriber it was not sent to */
    uint64_t foreign;          /* message events not sent by this run */
    uint64_t other_events;     /* stored events of other types */
    uint64_t bad_events;       /* event data that is not a message envelope */
    uint64_t seq_gaps;         /* SSE ids that did not follow the previous one */
    uint64_t events;           /* SSE events dispatched */
    uint64_t overflow;         /* fanout messages the bench could not queue */
    uint64_t sub_drops;        /* streams that ended while up */
    uint64_t reconnects;       /* reconnections of any role */
    uint64_t keepalive_closes; /* sender sockets closed by the server between requests */
    uint64_t opens;            /* connections opened */
};

struct cpu_sample {
    int64_t t;                /* ns */
    unsigned long long larkd; /* clock ticks, whole process */
    unsigned long long lighttpd;
    unsigned long long self_us;  /* our own user + system time */
    unsigned long long sys_busy; /* clock ticks all CPUs were busy (/proc/stat) */
    unsigned nthreads;
    pid_t tid[THREADS_MAX]; /* larkd threads, by tid (creation order) */
    unsigned long long tticks[THREADS_MAX];
};

/* The one run this process does. A global because every callback of the
 * event loop needs it and there is exactly one. */
static struct {
    struct opts o;
    struct stats st;
    int epfd;
    struct conn *conns;
    uint32_t nconns;
    char **tokens;        /* per conn slot */
    char tag[12];         /* this run's client_msg_id prefix */
    char *body_text;      /* message body */
    struct buf scratch;   /* request bodies */
    struct buf data;      /* joined SSE data lines */
    struct msg *msgs;     /* fanout: planned messages */
    uint64_t planned;     /* fanout: messages to send */
    uint64_t next_msg;    /* fanout: next message to schedule */
    int64_t t0, t_end;    /* ns: the sending window */
    int64_t t_recv;       /* ns: when the bytes being parsed were read */
    int64_t last_check;   /* ns: last deadline scan */
    int sending;          /* senders may start requests */
    int warming;          /* senders send warm-up polls instead of messages */
    uint32_t warm_first;  /* slot of the first warm-up stream, then WARM_CONNS pollers */
    int sub_reconnect;    /* dropped streams are reopened (fanout run) */
    unsigned subs_ready;  /* streams up now */
    unsigned subs_failed; /* streams that could not be opened */
    struct samples post_lat, deliv_lat, send_lag, sub_lat;
    char errbody[ERRBODY_MAX + 1]; /* the first error answer to a send */
} B;

/* ---- small helpers ----------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "larkbench: %s\n", what);
    exit(2);
}

/* xorshift64: run tags only need to differ between runs. */
static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void samples_add(struct samples *s, int64_t v)
{
    if (s->n == s->cap) {
        if (s->cap >= SAMPLES_MAX)
            return; /* bounded: the percentiles of the first 20M are enough */
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile in ms; the samples get sorted. -1 when empty. */
static double pct_ms(struct samples *s, double p)
{
    size_t k;
    if (s->n == 0)
        return -1;
    qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
    k = (size_t)ceil(p / 100.0 * (double)s->n);
    k = k ? k - 1 : 0;
    if (k >= s->n)
        k = s->n - 1;
    return (double)s->v[k] / NS_PER_MS;
}

static double round3(double x)
{
    return round(x * 1000.0) / 1000.0;
}

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

/* ---- /proc: pids, memory, CPU ------------------------------------------ */

/* Split line in place on blanks; returns the number of fields. */
static int split_fields(char *line, char **f, int max)
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

/* Inode of the socket listening on 127.0.0.1/0.0.0.0:port (/proc/net/tcp). */
static unsigned long tcp_listen_inode(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512], *fld[12];
    unsigned long inode = 0;
    if (!f)
        return 0;
    while (!inode && fgets(line, sizeof(line), f)) {
        char *colon;
        if (split_fields(line, fld, 12) < 10 || strcmp(fld[3], "0A") != 0)
            continue; /* 0A: TCP_LISTEN */
        colon = strchr(fld[1], ':');
        if (colon && strtol(colon + 1, NULL, 16) == port)
            inode = strtoul(fld[9], NULL, 10);
    }
    fclose(f);
    return inode;
}

/* Inode of the unix socket listening at path (/proc/net/unix). */
static unsigned long unix_listen_inode(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "r");
    char line[4200], *fld[8];
    unsigned long inode = 0;
    if (!f)
        return 0;
    while (!inode && fgets(line, sizeof(line), f)) {
        /* Num RefCount Protocol Flags Type St Inode Path; 00010000 = listening */
        if (split_fields(line, fld, 8) == 8 && strcmp(fld[3], "00010000") == 0 &&
            strcmp(fld[7], path) == 0)
            inode = strtoul(fld[6], NULL, 10);
    }
    fclose(f);
    return inode;
}

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

static pid_t pid_with_socket(unsigned long inode)
{
    char want[48];
    DIR *d;
    struct dirent *e;
    pid_t pid = 0;
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
    return pid;
}

/* Value of key in /proc/pid/environ (NUL-separated), or -1. */
static int environ_get(pid_t pid, const char *key, char *out, size_t outlen)
{
    char path[64], buf[65536];
    size_t n, klen = strlen(key), i = 0;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (i < n) { /* each step moves past one NUL-terminated entry */
        const char *e = buf + i;
        size_t len = strlen(e);
        if (len > klen && strncmp(e, key, klen) == 0 && e[klen] == '=') {
            snprintf(out, outlen, "%s", e + klen + 1);
            return 0;
        }
        i += len + 1;
    }
    return -1;
}

/*
 * The processes to watch, unless given: lighttpd is whoever listens on the
 * port; larkd is whoever listens on the FastCGI socket named in lighttpd's
 * environment (conf/lighttpd.conf reads LARK_SOCKET from it). Looking the
 * processes up by socket, not by name, keeps other instances on the same
 * machine (other engineers' tests) out of the figures.
 */
static void find_pids(void)
{
    char sock[4096];
    if (!B.o.lighttpd_pid)
        B.o.lighttpd_pid = pid_with_socket(tcp_listen_inode(ntohs(B.o.addr.sin_port)));
    if (!B.o.larkd_pid && B.o.lighttpd_pid &&
        environ_get(B.o.lighttpd_pid, "LARK_SOCKET", sock, sizeof(sock)) == 0)
        B.o.larkd_pid = pid_with_socket(unix_listen_inode(sock));
}

/* VmRSS of pid in KiB, or -1. */
static long proc_rss_kib(pid_t pid)
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
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* utime + stime (clock ticks) from a /proc/.../stat file; 0 if unreadable. */
static unsigned long long stat_ticks(const char *path)
{
    char buf[1024], *p, *end;
    unsigned long long t = 0;
    size_t n;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold blanks and parentheses: fields count from the last ')'. */
    if (!(p = strrchr(buf, ')')))
        return 0;
    p++;
    for (int field = 3; field <= 15; field++) { /* state is field 3; 14, 15 are times */
        unsigned long long v;
        while (*p == ' ')
            p++;
        v = strtoull(p, &end, 10);
        if (field >= 14)
            t += v;
        while (*end && *end != ' ')
            end++;
        p = end;
    }
    return t;
}

static unsigned long long pid_ticks(pid_t pid)
{
    char path[64];
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    return stat_ticks(path);
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static void larkd_threads(struct cpu_sample *c)
{
    char path[96];
    DIR *d;
    struct dirent *e;
    c->nthreads = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)B.o.larkd_pid);
    if (B.o.larkd_pid <= 0 || !(d = opendir(path)))
        return;
    while (c->nthreads < THREADS_MAX && (e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
            c->tid[c->nthreads++] = (pid_t)strtol(e->d_name, NULL, 10);
    closedir(d);
    qsort(c->tid, c->nthreads, sizeof(pid_t), cmp_pid);
    for (unsigned i = 0; i < c->nthreads; i++) {
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)B.o.larkd_pid, (int)c->tid[i]);
        c->tticks[i] = stat_ticks(path);
    }
}

/* Ticks the machine's CPUs were not idle, from the first line of /proc/stat. */
static unsigned long long sys_busy_ticks(void)
{
    char line[512], *fld[12];
    unsigned long long busy = 0;
    int n;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    if (fgets(line, sizeof(line), f) && (n = split_fields(line, fld, 12)) >= 5 &&
        strcmp(fld[0], "cpu") == 0) {
        /* user nice system idle iowait irq softirq steal: all but idle, iowait */
        for (int i = 1; i < n && i <= 8; i++)
            if (i != 4 && i != 5)
                busy += strtoull(fld[i], NULL, 10);
    }
    fclose(f);
    return busy;
}

static void cpu_take(struct cpu_sample *c)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    c->t = now_ns();
    c->larkd = pid_ticks(B.o.larkd_pid);
    c->lighttpd = pid_ticks(B.o.lighttpd_pid);
    c->sys_busy = sys_busy_ticks();
    c->self_us =
        (unsigned long long)ru.ru_utime.tv_sec * 1000000 + (unsigned long long)ru.ru_utime.tv_usec +
        (unsigned long long)ru.ru_stime.tv_sec * 1000000 + (unsigned long long)ru.ru_stime.tv_usec;
    larkd_threads(c);
}

/* CPU use between two samples, percent of one core. */
struct cpu_use {
    double larkd, lighttpd, self;
    double others;    /* every other process on the machine (the noise) */
    double thread[4]; /* larkd main, writer, hub (creation order), busiest worker */
    double workers;   /* all workers together */
};

static double ticks_pct(unsigned long long a, unsigned long long b, double secs)
{
    return b >= a && secs > 0 ? 100.0 * (double)(b - a) / (double)sysconf(_SC_CLK_TCK) / secs : 0;
}

static void cpu_diff(const struct cpu_sample *a, const struct cpu_sample *b, struct cpu_use *u)
{
    double secs = (double)(b->t - a->t) / NS_PER_S;
    memset(u, 0, sizeof(*u));
    u->larkd = ticks_pct(a->larkd, b->larkd, secs);
    u->lighttpd = ticks_pct(a->lighttpd, b->lighttpd, secs);
    u->self = secs > 0 ? (double)(b->self_us - a->self_us) / 1e4 / secs : 0;
    u->others = ticks_pct(a->sys_busy, b->sys_busy, secs) - u->larkd - u->lighttpd - u->self;
    if (u->others < 0)
        u->others = 0;
    /* larkd starts its threads in a fixed order (fcgi/main.c): the SQLite
     * writer (store_open), the hub (hub_start), then the workers; tids grow. */
    for (unsigned i = 0; i < b->nthreads; i++) {
        unsigned j = 0;
        double pct;
        while (j < a->nthreads && a->tid[j] != b->tid[i])
            j++;
        pct = ticks_pct(j < a->nthreads ? a->tticks[j] : 0, b->tticks[i], secs);
        if (i < 3) {
            u->thread[i] = pct;
        } else {
            u->workers += pct;
            if (pct > u->thread[3])
                u->thread[3] = pct;
        }
    }
}

/* Descriptors pid holds now, or -1. larkd holds one per parked stream, so
 * this is the server's own count of held streams, independent of HTTP:
 * with 9,000 streams lighttpd stops accepting new connections (see
 * docs/BENCHMARKS.md), which would leave GET /metrics unanswered. */
static long proc_fds(pid_t pid)
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

/* ---- a probe: one short request, as a new client would make it --------- */

/*
 * GET path on a fresh blocking connection with timeout_s for each step;
 * returns the HTTP status (and the time to it in *ms), or -1 if none came.
 * Used only between phases, never while the event loop has work.
 */
static int http_probe(const char *path, double timeout_s, double *ms)
{
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    char req[256], head[64] = "";
    int64_t t0 = now_ns();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n, status = -1;
    ssize_t got;

    *ms = -1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
                 B.o.host);
    /* A connect to a listener that stopped accepting still succeeds (the
     * kernel's backlog takes it); the answer is what never comes. */
    if (connect(fd, (const struct sockaddr *)&B.o.addr, sizeof(B.o.addr)) == 0 &&
        send(fd, req, (size_t)n, MSG_NOSIGNAL) == n &&
        (got = recv(fd, head, sizeof(head) - 1, 0)) >= 12 && memcmp(head, "HTTP/1.", 7) == 0) {
        head[got] = '\0';
        status = (int)strtol(head + 9, NULL, 10);
        *ms = (double)(now_ns() - t0) / NS_PER_MS;
    }
    close(fd);
    return status;
}

/* ---- tokens ------------------------------------------------------------ */

/* A signed HS256 JWT for user, as tools/lark-token.c mints them; caller frees. */
static char *mint_token(const char *user)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    long now = (long)time(NULL);
    if (jwt_new(&jwt) == 0 && jwt_add_grant(jwt, "sub", user) == 0 &&
        jwt_add_grant_int(jwt, "iat", now) == 0 &&
        jwt_add_grant_int(jwt, "exp", now + TOKEN_TTL_S) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)B.o.secret,
                    (int)strlen(B.o.secret)) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (!tok)
        die("cannot sign a token (libjwt)");
    return tok;
}

static void user_name(char *out, size_t len, const char *kind, unsigned i)
{
    snprintf(out, len, "%s-%s-%u", B.o.prefix, kind, i);
}

/* ---- connections ------------------------------------------------------- */

static uint64_t conn_key(const struct conn *c)
{
    return (uint64_t)c->gen << 32 | c->slot;
}

static void conn_watch(struct conn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u)};
    if (c->want_out == out || c->fd < 0)
        return;
    ev.data.u64 = conn_key(c);
    c->want_out = out;
    epoll_ctl(B.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->gen++;
    c->state = CS_CLOSED;
    c->phase = RP_IDLE;
    c->status = c->close_after = c->want_out = c->busy = 0;
    c->remain = 0;
    c->sse_scan = 0;
    c->nreq = 0;
    c->t_write = 0;
    buf_reset(&c->in);
    buf_reset(&c->out);
    buf_reset(&c->body);
}

/* Start a non-blocking connect; 0, or -1 (counted) if the socket failed at once. */
static int conn_open(struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        B.st.fail[c->role][FAIL_CONNECT]++;
        return -1;
    }
    /* Requests are written whole; Nagle would only add delay to them. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&B.o.addr, sizeof(B.o.addr)) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        B.st.fail[c->role][FAIL_CONNECT]++;
        return -1;
    }
    B.st.opens++;
    c->fd = fd;
    c->state = CS_CONNECTING;
    c->want_out = 1;
    c->t_start = now_ns();
    ev.data.u64 = conn_key(c);
    if (epoll_ctl(B.epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl");
    return 0;
}

static void sender_failed(struct conn *c);
static void sender_next(struct conn *c);
static void sub_failed(struct conn *c);
static void sender_written(struct conn *c);

/* A connection broke: count why, close it, let its role recover. */
static void conn_fail(struct conn *c, enum fail why)
{
    B.st.fail[c->role][why]++;
    if (c->role == ROLE_SENDER)
        sender_failed(c);
    else
        sub_failed(c);
}

/* Write what is queued; 0, or -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
    while (c->out.len > 0) { /* each pass writes bytes or leaves */
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_fail(c, FAIL_RESET);
        return -1;
    }
    conn_watch(c, c->out.len > 0);
    if (c->out.len == 0 && c->busy && c->t_write == 0) {
        /* The request is with the kernel: this is the send time latencies
         * are measured from. */
        c->t_write = now_ns();
        sender_written(c);
    }
    return 0;
}

/* Queue bytes and write them if the socket is connected. */
static int conn_send(struct conn *c)
{
    return c->state == CS_OPEN ? conn_flush(c) : 0;
}

/* EPOLLOUT (or an error) on a connecting socket; 0, or -1 if it failed. */
static int conn_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        conn_fail(c, FAIL_CONNECT);
        return -1;
    }
    c->state = CS_OPEN;
    return 0;
}

/* ---- HTTP/1.1 response parser ------------------------------------------ */

/* One header line: note the body framing and whether the server closes. */
static void hp_header(struct conn *c, const char *line, size_t len, int *chunked, int *has_len,
                      uint64_t *clen)
{
    const char *colon = memchr(line, ':', len);
    char value[128];
    size_t nlen, vlen;
    if (!colon)
        return;
    nlen = (size_t)(colon - line);
    colon++;
    while (colon < line + len && (*colon == ' ' || *colon == '\t'))
        colon++;
    vlen = (size_t)(line + len - colon);
    snprintf(value, sizeof(value), "%.*s", (int)(vlen < 127 ? vlen : 127), colon);
    if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
        *has_len = 1;
        *clen = strtoull(value, NULL, 10);
    } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
        *chunked = strcasestr(value, "chunked") != NULL;
    } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
        if (strcasestr(value, "close"))
            c->close_after = 1;
        else if (strcasestr(value, "keep-alive"))
            c->close_after = 0;
    }
}

/* The response head; bytes used, 0 for "need more", -1 on a protocol error. */
static long hp_head(struct conn *c, const char *p, size_t n, int *ev)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4), *line, *eol;
    int chunked = 0, has_len = 0;
    uint64_t clen = 0;

    if (!end)
        return n > HEAD_MAX ? -1 : 0;
    end += 2; /* the last header line's CRLF belongs to it */
    if (end - p < 14 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || p[9] < '1' || p[9] > '5' ||
        p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    c->close_after = p[7] == '0'; /* HTTP/1.0 closes unless it says keep-alive */
    line = (const char *)memmem(p, (size_t)(end - p), "\r\n", 2) + 2;
    while (line < end && (eol = memmem(line, (size_t)(end - line), "\r\n", 2))) {
        hp_header(c, line, (size_t)(eol - line), &chunked, &has_len, &clen);
        line = eol + 2;
    }
    if (c->status < 200) { /* an interim answer: the real head follows */
        c->status = 0;
        return end + 2 - p;
    }
    *ev |= HP_HEAD;
    c->remain = 0;
    if (c->status == 204 || c->status == 304 || (has_len && !chunked && clen == 0)) {
        *ev |= HP_DONE;
        c->phase = RP_IDLE;
    } else if (chunked) {
        c->phase = RP_CHUNK_SIZE;
    } else if (has_len) {
        c->phase = RP_LEN;
        c->remain = clen;
    } else {
        c->phase = RP_EOF;
        c->close_after = 1;
    }
    return end + 2 - p;
}

static long hp_chunk_size(struct conn *c, const char *p, size_t n)
{
    const char *eol = memmem(p, n, "\r\n", 2);
    char hex[24], *end;
    size_t len;
    if (!eol)
        return n > 1024 ? -1 : 0;
    len = (size_t)(eol - p);
    snprintf(hex, sizeof(hex), "%.*s", (int)(len < 23 ? len : 23), p);
    errno = 0;
    c->remain = strtoull(hex, &end, 16); /* a ";ext" after the size is ignored */
    if (end == hex || errno)
        return -1;
    c->phase = c->remain ? RP_CHUNK_DATA : RP_TRAILER;
    return eol + 2 - p;
}

/*
 * One parser step over p[0..n): bytes used (0: need more input), or -1 for
 * a protocol error. Body bytes are returned in *body and *blen, and HP_HEAD /
 * HP_DONE in *ev when the head was read or the answer ended.
 */
static long hp_step(struct conn *c, const char *p, size_t n, const char **body, size_t *blen,
                    int *ev)
{
    const char *eol;
    size_t take;
    switch (c->phase) {
    case RP_HEAD: return hp_head(c, p, n, ev);
    case RP_CHUNK_SIZE: return hp_chunk_size(c, p, n);
    case RP_EOF:
    case RP_LEN:
    case RP_CHUNK_DATA:
        take = c->phase == RP_EOF || n < c->remain ? n : (size_t)c->remain;
        *body = p;
        *blen = take;
        if (c->phase != RP_EOF && (c->remain -= take) == 0) {
            c->phase = c->phase == RP_LEN ? RP_IDLE : RP_CHUNK_END;
            *ev |= c->phase == RP_IDLE ? HP_DONE : 0;
        }
        return (long)take;
    case RP_CHUNK_END:
        if (n < 2)
            return 0;
        c->phase = RP_CHUNK_SIZE;
        return p[0] == '\r' && p[1] == '\n' ? 2 : -1;
    case RP_TRAILER:
        if (!(eol = memmem(p, n, "\r\n", 2)))
            return n > HEAD_MAX ? -1 : 0;
        if (eol == p) {
            c->phase = RP_IDLE;
            *ev |= HP_DONE;
        }
        return eol + 2 - p;
    case RP_IDLE: break;
    }
    return -1; /* bytes nobody asked for */
}

static void on_head(struct conn *c);
static void on_body(struct conn *c, const char *p, size_t n);
static void on_done(struct conn *c);

/* Parse what c->in holds; 0, or -1 when c was closed (or reopened) meanwhile. */
static int hp_parse(struct conn *c)
{
    uint32_t gen = c->gen;
    size_t pos = 0;
    while (pos < c->in.len) { /* each step uses bytes or stops */
        const char *body = NULL;
        size_t blen = 0;
        int ev = 0;
        long used = hp_step(c, c->in.data + pos, c->in.len - pos, &body, &blen, &ev);
        if (used < 0) {
            conn_fail(c, FAIL_PROTO);
            return -1;
        }
        if (used == 0)
            break;
        pos += (size_t)used;
        if (ev & HP_HEAD)
            on_head(c);
        if (blen && c->gen == gen)
            on_body(c, body, blen);
        if ((ev & HP_DONE) && c->gen == gen)
            on_done(c);
        if (c->gen != gen)
            return -1;
    }
    buf_consume(&c->in, pos);
    return 0;
}

/* The server closed the connection. */
static void conn_eof(struct conn *c)
{
    if (c->phase == RP_EOF) {
        c->phase = RP_IDLE;
        on_done(c); /* closes: close_after is set for EOF bodies */
    } else if (c->phase == RP_IDLE && c->role == ROLE_SENDER && !c->busy) {
        /* An idle keep-alive connection closed by lighttpd: not an error;
         * the next request opens a new one. */
        B.st.keepalive_closes++;
        conn_close(c);
        sender_next(c);
    } else {
        conn_fail(c, FAIL_EOF);
    }
}

static void conn_read(struct conn *c)
{
    static char tmp[65536];
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n > 0) {
            B.t_recv = now_ns();
            if (buf_append(&c->in, tmp, (size_t)n) != 0) {
                conn_fail(c, FAIL_PROTO);
                return;
            }
            if (hp_parse(c) != 0 || (size_t)n < sizeof(tmp))
                return;
        } else if (n == 0) {
            conn_eof(c);
            return;
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(c, FAIL_RESET);
            return;
        }
    }
}

static void conn_event(struct conn *c, uint32_t events)
{
    if (c->state == CS_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) || conn_connected(c) != 0)
            return;
    }
    if ((events & EPOLLOUT) && conn_flush(c) != 0)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(c);
}

/* ---- SSE --------------------------------------------------------------- */

/* One SSE event, assembled from its lines (data lines joined in B.data). */
struct sse_ev {
    char event[64]; /* event: (default "message", as EventSource does) */
    uint64_t id;    /* id: */
    int has_id;
    int has_data;
};

static void sse_line(struct sse_ev *ev, const char *line, size_t len)
{
    const char *colon, *val;
    size_t nlen, vlen;
    char num[24];
    if (len == 0 || line[0] == ':')
        return; /* comment (": keep-alive") */
    colon = memchr(line, ':', len);
    nlen = colon ? (size_t)(colon - line) : len;
    val = colon ? colon + 1 : line + len;
    if (val < line + len && *val == ' ')
        val++;
    vlen = (size_t)(line + len - val);
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        if ((ev->has_data && buf_putc(&B.data, '\n') != 0) || buf_append(&B.data, val, vlen) != 0)
            B.st.bad_events++;
        ev->has_data = 1;
    } else if (nlen == 2 && memcmp(line, "id", 2) == 0) {
        snprintf(num, sizeof(num), "%.*s", (int)(vlen < 23 ? vlen : 23), val);
        ev->id = strtoull(num, NULL, 10);
        ev->has_id = 1;
    } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        snprintf(ev->event, sizeof(ev->event), "%.*s", (int)(vlen < 63 ? vlen : 63), val);
    }
}

static void sub_event(struct conn *c, const struct sse_ev *ev);

/* The lines of one event, p[0..n) (its blank line excluded). */
static void sse_block(struct conn *c, const char *p, size_t n)
{
    struct sse_ev ev = {.event = "message"};
    size_t i = 0;
    buf_reset(&B.data);
    while (i < n) { /* one line per pass */
        const char *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) : n, len = end - i;
        if (len && p[i + len - 1] == '\r')
            len--;
        sse_line(&ev, p + i, len);
        i = end + 1;
    }
    if (!ev.has_data)
        return; /* retry: and comments only; EventSource dispatches nothing */
    if (ev.has_id) {
        /* API.md: the per-user seq increases by exactly 1. */
        if (c->last_id && ev.id != c->last_id + 1)
            B.st.seq_gaps++;
        c->last_id = ev.id;
    }
    B.st.events++;
    sub_event(c, &ev);
}

/* Stream bytes: append, then dispatch every complete event. */
static void sse_feed(struct conn *c, const char *p, size_t n)
{
    size_t start = 0;
    uint32_t gen = c->gen;
    if (buf_append(&c->body, p, n) != 0) {
        conn_fail(c, FAIL_PROTO); /* an event over EVENT_MAX */
        return;
    }
    while (c->sse_scan < c->body.len) { /* one line per pass */
        const char *s = c->body.data + c->sse_scan;
        const char *nl = memchr(s, '\n', c->body.len - c->sse_scan);
        size_t ls = c->sse_scan, le;
        if (!nl) {
            c->sse_scan = c->body.len;
            break;
        }
        le = (size_t)(nl - c->body.data);
        c->sse_scan = le + 1;
        if (le == ls || (le == ls + 1 && c->body.data[ls] == '\r')) { /* blank: dispatch */
            sse_block(c, c->body.data + start, ls - start);
            if (c->gen != gen)
                return;
            start = c->sse_scan;
        }
    }
    buf_consume(&c->body, start);
    c->sse_scan -= start;
}

/* ---- subscribers ------------------------------------------------------- */

static void sub_request(struct conn *c)
{
    buf_printf(&c->out,
               "GET /v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
               "Accept: text/event-stream\r\n",
               B.o.host, B.tokens[c->slot]);
    /* A reconnecting stream resumes where it was, like EventSource. */
    if (c->last_id)
        buf_printf(&c->out, "Last-Event-ID: %" PRIu64 "\r\n", c->last_id);
    buf_puts(&c->out, "\r\n");
    c->phase = RP_HEAD;
}

/* Open (or reopen) a subscriber's stream; 0 or -1. */
static int sub_start(struct conn *c)
{
    if (conn_open(c) != 0)
        return -1;
    sub_request(c);
    return 0;
}

static void sub_failed(struct conn *c)
{
    if (c->ready) {
        c->ready = 0;
        B.subs_ready--;
        B.st.sub_drops++;
    }
    conn_close(c);
    if (B.sub_reconnect && c->reconnects < RECONNECT_MAX) {
        c->reconnects++;
        B.st.reconnects++;
        if (sub_start(c) == 0)
            return;
    }
    B.subs_failed++;
}

static void sub_head(struct conn *c)
{
    if (c->status != 200) {
        B.st.sub_status[c->status < STATUS_MAX ? c->status : 0]++;
        return; /* the body is read to its end, then the stream counts as failed */
    }
    c->ready = 1;
    B.subs_ready++;
    samples_add(&B.sub_lat, B.t_recv - c->t_start);
}

/* A fanout message arrived at subscriber c. */
static void deliver(struct conn *c, uint64_t k)
{
    struct msg *m = &B.msgs[k];
    if (m->to != c->idx) {
        B.st.misrouted++;
    } else if (m->ndeliv) {
        B.st.dup++;
        m->ndeliv += m->ndeliv < 255;
    } else {
        m->ndeliv = 1;
        m->t_deliv = B.t_recv;
        B.st.delivered++;
        if (m->status == 201)
            B.st.acked_delivered++;
        if (m->t_write)
            samples_add(&B.deliv_lat, B.t_recv - m->t_write);
    }
}

/* Message number of a client_msg_id of this run ("<tag>-<k>"), or -1. */
static int64_t cmid_number(const char *cmid)
{
    size_t tl = strlen(B.tag);
    char *end;
    unsigned long long k;
    if (strncmp(cmid, B.tag, tl) != 0 || cmid[tl] != '-' || cmid[tl + 1] < '0' ||
        cmid[tl + 1] > '9')
        return -1;
    k = strtoull(cmid + tl + 1, &end, 10);
    return *end || k >= B.planned ? -1 : (int64_t)k;
}

static void sub_event(struct conn *c, const struct sse_ev *ev)
{
    json_error_t jerr;
    json_t *root, *data;
    const char *cmid;
    int64_t k;
    if (B.o.sc != SC_FANOUT)
        return;
    if (strcmp(ev->event, "message") != 0) {
        B.st.other_events++;
        return;
    }
    root = json_loadb(B.data.data, B.data.len, 0, &jerr);
    data = json_object_get(root, "data");
    cmid = json_string_value(json_object_get(data, "client_msg_id"));
    if (!json_is_string(json_object_get(data, "sender")) || !cmid)
        B.st.bad_events++;
    else if ((k = cmid_number(cmid)) < 0)
        B.st.foreign++;
    else
        deliver(c, (uint64_t)k);
    json_decref(root);
}

/* ---- senders ----------------------------------------------------------- */

static struct conn *sender_conn(unsigned j)
{
    return &B.conns[B.o.subs + j];
}

/* Write one POST /v1/messages; 0, or -1 if the connection broke. */
static int sender_post(struct conn *c, const char *to, const char *cmid)
{
    buf_reset(&B.scratch);
    buf_printf(&B.scratch, "{\"to\":\"%s\",\"client_msg_id\":\"%s\",\"body\":\"%s\"}", to, cmid,
               B.body_text);
    buf_printf(&c->out,
               "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
               B.o.host, B.tokens[c->slot], B.scratch.len);
    if (buf_append(&c->out, B.scratch.data, B.scratch.len) != 0)
        die("request over OUT_MAX (--body-bytes too large)");
    c->busy = 1;
    c->t_write = 0;
    c->t_start = now_ns();
    c->phase = RP_HEAD;
    c->status = 0;
    c->nsent++;
    return conn_send(c);
}

/* A warm-up request: answered at once, it runs a worker's store reads. */
static void warm_poll(struct conn *c)
{
    buf_printf(&c->out,
               "GET /v1/poll?timeout=0 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
               B.o.host, B.tokens[c->slot]);
    c->busy = 1;
    c->t_write = 0;
    c->t_start = now_ns();
    c->phase = RP_HEAD;
    c->status = 0;
    conn_send(c);
}

/* Start the next request on an idle sender, if there is one to send. */
static void sender_next(struct conn *c)
{
    char to[96], cmid[64];
    if (c->busy || !B.sending)
        return;
    if (c->state == CS_CLOSED) {
        /* Reopened after lighttpd's keep-alive limit (1000 requests) or a
         * failure; the failure budget bounds a refused-connect loop. */
        if (c->reconnects >= RECONNECT_MAX || conn_open(c) != 0)
            return;
    }
    if (B.warming) {
        warm_poll(c);
        return;
    }
    if (B.o.sc == SC_FANOUT) {
        uint64_t k;
        if (c->qlen == 0)
            return;
        k = c->q[c->qhead];
        c->qhead = (c->qhead + 1) % SENDER_QUEUE;
        c->qlen--;
        c->msg = (int64_t)k;
        user_name(to, sizeof(to), "sub", B.msgs[k].to);
        snprintf(cmid, sizeof(cmid), "%s-%" PRIu64, B.tag, k);
    } else {
        /* One recipient per sender: its direct conversation is made by the
         * first send, so the window measures the steady state of sending,
         * the same for any --senders (rotating over recipients would make
         * a share of new conversations that grows with --senders). */
        user_name(to, sizeof(to), "rcpt", c->idx % B.o.recipients);
        snprintf(cmid, sizeof(cmid), "%s-s%u-%" PRIu64, B.tag, c->idx, c->nsent);
    }
    sender_post(c, to, cmid);
}

static void sender_written(struct conn *c)
{
    B.st.sent++;
    if (c->msg >= 0)
        B.msgs[c->msg].t_write = c->t_write;
}

/* The request in flight (if any) is lost, the socket closed; go on. Each
 * failure spends one of the sender's RECONNECT_MAX reconnections. */
static void sender_failed(struct conn *c)
{
    if (c->msg >= 0) {
        struct msg *m = &B.msgs[c->msg];
        m->t_done = now_ns(); /* status stays 0: no answer */
        c->msg = -1;
    }
    conn_close(c);
    c->reconnects++;
    B.st.reconnects++;
    sender_next(c);
}

static void sender_done(struct conn *c)
{
    int64_t t = B.t_recv;
    B.st.answered++;
    B.st.status[c->status < STATUS_MAX ? c->status : 0]++;
    if (c->t_write)
        samples_add(&B.post_lat, t - c->t_write);
    if (c->status == 201) {
        B.st.acked++;
        if (t <= B.t_end)
            B.st.ok_in_window++;
    } else if (!B.errbody[0]) {
        snprintf(B.errbody, sizeof(B.errbody), "%d %.*s", c->status, (int)c->body.len,
                 c->body.data ? c->body.data : "");
    }
    if (c->msg >= 0) {
        struct msg *m = &B.msgs[c->msg];
        m->status = (uint16_t)c->status;
        m->t_done = t;
        if (c->status == 201 && m->ndeliv) /* the event can beat the answer */
            B.st.acked_delivered++;
        c->msg = -1;
    }
    c->busy = 0;
    c->nreq++;
    buf_reset(&c->body);
    if (c->close_after)
        conn_close(c);
    sender_next(c);
}

/* ---- callbacks of the parser ------------------------------------------- */

static void on_head(struct conn *c)
{
    if (c->role == ROLE_SUB)
        sub_head(c);
}

static void on_body(struct conn *c, const char *p, size_t n)
{
    if (c->role == ROLE_SUB) {
        if (c->status == 200)
            sse_feed(c, p, n);
    } else if (c->status != 201 && c->body.len < ERRBODY_MAX) {
        /* Keep the start of an error answer for the report. */
        buf_append(&c->body, p, n < ERRBODY_MAX - c->body.len ? n : ERRBODY_MAX - c->body.len);
    }
}

static void on_done(struct conn *c)
{
    if (c->role == ROLE_SENDER)
        sender_done(c);
    else
        sub_failed(c); /* a stream that ends, or an error answer */
}

/* ---- the loop ---------------------------------------------------------- */

/* Fail whatever has waited longer than --timeout. */
static void check_timeouts(void)
{
    int64_t now = now_ns(), limit = (int64_t)(B.o.timeout * NS_PER_S);
    if (!B.conns || now - B.last_check < TIMEOUT_CHECK_NS)
        return;
    B.last_check = now;
    for (uint32_t i = 0; i < B.nconns; i++) {
        struct conn *c = &B.conns[i];
        int waiting = c->state == CS_CONNECTING || (c->role == ROLE_SENDER && c->busy) ||
                      (c->role == ROLE_SUB && c->state == CS_OPEN && !c->ready);
        if (c->state != CS_CLOSED && waiting && now - c->t_start > limit)
            conn_fail(c, FAIL_TIMEOUT);
    }
}

/* Wait up to timeout_ns for events and handle them. */
static void loop_step(int64_t timeout_ns)
{
    struct epoll_event ev[EPOLL_BATCH];
    struct timespec ts;
    int n;
    if (timeout_ns < 0)
        timeout_ns = 0;
    ts.tv_sec = (time_t)(timeout_ns / NS_PER_S);
    ts.tv_nsec = (long)(timeout_ns % NS_PER_S);
    /* epoll_pwait2: the fanout schedule needs sub-millisecond wake-ups. */
    n = epoll_pwait2(B.epfd, ev, EPOLL_BATCH, &ts, NULL);
    if (n < 0 && errno == ENOSYS)
        n = epoll_wait(B.epfd, ev, EPOLL_BATCH, (int)((timeout_ns + NS_PER_MS - 1) / NS_PER_MS));
    for (int i = 0; i < n; i++) {
        uint32_t slot = (uint32_t)ev[i].data.u64;
        struct conn *c = slot < B.nconns ? &B.conns[slot] : NULL;
        /* An earlier event of this batch may have closed or reopened c. */
        if (c && c->gen == (uint32_t)(ev[i].data.u64 >> 32) && c->fd >= 0)
            conn_event(c, ev[i].events);
    }
    check_timeouts();
}

/* Run the loop for secs seconds. */
static void loop_for(double secs)
{
    int64_t end = now_ns() + (int64_t)(secs * NS_PER_S);
    for (int64_t now = now_ns(); now < end; now = now_ns())
        loop_step(end - now < 50 * NS_PER_MS ? end - now : 50 * NS_PER_MS);
}

/* ---- phases shared by the scenarios ------------------------------------- */

/*
 * Allocate the connections with their tokens: slots [0, nsubs) are the
 * subscribers, then nsenders senders, then (with warm) WARM_STREAMS
 * warm-up streams and WARM_CONNS warm-up pollers (users PREFIX-warm-<i>,
 * see warm_up).
 */
static void conns_init(unsigned nsubs, unsigned nsenders, int warm, const char *sub_kind)
{
    char user[96];
    uint32_t wf = nsubs + nsenders, wp = wf + WARM_STREAMS;
    B.nconns = wf + (warm ? WARM_STREAMS + WARM_CONNS : 0);
    B.warm_first = wf;
    B.conns = xcalloc(B.nconns, sizeof(*B.conns));
    B.tokens = xcalloc(B.nconns, sizeof(*B.tokens));
    for (uint32_t i = 0; i < B.nconns; i++) {
        struct conn *c = &B.conns[i];
        const char *kind = i < nsubs ? sub_kind : i < wf ? "snd" : "warm";
        c->fd = -1;
        c->slot = i;
        c->msg = -1;
        c->role = i < nsubs || (i >= wf && i < wp) ? ROLE_SUB : ROLE_SENDER;
        c->idx = i < nsubs ? i : i < wf ? i - nsubs : i - wf;
        buf_init(&c->in, IN_MAX);
        buf_init(&c->out, OUT_MAX);
        buf_init(&c->body, EVENT_MAX);
        user_name(user, sizeof(user), kind, c->idx);
        B.tokens[i] = mint_token(user);
        if (c->role == ROLE_SENDER && i < wf && B.o.sc == SC_FANOUT)
            c->q = xcalloc(SENDER_QUEUE, sizeof(*c->q));
    }
}

static void conns_free(void)
{
    for (uint32_t i = 0; i < B.nconns; i++) {
        conn_close(&B.conns[i]);
        buf_release(&B.conns[i].in);
        buf_release(&B.conns[i].out);
        buf_release(&B.conns[i].body);
        free(B.conns[i].q);
        free(B.tokens[i]);
    }
    free(B.conns);
    free(B.tokens);
}

/*
 * Open the streams of slots [first, first + n) in batches of --batch: a
 * batch must be up (or failed, or timed out) before the next starts, so
 * lighttpd's listen backlog and larkd's accept queue are never flooded.
 * Returns the seconds taken; *up gets how many came up.
 */
static double subs_connect(uint32_t first, unsigned n, unsigned *up)
{
    int64_t t0 = now_ns();
    unsigned ready0 = B.subs_ready, settled0 = B.subs_ready + B.subs_failed;
    for (unsigned off = 0; off < n; off += B.o.batch) {
        unsigned last = off + B.o.batch < n ? off + B.o.batch : n;
        int64_t deadline = now_ns() + (int64_t)((B.o.timeout + 1) * NS_PER_S);
        for (unsigned i = off; i < last; i++)
            if (sub_start(&B.conns[first + i]) != 0)
                B.subs_failed++;
        while (B.subs_ready + B.subs_failed - settled0 < last && now_ns() < deadline)
            loop_step(20 * NS_PER_MS);
        if (B.subs_ready + B.subs_failed - settled0 < last) {
            fprintf(stderr, "larkbench: %u of %u streams up after %.0f s; giving up\n",
                    B.subs_ready - ready0, last, B.o.timeout + 1);
            break;
        }
    }
    *up = B.subs_ready - ready0;
    return (double)(now_ns() - t0) / NS_PER_S;
}

/*
 * Warm larkd up before the "before" memory sample: the first requests a
 * larkd worker thread serves open its SQLite read connection and its malloc
 * arena, and the first streams the hub holds grow its tables: costs paid
 * once per thread, which would otherwise be charged to the first thousand
 * streams (measured: 4.5 instead of 0.3 KiB per stream at 1,000). So:
 * WARM_STREAMS streams that stay open to the end (held in both samples,
 * they cancel out; closing them would not do, as lighttpd notices a
 * vanished stream client only at the next keep-alive write, up to 15 s
 * later), and --warmup short GET /v1/poll?timeout=0 requests on WARM_CONNS
 * connections, enough to reach every worker. Returns the streams up.
 */
static unsigned warm_up(void)
{
    unsigned up = 0;
    int64_t deadline;
    if (!B.o.warmup || B.nconns < B.warm_first + WARM_STREAMS + WARM_CONNS)
        return 0;
    subs_connect(B.warm_first, WARM_STREAMS, &up);
    B.warming = B.sending = 1;
    for (uint32_t i = B.warm_first + WARM_STREAMS; i < B.nconns; i++)
        if (conn_open(&B.conns[i]) == 0)
            sender_next(&B.conns[i]);
    deadline = now_ns() + 10 * NS_PER_S;
    while (B.st.answered < B.o.warmup && now_ns() < deadline)
        loop_step(10 * NS_PER_MS);
    B.warming = B.sending = 0;
    deadline = now_ns() + 2 * NS_PER_S;
    for (uint32_t i = B.warm_first + WARM_STREAMS; i < B.nconns; i++)
        while (B.conns[i].busy && now_ns() < deadline)
            loop_step(10 * NS_PER_MS);
    for (uint32_t i = B.warm_first + WARM_STREAMS; i < B.nconns; i++)
        conn_close(&B.conns[i]);
    loop_for(0.2);
    memset(&B.st, 0, sizeof(B.st));
    B.sub_lat.n = B.post_lat.n = 0;
    B.errbody[0] = '\0';
    return up;
}

/* Open every sender and wait (bounded) until all are connected. */
static unsigned senders_connect(void)
{
    unsigned open = 0;
    int64_t deadline = now_ns() + (int64_t)(B.o.timeout * NS_PER_S);
    for (unsigned j = 0; j < B.o.senders; j++)
        conn_open(sender_conn(j));
    while (now_ns() < deadline) {
        open = 0;
        for (unsigned j = 0; j < B.o.senders; j++)
            open += sender_conn(j)->state == CS_OPEN;
        if (open == B.o.senders)
            break;
        loop_step(10 * NS_PER_MS);
    }
    return open;
}

/* Answers still outstanding after the window; wait for them (bounded). */
static void senders_drain(void)
{
    int64_t deadline = now_ns() + (int64_t)((B.o.timeout + 1) * NS_PER_S);
    while (now_ns() < deadline) {
        unsigned pending = 0;
        for (unsigned j = 0; j < B.o.senders; j++)
            pending += sender_conn(j)->busy || sender_conn(j)->qlen;
        if (!pending)
            break;
        loop_step(10 * NS_PER_MS);
    }
}

/* Memory of the two servers at one moment. */
struct mem {
    long larkd, lighttpd; /* VmRSS KiB, -1 unknown */
};

static void mem_take(struct mem *m)
{
    m->larkd = proc_rss_kib(B.o.larkd_pid);
    m->lighttpd = proc_rss_kib(B.o.lighttpd_pid);
}

static double per_conn(long before, long after, unsigned n)
{
    return before >= 0 && after >= 0 && n ? (double)(after - before) / n : -1;
}

/* ---- report helpers ----------------------------------------------------- */

/* A number, or null when unknown (negative). */
static json_t *jnum(double v)
{
    return v < 0 ? json_null() : json_real(round3(v));
}

static json_t *lat_json(struct samples *s)
{
    return json_pack("{s:I, s:o, s:o, s:o}", "n", (json_int_t)s->n, "p50_ms", jnum(pct_ms(s, 50)),
                     "p99_ms", jnum(pct_ms(s, 99)), "max_ms", jnum(pct_ms(s, 100)));
}

static void lat_print(const char *what, struct samples *s)
{
    if (s->n == 0) {
        printf("  %-26s no samples\n", what);
        return;
    }
    printf("  %-26s p50 %.3f ms   p99 %.3f ms   max %.3f ms   (n=%zu)\n", what, pct_ms(s, 50),
           pct_ms(s, 99), pct_ms(s, 100), s->n);
}

static json_t *mem_json(const struct mem *a, const struct mem *b, unsigned n)
{
    double l = per_conn(a->larkd, b->larkd, n), h = per_conn(a->lighttpd, b->lighttpd, n);
    return json_pack("{s:i, s:{s:I, s:I, s:o}, s:{s:I, s:I, s:o}, s:o}", "connections", (int)n,
                     "larkd", "before_kib", (json_int_t)a->larkd, "after_kib", (json_int_t)b->larkd,
                     "kib_per_conn", jnum(l), "lighttpd", "before_kib", (json_int_t)a->lighttpd,
                     "after_kib", (json_int_t)b->lighttpd, "kib_per_conn", jnum(h),
                     "total_kib_per_conn", l >= 0 && h >= 0 ? jnum(l + h) : json_null());
}

static void mem_print(const struct mem *a, const struct mem *b, unsigned n)
{
    double l = per_conn(a->larkd, b->larkd, n), h = per_conn(a->lighttpd, b->lighttpd, n);
    printf("  memory (VmRSS)             larkd %ld -> %ld KiB, lighttpd %ld -> %ld KiB\n", a->larkd,
           b->larkd, a->lighttpd, b->lighttpd);
    printf("  per held stream            larkd %.2f KiB + lighttpd %.2f KiB = %.2f KiB  (n=%u)\n",
           l, h, l >= 0 && h >= 0 ? l + h : -1.0, n);
}

static json_t *cpu_json(const struct cpu_use *u)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:i, s:{s:o, s:o, s:o, s:o}}", "larkd", jnum(u->larkd),
                     "lighttpd", jnum(u->lighttpd), "bench", jnum(u->self), "others",
                     jnum(u->others), "cores", (int)sysconf(_SC_NPROCESSORS_ONLN), "larkd_threads",
                     "writer", jnum(u->thread[1]), "hub", jnum(u->thread[2]), "workers",
                     jnum(u->workers), "busiest_worker", jnum(u->thread[3]));
}

static void cpu_print(const struct cpu_use *u)
{
    printf("  CPU (%% of one core)        larkd %.0f%%, lighttpd %.0f%%, larkbench %.0f%%, "
           "other processes %.0f%%  [%ld cores]\n",
           u->larkd, u->lighttpd, u->self, u->others, sysconf(_SC_NPROCESSORS_ONLN));
    printf("  larkd threads              sqlite writer %.0f%%, hub %.0f%%, workers %.0f%% "
           "(busiest %.0f%%), main %.0f%%\n",
           u->thread[1], u->thread[2], u->workers, u->thread[3], u->thread[0]);
}

/* {"201": n, ...} for the statuses seen, plus transport failures. */
static json_t *errors_json(const uint64_t *status, enum role role)
{
    json_t *o = json_object();
    char key[16];
    for (int s = 0; s < STATUS_MAX; s++) {
        if (status[s] && s != 200 && s != 201) {
            snprintf(key, sizeof(key), "%d", s);
            json_object_set_new(o, key, json_integer((json_int_t)status[s]));
        }
    }
    for (int f = 0; f < FAIL_COUNT; f++)
        if (B.st.fail[role][f])
            json_object_set_new(o, fail_name[f], json_integer((json_int_t)B.st.fail[role][f]));
    return o;
}

static void errors_print(const char *what, const uint64_t *status, enum role role)
{
    json_t *o = errors_json(status, role);
    char *text = json_dumps(o, JSON_COMPACT);
    printf("  %-26s %s\n", what, json_object_size(o) ? text : "none");
    free(text);
    json_decref(o);
}

/* Print the JSON line (and append it to --json FILE). */
static void emit(json_t *root)
{
    char *line = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(10));
    FILE *f;
    if (!line)
        die("cannot format the JSON line");
    printf("%s\n", line);
    if (B.o.json_path) {
        if (!(f = fopen(B.o.json_path, "a")))
            die("cannot open the --json file");
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(line);
    json_decref(root);
}

static void header_print(const char *title)
{
    printf("\n== larkbench %s: http://%s  (larkd pid %d, lighttpd pid %d)\n", title, B.o.host,
           (int)B.o.larkd_pid, (int)B.o.lighttpd_pid);
}

/* ---- fanout ------------------------------------------------------------- */

/* ns after t0 at which message k is due: a fixed total rate, open loop. */
static int64_t msg_offset(uint64_t k)
{
    return (int64_t)((double)k * NS_PER_S / B.o.rate);
}

/* Queue every message due by now on its sender (recipient k % N, sender
 * recipient % S: each subscriber hears from one sender, so the N direct
 * conversations are made in the first N messages and reused after). */
static void fan_schedule(int64_t now)
{
    uint64_t due;
    if (now < B.t0)
        return;
    due = (uint64_t)((double)(now - B.t0) * B.o.rate / NS_PER_S) + 1;
    if (due > B.planned)
        due = B.planned;
    while (B.next_msg < due) { /* bounded by B.planned */
        uint64_t k = B.next_msg++;
        uint32_t to = (uint32_t)(k % B.o.subs);
        struct conn *s = sender_conn(to % B.o.senders);
        B.msgs[k].to = to;
        if (s->qlen == SENDER_QUEUE) {
            B.st.overflow++;
            continue;
        }
        s->q[(s->qhead + s->qlen++) % SENDER_QUEUE] = (uint32_t)k;
        sender_next(s);
    }
}

/* The sending window, then the answers still due. */
static void fan_window(struct cpu_use *u)
{
    static struct cpu_sample a, b;
    B.t0 = now_ns() + 10 * NS_PER_MS;
    B.t_end = B.t0 + (int64_t)(B.o.duration * NS_PER_S);
    B.sending = 1;
    B.sub_reconnect = 1;
    cpu_take(&a);
    for (int64_t now = now_ns(); now < B.t_end; now = now_ns()) {
        int64_t next = B.next_msg < B.planned ? B.t0 + msg_offset(B.next_msg) : B.t_end;
        fan_schedule(now);
        if (next > B.t_end)
            next = B.t_end;
        loop_step(next - now < 50 * NS_PER_MS ? next - now : 50 * NS_PER_MS);
    }
    fan_schedule(B.t_end);
    senders_drain();
    cpu_take(&b);
    B.sending = 0;
    cpu_diff(&a, &b, u);
}

/* Wait up to --grace for acknowledged messages still on their way. */
static double fan_grace(void)
{
    int64_t t0 = now_ns(), deadline = t0 + (int64_t)(B.o.grace * NS_PER_S);
    while (B.st.acked_delivered < B.st.acked && now_ns() < deadline)
        loop_step(10 * NS_PER_MS);
    return (double)(now_ns() - t0) / NS_PER_S;
}

struct fan_result {
    struct mem m0, m1;     /* before the streams, after they settled */
    struct cpu_use cpu;    /* during the window */
    double connect_s;      /* opening every stream */
    long fds0, fds1;       /* larkd's descriptors before and after the streams */
    unsigned senders_open; /* sender connections up at the start */
    unsigned subs_up;      /* streams up before sending */
    double grace_s;        /* waited for late deliveries */
    uint64_t lost;         /* acknowledged, never delivered */
    uint64_t unanswered;   /* written, no answer */
};

static void fan_tally(struct fan_result *r)
{
    r->lost = B.st.acked - B.st.acked_delivered;
    r->unanswered = 0;
    for (uint64_t k = 0; k < B.next_msg; k++) {
        const struct msg *m = &B.msgs[k];
        if (m->t_write) {
            samples_add(&B.send_lag, m->t_write - (B.t0 + msg_offset(k)));
            r->unanswered += m->status == 0;
        }
    }
}

static double ms_since_t0(int64_t t)
{
    return t ? (double)(t - B.t0) / NS_PER_MS : -1;
}

/* --dump: what happened to each message, for plotting. */
static void fan_dump(void)
{
    FILE *f;
    if (!B.o.dump_path)
        return;
    if (!(f = fopen(B.o.dump_path, "w")))
        die("cannot open the --dump file");
    fprintf(f, "k,to,status,due_ms,written_ms,answered_ms,delivered_ms\n");
    for (uint64_t k = 0; k < B.next_msg; k++) {
        const struct msg *m = &B.msgs[k];
        fprintf(f, "%" PRIu64 ",%u,%u,%.3f,%.3f,%.3f,%.3f\n", k, m->to, m->status,
                (double)msg_offset(k) / NS_PER_MS, ms_since_t0(m->t_write), ms_since_t0(m->t_done),
                ms_since_t0(m->t_deliv));
    }
    fclose(f);
}

static int fan_met(const struct fan_result *r)
{
    double p99 = pct_ms(&B.deliv_lat, 99);
    return r->subs_up == B.o.subs && B.st.acked == B.planned && r->lost == 0 && B.st.dup == 0 &&
           B.st.misrouted == 0 && p99 >= 0 && p99 <= B.o.p99_target_ms;
}

static void fan_print(struct fan_result *r)
{
    double secs = B.o.duration;
    header_print("fanout");
    printf("  subscribers                %u of %u up in %.2f s (larkd holds %ld more fds)\n",
           r->subs_up, B.o.subs, r->connect_s, r->fds1 - r->fds0);
    lat_print("subscribe (connect->head)", &B.sub_lat);
    mem_print(&r->m0, &r->m1, r->subs_up);
    printf("  senders                    %u of %u connected, one request in flight each\n",
           r->senders_open, B.o.senders);
    printf("  messages                   planned %" PRIu64 " (%.0f/s x %.1f s), sent %" PRIu64
           ", acknowledged (201) %" PRIu64 ", unanswered %" PRIu64 ", not sent %" PRIu64 "\n",
           B.planned, B.o.rate, secs, B.st.sent, B.st.acked, r->unanswered, B.planned - B.st.sent);
    printf("  send throughput            %.1f msg/s acknowledged\n", (double)B.st.acked / secs);
    printf("  delivered                  %" PRIu64 " (of them acknowledged %" PRIu64
           "), waited %.2f s after the window\n",
           B.st.delivered, B.st.acked_delivered, r->grace_s);
    printf("  LOST (acked, not delivered) %" PRIu64 "   duplicated %" PRIu64 "   misrouted %" PRIu64
           "   seq gaps %" PRIu64 "\n",
           r->lost, B.st.dup, B.st.misrouted, B.st.seq_gaps);
    printf("  stream drops               %" PRIu64 " (reconnects %" PRIu64 ")\n", B.st.sub_drops,
           B.st.reconnects);
    lat_print("delivery (POST->event)", &B.deliv_lat);
    lat_print("POST (write->answer)", &B.post_lat);
    lat_print("send lag (due->written)", &B.send_lag);
    errors_print("send errors", B.st.status, ROLE_SENDER);
    errors_print("stream errors", B.st.sub_status, ROLE_SUB);
    if (B.errbody[0])
        printf("  first error answer         %s\n", B.errbody);
    cpu_print(&r->cpu);
    printf("  target (0 lost, p99 <= %.0f ms, all sent and acked): %s\n", B.o.p99_target_ms,
           fan_met(r) ? "MET" : "MISSED");
}

static void fan_emit(struct fan_result *r)
{
    json_t *root = json_pack(
        "{s:s, s:i, s:i, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
        "scenario", "fanout", "subs", (int)B.o.subs, "senders", (int)B.o.senders, "rate", B.o.rate,
        "duration_s", B.o.duration, "planned", (json_int_t)B.planned, "sent", (json_int_t)B.st.sent,
        "acked", (json_int_t)B.st.acked, "delivered", (json_int_t)B.st.delivered, "lost",
        (json_int_t)r->lost, "duplicated", (json_int_t)B.st.dup, "misrouted",
        (json_int_t)B.st.misrouted, "seq_gaps", (json_int_t)B.st.seq_gaps, "stream_drops",
        (json_int_t)B.st.sub_drops, "send_rate", jnum((double)B.st.acked / B.o.duration), "subs_up",
        json_integer(r->subs_up));
    json_object_set_new(root, "delivery_latency", lat_json(&B.deliv_lat));
    json_object_set_new(root, "post_latency", lat_json(&B.post_lat));
    json_object_set_new(root, "send_lag", lat_json(&B.send_lag));
    json_object_set_new(root, "subscribe_latency", lat_json(&B.sub_lat));
    json_object_set_new(root, "errors", errors_json(B.st.status, ROLE_SENDER));
    json_object_set_new(root, "stream_errors", errors_json(B.st.sub_status, ROLE_SUB));
    json_object_set_new(root, "memory", mem_json(&r->m0, &r->m1, r->subs_up));
    json_object_set_new(root, "larkd_fds_added",
                        r->fds0 >= 0 && r->fds1 >= 0 ? json_integer(r->fds1 - r->fds0)
                                                     : json_null());
    json_object_set_new(root, "cpu_pct", cpu_json(&r->cpu));
    /* CLOCK_MONOTONIC at the window's start: --dump times are relative to it. */
    json_object_set_new(root, "t0_monotonic_ns", json_integer((json_int_t)B.t0));
    json_object_set_new(root, "target_met", json_boolean(fan_met(r)));
    emit(root);
}

static int run_fanout(void)
{
    struct fan_result r = {0};
    int met;
    B.planned = (uint64_t)(B.o.rate * B.o.duration + 0.5);
    if (B.planned == 0 || B.planned > MSGS_MAX)
        die("--rate x --duration must plan 1 to 20,000,000 messages");
    if (B.o.senders > B.o.subs)
        die("fanout needs --senders <= --subs (each subscriber has one sender)");
    B.msgs = xcalloc(B.planned, sizeof(*B.msgs));
    conns_init(B.o.subs, B.o.senders, 1, "sub");
    warm_up();
    mem_take(&r.m0);
    r.fds0 = proc_fds(B.o.larkd_pid);
    r.connect_s = subs_connect(0, B.o.subs, &r.subs_up);
    loop_for(B.o.settle);
    mem_take(&r.m1);
    r.fds1 = proc_fds(B.o.larkd_pid);
    r.senders_open = senders_connect();
    fan_window(&r.cpu);
    r.grace_s = fan_grace();
    fan_tally(&r);
    fan_dump();
    fan_print(&r);
    fan_emit(&r);
    met = fan_met(&r);
    conns_free();
    free(B.msgs);
    return met;
}

/* ---- throughput --------------------------------------------------------- */

static int run_throughput(void)
{
    static struct cpu_sample a, b;
    struct cpu_use u;
    unsigned open;
    double rate;
    json_t *root;
    conns_init(0, B.o.senders, 0, "sub");
    open = senders_connect();
    cpu_take(&a);
    B.t0 = now_ns();
    B.t_end = B.t0 + (int64_t)(B.o.duration * NS_PER_S);
    B.sending = 1;
    for (unsigned j = 0; j < B.o.senders; j++)
        sender_next(sender_conn(j));
    for (int64_t now = now_ns(); now < B.t_end; now = now_ns())
        loop_step(B.t_end - now < 50 * NS_PER_MS ? B.t_end - now : 50 * NS_PER_MS);
    cpu_take(&b);
    B.sending = 0;
    senders_drain();
    cpu_diff(&a, &b, &u);
    rate = (double)B.st.ok_in_window / B.o.duration;

    header_print("throughput");
    printf("  senders                    %u of %u connected, closed loop, one request in flight "
           "each, %u recipients\n",
           open, B.o.senders, B.o.recipients);
    printf("  requests                   sent %" PRIu64 ", answered %" PRIu64
           ", stored (201) %" PRIu64 " in %.1f s, on %" PRIu64 " connections\n",
           B.st.sent, B.st.answered, B.st.ok_in_window, B.o.duration, B.st.opens);
    printf("  throughput                 %.1f msg/s stored\n", rate);
    lat_print("POST (write->answer)", &B.post_lat);
    errors_print("errors", B.st.status, ROLE_SENDER);
    if (B.errbody[0])
        printf("  first error answer         %s\n", B.errbody);
    cpu_print(&u);

    root =
        json_pack("{s:s, s:i, s:i, s:f, s:I, s:I, s:I, s:o}", "scenario", "throughput", "senders",
                  (int)B.o.senders, "recipients", (int)B.o.recipients, "duration_s", B.o.duration,
                  "sent", (json_int_t)B.st.sent, "answered", (json_int_t)B.st.answered, "stored",
                  (json_int_t)B.st.ok_in_window, "msg_per_s", jnum(rate));
    json_object_set_new(root, "post_latency", lat_json(&B.post_lat));
    json_object_set_new(root, "errors", errors_json(B.st.status, ROLE_SENDER));
    json_object_set_new(root, "cpu_pct", cpu_json(&u));
    emit(root);
    conns_free();
    return 1;
}

/* ---- idle --------------------------------------------------------------- */

struct idle_result {
    struct mem m0, m1; /* before the streams, after they settled */
    long larkd_fds[2]; /* descriptors before, after */
    long lighttpd_fds[2];
    double connect_s;   /* opening every stream */
    unsigned up, still; /* streams up after settling, and after --hold */
    int probe_status;   /* a new GET /v1/healthz while they are held, -1 none */
    double probe_ms;
    double hangup_s[2]; /* lighttpd, larkd freeing them after the clients closed */
};

/*
 * Close every stream; then the seconds until lighttpd and larkd are down to
 * their targets in descriptors (-1: not within 20 s, longer than the
 * largest SSE keep-alive interval, 15 s, after which a write must fail).
 */
static void idle_hangup(long larkd_target, long lighttpd_target, double out[2])
{
    int64_t t0 = now_ns(), deadline = t0 + 20 * NS_PER_S;
    out[0] = out[1] = -1;
    for (uint32_t i = 0; i < B.nconns; i++)
        conn_close(&B.conns[i]);
    while (now_ns() < deadline && (out[0] < 0 || out[1] < 0)) {
        double t = (double)(now_ns() - t0) / NS_PER_S;
        if (out[0] < 0 && proc_fds(B.o.lighttpd_pid) <= lighttpd_target)
            out[0] = t;
        if (out[1] < 0 && proc_fds(B.o.larkd_pid) <= larkd_target)
            out[1] = t;
        usleep(10 * 1000);
    }
}

static void idle_print(const struct idle_result *r)
{
    header_print("idle");
    printf("  streams                    %u of %u up in %.2f s (%.0f/s)\n", r->up, B.o.subs,
           r->connect_s, r->connect_s > 0 ? r->up / r->connect_s : 0.0);
    printf("  descriptors                larkd %ld -> %ld, lighttpd %ld -> %ld\n", r->larkd_fds[0],
           r->larkd_fds[1], r->lighttpd_fds[0], r->lighttpd_fds[1]);
    printf("  after %.1f s more           %u still up, %" PRIu64 " dropped\n", B.o.hold, r->still,
           B.st.sub_drops);
    lat_print("subscribe (connect->head)", &B.sub_lat);
    mem_print(&r->m0, &r->m1, r->up);
    errors_print("stream errors", B.st.sub_status, ROLE_SUB);
    if (r->probe_status > 0)
        printf("  new request while held     GET /v1/healthz -> %d in %.1f ms\n", r->probe_status,
               r->probe_ms);
    else
        printf("  new request while held     GET /v1/healthz: NO ANSWER within 2 s (lighttpd "
               "stops accepting above 90%% of server.max-fds)\n");
    printf("  after the clients closed   lighttpd let go in %.3f s, larkd in %.3f s (-1: not "
           "within 20 s)\n",
           r->hangup_s[0], r->hangup_s[1]);
}

static void idle_emit(const struct idle_result *r)
{
    json_t *root = json_pack(
        "{s:s, s:i, s:i, s:i, s:f, s:{s:I, s:I}, s:{s:I, s:I}, s:o, s:o, s:{s:o, s:o}, s:o}",
        "scenario", "idle", "subs", (int)B.o.subs, "up", (int)r->up, "still_up", (int)r->still,
        "connect_s", round3(r->connect_s), "larkd_fds", "before", (json_int_t)r->larkd_fds[0],
        "after", (json_int_t)r->larkd_fds[1], "lighttpd_fds", "before",
        (json_int_t)r->lighttpd_fds[0], "after", (json_int_t)r->lighttpd_fds[1], "probe_status",
        r->probe_status > 0 ? json_integer(r->probe_status) : json_null(), "probe_ms",
        jnum(r->probe_ms), "hangup_s", "lighttpd", jnum(r->hangup_s[0]), "larkd",
        jnum(r->hangup_s[1]), "subscribe_latency", lat_json(&B.sub_lat));
    json_object_set_new(root, "memory", mem_json(&r->m0, &r->m1, r->up));
    json_object_set_new(root, "stream_errors", errors_json(B.st.sub_status, ROLE_SUB));
    json_object_set_new(root, "dropped", json_integer((json_int_t)B.st.sub_drops));
    emit(root);
}

static int run_idle(void)
{
    struct idle_result r = {0};
    unsigned warm;
    conns_init(B.o.subs, 0, 1, "idle");
    warm = warm_up();
    mem_take(&r.m0);
    r.larkd_fds[0] = proc_fds(B.o.larkd_pid);
    r.lighttpd_fds[0] = proc_fds(B.o.lighttpd_pid);
    r.connect_s = subs_connect(0, B.o.subs, &r.up);
    loop_for(B.o.settle);
    mem_take(&r.m1);
    r.larkd_fds[1] = proc_fds(B.o.larkd_pid);
    r.lighttpd_fds[1] = proc_fds(B.o.lighttpd_pid);
    r.probe_status = http_probe("/v1/healthz", 2.0, &r.probe_ms);
    loop_for(B.o.hold);
    r.still = B.subs_ready - warm;
    /* Targets: every stream's descriptors gone (lighttpd: client and backend). */
    idle_hangup(r.larkd_fds[1] - (long)(r.up + warm), r.lighttpd_fds[1] - 2 * (long)(r.up + warm),
                r.hangup_s);
    idle_print(&r);
    idle_emit(&r);
    conns_free();
    return r.up == B.o.subs && r.still == r.up;
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: larkbench fanout|throughput|idle [options]\n"
        "\n"
        "Load-test a running lighttpd + larkd on 127.0.0.1:PORT (tools/bench.sh starts\n"
        "one per scenario). Prints a report, then one JSON line. docs/BENCHMARKS.md\n"
        "explains every figure.\n"
        "\n"
        "Scenarios:\n"
        "  fanout      --subs SSE streams (GET /v1/events, users PREFIX-sub-<i>) are opened\n"
        "              in batches; then --senders users (PREFIX-snd-<j>) post 1:1 messages\n"
        "              (POST /v1/messages) at --rate msg/s in total for --duration s.\n"
        "              Message k goes to subscriber k %% subs from sender (k %% subs) %% senders,\n"
        "              on that sender's keep-alive connection, one request in flight (like\n"
        "              a browser; pipelining would add the server's queueing of earlier\n"
        "              requests to a POST's write time). The schedule is open-loop: a\n"
        "              message due while its sender is busy waits in the bench and shows\n"
        "              up as send lag. Each carries a unique client_msg_id; each stream\n"
        "              records its message events. Reports sent, acknowledged (201),\n"
        "              delivered, lost (201 but not delivered to its recipient within\n"
        "              --grace s after the window), duplicated, misrouted, SSE id gaps,\n"
        "              delivery latency (POST fully written -> event read) p50/p99/max,\n"
        "              POST latency, send lag, VmRSS of larkd and lighttpd before the\n"
        "              streams and after they settled (KiB per stream), CPU use.\n"
        "              Target: 0 lost, p99 <= --p99-target ms, everything acknowledged.\n"
        "  throughput  --senders users post as fast as answers come back (closed loop,\n"
        "              one request in flight per keep-alive connection) for --duration s;\n"
        "              sender j always writes to PREFIX-rcpt-<j %% recipients>, so after\n"
        "              each sender's first message no new conversation is made. Reports\n"
        "              stored (201) msg/s, errors by status, POST latency p50/p99/max,\n"
        "              CPU use.\n"
        "  idle        --subs SSE streams (users PREFIX-idle-<i>) opened in batches and\n"
        "              held --hold s: VmRSS and descriptors before/after, KiB per stream,\n"
        "              whether a new request (GET /v1/healthz) is still answered while\n"
        "              they are held, streams that dropped, and how long larkd takes to\n"
        "              free them once the clients close them.\n"
        "\n"
        "Options (defaults: fanout / throughput / idle):\n"
        "  --port N           lighttpd's port (default $PORT, else 8080), on --host\n"
        "  --host ADDR        IPv4 address (127.0.0.1)\n"
        "  --secret S         HS256 secret (default $LARK_JWT_SECRET, else the dev secret)\n"
        "  --subs N           streams (1000 / - / 9000)\n"
        "  --senders N        sender connections (50 / 64 / -)\n"
        "  --rate R           fanout: total messages per second (1000)\n"
        "  --duration S       seconds of sending (20 / 10 / -)\n"
        "  --grace S          fanout: wait for late deliveries after the window (5)\n"
        "  --recipients N     throughput: distinct recipients (64); fewer than --senders\n"
        "                     makes recipients whose inbox several senders append to\n"
        "  --body-bytes N     message body size (64)\n"
        "  --batch N          streams opened per batch (200)\n"
        "  --settle S         idle time before the 'after' memory sample (1)\n"
        "  --hold S           idle: how long to hold the streams after that (2)\n"
        "  --warmup N         fanout, idle: short requests (GET /v1/poll?timeout=0 on\n"
        "                     8 connections) before the 'before' memory sample, plus\n"
        "                     16 streams held to the end, so that larkd's once-per-thread\n"
        "                     costs (SQLite read connection, malloc arena) are not\n"
        "                     charged per stream; 0 = no warm-up (2000)\n"
        "  --timeout S        connect / request / batch deadline (10)\n"
        "  --p99-target MS    fanout delivery p99 target (10)\n"
        "  --prefix P         user id prefix (b)\n"
        "  --larkd-pid PID    process to measure; default: whoever listens on the\n"
        "                     FastCGI socket named LARK_SOCKET in lighttpd's environment\n"
        "  --lighttpd-pid PID default: whoever listens on the port\n"
        "  --json FILE        also append the JSON line to FILE\n"
        "  --dump FILE        fanout: write one CSV line per message (number, recipient,\n"
        "                     status, and due/written/answered/delivered times in ms\n"
        "                     from the window's start; -1 = never), to find when the\n"
        "                     slow ones happened\n"
        "  --strict           exit 3 when a target is missed\n"
        "  --help             this text\n"
        "\n"
        "CPU figures are %% of one core over the sending window, from /proc/PID/stat;\n"
        "larkd's threads are named by creation order (writer, hub, then workers);\n"
        "'other processes' is the machine's busy time (/proc/stat) minus larkd,\n"
        "lighttpd and the bench: the noise from anything else running.\n"
        "The bench raises its open-file limit to the hard limit; it needs one\n"
        "descriptor per connection. Exit: 0 done (targets met or not, unless\n"
        "--strict), 2 usage or set-up error, 3 target missed with --strict.\n");
}

enum {
    OPT_PORT = 256,
    OPT_HOST,
    OPT_SECRET,
    OPT_SUBS,
    OPT_SENDERS,
    OPT_RATE,
    OPT_DURATION,
    OPT_GRACE,
    OPT_RECIPIENTS,
    OPT_BODY,
    OPT_BATCH,
    OPT_SETTLE,
    OPT_HOLD,
    OPT_TIMEOUT,
    OPT_P99,
    OPT_PREFIX,
    OPT_LARKD,
    OPT_LIGHTTPD,
    OPT_JSON,
    OPT_STRICT,
    OPT_WARMUP,
    OPT_DUMP,
    OPT_HELP
};

static const struct option long_opts[] = {{"port", required_argument, NULL, OPT_PORT},
                                          {"host", required_argument, NULL, OPT_HOST},
                                          {"secret", required_argument, NULL, OPT_SECRET},
                                          {"subs", required_argument, NULL, OPT_SUBS},
                                          {"senders", required_argument, NULL, OPT_SENDERS},
                                          {"rate", required_argument, NULL, OPT_RATE},
                                          {"duration", required_argument, NULL, OPT_DURATION},
                                          {"grace", required_argument, NULL, OPT_GRACE},
                                          {"recipients", required_argument, NULL, OPT_RECIPIENTS},
                                          {"body-bytes", required_argument, NULL, OPT_BODY},
                                          {"batch", required_argument, NULL, OPT_BATCH},
                                          {"settle", required_argument, NULL, OPT_SETTLE},
                                          {"hold", required_argument, NULL, OPT_HOLD},
                                          {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                          {"p99-target", required_argument, NULL, OPT_P99},
                                          {"prefix", required_argument, NULL, OPT_PREFIX},
                                          {"larkd-pid", required_argument, NULL, OPT_LARKD},
                                          {"lighttpd-pid", required_argument, NULL, OPT_LIGHTTPD},
                                          {"json", required_argument, NULL, OPT_JSON},
                                          {"strict", no_argument, NULL, OPT_STRICT},
                                          {"warmup", required_argument, NULL, OPT_WARMUP},
                                          {"dump", required_argument, NULL, OPT_DUMP},
                                          {"help", no_argument, NULL, OPT_HELP},
                                          {NULL, 0, NULL, 0}};

/* One option's value; -1 if it is malformed or out of range. */
static int set_opt(int c, const char *v, unsigned *port, const char **host)
{
    unsigned pid;
    switch (c) {
    case OPT_PORT: return parse_uint(v, 65535, port);
    case OPT_HOST: *host = v; return 0;
    case OPT_SECRET: B.o.secret = v; return 0;
    case OPT_SUBS: return parse_uint(v, CONNS_MAX / 2, &B.o.subs);
    case OPT_SENDERS: return parse_uint(v, 10000, &B.o.senders);
    case OPT_RATE: return parse_double(v, 0.001, 1e6, &B.o.rate);
    case OPT_DURATION: return parse_double(v, 0.1, 86400, &B.o.duration);
    case OPT_GRACE: return parse_double(v, 0, 3600, &B.o.grace);
    case OPT_RECIPIENTS: return parse_uint(v, 1000000, &B.o.recipients);
    case OPT_BODY: return parse_uint(v, 60000, &B.o.body_bytes);
    case OPT_BATCH: return parse_uint(v, 10000, &B.o.batch);
    case OPT_SETTLE: return parse_double(v, 0, 600, &B.o.settle);
    case OPT_HOLD: return parse_double(v, 0, 86400, &B.o.hold);
    case OPT_TIMEOUT: return parse_double(v, 0.1, 600, &B.o.timeout);
    case OPT_P99: return parse_double(v, 0, 1e6, &B.o.p99_target_ms);
    case OPT_PREFIX: B.o.prefix = v; return 0;
    case OPT_LARKD: return parse_uint(v, 1u << 30, &pid) ? -1 : (B.o.larkd_pid = (pid_t)pid, 0);
    case OPT_LIGHTTPD:
        return parse_uint(v, 1u << 30, &pid) ? -1 : (B.o.lighttpd_pid = (pid_t)pid, 0);
    case OPT_JSON: B.o.json_path = v; return 0;
    case OPT_STRICT: B.o.strict = 1; return 0;
    case OPT_WARMUP: return parse_uint(v, 1000000, &B.o.warmup);
    case OPT_DUMP: B.o.dump_path = v; return 0;
    default: return -1;
    }
}

/* Defaults that depend on the scenario (0 = not given). */
static void scenario_defaults(void)
{
    int fan = B.o.sc == SC_FANOUT;
    if (!B.o.subs)
        B.o.subs = B.o.sc == SC_IDLE ? 9000 : 1000;
    if (!B.o.senders)
        B.o.senders = fan ? 50 : 64;
    if (B.o.sc == SC_IDLE)
        B.o.senders = 0;
    if (B.o.sc == SC_THROUGHPUT)
        B.o.subs = 0;
    if (B.o.duration == 0)
        B.o.duration = fan ? 20 : 10;
}

static int parse_args(int argc, char **argv)
{
    const char *host = "127.0.0.1", *env_port = getenv("PORT");
    unsigned port = 8080;
    int c;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return argc < 2 ? -1 : 1;
    if (strcmp(argv[1], "fanout") == 0)
        B.o.sc = SC_FANOUT;
    else if (strcmp(argv[1], "throughput") == 0)
        B.o.sc = SC_THROUGHPUT;
    else if (strcmp(argv[1], "idle") == 0)
        B.o.sc = SC_IDLE;
    else
        return -1;
    if (env_port && parse_uint(env_port, 65535, &port) != 0)
        port = 8080;
    B.o = (struct opts){.sc = B.o.sc,
                        .rate = 1000,
                        .grace = 5,
                        .recipients = 64,
                        .body_bytes = 64,
                        .batch = 200,
                        .settle = 1,
                        .hold = 2,
                        .timeout = 10,
                        .warmup = 2000,
                        .p99_target_ms = 10,
                        .prefix = "b",
                        .secret = getenv("LARK_JWT_SECRET")};
    optind = 2;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == OPT_HELP)
            return 1;
        if (set_opt(c, optarg, &port, &host) != 0) {
            fprintf(stderr, "larkbench: bad option value: %s\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind != argc || port == 0 || !B.o.batch || !B.o.recipients)
        return -1;
    if (!B.o.secret || !*B.o.secret)
        B.o.secret = CONFIG_DEV_SECRET;
    B.o.addr.sin_family = AF_INET;
    B.o.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &B.o.addr.sin_addr) != 1)
        return -1;
    snprintf(B.o.host, sizeof(B.o.host), "%s:%u", host, port);
    scenario_defaults();
    return 0;
}

/* One descriptor per connection: take the hard limit. */
static void raise_nofile(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit");
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("setrlimit");
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need + 32) {
        fprintf(stderr, "larkbench: %u connections need more descriptors than the limit %lu\n",
                need, (unsigned long)rl.rlim_cur);
        exit(2);
    }
}

static void bench_init(void)
{
    uint64_t seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(B.o.subs + B.o.senders + WARM_STREAMS + WARM_CONNS);
    if ((B.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    /* A tag per run: events of an earlier run on the same database are foreign. */
    snprintf(B.tag, sizeof(B.tag), "%08" PRIx64, xorshift64(&seed) & 0xffffffffu);
    B.body_text = xmalloc(B.o.body_bytes + 1);
    memset(B.body_text, 'x', B.o.body_bytes);
    B.body_text[B.o.body_bytes] = '\0';
    buf_init(&B.scratch, OUT_MAX);
    buf_init(&B.data, EVENT_MAX);
    find_pids();
    if (B.o.larkd_pid <= 0 || B.o.lighttpd_pid <= 0)
        fprintf(stderr,
                "larkbench: larkd or lighttpd process not found (larkd %d, lighttpd %d);"
                " memory and CPU figures will be missing (use --larkd-pid/"
                "--lighttpd-pid)\n",
                (int)B.o.larkd_pid, (int)B.o.lighttpd_pid);
}

static void bench_release(void)
{
    close(B.epfd);
    free(B.body_text);
    buf_release(&B.scratch);
    buf_release(&B.data);
    free(B.post_lat.v);
    free(B.deliv_lat.v);
    free(B.send_lag.v);
    free(B.sub_lat.v);
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv), met;
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_init();
    switch (B.o.sc) {
    case SC_FANOUT: met = run_fanout(); break;
    case SC_THROUGHPUT: met = run_throughput(); break;
    default: met = run_idle(); break;
    }
    bench_release();
    return !met && B.o.strict ? 3 : 0;
}
