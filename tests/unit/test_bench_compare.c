/*
 * test_bench_compare.c - tools/larkbench/compare: the bench-peers table.
 *
 * The published lark/Nchan ratios come from here, so the arithmetic is
 * checked on JSON lines made up for it: medians over rounds, the ratio
 * taken within each round and then its median (not the ratio of the
 * medians), sums of lost and duplicated, the window's rate preferred to the
 * drain's, and the lines of other runs, scenarios and rounds without a
 * partner left out.
 */
#include "tools/larkbench/compare.h"

#include "tests/unit/unit.h"

#include <jansson.h>
#include <string.h>

/* One fanout JSON line as larkbench writes it (only the fields compare reads). */
static void line(FILE *f, const char *round, const char *target, const char *tr, double rate,
                 double p50, double p99, double window_rate, double lag99, int lost, int dup)
{
    fprintf(f,
            "{\"scenario\":\"fanout\",\"round\":\"%s\",\"target\":\"%s\",\"transport\":\"%s\","
            "\"rate\":%.1f,\"delivery_latency\":{\"n\":10,\"p50_ms\":%.3f,\"p99_ms\":%.3f},"
            "\"send_rate\":%.1f,\"window_rate\":%.1f,\"send_lag\":{\"p99_ms\":%.3f},"
            "\"lost\":%d,\"duplicated\":%d}\n",
            round, target, tr, rate, p50, p99, rate, window_rate, lag99, lost, dup);
}

/* The "peers" line of transport tr in the file at path. */
static json_t *peers_row(const char *path, const char *tr)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    json_t *found = NULL;
    ck_assert_ptr_nonnull(f);
    while (!found && fgets(buf, sizeof(buf), f)) {
        json_error_t jerr;
        json_t *o = json_loads(buf, 0, &jerr);
        const char *sc = json_string_value(json_object_get(o, "scenario"));
        const char *t = json_string_value(json_object_get(o, "transport"));
        if (sc && t && strcmp(sc, "peers") == 0 && strcmp(t, tr) == 0)
            found = o;
        else
            json_decref(o);
    }
    fclose(f);
    return found;
}

static double num(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    ck_assert_msg(json_is_number(v), "%s.%s is not a number", a, b ? b : "");
    return json_number_value(v);
}

START_TEST(test_medians_and_ratios)
{
    char *dir = unit_tmpdir(), *in = unit_path(dir, "in.jsonl"), *out = unit_path(dir, "out.jsonl");
    char a0[] = "compare", a2[] = "--round-prefix", a3[] = "run1/", a4[] = "--json";
    char *argv[] = {a0, in, a2, a3, a4, out};
    FILE *f = fopen(in, "w");
    json_t *row;
    ck_assert_ptr_nonnull(f);
    /* sse at 1000, three rounds. p50 ratios 10, 15, 3 -> median 10 (the
     * medians' ratio would be 1.5 / 0.2 = 7.5); p99 ratios 10, 2, 3 ->
     * median 3 (the medians' ratio: 8 / 2 = 4). */
    line(f, "run1/1", "nchan", "sse", 1000, 0.1, 1.0, 1000, 1.0, 0, 0);
    line(f, "run1/1", "lark", "sse", 1000, 1.0, 10.0, 1000, 2.0, 1, 0);
    line(f, "run1/2", "lark", "sse", 1000, 3.0, 8.0, 990, 3.0, 0, 2);
    line(f, "run1/2", "nchan", "sse", 1000, 0.2, 4.0, 1000, 2.0, 0, 0);
    line(f, "run1/3", "nchan", "sse", 1000, 0.5, 2.0, 1000, 3.0, 0, 1);
    line(f, "run1/3", "lark", "sse", 1000, 1.5, 6.0, 980, 5.0, 2, 0);
    /* fsync floors (tools/fsyncbench.c) of rounds 1 and 3 at 1000/s, one at
     * another rate: lark p99 / (Nchan p99 + fsync p99) = 10 / (1 + 1) = 5
     * and 6 / (2 + 1) = 2 -> median 3.5; the floors' median p99 is 1 */
    fprintf(f, "{\"scenario\":\"fsync\",\"round\":\"run1/1\",\"rate\":1000.0,"
               "\"latency\":{\"n\":5,\"p50_ms\":0.2,\"p99_ms\":1.0}}\n");
    fprintf(f, "{\"scenario\":\"fsync\",\"round\":\"run1/3\",\"rate\":1000.0,"
               "\"latency\":{\"n\":5,\"p50_ms\":0.2,\"p99_ms\":1.0}}\n");
    fprintf(f, "{\"scenario\":\"fsync\",\"round\":\"run1/2\",\"rate\":3000.0,"
               "\"latency\":{\"n\":5,\"p50_ms\":0.2,\"p99_ms\":9.0}}\n");
    /* Other runs, another scenario, and a round without its pair. */
    line(f, "run2/1", "lark", "sse", 1000, 99, 99, 1, 99, 99, 99);
    fprintf(f, "{\"scenario\":\"throughput\",\"round\":\"run1/1\",\"target\":\"lark\"}\n");
    fprintf(f, "not json at all\n");
    line(f, "run1/1", "lark", "poll", 3000, 20, 60, 1600, 6000, 0, 0);
    ck_assert_int_eq(fclose(f), 0);

    ck_assert_int_eq(compare_main(6, argv), 0);
    row = peers_row(out, "sse");
    ck_assert_ptr_nonnull(row);
    ck_assert_double_eq_tol(num(row, "rate", NULL), 1000, 1e-9);
    ck_assert_int_eq((int)num(row, "pairs", NULL), 3);
    ck_assert_double_eq_tol(num(row, "nchan", "p50_ms"), 0.2, 1e-9);
    ck_assert_double_eq_tol(num(row, "nchan", "p99_ms"), 2.0, 1e-9);
    ck_assert_double_eq_tol(num(row, "lark", "p50_ms"), 1.5, 1e-9);
    ck_assert_double_eq_tol(num(row, "lark", "p99_ms"), 8.0, 1e-9);
    ck_assert_double_eq_tol(num(row, "lark", "achieved_msg_s"), 990, 1e-9);
    ck_assert_double_eq_tol(num(row, "lark", "send_lag_p99_ms"), 3.0, 1e-9);
    ck_assert_int_eq((int)num(row, "lark", "lost"), 3);
    ck_assert_int_eq((int)num(row, "lark", "duplicated"), 2);
    ck_assert_int_eq((int)num(row, "nchan", "duplicated"), 1);
    ck_assert_double_eq_tol(num(row, "ratio_p50", NULL), 10.0, 1e-6);
    ck_assert_double_eq_tol(num(row, "ratio_p99", NULL), 3.0, 1e-6);
    ck_assert_double_eq_tol(num(row, "fsync_p99_ms", NULL), 1.0, 1e-6);
    ck_assert_double_eq_tol(num(row, "ratio_p99_to_nchan_plus_fsync", NULL), 3.5, 1e-6);
    json_decref(row);
    /* A row with one side only: no ratio. */
    row = peers_row(out, "poll");
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq((int)num(row, "pairs", NULL), 0);
    ck_assert(json_is_null(json_object_get(row, "ratio_p99")));
    ck_assert(json_is_null(json_object_get(row, "ratio_p99_to_nchan_plus_fsync")));
    json_decref(row);
    ck_assert_ptr_null(peers_row(out, "fsync")); /* a floor is not a row */

    unit_rmtree(dir);
    free(in);
    free(out);
    free(dir);
}
END_TEST

START_TEST(test_usage_and_no_pairs)
{
    char *dir = unit_tmpdir(), *in = unit_path(dir, "in.jsonl");
    char a0[] = "compare", nofile[] = "/nonexistent/file.jsonl", a2[] = "--round-prefix",
         a3[] = "nothing/";
    char *missing[] = {a0, nofile};
    char *odd[] = {a0, in, a2};
    char *none[] = {a0, in, a2, a3};
    unit_write_file(in, "");
    ck_assert_int_eq(compare_main(2, missing), 2);
    ck_assert_int_eq(compare_main(3, odd), 2);
    ck_assert_int_eq(compare_main(4, none), 1);
    unit_rmtree(dir);
    free(in);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bench_compare");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_medians_and_ratios);
    tcase_add_test(tc, test_usage_and_no_pairs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
