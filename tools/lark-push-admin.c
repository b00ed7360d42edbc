/*
 * lark-push-admin - look at and re-queue push dead letters.
 *
 *   lark-push-admin [--config FILE] list [--limit N] [--before ID] [--json]
 *   lark-push-admin [--config FILE] requeue ID... | --all
 *   lark-push-admin [--config FILE] stats
 *
 * Goes through core/store.h like the daemons, so it works on any back end
 * and with larkd and lark-push running (SQLite: one more short writer).
 * A re-queued job is due at once with its attempts reset; a dead letter
 * whose device has been removed since is dropped instead (its token is
 * gone for good).
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/pushstat.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "core/version.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Dead letters listed at most per call (page with --before). */
#define ADMIN_LIST_MAX 1000
/* The Prometheus text of the push counters. */
#define ADMIN_STATS_MAX (64 * 1024)

static void usage(FILE *out)
{
    fprintf(out, "usage: lark-push-admin [--config FILE] COMMAND\n"
                 "       lark-push-admin --version\n"
                 "\n"
                 "  list [--limit N] [--before ID] [--json]\n"
                 "                  dead letters, newest first (default limit 50)\n"
                 "  requeue ID...   put these dead letters back in the queue, due now\n"
                 "  requeue --all   put every dead letter back\n"
                 "  stats           the push counters, as GET /metrics shows them\n"
                 "\n"
                 "The database comes from the same configuration as larkd's (LARK_DB,\n"
                 "LARK_DATA, --config / LARK_CONFIG).\n");
}

static int parse_id(const char *s, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

static int cmd_list(struct store_conn *db, int argc, char **argv)
{
    int64_t before = 0, limit = 50;
    int as_json = 0, rc;
    struct lark_err err = {0};
    json_t *list = NULL, *d;
    size_t i;

    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--json") == 0)
            as_json = 1;
        else if (a + 1 < argc &&
                 ((strcmp(argv[a], "--limit") == 0 && parse_id(argv[a + 1], &limit) == 0 &&
                   limit <= ADMIN_LIST_MAX) ||
                  (strcmp(argv[a], "--before") == 0 && parse_id(argv[a + 1], &before) == 0)))
            a++; /* the option's value */
        else {
            fprintf(stderr, "list: bad option %s (limit is 1-%d)\n", argv[a], ADMIN_LIST_MAX);
            return 2;
        }
    }
    rc = store_push_dead_list(db, before, (unsigned)limit, &list, &err);
    if (rc) {
        fprintf(stderr, "list: %s\n", err.msg);
        return 1;
    }
    if (as_json) {
        char *text = json_dump(list, 0, NULL);
        printf("%s\n", text);
        free(text);
    } else {
        printf("%-8s %-24s %-16s %-5s %-8s %s\n", "ID", "DIED", "USER", "PLAT", "ATTEMPTS",
               "LAST ERROR");
        json_array_foreach (list, i, d) {
            printf("%-8" JSON_INTEGER_FORMAT " %-24s %-16s %-5s %-8" JSON_INTEGER_FORMAT " %s\n",
                   json_integer_value(json_object_get(d, "id")),
                   json_string_value(json_object_get(d, "died_at")),
                   json_string_value(json_object_get(d, "user")),
                   json_string_value(json_object_get(d, "platform")),
                   json_integer_value(json_object_get(d, "attempts")),
                   json_string_value(json_object_get(d, "last_error")));
        }
    }
    json_decref(list);
    return 0;
}

static int cmd_requeue(struct store_conn *db, int argc, char **argv)
{
    struct lark_err err = {0};
    int status = 0;

    if (argc < 2) {
        fprintf(stderr, "requeue: give dead letter ids, or --all\n");
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        int64_t id = 0;
        size_t n = 0;
        if (strcmp(argv[a], "--all") != 0 && parse_id(argv[a], &id) != 0) {
            fprintf(stderr, "requeue: '%s' is not an id\n", argv[a]);
            status = 2;
            continue;
        }
        if (store_push_requeue(db, id, time_now_ms(), &n, &err) != 0) {
            fprintf(stderr, "requeue %s: %s\n", argv[a], err.msg);
            status = 1;
            continue;
        }
        printf("requeue %s: %zu job(s) queued%s\n", argv[a], n,
               id && n == 0 ? " (device gone: dropped)" : "");
    }
    return status;
}

static int cmd_stats(struct store_conn *db)
{
    struct pushstat st;
    struct lark_err err = {0};
    struct buf text;
    int rc = store_push_stats(db, &st, &err);

    if (rc) {
        fprintf(stderr, "stats: %s\n", err.msg);
        return 1;
    }
    buf_init(&text, ADMIN_STATS_MAX);
    rc = pushstat_render(&st, &text);
    if (rc == 0)
        fputs(text.data, stdout);
    buf_release(&text);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    struct config cfg;
    struct lark_err err = {0};
    struct store *store = NULL;
    struct store_conn *db = NULL;
    int c, status = 1;

    /* '+': options after the command belong to the command */
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'V': version_print(stdout, "lark-push-admin"); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    umask(umask(0) | S_IWGRP | S_IRWXO); /* as larkd: nothing for other users */
    log_init("lark-push-admin", LOG_WARN);
    if (config_load(&cfg, config_path, &err) != 0) {
        fprintf(stderr, "configuration: %s\n", err.msg);
        return 2;
    }
    log_set_format((enum log_format)log_format_parse(cfg.log_format));
    if (store_open(&cfg, &store, &err) != 0 || store_conn_open(store, &db, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    if (strcmp(argv[optind], "list") == 0)
        status = cmd_list(db, argc - optind, argv + optind);
    else if (strcmp(argv[optind], "requeue") == 0)
        status = cmd_requeue(db, argc - optind, argv + optind);
    else if (strcmp(argv[optind], "stats") == 0)
        status = cmd_stats(db);
    else {
        usage(stderr);
        status = 2;
    }
out:
    store_conn_close(db);
    store_close(store);
    config_release(&cfg);
    return status;
}
