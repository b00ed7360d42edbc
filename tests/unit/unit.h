/*
 * unit.h - what every unit test program shares: the runner, a seeded
 * random generator and temporary directories.
 *
 * Each tests/unit/test_<module>.c is its own program: its main builds one
 * Check suite and returns unit_run(suite). Every program runs with
 * CK_NOFORK, for two reasons:
 *   - LeakSanitizer (the asan build) checks the whole process at exit, and
 *     the leaking allocation's stack names the test it came from. Forked
 *     children would each report and exit with LSan's code instead, which
 *     Check turns into a vague "early exit" error.
 *   - The store tests start threads (the SQLite writer); forking a threaded
 *     process is not safe.
 * The cost: a test that crashes ends its program, which tools/unit.sh
 * reports as a failed program; a failed ck_assert still ends only its own
 * test. Because tests share one process, a test must undo what it changes
 * in the process (environment, rlimits, signal dispositions), and ck_assert
 * is only ever called from the thread that runs the test.
 *
 * Header-only (static inline), because the Makefile links each test
 * program from its own object alone plus the core and fcgi objects.
 */
#ifndef LARK_TEST_UNIT_H
#define LARK_TEST_UNIT_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run every test of s in this process; the program's exit status. */
static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * xorshift64* (Vigna): small, fast and good enough to drive model tests.
 * The seed is fixed so that a failure replays; LARK_TEST_SEED overrides it
 * and the seed in use is printed so that a failing run can be repeated.
 */
struct unit_rng {
    uint64_t s; /* state, never 0 */
};

static inline void unit_rng_init(struct unit_rng *r, const char *who)
{
    const char *env = getenv("LARK_TEST_SEED");
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    if (env && *env)
        seed = strtoull(env, NULL, 0);
    if (seed == 0)
        seed = 1;
    r->s = seed;
    fprintf(stderr, "%s: seed=0x%" PRIx64 " (set LARK_TEST_SEED to repeat)\n", who, seed);
}

static inline uint64_t unit_rand(struct unit_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform-enough value in [0, n), n > 0. */
static inline uint64_t unit_below(struct unit_rng *r, uint64_t n)
{
    return unit_rand(r) % n;
}

/* A new empty directory under $TMPDIR (or /tmp); the caller frees the
 * returned path and removes the directory with unit_rmtree. */
static inline char *unit_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    size_t len;
    char *path;

    if (!base || !*base)
        base = "/tmp";
    len = strlen(base) + sizeof("/lark-unit-XXXXXX");
    path = malloc(len);
    ck_assert_ptr_nonnull(path);
    snprintf(path, len, "%s/lark-unit-XXXXXX", base);
    ck_assert_msg(mkdtemp(path) != NULL, "mkdtemp %s failed: errno %d", path, errno);
    return path;
}

static inline int unit_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove dir and everything below it. Accepts NULL. */
static inline void unit_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir + "/" + name in a new string the caller frees. */
static inline char *unit_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    ck_assert_ptr_nonnull(p);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Write text to path, replacing it. */
static inline void unit_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

#endif
