/*
 * app.h - what every part of larkd shares: configuration, verifier, store,
 * hub, rate limiter and the draining flag.
 *
 * Built once by main.c before any thread starts; afterwards only `draining`
 * and `media_uploads` change (atomically), so every thread may read the
 * rest without locks.
 * cfg is the configuration larkd started with and never changes; what a
 * SIGHUP may change lives behind the verifier (auth_reload), the rate
 * limiters (ratelimit_set) and live (fcgi/live.h), each safe to change
 * under running threads (fcgi/reload.h).
 */
#ifndef LARK_APP_H
#define LARK_APP_H

#include "core/config.h"

#include <stdatomic.h>

struct auth;
struct blob;
struct store;
struct hub;
struct media_sweep;
struct ratelimit;
struct live;
struct reload;

struct app {
    struct config cfg;
    struct auth *auth;
    struct store *store;
    struct hub *hub;
    struct ratelimit *rl;        /* sends */
    struct ratelimit *rl_typing; /* typing notices */
    struct ratelimit *rl_media;  /* uploads */
    struct blob *blob;           /* media storage */
    struct media_sweep *sweep;   /* media retention (not in CGI mode) */
    atomic_int media_uploads;    /* uploads being received now (attach.h) */
    struct live *live;           /* cors_origins, metrics_allow as reloaded */
    struct reload *reload;       /* SIGHUP's thread; NULL in CGI mode and --migrate */
    atomic_int draining;         /* 1 after SIGTERM: new requests get 503 */
    int cgi;                     /* run as a plain CGI program: one request, no hub */
};

#endif
