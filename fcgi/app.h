/*
 * app.h - what every part of larkd shares: configuration, verifier, store,
 * hub, rate limiter and the draining flag.
 *
 * Built once by main.c before any thread starts; afterwards only `draining`
 * and `media_uploads` change (atomically) and the ticket key is loaded once
 * (under its mutex), so every thread may read the rest without locks.
 * cfg is the configuration larkd started with and never changes; what a
 * SIGHUP may change lives behind the verifier (auth_reload), the rate
 * quotas (quota_set) and live (fcgi/live.h), each safe to change
 * under running threads (fcgi/reload.h).
 */
#ifndef LARK_APP_H
#define LARK_APP_H

#include "core/config.h"
#include "core/ticket.h"

#include <pthread.h>
#include <stdatomic.h>

struct auth;
struct blob;
struct heldcap;
struct hold_ops;
struct store;
struct hub;
struct media_sweep;
struct quota;
struct live;
struct reload;

struct app {
    struct config cfg;
    struct auth *auth;
    struct store *store;
    struct hub *hub;
    struct quota *quota;         /* per-user write quotas (fcgi/quota.h) */
    struct blob *blob;           /* media storage */
    struct media_sweep *sweep;   /* media retention (not in CGI mode) */
    atomic_int media_uploads;    /* uploads being received now (attach.h) */
    struct live *live;           /* cors_origins, metrics_allow as reloaded */
    const struct hold_ops *hold; /* how SSE and long-polls wait: hub or CGI (hold.h) */
    struct heldcap *heldcap;     /* max_held_per_user across processes (CGI); NULL: none here */
    /* The key tickets are signed with, read from the store by the first
     * request that needs it (h_tickets.c) - not at start, so that larkd
     * runs on a schema without tickets until it is migrated. */
    pthread_mutex_t ticket_mu;                /* guards the two below */
    int ticket_key_loaded;                    /* 1 once ticket_key holds the key */
    unsigned char ticket_key[TICKET_KEY_LEN]; /* (core/ticket.h) */
    struct reload *reload;                    /* SIGHUP's thread; NULL in CGI mode and --migrate */
    atomic_int draining;                      /* 1 after SIGTERM: new requests get 503 */
    int cgi;                                  /* run as a plain CGI program: one request, no hub */
};

#endif
