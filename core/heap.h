/*
 * heap.h - a binary min-heap of timers.
 *
 * Entries are struct heap_node embedded in the caller's struct (the hub's
 * held connections, the push daemon's jobs); each knows its own position,
 * so removing or re-keying one is O(log n) with no search. One timer per
 * held connection keeps 10,000 connections' keep-alives and deadlines in
 * one structure that the event loop asks "what is due next?".
 * Not thread-safe; one owner.
 */
#ifndef LARK_HEAP_H
#define LARK_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct heap_node {
    int64_t key; /* when it is due (monotonic ms) */
    size_t pos;  /* 1-based index in the heap; 0 = not in the heap */
};

struct heap {
    struct heap_node **v;
    size_t n, cap;
};

void heap_init(struct heap *h);
void heap_release(struct heap *h);
/* Insert node with key, or move it to key if already in the heap. */
void heap_set(struct heap *h, struct heap_node *node, int64_t key);
/* Remove node if it is in the heap. */
void heap_remove(struct heap *h, struct heap_node *node);
/* Smallest key's node, or NULL. */
struct heap_node *heap_top(const struct heap *h);

#endif
