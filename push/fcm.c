/*
 * fcm.c - FCM HTTP v1 with OAuth2 service-account tokens (fcm.h).
 */
#include "push/fcm.h"

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"
#include "push/notify.h"
#include "push/reply.h"

#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"

struct fcm {
    char *project_id;
    char *client_email;
    char *private_key;    /* PEM */
    char *private_key_id; /* JWT kid, may be "" */
    char *token_url;      /* fcm_token_endpoint or the file's token_uri */
    char *send_url;       /* {fcm_endpoint}/v1/projects/{project_id}/messages:send */
    char *access_token;   /* NULL until fetched */
    int64_t expires_at;   /* wall ms: renew at or after this */
    struct net_xfer tok;  /* the token exchange; tok.easy != NULL while it runs */
    struct push_req *waiting, **waiting_tail;
};

static int read_file(const char *path, size_t max, char **out, struct lark_err *err)
{
    struct buf b;
    int rc;

    buf_init(&b, max);
    rc = buf_read_file(&b, path, err);
    if (rc == 0 && b.len == 0)
        rc = lark_err_set(err, LARK_EINVAL, "%s is empty", path);
    *out = rc ? NULL : buf_detach(&b, NULL);
    buf_release(&b);
    return rc;
}

/* Google project ids: 6-30 of [a-z0-9-]; checked because it goes into the URL. */
static int valid_project(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == ':' ||
              *s == '.'))
            return 0;
    return 1;
}

/* The signed RS256 assertion (caller frees), or NULL. */
static char *fcm_assertion(const struct fcm *f, int64_t now_s)
{
    jwt_t *jwt = NULL;
    char *out = NULL;

    if (jwt_new(&jwt) != 0)
        return NULL;
    if ((*f->private_key_id && jwt_add_header(jwt, "kid", f->private_key_id) != 0) ||
        jwt_add_grant(jwt, "iss", f->client_email) != 0 ||
        jwt_add_grant(jwt, "scope", FCM_SCOPE) != 0 ||
        jwt_add_grant(jwt, "aud", f->token_url) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now_s + FCM_ASSERTION_TTL_S)) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_RS256, (const unsigned char *)f->private_key,
                    (int)strlen(f->private_key)) != 0)
        goto out;
    out = jwt_encode_str(jwt);
out:
    jwt_free(jwt);
    return out;
}

static int fcm_load(struct fcm *f, const struct config *cfg, struct lark_err *err)
{
    char *text = NULL;
    json_t *root = NULL;
    const char *k[4] = {"project_id", "client_email", "private_key", "token_uri"};
    const char *v[4];
    int rc = read_file(cfg->fcm_credentials, FCM_CREDENTIALS_MAX, &text, err);

    if (rc)
        return rc;
    root = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    for (int i = 0; i < 4; i++) {
        v[i] = json_string_value(json_object_get(root, k[i]));
        if (!v[i] || !*v[i]) {
            rc = lark_err_set(err, LARK_EINVAL, "%s: no \"%s\" (a service-account JSON?)",
                              cfg->fcm_credentials, k[i]);
            goto out;
        }
    }
    if (!valid_project(v[0])) {
        rc = lark_err_set(err, LARK_EINVAL, "%s: bad project_id", cfg->fcm_credentials);
        goto out;
    }
    f->project_id = xstrdup(v[0]);
    f->client_email = xstrdup(v[1]);
    f->private_key = xstrdup(v[2]);
    f->private_key_id = xstrdup(json_string_value(json_object_get(root, "private_key_id"))
                                    ? json_string_value(json_object_get(root, "private_key_id"))
                                    : "");
    f->token_url = xstrdup(*cfg->fcm_token_endpoint ? cfg->fcm_token_endpoint : v[3]);
out:
    json_decref(root);
    free(text);
    return rc;
}

int fcm_new(const struct config *cfg, struct fcm **out, struct lark_err *err)
{
    struct fcm *f = xcalloc(1, sizeof(*f));
    char *probe = NULL;
    int rc = fcm_load(f, cfg, err);

    *out = NULL;
    f->tok.kind = NET_TOKEN;
    f->waiting_tail = &f->waiting;
    if (rc == 0 && !(probe = fcm_assertion(f, time_now_ms() / 1000)))
        rc = lark_err_set(err, LARK_EINVAL, "%s: cannot sign with its private_key (RS256)",
                          cfg->fcm_credentials);
    free(probe);
    if (rc) {
        fcm_free(f, NULL);
        return rc;
    }
    f->send_url = xasprintf("%s/v1/projects/%s/messages:send", cfg->fcm_endpoint, f->project_id);
    *out = f;
    return 0;
}

void fcm_free(struct fcm *f, struct net *n)
{
    if (!f)
        return;
    if (n)
        net_abort(n, &f->tok);
    free(f->project_id);
    free(f->client_email);
    free(f->private_key);
    free(f->private_key_id);
    free(f->token_url);
    free(f->send_url);
    free(f->access_token);
    free(f);
}

static int fcm_token_start(struct fcm *f, struct net *n)
{
    char *assertion = fcm_assertion(f, time_now_ms() / 1000);

    if (!assertion)
        return LARK_EINTERNAL;
    f->tok.payload = xasprintf("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-"
                               "bearer&assertion=%s",
                               assertion);
    free(assertion);
    f->tok.headers = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    if (net_start(n, &f->tok, f->token_url) != 0) {
        net_abort(n, &f->tok);
        return LARK_EINTERNAL;
    }
    log_info("fcm token request url=%s", f->token_url);
    return 0;
}

/* Build req's request and start it. */
static int fcm_start(struct fcm *f, struct net *n, struct push_req *req, const struct push_opts *o)
{
    const struct store_push_job *j = req->job;
    struct notify nt;
    json_t *msg = json_obj(), *root = json_obj(), *android = json_obj(), *note = json_obj();
    char ttl[32];
    int rc;

    notify_text(j, o->preview, &nt);
    json_put(note, "title", notify_str(nt.title));
    json_put(note, "body", notify_str(nt.body));
    notify_release(&nt);
    snprintf(ttl, sizeof(ttl), "%ds", o->ttl);
    json_put(android, "collapse_key", json_string(j->conversation_id));
    json_put(android, "priority", json_string("HIGH"));
    json_put(android, "ttl", json_string(ttl));
    json_put(msg, "token", json_string(j->token));
    json_put(msg, "notification", note);
    json_put(msg, "data", notify_data(j));
    json_put(msg, "android", android);
    json_put(root, "message", msg);
    req->x.kind = NET_JOB;
    req->x.payload = json_dump(root, 0, NULL);
    json_decref(root);
    {
        char *auth = xasprintf("Authorization: Bearer %s", f->access_token);
        req->x.headers = curl_slist_append(NULL, auth);
        req->x.headers = curl_slist_append(req->x.headers, "Content-Type: application/json");
        free(auth);
    }
    rc = net_start(n, &req->x, f->send_url);
    if (rc) {
        net_abort(n, &req->x);
        snprintf(req->fail, sizeof(req->fail), "cannot start the request");
    }
    return rc;
}

int fcm_send(struct fcm *f, struct net *n, struct push_req *req, const struct push_opts *o)
{
    if (f->access_token && time_now_ms() < f->expires_at)
        return fcm_start(f, n, req, o);
    if (!f->tok.easy && fcm_token_start(f, n) != 0) {
        snprintf(req->fail, sizeof(req->fail), "cannot sign the OAuth2 assertion");
        return LARK_EINTERNAL;
    }
    req->next = NULL;
    *f->waiting_tail = req;
    f->waiting_tail = &req->next;
    return 0;
}

void fcm_token_done(struct fcm *f, struct net *n, struct net_xfer *x, const struct push_opts *o,
                    struct push_req **failed)
{
    struct push_req *req = f->waiting, *next;
    char why[96] = "";
    char *token = NULL;
    int64_t expires_in = 0;

    *failed = NULL;
    if (x->result != CURLE_OK)
        snprintf(why, sizeof(why), "oauth: %s", curl_easy_strerror(x->result));
    else if (x->status != 200 || reply_oauth(x->body.data, x->body.len, &token, &expires_in) != 0)
        snprintf(why, sizeof(why), "oauth: http %ld", x->status);
    net_abort(n, x);
    if (token) {
        free(f->access_token);
        f->access_token = token;
        f->expires_at = time_now_ms() + (expires_in - FCM_TOKEN_SLACK_S) * 1000;
        if (expires_in <= FCM_TOKEN_SLACK_S) /* short-lived: use it once, then renew */
            f->expires_at = time_now_ms() + expires_in * 500;
        log_info("fcm token ok expires_in=%lld", (long long)expires_in);
    } else {
        log_warn("fcm token failed: %s", why);
    }
    f->waiting = NULL;
    f->waiting_tail = &f->waiting;
    for (; req; req = next) {
        next = req->next;
        req->next = NULL;
        if (!token) {
            snprintf(req->fail, sizeof(req->fail), "%s", why);
        } else if (fcm_start(f, n, req, o) == 0) {
            continue;
        }
        req->next = *failed;
        *failed = req;
    }
}

void fcm_auth_failed(struct fcm *f)
{
    f->expires_at = 0;
}

struct push_req *fcm_take_waiting(struct fcm *f)
{
    struct push_req *w = f->waiting;
    f->waiting = NULL;
    f->waiting_tail = &f->waiting;
    return w;
}
