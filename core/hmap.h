/*
 * hmap.h - an intrusive hash map keyed by strings (git's hashmap shape).
 *
 * The map stores struct hmap_node embedded in the caller's struct and never
 * allocates entries itself, so an entry costs two pointers' worth of
 * bookkeeping and removal is O(1) without a lookup. The caller computes
 * the hash with hmap_hash and compares keys while walking a bucket:
 *
 *     for (n = hmap_bucket(m, h); n; n = n->next)
 *         if (n->hash == h && strcmp(container_of(n)->id, key) == 0) ...
 *
 * The bucket array doubles when the map holds more entries than buckets.
 * Not thread-safe; one owner.
 */
#ifndef LARK_HMAP_H
#define LARK_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_node {
    struct hmap_node *next;
    uint64_t hash;
};

struct hmap {
    struct hmap_node **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

void hmap_init(struct hmap *m);
/* Free the bucket array; entries belong to the caller. */
void hmap_release(struct hmap *m);
/* FNV-1a over the NUL-terminated key. */
uint64_t hmap_hash(const char *key);
/* First node of the bucket hash falls in (walk ->next, check ->hash). */
struct hmap_node *hmap_bucket(const struct hmap *m, uint64_t hash);
void hmap_insert(struct hmap *m, struct hmap_node *node, uint64_t hash);
void hmap_remove(struct hmap *m, struct hmap_node *node);

#define HMAP_ENTRY(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
