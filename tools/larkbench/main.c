/*
 * main.c - larkbench's command line: the scenario, the options, the
 * set-up of the run and its end (docs/BENCHMARKS.md; `larkbench --help`).
 *
 * larkbench - the load generator behind `make bench` and `make
 * bench-peers`. Four scenarios against a running lighttpd + larkd
 * (tools/bench.sh starts a fresh pair for each, on SQLite or PostgreSQL),
 * and the fanout against Nchan (tools/bench-peers.sh):
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
 *   compare     no load: the table of a bench-peers run (compare.c).
 *
 * Subscribers are SSE streams, long-poll loops or WebSocket sessions
 * (subs.c) of lark or Nchan (target.h). With --sub-port the subscribers
 * use a second lighttpd + larkd on the same database, so every delivery
 * crosses processes (PostgreSQL LISTEN/NOTIFY).
 *
 * Shape: one thread, one epoll loop, non-blocking sockets (conn.c). A tool
 * that holds 9,000 streams and times each event to the microsecond must be
 * neither the bottleneck nor the memory hog it measures, so a connection is
 * a small struct with bounded buffers, and its parsers (httpresp.c, sse.c,
 * ws.c) read what the two servers send, each unit-tested on its own.
 * Event data is parsed with jansson; tokens are minted with libjwt exactly
 * as tools/lark-token.c does.
 *
 * Every wait has a deadline and every loop a bound. The report is what was
 * observed; one JSON line follows it for scripts.
 */
#include "tools/larkbench/bench.h"

#include "core/config.h"
#include "core/mem.h"
#include "core/version.h"
#include "tools/larkbench/compare.h"
#include "tools/larkbench/scenario.h"
#include "tools/larkbench/target.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

static void usage_scenarios(FILE *out)
{
    fprintf(
        out,
        "usage: larkbench fanout|throughput|idle|group [options]\n"
        "       larkbench --version\n"
        "       larkbench compare FILE [--round-prefix P]\n"
        "\n"
        "Load-test a running lighttpd + larkd on 127.0.0.1:PORT (tools/bench.sh starts\n"
        "one per scenario), or with --target nchan an nginx with Nchan configured by\n"
        "tools/nchan.conf (fanout only; tools/bench-peers.sh). Prints a report, then\n"
        "one JSON line. docs/BENCHMARKS.md explains every figure.\n"
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
        "  compare     reads the JSON lines of FILE written by bench-peers rounds (those\n"
        "              whose \"round\" starts with --round-prefix) and prints, per\n"
        "              transport and rate, Nchan's and lark's p50/p99 (medians over\n"
        "              rounds), achieved rate, send lag, lost, duplicated and the\n"
        "              lark/Nchan ratio of p50 and p99; then one JSON line per row.\n"
        "\n"
        "With --transport poll each subscriber loops on long-polls on its own keep-\n"
        "alive connection: lark's GET /v1/poll?since=<next>&timeout=--poll-timeout,\n"
        "Nchan's GET /poll/<user> resumed with If-Modified-Since / If-None-Match.\n"
        "Subscribers (fanout, idle, group) hold SSE streams, or with --transport ws\n"
        "WebSocket sessions: GET /v1/ws upgraded by mod_wstunnel, masked text frames,\n"
        "the auth line (resuming with since after a reconnection) and a ping; the\n"
        "pong says the session is authenticated (larkd handles a session's lines in\n"
        "order). With --sub-port they connect to a second lighttpd + larkd on the\n"
        "same PostgreSQL database while senders stay on --port: every delivery then\n"
        "crosses processes (LISTEN/NOTIFY); memory figures are the second pair's.\n"
        "throughput with --sub-port sends from every other sender through the\n"
        "second pair: two larkd writing to one database.\n"
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
            "  --transport T      sse, ws or poll: how subscribers receive (sse)\n"
            "  --target T         lark or nchan: the server (lark); nchan: fanout only\n"
            "  --poll-timeout S   lark long-poll timeout= (25)\n"
            "  --nginx-pid PID    Nchan's nginx master (its CPU and memory, with its\n"
            "                     workers'); default: whoever listens on the port\n"
            "  --round LABEL      put \"round\": LABEL in the JSON line (bench-peers)\n"
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

static void usage(FILE *out)
{
    usage_scenarios(out);
    usage_options(out);
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
    OPT_TARGET,
    OPT_POLL_TIMEOUT,
    OPT_NGINX_PID,
    OPT_ROUND,
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
    {"target", required_argument, NULL, OPT_TARGET},
    {"poll-timeout", required_argument, NULL, OPT_POLL_TIMEOUT},
    {"nginx-pid", required_argument, NULL, OPT_NGINX_PID},
    {"round", required_argument, NULL, OPT_ROUND},
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
        if (strcmp(v, "sse") == 0)
            B.o.transport = TR_SSE;
        else if (strcmp(v, "ws") == 0)
            B.o.transport = TR_WS;
        else if (strcmp(v, "poll") == 0)
            B.o.transport = TR_POLL;
        else
            return -1;
        return 0;
    case OPT_TARGET:
        if (strcmp(v, "lark") == 0)
            B.o.target = &target_lark;
        else if (strcmp(v, "nchan") == 0)
            B.o.target = &target_nchan;
        else
            return -1;
        return 0;
    case OPT_POLL_TIMEOUT: return parse_uint(v, 60, &B.o.poll_timeout);
    case OPT_NGINX_PID: return set_pid(v, &B.o.nginx_pid);
    case OPT_ROUND: B.o.round = v; return 0;
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
                        .target = &target_lark,
                        .poll_timeout = 25,
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
    if (B.o.target != &target_lark && B.o.sc != SC_FANOUT) {
        fprintf(stderr, "larkbench: --target %s runs the fanout scenario only\n", B.o.target->name);
        return -1;
    }
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
    sample_find_pids();
    if (B.o.two && (B.o.sub_larkd_pid <= 0 || B.o.sub_lighttpd_pid <= 0))
        fprintf(stderr,
                "larkbench: the subscribers' larkd or lighttpd was not found (larkd %d, "
                "lighttpd %d); use --sub-larkd-pid/--sub-lighttpd-pid\n",
                (int)B.o.sub_larkd_pid, (int)B.o.sub_lighttpd_pid);
    if (B.o.target == &target_nchan && B.o.nginx_pid <= 0)
        fprintf(stderr, "larkbench: nginx not found on the port; CPU and memory figures will be "
                        "missing (use --nginx-pid)\n");
    if (B.o.target == &target_lark && (B.o.larkd_pid <= 0 || B.o.lighttpd_pid <= 0))
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
    if (argc >= 2 && strcmp(argv[1], "compare") == 0)
        return compare_main(argc - 1, argv + 1);
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
