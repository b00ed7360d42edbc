/*
 * live.h - the HTTP settings larkd may change while it runs (SIGHUP).
 *
 * Why a module: struct app's configuration is read by every thread without
 * locks, which is only safe because it never changes. The few settings a
 * reload may change (fcgi/reload.h) are kept here instead, behind a
 * read-write lock, and read through questions rather than pointers, so no
 * thread ever holds a string that a reload frees.
 *
 * Any thread may call every function; live_update takes the write lock for
 * the time of a few string copies.
 */
#ifndef LARK_LIVE_H
#define LARK_LIVE_H

struct config;
struct live;

/* The settings of cfg (cors_origins, metrics_allow). Caller frees. */
struct live *live_new(const struct config *cfg);
void live_free(struct live *l);

/* Put cfg's values in force for every later question. */
void live_update(struct live *l, const struct config *cfg);

/* What an Origin is allowed (API.md "Authentication", CORS). */
enum live_cors {
    LIVE_CORS_NONE,        /* no CORS headers: not listed, or "null" */
    LIVE_CORS_ANY,         /* "*" is listed: Allow-Origin *, never credentials */
    LIVE_CORS_CREDENTIALS, /* listed by name: that origin, with credentials */
};

/*
 * What origin may do cross-origin. An origin listed by name wins over "*"
 * (it gets credentials); "null" (sandboxed frames, file: pages, redirects)
 * gets nothing even when listed, since any page can make itself "null".
 */
enum live_cors live_cors(struct live *l, const char *origin);

/* 1 if a client at addr (REMOTE_ADDR) may read /metrics (metrics_allow). */
int live_metrics_allowed(struct live *l, const char *addr);

#endif
