/*
 * heldcap_store.c - the held-connection cap kept in the store, for larkd
 * as a CGI program (heldcap.h): one row per held connection
 * (store_held_acquire), which its process deletes when the request ends.
 */
#include "fcgi/heldcap.h"

#include "core/err.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A slot outlives its connection's longest hold by this much before it
 * frees itself: the end of a request that waited out a slow write, its
 * answer and its exit (s). Only a killed process's slot waits this long,
 * and only when the process ran on another host (on the same host a
 * vanished pid frees its slot at once). */
#define HELDCAP_SLOT_MARGIN_S 30
/* Random bytes of a slot id (hex in the table). */
#define HELDCAP_SLOT_BYTES 12

struct heldcap_slot {
    char id[2 * HELDCAP_SLOT_BYTES + 1];
};

struct cap_store {
    struct heldcap base;
    struct store_conn *db; /* borrowed */
    unsigned max;
    char host[256]; /* gethostname(): where this process runs */
};

static int cap_acquire(struct heldcap *base, const char *user, int hold_s,
                       struct heldcap_slot **slot, int *retry_after, struct lark_err *err)
{
    struct cap_store *c = (struct cap_store *)base;
    struct heldcap_slot *s;
    unsigned char rnd[HELDCAP_SLOT_BYTES];
    int64_t now = time_now_ms();
    int rc;

    if (c->max == 0)
        return 0;
    s = xmalloc(sizeof(*s));
    ids_random(rnd, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
    rc =
        store_held_acquire(c->db,
                           &(struct store_held_in){
                               .user = user,
                               .slot = s->id,
                               .host = c->host,
                               .pid = (int64_t)getpid(),
                               .now_ms = now,
                               .expires_ms = now + ((int64_t)hold_s + HELDCAP_SLOT_MARGIN_S) * 1000,
                               .max = c->max,
                           },
                           err);
    if (rc) {
        free(s);
        if (rc == LARK_ETOOMANYCONN)
            *retry_after = HELDCAP_RETRY_AFTER_S;
        return rc;
    }
    *slot = s;
    return 0;
}

static void cap_release(struct heldcap *base, struct heldcap_slot *slot)
{
    struct cap_store *c = (struct cap_store *)base;
    struct lark_err err = {0};

    if (store_held_release(c->db, slot->id, &err) != 0)
        log_warn("held slot %s not released (it frees itself later): %s", slot->id, err.msg);
    free(slot);
}

static void cap_free(struct heldcap *base)
{
    free(base);
}

static const struct heldcap_ops cap_store_ops = {
    .acquire = cap_acquire,
    .release = cap_release,
    .free = cap_free,
};

struct heldcap *heldcap_new_store(struct store_conn *db, unsigned max)
{
    struct cap_store *c = xcalloc(1, sizeof(*c));

    c->base.ops = &cap_store_ops;
    c->db = db;
    c->max = max;
    if (gethostname(c->host, sizeof(c->host) - 1) != 0)
        snprintf(c->host, sizeof(c->host), "unknown");
    return &c->base;
}
