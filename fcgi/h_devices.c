/*
 * h_devices.c - push devices (API.md "Push for offline users"): register,
 * list and remove the caller's own devices. Tokens are checked for the
 * shape their platform gives them, so that garbage never reaches a
 * provider and a token cannot smuggle anything into a URL or header.
 */
#include "core/json.h"
#include "core/limits.h"
#include "core/store.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/quota.h"

#include <string.h>

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* APNs: 64-200 hex digits (32 bytes today; Apple says they may grow). */
static int valid_apns_token(const char *s, size_t len)
{
    if (len < LIMIT_APNS_TOKEN_MIN || len > LIMIT_APNS_TOKEN_MAX || len % 2)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_hex(s[i]))
            return 0;
    return 1;
}

/* FCM registration tokens: 1-4096 of [A-Za-z0-9_:.-]. */
static int valid_fcm_token(const char *s, size_t len)
{
    if (len == 0 || len > LIMIT_FCM_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* A bundle id / package name: two or more dot-separated segments of
 * [A-Za-z0-9_-], each starting with a letter or digit, at most 255 in all. */
static int valid_app(const char *s, size_t len)
{
    size_t seglen = 0, segments = 1;

    if (len == 0 || len > LIMIT_APP_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (c == '.') {
            if (seglen == 0)
                return 0;
            segments++;
            seglen = 0;
        } else if (alnum || ((c == '_' || c == '-') && seglen > 0)) {
            seglen++;
        } else {
            return 0;
        }
    }
    return seglen > 0 && segments >= 2;
}

/* Lowercase an APNs token in place, so one device is one row whatever the
 * client's case. */
static void lower_hex(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'F')
            *s = (char)(*s - 'A' + 'a');
}

int h_device_add(struct req *r)
{
    struct store_device_in in = {.user = r->user};
    char apns[LIMIT_APNS_TOKEN_MAX + 1];
    size_t tlen, alen;
    json_t *device = NULL;
    int created = 0, rc;

    if ((rc =
             json_get_str(r->body, "platform", JSON_FIELD_REQUIRED, &in.platform, NULL, &r->err)) ||
        (rc = json_get_str(r->body, "token", JSON_FIELD_REQUIRED, &in.token, &tlen, &r->err)) ||
        (rc = json_get_str(r->body, "app", JSON_FIELD_REQUIRED, &in.app, &alen, &r->err)))
        return rc;
    if (strcmp(in.platform, "apns") == 0) {
        if (!valid_apns_token(in.token, tlen))
            return lark_err_set(&r->err, LARK_EFIELD, "an APNs 'token' is %d-%d hex digits",
                                LIMIT_APNS_TOKEN_MIN, LIMIT_APNS_TOKEN_MAX);
        memcpy(apns, in.token, tlen + 1);
        lower_hex(apns);
        in.token = apns;
    } else if (strcmp(in.platform, "fcm") == 0) {
        if (!valid_fcm_token(in.token, tlen))
            return lark_err_set(&r->err, LARK_EFIELD,
                                "an FCM 'token' is 1-%d characters of [A-Za-z0-9_:.-]",
                                LIMIT_FCM_TOKEN_MAX);
    } else {
        return lark_err_set(&r->err, LARK_EFIELD, "'platform' must be \"fcm\" or \"apns\"");
    }
    if (!valid_app(in.app, alen))
        return lark_err_set(&r->err, LARK_EFIELD,
                            "'app' must be a bundle id or package name such as com.example.chat");
    if ((rc = quota_take(r->app->quota, QUOTA_DEVICE, r->user, &r->retry_after, &r->err)))
        return rc;
    rc = store_device_add(r->db, &in, LIMIT_DEVICES_PER_USER, &device, &created, &r->err);
    if (rc)
        return rc;
    reply_json(r, created ? 201 : 200, device);
    json_decref(device);
    return 0;
}

int h_device_list(struct req *r)
{
    json_t *devices = NULL, *body;
    int rc = store_device_list(r->db, r->user, &devices, &r->err);

    if (rc)
        return rc;
    body = json_obj();
    json_put(body, "devices", devices);
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}

int h_device_remove(struct req *r)
{
    char apns[LIMIT_APNS_TOKEN_MAX + 1];
    const char *token = r->params[0];
    size_t len = strlen(token);
    int rc;

    if (!valid_fcm_token(token, len)) /* every APNs token is also FCM-shaped */
        return lark_err_set(&r->err, LARK_ENOTFOUND, "you have no device with this token");
    if (valid_apns_token(token, len)) {
        memcpy(apns, token, len + 1);
        lower_hex(apns);
        rc = store_device_remove(r->db, r->user, apns, &r->err);
        if (rc != LARK_ENOTFOUND || strcmp(apns, token) == 0)
            goto out;
    }
    rc = store_device_remove(r->db, r->user, token, &r->err);
out:
    if (rc)
        return rc;
    reply_raw(r, 204, NULL, NULL, 0);
    return 0;
}
