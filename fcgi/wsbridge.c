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
 * in front. The hub thread reads, splits lines and answers "ping" itself;
 * a command that needs the store (auth, send, ack, read, typing) goes to a
 * small pool of command threads, each with its own store connection, so
 * a send waiting for its commit never holds up the event loop. A session
 * has at most one command with the pool at a time and stops reading until
 * it comes back: its commands run in order (two sends keep their order),
 * and a client sending faster than its commands commit is slowed by TCP,
 * not buffered without bound.
 */
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
    struct hmap_node node; /* in h->ws_sessions, keyed by id */
    uint64_t id;
    struct hub_conn *conn;
    struct buf in; /* received bytes that are not yet a whole line */
    int busy;      /* a command is with the pool */
};

/* A command for the pool; strings and JSON owned. */
struct ws_job {
    struct ws_job *next;
    enum ws_kind kind;
    uint64_t session;
    char *user; /* NULL for WS_AUTH */
    json_t *cmd;
};

/* What a command produced, for the hub; owned. */
struct ws_result {
    struct ws_result *next;
    uint64_t session;
    char *line;      /* a line to write, or NULL */
    int close;       /* end the session after the line */
    char *auth_user; /* WS_AUTH succeeded: the user */
    uint64_t cursor; /* WS_AUTH: where the stream starts */
};

struct ws_pool {
    struct hub *h;
    pthread_t *threads;
    int n;
    pthread_mutex_t mu; /* guards the job queue and stop */
    pthread_cond_t cv;
    struct ws_job *head, *tail;
    int stop;
    struct ws_result *results; /* guarded by h->qmu: the hub takes them */
};

char hub_tag_ws_listen;

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

long ws_write_events(struct hub *h, struct hub_conn *c, json_t *events, uint64_t *last)
{
    struct buf out;
    size_t i, n = 0;
    json_t *ev;
    int rc;

    buf_init(&out, EVENTS_ANSWER_MAX);
    json_array_foreach (events, i, ev) {
        size_t len;
        char *text = json_dump(ev, 1, &len);
        json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
        int full = n > 0 && out.len + len + 1 > EVENTS_BUDGET;
        if (!full && (buf_append(&out, text, len) || buf_putc(&out, '\n')))
            full = 1;
        free(text);
        if (full)
            break;
        if (seq > 0 && (uint64_t)seq > *last)
            *last = (uint64_t)seq;
        n++;
    }
    rc = out.len ? conn_send(h, c, out.data, out.len) : 0;
    buf_release(&out);
    return rc < 0 ? -1 : (long)n;
}

void ws_write_event(struct hub *h, struct hub_conn *c, json_t *ev)
{
    ws_line(h, c, ev);
}

void ws_end(struct hub *h, struct hub_conn *c, const char *code, const char *message)
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

/* ---- sessions --------------------------------------------------------- */

static uint64_t ws_hash(uint64_t id)
{
    return id * 0x9e3779b97f4a7c15ULL;
}

static struct ws_session *ws_find(struct hub *h, uint64_t id)
{
    uint64_t hash = ws_hash(id);
    for (struct hmap_node *n = hmap_bucket(&h->ws_sessions, hash); n; n = n->next) {
        struct ws_session *s = HMAP_ENTRY(n, struct ws_session, node);
        if (s->id == id)
            return s;
    }
    return NULL;
}

int ws_wants_input(const struct hub_conn *c)
{
    return !c->ws->busy && c->ws->in.len < c->ws->in.max;
}

void ws_session_drop(struct hub *h, struct hub_conn *c)
{
    struct ws_session *s = c->ws;
    hmap_remove(&h->ws_sessions, &s->node);
    buf_release(&s->in);
    free(s);
    c->ws = NULL;
}

void ws_accept(struct hub *h)
{
    for (;;) {
        struct hub_conn *c;
        struct ws_session *s;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
        int fd = accept4(h->ws_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* level-triggered: stop listening for a while, or spin */
                log_warn("ws: accept failed errno=%d; pausing the listener", errno);
                epoll_ctl(h->ep, EPOLL_CTL_DEL, h->ws_fd, NULL);
                h->ws_listen_retry = time_mono_ms() + WS_LISTEN_RETRY_MS;
            }
            return;
        }
        if (h->draining) {
            close(fd); /* mod_wstunnel fails the handshake; the client retries */
            continue;
        }
        c = xcalloc(1, sizeof(*c));
        s = xcalloc(1, sizeof(*s));
        c->fd = fd;
        c->kind = TRANSPORT_WS;
        c->state = CONN_AUTH;
        c->ws = s;
        c->events_on = CONN_EV_IN;
        s->conn = c;
        s->id = ++h->ws_next_id;
        buf_init(&s->in, (size_t)h->app->cfg.request_max);
        ev.data.ptr = c;
        if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            log_error("ws: epoll_ctl ADD fd=%d errno=%d", fd, errno);
            close(fd);
            free(s);
            free(c);
            continue;
        }
        hmap_insert(&h->ws_sessions, &s->node, ws_hash(s->id));
        heap_set(&h->timers, &c->timer,
                 time_mono_ms() + (int64_t)h->app->cfg.ws_auth_timeout * 1000);
    }
}

/* Re-arm the listener after an EMFILE pause. */
void ws_tick(struct hub *h)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &hub_tag_ws_listen};
    if (!h->ws_listen_retry || time_mono_ms() < h->ws_listen_retry)
        return;
    h->ws_listen_retry = 0;
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, h->ws_fd, &ev) != 0)
        log_warn("ws: cannot re-arm the listener errno=%d", errno);
}

/* ---- commands ---------------------------------------------------------- */

static void ws_submit(struct hub *h, struct hub_conn *c, enum ws_kind kind, json_t *cmd)
{
    struct ws_pool *p = h->ws_pool;
    struct ws_job *job = xcalloc(1, sizeof(*job));

    job->kind = kind;
    job->session = c->ws->id;
    job->user = c->user ? xstrdup(c->user->id) : NULL;
    job->cmd = json_incref(cmd);
    c->ws->busy = 1;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
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
    while (c->ws && !c->ws->busy && (c->state == CONN_AUTH || c->state == CONN_OPEN)) {
        struct buf *in = &c->ws->in;
        char *nl = in->len ? memchr(in->data, '\n', in->len) : NULL;
        size_t len;
        if (!nl)
            break;
        len = (size_t)(nl - in->data);
        if (len && in->data[len - 1] == '\r')
            len--;
        if (len)
            ws_handle_line(h, c, in->data, len);
        if (c->ws)
            buf_consume(&c->ws->in, (size_t)(nl - c->ws->in.data) + 1);
    }
    if (c->ws && c->ws->in.len >= c->ws->in.max && !memchr(c->ws->in.data, '\n', c->ws->in.len)) {
        /* API.md: a line over the request size limit closes the session */
        ws_end(h, c, err_api_code(LARK_ETOOLARGE), "a line is longer than the request limit");
        return;
    }
    conn_update_events(h, c);
}

void ws_on_readable(struct hub *h, struct hub_conn *c)
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

/* A result from the pool (hub thread). */
static void ws_apply_result(struct hub *h, struct ws_result *r)
{
    struct ws_session *s = ws_find(h, r->session);
    struct hub_conn *c;

    if (!s)
        return; /* the session closed meanwhile */
    c = s->conn;
    s->busy = 0;
    if (r->line && conn_send(h, c, r->line, strlen(r->line)) < 0)
        return;
    if (r->close) {
        conn_end(h, c);
        return;
    }
    if (r->auth_user && c->state == CONN_AUTH) {
        heap_remove(&h->timers, &c->timer);
        c->state = CONN_OPEN;
        c->cursor = r->cursor;
        conn_attach_user(h, c, r->auth_user);
        if (h->draining) {
            ws_end(h, c, "draining", NULL);
            return;
        }
        conn_mark_dirty(h, c); /* the backlog after its position */
    }
    ws_process(h, c);
}

void ws_take_results(struct hub *h)
{
    struct ws_result *r, *next;

    if (!h->ws_pool)
        return;
    pthread_mutex_lock(&h->qmu);
    r = h->ws_pool->results;
    h->ws_pool->results = NULL;
    pthread_mutex_unlock(&h->qmu);
    /* the list was built newest first */
    struct ws_result *rev = NULL;
    for (; r; r = next) {
        next = r->next;
        r->next = rev;
        rev = r;
    }
    for (r = rev; r; r = next) {
        next = r->next;
        ws_apply_result(h, r);
        free(r->line);
        free(r->auth_user);
        free(r);
    }
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

static void ws_run_auth(struct app *app, struct store_conn *db, struct ws_job *job,
                        struct ws_result *r)
{
    char user[LIMIT_USER_ID_MAX + 1];
    struct lark_err err = {0};
    json_t *tok = json_object_get(job->cmd, "token");
    uint64_t since = 0, head = 0, acked = 0;
    int has_since = json_is_integer(json_object_get(job->cmd, "since"));
    int rc;

    if (!json_is_string(tok))
        rc = lark_err_set(&err, LARK_ENOAUTH, "'token' is required");
    else
        rc = auth_verify(app->auth, json_string_value(tok), json_string_length(tok),
                         time_now_ms() / 1000, user, &err);
    if (rc == 0)
        rc = json_get_uint(job->cmd, "since", 0, INT64_MAX, &since, &err);
    if (rc == 0)
        rc = store_inbox_state(db, user, &head, &acked, &err);
    if (rc == 0 && has_since) {
        /* like Last-Event-ID on SSE, the position acknowledges */
        since = since < head ? since : head;
        rc = store_ack(db, user, since, &acked, &err);
    }
    if (rc) {
        /* API.md: a bad token gets an error and the connection closed */
        r->line = ws_text(ws_error_json(rc, err.msg, "auth", NULL));
        r->close = 1;
        return;
    }
    r->auth_user = xstrdup(user);
    r->cursor = has_since ? since : acked;
}

static void ws_run(struct app *app, struct store_conn *db, struct ws_job *job, struct ws_result *r)
{
    struct lark_err err = {0};
    int retry_after = 0;
    struct action_ctx a = {app, db, job->user, &err, &retry_after};
    json_t *cmd = job->cmd, *msg = NULL;
    const char *command = json_string_value(json_object_get(cmd, "type"));
    uint64_t seq = 0, out = 0;
    int dup = 0, rc = 0;

    switch (job->kind) {
    case WS_AUTH: ws_run_auth(app, db, job, r); return;
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
            r->line = ws_text(line);
        }
        break;
    }
    case WS_ACK:
        rc = json_get_uint(cmd, "seq", JSON_FIELD_REQUIRED, INT64_MAX, &seq, &err);
        if (rc == 0)
            rc = store_ack(db, job->user, seq, &out, &err);
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
        r->line = ws_text(line);
    }
}

static void *ws_worker_main(void *arg)
{
    struct ws_pool *p = arg;
    struct hub *h = p->h;
    struct store_conn *db = NULL;
    struct lark_err err = {0};

    if (store_conn_open(h->app->store, &db, &err) != 0)
        log_error("ws: a command thread has no store connection: %s", err.msg);
    for (;;) {
        struct ws_job *job;
        struct ws_result *r;
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
        r = xcalloc(1, sizeof(*r));
        r->session = job->session;
        if (db) {
            ws_run(h->app, db, job, r);
        } else {
            r->line = ws_text(ws_error_json(LARK_EUNAVAIL, NULL, NULL, NULL));
            r->close = 1;
        }
        json_decref(job->cmd);
        free(job->user);
        free(job);
        pthread_mutex_lock(&h->qmu);
        r->next = p->results;
        p->results = r;
        hub_poke_locked(h);
        pthread_mutex_unlock(&h->qmu);
    }
    store_conn_close(db);
    return NULL;
}

int ws_pool_start(struct hub *h, int threads, struct lark_err *err)
{
    struct ws_pool *p = xcalloc(1, sizeof(*p));

    p->h = h;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = xcalloc((size_t)threads, sizeof(*p->threads));
    h->ws_pool = p;
    for (; p->n < threads; p->n++)
        if (pthread_create(&p->threads[p->n], NULL, ws_worker_main, p) != 0)
            return lark_err_set(err, LARK_EINTERNAL, "cannot start WebSocket command threads");
    return 0;
}

void ws_pool_stop(struct hub *h)
{
    struct ws_pool *p = h->ws_pool;
    struct ws_result *r, *next;

    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    for (r = p->results; r; r = next) {
        next = r->next;
        free(r->line);
        free(r->auth_user);
        free(r);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
    h->ws_pool = NULL;
}

/* ---- the listening socket ---------------------------------------------- */

int ws_listen_open(struct hub *h, const char *path, struct lark_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &hub_tag_ws_listen};
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
    h->ws_fd = fd;
    h->ws_path = xstrdup(path);
    if (stat(path, &h->ws_path_st) != 0)
        memset(&h->ws_path_st, 0, sizeof(h->ws_path_st));
    return 0;
}

void ws_listen_close(struct hub *h)
{
    struct stat now;
    if (h->ws_fd >= 0) {
        close(h->ws_fd);
        h->ws_fd = -1;
    }
    /* remove the socket file unless a newer larkd has replaced it */
    if (h->ws_path && stat(h->ws_path, &now) == 0 && now.st_ino == h->ws_path_st.st_ino &&
        now.st_dev == h->ws_path_st.st_dev)
        unlink(h->ws_path);
    free(h->ws_path);
    h->ws_path = NULL;
}
