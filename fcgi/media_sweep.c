/*
 * media_sweep.c - the thread that deletes media no message names once
 * their retention has passed (media_sweep.h).
 */
#include "fcgi/media_sweep.h"

#include "core/blob.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct media_sweep {
    struct app *app;
    struct store_conn *db; /* the thread's own */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled to stop */
    int stopping;        /* under mu */
    int64_t period_ms;   /* between two sweeps */
};

/* blob_remove's question: does a media row still name key? */
static int key_used(void *arg, const char *key, int *used)
{
    struct lark_err err = {0};
    return store_media_key_used(arg, key, used, &err);
}

/* One batch of expired items: rows deleted, then their bytes. The number
 * of rows, or -1 when the store failed (logged; next time again). */
static int sweep_batch(struct media_sweep *s, int64_t cutoff)
{
    struct lark_err err = {0};
    json_t *gone = NULL, *pair;
    size_t i;
    int n;

    if (store_media_expire(s->db, cutoff, LIMIT_MEDIA_SWEEP_BATCH, &gone, &err) != 0) {
        log_warn("media sweep: %s", err.msg);
        return -1;
    }
    n = (int)json_array_size(gone);
    json_array_foreach (gone, i, pair) {
        const char *id = json_string_value(json_array_get(pair, 0));
        const char *key = json_string_value(json_array_get(pair, 1));
        /* the row is gone: a failure here leaves bytes nobody names, which
         * an operator may remove; logged by the storage */
        if (blob_remove(s->app->blob, key, key_used, s->db, &err) == 0)
            log_info("media expired id=%s", id);
    }
    json_decref(gone);
    if (n > 0)
        metrics_media_expired((unsigned long)n);
    return n;
}

static void sweep_once(struct media_sweep *s)
{
    int64_t cutoff = time_now_ms() - (int64_t)s->app->cfg.media_retention * 1000;
    int n;

    /* batch after batch while full ones come back; stop when asked */
    do {
        n = sweep_batch(s, cutoff);
        pthread_mutex_lock(&s->mu);
        if (s->stopping)
            n = 0;
        pthread_mutex_unlock(&s->mu);
    } while (n == LIMIT_MEDIA_SWEEP_BATCH);
    blob_sweep_spool(s->app->blob, LIMIT_MEDIA_SPOOL_IDLE_S);
}

static void *sweep_main(void *arg)
{
    struct media_sweep *s = arg;

    pthread_setname_np(pthread_self(), "lark-media");
    for (;;) {
        struct timespec until;
        int64_t ns;

        sweep_once(s);
        clock_gettime(CLOCK_MONOTONIC, &until);
        ns = (int64_t)until.tv_nsec + (s->period_ms % 1000) * 1000000;
        until.tv_sec += (time_t)(s->period_ms / 1000 + ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && pthread_cond_timedwait(&s->cond, &s->mu, &until) != ETIMEDOUT)
            ;
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

int media_sweep_start(struct app *app, struct media_sweep **out, struct lark_err *err)
{
    struct media_sweep *s = xcalloc(1, sizeof(*s));
    pthread_condattr_t ca;
    int rc = store_conn_open(app->store, &s->db, err);

    *out = NULL;
    if (rc) {
        free(s);
        return rc;
    }
    s->app = app;
    /* half the retention: an item lives at most 1.5 periods unnamed */
    s->period_ms = (int64_t)app->cfg.media_retention * 1000 / 2;
    if (s->period_ms > LIMIT_MEDIA_SWEEP_MS)
        s->period_ms = LIMIT_MEDIA_SWEEP_MS;
    if (s->period_ms < 1)
        s->period_ms = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, sweep_main, s) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mu);
        store_conn_close(s->db);
        free(s);
        return lark_err_set(err, LARK_EINTERNAL, "cannot start the media sweep");
    }
    *out = s;
    return 0;
}

void media_sweep_stop(struct media_sweep *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    store_conn_close(s->db);
    free(s);
}
