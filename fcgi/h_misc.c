/*
 * h_misc.c - health and metrics (API.md "Operations").
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "core/pushstat.h"
#include "core/store.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/health.h"
#include "fcgi/live.h"
#include "fcgi/metrics.h"
#include "fcgi/procstat.h"

/* The Prometheus text of a hundred-odd series fits easily. */
#define METRICS_TEXT_MAX (64 * 1024)

int h_healthz(struct req *r)
{
    json_t *body;
    /* a cheap read on every probe, the write at most every HEALTH_TTL_MS */
    int rc = store_ping(r->db, &r->err);

    if (rc == 0)
        rc = health_check(r->db, &r->err);
    if (rc)
        return rc;
    body = json_obj();
    json_put(body, "status", json_string("ok"));
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}

int h_metrics(struct req *r)
{
    const char *addr = req_param(r, "REMOTE_ADDR");
    struct buf text;
    int rc;

    if (!addr || !live_metrics_allowed(r->app->live, addr))
        return lark_err_set(&r->err, LARK_EFORBIDDEN, "metrics are not served to %s",
                            addr ? addr : "this client");
    buf_init(&text, METRICS_TEXT_MAX);
    rc = metrics_render(&text);
    if (rc == 0)
        rc = procstat_render(&text);
    if (rc == 0) {
        /* lark-push's counters live in the store (core/pushstat.h says why);
         * without them the rest of the page is still worth serving. */
        struct pushstat ps;
        struct lark_err perr = {0};
        if (store_push_stats(r->db, &ps, &perr) == 0)
            rc = pushstat_render(&ps, &text);
        else
            log_warn("metrics: push counters unavailable: %s", perr.msg);
    }
    if (rc == 0)
        reply_raw(r, 200, "text/plain; version=0.0.4", text.data, text.len);
    buf_release(&text);
    return rc ? LARK_EINTERNAL : 0;
}
