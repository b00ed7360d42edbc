/*
 * bench.h - the state of the one run a larkbench process does, and the
 * small helpers every file of it uses (docs/BENCHMARKS.md, "The load
 * generator").
 *
 * Why one global: every callback of the event loop (conn.h) needs the run
 * (its options, counters, planned messages, connections), and a process
 * does exactly one run. The files by job: conn.c (sockets, the loop),
 * httpresp.c / sse.c / ws.c (parsers), procstat.c and sample.c (the
 * servers' CPU and memory), target_lark.c / target_nchan.c (what a
 * server's URLs and answers look like), subs.c (subscribers over SSE,
 * long-poll or WebSocket), senders.c (publishers, warm-up), call.c
 * (blocking probes between phases), report.c, the scenarios (fanout.c,
 * throughput.c, idle.c, group.c), compare.c (the bench-peers table) and
 * main.c (options).
 *
 * Threads: one. Nothing here is thread-safe.
 */
#ifndef LARK_BENCH_BENCH_H
#define LARK_BENCH_BENCH_H

#include "core/buf.h"
#include "tools/larkbench/httpresp.h"
#include "tools/larkbench/sample.h"
#include "tools/larkbench/sse.h"
#include "tools/larkbench/ws.h"

#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

/* One SSE event, poll answer or send answer: a message with the API's
 * largest body (16 KiB, escaped up to 6x) and meta stays under this. */
#define EVENT_MAX (256 * 1024)
/* Unparsed input one connection may hold. */
#define IN_MAX (EVENT_MAX + HTTP_RESP_HEAD_MAX)
/* One request: headers with a token (~500 bytes) and a body. */
#define OUT_MAX (80 * 1024)
/* A long-poll answer: up to 100 events (API.md's default limit). */
#define POLL_ANSWER_MAX (4 * 1024 * 1024)
/* What is kept of an error answer, for the report. */
#define ERRBODY_MAX 300
/* Messages one fanout sender may have waiting (at 20 msg/s each: 200 s). */
#define SENDER_QUEUE 4096
#define STATUS_MAX 600
/* Upper bounds on what a run may plan or record (memory: ~40 B each). */
#define MSGS_MAX (20u * 1000 * 1000)
#define SAMPLES_MAX (20u * 1000 * 1000)
#define CONNS_MAX 60000u
/* Reconnections per connection during a run; bounds a refused-connect loop. */
#define RECONNECT_MAX 20
#define TOKEN_TTL_S 7200
/* Warm-up (senders.c): streams held from before the "before" memory sample
 * to the end, and connections for the burst of short requests. Few of
 * those: lighttpd keeps closed connections' structs for reuse, so each one
 * would lower its measured cost of the streams that follow (64 did by 0.3
 * KiB at 1,000 streams); larkd's FastCGI connections are new per request. */
#define WARM_STREAMS 16
#define WARM_CONNS 8
/* Group sizes one group run may take (--members). */
#define GROUP_SIZES_MAX 16
/* The largest group a run may make: larkd's own ceiling (core/limits.h). */
#define GROUP_MEMBERS_MAX 5000
/* Nchan resume headers kept per long-poll subscriber. */
#define RESUME_MAX 48

enum scenario { SC_FANOUT, SC_THROUGHPUT, SC_IDLE, SC_GROUP };
enum role { ROLE_SUB, ROLE_SENDER, ROLE_COUNT };
enum transport { TR_SSE, TR_WS, TR_POLL };
enum cstate { CS_CLOSED, CS_CONNECTING, CS_OPEN };
enum fail { FAIL_CONNECT, FAIL_RESET, FAIL_EOF, FAIL_PROTO, FAIL_TIMEOUT, FAIL_COUNT };

struct conn_ops;
struct target;

struct conn {
    int fd;                     /* -1 when closed */
    uint32_t slot;              /* index in B.conns */
    uint32_t gen;               /* bumped at every close: stale epoll events are dropped */
    uint32_t idx;               /* subscriber or sender number */
    enum role role;             /* what the callbacks do with the answers */
    const struct conn_ops *ops; /* the role's (and transport's) callbacks */
    enum cstate state;          /* socket state */
    struct http_resp resp;      /* the answer being read */
    int want_out;               /* EPOLLOUT is registered */
    int busy;                   /* a request is written or being written, its answer not read */
    int ready;              /* subscriber: up (SSE: 200 head; ws: see target; poll: see target) */
    int to_sub;             /* connects to --sub-port (subscribers, warm-up of that side) */
    int joined;             /* group: the conversation event of the group arrived */
    struct buf in;          /* bytes read, not yet parsed */
    struct buf out;         /* request bytes not yet written */
    struct buf body;        /* ws: line bytes not yet split; poll: the answer; sender: error body */
    struct sse_parser *sse; /* SSE subscriber: its parser, else NULL */
    struct ws_msg *wsm;     /* WebSocket subscriber of Nchan: message assembly, else NULL */
    int64_t t_start;        /* ns: connect (subscriber) or request queued (sender) */
    int64_t t_write;        /* ns: request fully handed to the kernel, 0 before */
    int64_t msg;            /* fanout sender: message in flight, -1 none */
    uint64_t nsent;         /* sender: requests started by this user (client_msg_id) */
    unsigned nreq;          /* answers read on this socket (keep-alive) */
    uint64_t last_id;       /* subscriber: last seq, for resuming and gap checks */
    unsigned reconnects;    /* reconnections during this run */
    uint32_t *q;            /* fanout sender: ring of message numbers due */
    unsigned qhead;         /* first entry of q */
    unsigned qlen;          /* entries in q */
    char *last_modified;    /* Nchan long-poll: Last-Modified of the last answer, or NULL */
    char *etag;             /* Nchan long-poll: its Etag, or NULL */
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
    const struct target *target;           /* the server: lark or Nchan */
    struct sockaddr_in addr;               /* lighttpd (or nginx) */
    char host[64];                         /* Host header */
    const char *secret;                    /* HS256 secret */
    const char *prefix;                    /* user ids start with this */
    const char *json_path;                 /* append the JSON line here too */
    const char *dump_path;                 /* fanout: one CSV line per message */
    struct sockaddr_in sub_addr;           /* subscribers' lighttpd (--sub-port), else addr */
    int two;                               /* --sub-port differs from --port: two larkd */
    enum transport transport;              /* --transport */
    unsigned members[GROUP_SIZES_MAX];     /* group sizes, in run order */
    unsigned nmembers;                     /* entries of members */
    unsigned subs;                         /* fanout subscribers / idle streams */
    unsigned senders;                      /* sender connections (one user each) */
    unsigned recipients;                   /* throughput: distinct recipients */
    unsigned batch;                        /* streams opened per connect batch */
    unsigned body_bytes;                   /* message body size */
    unsigned poll_timeout;                 /* lark long-poll: timeout= seconds */
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
    pid_t nginx_pid;                       /* Nchan: nginx's master (its workers are children) */
    const char *round;                     /* a label for the JSON line (bench-peers rounds) */
    int strict;                            /* exit 3 when a target is missed */
};

struct stats {
    uint64_t status[STATUS_MAX];           /* send answers by status */
    uint64_t sub_status[STATUS_MAX];       /* other answers to subscribe requests */
    uint64_t fail[ROLE_COUNT][FAIL_COUNT]; /* transport failures by role and kind */
    uint64_t sent;                         /* POSTs written to the kernel in full */
    uint64_t answered;                     /* POST answers read */
    uint64_t acked;                        /* accepted answers (lark 201; Nchan 201, 202) */
    uint64_t ok_in_window;                 /* throughput: accepted answers within the window */
    uint64_t delivered;                    /* fanout: first arrivals at the right subscriber */
    uint64_t acked_delivered;              /* fanout: acknowledged and delivered */
    uint64_t dup;                          /* fanout: same message again at the same subscriber */
    uint64_t misrouted;        /* fanout: a message at a subscriber it was not sent to */
    uint64_t foreign;          /* message events not sent by this run */
    uint64_t other_events;     /* stored events of other types */
    uint64_t bad_events;       /* event data that is not a message envelope */
    uint64_t seq_gaps;         /* seqs that did not follow the previous one */
    uint64_t events;           /* events dispatched */
    uint64_t overflow;         /* fanout messages the bench could not queue */
    uint64_t sub_drops;        /* streams that ended while up */
    uint64_t reconnects;       /* reconnections of any role */
    uint64_t keepalive_closes; /* sockets closed by the server between requests */
    uint64_t opens;            /* connections opened */
    uint64_t ws_errors;        /* WebSocket error lines */
    uint64_t polls;            /* long-poll answers read */
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

/* The one run this process does. */
struct bench {
    struct opts o;
    struct stats st;
    int epfd;
    struct conn *conns;
    uint32_t nconns;
    char **users;         /* per conn slot: its user id (Nchan: its channel) */
    char **tokens;        /* per conn slot: its user's JWT (lark only, else NULL) */
    char tag[12];         /* this run's client_msg_id prefix */
    char *body_text;      /* message body */
    struct buf scratch;   /* request bodies */
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
    struct samples hop;             /* fanout: event read - answer read, per message (may be < 0) */
    char errbody[ERRBODY_MAX + 1];  /* the first error answer to a send */
    char suberr[ERRBODY_MAX + 1];   /* the first WebSocket error line or subscribe error */
    struct group_state g;           /* group scenario */
    struct sample_layout layout[2]; /* thread layout of larkd [0] and [1] */
    char backend[16];               /* "sqlite", "postgres" (larkd's LARK_DB) or "memory" */
    uint64_t rng;                   /* xorshift64 state: run tags, WebSocket keys and masks */
};

extern struct bench B;

/* ---- helpers (util.c) -------------------------------------------------- */

int64_t now_ns(void);
/* Print "larkbench: what" and exit 2 (a set-up error). */
void die(const char *what) __attribute__((noreturn));
/* xorshift64: run tags and masks only need to differ between runs. */
uint64_t xorshift64(uint64_t *s);
void samples_add(struct samples *s, int64_t v);
/* Nearest-rank percentile in ms; the samples get sorted. -1 when empty. */
double pct_ms(struct samples *s, double p);
double round3(double x);
int parse_uint(const char *s, unsigned long max, unsigned *out);
int parse_double(const char *s, double min, double max, double *out);
/* A signed HS256 JWT for user, as tools/lark-token.c mints them; caller frees. */
char *mint_token(const char *user);
/* PREFIX-kind-i into out. */
void user_name(char *out, size_t len, const char *kind, unsigned i);
/* base64 (RFC 4648) of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
void base64(const unsigned char *in, size_t n, char *out);
/* Was a publish answer with this status accepted by the target? */
int status_acked(int status);

#endif
