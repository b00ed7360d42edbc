/*
 * main.c - lark-push: the push daemon (DESIGN.md "Push daemon").
 *
 * One thread runs everything: a loop that gives the queue a turn
 * (queue.h) and then sleeps in curl_multi_poll on the providers' sockets,
 * the store's wake-up descriptor and a signalfd, for as long as the queue
 * says. Nothing busy-waits: the wake-up (store_push_watch) is inotify on a
 * file larkd touches after committing jobs (SQLite) or LISTEN lark_push
 * (PostgreSQL), plus a timer for the next due job.
 *
 * SIGHUP reads the configuration again and applies log_level and
 * log_format; a change to any other key is logged as needing a restart
 * (credentials and endpoints belong to connections in flight).
 *
 * Shutdown: SIGTERM or SIGINT stops claiming; requests in flight finish
 * (each has push_timeout_ms) and their outcomes are recorded, then the
 * daemon exits 0. Past DRAIN_MAX_MS what is left is abandoned: those jobs
 * are claimed again when their leases end.
 */
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "core/version.h"
#include "push/net.h"
#include "push/queue.h"

#include <curl/curl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* After SIGTERM, give up on what is in flight past push_timeout_ms plus this. */
#define DRAIN_MARGIN_MS 2000

static void usage(FILE *out)
{
    fprintf(out, "usage: lark-push [--config FILE] [--version] [--help]\n"
                 "\n"
                 "The lark push daemon: sends FCM and APNs notifications for messages to\n"
                 "users who are offline, from the push jobs larkd stores. Configure at\n"
                 "least one provider (fcm_credentials, or apns_key with apns_key_id and\n"
                 "apns_team_id). Shares larkd's configuration keys and database.\n"
                 "\n"
                 "  --config FILE  read settings from FILE (also LARK_CONFIG)\n"
                 "  --version      print the release and commit, and exit\n"
                 "  --help         this text\n"
                 "\n"
                 "Signals: SIGTERM or SIGINT finish the requests in flight and exit;\n"
                 "SIGHUP reads the configuration again and applies the log settings.\n"
                 "Logs go to stderr, one line per event.\n\n");
    config_help(out);
}

static int parse_args(int argc, char **argv, const char **config_path)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *config_path = optarg; break;
        case 'V': version_print(stdout, "lark-push"); exit(0);
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static void restart_key(const char *key, void *arg)
{
    (void)arg;
    if (strcmp(key, "log_level") != 0 && strcmp(key, "log_format") != 0)
        log_warn("reload: %s changed; restart lark-push to apply it", key);
}

/* SIGHUP: the log settings now, every other change at the next start. */
static void push_reload(const struct config *cfg, const char *config_path)
{
    struct config next;
    struct lark_err err = {0};

    if (config_load(&next, config_path, &err) != 0) {
        log_error("reload: refused, nothing changed: %s", err.msg);
        return;
    }
    log_set_level((enum log_level)log_level_parse(next.log_level));
    log_set_format((enum log_format)log_format_parse(next.log_format));
    log_info("reload: done log_level=%s log_format=%s", next.log_level, next.log_format);
    config_each_diff(cfg, &next, restart_key, NULL);
    config_release(&next);
}

/* Run until a signal has drained the queue. */
static int serve(const struct config *cfg, const char *config_path, struct queue *q,
                 struct net *net, int sigfd)
{
    int64_t deadline = 0;
    int draining = 0, watching = 1;

    for (;;) {
        struct lark_err err = {0};
        int watch_fd = -1;
        int64_t wait;
        /* asked each turn: a PostgreSQL listener reconnects after a failure */
        if (queue_watch(q, &watch_fd, &err) != 0 && watching)
            log_warn("not watching for new jobs (timers only until it works again): %s", err.msg);
        watching = watch_fd >= 0;
        struct curl_waitfd fds[2] = {{sigfd, CURL_WAIT_POLLIN, 0}, {watch_fd, CURL_WAIT_POLLIN, 0}};
        wait = queue_turn(q, draining);
        if (!watching && wait > QUEUE_STORE_RETRY_MS)
            wait = QUEUE_STORE_RETRY_MS; /* try the watch again soon */
        if (draining && queue_busy(q) == 0)
            break;
        if (draining && time_mono_ms() > deadline) {
            log_warn("stop: %zu requests abandoned; their jobs are claimed again after the lease",
                     queue_busy(q));
            break;
        }
        net_poll(net, fds, watching ? 2 : 1, wait > INT32_MAX ? INT32_MAX : (int)wait);
        if (fds[0].revents) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
                /* nothing to read after all */
            } else if (si.ssi_signo == SIGHUP) {
                push_reload(cfg, config_path);
            } else if (!draining) {
                log_info("stopping signal=%u in_flight=%zu", si.ssi_signo, queue_busy(q));
                draining = 1;
                deadline = time_mono_ms() + cfg->push_timeout_ms + DRAIN_MARGIN_MS;
            }
        }
        if (fds[1].revents)
            queue_watch_drain(q);
    }
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    const char *config_path = NULL;
    struct lark_err err = {0};
    struct store *store = NULL;
    struct net *net = NULL;
    struct queue *q = NULL;
    int status = 1, sigfd = -1;
    sigset_t mask;

    if (parse_args(argc, argv, &config_path) != 0)
        return 2;
    /* nothing it creates (a new SQLite database) is for other users */
    umask(umask(0) | S_IWGRP | S_IRWXO);
    log_init("lark-push", LOG_INFO);
    if (config_load(&cfg, config_path, &err) != 0) {
        log_error("configuration: %s", err.msg);
        return 2;
    }
    log_init("lark-push", (enum log_level)log_level_parse(cfg.log_level));
    log_set_format((enum log_format)log_format_parse(cfg.log_format));
    if (!*cfg.fcm_credentials && !*cfg.apns_key) {
        log_error("configuration: no provider: set LARK_FCM_CREDENTIALS and/or LARK_APNS_KEY");
        config_release(&cfg);
        return 2;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("start-up: cannot set up signals or libcurl");
        goto out;
    }
    if (store_open(&cfg, &store, &err) != 0 || net_new(&cfg, &net, &err) != 0 ||
        queue_new(&cfg, store, net, &q, &err) != 0) {
        log_error("start-up: %s", err.msg);
        goto out;
    }
    log_info("ready store=%s fcm=%s apns=%s inflight=%d window_ms=%d attempts=%d",
             store_backend(store), *cfg.fcm_credentials ? cfg.fcm_endpoint : "off",
             *cfg.apns_key ? cfg.apns_endpoint : "off", cfg.push_inflight, cfg.push_window_ms,
             cfg.push_attempts);
    status = serve(&cfg, config_path, q, net, sigfd);
    log_info("connections opened=%ld", net_connects(net));
out:
    queue_free(q);
    net_free(net);
    store_close(store);
    curl_global_cleanup();
    if (sigfd >= 0)
        close(sigfd);
    config_release(&cfg);
    return status;
}
