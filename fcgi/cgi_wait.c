/*
 * cgi_wait.c - how larkd as a CGI program holds a long-poll or an SSE
 * stream (hold.h, hold_cgi): the process waits for its one request.
 *
 * Before anything is written, the request
 *   1. is answered at once if events are there already (a long-poll), as
 *      the hub would, at no further cost;
 *   2. takes a slot of the held-connection cap (heldcap.h; 429
 *      too_many_connections when the user holds max_held_per_user);
 *   3. starts watching the user's inbox (store_inbox_watch: inotify on a
 *      wake file with SQLite, LISTEN on the process's own connection with
 *      PostgreSQL; 503 if it cannot), then reads the inbox once more, so
 *      that an event committed before the watch began is not missed.
 * Then it writes its head and waits in one poll(2) loop on
 *   - the watch: readable after another process committed events to the
 *     user's inbox (or, on PostgreSQL, published ephemeral ones for it):
 *     the inbox is read from the cursor and written;
 *   - stdout, for POLLERR/POLLHUP: the web server closed its end;
 *   - a signalfd: web servers end a CGI whose client left with SIGTERM;
 *   - one timer: the trickle (poll) or ping (SSE) that finds a client
 *     that left, as in FastCGI (DESIGN.md "Disconnects"); the deadline -
 *     the poll's timeout, the SSE window's end (cgi_sse_window, less up to
 *     a tenth so that streams opened together end apart); and the
 *     presence touch every presence_interval (a held connection counts as
 *     a heartbeat, API.md).
 * Nothing spins: between wake-ups the process sleeps in poll(2). What it
 * holds is bounded: one store connection, one answer's buffer while it
 * writes (EVENTS_ANSWER_MAX), at most LIMIT_POLL_GAP_EVENTS ephemeral
 * events queued.
 */
#include "fcgi/cgi_int.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/events.h"
#include "fcgi/heldcap.h"
#include "fcgi/http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The descriptors of the loop. */
enum { PFD_WATCH, PFD_OUT, PFD_SIG, PFD_N };

int cgi_write(struct cgi_wait *w, const char *data, size_t len)
{
    int64_t deadline = time_mono_ms() + CGI_WRITE_TIMEOUT_MS;

    while (len && !w->ended) {
        ssize_t n = write(STDOUT_FILENO, data, len);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
            int64_t left = deadline - time_mono_ms();
            if (left > 0 && poll(&p, 1, (int)left) >= 0)
                continue;
            log_info("cgi: the web server read nothing for %d ms: dropped", CGI_WRITE_TIMEOUT_MS);
        }
        w->ended = 1; /* EPIPE: the client left */
    }
    return w->ended && len ? -1 : 0;
}

/* The store's listener: ephemeral events for the user (any thread). */
static void wait_notes(void *arg, const struct store_note *notes, size_t n)
{
    struct cgi_wait *w = arg;

    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        if (notes[i].kind != STORE_NOTE_EPHEMERAL || strcmp(notes[i].user, w->r->user) != 0)
            continue;
        if (w->neph == LIMIT_POLL_GAP_EVENTS)
            break; /* ephemeral: a reader that far behind misses some */
        w->eph = xrealloc(w->eph, (w->neph + 1) * sizeof(*w->eph));
        w->eph[w->neph++] = xstrdup(notes[i].json);
    }
    pthread_mutex_unlock(&w->mu);
}

static void wait_free_eph(char **eph, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(eph[i]);
    free(eph);
}

/* Write the ephemeral events that arrived. */
static void wait_ephemeral(struct cgi_wait *w)
{
    char **eph;
    size_t n;

    pthread_mutex_lock(&w->mu);
    eph = w->eph;
    n = w->neph;
    w->eph = NULL;
    w->neph = 0;
    pthread_mutex_unlock(&w->mu);
    if (n && !w->ended)
        w->tr->ephemeral(w, eph, n);
    wait_free_eph(eph, n);
}

/* Read the inbox after the cursor and write it, until caught up. 1 once
 * the request is over. */
static int wait_catch_up(struct cgi_wait *w)
{
    unsigned batch = w->tr->kind == TRANSPORT_POLL ? w->limit : LIMIT_HUB_BATCH;

    while (!w->ended) {
        struct store_event *evs = NULL;
        struct lark_err err = {0};
        uint64_t head = 0;
        size_t n = 0;
        if (store_inbox_read(w->r->db, w->r->user, w->cursor, batch, &evs, &n, &head, &err)) {
            log_warn("cgi: reading the inbox of %s failed: %s", w->r->user, err.msg);
            w->tr->fail(w);
            break;
        }
        if (n)
            w->tr->deliver(w, evs, n);
        store_events_free(evs, n);
        if (n == 0 || w->cursor >= head)
            break;
    }
    return w->ended;
}

/* A held connection counts as a heartbeat (API.md "Presence"); and with
 * no daemon to do it, every held process expires silent users as often
 * (each user goes offline once, store.h). Queued, never waited for. */
static void wait_touch(struct cgi_wait *w, int64_t mono)
{
    const struct config *cfg = &w->r->app->cfg;
    const char *users[1] = {w->r->user};
    int64_t now = time_now_ms();

    store_presence_touch_later(w->r->app->store, users, 1, now);
    store_presence_expire_later(w->r->app->store, now - (int64_t)cfg->presence_ttl * 1000);
    w->touch_ms = mono + (int64_t)cfg->presence_interval * 1000;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Wait and write until the request is over. */
static void wait_loop(struct cgi_wait *w, int watch_fd, int sig_fd)
{
    while (!w->ended) {
        struct pollfd pfd[PFD_N] = {
            [PFD_WATCH] = {.fd = watch_fd, .events = POLLIN},
            [PFD_OUT] = {.fd = STDOUT_FILENO, .events = 0},
            [PFD_SIG] = {.fd = sig_fd, .events = POLLIN},
        };
        struct lark_err err = {0};
        int64_t now = time_mono_ms(), next;
        int changed = 0;

        /* what arrived, and what libpq buffered during the reads (store.h) */
        if (store_inbox_watch_drain(w->r->db, &changed, &err) != 0) {
            log_warn("cgi: watching the inbox of %s failed: %s", w->r->user, err.msg);
            w->tr->fail(w);
            break;
        }
        wait_ephemeral(w);
        if (w->ended || (changed && wait_catch_up(w)))
            break;
        if (now >= w->deadline_ms) {
            w->tr->deadline(w);
            break;
        }
        if (now >= w->tick_ms) {
            if (w->tr->tick(w))
                break;
            w->tick_ms = now + w->tr->tick_every(w);
        }
        if (now >= w->touch_ms)
            wait_touch(w, now);
        next = min64(w->deadline_ms, min64(w->tick_ms, w->touch_ms));
        if (poll(pfd, PFD_N, (int)(next > now ? next - now : 0)) < 0 && errno != EINTR) {
            log_error("cgi: poll: errno %d", errno);
            break;
        }
        if (pfd[PFD_OUT].revents & (POLLERR | POLLHUP | POLLNVAL))
            break; /* the web server closed our output: the client left */
        if (pfd[PFD_SIG].revents & POLLIN)
            break; /* the web server ends us */
    }
}

/* A long-poll that has events at once: answered whole, as the hub would. */
static int poll_now(struct req *r, struct cgi_wait *w, int *answered)
{
    struct store_event *evs = NULL;
    struct events_poll p;
    uint64_t head = 0;
    struct buf body;
    size_t n = 0;
    int rc = store_inbox_read(r->db, r->user, w->cursor, w->limit, &evs, &n, &head, &r->err);

    *answered = 0;
    if (rc)
        return rc;
    if (w->cursor > head)
        w->cursor = head; /* API.md: a position past the newest is the newest */
    if (n) {
        buf_init(&body, EVENTS_ANSWER_MAX);
        events_poll_begin(&p, &body, w->cursor, EVENTS_BUDGET);
        events_poll_stored(&p, evs, n);
        events_poll_end(&p);
        reply_raw(r, 200, "application/json", body.data, body.len);
        buf_release(&body);
        *answered = 1;
    }
    store_events_free(evs, n);
    return 0;
}

/* The SSE stream's start: no hub to clamp a position past the head. */
static int sse_clamp(struct req *r, struct cgi_wait *w)
{
    uint64_t head = 0, acked = 0;
    int rc = store_inbox_state(r->db, r->user, &head, &acked, &r->err);

    if (rc == 0 && w->cursor > head)
        w->cursor = head;
    return rc;
}

/* The deadline: the poll's timeout, or the SSE window less up to a tenth. */
static int64_t wait_deadline(const struct req *r, const struct hold_req *h)
{
    int64_t window = (int64_t)r->app->cfg.cgi_sse_window * 1000;
    unsigned jitter;

    if (h->kind == TRANSPORT_POLL)
        return (int64_t)h->timeout_s * 1000;
    ids_random(&jitter, sizeof(jitter));
    return window - (int64_t)(jitter % (unsigned)(window / 10 + 1));
}

/* Everything before the head: the slot, the watch, the reads. 0 with
 * *answered set once a long-poll had events; a LARK_E* code before
 * anything was written. */
static int wait_prepare(struct req *r, const struct hold_req *h, struct cgi_wait *w,
                        struct heldcap_slot **slot, int *watch_fd, int *answered)
{
    int hold_s = (int)((wait_deadline(r, h) + 999) / 1000);
    int rc;

    *answered = 0;
    rc = h->kind == TRANSPORT_POLL ? poll_now(r, w, answered) : sse_clamp(r, w);
    if (rc || *answered)
        return rc;
    if (r->app->heldcap &&
        (rc = heldcap_acquire(r->app->heldcap, r->user, hold_s, slot, &r->retry_after, &r->err)))
        return rc;
    if ((rc = store_inbox_watch(r->db, r->user, watch_fd, &r->err)))
        return rc;
    /* anything committed before the watch began is read here */
    return h->kind == TRANSPORT_POLL ? poll_now(r, w, answered) : 0;
}

static int cgi_serve(struct req *r, const struct hold_req *h)
{
    struct cgi_wait w = {
        .r = r,
        .tr = h->kind == TRANSPORT_POLL ? &cgi_poll : &cgi_sse,
        .cursor = h->cursor,
        .limit = h->limit ? h->limit : 1,
    };
    struct heldcap_slot *slot = NULL;
    int64_t t0 = time_mono_ms();
    int watch_fd = -1, sig_fd = -1, answered = 0, flags, rc;
    sigset_t mask;

    rc = wait_prepare(r, h, &w, &slot, &watch_fd, &answered);
    if (rc || answered)
        goto out;
    /* main blocked these in every thread; a web server ends a CGI whose
     * client left with SIGTERM */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (reply_start_stream(r, h->content_type, h->extra, h->preamble, h->preamble_len) != 0)
        goto out; /* the client left already */
    /* from here on raw writes, each bounded in time (cgi_write) */
    flags = fcntl(STDOUT_FILENO, F_GETFL);
    if (flags >= 0)
        fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK);
    w.deadline_ms = t0 + wait_deadline(r, h);
    w.tick_ms = time_mono_ms() + w.tr->tick_every(&w);
    pthread_mutex_init(&w.mu, NULL);
    store_set_listener(r->app->store, wait_notes, &w);
    wait_touch(&w, time_mono_ms());
    if (w.tr->kind == TRANSPORT_POLL || !wait_catch_up(&w)) /* SSE: its backlog first */
        wait_loop(&w, watch_fd, sig_fd);
    store_set_listener(r->app->store, NULL, NULL);
    wait_free_eph(w.eph, w.neph);
    pthread_mutex_destroy(&w.mu);
    log_debug("cgi: held %s for %s ended after %lld ms at seq %llu", transport_name(h->kind),
              r->user, (long long)(time_mono_ms() - t0), (unsigned long long)w.cursor);
out:
    if (sig_fd >= 0)
        close(sig_fd);
    heldcap_release(r->app->heldcap, slot);
    return rc;
}

const struct hold_ops hold_cgi = {
    .name = "cgi",
    .serve = cgi_serve,
};
