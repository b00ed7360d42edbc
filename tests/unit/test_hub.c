/*
 * test_hub.c - the hub (fcgi/hub*.c), driven over socketpairs: no lighttpd,
 * no worker, no HTTP. The test plays lighttpd's side of each FastCGI
 * connection: it parks one end with hub_park, reads the FastCGI records the
 * hub writes on the other, and closes it as lighttpd would.
 *
 * What is checked is what the delivery path promises (DESIGN.md "The
 * delivery path, second design"): a stream begins with its head once its
 * user is known; stored events reach every connection of their user in
 * order, from memory - a long-poll client's next poll costs no read; a
 * connection behind the tail, at a hole, or told of events out of order
 * reads from the store and still gets every seq once, in order; a killed
 * connection on the dirty list leaves the others whole; answered polls end
 * with END_REQUEST, the write side shut, and are freed when "lighttpd"
 * closes; a reader that stops reading holds bounded output and later gets
 * everything; ephemeral events reach live connections and wait for a poll
 * between two polls; draining answers everything.
 */
#include "fcgi/hub.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/limits.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/fcgirec.h"
#include "fcgi/metrics.h"
#include "tests/unit/unit.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#define HEAD "HEAD\n"
#define UNAVAIL "UNAVAIL\n"
/* How long a test waits for the hub to write something (ms). */
#define WAIT_MS 5000

static char *dir;
static struct app app;
static uint64_t next_req = 1;

/* lighttpd's end of one held FastCGI connection. */
struct peer {
    int fd;
    uint16_t id;
    struct buf in;   /* raw bytes read */
    struct buf body; /* STDOUT content so far */
    int ended;       /* END_REQUEST seen */
    int eof;         /* the hub shut its write side */
};

static void setup(void)
{
    struct lark_err err = {0};
    sigset_t mask;

    dir = unit_tmpdir();
    memset(&app, 0, sizeof(app));
    ck_assert_int_eq(config_load(&app.cfg, NULL, &err), 0);
    free(app.cfg.db);
    app.cfg.db = xasprintf("sqlite:%s/lark.db", dir);
    free(app.cfg.migrations);
    app.cfg.migrations = xstrdup(LARK_MIGRATIONS_DIR);
    app.cfg.sse_keepalive = 1;
    app.cfg.poll_trickle = 1;
    app.cfg.drain_grace_ms = 100;
    /* the hub's signalfd takes these; this test sends none */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    ck_assert_int_eq(store_open(&app.cfg, &app.store, &err), 0);
    ck_assert_int_eq(hub_new(&app, &app.hub, &err), 0);
    store_set_listener(app.store, hub_notes, app.hub);
    ck_assert_int_eq(hub_start(app.hub, &err), 0);
}

static void teardown(void)
{
    hub_stop(app.hub);
    store_set_listener(app.store, NULL, NULL); /* as main.c: before the hub goes */
    hub_free(app.hub);
    store_close(app.store);
    config_release(&app.cfg);
    unit_rmtree(dir);
    free(dir);
}

/* Park a stream of user at cursor; the test keeps the other end. */
static struct peer *park(const char *user, enum transport kind, uint64_t cursor, int timeout_s)
{
    struct peer *p = xcalloc(1, sizeof(*p));
    int sv[2];
    struct hub_park hp = {.kind = kind,
                          .user = user,
                          .cursor = cursor,
                          .limit = 100,
                          .timeout_s = timeout_s,
                          .head = xstrdup(HEAD),
                          .head_len = strlen(HEAD),
                          .unavail = xstrdup(UNAVAIL),
                          .unavail_len = strlen(UNAVAIL)};

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    p->fd = sv[1];
    p->id = (uint16_t)(next_req++ & 0xffff);
    buf_init(&p->in, 64 << 20);
    buf_init(&p->body, 64 << 20);
    hp.fd = sv[0];
    hp.request_id = p->id;
    hub_park(app.hub, &hp);
    return p;
}

static void peer_close(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    buf_release(&p->in);
    buf_release(&p->body);
    free(p);
}

/* Read what is there (waiting up to ms), parse whole records. */
static void peer_read(struct peer *p, int ms)
{
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    char chunk[65536];
    ssize_t n;
    size_t used = 0;

    if (poll(&pfd, 1, ms) <= 0)
        return;
    n = recv(p->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n == 0)
        p->eof = 1;
    if (n > 0)
        buf_append(&p->in, chunk, (size_t)n);
    for (;;) {
        struct fcgirec rec;
        long got = fcgirec_parse((const uint8_t *)p->in.data + used, p->in.len - used, &rec);
        if (got <= 0)
            break;
        ck_assert_uint_eq(rec.id, p->id);
        if (rec.type == FCGIREC_STDOUT)
            buf_append(&p->body, rec.content, rec.content_len);
        else if (rec.type == FCGIREC_END_REQUEST)
            p->ended = 1;
        used += (size_t)got;
    }
    buf_consume(&p->in, used);
}

static int body_has(struct peer *p, const char *text)
{
    buf_putc(&p->body, '\0');
    p->body.len--;
    return strstr(p->body.data ? p->body.data : "", text) != NULL;
}

/* Wait until the body holds text. */
static void expect(struct peer *p, const char *text)
{
    int64_t end = time_mono_ms() + WAIT_MS;
    while (!body_has(p, text) && time_mono_ms() < end)
        peer_read(p, 50);
    ck_assert_msg(body_has(p, text), "never got \"%s\"; got: %.*s", text, (int)p->body.len,
                  p->body.data ? p->body.data : "");
}

static void expect_end(struct peer *p)
{
    int64_t end = time_mono_ms() + WAIT_MS;
    while (!(p->ended && p->eof) && time_mono_ms() < end)
        peer_read(p, 50);
    ck_assert_msg(p->ended && p->eof, "no END_REQUEST and shutdown (ended %d eof %d)", p->ended,
                  p->eof);
}

/* Nothing more arrives within ms (beyond keep-alive bytes). */
static void expect_quiet(struct peer *p, const char *not_this, int ms)
{
    int64_t end = time_mono_ms() + ms;
    while (time_mono_ms() < end)
        peer_read(p, 20);
    ck_assert_msg(!body_has(p, not_this), "got \"%s\"", not_this);
}

static void send_msg(const char *from, const char *to, const char *body)
{
    struct store_conn *c = NULL;
    struct lark_err err = {0};
    struct store_send_in in = {
        .sender = from, .to = to, .type = "text", .body = body, .body_len = strlen(body)};
    struct store_send_out out = {0};

    ck_assert_int_eq(store_conn_open(app.store, &c, &err), 0);
    ck_assert_msg(store_send(c, &in, &out, &err) == 0, "send: %s", err.msg);
    json_decref(out.message);
    store_conn_close(c);
}

static void wait_held(enum transport t, long n)
{
    int64_t end = time_mono_ms() + WAIT_MS;
    while (metrics_held(t) != n && time_mono_ms() < end)
        usleep(5000);
    ck_assert_int_eq(metrics_held(t), n);
}

/* "id: N\n" once for each N in [from, to], in order, and no other id. */
static void expect_ids(struct peer *p, uint64_t from, uint64_t to)
{
    const char *s;
    uint64_t want = from;
    char last[32];

    snprintf(last, sizeof(last), "id: %llu\n", (unsigned long long)to);
    expect(p, last);
    buf_putc(&p->body, '\0');
    p->body.len--;
    for (s = p->body.data; (s = strstr(s, "id: ")) != NULL; s += 4) {
        uint64_t id = strtoull(s + 4, NULL, 10);
        ck_assert_uint_eq(id, want);
        want++;
    }
    ck_assert_uint_eq(want, to + 1);
}

START_TEST(test_sse_head_then_live)
{
    struct peer *a = park("bob", TRANSPORT_SSE, 0, 0);
    struct peer *b = park("bob", TRANSPORT_SSE, 0, 0);

    expect(a, HEAD); /* after the catch-up read found nothing */
    expect(b, HEAD);
    wait_held(TRANSPORT_SSE, 2);
    send_msg("alice", "bob", "hello bob");
    expect(a, "id: 1\nevent: message\ndata: {\"seq\":1,\"type\":\"message\",\"data\":{");
    expect(a, "\"body\":\"hello bob\"");
    expect(b, "id: 1\nevent: message\n");
    send_msg("carol", "bob", "two");
    expect_ids(a, 1, 2);
    expect_ids(b, 1, 2);
    ck_assert(!body_has(a, UNAVAIL));
    expect(a, "event: ping\ndata: {}\n\n"); /* sse_keepalive = 1 s */
    peer_close(a);
    peer_close(b);
    wait_held(TRANSPORT_SSE, 0);
}
END_TEST

START_TEST(test_poll_backlog_then_memory)
{
    struct peer *p;
    unsigned long reads;

    send_msg("alice", "dan", "one");
    send_msg("alice", "dan", "two");
    /* a new user: read, answered with both, ended */
    p = park("dan", TRANSPORT_POLL, 0, 10);
    expect(p, HEAD "{\"events\":[{\"seq\":1,");
    expect(p, "],\"next\":2}");
    expect_end(p);
    peer_close(p);
    /* its next poll: the user lingers with its tail - no read at all */
    reads = metrics_catchup_reads();
    p = park("dan", TRANSPORT_POLL, 2, 10);
    expect(p, HEAD);
    expect_quiet(p, "events", 200); /* held */
    send_msg("alice", "dan", "three");
    expect(p, "{\"events\":[{\"seq\":3,\"type\":\"message\"");
    expect(p, "\"next\":3}");
    expect_end(p);
    peer_close(p);
    /* a poll behind by one that is still in the tail: answered at once */
    send_msg("alice", "dan", "four");
    p = park("dan", TRANSPORT_POLL, 3, 10);
    expect(p, "{\"events\":[{\"seq\":4,");
    expect_end(p);
    peer_close(p);
    ck_assert_uint_eq(metrics_catchup_reads(), reads);
    /* a cursor behind the tail reads */
    p = park("dan", TRANSPORT_POLL, 0, 10);
    expect(p, "\"next\":4}");
    expect_end(p);
    peer_close(p);
    wait_held(TRANSPORT_POLL, 0);
}
END_TEST

START_TEST(test_since_past_head_is_clamped)
{
    struct peer *p;

    send_msg("alice", "eve", "one");
    p = park("eve", TRANSPORT_SSE, 99, 0);
    expect(p, HEAD);
    send_msg("alice", "eve", "two");
    expect(p, "id: 2\n"); /* 2 > 1 = the head, not > 99 */
    ck_assert(!body_has(p, "id: 1\n"));
    peer_close(p);
}
END_TEST

/* Notes of events the store holds, handed to the hub by the test. */
static void note(const char *user, uint64_t seq, const char *json)
{
    struct store_note n = {.kind = STORE_NOTE_EVENT, .user = user, .seq = seq};
    n.data = json ? evdata_new("message", json, strlen(json)) : NULL;
    hub_notes(app.hub, &n, 1);
    evdata_unref(n.data);
}

START_TEST(test_holes_and_order)
{
    /* Notes out of order (PostgreSQL: one process's commits are told from
     * several threads) and without data (another host's event too large
     * for NOTIFY): the connection still gets 1..4 once each, in order. */
    struct peer *p = park("fay", TRANSPORT_SSE, 0, 0);

    expect(p, HEAD);
    store_set_listener(app.store, NULL, NULL); /* the test tells the hub */
    send_msg("alice", "fay", "one");
    send_msg("alice", "fay", "two");
    send_msg("alice", "fay", "three");
    send_msg("alice", "fay", "four");
    note("fay", 2, NULL);                  /* a hole first: read */
    note("fay", 4, "{\"body\":\"four\"}"); /* ahead: a hole at 3 */
    note("fay", 3, "{\"body\":\"three\"}");
    note("fay", 1, "{\"body\":\"one\"}"); /* late: older than the tail */
    expect_ids(p, 1, 4);
    store_set_listener(app.store, hub_notes, app.hub);
    peer_close(p);
}
END_TEST

START_TEST(test_dirty_kill)
{
    /* connections closed by "lighttpd" while their user's events are on
     * the way: the others receive everything, nothing leaks */
    struct peer *p[10];

    for (int i = 0; i < 10; i++)
        p[i] = park("gus", TRANSPORT_SSE, 0, 0);
    for (int i = 0; i < 10; i++)
        expect(p[i], HEAD);
    wait_held(TRANSPORT_SSE, 10);
    send_msg("alice", "gus", "one");
    for (int i = 0; i < 10; i += 2) {
        close(p[i]->fd);
        p[i]->fd = -1;
    }
    send_msg("alice", "gus", "two");
    send_msg("alice", "gus", "three");
    for (int i = 1; i < 10; i += 2)
        expect_ids(p[i], 1, 3);
    wait_held(TRANSPORT_SSE, 5);
    for (int i = 0; i < 10; i++)
        peer_close(p[i]);
    wait_held(TRANSPORT_SSE, 0);
}
END_TEST

START_TEST(test_slow_reader_catches_up)
{
    /* a stream whose client does not read: the hub stops writing once
     * half of stream_unsent_max is pending, counts what arrives for it
     * meanwhile, and cuts it off past stream_unsent_max (API.md
     * "Operations", issue 13 finding 3). The events stay in the store: the
     * client's next stream gets every one, once, in order - the ones that
     * fell out of the tail by reads. */
    struct peer *p = park("hal", TRANSPORT_SSE, 0, 0), *q;
    char *body = xmalloc(LIMIT_BODY_DEFAULT + 1);
    unsigned long reads;

    memset(body, 'x', LIMIT_BODY_DEFAULT);
    body[LIMIT_BODY_DEFAULT] = '\0';
    expect(p, HEAD);
    for (int i = 0; i < 150; i++) /* 2.4 MB, far past the socket buffers */
        send_msg("alice", "hal", body);
    wait_held(TRANSPORT_SSE, 0); /* cut off, though its client never hung up */
    peer_close(p);
    reads = metrics_catchup_reads();
    q = park("hal", TRANSPORT_SSE, 0, 0);
    expect(q, HEAD);
    expect_ids(q, 1, 150);
    ck_assert_uint_gt(metrics_catchup_reads(), reads); /* behind the tail: read */
    ck_assert_int_eq(metrics_held(TRANSPORT_SSE), 1);
    free(body);
    peer_close(q);
}
END_TEST

START_TEST(test_ephemeral_between_polls)
{
    struct peer *s, *p;
    struct store_note n = {.kind = STORE_NOTE_EPHEMERAL,
                           .user = "ivy",
                           .json = "{\"type\":\"typing\",\"data\":{\"user\":\"x\"}}"};

    /* a live SSE stream gets it as an event without id: */
    s = park("ivy", TRANSPORT_SSE, 0, 0);
    expect(s, HEAD);
    hub_notes(app.hub, &n, 1);
    expect(s, "event: typing\ndata: {\"type\":\"typing\",\"data\":{\"user\":\"x\"}}\n\n");
    peer_close(s);
    /* a long-poll: answered with it; a second one sent between two polls
     * waits for the next poll */
    p = park("ivy", TRANSPORT_POLL, 0, 10);
    expect(p, HEAD);
    hub_notes(app.hub, &n, 1);
    expect(p, "{\"events\":[{\"type\":\"typing\"");
    expect_end(p);
    peer_close(p);
    hub_notes(app.hub, &n, 1);
    usleep(50000);
    p = park("ivy", TRANSPORT_POLL, 0, 10);
    expect(p, "{\"events\":[{\"type\":\"typing\"");
    expect_end(p);
    peer_close(p);
}
END_TEST

START_TEST(test_drain)
{
    struct peer *s = park("jo", TRANSPORT_SSE, 0, 0);
    struct peer *p = park("kim", TRANSPORT_POLL, 0, 30);

    expect(s, HEAD);
    expect(p, HEAD);
    hub_request_drain(app.hub);
    expect(s, "event: reconnect\ndata: {\"reason\":\"draining\"}");
    expect_end(s);
    expect(p, "{\"events\":[],\"next\":0}");
    expect_end(p);
    hub_wait_drained(app.hub);
    peer_close(s);
    peer_close(p);
    /* parked while draining: the 503 answer, nothing else */
    s = park("lou", TRANSPORT_SSE, 0, 0);
    expect(s, UNAVAIL);
    expect_end(s);
    ck_assert(!body_has(s, HEAD));
    peer_close(s);
}
END_TEST

static Suite *hub_suite(void)
{
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("hub");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sse_head_then_live);
    tcase_add_test(tc, test_poll_backlog_then_memory);
    tcase_add_test(tc, test_since_past_head_is_clamped);
    tcase_add_test(tc, test_holes_and_order);
    tcase_add_test(tc, test_dirty_kill);
    tcase_add_test(tc, test_slow_reader_catches_up);
    tcase_add_test(tc, test_ephemeral_between_polls);
    tcase_add_test(tc, test_drain);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return unit_run(hub_suite());
}
