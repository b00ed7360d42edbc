/*
 * hub_presence.c - presence, run by the hub (API.md "Presence").
 *
 * Who is online lives in the store (store_presence_*), so that every
 * process agrees; the hub drives it and delivers it:
 *   - a held connection counts as a heartbeat: a user's first connection
 *     touches it at once (batched per loop iteration, so a reconnect storm
 *     is one write), and every user the hub knows (connected, or a
 *     long-poll client between polls) is touched again each
 *     presence_interval;
 *   - every HUB_EXPIRE_EVERY_MS the hub asks the store to expire users not
 *     seen for presence_ttl; a store tells every process's hub of each
 *     transition (a STORE_NOTE_PRESENCE note);
 *   - a transition goes to the watchers of that user only: each watcher
 *     has one viewport (the list of its last POST /v1/presence/watch),
 *     kept until its next watch call or until its last connection closes.
 *     A viewport set before any connection arrives waits HUB_WATCH_GRACE_MS
 *     for one.
 * All of it runs on the hub thread, on the hub's timers; the writes are
 * queued (store_*_later) and never waited for.
 */
#include "fcgi/hub_int.h"

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/app.h"

#include <stdlib.h>
#include <string.h>

/* How often the store is asked to expire silent users (ms). */
#define HUB_EXPIRE_EVERY_MS 1000
/* How long a viewport waits for its watcher's first connection (ms). */
#define HUB_WATCH_GRACE_MS 30000

struct hub_watched;

/* One watcher's viewport. */
struct hub_watcher {
    struct hmap_node node;
    struct hub_watched **watched; /* what it watches */
    size_t n;
    int64_t orphan_since; /* wall ms since it has had no connection, 0 if it has one */
    char id[];
};

/* The watchers of one user. */
struct hub_watched {
    struct hmap_node node;
    struct hub_watcher **by;
    size_t n, cap;
    char id[];
};

void hub_presence_init(struct hub *h)
{
    hmap_init(&h->watchers);
    hmap_init(&h->watched);
    h->next_touch_ms = 0;
    h->next_expire_ms = 0;
}

static struct hub_watcher *watcher_find(struct hub *h, const char *id)
{
    uint64_t hash = hmap_hash(id);
    for (struct hmap_node *n = hmap_bucket(&h->watchers, hash); n; n = n->next) {
        struct hub_watcher *w = HMAP_ENTRY(n, struct hub_watcher, node);
        if (n->hash == hash && strcmp(w->id, id) == 0)
            return w;
    }
    return NULL;
}

static struct hub_watched *watched_find(struct hub *h, const char *id, int create)
{
    uint64_t hash = hmap_hash(id);
    struct hub_watched *d;
    size_t len;

    for (struct hmap_node *n = hmap_bucket(&h->watched, hash); n; n = n->next) {
        d = HMAP_ENTRY(n, struct hub_watched, node);
        if (n->hash == hash && strcmp(d->id, id) == 0)
            return d;
    }
    if (!create)
        return NULL;
    len = strlen(id) + 1;
    d = xcalloc(1, sizeof(*d) + len);
    memcpy(d->id, id, len);
    hmap_insert(&h->watched, &d->node, hash);
    return d;
}

/* Forget what w watches (w itself stays). */
static void watcher_clear(struct hub *h, struct hub_watcher *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct hub_watched *d = w->watched[i];
        for (size_t j = 0; j < d->n; j++) {
            if (d->by[j] == w) {
                d->by[j] = d->by[--d->n];
                break;
            }
        }
        if (d->n == 0) {
            hmap_remove(&h->watched, &d->node);
            free(d->by);
            free(d);
        }
    }
    free(w->watched);
    w->watched = NULL;
    w->n = 0;
}

static void watcher_drop(struct hub *h, struct hub_watcher *w)
{
    watcher_clear(h, w);
    hmap_remove(&h->watchers, &w->node);
    free(w);
}

void hub_presence_watch(struct hub *h, const char *watcher, char **users, size_t n)
{
    struct hub_watcher *w = watcher_find(h, watcher);

    if (!w) {
        size_t len = strlen(watcher) + 1;
        w = xcalloc(1, sizeof(*w) + len);
        memcpy(w->id, watcher, len);
        hmap_insert(&h->watchers, &w->node, hmap_hash(w->id));
    }
    watcher_clear(h, w);
    /* arrays of pointers: */
    w->watched = xcalloc(n ? n : 1, sizeof(*w->watched)); /* NOLINT(bugprone-sizeof-expression) */
    for (size_t i = 0; i < n; i++) {
        struct hub_watched *d = watched_find(h, users[i], 1);
        int dup = 0;
        for (size_t j = 0; j < d->n; j++)
            dup |= d->by[j] == w;
        if (!dup) {
            if (d->n == d->cap) {
                d->cap = d->cap ? d->cap * 2 : 4;
                d->by = xrealloc(d->by,
                                 d->cap * sizeof(*d->by)); /* NOLINT(bugprone-sizeof-expression) */
            }
            d->by[d->n++] = w;
            w->watched[w->n++] = d;
        }
        free(users[i]);
    }
    w->orphan_since = hub_user_find(h, w->id, 0) ? 0 : time_now_ms();
    free(users);
}

void hub_presence_changed(struct hub *h, const char *user, int online, int64_t last_seen)
{
    struct hub_watched *d = watched_find(h, user, 0);
    char ts[TIME_RFC3339_LEN];
    json_t *ev, *data;
    char **ids;
    char *text;
    size_t n;

    if (!d)
        return;
    time_rfc3339(last_seen, ts);
    ev = json_obj();
    data = json_obj();
    json_put(data, "user", json_string(user));
    json_put(data, "status", json_string(online ? "online" : "offline"));
    json_put(data, "last_seen", json_string(ts));
    json_put(ev, "type", json_string("presence"));
    json_put(ev, "data", data);
    text = json_dump(ev, 0, NULL);
    json_decref(ev);
    /* Copy the watchers first: delivering must not walk a list that
     * changes under it. */
    n = d->n;
    ids = xcalloc(n ? n : 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = xstrdup(d->by[i]->id);
    for (size_t i = 0; i < n; i++) {
        hub_deliver_ephemeral(h, ids[i], text);
        free(ids[i]);
    }
    free(ids);
    free(text);
}

/* Users whose record hub_user.c created or freed since the last tick: the
 * new ones are touched at once (one write for a reconnect storm) and their
 * viewports are no longer orphans; a freed one's viewport ends (API.md:
 * with the last connection, and the lingering after it) - unless it was
 * set since, while the user had no record (then it waits for a
 * connection, HUB_WATCH_GRACE_MS). */
static void presence_take_users(struct hub *h, int64_t now)
{
    for (size_t i = 0; i < h->ngone; i++) {
        struct hub_watcher *w = watcher_find(h, h->gone[i]);
        if (w && !w->orphan_since && !hub_user_find(h, w->id, 0))
            watcher_drop(h, w);
        free(h->gone[i]);
    }
    h->ngone = 0;
    if (!h->nappeared)
        return;
    for (size_t i = 0; i < h->nappeared; i++) {
        struct hub_watcher *w = watcher_find(h, h->appeared[i]);
        if (w)
            w->orphan_since = 0;
    }
    store_presence_touch_later(h->app->store, (const char *const *)h->appeared, h->nappeared, now);
    while (h->nappeared)
        free(h->appeared[--h->nappeared]);
}

struct id_list {
    const char **ids;
    size_t n;
};

static void collect_id(struct hub *h, struct hub_user *u, void *arg)
{
    struct id_list *l = arg;
    (void)h;
    l->ids[l->n++] = hub_user_id(u);
}

/* Touch every user the hub knows (held connections, and long-poll clients
 * between polls); drop viewports left orphaned. The write is queued: the
 * hub never waits on the database (store_presence_touch_later). */
static void presence_touch_all(struct hub *h, int64_t now)
{
    struct id_list l = {xcalloc(h->users.count ? h->users.count : 1, sizeof(*l.ids)), 0};

    hub_user_each(h, collect_id, &l);
    store_presence_touch_later(h->app->store, l.ids, l.n, now);
    free(l.ids);
    for (size_t i = 0; i < h->watchers.nbuckets; i++) {
        struct hmap_node *nd = h->watchers.buckets[i];
        while (nd) {
            struct hub_watcher *w = HMAP_ENTRY(nd, struct hub_watcher, node);
            nd = nd->next;
            if (w->orphan_since && now - w->orphan_since > HUB_WATCH_GRACE_MS)
                watcher_drop(h, w);
        }
    }
}

int64_t hub_presence_tick(struct hub *h)
{
    const struct config *cfg = &h->app->cfg;
    int64_t now = time_now_ms();
    int64_t next;

    if (h->draining)
        return 60000;
    presence_take_users(h, now);
    if (now >= h->next_touch_ms) {
        presence_touch_all(h, now);
        h->next_touch_ms = now + (int64_t)cfg->presence_interval * 1000;
    }
    if (now >= h->next_expire_ms) {
        store_presence_expire_later(h->app->store, now - (int64_t)cfg->presence_ttl * 1000);
        h->next_expire_ms = now + HUB_EXPIRE_EVERY_MS;
    }
    next = h->next_touch_ms < h->next_expire_ms ? h->next_touch_ms : h->next_expire_ms;
    return next - now;
}

void hub_presence_release(struct hub *h)
{
    for (size_t i = 0; i < h->watchers.nbuckets; i++)
        while (h->watchers.buckets[i])
            watcher_drop(h, HMAP_ENTRY(h->watchers.buckets[i], struct hub_watcher, node));
    while (h->nappeared)
        free(h->appeared[--h->nappeared]);
    free(h->appeared);
    while (h->ngone)
        free(h->gone[--h->ngone]);
    free(h->gone);
    hmap_release(&h->watchers);
    hmap_release(&h->watched);
}
