/*
 * router.c - route table and request pipeline.
 */
#include "fcgi/router.h"

#include "core/auth.h"
#include "core/config.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/live.h"
#include "fcgi/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct route routes[] = {
    {"GET", "/v1/healthz", h_healthz, 0, NULL},
    {"GET", "/metrics", h_metrics, 0, NULL},
    {"POST", "/v1/messages", h_send, ROUTE_AUTH | ROUTE_BODY, NULL},
    {"GET", "/v1/conversations/{}/messages", h_history, ROUTE_AUTH, NULL},
    {"GET", "/v1/events", h_events, ROUTE_AUTH | ROUTE_TOKEN_QUERY | ROUTE_TICKET,
     "text/event-stream"},
    {"GET", "/v1/poll", h_poll, ROUTE_AUTH | ROUTE_TOKEN_QUERY | ROUTE_TICKET, "application/json"},
    {"POST", "/v1/tickets", h_ticket_create, ROUTE_AUTH, NULL},
    {"POST", "/v1/ack", h_ack, ROUTE_AUTH | ROUTE_BODY, NULL},
    {"POST", "/v1/conversations", h_conv_create, ROUTE_AUTH | ROUTE_BODY, NULL},
    {"GET", "/v1/conversations", h_conv_list, ROUTE_AUTH, NULL},
    {"GET", "/v1/conversations/{}", h_conv_get, ROUTE_AUTH, NULL},
    {"POST", "/v1/conversations/{}/members", h_member_add, ROUTE_AUTH | ROUTE_BODY, NULL},
    {"DELETE", "/v1/conversations/{}/members/{}", h_member_remove, ROUTE_AUTH, NULL},
    {"POST", "/v1/conversations/{}/read", h_read, ROUTE_AUTH | ROUTE_BODY, NULL},
    {"POST", "/v1/conversations/{}/typing", h_typing, ROUTE_AUTH | ROUTE_BODY_OPTIONAL, NULL},
    {"POST", "/v1/presence/heartbeat", h_heartbeat, ROUTE_AUTH | ROUTE_BODY_OPTIONAL, NULL},
    {"GET", "/v1/presence", h_presence_get, ROUTE_AUTH, NULL},
    {"POST", "/v1/presence/watch", h_watch, ROUTE_AUTH | ROUTE_BODY, NULL},
    {"POST", "/v1/devices", h_device_add, ROUTE_AUTH | ROUTE_BODY, NULL},
    {"GET", "/v1/devices", h_device_list, ROUTE_AUTH, NULL},
    {"DELETE", "/v1/devices/{}", h_device_remove, ROUTE_AUTH, NULL},
    {"POST", "/v1/dev/token", h_dev_token, ROUTE_BODY, NULL},
    /* the body is the file: h_media_upload streams it (no JSON) */
    {"POST", "/v1/media", h_media_upload, ROUTE_AUTH, NULL},
    {"POST", "/v1/media/uploads", h_media_uploads, ROUTE_AUTH | ROUTE_BODY, NULL},
    /* the URL's own key authorizes it (API.md: "takes no token") */
    {"PUT", "/v1/media/{}/upload", h_media_put, 0, NULL},
    /* an <img> or <a href> cannot set headers: token query or cookie */
    {"GET", "/v1/media/{}", h_media_get, ROUTE_AUTH | ROUTE_TOKEN_QUERY | ROUTE_TICKET, NULL},
};

/* Routes under this prefix exist only while dev_tokens = 1 (h_dev.c). */
#define ROUTER_DEV_PREFIX "/v1/dev/"

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Match path against pattern; decoded {} segments go to params. 1 match,
 * 0 no match, -1 bad escape. */
static int pattern_match(const char *pattern, const char *path, char *params[REQ_PARAMS_MAX],
                         int *nparams)
{
    const char *p = pattern, *s = path;
    int n = 0;

    while (*p && *s) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);
            long dlen;
            if (len == 0 || n == REQ_PARAMS_MAX)
                goto nomatch;
            params[n] = xmalloc(len + 1);
            dlen = url_decode_segment(s, len, params[n]);
            n++;
            if (dlen <= 0) {
                *nparams = n;
                return -1;
            }
            p += 2;
            s += len;
            continue;
        }
        if (*p != *s)
            goto nomatch;
        p++;
        s++;
    }
    if (*p || *s)
        goto nomatch;
    *nparams = n;
    return 1;
nomatch:
    for (int i = 0; i < n; i++) {
        free(params[i]);
        params[i] = NULL;
    }
    *nparams = 0;
    return 0;
}

/* A route's method takes the request's: the same, or HEAD for GET. */
static int method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

const struct route *router_match(const char *method, const char *path, char *params[REQ_PARAMS_MAX],
                                 int *nparams, char allow[ROUTER_ALLOW_MAX], int *code)
{
    const struct route *found = NULL;

    allow[0] = '\0';
    *nparams = 0;
    *code = LARK_ENOTFOUND;
    for (size_t i = 0; i < NROUTES; i++) {
        char *tmp[REQ_PARAMS_MAX] = {0};
        int n = 0;
        int m = pattern_match(routes[i].pattern, path, tmp, &n);
        if (m < 0) {
            for (int j = 0; j < n; j++)
                free(tmp[j]);
            *code = LARK_EINVAL;
            return NULL;
        }
        if (m == 0)
            continue;
        if (method_matches(routes[i].method, method) && !found) {
            found = &routes[i];
            memcpy(params, tmp, sizeof(tmp));
            *nparams = n;
        } else {
            for (int j = 0; j < n; j++)
                free(tmp[j]);
        }
        size_t used = strlen(allow);
        snprintf(allow + used, ROUTER_ALLOW_MAX - used, "%s%s%s", used ? ", " : "",
                 routes[i].method, strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
    }
    if (found)
        return found;
    if (allow[0])
        *code = LARK_EMETHOD;
    return NULL;
}

/* ---- pipeline steps --------------------------------------------------- */

static int router_auth(struct req *r, unsigned flags)
{
    const char *h = req_param(r, "HTTP_AUTHORIZATION");
    const char *token = NULL;
    size_t len = 0;

    if (h) {
        if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\0'))
            return lark_err_set(&r->err, LARK_ETOKEN,
                                "the Authorization header must be 'Bearer <token>'");
        token = h + 6;
        while (*token == ' ')
            token++;
        len = strlen(token);
        while (len && token[len - 1] == ' ')
            len--;
        if (len == 0)
            return lark_err_set(&r->err, LARK_ENOAUTH, "the Bearer token is empty");
    } else if ((flags & ROUTE_TICKET) && query_get(&r->query, "ticket")) {
        /* API.md: a ticket keeps the long-lived token out of the URL */
        return ticket_auth(r, query_get(&r->query, "ticket"));
    } else if (flags & ROUTE_TOKEN_QUERY) {
        /* EventSource cannot set headers (API.md "Authentication"). */
        const char *cookie = req_param(r, "HTTP_COOKIE");
        token = query_get(&r->query, "access_token");
        if (token)
            len = strlen(token);
        else if (cookie)
            token = cookie_find(cookie, "lark_token", &len);
    }
    if (!token)
        return lark_err_set(&r->err, LARK_ENOAUTH, "an access token is required");
    return auth_verify(r->app->auth, token, len, time_now_ms() / 1000, r->user, &r->err);
}

/* 1 if the Content-Type is application/json (any parameters). */
static int is_json_type(const char *ct)
{
    size_t n = strlen("application/json");
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int router_body(struct req *r, unsigned flags)
{
    const char *cl = req_param(r, "CONTENT_LENGTH");
    uint64_t len = 0;
    size_t got = 0;
    char *body;
    int rc;

    if (cl && *cl && parse_u64(cl, UINT64_MAX, &len) != 0)
        return lark_err_set(&r->err, LARK_EINVAL, "bad Content-Length");
    if (len == 0) {
        if (flags & ROUTE_BODY)
            return lark_err_set(&r->err, LARK_EJSON, "a JSON object body is required");
        return 0;
    }
    if (!(flags & (ROUTE_BODY | ROUTE_BODY_OPTIONAL)))
        return 0; /* a body this endpoint does not use is ignored */
    if (len > (uint64_t)r->app->cfg.request_max)
        return lark_err_set(&r->err, LARK_ETOOLARGE, "the request body is over %d bytes",
                            r->app->cfg.request_max);
    if (!is_json_type(req_param(r, "CONTENT_TYPE")))
        return lark_err_set(&r->err, LARK_EMEDIA, "the body must be sent as application/json");
    /* len is bounded by request_max above */
    body = xmalloc((size_t)len);
    while (got < len) {
        size_t n = req_read(r, body + got, (size_t)(len - got));
        if (n == 0)
            break;
        got += n;
    }
    if (got < len)
        rc = lark_err_set(&r->err, LARK_EINVAL, "the request body ended early");
    else
        rc = json_parse_object(body, got, &r->body, &r->err);
    free(body);
    return rc;
}

static void router_preflight(struct req *r, const char *allow)
{
    reply_header(r, "Status: 204 No Content\r\n");
    reply_common_headers(r);
    if (r->cors_origin)
        reply_header(r,
                     "Access-Control-Allow-Methods: %s\r\n"
                     "Access-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID\r\n"
                     "Access-Control-Max-Age: 600\r\n",
                     allow);
    reply_header(r, "Allow: %s, OPTIONS\r\n\r\n", allow);
    r->status = 204;
    metrics_response(204);
}

static void router_cors(struct req *r)
{
    const char *origin = req_param(r, "HTTP_ORIGIN");
    enum live_cors c = origin ? live_cors(r->app->live, origin) : LIVE_CORS_NONE;

    r->cors_origin = c == LIVE_CORS_CREDENTIALS ? origin : c == LIVE_CORS_ANY ? "*" : NULL;
    r->cors_credentials = c == LIVE_CORS_CREDENTIALS;
}

/* Everything before the handler; 0 to call it, else an error code (or
 * 1 when the request was fully answered, e.g. a preflight). */
static int router_prepare(struct req *r, const struct route **route)
{
    const char *uri = req_param(r, "REQUEST_URI");
    const char *q;
    char *path = NULL;
    char allow[ROUTER_ALLOW_MAX];
    int code = 0;
    int rc = 0;

    if (!uri || strlen(uri) > LIMIT_URI_MAX)
        return lark_err_set(&r->err, LARK_EINVAL, "the request URI is missing or too long");
    q = strchr(uri, '?');
    path = q ? xstrndup(uri, (size_t)(q - uri)) : xstrdup(uri);
    if (q) {
        rc = query_parse(q + 1, strlen(q + 1), &r->query, &r->err);
        if (rc)
            goto out;
    }
    router_cors(r);
    if (!r->app->cfg.dev_tokens &&
        strncmp(path, ROUTER_DEV_PREFIX, strlen(ROUTER_DEV_PREFIX)) == 0) {
        /* off: as unknown as any other path, for every method */
        rc = lark_err_set(&r->err, LARK_ENOTFOUND, "no such endpoint");
        goto out;
    }
    *route = router_match(strcmp(r->method, "OPTIONS") == 0 ? "" : r->method, path, r->params,
                          &r->nparams, allow, &code);
    if (!*route && strcmp(r->method, "OPTIONS") == 0 && code == LARK_EMETHOD) {
        router_preflight(r, allow);
        rc = 1;
        goto out;
    }
    if (!*route) {
        if (code == LARK_EMETHOD) {
            snprintf(r->allow, sizeof(r->allow), "%s", allow);
            rc = lark_err_set(&r->err, code, "use %s for this path", allow);
        } else if (code == LARK_EINVAL)
            rc = lark_err_set(&r->err, code, "malformed percent-escape in the path");
        else
            rc = lark_err_set(&r->err, code, "no such endpoint");
        goto out;
    }
    if (atomic_load(&r->app->draining)) {
        rc = lark_err_set(&r->err, LARK_EDRAINING, "the server is restarting, retry shortly");
        goto out;
    }
    if ((*route)->flags & ROUTE_AUTH) {
        rc = router_auth(r, (*route)->flags);
        if (rc)
            goto out;
    }
    rc = router_body(r, (*route)->flags);
out:
    free(path);
    return rc;
}

void router_handle(struct req *r)
{
    const struct route *route = NULL;
    const char *m = req_param(r, "REQUEST_METHOD");
    int64_t t0 = time_mono_ns();
    int rc;

    snprintf(r->method, sizeof(r->method), "%s", m ? m : "");
    r->head = strcmp(r->method, "HEAD") == 0;
    rc = router_prepare(r, &route);
    if (rc == 0 && route && r->head && route->held_type)
        reply_raw(r, 200, route->held_type, NULL, 0); /* the headers, nothing held */
    else if (rc == 0 && route)
        rc = route->fn(r);
    if (rc < 0 && !r->detached && r->status == 0) {
        if (rc == LARK_EUNAVAIL || rc == LARK_EINTERNAL)
            metrics_db_error();
        reply_error(r, rc);
    }
    if (r->status >= 500)
        log_warn("request %s %s status=%d user=%s error=%s ms=%.1f", r->method,
                 route ? route->pattern : "-", r->status, r->user, r->err.msg,
                 (double)(time_mono_ns() - t0) / 1e6);
    else
        log_debug("request %s %s status=%d user=%s ms=%.1f", r->method,
                  route ? route->pattern : "-", r->status, r->user,
                  (double)(time_mono_ns() - t0) / 1e6);
    query_release(&r->query);
    for (int i = 0; i < r->nparams; i++)
        free(r->params[i]);
    json_decref(r->body);
    r->body = NULL;
}
