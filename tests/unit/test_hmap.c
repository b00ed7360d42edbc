/*
 * test_hmap.c - core/hmap: the intrusive string-keyed hash map.
 *
 * Besides the direct cases, a random sequence of inserts, removals and
 * lookups runs against a plain array model and must agree with it at
 * every step (seeded; LARK_TEST_SEED repeats a run).
 */
#include "core/hmap.h"

#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct hmap_node node;
    char key[24];
    int in_map; /* the model: 1 while inserted */
};

static struct entry *find(const struct hmap *m, const char *key)
{
    uint64_t h = hmap_hash(key);
    for (struct hmap_node *n = hmap_bucket(m, h); n; n = n->next) {
        struct entry *e = HMAP_ENTRY(n, struct entry, node);
        if (n->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* Every node reachable from the buckets, counted; each in its bucket. */
static size_t walk_count(const struct hmap *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct hmap_node *node = m->buckets[i]; node; node = node->next) {
            if ((node->hash & (m->nbuckets - 1)) != i)
                ck_abort_msg("a node of hash %llx in bucket %zu of %zu",
                             (unsigned long long)node->hash, i, m->nbuckets);
            n++;
        }
    return n;
}

START_TEST(test_hash_fnv1a)
{
    /* FNV-1a 64-bit reference values. */
    ck_assert_uint_eq(hmap_hash(""), 0xcbf29ce484222325ULL);
    ck_assert_uint_eq(hmap_hash("a"), 0xaf63dc4c8601ec8cULL);
    ck_assert_uint_eq(hmap_hash("foobar"), 0x85944171f73967e8ULL);
    ck_assert_uint_ne(hmap_hash("alice"), hmap_hash("alicf"));
}
END_TEST

START_TEST(test_insert_find_remove)
{
    struct hmap m;
    struct entry a = {.key = "alice"}, b = {.key = "bob"};

    hmap_init(&m);
    ck_assert_uint_eq(m.count, 0);
    ck_assert_ptr_null(find(&m, "alice"));
    hmap_insert(&m, &a.node, hmap_hash(a.key));
    hmap_insert(&m, &b.node, hmap_hash(b.key));
    ck_assert_uint_eq(m.count, 2);
    ck_assert_ptr_eq(find(&m, "alice"), &a);
    ck_assert_ptr_eq(find(&m, "bob"), &b);
    ck_assert_ptr_null(find(&m, "carol"));
    hmap_remove(&m, &a.node);
    ck_assert_uint_eq(m.count, 1);
    ck_assert_ptr_null(find(&m, "alice"));
    ck_assert_ptr_eq(find(&m, "bob"), &b);
    /* Removing a node that is not in the map changes nothing. */
    hmap_remove(&m, &a.node);
    ck_assert_uint_eq(m.count, 1);
    ck_assert_ptr_eq(find(&m, "bob"), &b);
    hmap_remove(&m, &b.node);
    ck_assert_uint_eq(m.count, 0);
    ck_assert_uint_eq(walk_count(&m), 0);
    hmap_release(&m);
    ck_assert_ptr_null(m.buckets);
}
END_TEST

START_TEST(test_same_hash_chain)
{
    /* Entries that share a hash (forced) are told apart by key, and
     * removing one from the middle of a chain keeps the others. */
    struct hmap m;
    struct entry e[5];

    hmap_init(&m);
    for (int i = 0; i < 5; i++) {
        snprintf(e[i].key, sizeof(e[i].key), "k%d", i);
        hmap_insert(&m, &e[i].node, 42);
    }
    ck_assert_uint_eq(m.count, 5);
    hmap_remove(&m, &e[2].node);
    hmap_remove(&m, &e[0].node);
    ck_assert_uint_eq(m.count, 3);
    {
        int seen[5] = {0};
        for (struct hmap_node *n = hmap_bucket(&m, 42); n; n = n->next)
            seen[HMAP_ENTRY(n, struct entry, node) - e]++;
        ck_assert_int_eq(seen[0], 0);
        ck_assert_int_eq(seen[1], 1);
        ck_assert_int_eq(seen[2], 0);
        ck_assert_int_eq(seen[3], 1);
        ck_assert_int_eq(seen[4], 1);
    }
    hmap_release(&m);
}
END_TEST

START_TEST(test_grow_many)
{
    enum { N = 20000 };
    struct entry *e = calloc(N, sizeof(*e));
    struct hmap m;

    hmap_init(&m);
    for (int i = 0; i < N; i++) {
        snprintf(e[i].key, sizeof(e[i].key), "user-%d", i);
        hmap_insert(&m, &e[i].node, hmap_hash(e[i].key));
        /* Power-of-two buckets, never fewer than entries (after growth). */
        if ((m.nbuckets & (m.nbuckets - 1)) != 0 || m.nbuckets < m.count)
            ck_abort_msg("%zu buckets for %zu entries", m.nbuckets, m.count);
    }
    ck_assert_uint_eq(m.count, N);
    ck_assert_uint_eq(walk_count(&m), N);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(find(&m, e[i].key), &e[i]);
    for (int i = 0; i < N; i += 2)
        hmap_remove(&m, &e[i].node);
    ck_assert_uint_eq(m.count, N / 2);
    ck_assert_uint_eq(walk_count(&m), N / 2);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(find(&m, e[i].key), i % 2 ? &e[i] : NULL);
    hmap_release(&m);
    free(e);
}
END_TEST

START_TEST(test_random_model)
{
    enum { KEYS = 3000, STEPS = 200000 };
    struct entry *e = calloc(KEYS, sizeof(*e));
    struct unit_rng rng;
    struct hmap m;
    size_t in = 0;

    unit_rng_init(&rng, "hmap test_random_model");
    hmap_init(&m);
    for (int i = 0; i < KEYS; i++)
        snprintf(e[i].key, sizeof(e[i].key), "k%llx", (unsigned long long)unit_rand(&rng));
    for (int step = 0; step < STEPS; step++) {
        struct entry *x = &e[unit_below(&rng, KEYS)];
        switch (unit_below(&rng, 3)) {
        case 0:
            if (!x->in_map) {
                hmap_insert(&m, &x->node, hmap_hash(x->key));
                x->in_map = 1;
                in++;
            }
            break;
        case 1:
            if (x->in_map) {
                hmap_remove(&m, &x->node);
                x->in_map = 0;
                in--;
            }
            break;
        default:
            /* Plain checks in this loop: every passing ck_assert costs
             * Check a message write, and the loop runs 200,000 times. */
            if (find(&m, x->key) != (x->in_map ? x : NULL))
                ck_abort_msg("step %d: lookup of %s disagrees with the model", step, x->key);
            break;
        }
        if (m.count != in)
            ck_abort_msg("step %d: count %zu, model %zu", step, m.count, in);
    }
    ck_assert_uint_eq(walk_count(&m), in);
    for (int i = 0; i < KEYS; i++)
        ck_assert_ptr_eq(find(&m, e[i].key), e[i].in_map ? &e[i] : NULL);
    hmap_release(&m);
    free(e);
}
END_TEST

static Suite *hmap_suite(void)
{
    Suite *s = suite_create("hmap");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_hash_fnv1a);
    tcase_add_test(tc, test_insert_find_remove);
    tcase_add_test(tc, test_same_hash_chain);
    tcase_add_test(tc, test_grow_many);
    tcase_add_test(tc, test_random_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(hmap_suite());
}
