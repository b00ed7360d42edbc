/*
 * hub_conn.c - one held connection: its output queue, its end, its death.
 *
 * A held connection moves through these states:
 *
 *   AUTH --(WebSocket auth)--> OPEN ----(answer / drain / error)----> ENDING
 *     |                         |                                      |
 *     +------(client left)------+------------(client left)-------------+
 *                                                                      |
 *   ENDING --(flushed)--> CLOSING --(lighttpd closed / timer)--> DEAD <-+
 *
 * OPEN: receives events; its timer is the transport's (keep-alive,
 * deadline). ENDING: the end of the response is queued behind pending
 * output. CLOSING: the end is written and the write side shut down; the
 * socket is closed when lighttpd closes its end (closing first, with
 * lighttpd's unread bytes in our receive queue, would make lighttpd see
 * ECONNRESET and could lose the answer), or after HUB_CLOSE_WAIT_MS. DEAD:
 * unlinked from everything, freed at the end of the loop iteration (an
 * epoll event for it may still be pending in the same batch).
 *
 * Writes never block the loop: sockets are non-blocking, and what does not
 * fit is kept per connection, up to LIMIT_HUB_PENDING_MAX; a consumer that
 * falls further behind is dropped and resumes from its seq on reconnect.
 */
#include "fcgi/hub_int.h"

#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/fcgirec.h"
#include "fcgi/heldcap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* After the end of a response, how long to wait for lighttpd to close its end. */
#define HUB_CLOSE_WAIT_MS 2000
/* How long an ending connection may take to flush before it is dropped. */
#define HUB_END_WAIT_MS 10000

static void conn_on_event(struct hub *h, struct hub_io *io, uint32_t events);
static void conn_on_timer(struct hub *h, struct hub_timer *t, int64_t now);

struct hub_conn *conn_new(struct hub *h, int fd, const struct hub_transport *tr,
                          enum conn_state state)
{
    struct hub_conn *c = xcalloc(1, sizeof(*c));
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = &c->io};

    c->io.fn = conn_on_event;
    c->timer.fn = conn_on_timer;
    c->tr = tr;
    c->fd = fd;
    c->state = (uint8_t)state;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (tr->wants_input) {
        ev.events |= EPOLLIN;
        c->events_on = CONN_EV_IN;
    }
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_error("hub epoll_ctl ADD fd=%d errno=%d", fd, errno);
        close(fd);
        free(c);
        return NULL;
    }
    return c;
}

size_t conn_pending(const struct hub_conn *c)
{
    return c->out ? c->out->len : 0;
}

void conn_update_events(struct hub *h, struct hub_conn *c)
{
    uint8_t want = 0;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = &c->io};

    if (c->state == CONN_DEAD)
        return;
    if (conn_pending(c))
        want |= CONN_EV_OUT;
    /* FastCGI sockets are never read (lighttpd's late empty stdin record
     * would only wake us); a WebSocket session reads while it takes input */
    if (c->tr->wants_input && (c->state == CONN_AUTH || c->state == CONN_OPEN) &&
        c->tr->wants_input(c))
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
    while (conn_pending(c)) {
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
    if (c->state == CONN_DEAD)
        return -1;
    if (!c->out && len) {
        /* the common case: the socket takes it all and no buffer is kept */
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_kill(h, c, c->state == CONN_OPEN);
            return -1;
        }
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
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
        buf_release(c->out);
        free(c->out);
        c->out = NULL;
        conn_update_events(h, c);
    }
    return 0;
}

int conn_write_fcgi(struct hub *h, struct hub_conn *c, const char *data, size_t len)
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
    hub_timer_set(h, &c->timer, time_mono_ms() + HUB_CLOSE_WAIT_MS);
}

void conn_end(struct hub *h, struct hub_conn *c)
{
    if (c->state == CONN_ENDING || c->state == CONN_CLOSING || c->state == CONN_DEAD)
        return;
    hub_user_detach(h, c, 0);
    c->state = CONN_ENDING;
    if (c->tr->finish(h, c) < 0)
        return;
    conn_update_events(h, c);
    if (conn_pending(c))
        hub_timer_set(h, &c->timer, time_mono_ms() + HUB_END_WAIT_MS);
    else
        conn_shutdown(h, c);
}

void conn_kill(struct hub *h, struct hub_conn *c, int hangup)
{
    char trash[512];

    if (c->state == CONN_DEAD)
        return;
    hub_user_detach(h, c, hangup);
    if (c->tr->drop)
        c->tr->drop(h, c);
    hub_timer_cancel(h, &c->timer);
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

void conn_mark_dirty(struct hub *h, struct hub_conn *c)
{
    if (c->dirty || c->state != CONN_OPEN)
        return;
    c->dirty = 1;
    c->dnext = h->dirty;
    h->dirty = c;
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

void conn_free_graveyard(struct hub *h)
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
        /* a WebSocket session that ended before its user was attached */
        heldcap_release(h->app->heldcap, c->slot);
        free(c);
    }
}

static void kill_user_conns(struct hub *h, struct hub_user *u, void *arg)
{
    (void)arg;
    while (hub_user_conns(u))
        conn_kill(h, hub_user_conns(u), 0);
}

void conn_close_all(struct hub *h)
{
    struct heap_node *top;

    hub_user_each(h, kill_user_conns, NULL);
    /* the rest (not attached to a user) all have a timer; other timers go */
    while ((top = heap_top(&h->timers))) {
        struct hub_timer *t = HMAP_ENTRY(top, struct hub_timer, node);
        heap_remove(&h->timers, top);
        if (t->fn == conn_on_timer)
            conn_kill(h, HMAP_ENTRY(t, struct hub_conn, timer), 0);
    }
    conn_free_graveyard(h);
}

static void conn_on_timer(struct hub *h, struct hub_timer *t, int64_t now)
{
    struct hub_conn *c = HMAP_ENTRY(t, struct hub_conn, timer);

    switch (c->state) {
    case CONN_OPEN:
    case CONN_AUTH: c->tr->timer(h, c, now); break;
    case CONN_ENDING:
    case CONN_CLOSING: conn_kill(h, c, 0); break;
    default: break;
    }
}

static void conn_on_event(struct hub *h, struct hub_io *io, uint32_t events)
{
    struct hub_conn *c = HMAP_ENTRY(io, struct hub_conn, io);

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
            conn_mark_dirty(h, c); /* a catch-up may have paused on a full buffer */
    }
    if ((events & EPOLLIN) && c->tr->readable && c->state != CONN_DEAD)
        c->tr->readable(h, c); /* before a hang-up: its last lines still count */
    if ((events & (EPOLLRDHUP | EPOLLHUP)) && c->state != CONN_DEAD)
        conn_kill(h, c, c->state == CONN_OPEN);
}
