/*
 * hub.c - the held-connection event loop (see hub.h for the why, and
 * hub_int.h for how its files divide the work).
 *
 * One turn of the loop: wait in epoll (until the next timer, at most);
 * run each ready descriptor's function; run due timers; catch up every
 * dirty connection (hub_catchup.c); periodic presence and lingering-user
 * work; free what died. Nothing here calls the database or blocks: the
 * store's notes arrive as jobs (hub_queue.c), reads run on a pool, and the
 * cross-process listener is driven without blocking (store_listener_*).
 */
#include "fcgi/hub_int.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store_notes.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/fcgirec.h"
#include "fcgi/reload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* epoll events taken per wait. */
#define HUB_EVENTS 256
/* Longest epoll wait when nothing is due (ms). */
#define HUB_IDLE_WAIT_MS 60000

/* ---- notes from the store (any thread) -------------------------------------- */

/* A stored event: into the user's tail; its connections catch up. */
static void hub_apply_event(struct hub *h, const struct store_note *note)
{
    struct hub_user *u = hub_user_find(h, note->user, 0);
    if (!u)
        return; /* nobody here reads this inbox */
    hub_user_put(h, u, note->seq, note->data);
    for (struct hub_conn *c = hub_user_conns(u); c; c = c->unext) {
        if (c->cursor < note->seq) {
            if (!c->wake_ns)
                c->wake_ns = note->commit_ns ? note->commit_ns : time_mono_ns();
            conn_mark_dirty(h, c);
        }
    }
}

static void notes_run(struct hub *h, void *arg)
{
    struct note_buf *nb = arg;

    for (size_t i = 0; i < nb->n && !h->closing; i++) {
        const struct store_note *n = &nb->v[i];
        if (n->kind == STORE_NOTE_EVENT)
            hub_apply_event(h, n);
        else if (n->kind == STORE_NOTE_EPHEMERAL && n->json)
            hub_deliver_ephemeral(h, n->user, n->json);
        else if (n->kind == STORE_NOTE_PRESENCE)
            hub_presence_changed(h, n->user, n->online, n->last_seen);
    }
    note_buf_release(nb);
    free(nb);
}

void hub_notes(void *arg, const struct store_note *notes, size_t n)
{
    struct note_buf *nb = xcalloc(1, sizeof(*nb));

    for (size_t i = 0; i < n; i++)
        note_buf_add(nb, &notes[i]);
    hub_post(arg, notes_run, nb);
}

/* ---- watch lists ------------------------------------------------------------------ */

struct watch_job {
    char *watcher;
    char **users;
    size_t n;
};

static void watch_run(struct hub *h, void *arg)
{
    struct watch_job *j = arg;

    if (!h->closing) {
        hub_presence_watch(h, j->watcher, j->users, j->n); /* takes the strings */
    } else {
        for (size_t i = 0; i < j->n; i++)
            free(j->users[i]);
        free(j->users);
    }
    free(j->watcher);
    free(j);
}

void hub_watch(struct hub *h, const char *watcher, const char *const *users, size_t n)
{
    struct watch_job *j = xmalloc(sizeof(*j));

    j->watcher = xstrdup(watcher);
    j->n = n;
    j->users = xcalloc(n ? n : 1, sizeof(*j->users));
    for (size_t i = 0; i < n; i++)
        j->users[i] = xstrdup(users[i]);
    hub_post(h, watch_run, j);
}

/* ---- draining ---------------------------------------------------------------- */

static void drain_user(struct hub *h, struct hub_user *u, void *arg)
{
    (void)arg;
    for (struct hub_conn *c = hub_user_conns(u), *next; c; c = next) {
        next = c->unext; /* draining ends c */
        c->tr->drain(h, c);
    }
}

static void hub_start_drain(struct hub *h)
{
    if (h->draining)
        return;
    h->draining = 1;
    atomic_store(&h->app->draining, 1);
    h->drain_until_ms = time_mono_ms() + h->app->cfg.drain_grace_ms;
    log_info("draining: held long-polls answered, SSE streams told to reconnect");
    hub_user_each(h, drain_user, NULL);
}

static void drain_run(struct hub *h, void *arg)
{
    (void)arg;
    hub_start_drain(h);
}

void hub_request_drain(struct hub *h)
{
    hub_post(h, drain_run, NULL);
}

void hub_wait_drained(struct hub *h)
{
    pthread_mutex_lock(&h->qmu);
    while (!h->drained)
        pthread_cond_wait(&h->drained_cv, &h->qmu);
    pthread_mutex_unlock(&h->qmu);
}

static void hub_check_drained(struct hub *h)
{
    if (!h->draining || time_mono_ms() < h->drain_until_ms)
        return;
    pthread_mutex_lock(&h->qmu);
    if (!h->drained) {
        h->drained = 1;
        pthread_cond_broadcast(&h->drained_cv);
    }
    pthread_mutex_unlock(&h->qmu);
}

static void hub_on_signal(struct hub *h, struct hub_io *io, uint32_t events)
{
    struct signalfd_siginfo si;
    (void)io;
    (void)events;
    while (read(h->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) { /* a reload, on its own thread (fcgi/reload.h) */
            reload_request(h->app->reload);
            continue;
        }
        log_info("signal %u received", si.ssi_signo);
        hub_start_drain(h);
    }
}

static void hub_on_eventfd(struct hub *h, struct hub_io *io, uint32_t events)
{
    (void)io;
    (void)events;
    hub_queue_run(h);
}

/* ---- the store's cross-process listener -------------------------------------- */

/* Notes may have been missed while the listener was away: nobody is synced
 * any more, every stream catches up with a read. */
static void resync_user(struct hub *h, struct hub_user *u, void *arg)
{
    (void)arg;
    hub_user_unsync(u);
    for (struct hub_conn *c = hub_user_conns(u); c; c = c->unext)
        conn_mark_dirty(h, c);
}

/* Take the store's notes from other processes and keep its descriptor in
 * the epoll set (for output while it connects). A closed descriptor leaves
 * epoll by itself, so after a reconnection (maybe on the same number) it
 * is added again. */
static void hub_store_listener(struct hub *h)
{
    int reconnected = 0, want_write = 0;
    int64_t wait = store_listener_poll(h->app->store, &reconnected);
    int fd = store_listener_fd(h->app->store, &want_write);

    h->store_due_ms = time_mono_ms() + (wait > HUB_IDLE_WAIT_MS ? HUB_IDLE_WAIT_MS
                                        : wait < 0              ? 0
                                                                : wait);
    if (fd >= 0 && (fd != h->store_fd || want_write != h->store_want_write || reconnected)) {
        struct epoll_event ev = {.events = want_write ? EPOLLOUT : EPOLLIN,
                                 .data.ptr = &h->io_store};
        if (epoll_ctl(h->ep, EPOLL_CTL_MOD, fd, &ev) != 0 &&
            epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            log_warn("hub: cannot watch the store's notes errno=%d", errno);
    }
    h->store_fd = fd;
    h->store_want_write = want_write;
    if (reconnected)
        hub_user_each(h, resync_user, NULL);
}

static void hub_on_store(struct hub *h, struct hub_io *io, uint32_t events)
{
    (void)io;
    (void)events;
    hub_store_listener(h);
}

/* ---- the loop ------------------------------------------------------------------ */

static int hub_timeout(struct hub *h)
{
    struct heap_node *top;
    int64_t wait, now;

    if (h->dirty)
        return 0;
    now = time_mono_ms();
    wait = HUB_IDLE_WAIT_MS;
    top = heap_top(&h->timers);
    if (top)
        wait = top->key - now;
    if (h->draining && !h->drained && h->drain_until_ms - now < wait)
        wait = h->drain_until_ms - now;
    if (h->presence_wait_ms < wait)
        wait = h->presence_wait_ms;
    if (h->store_due_ms - now < wait)
        wait = h->store_due_ms - now;
    if (h->linger_sweep_ms - now < wait && h->users.count)
        wait = h->linger_sweep_ms - now;
    return wait < 0 ? 0 : (int)wait;
}

static void *hub_main(void *arg)
{
    struct hub *h = arg;
    struct epoll_event evs[HUB_EVENTS];

    pthread_setname_np(pthread_self(), "lark-hub");
    for (;;) {
        int stop;
        int n = epoll_wait(h->ep, evs, HUB_EVENTS, hub_timeout(h));
        if (n < 0 && errno != EINTR) {
            log_error("hub epoll_wait errno=%d", errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            struct hub_io *io = evs[i].data.ptr;
            io->fn(h, io, evs[i].events);
        }
        if (time_mono_ms() >= h->store_due_ms)
            hub_store_listener(h);
        hub_run_timers(h);
        hub_run_dirty(h);
        h->presence_wait_ms = hub_presence_tick(h);
        hub_user_sweep(h, time_mono_ms());
        conn_free_graveyard(h);
        hub_check_drained(h);
        pthread_mutex_lock(&h->qmu);
        stop = h->stop;
        pthread_mutex_unlock(&h->qmu);
        if (stop)
            break;
    }
    /* Workers are joined before hub_stop, so nothing parks after this. */
    hub_queue_run(h);
    hub_start_drain(h);
    h->closing = 1;
    conn_close_all(h);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

int hub_new(struct app *app, struct hub **out, struct lark_err *err)
{
    struct hub *h = xcalloc(1, sizeof(*h));
    struct epoll_event ev = {.events = EPOLLIN};
    sigset_t mask;

    h->app = app;
    h->ep = h->efd = h->sfd = h->store_fd = -1;
    h->io_eventfd.fn = hub_on_eventfd;
    h->io_signalfd.fn = hub_on_signal;
    h->io_store.fn = hub_on_store;
    pthread_mutex_init(&h->qmu, NULL);
    pthread_cond_init(&h->drained_cv, NULL);
    hmap_init(&h->users);
    heap_init(&h->timers);
    hub_presence_init(h);
    buf_init(&h->scratch, LIMIT_HUB_PENDING_MAX + 2 * FCGIREC_HEADER_LEN * 64);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    h->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (h->ep < 0 || h->efd < 0 || h->sfd < 0)
        goto fail;
    ev.data.ptr = &h->io_eventfd;
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->efd, &ev) != 0)
        goto fail;
    ev.data.ptr = &h->io_signalfd;
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->sfd, &ev) != 0)
        goto fail;
    *out = h;
    return 0;
fail:
    lark_err_set(err, LARK_EINTERNAL, "cannot create the hub's descriptors (errno %d)", errno);
    hub_free(h);
    *out = NULL;
    return LARK_EINTERNAL;
}

int hub_start(struct hub *h, struct lark_err *err)
{
    int rc = hub_catchup_start(h, err);
    if (rc)
        return rc;
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0)
        return lark_err_set(err, LARK_EINTERNAL, "cannot start the hub thread");
    h->started = 1;
    return 0;
}

static void stop_run(struct hub *h, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&h->qmu);
    h->stop = 1;
    pthread_mutex_unlock(&h->qmu);
}

void hub_stop(struct hub *h)
{
    if (!h || !h->started)
        return;
    hub_post(h, stop_run, NULL);
    pthread_join(h->thread, NULL);
    h->started = 0;
}

void hub_free(struct hub *h)
{
    if (!h)
        return;
    hub_stop(h);
    h->closing = 1;
    hub_catchup_stop(h); /* after the loop: nothing submits any more */
    hub_queue_run(h);    /* what the pools posted meanwhile: cleaned up */
    hub_user_release_all(h);
    hub_presence_release(h);
    hmap_release(&h->users);
    heap_release(&h->timers);
    buf_release(&h->scratch);
    if (h->ep >= 0)
        close(h->ep);
    if (h->efd >= 0)
        close(h->efd);
    if (h->sfd >= 0)
        close(h->sfd);
    pthread_mutex_destroy(&h->qmu);
    pthread_cond_destroy(&h->drained_cv);
    free(h);
}
