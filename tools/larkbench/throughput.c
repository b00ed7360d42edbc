/*
 * throughput.c - senders posting as fast as the server answers
 * (docs/BENCHMARKS.md, "throughput").
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

int run_throughput(void)
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
