/*
 * hmap.c - intrusive chained hash map.
 */
#include "core/hmap.h"

#include "core/mem.h"

#include <stdlib.h>

#define HMAP_INITIAL 64

void hmap_init(struct hmap *m)
{
    m->nbuckets = HMAP_INITIAL;
    /* an array of pointers: */
    m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets)); /* NOLINT(bugprone-sizeof-expression) */
    m->count = 0;
}

void hmap_release(struct hmap *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

uint64_t hmap_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64-bit offset basis */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

struct hmap_node *hmap_bucket(const struct hmap *m, uint64_t hash)
{
    return m->buckets[hash & (m->nbuckets - 1)];
}

static void hmap_grow(struct hmap *m)
{
    size_t n = m->nbuckets * 2;
    struct hmap_node **b = xcalloc(n, sizeof(*b)); /* NOLINT(bugprone-sizeof-expression) */
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct hmap_node *node = m->buckets[i];
        while (node) {
            struct hmap_node *next = node->next;
            size_t j = node->hash & (n - 1);
            node->next = b[j];
            b[j] = node;
            node = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void hmap_insert(struct hmap *m, struct hmap_node *node, uint64_t hash)
{
    size_t i;
    if (m->count >= m->nbuckets)
        hmap_grow(m);
    i = hash & (m->nbuckets - 1);
    node->hash = hash;
    node->next = m->buckets[i];
    m->buckets[i] = node;
    m->count++;
}

void hmap_remove(struct hmap *m, struct hmap_node *node)
{
    struct hmap_node **pp = &m->buckets[node->hash & (m->nbuckets - 1)];
    while (*pp && *pp != node)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = node->next;
        m->count--;
    }
    node->next = NULL;
}
