/*
 * hub.h - the one event-loop thread that owns every held connection.
 *
 * Why a hub (DESIGN.md "Process model"): lighttpd opens one FastCGI
 * connection per client request, so 10,000 waiting clients are 10,000
 * backend sockets. A thread each does not scale. Instead a worker answers
 * what it can at once, and hands a long-poll or SSE request that must wait
 * to the hub: just its socket, its FastCGI request id, its user and its
 * inbox cursor (about 150 bytes; libfcgi's own request object, ~10.8 KiB,
 * is freed). The hub then:
 *   - watches each socket for hang-up (EPOLLRDHUP: lighttpd closes the
 *     backend socket when the client leaves) and frees it at once;
 *   - is woken (eventfd) after each commit that appends inbox events, reads
 *     the new events from the store and writes them as FastCGI records
 *     (fcgirec.h) - SSE frames, or a long-poll's JSON answer;
 *   - runs one timer per connection: SSE ping events, the
 *     long-poll deadline and the whitespace trickle that lets lighttpd
 *     notice a vanished long-poll client;
 *   - owns SIGTERM/SIGINT (signalfd) and drains: held long-polls are
 *     answered at once, SSE streams get "event: reconnect" and end.
 *
 * Writes never block the loop: sockets are non-blocking, and what does not
 * fit is kept per connection (bounded; a consumer that falls further
 * behind is dropped and resumes from its seq on reconnect).
 *
 * Threads: hub_park and hub_wake may be called from any thread; they queue
 * and poke the eventfd. Everything else runs in the hub thread, which is
 * the only one that touches a held connection.
 */
#ifndef LARK_HUB_H
#define LARK_HUB_H

#include "core/store.h"
#include "fcgi/metrics.h"

#include <stdint.h>

struct app;
struct heldcap_slot;
struct hub;
struct lark_err;

/*
 * A request handed to the hub. Nothing of its answer is written yet: the
 * hub writes head (status 200, headers, the first body bytes) once it
 * knows it can serve the stream - at once when the user's state is in
 * memory, else after the catch-up read - or unavail (a whole 503 answer)
 * if that read fails or the server drains first (http.h,
 * reply_render_stream).
 */
struct hub_park {
    enum transport kind; /* TRANSPORT_SSE or TRANSPORT_POLL */
    int fd;              /* FastCGI connection; owned by the hub from now on */
    uint16_t request_id; /* FastCGI request id on that connection */
    const char *user;    /* copied */
    uint64_t cursor;     /* the client has every event up to this seq */
    unsigned limit;      /* poll: most events in the answer */
    int timeout_s;       /* poll: answer with no events after this */
    char *head;          /* owned by the hub from now on; head_len bytes */
    size_t head_len;
    char *unavail; /* owned by the hub from now on; unavail_len bytes */
    size_t unavail_len;
    struct heldcap_slot *slot; /* of app->heldcap (heldcap.h), or NULL: the hub's to give back */
};

/*
 * Create the hub: epoll, eventfd, and a signalfd for SIGTERM and SIGINT,
 * which the caller must already have blocked in every thread. Returns 0 or
 * LARK_EINTERNAL. Caller frees with hub_free after hub_stop.
 */
int hub_new(struct app *app, struct hub **out, struct lark_err *err);

/* Open the hub's store connection and start its thread. */
int hub_start(struct hub *h, struct lark_err *err);

/* Hand a waiting request to the hub (any thread). Never fails: if the hub
 * is draining, the request is answered at once. */
void hub_park(struct hub *h, const struct hub_park *p);

/* store_note_fn: inboxes advanced, ephemeral events, presence changes
 * (any thread). */
void hub_notes(void *hub, const struct store_note *notes, size_t n);

/*
 * The watcher's presence viewport (API.md "POST /v1/presence/watch"):
 * replaces its previous list; presence events for these users go to the
 * watcher's live connections until the next call or its last connection
 * closes. Strings are copied. Any thread.
 */
void hub_watch(struct hub *h, const char *watcher, const char *const *users, size_t n);

/*
 * Block until a stop signal arrived and the drain grace period
 * (cfg.drain_grace_ms) has passed. Called by main, which then stops the
 * workers and calls hub_stop.
 */
void hub_wait_drained(struct hub *h);

/* Start draining as SIGTERM would (for tests and for main on fatal errors). */
void hub_request_drain(struct hub *h);

/* Stop the loop, close every connection, join the thread. */
void hub_stop(struct hub *h);

void hub_free(struct hub *h);

#endif
