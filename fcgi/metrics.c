/*
 * metrics.c - lock-free counters and their Prometheus rendering.
 */
#include "fcgi/metrics.h"

#include "core/buf.h"
#include "core/err.h"

#include <stdatomic.h>

/* Delivery latency histogram bounds, seconds (API.md: a latency histogram). */
static const double latency_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,  0.5,   1,    2.5};
#define NBOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

/* Statuses counted individually; anything else lands in "other". */
static const int statuses[] = {200, 201, 204, 400, 401, 403, 404,
                               405, 409, 413, 415, 429, 500, 503};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

static struct {
    atomic_long held[TRANSPORT_N];
    atomic_ulong parked[TRANSPORT_N];
    atomic_ulong hangups[TRANSPORT_N];
    atomic_ulong messages_sent;
    atomic_ulong db_errors;
    atomic_ulong catchup_reads;
    atomic_ulong responses[NSTATUS + 1];
    atomic_ulong latency_bucket[NBOUNDS + 1];
    atomic_ulong latency_sum_ns;
    atomic_ulong media_uploads;
    atomic_ulong media_upload_bytes;
    atomic_ulong media_expired;
    atomic_ulong reloads[2];       /* [0] refused, [1] applied */
    atomic_ulong health_writes[2]; /* [0] failed, [1] committed */
} m;

const char *transport_name(enum transport t)
{
    static const char *const names[TRANSPORT_N] = {"sse", "poll", "ws"};
    return names[t];
}

void metrics_held_add(enum transport t)
{
    atomic_fetch_add(&m.held[t], 1);
    atomic_fetch_add(&m.parked[t], 1);
}

void metrics_held_remove(enum transport t, int hangup)
{
    atomic_fetch_sub(&m.held[t], 1);
    if (hangup)
        atomic_fetch_add(&m.hangups[t], 1);
}

long metrics_held(enum transport t)
{
    return atomic_load(&m.held[t]);
}

void metrics_message_sent(void)
{
    atomic_fetch_add(&m.messages_sent, 1);
}

void metrics_media_upload(uint64_t bytes)
{
    atomic_fetch_add(&m.media_uploads, 1);
    atomic_fetch_add(&m.media_upload_bytes, (unsigned long)bytes);
}

void metrics_media_expired(unsigned long n)
{
    atomic_fetch_add(&m.media_expired, n);
}

void metrics_catchup_read(void)
{
    atomic_fetch_add(&m.catchup_reads, 1);
}

unsigned long metrics_catchup_reads(void)
{
    return atomic_load(&m.catchup_reads);
}

void metrics_db_error(void)
{
    atomic_fetch_add(&m.db_errors, 1);
}

void metrics_response(int status)
{
    size_t i = 0;
    while (i < NSTATUS && statuses[i] != status)
        i++;
    atomic_fetch_add(&m.responses[i], 1);
}

void metrics_delivery_latency(int64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    if (ns < 0)
        return;
    while (i < NBOUNDS && s > latency_bounds[i])
        i++;
    atomic_fetch_add(&m.latency_bucket[i], 1);
    atomic_fetch_add(&m.latency_sum_ns, (unsigned long)ns);
}

void metrics_health_write(int ok)
{
    atomic_fetch_add(&m.health_writes[ok ? 1 : 0], 1);
}

void metrics_reload(int ok)
{
    atomic_fetch_add(&m.reloads[ok ? 1 : 0], 1);
}

static int render_transport(struct buf *out, const char *name, const char *help, const char *type,
                            unsigned long (*get)(enum transport))
{
    int rc = buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (int t = 0; t < TRANSPORT_N && rc == 0; t++)
        rc = buf_printf(out, "%s{transport=\"%s\"} %lu\n", name, transport_name((enum transport)t),
                        get((enum transport)t));
    return rc;
}

static unsigned long get_held(enum transport t)
{
    long v = atomic_load(&m.held[t]);
    return v > 0 ? (unsigned long)v : 0;
}

static unsigned long get_parked(enum transport t)
{
    return atomic_load(&m.parked[t]);
}

static unsigned long get_hangups(enum transport t)
{
    return atomic_load(&m.hangups[t]);
}

int metrics_render(struct buf *out)
{
    unsigned long cum = 0;
    int rc = 0;

    rc |= render_transport(out, "lark_held_connections", "Connections held by the hub now.",
                           "gauge", get_held);
    rc |= render_transport(out, "lark_held_total", "Connections ever parked in the hub.", "counter",
                           get_parked);
    rc |= render_transport(out, "lark_hangups_total",
                           "Held connections freed because the client went away.", "counter",
                           get_hangups);
    rc |= buf_printf(out,
                     "# HELP lark_messages_sent_total Messages stored (201 answers).\n"
                     "# TYPE lark_messages_sent_total counter\nlark_messages_sent_total %lu\n",
                     atomic_load(&m.messages_sent));
    rc |= buf_printf(out,
                     "# HELP lark_db_errors_total Requests failed by a database error.\n"
                     "# TYPE lark_db_errors_total counter\nlark_db_errors_total %lu\n",
                     atomic_load(&m.db_errors));
    rc |= buf_printf(out,
                     "# HELP lark_catchup_reads_total Reads of a user's inbox the hub needed"
                     " (a connection behind the tail in memory, or a user new to it).\n"
                     "# TYPE lark_catchup_reads_total counter\nlark_catchup_reads_total %lu\n",
                     atomic_load(&m.catchup_reads));
    rc |= buf_printf(out,
                     "# HELP lark_media_uploads_total Media uploads stored through larkd.\n"
                     "# TYPE lark_media_uploads_total counter\nlark_media_uploads_total %lu\n"
                     "# HELP lark_media_upload_bytes_total Bytes of those uploads.\n"
                     "# TYPE lark_media_upload_bytes_total counter\n"
                     "lark_media_upload_bytes_total %lu\n"
                     "# HELP lark_media_expired_total Media deleted because no message named"
                     " them within media_retention.\n"
                     "# TYPE lark_media_expired_total counter\nlark_media_expired_total %lu\n",
                     atomic_load(&m.media_uploads), atomic_load(&m.media_upload_bytes),
                     atomic_load(&m.media_expired));
    rc |= buf_printf(out, "# HELP lark_http_responses_total Answers by HTTP status.\n"
                          "# TYPE lark_http_responses_total counter\n");
    for (size_t i = 0; i <= NSTATUS; i++) {
        unsigned long v = atomic_load(&m.responses[i]);
        if (i < NSTATUS)
            rc |= buf_printf(out, "lark_http_responses_total{status=\"%d\"} %lu\n", statuses[i], v);
        else
            rc |= buf_printf(out, "lark_http_responses_total{status=\"other\"} %lu\n", v);
    }
    rc |= buf_printf(out, "# HELP lark_delivery_latency_seconds From commit to the event being "
                          "written to a held connection.\n"
                          "# TYPE lark_delivery_latency_seconds histogram\n");
    for (size_t i = 0; i <= NBOUNDS; i++) {
        cum += atomic_load(&m.latency_bucket[i]);
        if (i < NBOUNDS)
            rc |= buf_printf(out, "lark_delivery_latency_seconds_bucket{le=\"%g\"} %lu\n",
                             latency_bounds[i], cum);
        else
            rc |= buf_printf(out, "lark_delivery_latency_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
    }
    rc |= buf_printf(out, "lark_delivery_latency_seconds_sum %.6f\n",
                     (double)atomic_load(&m.latency_sum_ns) / 1e9);
    rc |= buf_printf(out, "lark_delivery_latency_seconds_count %lu\n", cum);
    rc |= buf_printf(out,
                     "# HELP lark_health_writes_total Writes the health check committed (it "
                     "caches its answer for a while), by result.\n"
                     "# TYPE lark_health_writes_total counter\n"
                     "lark_health_writes_total{result=\"ok\"} %lu\n"
                     "lark_health_writes_total{result=\"failed\"} %lu\n",
                     atomic_load(&m.health_writes[1]), atomic_load(&m.health_writes[0]));
    rc |= buf_printf(out,
                     "# HELP lark_reloads_total Configuration reloads (SIGHUP) by result.\n"
                     "# TYPE lark_reloads_total counter\n"
                     "lark_reloads_total{result=\"ok\"} %lu\n"
                     "lark_reloads_total{result=\"failed\"} %lu\n",
                     atomic_load(&m.reloads[1]), atomic_load(&m.reloads[0]));
    return rc ? LARK_ETOOLARGE : 0;
}
