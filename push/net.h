/*
 * net.h - lark-push's HTTP client: one libcurl multi handle, many
 * transfers, one thread.
 *
 * Why this shape: APNs wants many requests multiplexed as streams of one
 * long-lived HTTP/2 connection, and FCM serves HTTP/2 too. With libcurl's
 * multi interface every request is an easy handle added to one multi
 * handle that runs them all from lark-push's single loop (net_poll), with
 * PIPEWAIT so that a new request waits for the connection being set up
 * instead of opening a second one, and at most NET_HOST_CONNECTIONS
 * connections per host. No thread per request, and no blocking call: the
 * loop also waits on the store's wake-up descriptor and signals
 * (curl_multi_poll's extra descriptors).
 *
 * A transfer (struct net_xfer) is owned by its caller, who embeds it and
 * gets it back from net_next_done; the answer's body is kept up to
 * NET_BODY_MAX bytes (providers answer errors in a few hundred), with the
 * Retry-After and apns-id headers. Every transfer has a total timeout
 * (push_timeout_ms) and a connect timeout. Single-threaded.
 */
#ifndef LARK_PUSH_NET_H
#define LARK_PUSH_NET_H

#include "core/buf.h"

#include <curl/curl.h>
#include <stdint.h>

struct config;
struct lark_err;
struct net;

/* Bytes of an answer's body kept; the rest is read and dropped. */
#define NET_BODY_MAX (64 * 1024)
/* Connections per provider host. PIPEWAIT makes every request a stream
 * of the one open connection (APNs asks for few, long-lived ones: 1,000
 * requests went over one, measured). The other slots are for when a
 * server ends a connection with GOAWAY: new ones open while the old drain.
 * With a limit of 1 or 2, libcurl 7.88 left queued requests waiting 5-20 s
 * (until a timer) once every slot held a draining connection; without a
 * limit it opened hundreds (docs/BENCHMARKS.md, "Push"). */
#define NET_HOST_CONNECTIONS 4
/* Streams curl opens at once on one connection; APNs and FCM allow more,
 * and lark-push never has more than push_inflight requests anyway. */
#define NET_MAX_STREAMS 1000
/* A CA bundle larger than this is refused (the system's is ~200 KiB). */
#define NET_CA_MAX (8 * 1024 * 1024)
/* The connect phase gets at most this much of a request's timeout. */
#define NET_CONNECT_TIMEOUT_MS 10000

enum net_kind { NET_JOB, NET_TOKEN };

struct net_xfer {
    enum net_kind kind;         /* what the owner is (a job, a token fetch) */
    CURL *easy;                 /* NULL when idle */
    struct curl_slist *headers; /* request headers, owned */
    char *payload;              /* request body, owned */
    struct buf body;            /* answer body, at most NET_BODY_MAX */
    char retry_after[64];       /* Retry-After header value, "" if none */
    char apns_id[64];           /* apns-id header value, "" if none */
    long status;                /* HTTP status, 0 if none */
    long http_version;          /* CURL_HTTP_VERSION_* of the answer */
    CURLcode result;            /* transport result */
    int64_t started_us;         /* monotonic, for latency */
    int64_t latency_us;         /* from start to done */
};

/* A client configured from cfg (timeouts, push_ca_file). 0 or LARK_EINVAL. */
int net_new(const struct config *cfg, struct net **out, struct lark_err *err);

/* Abort every transfer still running and free. Accepts NULL. */
void net_free(struct net *n);

/*
 * Start a POST of x->payload (may be NULL: empty body) to url with
 * x->headers, as HTTP/2 over TLS when the server offers it. x must stay
 * put until net_next_done returns it (or net_abort). 0 or LARK_EINTERNAL.
 */
int net_start(struct net *n, struct net_xfer *x, const char *url);

/* Stop x if it runs and free what it holds (headers, payload, body). */
void net_abort(struct net *n, struct net_xfer *x);

/*
 * Run transfers, then wait up to timeout_ms for network activity or for
 * one of the nfds descriptors in fds to become readable (their revents are
 * set). Returns the number of transfers still running.
 */
int net_poll(struct net *n, struct curl_waitfd *fds, unsigned nfds, int timeout_ms);

/* A finished transfer (status, body, result filled; its easy handle is
 * released), or NULL when none is left. */
struct net_xfer *net_next_done(struct net *n);

/* Milliseconds until curl wants to be called again (-1: no opinion). */
long net_timeout_ms(struct net *n);

/* Connections curl opened so far (for the log and the benchmark). */
long net_connects(const struct net *n);

#endif
