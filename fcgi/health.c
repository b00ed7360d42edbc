/*
 * health.c - the cached write check.
 */
#include "fcgi/health.h"

#include "core/err.h"
#include "core/log.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static struct {
    pthread_mutex_t mu;
    int64_t checked_ms;         /* time_mono_ms() of the last answer; 0: none yet */
    int checking;               /* a thread is committing the check now */
    int rc;                     /* the last answer: 0 or LARK_EUNAVAIL */
    char why[LARK_ERR_MSG_MAX]; /* its reason when it failed */
} health = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The cached answer into err; the code. Called with the lock held. */
static int cached(struct lark_err *err)
{
    if (health.rc)
        return lark_err_set(err, LARK_EUNAVAIL, "%s", health.why);
    return 0;
}

int health_check(struct store_conn *db, struct lark_err *err)
{
    struct lark_err e = {0};
    int64_t now = time_mono_ms();
    int rc;

    pthread_mutex_lock(&health.mu);
    if ((health.checked_ms && now - health.checked_ms < HEALTH_TTL_MS) ||
        (health.checking && health.checked_ms)) {
        rc = cached(err);
        pthread_mutex_unlock(&health.mu);
        return rc;
    }
    health.checking = 1;
    pthread_mutex_unlock(&health.mu);

    rc = store_check_write(db, &e);
    metrics_health_write(rc == 0);

    pthread_mutex_lock(&health.mu);
    if (rc && !health.rc)
        log_warn("health: the database cannot take a write: %s", e.msg);
    else if (!rc && health.rc)
        log_info("health: the database takes writes again");
    health.rc = rc ? LARK_EUNAVAIL : 0;
    /* the store's reason, cut to fit: it is a log line's tail, not data */
    snprintf(health.why, sizeof(health.why), "the database cannot take a write: %.160s",
             e.msg[0] ? e.msg : "unknown error");
    health.checked_ms = time_mono_ms();
    health.checking = 0;
    rc = cached(err);
    pthread_mutex_unlock(&health.mu);
    return rc;
}
