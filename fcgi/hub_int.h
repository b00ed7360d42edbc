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

enum conn_state { CONN_OPEN, CONN_ENDING, CONN_CLOSING, CONN_DEAD };

struct hub_user;

struct hub_conn {
    struct heap_node timer;
    struct hub_user *user;          /* NULL once it stops receiving events */
    struct hub_conn *unext, *uprev; /* the user's connections */
    struct hub_conn *dnext;         /* dirty list, or graveyard */
    struct buf *out;                /* bytes not yet written, NULL if none */
    uint64_t cursor;                /* last seq written (or the client had) */
    int64_t deadline_ms;            /* poll: answer empty then (monotonic) */
    int64_t wake_ns;                /* commit time of the oldest unsent wake */
    int fd;
    uint16_t req_id;
    uint16_t limit;   /* poll: most events per answer */
    uint8_t kind;     /* enum transport */
    uint8_t state;    /* enum conn_state */
    uint8_t dirty;    /* on the dirty list */
    uint8_t epollout; /* EPOLLOUT registered */
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
};

/* ---- hub.c ---- */

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
