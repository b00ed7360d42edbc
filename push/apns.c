/*
 * apns.c - APNs provider API with ES256 provider tokens (apns.h).
 */
#include "push/apns.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "push/notify.h"

#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct apns {
    char *key;      /* PEM EC private key (.p8) */
    char *key_id;   /* JWT kid */
    char *team_id;  /* JWT iss */
    char *topic;    /* apns-topic, "" = the device's app */
    char *base_url; /* apns_endpoint */
    char *jwt;      /* the provider token in use, or NULL */
    int64_t jwt_at; /* wall ms it was signed */
};

static char *apns_sign(const struct apns *a, int64_t now_s)
{
    jwt_t *jwt = NULL;
    char *out = NULL;

    if (jwt_new(&jwt) != 0)
        return NULL;
    if (jwt_add_header(jwt, "kid", a->key_id) == 0 && jwt_add_grant(jwt, "iss", a->team_id) == 0 &&
        jwt_add_grant_int(jwt, "iat", (long)now_s) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_ES256, (const unsigned char *)a->key, (int)strlen(a->key)) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}

static int read_key(const char *path, char **out, struct lark_err *err)
{
    struct buf b;
    int rc;

    buf_init(&b, APNS_KEY_MAX);
    rc = buf_read_file(&b, path, err);
    if (rc == 0 && b.len == 0)
        rc = lark_err_set(err, LARK_EINVAL, "the APNs key %s is empty", path);
    *out = rc ? NULL : buf_detach(&b, NULL);
    buf_release(&b);
    return rc;
}

int apns_new(const struct config *cfg, struct apns **out, struct lark_err *err)
{
    struct apns *a = xcalloc(1, sizeof(*a));
    int rc = read_key(cfg->apns_key, &a->key, err);

    *out = NULL;
    if (rc == 0 && (!*cfg->apns_key_id || !*cfg->apns_team_id))
        rc = lark_err_set(err, LARK_EINVAL, "APNs needs apns_key_id and apns_team_id");
    if (rc == 0) {
        a->key_id = xstrdup(cfg->apns_key_id);
        a->team_id = xstrdup(cfg->apns_team_id);
        a->topic = xstrdup(cfg->apns_topic);
        a->base_url = xstrdup(cfg->apns_endpoint);
        a->jwt = apns_sign(a, time_now_ms() / 1000);
        a->jwt_at = time_now_ms();
        if (!a->jwt)
            rc = lark_err_set(err, LARK_EINVAL, "%s: cannot sign with it (ES256 .p8 key?)",
                              cfg->apns_key);
    }
    if (rc) {
        apns_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void apns_free(struct apns *a)
{
    if (!a)
        return;
    free(a->key);
    free(a->key_id);
    free(a->team_id);
    free(a->topic);
    free(a->base_url);
    free(a->jwt);
    free(a);
}

void apns_auth_failed(struct apns *a)
{
    a->jwt_at = 0;
}

/* The provider token, renewed when due. NULL if signing fails. */
static const char *apns_token(struct apns *a)
{
    int64_t now = time_now_ms();

    if (!a->jwt || now - a->jwt_at >= (int64_t)APNS_TOKEN_REFRESH_S * 1000) {
        char *t = apns_sign(a, now / 1000);
        if (!t)
            return NULL;
        free(a->jwt);
        a->jwt = t;
        a->jwt_at = now;
        log_info("apns provider token renewed key_id=%s", a->key_id);
    }
    return a->jwt;
}

static char *apns_payload(const struct store_push_job *j, const struct push_opts *o)
{
    json_t *root = json_obj(), *aps = json_obj(), *alert = json_obj();
    struct notify nt;
    char *text;

    notify_text(j, o->preview, &nt);
    json_put(alert, "title", notify_str(nt.title));
    json_put(alert, "body", notify_str(nt.body));
    notify_release(&nt);
    json_put(aps, "alert", alert);
    json_put(aps, "sound", json_string("default"));
    json_put(aps, "thread-id", json_string(j->conversation_id));
    json_put(root, "aps", aps);
    json_put(root, "lark", notify_data(j));
    text = json_dump(root, 0, NULL);
    json_decref(root);
    return text;
}

int apns_send(struct apns *a, struct net *n, struct push_req *req, const struct push_opts *o)
{
    const struct store_push_job *j = req->job;
    const char *token = apns_token(a);
    struct curl_slist *h = NULL;
    char *line, *url;
    int rc;

    if (!token) {
        snprintf(req->fail, sizeof(req->fail), "cannot sign the provider token");
        return LARK_EINTERNAL;
    }
    line = xasprintf("authorization: bearer %s", token);
    h = curl_slist_append(h, line);
    free(line);
    line = xasprintf("apns-topic: %s", *a->topic ? a->topic : j->app);
    h = curl_slist_append(h, line);
    free(line);
    h = curl_slist_append(h, "apns-push-type: alert");
    h = curl_slist_append(h, "apns-priority: 10");
    line = xasprintf("apns-collapse-id: %s", j->conversation_id);
    h = curl_slist_append(h, line);
    free(line);
    line = xasprintf("apns-expiration: %lld",
                     o->ttl ? (long long)(time_now_ms() / 1000 + o->ttl) : 0LL);
    h = curl_slist_append(h, line);
    free(line);
    h = curl_slist_append(h, "content-type: application/json");
    req->x.kind = NET_JOB;
    req->x.headers = h;
    req->x.payload = apns_payload(j, o);
    url = xasprintf("%s/3/device/%s", a->base_url, j->token);
    rc = net_start(n, &req->x, url);
    free(url);
    if (rc) {
        net_abort(n, &req->x);
        snprintf(req->fail, sizeof(req->fail), "cannot start the request");
    }
    return rc;
}
