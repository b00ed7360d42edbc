/*
 * h_dev.c - development tokens: POST /v1/dev/token {"user": "alice"}
 * answers a token for alice, so that the demo page (www/) can "log in as
 * a name" without an identity provider (docs/API.md "Development tokens").
 *
 * It exists only while dev_tokens = 1, which config_load accepts only with
 * the published development secret: the endpoint then signs nothing anyone
 * could not already forge, and a deployment with its own secret cannot
 * enable it. When it is off the whole /v1/dev/ tree answers 404 like any
 * unknown path (router.c), so a production server does not even reveal it.
 */
#include "core/auth.h"
#include "core/json.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"

#include <stdlib.h>

/* A day: a demo tab left open overnight logs in again, a leaked
 * development token does not live for ever. */
#define DEV_TOKEN_TTL (24 * 3600)

int h_dev_token(struct req *r)
{
    int64_t now_ms = time_now_ms();
    char expires[TIME_RFC3339_LEN];
    const char *user = NULL;
    char *token = NULL;
    json_t *body;
    int rc = json_get_str(r->body, "user", JSON_FIELD_REQUIRED, &user, NULL, &r->err);

    if (rc)
        return rc;
    rc = auth_mint(r->app->auth, user, now_ms / 1000, DEV_TOKEN_TTL, &token, &r->err);
    if (rc)
        return rc;
    time_rfc3339((now_ms / 1000 + DEV_TOKEN_TTL) * 1000, expires);
    body = json_obj();
    json_put(body, "token", json_string(token));
    json_put(body, "user", json_string(user));
    json_put(body, "expires_at", json_string(expires));
    reply_json(r, 200, body);
    json_decref(body);
    free(token);
    return 0;
}
