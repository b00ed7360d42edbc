/*
 * fuzz_config.c - libFuzzer target for the configuration file parser
 * (core/config.h): "key = value" lines, '#' comments, every key in one
 * table with its type and range. An operator's file is trusted input, but
 * a typo must give an error naming the line, never a crash, a key silently
 * kept at its default, or a value outside its range.
 *
 * The input is the file. It is written to a memfd and loaded through its
 * /proc/self/fd path by config_load itself - the real entry point, with
 * the environment emptied of LARK_* so that only the file counts. Then:
 *   - a refused file leaves nothing allocated (LeakSanitizer checks);
 *   - an accepted one satisfies the checks config_load promises across
 *     keys (poll_timeout <= poll_timeout_max, presence_ttl >
 *     presence_interval, push_lease_ms > push_timeout_ms), has every
 *     string set, and loads again to the same values (config_each_diff
 *     finds nothing), as does its copy (config_copy); every item of its
 *     comma-separated lists is found by config_list_has.
 */
#include "core/config.h"

#include "core/err.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Longest list item check_list looks up. */
#define CONFIG_ITEM_MAX 512

extern char **environ;

static void count_diff(const char *key, void *arg)
{
    (void)key;
    (*(int *)arg)++;
}

/* Every item of a comma-separated list (spaces around it trimmed) is
 * found in it by config_list_has, as cors_origins and metrics_allow are. */
static void check_list(const char *list)
{
    const char *p = list;
    for (;;) {
        char item[CONFIG_ITEM_MAX];
        size_t len = strcspn(p, ","), a = 0, z = len;
        while (a < z && p[a] == ' ')
            a++;
        while (z > a && p[z - 1] == ' ')
            z--;
        if (z > a && z - a < sizeof(item)) {
            memcpy(item, p + a, z - a);
            item[z - a] = '\0';
            CHECK(config_list_has(list, item));
        }
        if (!p[len])
            break;
        p += len + 1;
    }
}

/* Remove every LARK_* variable: only the file decides. */
static void clear_env(void)
{
    for (;;) {
        char name[256];
        char **e = environ;
        while (*e && strncmp(*e, "LARK_", 5) != 0)
            e++;
        if (!*e)
            return;
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
        unsetenv(name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    struct config a, b, c;
    struct lark_err err = {0};
    int diffs = 0;

    if (fd < 0) {
        clear_env();
        fd = memfd_create("lark-fuzz-config", MFD_CLOEXEC);
        CHECK(fd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
    if (config_load(&a, path, &err) != 0) {
        CHECK(err.code == LARK_EINVAL && err.msg[0]);
        return 0;
    }
    CHECK(a.data_dir && a.db && a.migrations && a.listen && a.ws_listen && a.jwt_secret);
    CHECK(a.poll_timeout <= a.poll_timeout_max);
    CHECK(a.presence_ttl > a.presence_interval);
    CHECK(a.push_lease_ms > a.push_timeout_ms);
    check_list(a.cors_origins);
    check_list(a.metrics_allow);
    CHECK(config_load(&b, path, &err) == 0);
    config_each_diff(&a, &b, count_diff, &diffs);
    config_copy(&c, &a);
    config_each_diff(&a, &c, count_diff, &diffs);
    CHECK(diffs == 0);
    config_release(&a);
    config_release(&b);
    config_release(&c);
    return 0;
}
