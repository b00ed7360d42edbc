/*
 * hub_user.c - the users the hub knows: their connections, the tail of
 * their recent stored events, and lingering between long-polls.
 *
 * The tail is why a live connection costs the database nothing (DESIGN.md
 * "The delivery path, second design"): every commit's notes carry each
 * event's seq and data, the hub puts them in the user's tail, and a
 * connection whose cursor is within the tail is written from memory. The
 * tail is a ring of at most LIMIT_HUB_TAIL_EVENTS consecutive seqs holding
 * at most LIMIT_HUB_TAIL_BYTES of data (the newest event always stays);
 * a slot may be a hole - an event this hub heard of without its data
 * (another host's event too large for NOTIFY, or a note that arrived
 * before an earlier one: PostgreSQL commits of one process are told from
 * several threads). A connection that reaches a hole, or is behind the
 * tail, reads from the store instead (hub_catchup.c); holes are filled if
 * the missing note comes later.
 *
 * "synced" says the hub knows the user's head: a catch-up read returned
 * everything up to the store's head, and since the record existed before
 * that read started, every later commit's note reached the tail. Then a
 * new connection at the head costs no read at all - which is what a
 * long-poll client's next poll is, so a user lingers for
 * LIMIT_HUB_LINGER_MS after its last connection left: its tail keeps
 * filling, and ephemeral events (typing, presence) meant for it are kept
 * for the next poll (at most LIMIT_POLL_GAP_EVENTS, oldest dropped; one
 * store per user, not per device - ephemeral events are best effort).
 *
 * A record is freed only by the sweep (never while a caller may hold it):
 * after lingering, with no read in flight.
 */
#include "fcgi/hub_int.h"

#include "core/evdata.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/heldcap.h"

#include <stdlib.h>
#include <string.h>

/* Sweep lingering users at most this often (ms). */
#define HUB_USER_SWEEP_MS 1000

struct hub_slot {
    uint64_t seq;
    struct evdata *data; /* NULL: a hole */
};

/* Ephemeral events kept while a long-poll user is between polls. */
struct hub_kept {
    size_t first, n;
    char *events[LIMIT_POLL_GAP_EVENTS];
};

struct hub_user {
    struct hmap_node node;
    struct hub_conn *conns;
    struct hub_slot *ring; /* the tail: slots [first, first + n) mod cap */
    uint16_t cap;          /* slots allocated (grows to LIMIT_HUB_TAIL_EVENTS) */
    uint16_t first, n;     /* oldest slot, slots in use */
    uint8_t synced;        /* head is known (see above) */
    uint8_t reading;       /* a catch-up read is with the pool */
    size_t bytes;          /* data bytes the tail holds */
    uint64_t head;         /* highest seq known to exist */
    int64_t linger_until;  /* mono ms: with no connections, freed after */
    int64_t gap_until;     /* mono ms: a poll was answered; keep ephemeral events until */
    struct hub_kept *kept; /* NULL unless lingering after a poll with events kept */
    char id[];
};

/* Note a user id for hub_presence.c's next tick. */
static void id_list_add(char ***v, size_t *n, size_t *cap, const char *id)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = xrealloc(*v, *cap * sizeof(**v)); /* NOLINT(bugprone-sizeof-expression) */
    }
    (*v)[(*n)++] = xstrdup(id);
}

const char *hub_user_id(const struct hub_user *u)
{
    return u->id;
}

struct hub_conn *hub_user_conns(const struct hub_user *u)
{
    return u->conns;
}

int hub_user_synced(const struct hub_user *u)
{
    return u->synced;
}

uint64_t hub_user_head(const struct hub_user *u)
{
    return u->head;
}

int hub_user_reading(const struct hub_user *u)
{
    return u->reading;
}

void hub_user_set_reading(struct hub_user *u, int reading)
{
    u->reading = (uint8_t)reading;
}

struct hub_user *hub_user_find(struct hub *h, const char *id, int create)
{
    uint64_t hash = hmap_hash(id);
    struct hub_user *u;
    size_t len;

    for (struct hmap_node *n = hmap_bucket(&h->users, hash); n; n = n->next) {
        u = HMAP_ENTRY(n, struct hub_user, node);
        if (n->hash == hash && strcmp(u->id, id) == 0)
            return u;
    }
    if (!create)
        return NULL;
    len = strlen(id) + 1;
    u = xcalloc(1, sizeof(*u) + len);
    memcpy(u->id, id, len);
    hmap_insert(&h->users, &u->node, hash);
    id_list_add(&h->appeared, &h->nappeared, &h->capappeared, id); /* hub_presence.c */
    return u;
}

void hub_user_each(struct hub *h, void (*fn)(struct hub *h, struct hub_user *u, void *arg),
                   void *arg)
{
    for (size_t i = 0; i < h->users.nbuckets; i++)
        for (struct hmap_node *n = h->users.buckets[i]; n; n = n->next)
            fn(h, HMAP_ENTRY(n, struct hub_user, node), arg);
}

void hub_user_attach(struct hub *h, struct hub_conn *c, const char *user)
{
    struct hub_user *u = hub_user_find(h, user, 1);
    c->user = u;
    c->uprev = NULL;
    c->unext = u->conns;
    if (u->conns)
        u->conns->uprev = c;
    u->conns = c;
    u->linger_until = 0;
    metrics_held_add(c->tr->kind);
}

void hub_user_detach(struct hub *h, struct hub_conn *c, int hangup)
{
    struct hub_user *u = c->user;
    if (!u)
        return;
    if (c->uprev)
        c->uprev->unext = c->unext;
    else
        u->conns = c->unext;
    if (c->unext)
        c->unext->uprev = c->uprev;
    c->user = NULL;
    c->unext = c->uprev = NULL;
    c->want_read = 0;
    metrics_held_remove(c->tr->kind, hangup);
    /* it receives no more: its slot is free (heldcap.h) */
    heldcap_release(h->app->heldcap, c->slot);
    c->slot = NULL;
    if (c->tr->between_requests && !hangup && !h->draining)
        u->gap_until = time_mono_ms() + LIMIT_HUB_LINGER_MS; /* its next poll is on its way */
    if (!u->conns)
        u->linger_until = time_mono_ms() + LIMIT_HUB_LINGER_MS;
}

/* ---- the tail ------------------------------------------------------------- */

static struct hub_slot *slot_at(const struct hub_user *u, size_t i)
{
    return &u->ring[(u->first + i) % u->cap];
}

static uint64_t tail_lo(const struct hub_user *u)
{
    return u->n ? u->ring[u->first].seq : u->head + 1;
}

static void tail_drop_oldest(struct hub_user *u)
{
    struct hub_slot *s = slot_at(u, 0);
    if (s->data)
        u->bytes -= s->data->len;
    evdata_unref(s->data);
    s->data = NULL;
    u->first = (uint16_t)((u->first + 1) % u->cap);
    u->n--;
}

static void tail_clear(struct hub_user *u)
{
    while (u->n)
        tail_drop_oldest(u);
    u->first = 0;
}

/* Append seq (the next after the newest slot) at the end. */
static void tail_append(struct hub_user *u, uint64_t seq, struct evdata *data)
{
    struct hub_slot *s;

    if (u->n == u->cap && u->cap < LIMIT_HUB_TAIL_EVENTS) {
        /* grow, unrolling the ring */
        uint16_t cap = (uint16_t)(u->cap ? u->cap * 2 : 4);
        struct hub_slot *ring;
        if (cap > LIMIT_HUB_TAIL_EVENTS)
            cap = LIMIT_HUB_TAIL_EVENTS;
        ring = xcalloc(cap, sizeof(*ring));
        for (size_t i = 0; i < u->n; i++)
            ring[i] = *slot_at(u, i);
        free(u->ring);
        u->ring = ring;
        u->cap = cap;
        u->first = 0;
    }
    if (u->n == u->cap)
        tail_drop_oldest(u);
    s = slot_at(u, u->n++);
    s->seq = seq;
    s->data = evdata_ref(data);
    if (data)
        u->bytes += data->len;
    /* the newest always stays, however large */
    while (u->n > 1 && u->bytes > LIMIT_HUB_TAIL_BYTES)
        tail_drop_oldest(u);
}

void hub_user_put(struct hub *h, struct hub_user *u, uint64_t seq, struct evdata *data)
{
    /* lo: the oldest seq held (an empty tail: the one after the head);
     * end: the seq after the newest slot */
    uint64_t lo = tail_lo(u), end = lo + u->n, start;

    (void)h;
    if (seq > u->head)
        u->head = seq;
    if (u->n && seq < lo)
        return; /* older than the tail: a reader goes to the store anyway */
    if (u->n && seq < end) {
        struct hub_slot *s = slot_at(u, (size_t)(seq - lo));
        if (!s->data && data) { /* a late note fills its hole */
            s->data = evdata_ref(data);
            u->bytes += data->len;
        }
        return;
    }
    /* events between what is known and seq were committed before it but
     * not told yet: holes (an unsynced user knows nothing before seq) */
    start = u->n ? end : (u->synced && seq > lo ? lo : seq);
    if (seq - start >= LIMIT_HUB_TAIL_EVENTS) {
        tail_clear(u); /* too far ahead: holes only - start over */
        start = seq;
    }
    for (uint64_t s = start; s < seq; s++)
        tail_append(u, s, NULL);
    tail_append(u, seq, data);
}

void hub_user_unsync(struct hub_user *u)
{
    u->synced = 0;
}

void hub_user_synced_at(struct hub_user *u, uint64_t head, const struct store_event *evs, size_t n)
{
    u->synced = 1;
    if (head > u->head)
        u->head = head;
    /* seed an empty tail with what the read returned, so that the next
     * connection (a long-poll's next poll) is served from memory */
    if (u->n == 0 && n && evs[n - 1].seq == u->head) {
        size_t from = n > LIMIT_HUB_TAIL_EVENTS ? n - LIMIT_HUB_TAIL_EVENTS : 0;
        for (size_t i = from; i < n; i++)
            tail_append(u, evs[i].seq, evs[i].data);
    }
}

size_t hub_user_events(const struct hub_user *u, uint64_t from, struct store_event *out, size_t max)
{
    uint64_t lo = tail_lo(u);
    size_t k = 0;

    if (!u->n || from < lo)
        return 0;
    for (size_t i = (size_t)(from - lo); i < u->n && k < max; i++) {
        const struct hub_slot *s = slot_at(u, i);
        if (!s->data)
            break;
        out[k].seq = s->seq;
        out[k].data = s->data;
        k++;
    }
    return k;
}

/* ---- ephemeral events for the next poll ------------------------------------ */

void hub_user_keep_ephemeral(struct hub_user *u, const char *json, size_t len)
{
    struct hub_kept *k;

    if (time_mono_ms() >= u->gap_until)
        return;
    if (!u->kept)
        u->kept = xcalloc(1, sizeof(*u->kept));
    k = u->kept;
    if (k->n == LIMIT_POLL_GAP_EVENTS) {
        free(k->events[k->first]);
        k->first = (k->first + 1) % LIMIT_POLL_GAP_EVENTS;
        k->n--;
    }
    k->events[(k->first + k->n) % LIMIT_POLL_GAP_EVENTS] = xstrndup(json, len);
    k->n++;
}

int hub_user_has_ephemeral(const struct hub_user *u)
{
    return u->kept && u->kept->n;
}

char **hub_user_take_ephemeral(struct hub_user *u, size_t *n)
{
    struct hub_kept *k = u->kept;
    char **v;

    *n = 0;
    if (!k)
        return NULL;
    v = xcalloc(k->n ? k->n : 1, sizeof(*v));
    for (size_t i = 0; i < k->n; i++)
        v[i] = k->events[(k->first + i) % LIMIT_POLL_GAP_EVENTS];
    *n = k->n;
    free(k);
    u->kept = NULL;
    return v;
}

/* ---- ephemeral events ------------------------------------------------------- */

void hub_deliver_ephemeral(struct hub *h, const char *user, const char *json)
{
    struct hub_user *u = hub_user_find(h, user, 0);
    struct hub_ephemeral e = {.json = json, .len = strlen(json)};
    int polled = 0;

    if (!u)
        return;
    e.ev = json_loads(json, 0, NULL);
    e.type = json_string_value(json_object_get(e.ev, "type"));
    if (!e.type) {
        json_decref(e.ev);
        return;
    }
    for (struct hub_conn *c = hub_user_conns(u), *next; c; c = next) {
        next = c->unext; /* answering a poll detaches it from the user */
        if (c->state != CONN_OPEN)
            continue;
        polled |= c->tr->between_requests;
        c->tr->ephemeral(h, c, &e);
    }
    if (!polled)
        hub_user_keep_ephemeral(u, json, e.len); /* a poll may be on its way */
    json_decref(e.ev);
}

/* ---- freeing --------------------------------------------------------------- */

static void user_free(struct hub *h, struct hub_user *u)
{
    hmap_remove(&h->users, &u->node);
    id_list_add(&h->gone, &h->ngone, &h->capgone, u->id); /* hub_presence.c */
    tail_clear(u);
    free(u->ring);
    if (u->kept) {
        size_t n;
        char **v = hub_user_take_ephemeral(u, &n);
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
    }
    free(u);
}

void hub_user_sweep(struct hub *h, int64_t now)
{
    if (now < h->linger_sweep_ms)
        return;
    h->linger_sweep_ms = now + HUB_USER_SWEEP_MS;
    for (size_t i = 0; i < h->users.nbuckets; i++) {
        struct hmap_node *n = h->users.buckets[i];
        while (n) {
            struct hub_user *u = HMAP_ENTRY(n, struct hub_user, node);
            n = n->next;
            if (!u->conns && !u->reading && now >= u->linger_until)
                user_free(h, u);
        }
    }
}

void hub_user_release_all(struct hub *h)
{
    for (size_t i = 0; i < h->users.nbuckets; i++)
        while (h->users.buckets[i])
            user_free(h, HMAP_ENTRY(h->users.buckets[i], struct hub_user, node));
}
