/*
 * heap.c - binary min-heap with position-aware nodes.
 */
#include "core/heap.h"

#include "core/mem.h"

#include <stdlib.h>

void heap_init(struct heap *h)
{
    h->v = NULL;
    h->n = 0;
    h->cap = 0;
}

void heap_release(struct heap *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->pos = 0;
    free(h->v);
    heap_init(h);
}

static void heap_place(struct heap *h, size_t i, struct heap_node *node)
{
    h->v[i] = node;
    node->pos = i + 1;
}

static void heap_up(struct heap *h, size_t i)
{
    struct heap_node *node = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent]->key <= node->key)
            break;
        heap_place(h, i, h->v[parent]);
        i = parent;
    }
    heap_place(h, i, node);
}

static void heap_down(struct heap *h, size_t i)
{
    struct heap_node *node = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
            c++;
        if (node->key <= h->v[c]->key)
            break;
        heap_place(h, i, h->v[c]);
        i = c;
    }
    heap_place(h, i, node);
}

void heap_set(struct heap *h, struct heap_node *node, int64_t key)
{
    if (node->pos) {
        int64_t old = node->key;
        node->key = key;
        if (key < old)
            heap_up(h, node->pos - 1);
        else
            heap_down(h, node->pos - 1);
        return;
    }
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        /* an array of pointers: */
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v)); /* NOLINT(bugprone-sizeof-expression) */
    }
    node->key = key;
    heap_place(h, h->n++, node);
    heap_up(h, h->n - 1);
}

void heap_remove(struct heap *h, struct heap_node *node)
{
    size_t i;
    struct heap_node *last;

    if (!node->pos)
        return;
    i = node->pos - 1;
    node->pos = 0;
    last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_place(h, i, last);
    heap_up(h, i);
    heap_down(h, last->pos - 1);
}

struct heap_node *heap_top(const struct heap *h)
{
    return h->n ? h->v[0] : NULL;
}
