/*
 * cgi.c - larkd as a plain CGI program (cgi.h).
 */
#include "fcgi/cgi.h"

#include "core/err.h"
#include "core/log.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/heldcap.h"
#include "fcgi/hold.h"
#include "fcgi/http.h"
#include "fcgi/quota.h"
#include "fcgi/router.h"

#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

/* An answer given before the request body was read (an upload refused
 * early, r->body_unread): what the web server still sends is read and
 * dropped before the process exits, up to this many bytes and for at most
 * this long. A CGI that exits with input unread makes the kernel reset the
 * socket Apache's mod_cgid writes the body into, and Apache then loses
 * the answer with it (AH00574: apr_bucket_read() failed). */
#define CGI_DRAIN_MAX_BYTES (1024 * 1024)
#define CGI_DRAIN_TIMEOUT_MS 1000

/* Replace app's in-memory quotas by ones in the store behind db. */
static void cgi_share_limits(struct app *app, struct store_conn *db)
{
    quota_free(app->quota);
    app->quota = quota_new_store(&app->cfg, db);
    app->heldcap = heldcap_new_store(db, (unsigned)app->cfg.max_held_per_user);
}

static void cgi_drain_stdin(void)
{
    int64_t deadline = time_mono_ms() + CGI_DRAIN_TIMEOUT_MS;
    size_t total = 0;
    char buf[4096];

    while (total < CGI_DRAIN_MAX_BYTES) {
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int64_t left = deadline - time_mono_ms();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

/* ms between two time_mono_ns() stamps */
static double ms(int64_t from, int64_t to)
{
    return (double)(to - from) / 1e6;
}

int cgi_main(struct app *app, const struct cgi_startup *t)
{
    struct store_conn *db = NULL;
    struct lark_err err = {0};
    struct req r = {.app = app};
    int status = 0;

    app->cgi = 1;
    app->hold = &hold_cgi;
    if (store_conn_open(app->store, &db, &err) != 0) {
        log_error("cgi: %s", err.msg);
        reply_error(&r, LARK_EUNAVAIL);
        status = 1;
        goto out;
    }
    cgi_share_limits(app, db);
    r.db = db;
    router_handle(&r);
out:
    fflush(stdout);
    if (r.body_unread)
        cgi_drain_stdin();
    log_debug("cgi: start-up %.2f ms (configuration %.2f, keys %.2f, store %.2f), request %.2f ms",
              ms(t->main, t->store), ms(t->main, t->config), ms(t->config, t->keys),
              ms(t->keys, t->store), ms(t->store, time_mono_ns()));
    /* they borrow db */
    heldcap_free(app->heldcap);
    app->heldcap = NULL;
    quota_free(app->quota);
    app->quota = NULL;
    store_conn_close(db);
    return status;
}
