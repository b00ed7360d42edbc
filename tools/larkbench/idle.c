/*
 * idle.c - N held streams: memory and descriptors per stream, whether the
 * server still takes new clients, how fast it lets go (docs/BENCHMARKS.md,
 * "idle").
 */
#include "tools/larkbench/scenario.h"

#include "core/mem.h"
#include "tools/larkbench/call.h"
#include "tools/larkbench/conn.h"
#include "tools/larkbench/report.h"
#include "tools/larkbench/senders.h"
#include "tools/larkbench/subs.h"
#include "tools/larkbench/target.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (call_http("GET", "/metrics", NULL, NULL, 2.0, &answer) == 200 &&
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
        if (out[0] < 0 && procstat_fds(sample_sub_lighttpd()) <= lighttpd_target)
            out[0] = t;
        if (out[1] < 0 && procstat_fds(sample_sub_larkd()) <= larkd_target)
            out[1] = t;
        usleep(10 * 1000);
    }
}

static void idle_print(const struct idle_result *r)
{
    header_print("idle");
    printf("  %-26s %u of %u up in %.2f s (%.0f/s)\n",
           B.o.transport == TR_WS ? "sessions" : "streams", r->up, B.o.subs, r->connect_s,
           r->connect_s > 0 ? r->up / r->connect_s : 0.0);
    printf("  descriptors                larkd %ld -> %ld, lighttpd %ld -> %ld\n", r->larkd_fds[0],
           r->larkd_fds[1], r->lighttpd_fds[0], r->lighttpd_fds[1]);
    printf("  after %.1f s more           %u still up, %" PRIu64 " dropped\n", B.o.hold, r->still,
           B.st.sub_drops);
    lat_print(subscribe_what(), &B.sub_lat);
    mem_print(&r->m0, &r->m1, r->up);
    printf("  larkd says it holds        %ld %s connections (GET /metrics; %d of them the "
           "warm-up's; -1: no answer)\n",
           r->held, transport_name(), WARM_STREAMS);
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

int run_idle(void)
{
    struct idle_result r = {0};
    unsigned warm;
    conns_init(B.o.subs, 0, 1, "idle");
    warm = warm_up();
    mem_take(&r.m0);
    r.larkd_fds[0] = procstat_fds(sample_sub_larkd());
    r.lighttpd_fds[0] = procstat_fds(sample_sub_lighttpd());
    r.connect_s = subs_connect(0, B.o.subs, &r.up);
    loop_for(B.o.settle);
    mem_take(&r.m1);
    r.larkd_fds[1] = procstat_fds(sample_sub_larkd());
    r.lighttpd_fds[1] = procstat_fds(sample_sub_lighttpd());
    r.probe_status = call_probe("/v1/healthz", 2.0, &r.probe_ms);
    /* Only while lighttpd takes new clients (see the probe). */
    r.held = r.probe_status > 0 ? metrics_held(transport_name()) : -1;
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
