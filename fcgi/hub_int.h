/*
 * hub_int.h - the hub's internals, shared by hub.c (held connections,
 * delivery) and hub_presence.c (presence and watchers). Only the hub
 * thread touches anything here except the fields marked "guarded by qmu".
 */
#ifndef LARK_HUB_INT_H
#define LARK_HUB_INT_H

#include "fcgi/hub.h"

#include "core/buf.h"
#include "core/heap.h"
#include "core/hmap.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

enum conn_state {
    CONN_AUTH,    /* WebSocket: connected, waiting for its auth line */
    CONN_OPEN,    /* receives events */
    CONN_ENDING,  /* the end is queued behind pending output */
    CONN_CLOSING, /* write side shut down, waiting for lighttpd to close */
    CONN_DEAD,    /* unlinked; freed at the end of the loop iteration */
};

/* conn->events_on bits: what the socket is registered for besides RDHUP */
enum conn_events { CONN_EV_OUT = 1 << 0, CONN_EV_IN = 1 << 1 };

struct ws_session;

struct hub_user;

struct hub_conn {
    struct heap_node timer;
    struct hub_user *user;          /* NULL once it stops receiving events */
    struct hub_conn *unext, *uprev; /* the user's connections */
    struct hub_conn *dnext;         /* dirty list */
    struct hub_conn *gnext;         /* graveyard: killed, freed at the end of the loop turn */
    struct buf *out;                /* bytes not yet written, NULL if none */
    struct ws_session *ws;          /* WebSocket sessions only (wsbridge.c) */
    uint64_t cursor;                /* last seq written (or the client had) */
    int64_t deadline_ms;            /* poll: answer empty then (monotonic) */
    int64_t wake_ns;                /* commit time of the oldest unsent wake */
    int fd;
    uint16_t req_id;
    uint16_t limit;    /* poll: most events per answer */
    uint8_t kind;      /* enum transport */
    uint8_t state;     /* enum conn_state */
    uint8_t dirty;     /* on the dirty list */
    uint8_t events_on; /* enum conn_events registered with epoll */
};

struct hub_user {
    struct hmap_node node;
    struct hub_conn *conns;
    char id[];
};

/* A queued note from the store (from any thread); strings owned. */
struct hub_note_item {
    enum store_note_kind kind;
    char *user;
    uint64_t seq;
    int64_t commit_ns;
    char *json; /* EPHEMERAL */
    int online;
    int64_t last_seen;
};

/* A queued watch list (from a worker). */
struct hub_watch_item {
    char *watcher;
    char **users;
    size_t n;
};

struct hub_park_item {
    struct hub_park p;
    char *user;
};

struct hub {
    struct app *app;
    struct store_conn *db;
    pthread_t thread;
    int started;
    int ep, efd, sfd;

    /* shared with other threads, guarded by qmu */
    pthread_mutex_t qmu;
    pthread_cond_t drained_cv;
    struct hub_park_item *parks;
    size_t nparks, capparks;
    struct hub_note_item *notes;
    size_t nnotes, capnotes;
    struct hub_watch_item *watches;
    size_t nwatches, capwatches;
    int poked;       /* eventfd already written since the last drain of the queue */
    int stop;        /* hub_stop asked the loop to end */
    int drain_asked; /* hub_request_drain was called */
    int drained;     /* grace period over; main may stop the workers */

    /* hub thread only */
    struct hmap users;
    struct heap timers;
    struct hub_conn *dirty;
    struct hub_conn *graveyard;
    struct buf scratch;
    int draining;
    int64_t drain_until_ms;
    /* presence (hub_presence.c) */
    struct hmap watchers; /* watcher id -> struct hub_watcher */
    struct hmap watched;  /* watched id -> struct hub_watched */
    char **appeared;      /* users whose first connection arrived: touch them */
    size_t nappeared, capappeared;
    int64_t next_touch_ms;    /* wall clock: touch every connected user */
    int64_t next_expire_ms;   /* wall clock: expire users not seen for ttl */
    int64_t presence_wait_ms; /* until hub_presence_tick is next due */
    /* long-poll gaps (hub_gap.c) */
    struct hmap gaps;     /* user id -> struct hub_gap */
    int64_t gap_sweep_ms; /* mono ms: next sweep of expired gaps */
    /* WebSocket bridge (wsbridge.c) */
    int ws_fd;               /* listening socket for mod_wstunnel, -1 if none */
    char *ws_path;           /* its path, owned */
    struct stat ws_path_st;  /* its inode, to remove only our own at exit */
    struct hmap ws_sessions; /* session id -> struct ws_session */
    uint64_t ws_next_id;
    int64_t ws_listen_retry; /* mono ms: re-arm the listener after EMFILE, 0 if armed */
    struct ws_pool *ws_pool;
    /* threads that run WebSocket commands */ /* the store's cross-process notes (PostgreSQL
                                                 LISTEN), if any */
    int store_fd;                             /* registered descriptor, -1 if none */
    int64_t store_due_ms;                     /* mono ms: call store_listener_poll again */
};

/* ---- hub_gap.c: ephemeral events kept between a user's long-polls ---- */

/* A poll of user's was answered: keep its ephemeral events for a while. */
void hub_gap_open(struct hub *h, const char *user);
/* Keep an ephemeral event (envelope text, copied) if user is in a gap. */
void hub_gap_keep(struct hub *h, const char *user, const char *json);
/* End user's gap: its kept events (new array, the caller's), or NULL. */
json_t *hub_gap_take(struct hub *h, const char *user);
/* Free expired gaps (cheap unless a sweep is due). */
void hub_gap_sweep(struct hub *h);
void hub_gap_release(struct hub *h);

/* ---- hub.c ---- */

/* Queue bytes on c's socket and write what it takes. -1 if c died. */
int conn_send(struct hub *h, struct hub_conn *c, const char *data, size_t len);
/* Register c for what it needs now (EPOLLIN while a WebSocket session can
 * take input, EPOLLOUT while output is pending). */
void conn_update_events(struct hub *h, struct hub_conn *c);
/* No more events for c: end its response (FastCGI END_REQUEST, or close
 * the WebSocket) once pending output is out. */
void conn_end(struct hub *h, struct hub_conn *c);
/* Close c now (hangup: the client went away); freed after this iteration. */
void conn_kill(struct hub *h, struct hub_conn *c, int hangup);
/* Have c read and send what its user's inbox holds after its cursor. */
void conn_mark_dirty(struct hub *h, struct hub_conn *c);
/* Attach c to user (it receives that user's events from now on). */
void conn_attach_user(struct hub *h, struct hub_conn *c, const char *user);
/* Poke the hub's eventfd (caller holds qmu). */
void hub_poke_locked(struct hub *h);

/* ---- wsbridge.c ---- */

/* Listen on path for mod_wstunnel; 0 or LARK_EINTERNAL. */
int ws_listen_open(struct hub *h, const char *path, struct lark_err *err);
void ws_listen_close(struct hub *h);
/* Start / stop the command threads (each opens its own store connection). */
int ws_pool_start(struct hub *h, int threads, struct lark_err *err);
void ws_pool_stop(struct hub *h);
/* epoll tag of the listening socket */
extern char hub_tag_ws_listen;
/* 1 if session c may read now (no command pending, buffer not full). */
int ws_wants_input(const struct hub_conn *c);
/* Periodic: re-arm the listener after an EMFILE pause. */
void ws_tick(struct hub *h);
/* The listening socket is readable: accept every waiting session. */
void ws_accept(struct hub *h);
/* c (a session) is readable. */
void ws_on_readable(struct hub *h, struct hub_conn *c);
/* Take the command threads' results (hub thread). */
void ws_take_results(struct hub *h);
/* Write events (an array of envelopes) as lines; returns how many were
 * written, *last the seq of the last. -1 if c died. */
long ws_write_events(struct hub *h, struct hub_conn *c, json_t *events, uint64_t *last);
/* Write one ephemeral event (parsed) as a line. */
void ws_write_event(struct hub *h, struct hub_conn *c, json_t *ev);
/* Tell the session to reconnect (drain, auth timeout) and end it. */
void ws_end(struct hub *h, struct hub_conn *c, const char *code, const char *message);
/* Forget c's session (c is being killed). */
void ws_session_drop(struct hub *h, struct hub_conn *c);

/* The user record of id, created if create and missing; NULL otherwise. */
struct hub_user *hub_user_find(struct hub *h, const char *id, int create);

/* Deliver an ephemeral event (envelope text, no seq) to user's live
 * connections: an SSE frame without id:, or a long-poll's answer. */
void hub_deliver_ephemeral(struct hub *h, const char *user, const char *json);

/* ---- hub_presence.c ---- */

void hub_presence_init(struct hub *h);
void hub_presence_release(struct hub *h);

/* A user's first connection arrived / its last one left. */
void hub_presence_user_appeared(struct hub *h, const char *user);
void hub_presence_user_gone(struct hub *h, const char *user);

/* A watch list from a worker: replace watcher's list (items owned). */
void hub_presence_watch(struct hub *h, struct hub_watch_item *it);

/* A presence note: tell the watchers of user. */
void hub_presence_changed(struct hub *h, const char *user, int online, int64_t last_seen);

/* Periodic work (touch connected users, expire the silent); called every
 * loop iteration, does something only when due. Returns ms until next due. */
int64_t hub_presence_tick(struct hub *h);

#endif
