/*
 * cgi_int.h - what the CGI waiter's two files share (not for handlers,
 * which see hold.h): the state of the one held request of a CGI process
 * (cgi_wait.c runs its loop) and the table of functions by which each
 * transport writes it (cgi_stream.c: SSE and long-poll), the shape of the
 * hub's struct hub_transport.
 */
#ifndef LARK_CGI_INT_H
#define LARK_CGI_INT_H

#include "core/store.h"
#include "fcgi/hold.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct req;
struct cgi_transport;

struct cgi_wait {
    struct req *r;                  /* the request: app, user, store connection */
    const struct cgi_transport *tr; /* SSE or long-poll */
    uint64_t cursor;                /* the client has every event up to this seq */
    unsigned limit;                 /* poll: most events in the answer */
    int64_t deadline_ms;            /* monotonic: the poll's timeout, the SSE window's end */
    int64_t tick_ms;                /* monotonic: the next trickle (poll) or ping (SSE) */
    int64_t touch_ms;               /* monotonic: the next presence touch */
    int ended;                      /* answered, or the client is gone: stop */
    /* ephemeral envelopes for the user (compact JSON, owned), from the
     * store's listener, which may run on the writer's thread */
    pthread_mutex_t mu;
    char **eph;
    size_t neph;
};

/*
 * How a transport writes (cgi_stream.c). Each returns 0 to go on, or 1
 * once the request is over - answered (a long-poll), or its client gone;
 * w->ended is then set.
 */
struct cgi_transport {
    enum transport kind;
    /* Stored events evs[0..n): the first right after w->cursor. Moves
     * w->cursor past what it wrote. */
    int (*deliver)(struct cgi_wait *w, const struct store_event *evs, size_t n);
    /* Ephemeral envelopes json[0..n) (borrowed). */
    int (*ephemeral)(struct cgi_wait *w, char *const *json, size_t n);
    /* The timer (trickle or ping); tick_every is its period (ms). */
    int (*tick)(struct cgi_wait *w);
    int64_t (*tick_every)(const struct cgi_wait *w);
    /* The deadline passed: write the last bytes (an empty answer, or the
     * retry: that brings an EventSource back). */
    void (*deadline)(struct cgi_wait *w);
    /* The store failed while waiting: end as the hub would. */
    void (*fail)(struct cgi_wait *w);
};

extern const struct cgi_transport cgi_sse, cgi_poll;

/* Stop writing to a client who left. */
#define CGI_WRITE_TIMEOUT_MS 10000

/*
 * Write len bytes to the client (stdout, which cgi_wait.c makes
 * non-blocking once the head is out), waiting at most
 * CGI_WRITE_TIMEOUT_MS for the web server to read. 0, or -1 if the client
 * is gone (the write failed or timed out): w->ended is then set.
 */
int cgi_write(struct cgi_wait *w, const char *data, size_t len);

#endif
