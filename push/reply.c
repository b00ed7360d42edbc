/*
 * reply.c - provider answers (reply.h): JSON through jansson, the one
 * date format by hand (strptime and timegm depend on locale and TZ).
 */
#include "push/reply.h"

#include "core/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Copy s into out->reason, keeping printable ASCII only (it is logged). */
static void reply_set(struct reply *out, enum reply_kind kind, const char *s)
{
    size_t o = 0;
    out->kind = kind;
    for (; s && *s && o + 1 < sizeof(out->reason); s++)
        out->reason[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    out->reason[o] = '\0';
}

static json_t *load(const char *body, size_t len)
{
    json_t *v = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static const char *str_at(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* FCM's google.rpc error: errorCode from details[], and whether a
 * BadRequest fieldViolation blames message.token. */
static void fcm_details(json_t *error, const char **code, int *token_field)
{
    json_t *details = json_object_get(error, "details"), *d, *v, *fv;
    size_t i, j;

    json_array_foreach (details, i, d) {
        if (*str_at(d, "errorCode"))
            *code = str_at(d, "errorCode");
        fv = json_object_get(d, "fieldViolations");
        json_array_foreach (fv, j, v)
            if (strcmp(str_at(v, "field"), "message.token") == 0)
                *token_field = 1;
    }
}

void reply_fcm(long status, const char *body, size_t len, struct reply *out)
{
    json_t *root, *error;
    const char *code = "";
    char fallback[32];
    int token_field = 0;

    if (status >= 200 && status < 300) {
        reply_set(out, REPLY_OK, "ok");
        return;
    }
    root = load(body, len);
    error = json_object_get(root, "error");
    fcm_details(error, &code, &token_field);
    if (!*code)
        code = str_at(error, "status");
    snprintf(fallback, sizeof(fallback), "http %ld", status);
    if (!*code)
        code = fallback;
    if (strcmp(code, "UNREGISTERED") == 0 || strcmp(code, "SENDER_ID_MISMATCH") == 0 ||
        (status == 400 && (token_field || strstr(str_at(error, "message"), "registration token"))))
        reply_set(out, REPLY_TOKEN_DEAD, code);
    else if (status == 401)
        reply_set(out, REPLY_AUTH, code);
    else if (status == 429 || status >= 500 || status < 100)
        reply_set(out, REPLY_RETRY, code);
    else
        reply_set(out, REPLY_FAIL, code);
    json_decref(root);
}

void reply_apns(long status, const char *body, size_t len, struct reply *out)
{
    json_t *root;
    const char *reason;
    char fallback[32];

    if (status == 200) {
        reply_set(out, REPLY_OK, "ok");
        return;
    }
    root = load(body, len);
    reason = str_at(root, "reason");
    snprintf(fallback, sizeof(fallback), "http %ld", status);
    if (!*reason)
        reason = fallback;
    if (status == 410 || (status == 400 && (strcmp(reason, "BadDeviceToken") == 0 ||
                                            strcmp(reason, "DeviceTokenNotForTopic") == 0)))
        reply_set(out, REPLY_TOKEN_DEAD, reason);
    else if (status == 403 && (strcmp(reason, "ExpiredProviderToken") == 0 ||
                               strcmp(reason, "InvalidProviderToken") == 0))
        reply_set(out, REPLY_AUTH, reason);
    else if (status == 429 || status >= 500 || status < 100)
        reply_set(out, REPLY_RETRY, reason);
    else
        reply_set(out, REPLY_FAIL, reason);
    json_decref(root);
}

int reply_oauth(const char *body, size_t len, char **token, int64_t *expires_in_s)
{
    json_t *root = load(body, len);
    json_t *tok = json_object_get(root, "access_token");
    json_t *exp = json_object_get(root, "expires_in");
    const char *s = json_string_value(tok);
    size_t n = json_string_length(tok);
    int rc = -1;

    *token = NULL;
    *expires_in_s = 0;
    if (!s || n == 0 || n > REPLY_TOKEN_MAX || !json_is_integer(exp) ||
        json_integer_value(exp) <= 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f) /* it goes into an HTTP header */
            goto out;
    *token = xstrndup(s, n);
    *expires_in_s = (int64_t)json_integer_value(exp);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (exactly 29 characters) as ms. */
static int imf_fixdate(const char *v, int64_t *ms)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int day, year, hh, mm, ss;
    const char *mon;

    if (strlen(v) != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' ||
        v[16] != ' ' || v[19] != ':' || v[22] != ':' || strcmp(v + 25, " GMT") != 0)
        return -1;
    day = digits(v + 5, 2);
    year = digits(v + 12, 4);
    hh = digits(v + 17, 2);
    mm = digits(v + 20, 2);
    ss = digits(v + 23, 2);
    mon = NULL;
    for (int i = 0; i < 12; i++)
        if (memcmp(months + 3 * i, v + 8, 3) == 0)
            mon = months + 3 * i;
    if (!mon || day < 1 || day > 31 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60)
        return -1;
    *ms =
        ((days_from_civil(year, (unsigned)((mon - months) / 3 + 1), (unsigned)day) * 24 + hh) * 60 +
         mm) *
            60000LL +
        ss * 1000LL;
    return 0;
}

int reply_retry_after(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    int64_t at, d = 0;
    size_t n = strlen(value);

    if (n == 0)
        return -1;
    if (value[0] >= '0' && value[0] <= '9') {
        int64_t secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (value[i] < '0' || value[i] > '9')
                return -1;
            if (secs <= REPLY_RETRY_AFTER_MAX_MS / 1000) /* saturate, never overflow */
                secs = secs * 10 + (value[i] - '0');
        }
        d = secs > REPLY_RETRY_AFTER_MAX_MS / 1000 ? REPLY_RETRY_AFTER_MAX_MS : secs * 1000;
    } else {
        if (imf_fixdate(value, &at) != 0)
            return -1;
        d = at - now_ms;
    }
    *delay_ms = d < 0 ? 0 : d > REPLY_RETRY_AFTER_MAX_MS ? REPLY_RETRY_AFTER_MAX_MS : d;
    return 0;
}
