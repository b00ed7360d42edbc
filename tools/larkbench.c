/*
 * larkbench - the load generator behind `make bench` (docs/BENCHMARKS.md).
 *
 * Four scenarios against a running lighttpd + larkd (tools/bench.sh starts
 * a fresh pair for each, on SQLite or PostgreSQL):
 *
 *   fanout      N subscribers, S senders posting 1:1 messages at a fixed
 *               total rate: loss, duplicates, delivery latency (from the
 *               moment the POST was written to the moment its event was
 *               read), and memory per held stream.
 *   throughput  C senders posting as fast as the server answers: stored
 *               messages per second, errors by status, POST latency.
 *   idle        N held streams: larkd and lighttpd memory per stream.
 *   group       for each group size N, a group of N members whose creator
 *               sends at a fixed rate while every member holds a stream:
 *               POST latency, delivery latency to the members, loss,
 *               duplicates and inbox rows written per second, per N.
 *
 * Subscribers are SSE streams (GET /v1/events) or, with --transport ws,
 * WebSocket sessions (GET /v1/ws through lighttpd's mod_wstunnel: masked
 * client frames, newline-delimited JSON, an auth line first). With
 * --sub-port the subscribers use a second lighttpd + larkd on the same
 * database, so every delivery crosses processes (PostgreSQL LISTEN/NOTIFY).
 *
 * Shape: one thread, one epoll loop, non-blocking sockets. A tool that holds
 * 9,000 streams and times each event to the microsecond must be neither the
 * bottleneck nor the memory hog it measures, so a connection is a small
 * struct with three bounded buffers, and the HTTP/1.1 client is the minimum
 * lighttpd's answers need: a status line, Content-Length or chunked bodies,
 * the SSE lines (id:, event:, data:) inside a chunked stream, and after a
 * 101 the WebSocket frames of RFC 6455. (DESIGN.md asks the service for
 * library parsers; this is a test tool reading one known server.) Event
 * data is parsed with jansson; tokens are minted with libjwt exactly as
 * tools/lark-token.c does.
 *
 * Every wait has a deadline and every loop a bound. The report is what was
 * observed; one JSON line follows it for scripts.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/version.h"

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
/* Group sizes one group run may take (--members). */
#define GROUP_SIZES_MAX 16
/* The largest group a run may make: larkd's own ceiling (core/limits.h). */
#define GROUP_MEMBERS_MAX 5000
/* An answer read by http_call (a conversation with 5,000 members, /metrics). */
#define CALL_MAX (1024 * 1024)
/* larkd's defaults (docs/OPERATIONS.md), for the thread layout. */
#define LARKD_WORKERS_DEFAULT 16
#define LARKD_WS_WORKERS_DEFAULT 4

enum scenario { SC_FANOUT, SC_THROUGHPUT, SC_IDLE, SC_GROUP };
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
    RP_EOF,        /* body until the server closes */
    RP_WS          /* after a 101: WebSocket frames until either side closes */
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
    int ready;           /* subscriber: its stream is up (SSE: 200 head; ws: pong after auth) */
    int ws;              /* subscriber: a WebSocket session, not an SSE stream */
    int to_sub;          /* connects to --sub-port (subscribers, warm-up of that side) */
    int joined;          /* group: the conversation event of the group arrived */
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
    struct sockaddr_in addr;               /* lighttpd */
    char host[64];                         /* Host header */
    const char *secret;                    /* HS256 secret */
    const char *prefix;                    /* user ids start with this */
    const char *json_path;                 /* append the JSON line here too */
    const char *dump_path;                 /* fanout: one CSV line per message */
    struct sockaddr_in sub_addr;           /* subscribers' lighttpd (--sub-port), else addr */
    int two;                               /* --sub-port differs from --port: two larkd */
    int ws;                                /* --transport ws */
    unsigned members[GROUP_SIZES_MAX];     /* group sizes, in run order */
    unsigned nmembers;                     /* entries of members */
    unsigned subs;                         /* fanout subscribers / idle streams */
    unsigned senders;                      /* sender connections (one user each) */
    unsigned recipients;                   /* throughput: distinct recipients */
    unsigned batch;                        /* streams opened per connect batch */
    unsigned body_bytes;                   /* message body size */
    double rate;                           /* fanout: messages per second in total */
    double duration;                       /* seconds of sending */
    double grace;                          /* fanout: seconds to wait for late deliveries */
    double settle;                         /* seconds idle before the "after" memory sample */
    double hold;                           /* idle: seconds to hold the streams */
    double timeout;                        /* seconds per connect, request, batch */
    unsigned warmup;                       /* short requests before the memory samples */
    double p99_target_ms;                  /* fanout target */
    pid_t larkd_pid, lighttpd_pid;         /* the instance on --port */
    pid_t sub_larkd_pid, sub_lighttpd_pid; /* on --sub-port (two-process runs) */
    pid_t db_pid;                          /* PostgreSQL postmaster: its CPU is the store's */
    int strict;                            /* exit 3 when a target is missed */
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
    uint64_t ws_errors;        /* WebSocket error lines */
};

/* One larkd's CPU at one moment. */
struct larkd_cpu {
    unsigned long long ticks; /* clock ticks, whole process */
    unsigned nthreads;
    pid_t tid[THREADS_MAX]; /* its threads, by tid (creation order) */
    unsigned long long tticks[THREADS_MAX];
};

struct cpu_sample {
    int64_t t;                 /* ns */
    struct larkd_cpu larkd[2]; /* [0] on --port, [1] on --sub-port (two-process runs) */
    unsigned long long lighttpd[2];
    unsigned long long db;       /* the PostgreSQL server's processes, clock ticks */
    unsigned long long self_us;  /* our own user + system time */
    unsigned long long sys_busy; /* clock ticks all CPUs were busy (/proc/stat) */
};

/*
 * Which larkd thread is which. larkd names none, but starts them in a fixed
 * order (fcgi/main.c, hub.c, store_sqlite.c) and thread ids grow: main;
 * with SQLite the checkpointer and the writer (store_open); the WebSocket
 * command pool (hub_start, unless ws_listen is off); the hub; the FastCGI
 * workers. The counts come from larkd's environment (tools/bench.sh passes
 * LARK_*); a larkd configured by a file may not match, and then only the
 * process total is reported.
 */
struct larkd_layout {
    int sqlite;       /* the store is SQLite (writer and checkpointer threads) */
    unsigned ws;      /* WebSocket command threads */
    unsigned workers; /* FastCGI workers */
};

/* The group being measured (group scenario): one size at a time. */
struct group_state {
    unsigned n;             /* members, each with a stream (the creator's too) */
    uint32_t first;         /* slot of member 0's stream: the creator's */
    struct conn *sender;    /* the creator's sender connection */
    char conv[80];          /* its conversation id */
    uint8_t *deliv;         /* planned x n: arrivals of message k at member i (saturating) */
    uint32_t *count;        /* per message: members it reached */
    struct samples all_lat; /* per message: POST written -> the last member read it */
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
    struct samples hop;            /* fanout: event read - answer read, per message (may be < 0) */
    char errbody[ERRBODY_MAX + 1]; /* the first error answer to a send */
    char suberr[ERRBODY_MAX + 1];  /* the first WebSocket error line */
    struct group_state g;          /* group scenario */
    struct larkd_layout layout[2]; /* thread layout of larkd [0] and [1] */
    char backend[16];              /* "sqlite" or "postgres", from larkd's LARK_DB */
    uint64_t rng;                  /* xorshift64 state: run tags, WebSocket keys and masks */
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
static void find_pair(const struct sockaddr_in *addr, pid_t *larkd, pid_t *lighttpd)
{
    char sock[4096];
    if (!*lighttpd)
        *lighttpd = pid_with_socket(tcp_listen_inode(ntohs(addr->sin_port)));
    if (!*larkd && *lighttpd && environ_get(*lighttpd, "LARK_SOCKET", sock, sizeof(sock)) == 0)
        *larkd = pid_with_socket(unix_listen_inode(sock));
}

/* A count from larkd's environment, or def when unset or malformed. */
static unsigned environ_uint(pid_t pid, const char *key, unsigned def)
{
    char v[32];
    unsigned n;
    return environ_get(pid, key, v, sizeof(v)) == 0 && parse_uint(v, 100000, &n) == 0 ? n : def;
}

static void larkd_layout_read(pid_t pid, struct larkd_layout *l)
{
    char v[4096];
    l->sqlite = !(environ_get(pid, "LARK_DB", v, sizeof(v)) == 0 && strncmp(v, "postgres", 8) == 0);
    l->workers = environ_uint(pid, "LARK_WORKERS", LARKD_WORKERS_DEFAULT);
    l->ws = environ_uint(pid, "LARK_WS_WORKERS", LARKD_WS_WORKERS_DEFAULT);
    if (environ_get(pid, "LARK_WS_LISTEN", v, sizeof(v)) == 0 && strcmp(v, "off") == 0)
        l->ws = 0;
}

static void find_pids(void)
{
    find_pair(&B.o.addr, &B.o.larkd_pid, &B.o.lighttpd_pid);
    if (B.o.two)
        find_pair(&B.o.sub_addr, &B.o.sub_larkd_pid, &B.o.sub_lighttpd_pid);
    larkd_layout_read(B.o.larkd_pid, &B.layout[0]);
    larkd_layout_read(B.o.sub_larkd_pid, &B.layout[1]);
    snprintf(B.backend, sizeof(B.backend), "%s", B.layout[0].sqlite ? "sqlite" : "postgres");
}

/* The larkd and lighttpd that hold the subscribers' streams. */
static pid_t sub_larkd(void)
{
    return B.o.two ? B.o.sub_larkd_pid : B.o.larkd_pid;
}

static pid_t sub_lighttpd(void)
{
    return B.o.two ? B.o.sub_lighttpd_pid : B.o.lighttpd_pid;
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

/* utime + stime (clock ticks) from a /proc/.../stat file, and the parent's
 * pid if ppid is given; 0 if unreadable. */
static unsigned long long stat_ticks(const char *path, pid_t *ppid)
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
    for (int field = 3; field <= 15; field++) { /* state is field 3, ppid 4; 14, 15 are times */
        unsigned long long v;
        while (*p == ' ')
            p++;
        v = strtoull(p, &end, 10);
        if (field == 4 && ppid)
            *ppid = (pid_t)v;
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
    return stat_ticks(path, NULL);
}

/* CPU of a process and its children: the PostgreSQL postmaster and its
 * backends, walker, writer... (one level: that is how PostgreSQL forks). A
 * backend that exits within the window takes its ticks with it; larkd
 * keeps its connections, so that is rare. */
static unsigned long long tree_ticks(pid_t root)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    unsigned long long t = 0;
    if (root <= 0 || !(d = opendir("/proc")))
        return 0;
    while ((e = readdir(d))) {
        pid_t ppid = 0, p = (pid_t)strtol(e->d_name, NULL, 10);
        unsigned long long ticks;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
        ticks = stat_ticks(path, &ppid);
        if (p == root || ppid == root)
            t += ticks;
    }
    closedir(d);
    return t;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static void larkd_threads(pid_t pid, struct larkd_cpu *c)
{
    char path[96];
    DIR *d;
    struct dirent *e;
    c->nthreads = 0;
    c->ticks = pid_ticks(pid);
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    if (pid <= 0 || !(d = opendir(path)))
        return;
    while (c->nthreads < THREADS_MAX && (e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
            c->tid[c->nthreads++] = (pid_t)strtol(e->d_name, NULL, 10);
    closedir(d);
    qsort(c->tid, c->nthreads, sizeof(pid_t), cmp_pid);
    for (unsigned i = 0; i < c->nthreads; i++) {
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)c->tid[i]);
        c->tticks[i] = stat_ticks(path, NULL);
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
    larkd_threads(B.o.larkd_pid, &c->larkd[0]);
    larkd_threads(B.o.two ? B.o.sub_larkd_pid : 0, &c->larkd[1]);
    c->lighttpd[0] = pid_ticks(B.o.lighttpd_pid);
    c->lighttpd[1] = B.o.two ? pid_ticks(B.o.sub_lighttpd_pid) : 0;
    c->db = tree_ticks(B.o.db_pid);
    c->sys_busy = sys_busy_ticks();
    c->self_us =
        (unsigned long long)ru.ru_utime.tv_sec * 1000000 + (unsigned long long)ru.ru_utime.tv_usec +
        (unsigned long long)ru.ru_stime.tv_sec * 1000000 + (unsigned long long)ru.ru_stime.tv_usec;
}

/* One larkd's CPU between two samples, percent of one core. */
struct larkd_use {
    double total;
    int known;      /* the threads matched the layout: the fields below are set */
    double main;    /* the main thread (waits for the drain) */
    double ckpt;    /* SQLite checkpointer */
    double writer;  /* SQLite writer */
    double ws_pool; /* WebSocket command threads, together */
    double hub;     /* the event loop */
    double workers; /* all FastCGI workers together */
    double busiest; /* the busiest worker */
};

/* CPU use between two samples, percent of one core. */
struct cpu_use {
    struct larkd_use larkd[2]; /* [1]: the subscribers' larkd of a two-process run */
    double lighttpd[2];
    double db;     /* PostgreSQL server processes (--db-pid) */
    double self;   /* larkbench */
    double others; /* every other process on the machine (the noise) */
};

static double ticks_pct(unsigned long long a, unsigned long long b, double secs)
{
    return b >= a && secs > 0 ? 100.0 * (double)(b - a) / (double)sysconf(_SC_CLK_TCK) / secs : 0;
}

/* Thread i of b (its share over secs) goes to its role by position. */
static void larkd_diff(const struct larkd_cpu *a, const struct larkd_cpu *b,
                       const struct larkd_layout *l, double secs, struct larkd_use *u)
{
    unsigned store = l->sqlite ? 2 : 0, hub = 1 + store + l->ws;
    memset(u, 0, sizeof(*u));
    u->total = ticks_pct(a->ticks, b->ticks, secs);
    u->known = b->nthreads == hub + 1 + l->workers;
    for (unsigned i = 0; u->known && i < b->nthreads; i++) {
        unsigned j = 0;
        double pct;
        while (j < a->nthreads && a->tid[j] != b->tid[i])
            j++;
        pct = ticks_pct(j < a->nthreads ? a->tticks[j] : 0, b->tticks[i], secs);
        if (i == 0)
            u->main = pct;
        else if (i <= store)
            *(i == 1 ? &u->ckpt : &u->writer) = pct;
        else if (i < hub)
            u->ws_pool += pct;
        else if (i == hub)
            u->hub = pct;
        else {
            u->workers += pct;
            if (pct > u->busiest)
                u->busiest = pct;
        }
    }
}

static void cpu_diff(const struct cpu_sample *a, const struct cpu_sample *b, struct cpu_use *u)
{
    double secs = (double)(b->t - a->t) / NS_PER_S;
    memset(u, 0, sizeof(*u));
    for (int k = 0; k < 2; k++) {
        larkd_diff(&a->larkd[k], &b->larkd[k], &B.layout[k], secs, &u->larkd[k]);
        u->lighttpd[k] = ticks_pct(a->lighttpd[k], b->lighttpd[k], secs);
    }
    u->db = ticks_pct(a->db, b->db, secs);
    u->self = secs > 0 ? (double)(b->self_us - a->self_us) / 1e4 / secs : 0;
    u->others = ticks_pct(a->sys_busy, b->sys_busy, secs) - u->larkd[0].total - u->larkd[1].total -
                u->lighttpd[0] - u->lighttpd[1] - u->db - u->self;
    if (u->others < 0)
        u->others = 0;
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

/*
 * One request on a fresh blocking connection to --port, as HTTP/1.0 so that
 * the server closes when the answer is complete (no framing to parse):
 * method path with an optional bearer token and JSON body. Returns the
 * status (the answer's body in *out, bounded by its max) or -1 if no whole
 * answer came within timeout_s. Used between phases only.
 */
static int http_call(const char *method, const char *path, const char *token, const char *body,
                     double timeout_s, struct buf *out)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    int64_t deadline = now_ns() + (int64_t)(timeout_s * NS_PER_S);
    struct buf req, in;
    char chunk[16384];
    const char *head_end;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1, eof = 0;

    buf_reset(out);
    if (fd < 0)
        return -1;
    buf_init(&req, OUT_MAX + CALL_MAX);
    buf_init(&in, CALL_MAX + HEAD_MAX);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    buf_printf(&req, "%s %s HTTP/1.0\r\nHost: %s\r\n", method, path, B.o.host);
    if (token)
        buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    if (body)
        buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
    else
        buf_puts(&req, "\r\n");
    if (connect(fd, (const struct sockaddr *)&B.o.addr, sizeof(B.o.addr)) != 0)
        goto out;
    for (size_t off = 0; off < req.len && now_ns() < deadline;) { /* each pass writes or waits */
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            goto out;
    }
    while (!eof && now_ns() < deadline) { /* each pass reads or waits 0.1 s */
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n > 0 && buf_append(&in, chunk, (size_t)n) != 0)
            goto out;
        if (n == 0)
            eof = 1;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            goto out;
    }
    head_end = in.len ? memmem(in.data, in.len, "\r\n\r\n", 4) : NULL;
    if (eof && head_end && in.len >= 12 && memcmp(in.data, "HTTP/1.", 7) == 0) {
        status = (int)strtol(in.data + 9, NULL, 10);
        buf_append(out, head_end + 4, in.len - (size_t)(head_end + 4 - in.data));
    }
out:
    close(fd);
    buf_release(&req);
    buf_release(&in);
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
    const struct sockaddr_in *to = c->to_sub ? &B.o.sub_addr : &B.o.addr;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        B.st.fail[c->role][FAIL_CONNECT]++;
        return -1;
    }
    /* Requests are written whole; Nagle would only add delay to them. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0 && errno != EINPROGRESS) {
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
    if (c->status == 101 && c->ws) { /* the handshake is done: frames follow */
        *ev |= HP_HEAD;
        c->phase = RP_WS;
        return end + 2 - p;
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

/* ---- WebSocket frames (RFC 6455) ----------------------------------------- */

enum { WS_CONT = 0, WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8, WS_PING = 9, WS_PONG = 10 };

/* Queue one frame from the client: FIN set, masked with a fresh key
 * (RFC 6455 5.3: every client frame is masked). 0, or -1 if c->out is full. */
static int ws_put_frame(struct conn *c, int opcode, const char *p, size_t n)
{
    unsigned char hdr[14];
    size_t h = 0, start;
    uint64_t key = xorshift64(&B.rng);

    hdr[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        hdr[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    for (int i = 0; i < 4; i++)
        hdr[h++] = (unsigned char)(key >> (8 * i));
    start = c->out.len;
    if (buf_append(&c->out, hdr, h) != 0 || buf_append(&c->out, p, n) != 0) {
        buf_truncate(&c->out, start);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        c->out.data[start + h + i] ^= (char)hdr[h - 4 + (i & 3)];
    return 0;
}

/*
 * One frame from the server at p[0..n): bytes used (0: need more), -1 on a
 * protocol error. Data frames hand their payload to on_body (*body, *blen:
 * mod_wstunnel cuts lines into frames anywhere, so payloads are one byte
 * stream); a ping is answered with a pong (lighttpd pings idle sessions
 * every wstunnel.ping-interval); a close ends the session (HP_DONE).
 */
static long ws_frame(struct conn *c, const char *p, size_t n, const char **body, size_t *blen,
                     int *ev)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t len;
    size_t hdr = 2;
    int op;

    if (n < 2)
        return 0;
    op = u[0] & 0x0f;
    if (u[1] & 0x80)
        return -1; /* a server never masks (RFC 6455 5.1) */
    len = u[1] & 0x7f;
    if (len >= 126) {
        hdr = len == 126 ? 4 : 10;
        if (n < hdr)
            return 0;
        len = 0;
        for (size_t i = 2; i < hdr; i++)
            len = len << 8 | u[i];
    }
    if (len > EVENT_MAX)
        return -1;
    if (n < hdr + len)
        return 0;
    switch (op) {
    case WS_CONT:
    case WS_TEXT:
    case WS_BINARY:
        *body = p + hdr;
        *blen = (size_t)len;
        break;
    case WS_PING:
        /* Queued only: writing here could close c under the parser. */
        if (ws_put_frame(c, WS_PONG, p + hdr, (size_t)len) == 0)
            conn_watch(c, 1);
        break;
    case WS_PONG: break;
    case WS_CLOSE:
        c->phase = RP_IDLE;
        *ev |= HP_DONE;
        break;
    default: return -1;
    }
    return (long)(hdr + len);
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
    case RP_WS: return ws_frame(c, p, n, body, blen, ev);
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

/* base64 (RFC 4648) of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* The WebSocket handshake (RFC 6455 4.1), answered by mod_wstunnel. The
 * Sec-WebSocket-Accept of the answer is not checked: lighttpd is trusted. */
static void ws_request(struct conn *c)
{
    unsigned char nonce[16];
    char key[32];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = xorshift64(&B.rng);
        memcpy(nonce + i, &r, 8);
    }
    base64(nonce, sizeof(nonce), key);
    buf_printf(&c->out,
               "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
               B.o.host, key);
    c->phase = RP_HEAD;
}

/* After the 101: the auth line (API.md "WebSocket"), resuming after the
 * last seq like Last-Event-ID, then a ping. Nothing answers a good auth,
 * but the session's lines are handled in order and auth must finish
 * before the next is read (fcgi/wsbridge.c), so the pong says the session
 * is authenticated and its stream is live. */
static void ws_hello(struct conn *c)
{
    static const char ping[] = "{\"type\":\"ping\"}\n";
    buf_reset(&B.scratch);
    buf_printf(&B.scratch, "{\"type\":\"auth\",\"token\":\"%s\"", B.tokens[c->slot]);
    if (c->last_id)
        buf_printf(&B.scratch, ",\"since\":%" PRIu64, c->last_id);
    buf_puts(&B.scratch, "}\n");
    if (ws_put_frame(c, WS_TEXT, B.scratch.data, B.scratch.len) != 0 ||
        ws_put_frame(c, WS_TEXT, ping, sizeof(ping) - 1) != 0)
        die("WebSocket auth line over OUT_MAX");
    conn_watch(c, 1);
}

static void sub_request(struct conn *c)
{
    if (c->ws) {
        ws_request(c);
        return;
    }
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

static void sub_up(struct conn *c)
{
    c->ready = 1;
    B.subs_ready++;
    samples_add(&B.sub_lat, B.t_recv - c->t_start);
}

static void sub_head(struct conn *c)
{
    if (c->status != (c->ws ? 101 : 200)) {
        B.st.sub_status[c->status < STATUS_MAX ? c->status : 0]++;
        return; /* the body is read to its end, then the stream counts as failed */
    }
    if (c->ws)
        ws_hello(c);
    else
        sub_up(c);
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

/* A group message arrived at member stream c. A message counts as
 * delivered (ndeliv) once every member has it. */
static void group_deliver(struct conn *c, uint64_t k)
{
    struct msg *m = &B.msgs[k];
    uint32_t member = c->slot - B.g.first;
    uint8_t *d;
    if (c->slot < B.g.first || member >= B.g.n) {
        B.st.misrouted++;
        return;
    }
    d = &B.g.deliv[k * B.g.n + member];
    if (*d) {
        B.st.dup++;
        *d += *d < 255;
        return;
    }
    *d = 1;
    B.st.delivered++;
    if (m->t_write)
        samples_add(&B.deliv_lat, B.t_recv - m->t_write);
    if (++B.g.count[k] == B.g.n) {
        m->ndeliv = 1;
        m->t_deliv = B.t_recv;
        if (m->status == 201)
            B.st.acked_delivered++;
        if (m->t_write)
            samples_add(&B.g.all_lat, B.t_recv - m->t_write);
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

/* A stored event of type at subscriber c, its envelope parsed (either
 * transport): find this run's messages. */
static void sub_envelope(struct conn *c, const char *type, json_t *root)
{
    json_t *data = json_object_get(root, "data");
    const char *cmid;
    int64_t k;
    if (strcmp(type, "message") != 0) {
        /* group: the creation reaches every member (API.md) */
        const char *conv = json_string_value(json_object_get(data, "conversation_id"));
        if (strcmp(type, "conversation") == 0 && conv && strcmp(conv, B.g.conv) == 0)
            c->joined = 1;
        B.st.other_events++;
        return;
    }
    cmid = json_string_value(json_object_get(data, "client_msg_id"));
    if (!json_is_string(json_object_get(data, "sender")) || !cmid)
        B.st.bad_events++;
    else if ((k = cmid_number(cmid)) < 0)
        B.st.foreign++;
    else if (B.o.sc == SC_GROUP)
        group_deliver(c, (uint64_t)k);
    else
        deliver(c, (uint64_t)k);
}

static void sub_event(struct conn *c, const struct sse_ev *ev)
{
    json_error_t jerr;
    json_t *root;
    if (B.o.sc != SC_FANOUT && B.o.sc != SC_GROUP)
        return;
    root = json_loadb(B.data.data, B.data.len, 0, &jerr);
    if (!root)
        B.st.bad_events++;
    else
        sub_envelope(c, ev->event, root);
    json_decref(root);
}

/* One line of a WebSocket session: pong, error, or an event envelope. */
static void ws_line_in(struct conn *c, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr), *seq = json_object_get(root, "seq");
    const char *type = json_string_value(json_object_get(root, "type"));

    if (!type) {
        B.st.bad_events++;
    } else if (strcmp(type, "pong") == 0) {
        if (!c->ready)
            sub_up(c);
    } else if (strcmp(type, "error") == 0 || strcmp(type, "reconnect") == 0) {
        B.st.ws_errors++;
        if (!B.suberr[0])
            snprintf(B.suberr, sizeof(B.suberr), "%.*s", (int)len, line);
    } else if (json_is_integer(seq)) {
        uint64_t id = (uint64_t)json_integer_value(seq);
        /* API.md: the per-user seq increases by exactly 1 */
        if (c->last_id && id != c->last_id + 1)
            B.st.seq_gaps++;
        c->last_id = id;
        B.st.events++;
        if (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP)
            sub_envelope(c, type, root);
    } else {
        B.st.other_events++; /* ephemeral: typing, presence */
    }
    json_decref(root);
}

/* Session bytes: append, then handle every complete line. */
static void ws_feed(struct conn *c, const char *p, size_t n)
{
    size_t start = 0;
    uint32_t gen = c->gen;
    if (buf_append(&c->body, p, n) != 0) {
        conn_fail(c, FAIL_PROTO); /* a line over EVENT_MAX */
        return;
    }
    while (start < c->body.len) { /* one line per pass */
        const char *nl = memchr(c->body.data + start, '\n', c->body.len - start);
        size_t len;
        if (!nl)
            break;
        len = (size_t)(nl - (c->body.data + start));
        if (len)
            ws_line_in(c, c->body.data + start, len);
        if (c->gen != gen)
            return;
        start += len + 1;
    }
    buf_consume(&c->body, start);
}

/* ---- senders ----------------------------------------------------------- */

static struct conn *sender_conn(unsigned j)
{
    return &B.conns[B.o.subs + j];
}

/* Write one POST /v1/messages to a user (field "to") or a conversation
 * ("conversation_id"); 0, or -1 if the connection broke. */
static int sender_post(struct conn *c, const char *field, const char *to, const char *cmid)
{
    buf_reset(&B.scratch);
    buf_printf(&B.scratch, "{\"%s\":\"%s\",\"client_msg_id\":\"%s\",\"body\":\"%s\"}", field, to,
               cmid, B.body_text);
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
    if (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP) {
        uint64_t k;
        if (c->qlen == 0)
            return;
        k = c->q[c->qhead];
        c->qhead = (c->qhead + 1) % SENDER_QUEUE;
        c->qlen--;
        c->msg = (int64_t)k;
        snprintf(cmid, sizeof(cmid), "%s-%" PRIu64, B.tag, k);
        if (B.o.sc == SC_GROUP) {
            sender_post(c, "conversation_id", B.g.conv, cmid);
            return;
        }
        user_name(to, sizeof(to), "sub", B.msgs[k].to);
    } else {
        /* One recipient per sender: its direct conversation is made by the
         * first send, so the window measures the steady state of sending,
         * the same for any --senders (rotating over recipients would make
         * a share of new conversations that grows with --senders). */
        user_name(to, sizeof(to), "rcpt", c->idx % B.o.recipients);
        snprintf(cmid, sizeof(cmid), "%s-s%u-%" PRIu64, B.tag, c->idx, c->nsent);
    }
    sender_post(c, "to", to, cmid);
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
        if (c->ws && c->status == 101)
            ws_feed(c, p, n);
        else if (c->status == 200)
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
        if (c->role == ROLE_SENDER && i < wf && (B.o.sc == SC_FANOUT || B.o.sc == SC_GROUP))
            c->q = xcalloc(SENDER_QUEUE, sizeof(*c->q));
        /* Streams and the warm-up of their server go to --sub-port. */
        c->to_sub = c->role == ROLE_SUB || i >= wf;
        c->ws = c->role == ROLE_SUB && B.o.ws;
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

/* Of the server that holds the streams. */
static void mem_take(struct mem *m)
{
    m->larkd = proc_rss_kib(sub_larkd());
    m->lighttpd = proc_rss_kib(sub_lighttpd());
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

static json_t *larkd_use_json(const struct larkd_use *l)
{
    if (!l->known)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "writer", jnum(l->writer),
                     "checkpointer", jnum(l->ckpt), "hub", jnum(l->hub), "workers",
                     jnum(l->workers), "busiest_worker", jnum(l->busiest), "ws_pool",
                     jnum(l->ws_pool), "main", jnum(l->main), "total", jnum(l->total));
}

static json_t *cpu_json(const struct cpu_use *u)
{
    json_t *o =
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:i, s:o}", "larkd", jnum(u->larkd[0].total),
                  "lighttpd", jnum(u->lighttpd[0]), "postgres", jnum(u->db), "bench", jnum(u->self),
                  "others", jnum(u->others), "cores", (int)sysconf(_SC_NPROCESSORS_ONLN),
                  "larkd_threads", larkd_use_json(&u->larkd[0]));
    if (B.o.two) {
        json_object_set_new(o, "larkd_sub", jnum(u->larkd[1].total));
        json_object_set_new(o, "lighttpd_sub", jnum(u->lighttpd[1]));
        json_object_set_new(o, "larkd_sub_threads", larkd_use_json(&u->larkd[1]));
    }
    return o;
}

static void larkd_use_print(const char *who, const struct larkd_use *l)
{
    if (!l->known) {
        printf("  %-26s %.0f%% (threads not as expected: no breakdown)\n", who, l->total);
        return;
    }
    printf("  %-26s %.0f%%: ", who, l->total);
    if (B.layout[0].sqlite)
        printf("sqlite writer %.0f%%, checkpointer %.0f%%, ", l->writer, l->ckpt);
    printf("hub %.0f%%, workers %.0f%% (busiest %.0f%%), ws pool %.0f%%, main %.0f%%\n", l->hub,
           l->workers, l->busiest, l->ws_pool, l->main);
}

static void cpu_print(const struct cpu_use *u)
{
    printf("  CPU (%% of one core)        larkd %.0f%%, lighttpd %.0f%%", u->larkd[0].total,
           u->lighttpd[0]);
    if (B.o.two)
        printf(", subscribers' larkd %.0f%% and lighttpd %.0f%%", u->larkd[1].total,
               u->lighttpd[1]);
    if (B.o.db_pid > 0)
        printf(", PostgreSQL %.0f%%", u->db);
    printf(", larkbench %.0f%%, other processes %.0f%%  [%ld cores]\n", u->self, u->others,
           sysconf(_SC_NPROCESSORS_ONLN));
    larkd_use_print(B.o.two ? "larkd threads (senders')" : "larkd threads", &u->larkd[0]);
    if (B.o.two)
        larkd_use_print("larkd threads (subs')", &u->larkd[1]);
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

/* Print the JSON line (and append it to --json FILE), with what every
 * scenario shares: back end, transport, larkd processes, time. */
static void emit(json_t *root)
{
    char *line, when[32];
    time_t t = time(NULL);
    struct tm tm;
    FILE *f;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    json_object_set_new(root, "backend", json_string(B.backend));
    json_object_set_new(root, "transport", json_string(B.o.ws ? "ws" : "sse"));
    json_object_set_new(root, "processes", json_integer(B.o.two ? 2 : 1));
    json_object_set_new(root, "time", json_string(when));
    line = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(10));
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
    printf("\n== larkbench %s over %s, %s: http://%s  (larkd pid %d, lighttpd pid %d", title,
           B.o.ws ? "WebSocket" : "SSE", B.backend, B.o.host, (int)B.o.larkd_pid,
           (int)B.o.lighttpd_pid);
    if (B.o.two)
        printf("; subscribers on port %u: larkd pid %d, lighttpd pid %d",
               ntohs(B.o.sub_addr.sin_port), (int)B.o.sub_larkd_pid, (int)B.o.sub_lighttpd_pid);
    printf(")\n");
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
        struct conn *s = B.o.sc == SC_GROUP ? B.g.sender : sender_conn(to % B.o.senders);
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
        /* Both follow the commit: the 201 from a worker, the event from
         * the hub (of another process, with --sub-port, after a NOTIFY). */
        if (m->status == 201 && m->t_deliv)
            samples_add(&B.hop, m->t_deliv - m->t_done);
    }
}

/* Percentiles of signed samples (ms); the JSON has them even when < 0. */
static json_t *signed_json(struct samples *s)
{
    if (s->n == 0)
        return json_null();
    return json_pack("{s:I, s:f, s:f, s:f}", "n", (json_int_t)s->n, "p50_ms", round3(pct_ms(s, 50)),
                     "p99_ms", round3(pct_ms(s, 99)), "max_ms", round3(pct_ms(s, 100)));
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
    lat_print(B.o.ws ? "subscribe (connect->pong)" : "subscribe (connect->head)", &B.sub_lat);
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
    if (B.hop.n)
        printf("  event after its 201        p50 %.3f ms   p99 %.3f ms   max %.3f ms   (n=%zu; "
               "< 0: the event came first)\n",
               pct_ms(&B.hop, 50), pct_ms(&B.hop, 99), pct_ms(&B.hop, 100), B.hop.n);
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
    json_object_set_new(root, "event_after_answer", signed_json(&B.hop));
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
    r.fds0 = proc_fds(sub_larkd());
    r.connect_s = subs_connect(0, B.o.subs, &r.subs_up);
    loop_for(B.o.settle);
    mem_take(&r.m1);
    r.fds1 = proc_fds(sub_larkd());
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
    long held;          /* larkd's own count of held connections of the transport, -1 unknown */
};

/* lark_held_connections{transport=...} from GET /metrics (docs/OPERATIONS.md),
 * or -1: larkd's own count of the connections its hub holds. */
static long metrics_held(const char *transport)
{
    struct buf answer;
    char key[96];
    const char *at;
    long v = -1;
    buf_init(&answer, CALL_MAX);
    snprintf(key, sizeof(key), "\nlark_held_connections{transport=\"%s\"} ", transport);
    if (http_call("GET", "/metrics", NULL, NULL, 2.0, &answer) == 200 &&
        (at = strstr(answer.data, key)))
        v = strtol(at + strlen(key), NULL, 10);
    buf_release(&answer);
    return v;
}

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
        if (out[0] < 0 && proc_fds(sub_lighttpd()) <= lighttpd_target)
            out[0] = t;
        if (out[1] < 0 && proc_fds(sub_larkd()) <= larkd_target)
            out[1] = t;
        usleep(10 * 1000);
    }
}

static void idle_print(const struct idle_result *r)
{
    header_print("idle");
    printf("  %-26s %u of %u up in %.2f s (%.0f/s)\n", B.o.ws ? "sessions" : "streams", r->up,
           B.o.subs, r->connect_s, r->connect_s > 0 ? r->up / r->connect_s : 0.0);
    printf("  descriptors                larkd %ld -> %ld, lighttpd %ld -> %ld\n", r->larkd_fds[0],
           r->larkd_fds[1], r->lighttpd_fds[0], r->lighttpd_fds[1]);
    printf("  after %.1f s more           %u still up, %" PRIu64 " dropped\n", B.o.hold, r->still,
           B.st.sub_drops);
    lat_print(B.o.ws ? "subscribe (connect->pong)" : "subscribe (connect->head)", &B.sub_lat);
    mem_print(&r->m0, &r->m1, r->up);
    printf("  larkd says it holds        %ld %s connections (GET /metrics; %d of them the "
           "warm-up's; -1: no answer)\n",
           r->held, B.o.ws ? "ws" : "sse", WARM_STREAMS);
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
    json_object_set_new(root, "larkd_held", json_integer(r->held));
    emit(root);
}

static int run_idle(void)
{
    struct idle_result r = {0};
    unsigned warm;
    conns_init(B.o.subs, 0, 1, "idle");
    warm = warm_up();
    mem_take(&r.m0);
    r.larkd_fds[0] = proc_fds(sub_larkd());
    r.lighttpd_fds[0] = proc_fds(sub_lighttpd());
    r.connect_s = subs_connect(0, B.o.subs, &r.up);
    loop_for(B.o.settle);
    mem_take(&r.m1);
    r.larkd_fds[1] = proc_fds(sub_larkd());
    r.lighttpd_fds[1] = proc_fds(sub_lighttpd());
    r.probe_status = http_probe("/v1/healthz", 2.0, &r.probe_ms);
    /* Only while lighttpd takes new clients (see the probe). */
    r.held = r.probe_status > 0 ? metrics_held(B.o.ws ? "ws" : "sse") : -1;
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

/* ---- group --------------------------------------------------------------- */

/* One group size's figures, for its report and the closing table. */
struct group_result {
    unsigned n;                        /* members, each with a stream */
    unsigned up;                       /* streams up before the group was made */
    unsigned joined;                   /* streams that received the group's creation */
    int create_status;                 /* POST /v1/conversations */
    double create_ms;                  /* its latency */
    double join_s;                     /* its answer -> every stream had the creation event */
    double grace_s;                    /* waited for late deliveries */
    struct cpu_use cpu;                /* during the window */
    uint64_t acked;                    /* messages acknowledged (201) */
    uint64_t expected;                 /* member deliveries of acknowledged messages */
    uint64_t lost;                     /* of those, never read within the grace */
    uint64_t incomplete;               /* acknowledged messages some member never got */
    uint64_t unanswered;               /* POSTs written and never answered */
    uint64_t dup;                      /* member deliveries read more than once */
    double post[3], deliv[3], last[3]; /* p50 / p99 / max, ms */
    double rows_per_s;                 /* inbox rows written: acked x members / window */
};

static void lat3(struct samples *s, double out[3])
{
    out[0] = pct_ms(s, 50);
    out[1] = pct_ms(s, 99);
    out[2] = pct_ms(s, 100);
}

/* POST /v1/conversations by member 0 (the creator, the sender's user) with
 * every other member's user; the conversation id goes to B.g.conv. */
static int group_create(struct group_result *r)
{
    struct buf body, answer;
    char user[96];
    int64_t t0;
    json_error_t jerr;
    json_t *root;

    buf_init(&body, CALL_MAX);
    buf_init(&answer, CALL_MAX);
    buf_printf(&body, "{\"type\":\"group\",\"title\":\"larkbench %u\",\"members\":[", r->n);
    for (unsigned i = 1; i < r->n; i++) {
        user_name(user, sizeof(user), "gm", B.g.first + i);
        buf_printf(&body, "%s\"%s\"", i > 1 ? "," : "", user);
    }
    buf_puts(&body, "]}");
    t0 = now_ns();
    r->create_status = http_call("POST", "/v1/conversations", B.tokens[B.g.sender->slot], body.data,
                                 B.o.timeout, &answer);
    r->create_ms = (double)(now_ns() - t0) / NS_PER_MS;
    root = answer.len ? json_loadb(answer.data, answer.len, 0, &jerr) : NULL;
    snprintf(B.g.conv, sizeof(B.g.conv), "%s",
             json_string_value(json_object_get(root, "id"))
                 ? json_string_value(json_object_get(root, "id"))
                 : "");
    if (r->create_status != 201 && !B.errbody[0])
        snprintf(B.errbody, sizeof(B.errbody), "create: %d %.*s", r->create_status,
                 (int)(answer.len < 200 ? answer.len : 200), answer.data ? answer.data : "");
    json_decref(root);
    buf_release(&body);
    buf_release(&answer);
    return r->create_status == 201 && B.g.conv[0] ? 0 : -1;
}

/* Wait (bounded) until every member's stream has the creation event. */
static void group_wait_joined(struct group_result *r)
{
    int64_t t0 = now_ns(), deadline = t0 + (int64_t)(B.o.timeout * NS_PER_S);
    for (;;) { /* ends at the deadline */
        r->joined = 0;
        for (unsigned i = 0; i < r->n; i++)
            r->joined += B.conns[B.g.first + i].joined;
        if (r->joined == r->n || now_ns() >= deadline)
            break;
        loop_step(5 * NS_PER_MS);
    }
    r->join_s = (double)(now_ns() - t0) / NS_PER_S;
}

/* Forget the previous size's counters; a new tag makes its late events foreign. */
static void group_reset(unsigned size, uint32_t first, unsigned n)
{
    memset(&B.st, 0, sizeof(B.st));
    B.post_lat.n = B.deliv_lat.n = B.send_lag.n = B.sub_lat.n = B.g.all_lat.n = 0;
    B.errbody[0] = B.suberr[0] = '\0';
    snprintf(B.tag, sizeof(B.tag), "%08" PRIx64, xorshift64(&B.rng) & 0xffffffffu);
    memset(B.msgs, 0, B.planned * sizeof(*B.msgs));
    B.next_msg = 0;
    B.g.n = n;
    B.g.first = first;
    B.g.sender = sender_conn(size);
    B.g.conv[0] = '\0';
    B.g.deliv = xcalloc(B.planned * n, 1);
    B.g.count = xcalloc(B.planned, sizeof(*B.g.count));
}

static void group_tally(struct group_result *r)
{
    for (uint64_t k = 0; k < B.next_msg; k++) {
        const struct msg *m = &B.msgs[k];
        if (m->t_write) {
            samples_add(&B.send_lag, m->t_write - (B.t0 + msg_offset(k)));
            r->unanswered += m->status == 0;
        }
        if (m->status == 201) {
            r->lost += r->n - B.g.count[k];
            r->incomplete += B.g.count[k] < r->n;
        }
    }
    r->acked = B.st.acked;
    r->dup = B.st.dup;
    r->expected = B.st.acked * r->n;
    r->rows_per_s = (double)r->expected / B.o.duration;
    lat3(&B.post_lat, r->post);
    lat3(&B.deliv_lat, r->deliv);
    lat3(&B.g.all_lat, r->last);
}

static int group_met(const struct group_result *r)
{
    return r->up == r->n && r->joined == r->n && B.st.acked == B.planned && r->lost == 0 &&
           B.st.dup == 0 && B.st.misrouted == 0 && B.st.seq_gaps == 0;
}

static void group_print(const struct group_result *r)
{
    header_print("group");
    printf("  group of %u members         created in %.1f ms (status %d); streams %u of %u up, "
           "%u had the creation after %.2f s\n",
           r->n, r->create_ms, r->create_status, r->up, r->n, r->joined, r->join_s);
    printf("  messages                   planned %" PRIu64 " (%.0f/s x %.1f s, one sender: the "
           "creator), sent %" PRIu64 ", acknowledged (201) %" PRIu64 ", unanswered %" PRIu64 "\n",
           B.planned, B.o.rate, B.o.duration, B.st.sent, B.st.acked, r->unanswered);
    printf("  member deliveries          %" PRIu64 " read, %" PRIu64
           " expected (acked x members), waited %.2f s after the window\n",
           B.st.delivered, r->expected, r->grace_s);
    printf("  LOST (acked, not read)      %" PRIu64 " (in %" PRIu64
           " messages)   duplicated %" PRIu64 "   misrouted %" PRIu64 "   seq gaps %" PRIu64 "\n",
           r->lost, r->incomplete, B.st.dup, B.st.misrouted, B.st.seq_gaps);
    printf("  stream drops               %" PRIu64 " (reconnects %" PRIu64 ")\n", B.st.sub_drops,
           B.st.reconnects);
    lat_print("POST (write->answer)", &B.post_lat);
    lat_print("delivery (each member)", &B.deliv_lat);
    lat_print("delivery (last member)", &B.g.all_lat);
    lat_print("send lag (due->written)", &B.send_lag);
    printf("  inbox rows written         %.0f/s (acked messages x %u members / %.1f s)\n",
           r->rows_per_s, r->n, B.o.duration);
    errors_print("send errors", B.st.status, ROLE_SENDER);
    errors_print("stream errors", B.st.sub_status, ROLE_SUB);
    if (B.errbody[0])
        printf("  first error answer         %s\n", B.errbody);
    if (B.suberr[0])
        printf("  first WebSocket error      %s\n", B.suberr);
    cpu_print(&r->cpu);
    printf("  target (%u members: 0 lost, 0 duplicated, all sent and acked): %s\n", r->n,
           group_met(r) ? "MET" : "MISSED");
}

static void group_emit(const struct group_result *r)
{
    json_t *root = json_pack(
        "{s:s, s:i, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
        "scenario", "group", "members", (int)r->n, "rate", B.o.rate, "duration_s", B.o.duration,
        "planned", (json_int_t)B.planned, "sent", (json_int_t)B.st.sent, "acked",
        (json_int_t)B.st.acked, "delivered", (json_int_t)B.st.delivered, "expected",
        (json_int_t)r->expected, "lost", (json_int_t)r->lost, "incomplete_messages",
        (json_int_t)r->incomplete, "duplicated", (json_int_t)B.st.dup, "misrouted",
        (json_int_t)B.st.misrouted, "seq_gaps", (json_int_t)B.st.seq_gaps, "stream_drops",
        (json_int_t)B.st.sub_drops, "inbox_rows_per_s", jnum(r->rows_per_s));
    json_object_set_new(root, "create",
                        json_pack("{s:i, s:o, s:i, s:i}", "status", r->create_status, "ms",
                                  jnum(r->create_ms), "streams_up", (int)r->up, "joined",
                                  (int)r->joined));
    json_object_set_new(root, "post_latency", lat_json(&B.post_lat));
    json_object_set_new(root, "delivery_latency", lat_json(&B.deliv_lat));
    json_object_set_new(root, "last_member_latency", lat_json(&B.g.all_lat));
    json_object_set_new(root, "send_lag", lat_json(&B.send_lag));
    json_object_set_new(root, "errors", errors_json(B.st.status, ROLE_SENDER));
    json_object_set_new(root, "stream_errors", errors_json(B.st.sub_status, ROLE_SUB));
    json_object_set_new(root, "cpu_pct", cpu_json(&r->cpu));
    json_object_set_new(root, "target_met", json_boolean(group_met(r)));
    emit(root);
}

/* Close this size's streams and sender: the next size has its own users. */
static void group_close(void)
{
    B.sub_reconnect = 0;
    for (unsigned i = 0; i < B.g.n; i++) {
        struct conn *c = &B.conns[B.g.first + i];
        if (c->ready) {
            c->ready = 0;
            B.subs_ready--;
        }
        conn_close(c);
    }
    conn_close(B.g.sender);
    free(B.g.deliv);
    free(B.g.count);
    B.g.deliv = NULL;
    B.g.count = NULL;
}

/* One group size: streams, creation, the window, the tally. */
static void group_one(unsigned size, uint32_t first, unsigned n, struct group_result *r)
{
    int64_t deadline;
    memset(r, 0, sizeof(*r));
    r->n = n;
    group_reset(size, first, n);
    subs_connect(first, n, &r->up);
    if (r->up == n && group_create(r) == 0) {
        group_wait_joined(r);
        conn_open(B.g.sender);
        deadline = now_ns() + (int64_t)(B.o.timeout * NS_PER_S);
        while (B.g.sender->state != CS_OPEN && now_ns() < deadline)
            loop_step(10 * NS_PER_MS);
        fan_window(&r->cpu);
        r->grace_s = fan_grace();
    }
    group_tally(r);
    group_print(r);
    group_emit(r);
    group_close();
}

static void group_table(const struct group_result *r, unsigned n)
{
    printf("\n== group fan-out over %s, %s%s, %.0f msg/s for %.1f s per size: members vs "
           "latency (ms)\n",
           B.o.ws ? "WebSocket" : "SSE", B.backend, B.o.two ? ", two larkd" : "", B.o.rate,
           B.o.duration);
    printf("  %7s | %-24s | %-24s | %-24s | %6s %4s | %12s | %5s %5s %6s\n", "members",
           "POST p50 / p99 / max", "delivery p50 / p99 / max", "last member p50/p99/max", "lost",
           "dup", "inbox rows/s", "larkd", "pg", "others");
    for (unsigned i = 0; i < n; i++)
        printf("  %7u | %6.2f / %6.2f / %6.1f | %6.2f / %6.2f / %6.1f | %6.2f / %6.2f / %6.1f | "
               "%6" PRIu64 " %4" PRIu64 " | %12.0f | %4.0f%% %4.0f%% %5.0f%%\n",
               r[i].n, r[i].post[0], r[i].post[1], r[i].post[2], r[i].deliv[0], r[i].deliv[1],
               r[i].deliv[2], r[i].last[0], r[i].last[1], r[i].last[2], r[i].lost, r[i].dup,
               r[i].rows_per_s, r[i].cpu.larkd[0].total + r[i].cpu.larkd[1].total, r[i].cpu.db,
               r[i].cpu.others);
}

static int run_group(void)
{
    static struct group_result res[GROUP_SIZES_MAX];
    unsigned total = 0;
    uint32_t first = 0;
    int met = 1;
    for (unsigned i = 0; i < B.o.nmembers; i++)
        total += B.o.members[i];
    B.planned = (uint64_t)(B.o.rate * B.o.duration + 0.5);
    if (B.planned == 0 || B.planned > MSGS_MAX / GROUP_MEMBERS_MAX)
        die("group: --rate x --duration must plan 1 to 4,000 messages");
    B.msgs = xcalloc(B.planned, sizeof(*B.msgs));
    /* Slots: every size's member streams, then one sender per size (its
     * user is the creator, who is member 0 and holds a stream too). */
    conns_init(total, B.o.nmembers, 1, "gm");
    for (unsigned i = 0; i < B.o.nmembers; first += B.o.members[i++]) {
        free(B.tokens[first]);
        B.tokens[first] = xstrdup(B.tokens[sender_conn(i)->slot]);
    }
    warm_up();
    first = 0;
    for (unsigned i = 0; i < B.o.nmembers; first += B.o.members[i++]) {
        group_one(i, first, B.o.members[i], &res[i]);
        met &= group_met(&res[i]);
    }
    group_table(res, B.o.nmembers);
    conns_free();
    free(B.msgs);
    free(B.g.all_lat.v);
    return met;
}

/* ---- command line ------------------------------------------------------- */

static void usage_scenarios(FILE *out);
static void usage_options(FILE *out);

static void usage(FILE *out)
{
    usage_scenarios(out);
    usage_options(out);
}

static void usage_scenarios(FILE *out)
{
    fprintf(
        out,
        "usage: larkbench fanout|throughput|idle|group [options]\n"
        "       larkbench --version\n"
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
        "              free them once the clients close them; with --transport ws,\n"
        "              WebSocket sessions instead, and larkd's own count of them\n"
        "              (GET /metrics).\n"
        "  group       for each size N of --members in turn: N streams (users\n"
        "              PREFIX-gm-<i>, and the creator PREFIX-snd-<s>) are opened, the\n"
        "              creator makes a group of all N (POST /v1/conversations) and, once\n"
        "              every stream has the group's creation event, posts to it at\n"
        "              --rate msg/s for --duration s on one keep-alive connection (open\n"
        "              loop, as fanout). Every member's stream records every message.\n"
        "              Reports per N: POST latency, delivery latency to each member and\n"
        "              to the last member of each message, lost (acknowledged but not\n"
        "              read by a member within --grace s), duplicated, SSE id gaps,\n"
        "              inbox rows written per second (acknowledged x N / window), CPU;\n"
        "              then one table of all sizes.\n"
        "\n"
        "Subscribers (fanout, idle, group) hold SSE streams, or with --transport ws\n"
        "WebSocket sessions: GET /v1/ws upgraded by mod_wstunnel, masked text frames,\n"
        "the auth line (resuming with since after a reconnection) and a ping; the\n"
        "pong says the session is authenticated (larkd handles a session's lines in\n"
        "order). With --sub-port they connect to a second lighttpd + larkd on the\n"
        "same PostgreSQL database while senders stay on --port: every delivery then\n"
        "crosses processes (LISTEN/NOTIFY); memory figures are the second pair's.\n"
        "\n");
}

static void usage_options(FILE *out)
{
    fprintf(out,
            "Options (defaults: fanout / throughput / idle / group):\n"
            "  --port N           lighttpd's port (default $PORT, else 8080), on --host\n"
            "  --host ADDR        IPv4 address (127.0.0.1)\n"
            "  --secret S         HS256 secret (default $LARK_JWT_SECRET, else the dev secret)\n"
            "  --subs N           streams (1000 / - / 9000 / -)\n"
            "  --senders N        sender connections (50 / 64 / - / -)\n"
            "  --rate R           fanout: total messages per second (1000); group: the\n"
            "                     creator's messages per second (20)\n"
            "  --duration S       seconds of sending (20 / 10 / - / 10 per size)\n"
            "  --grace S          fanout, group: wait for late deliveries after the window (5)\n"
            "  --members LIST     group: sizes, comma-separated, each 2-5000 (10,100,300,500)\n"
            "  --transport T      sse or ws: how subscribers receive (sse)\n"
            "  --sub-port N       subscribers connect here (a second lighttpd + larkd)\n"
            "  --sub-larkd-pid PID, --sub-lighttpd-pid PID\n"
            "                     that pair's processes; default: found by --sub-port\n"
            "  --db-pid PID       the PostgreSQL postmaster: its CPU and its backends' is\n"
            "                     reported apart from 'other processes'\n"
            "  --recipients N     throughput: distinct recipients (64); fewer than --senders\n"
            "                     makes recipients whose inbox several senders append to\n"
            "  --body-bytes N     message body size (64)\n"
            "  --batch N          streams opened per batch (200)\n"
            "  --settle S         idle time before the 'after' memory sample (1)\n"
            "  --hold S           idle: how long to hold the streams after that (2)\n"
            "  --warmup N         fanout, idle, group: short requests (GET /v1/poll?timeout=0 on\n"
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
            "larkd's threads are named by creation order (main; with SQLite the\n"
            "checkpointer and the writer; the WebSocket command pool; the hub; the\n"
            "workers), their counts read from larkd's LARK_WORKERS / LARK_WS_WORKERS /\n"
            "LARK_WS_LISTEN / LARK_DB environment (no breakdown if the threads differ);\n"
            "'other processes' is the machine's busy time (/proc/stat) minus larkd,\n"
            "lighttpd, PostgreSQL (--db-pid) and the bench: the noise from anything\n"
            "else running.\n"
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
    OPT_MEMBERS,
    OPT_TRANSPORT,
    OPT_SUB_PORT,
    OPT_SUB_LARKD,
    OPT_SUB_LIGHTTPD,
    OPT_DB_PID,
    OPT_HELP
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, OPT_PORT},
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
    {"members", required_argument, NULL, OPT_MEMBERS},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"sub-port", required_argument, NULL, OPT_SUB_PORT},
    {"sub-larkd-pid", required_argument, NULL, OPT_SUB_LARKD},
    {"sub-lighttpd-pid", required_argument, NULL, OPT_SUB_LIGHTTPD},
    {"db-pid", required_argument, NULL, OPT_DB_PID},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

/* --members 10,100,300,500: group sizes, 2 to GROUP_MEMBERS_MAX each. */
static int parse_members(const char *v)
{
    char item[16];
    B.o.nmembers = 0;
    while (*v) { /* one size per pass; each consumes at least one byte */
        size_t len = strcspn(v, ",");
        unsigned n;
        if (len == 0 || len >= sizeof(item) || B.o.nmembers == GROUP_SIZES_MAX)
            return -1;
        memcpy(item, v, len);
        item[len] = '\0';
        if (parse_uint(item, GROUP_MEMBERS_MAX, &n) != 0 || n < 2)
            return -1;
        B.o.members[B.o.nmembers++] = n;
        v += len + (v[len] == ',');
    }
    return B.o.nmembers ? 0 : -1;
}

static int set_pid(const char *v, pid_t *out)
{
    unsigned pid;
    if (parse_uint(v, 1u << 30, &pid) != 0 || pid == 0)
        return -1;
    *out = (pid_t)pid;
    return 0;
}

/* The options of the group, WebSocket and two-process runs. */
static int set_opt_more(int c, const char *v, unsigned *sub_port)
{
    switch (c) {
    case OPT_MEMBERS: return parse_members(v);
    case OPT_TRANSPORT:
        if (strcmp(v, "sse") != 0 && strcmp(v, "ws") != 0)
            return -1;
        B.o.ws = strcmp(v, "ws") == 0;
        return 0;
    case OPT_SUB_PORT: return parse_uint(v, 65535, sub_port);
    case OPT_SUB_LARKD: return set_pid(v, &B.o.sub_larkd_pid);
    case OPT_SUB_LIGHTTPD: return set_pid(v, &B.o.sub_lighttpd_pid);
    case OPT_DB_PID: return set_pid(v, &B.o.db_pid);
    default: return -1;
    }
}

/* One option's value; -1 if it is malformed or out of range. ports: --port, --sub-port. */
static int set_opt(int c, const char *v, unsigned ports[2], const char **host)
{
    switch (c) {
    case OPT_PORT: return parse_uint(v, 65535, &ports[0]);
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
    case OPT_LARKD: return set_pid(v, &B.o.larkd_pid);
    case OPT_LIGHTTPD: return set_pid(v, &B.o.lighttpd_pid);
    case OPT_JSON: B.o.json_path = v; return 0;
    case OPT_STRICT: B.o.strict = 1; return 0;
    case OPT_WARMUP: return parse_uint(v, 1000000, &B.o.warmup);
    case OPT_DUMP: B.o.dump_path = v; return 0;
    default: return set_opt_more(c, v, &ports[1]);
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
    if (B.o.rate == 0)
        B.o.rate = B.o.sc == SC_GROUP ? 20 : 1000;
    if (B.o.sc == SC_GROUP) {
        static const unsigned sizes[] = {10, 100, 300, 500};
        if (!B.o.nmembers) {
            memcpy(B.o.members, sizes, sizeof(sizes));
            B.o.nmembers = sizeof(sizes) / sizeof(sizes[0]);
        }
        /* Slots: every size's member streams, then one sender per size. */
        B.o.subs = 0;
        for (unsigned i = 0; i < B.o.nmembers; i++)
            B.o.subs += B.o.members[i];
        B.o.senders = B.o.nmembers;
    }
}

/* The scenario named by argv[1]; -1 if none is. */
static int scenario_parse(const char *name)
{
    static const struct {
        const char *name;
        enum scenario sc;
    } names[] = {{"fanout", SC_FANOUT},
                 {"throughput", SC_THROUGHPUT},
                 {"idle", SC_IDLE},
                 {"group", SC_GROUP}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i].name) == 0) {
            B.o.sc = names[i].sc;
            return 0;
        }
    }
    return -1;
}

static int set_addr(struct sockaddr_in *a, const char *host, unsigned port)
{
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int parse_args(int argc, char **argv)
{
    const char *host = "127.0.0.1", *env_port = getenv("PORT");
    unsigned ports[2] = {8080, 0};
    int c;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return argc < 2 ? -1 : 1;
    if (scenario_parse(argv[1]) != 0)
        return -1;
    if (env_port && parse_uint(env_port, 65535, &ports[0]) != 0)
        ports[0] = 8080;
    B.o = (struct opts){.sc = B.o.sc,
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
        if (set_opt(c, optarg, ports, &host) != 0) {
            fprintf(stderr, "larkbench: bad option value: %s\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind != argc || ports[0] == 0 || !B.o.batch || !B.o.recipients)
        return -1;
    if (!B.o.secret || !*B.o.secret)
        B.o.secret = CONFIG_DEV_SECRET;
    B.o.two = ports[1] && ports[1] != ports[0];
    if (set_addr(&B.o.addr, host, ports[0]) != 0 ||
        set_addr(&B.o.sub_addr, host, B.o.two ? ports[1] : ports[0]) != 0)
        return -1;
    snprintf(B.o.host, sizeof(B.o.host), "%s:%u", host, ports[0]);
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
    B.rng = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(B.o.subs + B.o.senders + WARM_STREAMS + WARM_CONNS);
    if ((B.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    /* A tag per run: events of an earlier run on the same database are foreign. */
    snprintf(B.tag, sizeof(B.tag), "%08" PRIx64, xorshift64(&B.rng) & 0xffffffffu);
    B.body_text = xmalloc(B.o.body_bytes + 1);
    memset(B.body_text, 'x', B.o.body_bytes);
    B.body_text[B.o.body_bytes] = '\0';
    buf_init(&B.scratch, OUT_MAX);
    buf_init(&B.data, EVENT_MAX);
    find_pids();
    if (B.o.two && (B.o.sub_larkd_pid <= 0 || B.o.sub_lighttpd_pid <= 0))
        fprintf(stderr,
                "larkbench: the subscribers' larkd or lighttpd was not found (larkd %d, "
                "lighttpd %d); use --sub-larkd-pid/--sub-lighttpd-pid\n",
                (int)B.o.sub_larkd_pid, (int)B.o.sub_lighttpd_pid);
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
    free(B.hop.v);
    free(B.sub_lat.v);
}

int main(int argc, char **argv)
{
    int rc, met;
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        version_print(stdout, "larkbench");
        return 0;
    }
    rc = parse_args(argc, argv);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_init();
    switch (B.o.sc) {
    case SC_FANOUT: met = run_fanout(); break;
    case SC_THROUGHPUT: met = run_throughput(); break;
    case SC_GROUP: met = run_group(); break;
    default: met = run_idle(); break;
    }
    bench_release();
    return !met && B.o.strict ? 3 : 0;
}
