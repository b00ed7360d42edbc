/*
 * heldcap_local.c - the held-connection cap counted in this process
 * (heldcap.h), for larkd as a FastCGI daemon: every held connection of
 * the process is in its hub, so memory sees them all.
 *
 * A map from user to count under one mutex. Entries exist only while a
 * user holds something, so the map is as large as the set of users
 * online; each acquire or release is one short critical section, taken
 * by a worker or a WebSocket command thread per held request and by the
 * hub per ended connection. A slot remembers its user, so that the hub,
 * which releases it, needs nothing else.
 *
 * Why a new connection beyond the cap is refused rather than the oldest
 * told to reconnect: a user with one tab more than the cap would have
 * its tabs evict each other for ever, each reconnecting and evicting the
 * next; refused, the extra tab backs off and the others stay.
 */
#include "fcgi/heldcap.h"

#include "core/err.h"
#include "core/hmap.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct heldcap_slot {
    char user[1]; /* NUL-terminated, allocated to fit */
};

struct cap_user {
    struct hmap_node node;
    unsigned n; /* slots held, >= 1 while in the map */
    char id[];
};

struct cap_local {
    struct heldcap base;
    unsigned max;
    pthread_mutex_t mu;
    struct hmap users; /* id -> struct cap_user, guarded by mu */
};

static struct cap_user *local_find(struct cap_local *l, const char *user, uint64_t hash)
{
    for (struct hmap_node *n = hmap_bucket(&l->users, hash); n; n = n->next) {
        struct cap_user *u = HMAP_ENTRY(n, struct cap_user, node);
        if (n->hash == hash && strcmp(u->id, user) == 0)
            return u;
    }
    return NULL;
}

static int local_acquire(struct heldcap *base, const char *user, int hold_s,
                         struct heldcap_slot **slot, int *retry_after, struct lark_err *err)
{
    struct cap_local *l = (struct cap_local *)base;
    uint64_t hash = hmap_hash(user);
    size_t len = strlen(user) + 1;
    struct cap_user *u;
    int full;

    (void)hold_s; /* the hub gives every slot back: none outlives its holder */
    if (l->max == 0)
        return 0;
    pthread_mutex_lock(&l->mu);
    u = local_find(l, user, hash);
    if (!u) {
        u = xcalloc(1, sizeof(*u) + len);
        memcpy(u->id, user, len);
        hmap_insert(&l->users, &u->node, hash);
    }
    full = u->n >= l->max;
    if (!full)
        u->n++;
    pthread_mutex_unlock(&l->mu);
    if (full) {
        *retry_after = HELDCAP_RETRY_AFTER_S;
        return lark_err_set(err, LARK_ETOOMANYCONN,
                            "at most %u streams, long-polls and WebSocket sessions per user are "
                            "held at once; close one or retry later",
                            l->max);
    }
    *slot = xmalloc(sizeof(**slot) + len);
    memcpy((*slot)->user, user, len);
    return 0;
}

static void local_release(struct heldcap *base, struct heldcap_slot *slot)
{
    struct cap_local *l = (struct cap_local *)base;
    struct cap_user *u;

    pthread_mutex_lock(&l->mu);
    u = local_find(l, slot->user, hmap_hash(slot->user));
    if (u && --u->n == 0) {
        hmap_remove(&l->users, &u->node);
        free(u);
    } else if (!u) {
        log_error("held connections: a slot of user=%s released twice", slot->user);
    }
    pthread_mutex_unlock(&l->mu);
    free(slot);
}

static void local_free(struct heldcap *base)
{
    struct cap_local *l = (struct cap_local *)base;

    for (size_t i = 0; i < l->users.nbuckets; i++)
        while (l->users.buckets[i]) {
            struct cap_user *u = HMAP_ENTRY(l->users.buckets[i], struct cap_user, node);
            hmap_remove(&l->users, &u->node);
            free(u);
        }
    hmap_release(&l->users);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static const struct heldcap_ops cap_local_ops = {
    .acquire = local_acquire,
    .release = local_release,
    .free = local_free,
};

struct heldcap *heldcap_new_local(unsigned max)
{
    struct cap_local *l = xcalloc(1, sizeof(*l));

    l->base.ops = &cap_local_ops;
    l->max = max;
    pthread_mutex_init(&l->mu, NULL);
    hmap_init(&l->users);
    return &l->base;
}
