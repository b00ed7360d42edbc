/*
 * hub_int.h - the hub's internals, shared by its files:
 *
 *   hub.c          the loop: epoll, timers, signals, drain, the store's
 *                  cross-process listener, notes from the store
 *   hub_queue.c    work other threads hand to the hub thread
 *   hub_pool.c     threads with a store connection, for work that may
 *                  block (catch-up reads, WebSocket commands)
 *   hub_conn.c     a held connection: output queue, end, kill, dirty list
 *   hub_user.c     users: their connections, the tail of recent events,
 *                  lingering between long-polls
 *   hub_catchup.c  bringing a connection up to its user's head: from the
 *                  tail, or by a read on the pool
 *   hub_stream.c   the SSE and long-poll transports
 *   wsbridge.c     the WebSocket transport (mod_wstunnel)
 *   hub_presence.c presence and watchers
 *
 * hub.c knows no transport: each held connection carries a table of
 * functions (struct hub_transport), each descriptor in epoll the function
 * that handles it (struct hub_io), each timer the function it runs (struct
 * hub_timer) - redis's ae.c shape. Only the hub thread touches anything
 * here except the fields marked "guarded by qmu".
 */
#ifndef LARK_HUB_INT_H
#define LARK_HUB_INT_H

#include "fcgi/hub.h"

#include "core/buf.h"
#include "core/heap.h"
#include "core/hmap.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

struct hub;
struct hub_conn;
struct hub_user;
struct hub_job;
struct hub_pool;
struct hub_head;
struct ws_bridge;
struct ws_session;

/* A descriptor in the hub's epoll set: data.ptr points at one of these. */
struct hub_io {
    void (*fn)(struct hub *h, struct hub_io *io, uint32_t events);
};

/* A timer in the hub's heap (heap.key: due, monotonic ms). */
struct hub_timer {
    struct heap_node node;
    void (*fn)(struct hub *h, struct hub_timer *t, int64_t now);
};

/* hub_timer.c: arm t for due (monotonic ms) / disarm it / run the due ones. */
void hub_timer_set(struct hub *h, struct hub_timer *t, int64_t due);
void hub_timer_cancel(struct hub *h, struct hub_timer *t);
void hub_run_timers(struct hub *h);

/* An ephemeral event on its way to live connections. */
struct hub_ephemeral {
    const char *type; /* "typing", "presence" */
    const char *json; /* the envelope, compact JSON */
    size_t len;
    json_t *ev; /* the same, parsed (WebSocket writes it ASCII-only) */
};

/*
 * How a held connection receives: one table per transport, each in its own
 * file. Every function runs on the hub thread with c OPEN unless said.
 */
struct hub_transport {
    enum transport kind;
    /* 1: its client is away between two requests (long-poll), so the
     * user's ephemeral events are kept for its next one */
    int between_requests;
    /* Write stored events evs[0..n) (contiguous seqs, the first right
     * after c->cursor) and move c->cursor past what was written. Returns
     * how many were taken (at least one), or -1 if c died or ended. */
    long (*deliver)(struct hub *h, struct hub_conn *c, const struct store_event *evs, size_t n);
    /* An ephemeral event for c. */
    void (*ephemeral)(struct hub *h, struct hub_conn *c, const struct hub_ephemeral *e);
    /* The store could not serve c's catch-up: tell the client to come
     * back (or answer what there is), and end c. */
    void (*fail)(struct hub *h, struct hub_conn *c);
    /* The server is draining: answer, or tell the client to reconnect
     * elsewhere, and end c. Also for AUTH connections. */
    void (*drain)(struct hub *h, struct hub_conn *c);
    /* c's first catch-up succeeded (its user's state is known): begin
     * its response and arm its timer. Called again later: does nothing.
     * May be NULL. */
    void (*open)(struct hub *h, struct hub_conn *c);
    /* (Re)arm c's timer after it opened or wrote; now is monotonic ms.
     * NULL: no timer once open (WebSocket: lighttpd pings the client). */
    void (*schedule)(struct hub *h, struct hub_conn *c, int64_t now);
    /* c's timer fired while OPEN or AUTH. */
    void (*timer)(struct hub *h, struct hub_conn *c, int64_t now);
    /* c's socket is readable (NULL: this transport never reads). */
    void (*readable)(struct hub *h, struct hub_conn *c);
    /* 1 while c takes input (NULL: never). */
    int (*wants_input)(const struct hub_conn *c);
    /* The response is complete: write what ends it (FastCGI END_REQUEST;
     * nothing for a WebSocket). 0, or -1 if c died. Any state. */
    int (*finish)(struct hub *h, struct hub_conn *c);
    /* Free what the transport keeps for c (c is being killed). May be NULL. */
    void (*drop)(struct hub *h, struct hub_conn *c);
};

extern const struct hub_transport hub_sse, hub_poll, hub_ws;

enum conn_state {
    CONN_AUTH,    /* WebSocket: connected, waiting for its auth line */
    CONN_OPEN,    /* receives events */
    CONN_ENDING,  /* the end is queued behind pending output */
    CONN_CLOSING, /* write side shut down, waiting for lighttpd to close */
    CONN_DEAD,    /* unlinked; freed at the end of the loop iteration */
};

/* conn->events_on bits: what the socket is registered for besides RDHUP */
enum conn_events { CONN_EV_OUT = 1 << 0, CONN_EV_IN = 1 << 1 };

struct hub_conn {
    struct hub_io io;               /* its socket in epoll */
    struct hub_timer timer;         /* keep-alive, deadline, auth or close wait */
    const struct hub_transport *tr; /* how it receives */
    struct hub_user *user;          /* NULL until attached, and once it stops receiving */
    struct hub_conn *unext, *uprev; /* the user's connections */
    struct hub_conn *dnext;         /* dirty list */
    struct hub_conn *gnext;         /* graveyard: killed, freed at the end of the loop turn */
    struct buf *out;                /* bytes not yet written, NULL if none */
    struct ws_session *ws;          /* WebSocket sessions only (wsbridge.c) */
    struct hub_head *head;          /* FastCGI streams: the answer's start, until written */
    uint64_t cursor;                /* last seq written (or the client had) */
    int64_t deadline_ms;            /* poll: answer empty then (monotonic) */
    int64_t wake_ns;                /* commit time of the oldest event not yet written */
    int fd;
    uint16_t req_id;
    uint16_t limit;    /* poll: most events per answer */
    uint8_t state;     /* enum conn_state */
    uint8_t dirty;     /* on the dirty list */
    uint8_t want_read; /* waits for its user's catch-up read */
    uint8_t events_on; /* enum conn_events registered with epoll */
};

/* ---- hub_queue.c: work for the hub thread, from any thread ------------- */

/* Runs on the hub thread and owns arg. It also runs while the hub closes
 * (h->closing): then it only cleans up. */
typedef void (*hub_job_fn)(struct hub *h, void *arg);

/* Queue fn(arg) for the hub thread and wake it. Any thread; never fails. */
void hub_post(struct hub *h, hub_job_fn fn, void *arg);
/* Run what is queued, in the order it was posted. Hub thread. */
void hub_queue_run(struct hub *h);

/* ---- hub_pool.c: threads with a store connection -------------------------- */

/* Runs on a pool thread with that thread's connection (NULL when it could
 * not be opened: fail the job); owns arg. */
typedef void (*hub_pool_fn)(struct app *app, struct store_conn *db, void *arg);

/* Start n threads (each opens its own store connection), named "lark-" +
 * thread_name (at most 10 characters) for ps and perf. Any thread. */
struct hub_pool *hub_pool_new(struct app *app, int n, const char *name, const char *thread_name,
                              struct lark_err *err);
/* Queue fn(arg) for the next free thread. Any thread. */
void hub_pool_submit(struct hub_pool *p, hub_pool_fn fn, void *arg);
/* Run what is queued, stop the threads and free. Accepts NULL. */
void hub_pool_free(struct hub_pool *p);

/* ---- hub_conn.c ---------------------------------------------------------- */

/* A new connection on fd (non-blocking from now on), in epoll for hang-up
 * (and input when tr reads). NULL if epoll refused it (fd is closed). */
struct hub_conn *conn_new(struct hub *h, int fd, const struct hub_transport *tr,
                          enum conn_state state);
/* Queue bytes on c's socket and write what it takes. -1 if c died. */
int conn_send(struct hub *h, struct hub_conn *c, const char *data, size_t len);
/* Send body bytes as FastCGI STDOUT records. -1 if c died. */
int conn_write_fcgi(struct hub *h, struct hub_conn *c, const char *data, size_t len);
/* Bytes queued and not yet written. */
size_t conn_pending(const struct hub_conn *c);
/* Register c for what it needs now (EPOLLIN while its transport takes
 * input, EPOLLOUT while output is pending). */
void conn_update_events(struct hub *h, struct hub_conn *c);
/* No more events for c: finish its response once pending output is out. */
void conn_end(struct hub *h, struct hub_conn *c);
/* Close c now (hangup: the client went away); freed after this iteration. */
void conn_kill(struct hub *h, struct hub_conn *c, int hangup);
/* Have c catch up at the end of this loop turn (hub_catchup.c). */
void conn_mark_dirty(struct hub *h, struct hub_conn *c);
/* Free the connections killed this turn. */
void conn_free_graveyard(struct hub *h);
/* Kill every connection and drop every timer (the loop has ended). */
void conn_close_all(struct hub *h);

/* ---- hub_user.c ------------------------------------------------------------ */

/*
 * A user the hub knows: its held connections, and the tail of its most
 * recent stored events, so that a connection just behind is written from
 * memory. A user whose last connection left lingers for LIMIT_HUB_LINGER_MS
 * (a long-poll client between two polls, an EventSource reconnecting): its
 * tail keeps filling and its ephemeral events are kept for its next poll.
 */
struct hub_user;

/* The user record of id, created (and presence told) if create and missing. */
struct hub_user *hub_user_find(struct hub *h, const char *id, int create);
const char *hub_user_id(const struct hub_user *u);
/* Call fn for every user (fn may end or kill its connections; users are
 * freed only by hub_user_sweep). */
void hub_user_each(struct hub *h, void (*fn)(struct hub *h, struct hub_user *u, void *arg),
                   void *arg);
struct hub_conn *hub_user_conns(const struct hub_user *u);
/* Attach c to user (it receives that user's events from now on). */
void hub_user_attach(struct hub *h, struct hub_conn *c, const char *user);
/* Stop delivering to c (it ended or died); the user lingers without
 * connections. hangup: the client left (metrics). */
void hub_user_detach(struct hub *h, struct hub_conn *c, int hangup);

/* The tail. seq N's slot holds its data, or a hole (data not known here:
 * read it). synced: head is the store's head for this user as far as any
 * commit this hub has been told of goes - set by a catch-up read that got
 * everything, and kept by the notes of every commit since. */
int hub_user_synced(const struct hub_user *u);
uint64_t hub_user_head(const struct hub_user *u);
/* Record stored event seq (data may be NULL: a hole). */
void hub_user_put(struct hub *h, struct hub_user *u, uint64_t seq, struct evdata *data);
/* Notes may have been missed (the listener reconnected): the next catch-up
 * of each connection reads. */
void hub_user_unsync(struct hub_user *u);
/* A read got everything up to head (evs: its last events, for the tail). */
void hub_user_synced_at(struct hub_user *u, uint64_t head, const struct store_event *evs, size_t n);
/* Copy up to max events from seq from on, stopping at a hole or the end
 * (borrowed data, valid during this turn). 0 when from is not in the
 * tail or is a hole: read it. */
size_t hub_user_events(const struct hub_user *u, uint64_t from, struct store_event *out,
                       size_t max);
/* A catch-up read for u is with the pool. */
int hub_user_reading(const struct hub_user *u);
void hub_user_set_reading(struct hub_user *u, int reading);

/* Deliver an ephemeral event (envelope text) to user's live connections,
 * or keep it for its next poll. */
void hub_deliver_ephemeral(struct hub *h, const char *user, const char *json);
/* Ephemeral events kept for a long-poll client between two polls (API.md:
 * typing and presence); only while one of the user's polls was answered
 * within LIMIT_HUB_LINGER_MS (else nothing is kept). */
void hub_user_keep_ephemeral(struct hub_user *u, const char *json, size_t len);
int hub_user_has_ephemeral(const struct hub_user *u);
/* Take the kept events, or NULL (the caller frees each and the array). */
char **hub_user_take_ephemeral(struct hub_user *u, size_t *n);

/* Free users that lingered long enough (cheap unless a sweep is due). */
void hub_user_sweep(struct hub *h, int64_t now);
/* Free every user (the hub closes). */
void hub_user_release_all(struct hub *h);

/* ---- hub_catchup.c ----------------------------------------------------------- */

/* Bring every dirty connection up to its user's head: from the tail, or by
 * asking the reader pool. */
void hub_run_dirty(struct hub *h);
/* Start / stop the reader pool. */
int hub_catchup_start(struct hub *h, struct lark_err *err);
void hub_catchup_stop(struct hub *h);

/* ---- hub_presence.c --------------------------------------------------------- */

void hub_presence_init(struct hub *h);
void hub_presence_release(struct hub *h);
/* A watch list from a worker: replace watcher's list. */
void hub_presence_watch(struct hub *h, const char *watcher, char **users, size_t n);
/* A presence note: tell the watchers of user. */
void hub_presence_changed(struct hub *h, const char *user, int online, int64_t last_seen);
/* Periodic work (touch connected users, expire the silent); called every
 * loop iteration, does something only when due. Returns ms until next due. */
int64_t hub_presence_tick(struct hub *h);

struct hub {
    struct app *app;
    pthread_t thread;
    int started;
    int ep, efd, sfd;
    struct hub_io io_eventfd, io_signalfd, io_store;

    /* shared with other threads, guarded by qmu */
    pthread_mutex_t qmu;
    pthread_cond_t drained_cv;
    struct hub_job *jobs, *jobs_tail; /* hub_queue.c */
    int poked;                        /* eventfd written since the queue was last taken */
    int stop;                         /* hub_stop asked the loop to end */
    int drained;                      /* grace period over; main may stop the workers */

    /* hub thread only */
    int closing; /* the loop has ended: jobs only clean up */
    struct hmap users;
    struct heap timers;
    struct hub_conn *dirty;
    struct hub_conn *graveyard;
    struct buf scratch;        /* FastCGI records being written */
    struct store_event *evbuf; /* hub_catchup.c: events copied from a tail */
    int draining;
    int64_t drain_until_ms;
    int64_t linger_sweep_ms;       /* mono ms: hub_user_sweep next runs */
    struct hub_pool *readers;      /* hub_catchup.c */
    struct store_inbox_req *reads; /* hub_catchup.c: this turn's reads, not yet submitted */
    char **read_users;             /* their user ids, owned */
    size_t nreads, capreads;
    struct ws_bridge *ws; /* wsbridge.c, NULL without WebSocket */
    /* presence (hub_presence.c) */
    struct hmap watchers; /* watcher id -> struct hub_watcher */
    struct hmap watched;  /* watched id -> struct hub_watched */
    char **appeared;      /* users whose record hub_user.c created: touch them */
    size_t nappeared, capappeared;
    char **gone; /* users whose record hub_user.c freed: end their viewports */
    size_t ngone, capgone;
    int64_t next_touch_ms;    /* wall clock: touch every known user */
    int64_t next_expire_ms;   /* wall clock: expire users not seen for ttl */
    int64_t presence_wait_ms; /* until hub_presence_tick is next due */
    /* the store's cross-process notes (PostgreSQL LISTEN), if any */
    int store_fd;         /* registered descriptor, -1 if none */
    int store_want_write; /* registered for EPOLLOUT (it is connecting) */
    int64_t store_due_ms; /* mono ms: call store_listener_poll again */
};

#endif
