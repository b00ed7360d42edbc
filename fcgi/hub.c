/*
 * hub.c - the held-connection event loop (see hub.h for the why).
 *
 * A held connection moves through these states:
 *
 *   OPEN ----(answer / drain / error)----> ENDING --(flushed)--> CLOSING
 *     |                                      |                     |
 *     +--(lighttpd closed: client left)------+----(closed/timer)---+--> DEAD
 *
 * OPEN: receives events; its timer is the next keep-alive or deadline.
 * ENDING: the end records are queued behind pending output.
 * CLOSING: END_REQUEST is written and the write side shut down; the socket
 * is closed when lighttpd closes its end (closing first, with lighttpd's
 * unread bytes in our receive queue, would make lighttpd see ECONNRESET
 * and could lose the answer), or after HUB_CLOSE_WAIT_MS.
 * DEAD: unlinked from everything, freed at the end of the loop iteration
 * (an epoll event for it may still be pending in the same batch).
 */
#include "fcgi/hub_int.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/heap.h"
#include "core/hmap.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/events.h"
#include "fcgi/fcgirec.h"
#include "fcgi/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* After END_REQUEST, how long to wait for lighttpd to close its end. */
#define HUB_CLOSE_WAIT_MS 2000
/* How long an ending connection may take to flush before it is dropped. */
#define HUB_END_WAIT_MS 10000
/* Above this much pending output an SSE catch-up waits for EPOLLOUT. */
#define HUB_OUT_HIGH (256 * 1024)
/* epoll events taken per wait. */
#define HUB_EVENTS 256

/* epoll tags for the hub's own descriptors */
static char tag_eventfd, tag_signalfd, tag_store;

/* ---- queue (any thread) ----------------------------------------------- */

void hub_poke_locked(struct hub *h)
{
    uint64_t one = 1;
    if (h->poked)
        return;
    h->poked = 1;
    if (write(h->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_error("hub eventfd write failed: errno=%d", errno);
}

void hub_park(struct hub *h, const struct hub_park *p)
{
    pthread_mutex_lock(&h->qmu);
    if (h->nparks == h->capparks) {
        h->capparks = h->capparks ? h->capparks * 2 : 64;
        h->parks = xrealloc(h->parks, h->capparks * sizeof(*h->parks));
    }
    h->parks[h->nparks].p = *p;
    h->parks[h->nparks].user = xstrdup(p->user);
    h->nparks++;
    hub_poke_locked(h);
    pthread_mutex_unlock(&h->qmu);
}

void hub_notes(void *arg, const struct store_note *notes, size_t n)
{
    struct hub *h = arg;
    pthread_mutex_lock(&h->qmu);
    if (h->nnotes + n > h->capnotes) {
        while (h->nnotes + n > h->capnotes)
            h->capnotes = h->capnotes ? h->capnotes * 2 : 256;
        h->notes = xrealloc(h->notes, h->capnotes * sizeof(*h->notes));
    }
    for (size_t i = 0; i < n; i++) {
        struct hub_note_item *it = &h->notes[h->nnotes++];
        it->kind = notes[i].kind;
        it->user = xstrdup(notes[i].user);
        it->seq = notes[i].seq;
        it->commit_ns = notes[i].commit_ns;
        it->json = notes[i].json ? xstrdup(notes[i].json) : NULL;
        it->online = notes[i].online;
        it->last_seen = notes[i].last_seen;
    }
    hub_poke_locked(h);
    pthread_mutex_unlock(&h->qmu);
}

void hub_watch(struct hub *h, const char *watcher, const char *const *users, size_t n)
{
    pthread_mutex_lock(&h->qmu);
    if (h->nwatches == h->capwatches) {
        h->capwatches = h->capwatches ? h->capwatches * 2 : 16;
        h->watches = xrealloc(h->watches, h->capwatches * sizeof(*h->watches));
    }
    struct hub_watch_item *it = &h->watches[h->nwatches++];
    it->watcher = xstrdup(watcher);
    it->n = n;
    it->users = xcalloc(n ? n : 1, sizeof(*it->users));
    for (size_t i = 0; i < n; i++)
        it->users[i] = xstrdup(users[i]);
    hub_poke_locked(h);
    pthread_mutex_unlock(&h->qmu);
}

void hub_request_drain(struct hub *h)
{
    pthread_mutex_lock(&h->qmu);
    h->drain_asked = 1;
    hub_poke_locked(h);
    pthread_mutex_unlock(&h->qmu);
}

void hub_wait_drained(struct hub *h)
{
    pthread_mutex_lock(&h->qmu);
    while (!h->drained)
        pthread_cond_wait(&h->drained_cv, &h->qmu);
    pthread_mutex_unlock(&h->qmu);
}

/* ---- users ------------------------------------------------------------ */

struct hub_user *hub_user_find(struct hub *h, const char *id, int create)
{
    uint64_t hash = hmap_hash(id);
    struct hub_user *u;
    size_t len;

    for (struct hmap_node *n = hmap_bucket(&h->users, hash); n; n = n->next) {
        u = HMAP_ENTRY(n, struct hub_user, node);
        if (n->hash == hash && strcmp(u->id, id) == 0)
            return u;
    }
    if (!create)
        return NULL;
    len = strlen(id) + 1;
    u = xcalloc(1, sizeof(*u) + len);
    memcpy(u->id, id, len);
    hmap_insert(&h->users, &u->node, hash);
    hub_presence_user_appeared(h, id);
    return u;
}

/* Stop delivering to c; counts it out of the held gauge. */
static void user_detach(struct hub *h, struct hub_conn *c, int hangup)
{
    struct hub_user *u = c->user;
    if (!u)
        return;
    if (c->uprev)
        c->uprev->unext = c->unext;
    else
        u->conns = c->unext;
    if (c->unext)
        c->unext->uprev = c->uprev;
    c->user = NULL;
    c->unext = c->uprev = NULL;
    metrics_held_remove((enum transport)c->kind, hangup);
    if (c->kind == TRANSPORT_POLL && !hangup && !h->draining)
        hub_gap_open(h, u->id); /* its next poll is on its way */
    if (!u->conns) {
        hub_presence_user_gone(h, u->id);
        hmap_remove(&h->users, &u->node);
        free(u);
    }
}

/* ---- connection output ------------------------------------------------ */

void conn_update_events(struct hub *h, struct hub_conn *c)
{
    uint8_t want = 0;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};

    if (c->state == CONN_DEAD)
        return;
    if (c->out && c->out->len)
        want |= CONN_EV_OUT;
    /* FastCGI sockets are never read (lighttpd's late empty stdin record
     * would only wake us); a WebSocket session reads unless a command of
     * its is still with a worker (commands run one at a time, in order). */
    if (c->ws && (c->state == CONN_AUTH || c->state == CONN_OPEN) && ws_wants_input(c))
        want |= CONN_EV_IN;
    if (want == c->events_on)
        return;
    c->events_on = want;
    ev.events |= (want & CONN_EV_OUT ? EPOLLOUT : 0) | (want & CONN_EV_IN ? EPOLLIN : 0);
    if (epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        log_warn("hub epoll_ctl MOD fd=%d errno=%d", c->fd, errno);
}

/* Write what is pending; 0 when all is out, 1 if some remains, -1 dead. */
static int conn_flush(struct hub *h, struct hub_conn *c)
{
    while (c->out && c->out->len) {
        ssize_t n = send(c->fd, c->out->data, c->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf_consume(c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_update_events(h, c);
            return 1;
        }
        conn_kill(h, c, c->state == CONN_OPEN);
        return -1;
    }
    conn_update_events(h, c);
    return 0;
}

int conn_send(struct hub *h, struct hub_conn *c, const char *data, size_t len)
{
    if (!c->out) {
        c->out = xmalloc(sizeof(*c->out));
        buf_init(c->out, LIMIT_HUB_PENDING_MAX);
    }
    if (buf_append(c->out, data, len) != 0) {
        log_warn("hub dropping slow consumer fd=%d pending=%zu", c->fd, c->out->len);
        conn_kill(h, c, 0);
        return -1;
    }
    if (conn_flush(h, c) < 0)
        return -1;
    if (c->out->len == 0) {
        /* the common case: nothing pending, keep no buffer */
        buf_release(c->out);
        free(c->out);
        c->out = NULL;
        conn_update_events(h, c);
    }
    return 0;
}

/* Send body bytes as STDOUT records. -1 if c died. */
static int conn_write(struct hub *h, struct hub_conn *c, const char *data, size_t len)
{
    buf_reset(&h->scratch);
    if (fcgirec_stdout(&h->scratch, c->req_id, data, len) != 0) {
        conn_kill(h, c, 0);
        return -1;
    }
    return conn_send(h, c, h->scratch.data, h->scratch.len);
}

static void conn_shutdown(struct hub *h, struct hub_conn *c)
{
    c->state = CONN_CLOSING;
    shutdown(c->fd, SHUT_WR);
    heap_set(&h->timers, &c->timer, time_mono_ms() + HUB_CLOSE_WAIT_MS);
}

void conn_end(struct hub *h, struct hub_conn *c)
{
    user_detach(h, c, 0);
    c->state = CONN_ENDING;
    if (!c->ws) {
        buf_reset(&h->scratch);
        fcgirec_end(&h->scratch, c->req_id, 0);
        if (conn_send(h, c, h->scratch.data, h->scratch.len) < 0)
            return;
    }
    conn_update_events(h, c);
    if (c->out)
        heap_set(&h->timers, &c->timer, time_mono_ms() + HUB_END_WAIT_MS);
    else
        conn_shutdown(h, c);
}

void conn_kill(struct hub *h, struct hub_conn *c, int hangup)
{
    char trash[512];

    if (c->state == CONN_DEAD)
        return;
    user_detach(h, c, hangup);
    if (c->ws)
        ws_session_drop(h, c);
    heap_remove(&h->timers, &c->timer);
    epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
    /* Read what lighttpd sent and we never needed (e.g. an empty stdin
     * record), so that close() does not reset the connection. */
    while (recv(c->fd, trash, sizeof(trash), MSG_DONTWAIT) > 0)
        ;
    close(c->fd);
    c->fd = -1;
    c->state = CONN_DEAD;
    /* Its own link: a connection killed while it is on the dirty list
     * must leave that list intact (hub_run_dirty skips dead ones). */
    c->gnext = h->graveyard;
    h->graveyard = c;
}

/* Take c off the dirty list (it was queued after the last hub_run_dirty). */
static void conn_undirty(struct hub *h, struct hub_conn *c)
{
    for (struct hub_conn **pp = &h->dirty; *pp; pp = &(*pp)->dnext) {
        if (*pp == c) {
            *pp = c->dnext;
            break;
        }
    }
    c->dirty = 0;
}

static void conn_free_graveyard(struct hub *h)
{
    while (h->graveyard) {
        struct hub_conn *c = h->graveyard;
        h->graveyard = c->gnext;
        if (c->dirty)
            conn_undirty(h, c);
        if (c->out) {
            buf_release(c->out);
            free(c->out);
        }
        free(c);
    }
}

void conn_mark_dirty(struct hub *h, struct hub_conn *c)
{
    if (c->dirty || c->state != CONN_OPEN)
        return;
    c->dirty = 1;
    c->dnext = h->dirty;
    h->dirty = c;
}

/* ---- answers ---------------------------------------------------------- */

/* Finish a long-poll with events (borrowed JSON array, may be NULL). */
static void poll_answer(struct hub *h, struct hub_conn *c, json_t *events)
{
    struct buf body;

    buf_init(&body, EVENTS_ANSWER_MAX);
    events_poll_answer(events, c->cursor, EVENTS_BUDGET, &body);
    if (conn_write(h, c, body.data, body.len) == 0)
        conn_end(h, c);
    buf_release(&body);
}

/* Tell an SSE client to come back (drain, or the store failed). */
static void sse_reconnect(struct hub *h, struct hub_conn *c, const char *reason)
{
    char frame[256];
    unsigned jitter;
    int retry = h->app->cfg.sse_retry_ms;
    int n;

    /* API.md: clients reconnect with jittered backoff; EventSource uses
     * the last retry: value, so spread them over [retry, 3 * retry]. */
    ids_random(&jitter, sizeof(jitter));
    retry += (int)(jitter % (unsigned)(2 * retry + 1));
    n = snprintf(frame, sizeof(frame), "retry: %d\nevent: reconnect\ndata: {\"reason\":\"%s\"}\n\n",
                 retry, reason);
    if (conn_write(h, c, frame, (size_t)n) == 0)
        conn_end(h, c);
}

static void conn_catch_up(struct hub *h, struct hub_conn *c)
{
    struct lark_err err = {0};
    json_t *events = NULL;
    uint64_t last = c->cursor; /* answers take their seqs from the events */
    unsigned limit = c->kind == TRANSPORT_POLL ? c->limit : LIMIT_HUB_BATCH;
    size_t n;

    if (c->kind != TRANSPORT_POLL && c->out && c->out->len > HUB_OUT_HIGH)
        return; /* resumed from EPOLLOUT once the backlog drains */
    if (store_inbox_read(h->db, c->user->id, c->cursor, limit, &events, &last, &err) != 0) {
        metrics_db_error();
        log_warn("hub inbox read failed user=%s: %s", c->user->id, err.msg);
        if (c->kind == TRANSPORT_POLL)
            poll_answer(h, c, NULL);
        else if (c->kind == TRANSPORT_WS)
            ws_end(h, c, "db_unavailable", "the database is unavailable; reconnect");
        else
            sse_reconnect(h, c, "unavailable");
        return;
    }
    n = json_array_size(events);
    if (n == 0) {
        json_decref(events);
        return;
    }
    if (c->wake_ns) {
        metrics_delivery_latency(time_mono_ns() - c->wake_ns);
        c->wake_ns = 0;
    }
    if (c->kind == TRANSPORT_POLL) {
        poll_answer(h, c, events);
    } else if (c->kind == TRANSPORT_WS) {
        long sent = ws_write_events(h, c, events, &c->cursor);
        if (sent >= 0 && ((size_t)sent == limit || (size_t)sent < n))
            conn_mark_dirty(h, c);
    } else {
        struct buf frames;
        size_t sent;
        buf_init(&frames, EVENTS_ANSWER_MAX);
        sent = events_sse(events, EVENTS_BUDGET, &frames, &c->cursor);
        if (conn_write(h, c, frames.data, frames.len) == 0 && (n == limit || sent < n))
            conn_mark_dirty(h, c); /* more may be waiting */
        buf_release(&frames);
    }
    json_decref(events);
}

void hub_deliver_ephemeral(struct hub *h, const char *user, const char *json)
{
    struct hub_user *u = hub_user_find(h, user, 0);
    json_t *ev, *one;
    const char *type;
    struct buf frame;
    int polled = 0;

    ev = json_loads(json, 0, NULL);
    type = json_string_value(json_object_get(ev, "type"));
    if (!type) {
        json_decref(ev);
        return;
    }
    one = json_arr();
    json_push(one, ev);
    buf_init(&frame, EVENTS_ANSWER_MAX);
    /* API.md: an ephemeral SSE event has no id: line */
    buf_printf(&frame, "event: %s\ndata: %s\n\n", type, json);
    for (struct hub_conn *c = u ? u->conns : NULL, *next; c; c = next) {
        next = c->unext; /* answering a poll detaches it from the user */
        if (c->state != CONN_OPEN)
            continue;
        if (c->kind == TRANSPORT_SSE) {
            conn_write(h, c, frame.data, frame.len);
        } else if (c->kind == TRANSPORT_POLL) {
            /* detaching opens a gap: look it up before the answer */
            polled = 1;
            poll_answer(h, c, one);
        } else if (c->kind == TRANSPORT_WS) {
            ws_write_event(h, c, ev);
        }
    }
    if (!polled)
        hub_gap_keep(h, user, json);
    buf_release(&frame);
    json_decref(one);
}

static void hub_run_dirty(struct hub *h)
{
    struct hub_conn *list = h->dirty;
    h->dirty = NULL;
    while (list) {
        struct hub_conn *c = list;
        list = c->dnext;
        c->dnext = NULL;
        c->dirty = 0;
        if (c->state == CONN_OPEN && c->user)
            conn_catch_up(h, c);
    }
}

/* ---- timers ----------------------------------------------------------- */

static void conn_schedule(struct hub *h, struct hub_conn *c, int64_t now)
{
    const struct config *cfg = &h->app->cfg;
    int64_t next;

    if (c->kind == TRANSPORT_WS) {
        heap_remove(&h->timers, &c->timer); /* lighttpd pings WebSocket clients */
        return;
    }
    if (c->kind == TRANSPORT_SSE) {
        next = now + (int64_t)cfg->sse_keepalive * 1000;
    } else {
        next = now + (int64_t)cfg->poll_trickle * 1000;
        if (next > c->deadline_ms)
            next = c->deadline_ms;
    }
    heap_set(&h->timers, &c->timer, next);
}

static void conn_timer(struct hub *h, struct hub_conn *c, int64_t now)
{
    switch (c->state) {
    case CONN_OPEN:
        if (c->kind == TRANSPORT_SSE) {
            /* API.md: a ping event at least every 15 s - an event, not a
             * comment, because EventSource hides comments and the page must
             * tell a quiet stream from one a proxy holds back; also how a
             * vanished client is noticed (lighttpd reports it on write). */
            static const char ping[] = "event: ping\ndata: {}\n\n";
            if (conn_write(h, c, ping, sizeof(ping) - 1) == 0)
                conn_schedule(h, c, now);
        } else if (now >= c->deadline_ms) {
            poll_answer(h, c, NULL);
        } else if (conn_write(h, c, " ", 1) == 0) {
            /* leading whitespace is valid JSON; the write lets lighttpd
             * notice a client that left (DESIGN.md "Disconnects") */
            conn_schedule(h, c, now);
        }
        break;
    case CONN_AUTH:
        /* a WebSocket session that never authenticated */
        ws_end(h, c, "missing_token", "authenticate with the first line");
        break;
    case CONN_ENDING:
    case CONN_CLOSING: conn_kill(h, c, 0); break;
    default: break;
    }
}

static void hub_run_timers(struct hub *h)
{
    int64_t now = time_mono_ms();
    struct heap_node *top;
    while ((top = heap_top(&h->timers)) && top->key <= now) {
        struct hub_conn *c = HMAP_ENTRY(top, struct hub_conn, timer);
        heap_remove(&h->timers, top);
        conn_timer(h, c, now);
    }
}

/* ---- parking, waking, draining ----------------------------------------- */

static void conn_drain(struct hub *h, struct hub_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    if (c->kind == TRANSPORT_POLL)
        poll_answer(h, c, NULL);
    else if (c->kind == TRANSPORT_WS)
        ws_end(h, c, "draining", "the server is restarting; reconnect");
    else
        sse_reconnect(h, c, "draining");
}

void conn_attach_user(struct hub *h, struct hub_conn *c, const char *user)
{
    struct hub_user *u = hub_user_find(h, user, 1);
    c->user = u;
    c->unext = u->conns;
    if (u->conns)
        u->conns->uprev = c;
    u->conns = c;
    metrics_held_add((enum transport)c->kind);
}

static void hub_adopt(struct hub *h, struct hub_park_item *it)
{
    struct hub_conn *c = xcalloc(1, sizeof(*c));
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
    int64_t now = time_mono_ms();

    c->fd = it->p.fd;
    c->state = CONN_OPEN;
    c->req_id = it->p.request_id;
    c->kind = (uint8_t)it->p.kind;
    c->cursor = it->p.cursor;
    c->limit = (uint16_t)(it->p.limit ? it->p.limit : 1);
    c->deadline_ms = now + (int64_t)it->p.timeout_s * 1000;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        log_error("hub epoll_ctl ADD fd=%d errno=%d", c->fd, errno);
        close(c->fd);
        free(c);
        return;
    }
    conn_attach_user(h, c, it->user);
    if (h->draining) {
        conn_drain(h, c);
        return;
    }
    if (c->kind == TRANSPORT_POLL) {
        json_t *kept = hub_gap_take(h, it->user);
        if (kept) {
            poll_answer(h, c, kept);
            json_decref(kept);
            return;
        }
    }
    conn_schedule(h, c, now);
    /* An event may have committed between the worker's check and now. */
    conn_mark_dirty(h, c);
}

static void hub_apply_wake(struct hub *h, const struct hub_note_item *w)
{
    struct hub_user *u = hub_user_find(h, w->user, 0);
    if (!u)
        return;
    for (struct hub_conn *c = u->conns; c; c = c->unext) {
        if (c->cursor < w->seq) {
            if (!c->wake_ns)
                c->wake_ns = w->commit_ns;
            conn_mark_dirty(h, c);
        }
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
    for (size_t i = 0; i < h->users.nbuckets; i++) {
        struct hmap_node *n = h->users.buckets[i];
        while (n) {
            struct hmap_node *next_node = n->next;
            struct hub_user *u = HMAP_ENTRY(n, struct hub_user, node);
            /* conn_drain may free u once its last connection ends */
            struct hub_conn *c = u->conns;
            while (c) {
                struct hub_conn *next = c->unext;
                conn_drain(h, c);
                c = next;
            }
            n = next_node;
        }
    }
}

/* Take everything other threads queued. */
static void hub_take_queue(struct hub *h)
{
    struct hub_park_item *parks;
    struct hub_note_item *notes;
    struct hub_watch_item *watches;
    size_t np, nn, nw;
    uint64_t v;
    int drain;

    if (read(h->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("hub eventfd read errno=%d", errno);
    pthread_mutex_lock(&h->qmu);
    parks = h->parks;
    np = h->nparks;
    notes = h->notes;
    nn = h->nnotes;
    watches = h->watches;
    nw = h->nwatches;
    h->parks = NULL;
    h->nparks = h->capparks = 0;
    h->notes = NULL;
    h->nnotes = h->capnotes = 0;
    h->watches = NULL;
    h->nwatches = h->capwatches = 0;
    h->poked = 0;
    drain = h->drain_asked;
    pthread_mutex_unlock(&h->qmu);

    ws_take_results(h);
    if (drain)
        hub_start_drain(h);
    for (size_t i = 0; i < np; i++) {
        hub_adopt(h, &parks[i]);
        free(parks[i].user);
    }
    /* Viewports first: a watch call answered before a presence change was
     * committed must see that change even when both arrive in one turn. */
    for (size_t i = 0; i < nw; i++)
        hub_presence_watch(h, &watches[i]); /* takes the item's strings */
    for (size_t i = 0; i < nn; i++) {
        struct hub_note_item *it = &notes[i];
        if (it->kind == STORE_NOTE_WAKE)
            hub_apply_wake(h, it);
        else if (it->kind == STORE_NOTE_EPHEMERAL && it->json)
            hub_deliver_ephemeral(h, it->user, it->json);
        else if (it->kind == STORE_NOTE_PRESENCE)
            hub_presence_changed(h, it->user, it->online, it->last_seen);
        free(it->user);
        free(it->json);
    }
    free(parks);
    free(notes);
    free(watches);
}

/* Take the store's notes from other processes and keep its descriptor in
 * the epoll set. A closed descriptor leaves epoll by itself, so after a
 * reconnection (maybe on the same number) it is simply added again. */
static void hub_store_listener(struct hub *h)
{
    int reconnected = 0;
    int64_t wait = store_listener_poll(h->app->store, &reconnected);
    int fd = store_listener_fd(h->app->store);

    h->store_due_ms = time_mono_ms() + (wait > 60000 ? 60000 : wait < 0 ? 0 : wait);
    if (fd >= 0 && (fd != h->store_fd || reconnected)) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_store};
        if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST)
            log_warn("hub: cannot watch the store's notes errno=%d", errno);
    }
    h->store_fd = fd;
    if (reconnected) {
        /* notes may have been missed meanwhile: every stream catches up */
        for (size_t i = 0; i < h->users.nbuckets; i++)
            for (struct hmap_node *n = h->users.buckets[i]; n; n = n->next)
                for (struct hub_conn *c = HMAP_ENTRY(n, struct hub_user, node)->conns; c;
                     c = c->unext)
                    conn_mark_dirty(h, c);
    }
}

static void hub_read_signals(struct hub *h)
{
    struct signalfd_siginfo si;
    while (read(h->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) { /* a reload, on its own thread (fcgi/reload.h) */
            reload_request(h->app->reload);
            continue;
        }
        log_info("signal %u received", si.ssi_signo);
        hub_start_drain(h);
    }
}

/* ---- the loop --------------------------------------------------------- */

static void hub_conn_event(struct hub *h, struct hub_conn *c, uint32_t events)
{
    if (c->state == CONN_DEAD)
        return;
    if (events & EPOLLERR) {
        conn_kill(h, c, c->state == CONN_OPEN);
        return;
    }
    if ((events & EPOLLOUT) && c->out) {
        int rc = conn_flush(h, c);
        if (rc < 0)
            return;
        if (rc == 0 && c->state == CONN_ENDING)
            conn_shutdown(h, c);
        else if (rc == 0 && c->state == CONN_OPEN)
            conn_mark_dirty(h, c); /* an SSE catch-up may have paused */
    }
    if ((events & EPOLLIN) && c->ws && c->state != CONN_DEAD)
        ws_on_readable(h, c); /* before a hang-up: its last lines still count */
    if ((events & (EPOLLRDHUP | EPOLLHUP)) && c->state != CONN_DEAD)
        conn_kill(h, c, c->state == CONN_OPEN);
}

static int hub_timeout(struct hub *h)
{
    struct heap_node *top;
    int64_t wait, now;

    if (h->dirty)
        return 0;
    now = time_mono_ms();
    wait = 60000;
    top = heap_top(&h->timers);
    if (top)
        wait = top->key - now;
    if (h->draining && !h->drained && h->drain_until_ms - now < wait)
        wait = h->drain_until_ms - now;
    if (h->presence_wait_ms < wait)
        wait = h->presence_wait_ms;
    if (h->ws_listen_retry && h->ws_listen_retry - now < wait)
        wait = h->ws_listen_retry - now;
    if (h->store_due_ms - now < wait)
        wait = h->store_due_ms - now;
    return wait < 0 ? 0 : (int)wait;
}

static void hub_check_drained(struct hub *h)
{
    if (!h->draining || h->drained || time_mono_ms() < h->drain_until_ms)
        return;
    pthread_mutex_lock(&h->qmu);
    h->drained = 1;
    pthread_cond_broadcast(&h->drained_cv);
    pthread_mutex_unlock(&h->qmu);
}

static void hub_close_all(struct hub *h)
{
    for (size_t i = 0; i < h->users.nbuckets; i++) {
        while (h->users.buckets[i]) {
            struct hub_user *u = HMAP_ENTRY(h->users.buckets[i], struct hub_user, node);
            conn_kill(h, u->conns, 0); /* frees u with its last connection */
        }
    }
    while (heap_top(&h->timers))
        conn_kill(h, HMAP_ENTRY(heap_top(&h->timers), struct hub_conn, timer), 0);
    conn_free_graveyard(h);
}

static void *hub_main(void *arg)
{
    struct hub *h = arg;
    struct epoll_event evs[HUB_EVENTS];

    for (;;) {
        int stop;
        int n = epoll_wait(h->ep, evs, HUB_EVENTS, hub_timeout(h));
        if (n < 0 && errno != EINTR) {
            log_error("hub epoll_wait errno=%d", errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tag_eventfd)
                hub_take_queue(h);
            else if (p == &tag_signalfd)
                hub_read_signals(h);
            else if (p == &hub_tag_ws_listen)
                ws_accept(h);
            else if (p == &tag_store)
                hub_store_listener(h);
            else
                hub_conn_event(h, p, evs[i].events);
        }
        if (time_mono_ms() >= h->store_due_ms)
            hub_store_listener(h);
        hub_run_timers(h);
        hub_run_dirty(h);
        h->presence_wait_ms = hub_presence_tick(h);
        hub_gap_sweep(h);
        ws_tick(h);
        conn_free_graveyard(h);
        hub_check_drained(h);
        pthread_mutex_lock(&h->qmu);
        stop = h->stop;
        pthread_mutex_unlock(&h->qmu);
        if (stop)
            break;
    }
    /* Workers are joined before hub_stop, so nothing parks after this. */
    hub_take_queue(h);
    hub_start_drain(h);
    hub_close_all(h);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int hub_new(struct app *app, struct hub **out, struct lark_err *err)
{
    struct hub *h = xcalloc(1, sizeof(*h));
    struct epoll_event ev = {.events = EPOLLIN};
    sigset_t mask;

    h->app = app;
    h->ep = h->efd = h->sfd = h->ws_fd = h->store_fd = -1;
    hmap_init(&h->ws_sessions);
    pthread_mutex_init(&h->qmu, NULL);
    pthread_cond_init(&h->drained_cv, NULL);
    hmap_init(&h->users);
    hmap_init(&h->gaps);
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
    ev.data.ptr = &tag_eventfd;
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->efd, &ev) != 0)
        goto fail;
    ev.data.ptr = &tag_signalfd;
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->sfd, &ev) != 0)
        goto fail;
    if (*app->cfg.ws_listen && strcmp(app->cfg.ws_listen, "off") != 0 &&
        ws_listen_open(h, app->cfg.ws_listen, err) != 0) {
        hub_free(h);
        *out = NULL;
        return LARK_EINTERNAL;
    }
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
    int rc = store_conn_open(h->app->store, &h->db, err);
    if (rc)
        return rc;
    if (h->ws_fd >= 0 && (rc = ws_pool_start(h, h->app->cfg.ws_workers, err)) != 0)
        return rc;
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0)
        return lark_err_set(err, LARK_EINTERNAL, "cannot start the hub thread");
    h->started = 1;
    return 0;
}

void hub_stop(struct hub *h)
{
    if (!h || !h->started)
        return;
    pthread_mutex_lock(&h->qmu);
    h->stop = 1;
    hub_poke_locked(h);
    pthread_mutex_unlock(&h->qmu);
    pthread_join(h->thread, NULL);
    h->started = 0;
}

void hub_free(struct hub *h)
{
    if (!h)
        return;
    hub_stop(h);
    ws_pool_stop(h); /* after the loop: nothing submits any more */
    ws_listen_close(h);
    for (size_t i = 0; i < h->nparks; i++) {
        close(h->parks[i].p.fd);
        free(h->parks[i].user);
    }
    for (size_t i = 0; i < h->nnotes; i++) {
        free(h->notes[i].user);
        free(h->notes[i].json);
    }
    for (size_t i = 0; i < h->nwatches; i++) {
        for (size_t j = 0; j < h->watches[i].n; j++)
            free(h->watches[i].users[j]);
        free(h->watches[i].users);
        free(h->watches[i].watcher);
    }
    free(h->watches);
    free(h->parks);
    free(h->notes);
    store_conn_close(h->db);
    hub_presence_release(h);
    hub_gap_release(h);
    hmap_release(&h->ws_sessions);
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
