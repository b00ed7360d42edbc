/*
 * test_heap.c - core/heap: the position-aware binary min-heap of timers.
 *
 * After every operation the whole heap is checked: the heap property,
 * each node's pos pointing at its own slot, and the top equal to the
 * model's minimum. A random run compares against a plain array model.
 */
#include "core/heap.h"

#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct timer {
    struct heap_node node;
    int in_heap; /* the model */
    int64_t key; /* the model's key */
};

/* Heap property and positions, for every slot. (Plain comparisons with
 * one assertion: every passing ck_assert costs Check a message write.) */
static void check_heap(const struct heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        int ok = h->v[i]->pos == i + 1 && (i == 0 || h->v[(i - 1) / 2]->key <= h->v[i]->key);
        if (!ok)
            ck_abort_msg("slot %zu: pos %zu, key %lld, parent key %lld", i, h->v[i]->pos,
                         (long long)h->v[i]->key, i ? (long long)h->v[(i - 1) / 2]->key : 0LL);
    }
}

/* Check the heap against the model of n timers. */
static void check_model(const struct heap *h, const struct timer *t, size_t n)
{
    size_t in = 0;
    int64_t min = INT64_MAX;

    check_heap(h);
    for (size_t i = 0; i < n; i++) {
        const struct heap_node *node = &t[i].node;
        int ok = t[i].in_heap ? node->pos != 0 && node->pos <= h->n &&
                                    h->v[node->pos - 1] == node && node->key == t[i].key
                              : node->pos == 0;
        if (!ok)
            ck_abort_msg("timer %zu (in heap: %d) pos %zu key %lld, model key %lld", i,
                         t[i].in_heap, node->pos, (long long)node->key, (long long)t[i].key);
        if (t[i].in_heap) {
            in++;
            if (t[i].key < min)
                min = t[i].key;
        }
    }
    ck_assert_uint_eq(h->n, in);
    if (in)
        ck_assert_int_eq(heap_top(h)->key, min);
    else
        ck_assert_ptr_null(heap_top(h));
}

START_TEST(test_empty)
{
    struct heap h;
    struct timer t = {0};

    heap_init(&h);
    ck_assert_ptr_null(heap_top(&h));
    heap_remove(&h, &t.node); /* not in the heap: nothing happens */
    ck_assert_uint_eq(h.n, 0);
    heap_release(&h);
}
END_TEST

START_TEST(test_pop_in_order)
{
    enum { N = 5000 };
    struct timer *t = calloc(N, sizeof(*t));
    struct unit_rng rng;
    struct heap h;
    int64_t prev = INT64_MIN;

    unit_rng_init(&rng, "heap test_pop_in_order");
    heap_init(&h);
    for (int i = 0; i < N; i++)
        heap_set(&h, &t[i].node, (int64_t)unit_below(&rng, 1000) - 500); /* many equal keys */
    check_heap(&h);
    ck_assert_uint_eq(h.n, N);
    for (int i = 0; i < N; i++) {
        struct heap_node *top = heap_top(&h);
        ck_assert_ptr_nonnull(top);
        ck_assert_int_ge(top->key, prev);
        prev = top->key;
        heap_remove(&h, top);
        ck_assert_uint_eq(top->pos, 0);
    }
    ck_assert_ptr_null(heap_top(&h));
    heap_release(&h);
    free(t);
}
END_TEST

START_TEST(test_rekey)
{
    struct heap h;
    struct timer t[4] = {{.in_heap = 0}};

    heap_init(&h);
    heap_set(&h, &t[0].node, 10);
    heap_set(&h, &t[1].node, 20);
    heap_set(&h, &t[2].node, 30);
    heap_set(&h, &t[3].node, 40);
    ck_assert_ptr_eq(heap_top(&h), &t[0].node);
    /* Moving the top later lets the next one up. */
    heap_set(&h, &t[0].node, 35);
    ck_assert_ptr_eq(heap_top(&h), &t[1].node);
    check_heap(&h);
    /* Moving a deep node earlier brings it to the top. */
    heap_set(&h, &t[3].node, 5);
    ck_assert_ptr_eq(heap_top(&h), &t[3].node);
    check_heap(&h);
    /* Setting the same key keeps it in place; the heap is unchanged. */
    heap_set(&h, &t[3].node, 5);
    ck_assert_ptr_eq(heap_top(&h), &t[3].node);
    ck_assert_uint_eq(h.n, 4);
    check_heap(&h);
    heap_release(&h);
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(t[i].node.pos, 0);
}
END_TEST

START_TEST(test_remove_middle)
{
    enum { N = 64 };
    struct timer t[N];
    struct heap h;

    memset(t, 0, sizeof(t));
    heap_init(&h);
    for (int i = 0; i < N; i++) {
        t[i].key = (i * 37) % N;
        t[i].in_heap = 1;
        heap_set(&h, &t[i].node, t[i].key);
    }
    check_model(&h, t, N);
    /* Remove nodes from every depth, including the last slot. */
    for (int i = 0; i < N; i += 3) {
        heap_remove(&h, &t[i].node);
        t[i].in_heap = 0;
        check_model(&h, t, N);
    }
    heap_remove(&h, h.v[h.n - 1]);
    for (int i = 0; i < N; i++)
        if (t[i].in_heap && t[i].node.pos == 0)
            t[i].in_heap = 0;
    check_model(&h, t, N);
    heap_release(&h);
}
END_TEST

START_TEST(test_random_model)
{
    enum { N = 1000, STEPS = 100000 };
    struct timer *t = calloc(N, sizeof(*t));
    struct unit_rng rng;
    struct heap h;

    unit_rng_init(&rng, "heap test_random_model");
    heap_init(&h);
    for (int step = 0; step < STEPS; step++) {
        struct timer *x = &t[unit_below(&rng, N)];
        if (unit_below(&rng, 4) == 0) {
            heap_remove(&h, &x->node);
            x->in_heap = 0;
        } else {
            x->key = (int64_t)unit_below(&rng, 10000) - 5000;
            heap_set(&h, &x->node, x->key);
            x->in_heap = 1;
        }
        /* The full check is O(n): do it often, not always. */
        if (step % 97 == 0)
            check_model(&h, t, N);
        else if ((heap_top(&h) != NULL) != (h.n != 0))
            ck_abort_msg("step %d: top and count disagree", step);
    }
    check_model(&h, t, N);
    heap_release(&h);
    free(t);
}
END_TEST

static Suite *heap_suite(void)
{
    Suite *s = suite_create("heap");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_pop_in_order);
    tcase_add_test(tc, test_rekey);
    tcase_add_test(tc, test_remove_middle);
    tcase_add_test(tc, test_random_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(heap_suite());
}
