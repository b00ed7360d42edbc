/*
 * reload.c - the SIGHUP procedure and the thread that runs it.
 */
#include "fcgi/reload.h"

#include "core/auth.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "fcgi/app.h"
#include "fcgi/live.h"
#include "fcgi/metrics.h"
#include "fcgi/quota.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The list of changed keys in one log line. */
#define RELOAD_KEYS_MAX 1024

/* What a reload puts in force without a restart (reload.h lists them). */
static const char *const reload_keys[] = {
    "jwt_alg",      "jwt_secret",    "jwt_key_file",   "jwt_jwks_file",  "jwt_secrets_file",
    "jwt_aud",      "jwt_iss",       "jwt_leeway",     "log_level",      "log_format",
    "cors_origins", "metrics_allow", "send_rate",      "send_burst",     "typing_rate",
    "typing_burst", "group_per_min", "group_burst",    "member_per_min", "member_burst",
    "read_per_min", "read_burst",    "device_per_min", "device_burst",   "ticket_per_min",
    "ticket_burst", "media_rate",    "media_burst",
};

struct reload {
    struct app *app;
    const char *config_path; /* borrowed (argv), NULL: LARK_CONFIG */
    struct config applied;   /* the configuration last put in force */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending; /* requests not yet served (merged into one run) */
    int stopping;
};

static int reloadable(const char *key)
{
    for (size_t i = 0; i < sizeof(reload_keys) / sizeof(reload_keys[0]); i++)
        if (strcmp(reload_keys[i], key) == 0)
            return 1;
    return 0;
}

struct key_list {
    struct buf text;
    int want_reloadable; /* 1: collect keys a reload applies; 0: the others */
};

static void collect(const char *key, void *arg)
{
    struct key_list *l = arg;
    if (reloadable(key) == l->want_reloadable)
        buf_printf(&l->text, "%s%s", l->text.len ? ", " : "", key);
}

/* Apply next (loaded, valid) to app: keys first, since they can fail. */
static int reload_apply(struct reload *r, const struct config *next, struct lark_err *err)
{
    struct app *app = r->app;
    int rc = auth_reload(app->auth, next, err);

    if (rc)
        return rc;
    log_set_level((enum log_level)log_level_parse(next->log_level));
    log_set_format((enum log_format)log_format_parse(next->log_format));
    live_update(app->live, next);
    quota_set(app->quota, next);
    return 0;
}

static void reload_once(struct reload *r)
{
    struct config next;
    struct lark_err err = {0};
    struct key_list changed = {.want_reloadable = 1}, restart = {.want_reloadable = 0};
    char keys[256];

    log_info("reload: reading the configuration again (SIGHUP)");
    if (config_load(&next, r->config_path, &err) != 0) {
        log_error("reload: refused, nothing changed: %s", err.msg);
        metrics_reload(0);
        return;
    }
    if (reload_apply(r, &next, &err) != 0) {
        log_error("reload: refused, nothing changed: %s", err.msg);
        metrics_reload(0);
        config_release(&next);
        return;
    }
    buf_init(&changed.text, RELOAD_KEYS_MAX);
    buf_init(&restart.text, RELOAD_KEYS_MAX);
    config_each_diff(&r->applied, &next, collect, &changed);
    config_each_diff(&r->app->cfg, &next, collect, &restart);
    auth_describe(r->app->auth, keys, sizeof(keys));
    log_info("reload: done changed=[%s] tokens: %s", changed.text.len ? changed.text.data : "",
             keys);
    if (restart.text.len)
        log_warn("reload: changed but only applied by a restart: %s", restart.text.data);
    buf_release(&changed.text);
    buf_release(&restart.text);
    config_release(&r->applied);
    r->applied = next;
    metrics_reload(1);
}

static void *reload_main(void *arg)
{
    struct reload *r = arg;

    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->pending && !r->stopping)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stopping)
            break;
        r->pending = 0; /* requests from now on make one more run */
        pthread_mutex_unlock(&r->mu);
        reload_once(r);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int reload_new(struct app *app, const char *config_path, struct reload **out, struct lark_err *err)
{
    struct reload *r = xcalloc(1, sizeof(*r));

    *out = NULL;
    r->app = app;
    r->config_path = config_path;
    config_copy(&r->applied, &app->cfg);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, reload_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        config_release(&r->applied);
        free(r);
        return lark_err_set(err, LARK_EINTERNAL, "cannot start the reload thread");
    }
    *out = r;
    return 0;
}

void reload_request(struct reload *r)
{
    if (!r) {
        log_warn("SIGHUP ignored: nothing to reload here");
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->pending = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void reload_free(struct reload *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    config_release(&r->applied);
    free(r);
}
