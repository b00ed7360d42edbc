/*
 * hub_gap.c - ephemeral events for long-poll clients between two polls.
 *
 * A long-poll client is not connected from the moment its poll is answered
 * until its next poll arrives, yet to its user it is online: a typing
 * notice or a presence change sent in that gap would be lost for no reason
 * the user could see. So an answered poll opens a "gap" for its user: for
 * LIMIT_POLL_GAP_MS the hub keeps the ephemeral events the user would have
 * got (at most LIMIT_POLL_GAP_EVENTS, oldest dropped), and the next poll
 * is answered with them at once. Stored events need none of this: a poll
 * resumes from its `since`.
 *
 * One gap per user, not per device: with two polling devices, an event
 * that answers one device's held poll is not also kept for the other.
 * Ephemeral events are best effort (API.md); this only closes the gap
 * every long-poll client has between its requests.
 */
#include "fcgi/hub_int.h"

#include "core/json.h"
#include "core/limits.h"
#include "core/mem.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

struct hub_gap {
    struct hmap_node node;
    int64_t until_ms; /* monotonic */
    size_t first, n;  /* ring of kept events */
    char *events[LIMIT_POLL_GAP_EVENTS];
    char id[];
};

/* Sweep expired gaps at most this often. */
#define HUB_GAP_SWEEP_MS 1000

static struct hub_gap *gap_find(struct hub *h, const char *user, uint64_t hash)
{
    for (struct hmap_node *n = hmap_bucket(&h->gaps, hash); n; n = n->next) {
        struct hub_gap *g = HMAP_ENTRY(n, struct hub_gap, node);
        if (n->hash == hash && strcmp(g->id, user) == 0)
            return g;
    }
    return NULL;
}

static void gap_free(struct hub *h, struct hub_gap *g)
{
    hmap_remove(&h->gaps, &g->node);
    for (size_t i = 0; i < g->n; i++)
        free(g->events[(g->first + i) % LIMIT_POLL_GAP_EVENTS]);
    free(g);
}

void hub_gap_open(struct hub *h, const char *user)
{
    uint64_t hash = hmap_hash(user);
    struct hub_gap *g = gap_find(h, user, hash);

    if (!g) {
        size_t len = strlen(user) + 1;
        g = xcalloc(1, sizeof(*g) + len);
        memcpy(g->id, user, len);
        hmap_insert(&h->gaps, &g->node, hash);
    }
    g->until_ms = time_mono_ms() + LIMIT_POLL_GAP_MS;
}

void hub_gap_keep(struct hub *h, const char *user, const char *json)
{
    struct hub_gap *g;

    if (h->gaps.count == 0)
        return;
    g = gap_find(h, user, hmap_hash(user));
    if (!g || g->until_ms < time_mono_ms())
        return;
    if (g->n == LIMIT_POLL_GAP_EVENTS) {
        free(g->events[g->first]);
        g->first = (g->first + 1) % LIMIT_POLL_GAP_EVENTS;
        g->n--;
    }
    g->events[(g->first + g->n) % LIMIT_POLL_GAP_EVENTS] = xstrdup(json);
    g->n++;
}

json_t *hub_gap_take(struct hub *h, const char *user)
{
    struct hub_gap *g;
    json_t *events = NULL;

    if (h->gaps.count == 0)
        return NULL;
    g = gap_find(h, user, hmap_hash(user));
    if (!g)
        return NULL;
    if (g->until_ms >= time_mono_ms()) {
        for (size_t i = 0; i < g->n; i++) {
            json_t *ev = json_loads(g->events[(g->first + i) % LIMIT_POLL_GAP_EVENTS], 0, NULL);
            if (!ev)
                continue;
            if (!events)
                events = json_arr();
            json_push(events, ev);
        }
    }
    gap_free(h, g);
    return events;
}

void hub_gap_sweep(struct hub *h)
{
    int64_t now = time_mono_ms();

    if (now < h->gap_sweep_ms)
        return;
    h->gap_sweep_ms = now + HUB_GAP_SWEEP_MS;
    for (size_t i = 0; i < h->gaps.nbuckets; i++) {
        struct hmap_node *n = h->gaps.buckets[i];
        while (n) {
            struct hmap_node *next = n->next;
            struct hub_gap *g = HMAP_ENTRY(n, struct hub_gap, node);
            if (g->until_ms < now)
                gap_free(h, g);
            n = next;
        }
    }
}

void hub_gap_release(struct hub *h)
{
    for (size_t i = 0; i < h->gaps.nbuckets; i++)
        while (h->gaps.buckets[i])
            gap_free(h, HMAP_ENTRY(h->gaps.buckets[i], struct hub_gap, node));
    hmap_release(&h->gaps);
}
