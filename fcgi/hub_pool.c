/*
 * hub_pool.c - threads with a store connection, for the hub's work that
 * may block.
 *
 * The hub thread never calls the database (DESIGN.md: an event loop never
 * blocks). What needs it - a connection's catch-up read, a WebSocket
 * session's command - runs on a small pool of threads, each with its own
 * store connection, and posts its result back to the hub (hub_post). A
 * pool runs jobs in the order they were submitted, several at a time.
 */
#include "fcgi/hub_int.h"

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "fcgi/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pool_job {
    struct pool_job *next;
    hub_pool_fn fn;
    void *arg;
};

struct hub_pool {
    struct app *app;
    const char *name;     /* for the log */
    char thread_name[16]; /* for ps and perf: "lark-" + a short word */
    pthread_t *threads;
    int n;
    pthread_mutex_t mu; /* guards the queue and stop */
    pthread_cond_t cv;
    struct pool_job *head, *tail;
    int stop;
};

static void *pool_main(void *arg)
{
    struct hub_pool *p = arg;
    struct store_conn *db = NULL;
    struct lark_err err = {0};

    pthread_setname_np(pthread_self(), p->thread_name);
    if (store_conn_open(p->app->store, &db, &err) != 0)
        log_error("%s: a thread has no store connection: %s", p->name, err.msg);
    for (;;) {
        struct pool_job *job;
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        job = p->head;
        if (job) {
            p->head = job->next;
            if (!p->head)
                p->tail = NULL;
        }
        pthread_mutex_unlock(&p->mu);
        if (!job)
            break; /* stopping, queue empty */
        job->fn(p->app, db, job->arg);
        free(job);
    }
    store_conn_close(db);
    return NULL;
}

struct hub_pool *hub_pool_new(struct app *app, int n, const char *name, const char *thread_name,
                              struct lark_err *err)
{
    struct hub_pool *p = xcalloc(1, sizeof(*p));

    p->app = app;
    p->name = name;
    snprintf(p->thread_name, sizeof(p->thread_name), "lark-%s", thread_name);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*p->threads));
    for (; p->n < n; p->n++) {
        if (pthread_create(&p->threads[p->n], NULL, pool_main, p) != 0) {
            lark_err_set(err, LARK_EINTERNAL, "cannot start the %s threads", name);
            hub_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void hub_pool_submit(struct hub_pool *p, hub_pool_fn fn, void *arg)
{
    struct pool_job *job = xmalloc(sizeof(*job));

    job->next = NULL;
    job->fn = fn;
    job->arg = arg;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void hub_pool_free(struct hub_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}
