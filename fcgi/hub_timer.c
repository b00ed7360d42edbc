/*
 * hub_timer.c - the hub's timers: one heap of struct hub_timer, each
 * carrying the function it runs (keep-alives, deadlines, closes, a paused
 * listener). Hub thread only.
 */
#include "fcgi/hub_int.h"

#include "core/timeutil.h"

void hub_timer_set(struct hub *h, struct hub_timer *t, int64_t due)
{
    heap_set(&h->timers, &t->node, due);
}

void hub_timer_cancel(struct hub *h, struct hub_timer *t)
{
    heap_remove(&h->timers, &t->node);
}

void hub_run_timers(struct hub *h)
{
    int64_t now = time_mono_ms();
    struct heap_node *top;
    while ((top = heap_top(&h->timers)) && top->key <= now) {
        struct hub_timer *t = HMAP_ENTRY(top, struct hub_timer, node);
        heap_remove(&h->timers, top);
        t->fn(h, t, now);
    }
}
