/*
 * h_tickets.c - tickets (API.md "Authentication"): POST /v1/tickets mints
 * one for the caller; ticket_auth is how a route that takes ?ticket= (a
 * route flag, ROUTE_TICKET in router.h) turns one into its user. Why
 * tickets are signed rather than stored: core/ticket.h.
 */
#include "core/json.h"
#include "core/store.h"
#include "core/ticket.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/quota.h"

#include <string.h>

/* The ticket key into key: the store's, read once per process. */
static int ticket_key(struct req *r, unsigned char key[TICKET_KEY_LEN])
{
    struct app *app = r->app;
    char hex[2 * STORE_TICKET_KEY_LEN + 1];
    int rc = 0;

    pthread_mutex_lock(&app->ticket_mu);
    if (!app->ticket_key_loaded) {
        rc = store_ticket_key(r->db, hex, &r->err);
        if (rc == 0 && ticket_key_from_hex(hex, app->ticket_key) != 0)
            rc = lark_err_set(&r->err, LARK_EINTERNAL, "the ticket key in the store is malformed");
        app->ticket_key_loaded = rc == 0;
    }
    if (rc == 0)
        memcpy(key, app->ticket_key, TICKET_KEY_LEN);
    pthread_mutex_unlock(&app->ticket_mu);
    return rc;
}

int h_ticket_create(struct req *r)
{
    int64_t expires_at = time_now_ms() + (int64_t)r->app->cfg.ticket_ttl * 1000;
    char text[TICKET_TEXT_MAX], ts[TIME_RFC3339_LEN];
    unsigned char key[TICKET_KEY_LEN];
    json_t *body;
    int rc = quota_take(r->app->quota, QUOTA_TICKET, r->user, &r->retry_after, &r->err);

    if (rc || (rc = ticket_key(r, key)) || (rc = ticket_mint(key, r->user, expires_at, text)))
        return rc;
    time_rfc3339(expires_at, ts);
    body = json_obj();
    json_put(body, "ticket", json_string(text));
    json_put(body, "expires_at", json_string(ts));
    reply_json(r, 201, body);
    json_decref(body);
    return 0;
}

int ticket_auth(struct req *r, const char *text)
{
    int64_t now = time_now_ms();
    unsigned char key[TICKET_KEY_LEN];
    struct ticket t;
    int first = 0;
    int rc = ticket_key(r, key);

    /* the signature and expiry first: a forged or stale ticket costs no write */
    if (rc || (rc = ticket_open(key, text, strlen(text), now, &t, &r->err)) ||
        (rc = store_ticket_use(r->db, t.nonce, t.expires_at, now, &first, &r->err)))
        return rc;
    if (!first)
        return lark_err_set(&r->err, LARK_ETOKEN, "the ticket was used already");
    memcpy(r->user, t.user, sizeof(t.user));
    return 0;
}
