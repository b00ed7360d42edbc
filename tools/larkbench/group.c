/*
 * group.c - for each group size, a group whose creator sends at a fixed
 * rate while every member holds a stream (docs/BENCHMARKS.md, "group").
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
    r->create_status = call_http("POST", "/v1/conversations", B.tokens[B.g.sender->slot], body.data,
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
        if (status_acked(m->status)) {
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
           transport_title(), B.backend, B.o.two ? ", two larkd" : "", B.o.rate, B.o.duration);
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

int run_group(void)
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
