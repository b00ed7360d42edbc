/*
 * push.h - what lark-push's modules share: one request in flight.
 *
 * A struct push_req is one claimed job on its way to a provider: the job
 * as the store returned it (owned), the HTTP transfer (first member, so
 * that net_next_done's transfer leads back to its request), and a link for
 * the provider's waiting list (FCM requests wait for an access token).
 * Created and freed by queue.c; fcm.c and apns.c fill the transfer.
 * Single-threaded, like all of lark-push.
 */
#ifndef LARK_PUSH_PUSH_H
#define LARK_PUSH_PUSH_H

#include "core/pushstat.h"
#include "core/store.h"
#include "push/net.h"

struct push_req {
    struct net_xfer x;              /* first: (struct push_req *)x */
    struct store_push_job *job;     /* owned: one job (store_push_jobs_free(job, 1)) */
    enum pushstat_provider prov;    /* which provider sends it */
    char fail[96];                  /* set when it could not be sent at all */
    struct push_req *next;          /* provider's waiting list */
    struct push_req *qprev, *qnext; /* queue.c's list of requests in flight */
};

/* Settings both providers use, from the configuration. */
struct push_opts {
    int preview; /* push_preview */
    int ttl;     /* push_ttl, seconds */
};

#endif
