/*
 * fanout.c - N subscribers, S senders posting 1:1 messages at a fixed total
 * rate (docs/BENCHMARKS.md, "fanout"); its schedule and window serve the
 * group scenario too.
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

/* ns after t0 at which message k is due: a fixed total rate, open loop. */
int64_t msg_offset(uint64_t k)
{
    return (int64_t)((double)k * NS_PER_S / B.o.rate);
}

/* Queue every message due by now on its sender (recipient k % N, sender
 * recipient % S: each subscriber hears from one sender, so the N direct
 * conversations are made in the first N messages and reused after). */
void fan_schedule(int64_t now)
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
void fan_window(struct cpu_use *u)
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
double fan_grace(void)
{
    int64_t t0 = now_ns(), deadline = t0 + (int64_t)(B.o.grace * NS_PER_S);
    while (B.st.acked_delivered < B.st.acked && now_ns() < deadline)
        loop_step(10 * NS_PER_MS);
    return (double)(now_ns() - t0) / NS_PER_S;
}

const char *subscribe_what(void)
{
    if (B.o.transport == TR_WS)
        return B.o.target->poll_head_early ? "subscribe (connect->pong)"
                                           : "subscribe (connect->101)";
    if (B.o.transport == TR_POLL && !B.o.target->poll_head_early)
        return "subscribe (connect->sent)";
    return "subscribe (connect->head)";
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
        if (status_acked(m->status) && m->t_deliv)
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
    printf("  subscribers                %u of %u up in %.2f s", r->subs_up, B.o.subs,
           r->connect_s);
    if (r->fds0 >= 0 && r->fds1 >= 0)
        printf(" (larkd holds %ld more fds)", r->fds1 - r->fds0);
    printf("\n");
    lat_print(subscribe_what(), &B.sub_lat);
    mem_print(&r->m0, &r->m1, r->subs_up);
    printf("  senders                    %u of %u connected, one request in flight each\n",
           r->senders_open, B.o.senders);
    printf("  messages                   planned %" PRIu64 " (%.0f/s x %.1f s), sent %" PRIu64
           ", acknowledged (%s) %" PRIu64 ", unanswered %" PRIu64 ", not sent %" PRIu64 "\n",
           B.planned, B.o.rate, secs, B.st.sent, B.o.target == &target_lark ? "201" : "201, 202",
           B.st.acked, r->unanswered, B.planned - B.st.sent);
    printf("  send throughput            %.1f msg/s acknowledged (%.1f msg/s within the window)\n",
           (double)B.st.acked / secs, (double)B.st.ok_in_window / secs);
    printf("  delivered                  %" PRIu64 " (of them acknowledged %" PRIu64
           "), waited %.2f s after the window\n",
           B.st.delivered, B.st.acked_delivered, r->grace_s);
    printf("  LOST (acked, not delivered) %" PRIu64 "   duplicated %" PRIu64 "   misrouted %" PRIu64
           "   seq gaps %" PRIu64 "\n",
           r->lost, B.st.dup, B.st.misrouted, B.st.seq_gaps);
    printf("  stream drops               %" PRIu64 " (reconnects %" PRIu64 ")\n", B.st.sub_drops,
           B.st.reconnects);
    if (B.o.transport == TR_POLL)
        printf("  long-poll answers          %" PRIu64
               " (%.2f events each), keep-alive closes %" PRIu64 "\n",
               B.st.polls, B.st.polls ? (double)B.st.events / (double)B.st.polls : 0.0,
               B.st.keepalive_closes);
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
    if (B.o.transport == TR_POLL)
        json_object_set_new(root, "polls", json_integer((json_int_t)B.st.polls));
    /* Answers read by the window's end: below --rate when the server falls behind
     * (send_rate also counts the answers read after it). */
    json_object_set_new(root, "window_rate", jnum((double)B.st.ok_in_window / B.o.duration));
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

int run_fanout(void)
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
    r.fds0 = procstat_fds(sample_sub_larkd());
    r.connect_s = subs_connect(0, B.o.subs, &r.subs_up);
    loop_for(B.o.settle);
    mem_take(&r.m1);
    r.fds1 = procstat_fds(sample_sub_larkd());
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
