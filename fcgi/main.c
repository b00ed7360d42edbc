/*
 * main.c - larkd: the lark FastCGI daemon.
 *
 * Start-up: configuration, verifier, store (migrations run here), the
 * FastCGI listening socket, the hub thread, then the worker threads that
 * loop on FCGX_Accept_r. Several threads may block in FCGX_Accept_r on one
 * socket at once on Linux (DESIGN.md), so there is no accept mutex.
 *
 * Shutdown (API.md "Operations"): signals are blocked in every thread and
 * read by the hub from a signalfd. SIGHUP reloads the configuration on a
 * thread of its own (fcgi/reload.h). On SIGTERM or SIGINT the hub drains
 * (held long-polls answered, SSE streams told to reconnect, new requests
 * answered 503) for drain_grace_ms; then main shuts the listening socket
 * down, which releases every worker blocked in accept at once, joins them,
 * stops the hub and closes the store.
 */
#include "core/auth.h"
#include "core/blob.h"
#include "core/config.h"
#include "core/err.h"
#include "core/lockfile.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "core/version.h"
#include "fcgi/app.h"
#include "fcgi/cgi.h"
#include "fcgi/hold.h"
#include "fcgi/hub.h"
#include "fcgi/live.h"
#include "fcgi/media_sweep.h"
#include "fcgi/quota.h"
#include "fcgi/reload.h"
#include "fcgi/router.h"
#include "fcgi/wsbridge.h"

#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Free memory glibc may keep rather than return to the kernel (see main). */
#define MALLOC_KEEP_BYTES (256 * 1024 * 1024)
/* How much glibc asks the kernel for beyond each request that grows a heap. */
#define MALLOC_TOP_PAD_BYTES (64 * 1024 * 1024)
/* After a transient accept failure (e.g. EMFILE), wait this long. */
#define ACCEPT_RETRY_NS (10 * 1000 * 1000)

struct worker {
    pthread_t thread;
    struct app *app;
    int listen_fd;
    atomic_int *stopping;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: larkd [--config FILE] [--migrate] [--version] [--help]\n"
                 "\n"
                 "The lark chat service as a FastCGI daemon. Run it beside lighttpd\n"
                 "(conf/lighttpd.conf) and point fastcgi.server at its socket.\n"
                 "\n"
                 "  --config FILE  read settings from FILE (also LARK_CONFIG)\n"
                 "  --migrate      apply database migrations and exit\n"
                 "  --version      print the release and commit, and exit\n"
                 "  --help         this text\n"
                 "\n"
                 "Signals: SIGTERM or SIGINT drain (held requests answered, new ones\n"
                 "get 503) and exit. SIGHUP reads the configuration again and applies\n"
                 "the keys, log settings, CORS origins, metrics addresses and rate\n"
                 "limits without dropping a connection. Logs go to stderr, one line\n"
                 "per event.\n\n");
    config_help(out);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct store_conn *db = NULL;
    struct lark_err err = {0};
    FCGX_Request fr;

    pthread_setname_np(pthread_self(), "lark-worker");
    if (store_conn_open(w->app->store, &db, &err) != 0) {
        log_error("worker cannot open a store connection: %s", err.msg);
        return NULL;
    }
    FCGX_InitRequest(&fr, w->listen_fd, 0);
    for (;;) {
        struct req r = {.app = w->app, .fcgx = &fr, .db = db};
        int rc = FCGX_Accept_r(&fr);
        if (rc < 0) {
            struct timespec ts = {0, ACCEPT_RETRY_NS};
            if (atomic_load(w->stopping))
                break;
            log_warn("accept failed: errno=%d", -rc);
            nanosleep(&ts, NULL);
            continue;
        }
        router_handle(&r);
        if (!r.detached)
            FCGX_Finish_r(&fr);
    }
    FCGX_Free(&fr, 1);
    store_conn_close(db);
    return NULL;
}

static int open_listener(const struct config *cfg, int *fd, struct stat *st, struct lark_err *err)
{
    unlink(cfg->listen); /* a stale socket from a previous run */
    *fd = FCGX_OpenSocket(cfg->listen, cfg->listen_backlog);
    if (*fd < 0 || stat(cfg->listen, st) != 0)
        return lark_err_set(err, LARK_EINVAL, "cannot listen on %s (errno %d)", cfg->listen, errno);
    /* lighttpd may run as another user of the same group */
    chmod(cfg->listen, 0660);
    return 0;
}

/* Remove our socket file, unless a newer larkd has replaced it since. */
static void remove_listener(const char *path, const struct stat *mine)
{
    struct stat now;
    if (stat(path, &now) == 0 && now.st_ino == mine->st_ino && now.st_dev == mine->st_dev)
        unlink(path);
}

static int parse_args(int argc, char **argv, const char **config_path, int *migrate_only)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"migrate", no_argument, NULL, 'm'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:mh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *config_path = optarg; break;
        case 'm': *migrate_only = 1; break;
        case 'V': version_print(stdout, "larkd"); exit(0);
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

/*
 * One larkd per socket and per SQLite database (core/lockfile.h): a second
 * one would take the socket from the first, or write the same file. Taken
 * before the store is opened, so a refused larkd changes nothing.
 */
static int take_locks(const struct config *cfg, int fds[2], struct lark_err *err)
{
    char *path = xasprintf("%s.lock", cfg->listen);
    int rc = lockfile_take(path, cfg->listen, &fds[0], err);

    free(path);
    if (rc == 0 && strncmp(cfg->db, "sqlite:", 7) == 0) {
        path = xasprintf("%s.lock", cfg->db + 7);
        rc = lockfile_take(path, cfg->db + 7, &fds[1], err);
        free(path);
    }
    if (rc == LARK_ECONFLICT) {
        char why[LARK_ERR_MSG_MAX];
        snprintf(why, sizeof(why), "%s", err->msg);
        lark_err_set(err, rc, "%s: stop it first, or give this larkd a data directory of its own",
                     why);
    }
    return rc;
}

/* Run the FastCGI server until a stop signal has drained it. */
static int serve(struct app *app, const char *config_path)
{
    struct lark_err err = {0};
    struct worker *workers = NULL;
    struct stat sock_st;
    atomic_int stopping = 0;
    int listen_fd = -1, nworkers = 0, status = 1;

    /* The FastCGI socket comes last: once it accepts, everything else it
     * leads to (the WebSocket socket, the reload thread) is there too, so
     * whoever waits for it (tools/run.sh, the tests, an operator's script)
     * may send anything next. */
    if (FCGX_Init() != 0 || reload_new(app, config_path, &app->reload, &err) != 0 ||
        hub_new(app, &app->hub, &err) != 0 ||
        (*app->cfg.ws_listen && strcmp(app->cfg.ws_listen, "off") != 0 &&
         ws_bridge_open(app->hub, app->cfg.ws_listen, app->cfg.ws_workers, &err) != 0) ||
        open_listener(&app->cfg, &listen_fd, &sock_st, &err) != 0) {
        log_error("start-up: %s", err.msg[0] ? err.msg : "FCGX_Init failed");
        goto out;
    }
    store_set_listener(app->store, hub_notes, app->hub);
    if (hub_start(app->hub, &err) != 0 || media_sweep_start(app, &app->sweep, &err) != 0) {
        log_error("start-up: %s", err.msg);
        goto out;
    }
    workers = xcalloc((size_t)app->cfg.workers, sizeof(*workers));
    for (; nworkers < app->cfg.workers; nworkers++) {
        struct worker *w = &workers[nworkers];
        *w = (struct worker){.app = app, .listen_fd = listen_fd, .stopping = &stopping};
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            log_error("cannot start worker %d", nworkers);
            hub_request_drain(app->hub);
            break;
        }
    }
    log_info("ready version=%s socket=%s store=%s workers=%d", version_release(), app->cfg.listen,
             store_backend(app->store), nworkers);

    hub_wait_drained(app->hub);
    atomic_store(&stopping, 1);
    shutdown(listen_fd, SHUT_RDWR); /* releases every worker blocked in accept */
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i].thread, NULL);
    hub_stop(app->hub);
    status = 0;
    log_info("stopped");
out:
    media_sweep_stop(app->sweep);
    app->sweep = NULL;
    store_set_listener(app->store, NULL, NULL); /* the queued writes' notes: nobody to tell */
    if (app->hub)
        ws_bridge_close(app->hub);
    hub_free(app->hub);
    app->hub = NULL;
    reload_free(app->reload);
    app->reload = NULL;
    if (listen_fd >= 0) {
        close(listen_fd);
        remove_listener(app->cfg.listen, &sock_st);
    }
    free(workers);
    return status;
}

/* glibc hands freed memory back to the kernel after every burst and faults
 * it in again on the next: measured, the SQLite writer spent a third of its
 * time in madvise and page faults (docs/BENCHMARKS.md). Keep up to
 * MALLOC_KEEP_BYTES of free memory instead. */
static void malloc_keep(void)
{
    mallopt(M_TRIM_THRESHOLD, MALLOC_KEEP_BYTES);
    mallopt(M_TOP_PAD, MALLOC_TOP_PAD_BYTES);
}

int main(int argc, char **argv)
{
    static struct app app;
    const char *config_path = NULL;
    int migrate_only = 0, status = 1, locks[2] = {-1, -1};
    /* Plain CGI: the web server set GATEWAY_INTERFACE (fcgi/cgi.h) */
    int cgi = getenv("GATEWAY_INTERFACE") != NULL;
    struct cgi_startup t = {.main = time_mono_ns()}; /* CGI: what each request pays */
    struct lark_err err = {0};
    sigset_t mask;

    if (parse_args(argc, argv, &config_path, &migrate_only) != 0)
        return 2;
    if (!cgi) /* a CGI process has one request and no bursts */
        malloc_keep();
    /* Nothing larkd creates is for other users: the database and its WAL
     * come out 0640 at most (the socket is made 0660 for lighttpd's group). */
    umask(umask(0) | S_IWGRP | S_IRWXO);
    log_init("larkd", LOG_INFO);
    if (config_load(&app.cfg, config_path, &err) != 0) {
        log_error("configuration: %s", err.msg);
        return 2;
    }
    log_init("larkd", (enum log_level)log_level_parse(app.cfg.log_level));
    log_set_format((enum log_format)log_format_parse(app.cfg.log_format));
    t.config = time_mono_ns();

    /* Signals go to the hub's signalfd: block them before any thread. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_mutex_init(&app.ticket_mu, NULL);
    if ((!migrate_only && !cgi && take_locks(&app.cfg, locks, &err) != 0) ||
        auth_new(&app.cfg, &app.auth, &err) != 0 || (t.keys = time_mono_ns()) == 0 ||
        store_open_flags(&app.cfg, cgi ? STORE_OPEN_SHORT : 0, &app.store, &err) != 0 ||
        (!migrate_only && blob_open(&app.cfg, &app.blob, &err) != 0)) {
        log_error("start-up: %s", err.msg);
        goto out;
    }
    app.quota = quota_new(&app.cfg);
    app.live = live_new(&app.cfg);
    if (migrate_only) {
        log_info("migrations applied to %s", app.cfg.db);
        status = 0;
    } else if (cgi) {
        t.store = time_mono_ns();
        status = cgi_main(&app, &t);
    } else {
        char keys[256];
        auth_describe(app.auth, keys, sizeof(keys));
        log_info("tokens: %s", keys);
        if (auth_dev_secret_in_use(app.auth))
            log_warn("using the development JWT secret; set LARK_JWT_SECRET in production");
        if (app.cfg.dev_tokens)
            log_warn("development tokens are on: POST /v1/dev/token logs anyone in as anyone");
        app.hold = &hold_hub;
        status = serve(&app, config_path);
    }
out:
    quota_free(app.quota);
    blob_close(app.blob);
    live_free(app.live);
    pthread_mutex_destroy(&app.ticket_mu);
    store_close(app.store);
    auth_free(app.auth);
    config_release(&app.cfg);
    lockfile_release(locks[0]);
    lockfile_release(locks[1]);
    return status;
}
