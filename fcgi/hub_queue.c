/*
 * hub_queue.c - work other threads hand to the hub thread.
 *
 * Everything that reaches the hub from another thread - a request parked
 * by a worker, the notes of a commit, a watch list, a catch-up read's
 * result, a WebSocket command's answer - is a job posted here and run on
 * the hub thread in the order it was posted. One queue, so that order
 * holds across kinds: a watch list posted before a presence change was
 * committed is applied before that change arrives.
 */
#include "fcgi/hub_int.h"

#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct hub_job {
    struct hub_job *next;
    hub_job_fn fn;
    void *arg;
};

void hub_post(struct hub *h, hub_job_fn fn, void *arg)
{
    struct hub_job *j = xmalloc(sizeof(*j));
    uint64_t one = 1;

    j->next = NULL;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&h->qmu);
    if (h->jobs_tail)
        h->jobs_tail->next = j;
    else
        h->jobs = j;
    h->jobs_tail = j;
    if (!h->poked) {
        h->poked = 1;
        if (write(h->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_error("hub eventfd write failed: errno=%d", errno);
    }
    pthread_mutex_unlock(&h->qmu);
}

void hub_queue_run(struct hub *h)
{
    struct hub_job *j;
    uint64_t v;

    if (h->efd >= 0 && read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("hub eventfd read errno=%d", errno);
    pthread_mutex_lock(&h->qmu);
    j = h->jobs;
    h->jobs = h->jobs_tail = NULL;
    h->poked = 0;
    pthread_mutex_unlock(&h->qmu);
    while (j) {
        struct hub_job *next = j->next;
        j->fn(h, j->arg);
        free(j);
        j = next;
    }
}
