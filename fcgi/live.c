/*
 * live.c - cors_origins and metrics_allow behind a read-write lock.
 */
#include "fcgi/live.h"

#include "core/config.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct live {
    pthread_rwlock_t lock;
    char *cors_origins;  /* comma-separated Origins, "" = none */
    char *metrics_allow; /* comma-separated addresses */
};

struct live *live_new(const struct config *cfg)
{
    struct live *l = xcalloc(1, sizeof(*l));
    pthread_rwlock_init(&l->lock, NULL);
    l->cors_origins = xstrdup(cfg->cors_origins);
    l->metrics_allow = xstrdup(cfg->metrics_allow);
    return l;
}

void live_free(struct live *l)
{
    if (!l)
        return;
    pthread_rwlock_destroy(&l->lock);
    free(l->cors_origins);
    free(l->metrics_allow);
    free(l);
}

void live_update(struct live *l, const struct config *cfg)
{
    char *cors = xstrdup(cfg->cors_origins), *metrics = xstrdup(cfg->metrics_allow);

    pthread_rwlock_wrlock(&l->lock);
    free(l->cors_origins);
    free(l->metrics_allow);
    l->cors_origins = cors;
    l->metrics_allow = metrics;
    pthread_rwlock_unlock(&l->lock);
}

enum live_cors live_cors(struct live *l, const char *origin)
{
    enum live_cors c = LIVE_CORS_NONE;

    if (strcmp(origin, "null") == 0)
        return LIVE_CORS_NONE;
    pthread_rwlock_rdlock(&l->lock);
    if (config_list_has(l->cors_origins, origin))
        c = LIVE_CORS_CREDENTIALS;
    else if (config_list_has(l->cors_origins, "*"))
        c = LIVE_CORS_ANY;
    pthread_rwlock_unlock(&l->lock);
    return c;
}

int live_metrics_allowed(struct live *l, const char *addr)
{
    int yes;
    pthread_rwlock_rdlock(&l->lock);
    yes = config_list_has(l->metrics_allow, addr);
    pthread_rwlock_unlock(&l->lock);
    return yes;
}
