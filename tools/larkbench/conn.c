/*
 * conn.c - larkbench's connections and event loop (see conn.h).
 */
#include "tools/larkbench/conn.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* epoll events taken per wake. */
#define EPOLL_BATCH 512
/* recv() calls per readiness event, so one busy stream cannot starve the rest. */
#define READS_PER_EVENT 8
/* How often deadlines are checked. */
#define TIMEOUT_CHECK_NS (100 * NS_PER_MS)

static uint64_t conn_key(const struct conn *c)
{
    return (uint64_t)c->gen << 32 | c->slot;
}

void conn_watch(struct conn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u)};
    if (c->want_out == out || c->fd < 0)
        return;
    ev.data.u64 = conn_key(c);
    c->want_out = out;
    epoll_ctl(B.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->gen++;
    c->state = CS_CLOSED;
    c->resp.phase = HTTP_RESP_IDLE;
    c->resp.status = c->resp.close = 0;
    c->want_out = c->busy = 0;
    c->nreq = 0;
    c->t_write = 0;
    buf_reset(&c->in);
    buf_reset(&c->out);
    buf_reset(&c->body);
    if (c->sse)
        sse_restart(c->sse);
    if (c->wsm)
        ws_msg_reset(c->wsm);
}

int conn_open(struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP};
    const struct sockaddr_in *to = c->to_sub ? &B.o.sub_addr : &B.o.addr;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        B.st.fail[c->role][FAIL_CONNECT]++;
        return -1;
    }
    /* Requests are written whole; Nagle would only add delay to them. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0 && errno != EINPROGRESS) {
        close(fd);
        B.st.fail[c->role][FAIL_CONNECT]++;
        return -1;
    }
    B.st.opens++;
    c->fd = fd;
    c->state = CS_CONNECTING;
    c->want_out = 1;
    c->t_start = now_ns();
    ev.data.u64 = conn_key(c);
    if (epoll_ctl(B.epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl");
    return 0;
}

void conn_fail(struct conn *c, enum fail why)
{
    B.st.fail[c->role][why]++;
    c->ops->failed(c);
}

void conn_expect(struct conn *c, unsigned flags)
{
    http_resp_expect(&c->resp, flags);
}

/* Write what is queued; 0, or -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
    while (c->out.len > 0) { /* each pass writes bytes or leaves */
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_fail(c, FAIL_RESET);
        return -1;
    }
    conn_watch(c, c->out.len > 0);
    if (c->out.len == 0 && c->busy && c->t_write == 0) {
        /* The request is with the kernel: this is the send time latencies
         * are measured from. */
        c->t_write = now_ns();
        if (c->ops->written)
            c->ops->written(c);
    }
    return 0;
}

int conn_send(struct conn *c)
{
    return c->state == CS_OPEN ? conn_flush(c) : 0;
}

/* EPOLLOUT (or an error) on a connecting socket; 0, or -1 if it failed. */
static int conn_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        conn_fail(c, FAIL_CONNECT);
        return -1;
    }
    c->state = CS_OPEN;
    return 0;
}

/* Parse what c->in holds; 0, or -1 when c was closed (or reopened) meanwhile. */
static int conn_parse(struct conn *c)
{
    uint32_t gen = c->gen;
    size_t pos = 0;
    while (pos < c->in.len) { /* each step uses bytes or stops */
        struct http_resp_out out;
        long used;
        if (c->resp.phase == HTTP_RESP_UPGRADED) {
            used = c->ops->upgraded(c, c->in.data + pos, c->in.len - pos);
            if (c->gen != gen)
                return -1;
            if (used < 0) {
                conn_fail(c, FAIL_PROTO);
                return -1;
            }
            pos += (size_t)used;
            break; /* it took every whole frame there was */
        }
        used = http_resp_step(&c->resp, c->in.data + pos, c->in.len - pos, &out);
        if (used < 0) {
            conn_fail(c, FAIL_PROTO);
            return -1;
        }
        if (used == 0)
            break;
        pos += (size_t)used;
        if (out.events & HTTP_RESP_EV_HEAD)
            c->ops->head(c);
        if (out.body_len && c->gen == gen)
            c->ops->body(c, out.body, out.body_len);
        if ((out.events & HTTP_RESP_EV_DONE) && c->gen == gen)
            c->ops->done(c);
        if (c->gen != gen)
            return -1;
    }
    buf_consume(&c->in, pos);
    return 0;
}

/* The server closed the connection. */
static void conn_eof(struct conn *c)
{
    int idle = c->resp.phase == HTTP_RESP_IDLE && !c->busy;
    if (http_resp_eof(&c->resp)) {
        c->ops->done(c); /* a body until close ends here (resp.close is set) */
    } else if (idle && c->ops->idle_closed) {
        /* An idle keep-alive connection closed by the server: not an error. */
        B.st.keepalive_closes++;
        c->ops->idle_closed(c);
    } else {
        conn_fail(c, FAIL_EOF);
    }
}

static void conn_read(struct conn *c)
{
    static char tmp[65536];
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n > 0) {
            B.t_recv = now_ns();
            if (buf_append(&c->in, tmp, (size_t)n) != 0) {
                conn_fail(c, FAIL_PROTO);
                return;
            }
            if (conn_parse(c) != 0 || (size_t)n < sizeof(tmp))
                return;
        } else if (n == 0) {
            conn_eof(c);
            return;
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(c, FAIL_RESET);
            return;
        }
    }
}

static void conn_event(struct conn *c, uint32_t events)
{
    if (c->state == CS_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) || conn_connected(c) != 0)
            return;
    }
    if ((events & EPOLLOUT) && conn_flush(c) != 0)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(c);
}

/* Fail whatever has waited longer than --timeout. */
static void check_timeouts(void)
{
    int64_t now = now_ns(), limit = (int64_t)(B.o.timeout * NS_PER_S);
    if (!B.conns || now - B.last_check < TIMEOUT_CHECK_NS)
        return;
    B.last_check = now;
    for (uint32_t i = 0; i < B.nconns; i++) {
        struct conn *c = &B.conns[i];
        int waiting = c->state == CS_CONNECTING || (c->ops && c->ops->waiting(c));
        if (c->state != CS_CLOSED && waiting && now - c->t_start > limit)
            conn_fail(c, FAIL_TIMEOUT);
    }
}

void loop_step(int64_t timeout_ns)
{
    struct epoll_event ev[EPOLL_BATCH];
    struct timespec ts;
    int n;
    if (timeout_ns < 0)
        timeout_ns = 0;
    ts.tv_sec = (time_t)(timeout_ns / NS_PER_S);
    ts.tv_nsec = (long)(timeout_ns % NS_PER_S);
    /* epoll_pwait2: the fanout schedule needs sub-millisecond wake-ups. */
    n = epoll_pwait2(B.epfd, ev, EPOLL_BATCH, &ts, NULL);
    if (n < 0 && errno == ENOSYS)
        n = epoll_wait(B.epfd, ev, EPOLL_BATCH, (int)((timeout_ns + NS_PER_MS - 1) / NS_PER_MS));
    for (int i = 0; i < n; i++) {
        uint32_t slot = (uint32_t)ev[i].data.u64;
        struct conn *c = slot < B.nconns ? &B.conns[slot] : NULL;
        /* An earlier event of this batch may have closed or reopened c. */
        if (c && c->gen == (uint32_t)(ev[i].data.u64 >> 32) && c->fd >= 0)
            conn_event(c, ev[i].events);
    }
    check_timeouts();
}

void loop_for(double secs)
{
    int64_t end = now_ns() + (int64_t)(secs * NS_PER_S);
    for (int64_t now = now_ns(); now < end; now = now_ns())
        loop_step(end - now < 50 * NS_PER_MS ? end - now : 50 * NS_PER_MS);
}
