/*
 * wsbridge.c - WebSocket sessions, bridged from lighttpd's mod_wstunnel.
 *
 * mod_wstunnel does the WebSocket handshake and framing and hands the
 * backend a plain byte stream per session: the frames' payloads, with no
 * boundaries, no HTTP headers, no query string, no cookie (DESIGN.md). So
 * the protocol (API.md "WebSocket") is newline-delimited JSON both ways,
 * authentication is in-band (the first line), and everything larkd writes
 * is ASCII-only JSON, so that mod_wstunnel may cut a write into frames at
 * any byte.
 *
 * A session is a hub connection like an SSE stream - the same user map,
 * cursor, catch-up, ephemeral events, presence and drain - with a reader
 * in front: the transport hub_ws. The hub thread reads, splits lines and
 * answers "ping" itself; a command that needs the store (auth, send, ack,
 * read, typing) goes to a small pool of command threads (hub_pool.c), each
 * with its own store connection, so a send waiting for its commit never
 * holds up the event loop. A session has at most one command with the pool
 * at a time and stops reading until it comes back: its commands run in
 * order (two sends keep their order), and a client sending faster than its
 * commands commit is slowed by TCP, not buffered without bound.
 */
#include "fcgi/wsbridge.h"

#include "fcgi/hub_int.h"

#include "core/auth.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/actions.h"
#include "fcgi/app.h"
#include "fcgi/events.h"
#include "fcgi/heldcap.h"
#include "fcgi/wsline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* After EMFILE, how long the listener rests before accepting again (ms). */
#define WS_LISTEN_RETRY_MS 1000
/* Listen backlog of the bridge socket (as for FastCGI: bursts must fit). */
#define WS_BACKLOG 4096

enum ws_kind { WS_AUTH, WS_SEND, WS_ACK, WS_READ, WS_TYPING };

struct ws_session {
    struct hmap_node node; /* in the bridge's sessions, keyed by id */
    uint64_t id;
    struct hub_conn *conn;
    struct buf in; /* received bytes that are not yet a whole line */
    int busy;      /* a command is with the pool */
};

/* The bridge: its listening socket, its sessions, its command threads. */
struct ws_bridge {
    struct hub_io io;       /* the listening socket in epoll */
    struct hub_timer rearm; /* after EMFILE: accept again then */
    int fd;                 /* listening socket for mod_wstunnel */
    char *path;             /* its path, owned */
    struct stat path_st;    /* its inode, to remove only our own at exit */
    struct hmap sessions;   /* session id -> struct ws_session */
    uint64_t next_id;
    struct hub_pool *pool; /* threads that run commands */
};

/* A command for the pool, and then its result for the hub; owned. */
struct ws_job {
    struct hub *h;
    enum ws_kind kind;
    uint64_t session;
    char *user; /* NULL for WS_AUTH */
    json_t *cmd;
    /* the result */
    char *line;                /* a line to write, or NULL */
    int close;                 /* end the session after the line */
    char *auth_user;           /* WS_AUTH succeeded: the user */
    uint64_t cursor;           /* WS_AUTH: where the stream starts */
    struct heldcap_slot *slot; /* WS_AUTH: of app->heldcap, for the session; or NULL */
};

/* ---- lines out -------------------------------------------------------- */

/* Write v as one ASCII-only line (API.md). -1 if c died. */
static int ws_line(struct hub *h, struct hub_conn *c, const json_t *v)
{
    size_t len;
    char *text = json_dump(v, 1, &len);
    int rc;

    text = xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    rc = conn_send(h, c, text, len);
    free(text);
    return rc;
}

/* {"type":"error","error":{"code","message"}} plus the command's context. */
static json_t *ws_error_json(int code, const char *message, const char *command,
                             json_t *client_msg_id)
{
    json_t *e = json_obj(), *line = json_obj();
    json_put(e, "code", json_string(err_api_code(code)));
    json_put(e, "message", json_string(message && *message ? message : err_default_msg(code)));
    json_put(line, "type", json_string("error"));
    json_put(line, "error", e);
    if (command)
        json_put(line, "command", json_string(command));
    if (json_is_string(client_msg_id))
        json_put(line, "client_msg_id", json_incref(client_msg_id));
    return line;
}

static void ws_error(struct hub *h, struct hub_conn *c, int code, const char *message,
                     const char *command)
{
    json_t *line = ws_error_json(code, message, command, NULL);
    ws_line(h, c, line);
    json_decref(line);
}

static long ws_deliver(struct hub *h, struct hub_conn *c, const struct store_event *evs, size_t n)
{
    struct buf out;
    size_t taken;
    int rc;

    buf_init(&out, EVENTS_ANSWER_MAX);
    taken = events_lines(evs, n, EVENTS_BUDGET, &out, &c->cursor);
    rc = out.len ? conn_send(h, c, out.data, out.len) : 0;
    buf_release(&out);
    return rc < 0 ? -1 : (long)taken;
}

static void ws_ephemeral(struct hub *h, struct hub_conn *c, const struct hub_ephemeral *e)
{
    ws_line(h, c, e->ev);
}

/* Tell the session to reconnect (drain) or why it ends, and end it. */
static void ws_end(struct hub *h, struct hub_conn *c, const char *code, const char *message)
{
    json_t *line;

    if (c->state == CONN_ENDING || c->state == CONN_CLOSING || c->state == CONN_DEAD)
        return;
    if (strcmp(code, "draining") == 0) {
        /* like SSE's event: reconnect - any close means "reconnect" too */
        unsigned jitter;
        int retry = h->app->cfg.sse_retry_ms;
        ids_random(&jitter, sizeof(jitter));
        line = json_obj();
        json_put(line, "type", json_string("reconnect"));
        json_put(line, "reason", json_string(code));
        json_put(line, "retry_ms", json_integer(retry + (int)(jitter % (unsigned)(2 * retry + 1))));
    } else {
        line = json_obj();
        json_t *e = json_obj();
        json_put(e, "code", json_string(code));
        json_put(e, "message", json_string(message));
        json_put(line, "type", json_string("error"));
        json_put(line, "error", e);
    }
    if (ws_line(h, c, line) == 0)
        conn_end(h, c);
    json_decref(line);
}

static void ws_fail(struct hub *h, struct hub_conn *c)
{
    ws_end(h, c, "db_unavailable", "the database is unavailable; reconnect");
}

static void ws_drain(struct hub *h, struct hub_conn *c)
{
    ws_end(h, c, "draining", NULL);
}

static void ws_timer(struct hub *h, struct hub_conn *c, int64_t now)
{
    (void)now;
    if (c->state == CONN_AUTH) /* a session that never authenticated */
        ws_end(h, c, "missing_token", "authenticate with the first line");
}

static int ws_finish(struct hub *h, struct hub_conn *c)
{
    (void)h;
    (void)c;
    return 0; /* closing the socket is the end (mod_wstunnel sends Close) */
}

/* ---- sessions --------------------------------------------------------- */

static uint64_t ws_hash(uint64_t id)
{
    return id * 0x9e3779b97f4a7c15ULL;
}

static struct ws_session *ws_find(struct ws_bridge *b, uint64_t id)
{
    uint64_t hash = ws_hash(id);
    for (struct hmap_node *n = hmap_bucket(&b->sessions, hash); n; n = n->next) {
        struct ws_session *s = HMAP_ENTRY(n, struct ws_session, node);
        if (s->id == id)
            return s;
    }
    return NULL;
}

static int ws_wants_input(const struct hub_conn *c)
{
    return c->ws && !c->ws->busy && c->ws->in.len < c->ws->in.max;
}

static void ws_session_drop(struct hub *h, struct hub_conn *c)
{
    struct ws_session *s = c->ws;
    hmap_remove(&h->ws->sessions, &s->node);
    buf_release(&s->in);
    free(s);
    c->ws = NULL;
}

static void ws_on_readable(struct hub *h, struct hub_conn *c);

const struct hub_transport hub_ws = {
    .kind = TRANSPORT_WS,
    .deliver = ws_deliver,
    .ephemeral = ws_ephemeral,
    .fail = ws_fail,
    .drain = ws_drain,
    .timer = ws_timer,
    .readable = ws_on_readable,
    .wants_input = ws_wants_input,
    .finish = ws_finish,
    .drop = ws_session_drop,
};

static void ws_accept(struct hub *h, struct hub_io *io, uint32_t events)
{
    struct ws_bridge *b = h->ws;

    (void)io;
    (void)events;
    for (;;) {
        struct hub_conn *c;
        struct ws_session *s;
        int fd = accept4(b->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* level-triggered: stop listening for a while, or spin */
                log_warn("ws: accept failed errno=%d; pausing the listener", errno);
                epoll_ctl(h->ep, EPOLL_CTL_DEL, b->fd, NULL);
                hub_timer_set(h, &b->rearm, time_mono_ms() + WS_LISTEN_RETRY_MS);
            }
            return;
        }
        if (h->draining) {
            close(fd); /* mod_wstunnel fails the handshake; the client retries */
            continue;
        }
        s = xcalloc(1, sizeof(*s));
        s->id = ++b->next_id;
        buf_init(&s->in, (size_t)h->app->cfg.request_max);
        if (!(c = conn_new(h, fd, &hub_ws, CONN_AUTH))) {
            buf_release(&s->in);
            free(s);
            continue;
        }
        c->ws = s;
        s->conn = c;
        hmap_insert(&b->sessions, &s->node, ws_hash(s->id));
        hub_timer_set(h, &c->timer, time_mono_ms() + (int64_t)h->app->cfg.ws_auth_timeout * 1000);
    }
}

/* Accept again after an EMFILE pause. */
static void ws_rearm(struct hub *h, struct hub_timer *t, int64_t now)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &h->ws->io};
    (void)t;
    (void)now;
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->ws->fd, &ev) != 0)
        log_warn("ws: cannot re-arm the listener errno=%d", errno);
}

/* ---- commands ---------------------------------------------------------- */

static void ws_run(struct app *app, struct store_conn *db, void *arg);

static void ws_submit(struct hub *h, struct hub_conn *c, enum ws_kind kind, json_t *cmd)
{
    struct ws_job *job = xcalloc(1, sizeof(*job));

    job->h = h;
    job->kind = kind;
    job->session = c->ws->id;
    job->user = c->user ? xstrdup(hub_user_id(c->user)) : NULL;
    job->cmd = json_incref(cmd);
    c->ws->busy = 1;
    hub_pool_submit(h->ws->pool, ws_run, job);
}

static const struct {
    const char *name;
    enum ws_kind kind;
} ws_commands[] = {
    {"send", WS_SEND},
    {"ack", WS_ACK},
    {"read", WS_READ},
    {"typing", WS_TYPING},
};

/* One complete line from the client. */
static void ws_handle_line(struct hub *h, struct hub_conn *c, const char *line, size_t len)
{
    struct lark_err err = {0};
    json_t *cmd = NULL;
    const char *type;

    if (json_parse_object(line, len, &cmd, &err) != 0) {
        ws_error(h, c, err.code, err.msg, NULL); /* the session goes on */
        return;
    }
    type = json_string_value(json_object_get(cmd, "type"));
    if (!type) {
        ws_error(h, c, LARK_EMISSING, "'type' is required", NULL);
    } else if (c->state == CONN_AUTH) {
        if (strcmp(type, "auth") == 0)
            ws_submit(h, c, WS_AUTH, cmd);
        else
            ws_end(h, c, "missing_token", "the first line must be {\"type\":\"auth\",...}");
    } else if (strcmp(type, "ping") == 0) {
        json_t *pong = json_pack("{ss}", "type", "pong");
        ws_line(h, c, pong);
        json_decref(pong);
    } else if (strcmp(type, "auth") == 0) {
        ws_error(h, c, LARK_ECONFLICT, "this session is authenticated already", type);
    } else {
        size_t i;
        for (i = 0; i < sizeof(ws_commands) / sizeof(ws_commands[0]); i++)
            if (strcmp(type, ws_commands[i].name) == 0)
                break;
        if (i < sizeof(ws_commands) / sizeof(ws_commands[0]))
            ws_submit(h, c, ws_commands[i].kind, cmd);
        else
            ws_error(h, c, LARK_EUNKNOWNTYPE, "unknown command type", type);
    }
    json_decref(cmd);
}

/* Handle the whole lines received, while no command is with the pool. */
static void ws_process(struct hub *h, struct hub_conn *c)
{
    size_t len, used;

    while (c->ws && !c->ws->busy && (c->state == CONN_AUTH || c->state == CONN_OPEN)) {
        struct buf *in = &c->ws->in;
        if (wsline_next(in->data, in->len, in->max, &len, &used) != WSLINE_LINE)
            break;
        if (len)
            ws_handle_line(h, c, in->data, len);
        if (c->ws)
            buf_consume(&c->ws->in, used);
    }
    if (c->ws &&
        wsline_next(c->ws->in.data, c->ws->in.len, c->ws->in.max, &len, &used) == WSLINE_TOO_LONG) {
        /* API.md: a line over the request size limit closes the session */
        ws_end(h, c, err_api_code(LARK_ETOOLARGE), "a line is longer than the request limit");
        return;
    }
    conn_update_events(h, c);
}

static void ws_on_readable(struct hub *h, struct hub_conn *c)
{
    struct ws_session *s = c->ws;
    char chunk[16384];

    while (ws_wants_input(c)) {
        size_t room = s->in.max - s->in.len;
        ssize_t n = recv(c->fd, chunk, room < sizeof(chunk) ? room : sizeof(chunk), MSG_DONTWAIT);
        if (n > 0) {
            buf_append(&s->in, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_kill(h, c, c->state == CONN_OPEN); /* closed (0) or failed */
        return;
    }
    ws_process(h, c);
}

static void ws_job_free(struct ws_job *job)
{
    json_decref(job->cmd);
    free(job->user);
    free(job->line);
    free(job->auth_user);
    free(job);
}

/* A command's result, back on the hub thread. */
static void ws_apply(struct hub *h, void *arg)
{
    struct ws_job *r = arg;
    struct ws_session *s = h->closing ? NULL : ws_find(h->ws, r->session);
    struct hub_conn *c;

    if (!s)
        goto out; /* the session closed meanwhile */
    c = s->conn;
    s->busy = 0;
    if (r->line && conn_send(h, c, r->line, strlen(r->line)) < 0)
        goto out;
    if (r->close) {
        conn_end(h, c);
        goto out;
    }
    if (r->auth_user && c->state == CONN_AUTH) {
        static const char hello[] = "{\"type\":\"hello\"}\n";
        hub_timer_cancel(h, &c->timer);
        c->state = CONN_OPEN;
        c->cursor = r->cursor;
        c->slot = r->slot; /* the hub's to give back now */
        r->slot = NULL;
        hub_user_attach(h, c, r->auth_user);
        if (h->draining) {
            ws_end(h, c, "draining", NULL);
            goto out;
        }
        /* API.md: a good auth is answered hello, before any event - the
         * client knows at once that the session is up (a proxy that holds
         * frames back shows as a missing hello) */
        if (conn_send(h, c, hello, sizeof(hello) - 1) < 0)
            goto out;
        conn_mark_dirty(h, c); /* the backlog after its position */
    }
    ws_process(h, c);
out:
    /* not attached (the session closed or ended meanwhile): unused */
    heldcap_release(h->app->heldcap, r->slot);
    ws_job_free(r);
}

/* ---- the command threads ------------------------------------------------ */

static char *ws_text(json_t *line)
{
    size_t len;
    char *text = json_dump(line, 1, &len);
    json_decref(line);
    text = xrealloc(text, len + 2);
    text[len] = '\n';
    text[len + 1] = '\0';
    return text;
}

static void ws_run_auth(struct app *app, struct store_conn *db, struct ws_job *job)
{
    char user[LIMIT_USER_ID_MAX + 1];
    struct lark_err err = {0};
    json_t *tok = json_object_get(job->cmd, "token");
    uint64_t since = 0, head = 0, acked = 0;
    int has_since = json_is_integer(json_object_get(job->cmd, "since"));
    int rc, retry_after = 0;

    if (!json_is_string(tok))
        rc = lark_err_set(&err, LARK_ENOAUTH, "'token' is required");
    else
        rc = auth_verify(app->auth, json_string_value(tok), json_string_length(tok),
                         time_now_ms() / 1000, user, &err);
    if (rc == 0)
        rc = json_get_uint(job->cmd, "since", 0, INT64_MAX, &since, &err);
    /* like Last-Event-ID on SSE, a position acknowledges - queued, never
     * waited for; the hub clamps one past the head. Without one the
     * stream starts after the acknowledged position. */
    if (rc == 0 && has_since)
        store_ack_later(app->store, user, since);
    else if (rc == 0)
        rc = store_inbox_state(db, user, &head, &acked, &err);
    if (rc == 0 && app->heldcap &&
        (rc = heldcap_acquire(app->heldcap, user, 0, &job->slot, &retry_after, &err)) != 0)
        metrics_held_refused(TRANSPORT_WS);
    if (rc) {
        /* API.md: a bad token gets an error and the connection closed */
        json_t *line = ws_error_json(rc, err.msg, "auth", NULL);
        if (rc == LARK_ETOOMANYCONN) /* as HTTP's Retry-After */
            json_put(line, "retry_after", json_integer(retry_after));
        job->line = ws_text(line);
        job->close = 1;
        return;
    }
    job->auth_user = xstrdup(user);
    job->cursor = has_since ? since : acked;
}

/* A command, on a pool thread; its result goes back to the hub. */
static void ws_run(struct app *app, struct store_conn *db, void *arg)
{
    struct ws_job *job = arg;
    struct lark_err err = {0};
    int retry_after = 0;
    struct action_ctx a = {app, db, job->user, &err, &retry_after};
    json_t *cmd = job->cmd, *msg = NULL;
    const char *command = json_string_value(json_object_get(cmd, "type"));
    uint64_t seq = 0, out = 0;
    int dup = 0, rc = 0;

    if (!db) {
        job->line = ws_text(ws_error_json(LARK_EUNAVAIL, NULL, NULL, NULL));
        job->close = 1;
        goto out;
    }
    switch (job->kind) {
    case WS_AUTH: ws_run_auth(app, db, job); goto out;
    case WS_SEND: {
        /* "type" names the command here; a message's own type travels as
         * "msg_type" (docs/API.md), the other fields as in POST /v1/messages */
        json_t *fields = json_clone(cmd);
        json_t *mt = json_object_get(cmd, "msg_type");
        json_object_del(fields, "type");
        json_object_del(fields, "msg_type");
        if (mt)
            json_put(fields, "type", json_incref(mt));
        rc = action_send(&a, fields, &msg, &dup);
        json_decref(fields);
        if (rc == 0) {
            json_t *line = json_obj();
            json_put(line, "type", json_string("sent"));
            json_put(line, "client_msg_id", json_incref(json_object_get(msg, "client_msg_id")));
            json_put(line, "message", msg);
            job->line = ws_text(line);
        }
        break;
    }
    case WS_ACK:
        /* queued, never waited for (store.h "writes nobody waits for") */
        rc = json_get_uint(cmd, "seq", JSON_FIELD_REQUIRED, INT64_MAX, &seq, &err);
        if (rc == 0)
            store_ack_later(app->store, job->user, seq);
        break;
    case WS_READ:
        rc = json_get_uint(cmd, "seq", JSON_FIELD_REQUIRED, INT64_MAX, &seq, &err);
        if (rc == 0)
            rc = action_read(&a, json_string_value(json_object_get(cmd, "conversation_id")), seq,
                             &out);
        break;
    case WS_TYPING:
        rc = action_typing(&a, json_string_value(json_object_get(cmd, "conversation_id")));
        break;
    }
    if (rc) {
        json_t *line = ws_error_json(rc, err.msg, command, json_object_get(cmd, "client_msg_id"));
        if (rc == LARK_ERATE) /* as HTTP's Retry-After */
            json_put(line, "retry_after", json_integer(retry_after));
        job->line = ws_text(line);
    }
out:
    hub_post(job->h, ws_apply, job);
}

/* ---- the bridge ----------------------------------------------------------- */

static int ws_listen(struct ws_bridge *b, struct hub *h, const char *path, struct lark_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &b->io};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return lark_err_set(err, LARK_EINVAL, "ws_listen path is too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path); /* a stale socket from a previous run */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, WS_BACKLOG) != 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return lark_err_set(err, LARK_EINTERNAL, "cannot listen on %s (errno %d)", path, e);
    }
    chmod(path, 0660); /* lighttpd may run as another user of the group */
    b->fd = fd;
    b->path = xstrdup(path);
    if (stat(path, &b->path_st) != 0)
        memset(&b->path_st, 0, sizeof(b->path_st));
    return 0;
}

int ws_bridge_open(struct hub *h, const char *path, int threads, struct lark_err *err)
{
    struct ws_bridge *b = xcalloc(1, sizeof(*b));
    int rc;

    b->fd = -1;
    b->io.fn = ws_accept;
    b->rearm.fn = ws_rearm;
    hmap_init(&b->sessions);
    h->ws = b;
    rc = ws_listen(b, h, path, err);
    if (rc == 0 && !(b->pool = hub_pool_new(h->app, threads, "WebSocket commands", "ws", err)))
        rc = LARK_EINTERNAL;
    if (rc)
        ws_bridge_close(h);
    return rc;
}

void ws_bridge_close(struct hub *h)
{
    struct ws_bridge *b = h->ws;
    struct stat now;

    if (!b)
        return;
    hub_pool_free(b->pool); /* its results are posted: hub_free cleans them up */
    if (b->fd >= 0)
        close(b->fd);
    /* remove the socket file unless a newer larkd has replaced it */
    if (b->path && stat(b->path, &now) == 0 && now.st_ino == b->path_st.st_ino &&
        now.st_dev == b->path_st.st_dev)
        unlink(b->path);
    free(b->path);
    hmap_release(&b->sessions);
    free(b);
    h->ws = NULL;
}
