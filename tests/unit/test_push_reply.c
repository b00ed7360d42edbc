/*
 * test_push_reply.c - push/reply.c and push/notify.c: provider answers are
 * sorted as the providers document them (written as data: status, body,
 * expected kind, expected reason), OAuth2 token answers are accepted only
 * when usable in a header, Retry-After in both forms, and notification
 * text (coalesced counts, previews off, UTF-8-safe cuts).
 */
#include "push/notify.h"
#include "push/reply.h"

#include "core/store.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

struct reply_case {
    long status;
    const char *body;
    enum reply_kind kind;
    const char *reason;
};

static const struct reply_case fcm_cases[] = {
    {200, "{\"name\":\"projects/p/messages/1\"}", REPLY_OK, "ok"},
    {404,
     "{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\",\"details\":[{\"@type\":\"type.googleapis."
     "com/google.firebase.fcm.v1.FcmError\",\"errorCode\":\"UNREGISTERED\"}]}}",
     REPLY_TOKEN_DEAD, "UNREGISTERED"},
    {400,
     "{\"error\":{\"code\":400,\"message\":\"x\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{"
     "\"errorCode\":\"INVALID_ARGUMENT\"},{\"fieldViolations\":[{\"field\":\"message.token\"}]}]}}",
     REPLY_TOKEN_DEAD, "INVALID_ARGUMENT"},
    {400,
     "{\"error\":{\"code\":400,\"message\":\"The registration token is not a valid FCM "
     "registration token\",\"status\":\"INVALID_ARGUMENT\"}}",
     REPLY_TOKEN_DEAD, "INVALID_ARGUMENT"},
    {400,
     "{\"error\":{\"code\":400,\"message\":\"Invalid JSON payload\",\"status\":\"INVALID_"
     "ARGUMENT\"}}",
     REPLY_FAIL, "INVALID_ARGUMENT"},
    {403, "{\"error\":{\"details\":[{\"errorCode\":\"SENDER_ID_MISMATCH\"}]}}", REPLY_TOKEN_DEAD,
     "SENDER_ID_MISMATCH"},
    {401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}", REPLY_AUTH,
     "UNAUTHENTICATED"},
    {429, "{\"error\":{\"details\":[{\"errorCode\":\"QUOTA_EXCEEDED\"}]}}", REPLY_RETRY,
     "QUOTA_EXCEEDED"},
    {503, "{\"error\":{\"status\":\"UNAVAILABLE\"}}", REPLY_RETRY, "UNAVAILABLE"},
    {500, "<html>oops</html>", REPLY_RETRY, "http 500"},
    {502, "", REPLY_RETRY, "http 502"},
    {413, "[1,2]", REPLY_FAIL, "http 413"},
    {0, NULL, REPLY_RETRY, "http 0"},
};

static const struct reply_case apns_cases[] = {
    {200, "", REPLY_OK, "ok"},
    {410, "{\"reason\":\"Unregistered\",\"timestamp\":1}", REPLY_TOKEN_DEAD, "Unregistered"},
    {410, "", REPLY_TOKEN_DEAD, "http 410"},
    {400, "{\"reason\":\"BadDeviceToken\"}", REPLY_TOKEN_DEAD, "BadDeviceToken"},
    {400, "{\"reason\":\"DeviceTokenNotForTopic\"}", REPLY_TOKEN_DEAD, "DeviceTokenNotForTopic"},
    {400, "{\"reason\":\"BadCollapseId\"}", REPLY_FAIL, "BadCollapseId"},
    {403, "{\"reason\":\"ExpiredProviderToken\"}", REPLY_AUTH, "ExpiredProviderToken"},
    {403, "{\"reason\":\"InvalidProviderToken\"}", REPLY_AUTH, "InvalidProviderToken"},
    {403, "{\"reason\":\"BadCertificate\"}", REPLY_FAIL, "BadCertificate"},
    {429, "{\"reason\":\"TooManyRequests\"}", REPLY_RETRY, "TooManyRequests"},
    {500, "{\"reason\":\"InternalServerError\"}", REPLY_RETRY, "InternalServerError"},
    {503, "{\"reason\":\"ServiceUnavailable\"}", REPLY_RETRY, "ServiceUnavailable"},
    {413, "{\"reason\":\"PayloadTooLarge\"}", REPLY_FAIL, "PayloadTooLarge"},
    {400, "{\"reason\":\"x\\u0001\\ny\"}", REPLY_FAIL, "x??y"},
};

START_TEST(test_fcm_answers)
{
    for (size_t i = 0; i < sizeof(fcm_cases) / sizeof(fcm_cases[0]); i++) {
        const struct reply_case *c = &fcm_cases[i];
        struct reply r;
        reply_fcm(c->status, c->body, c->body ? strlen(c->body) : 0, &r);
        ck_assert_msg(r.kind == c->kind, "case %zu: kind %d, want %d", i, r.kind, c->kind);
        ck_assert_str_eq(r.reason, c->reason);
    }
}
END_TEST

START_TEST(test_apns_answers)
{
    for (size_t i = 0; i < sizeof(apns_cases) / sizeof(apns_cases[0]); i++) {
        const struct reply_case *c = &apns_cases[i];
        struct reply r;
        reply_apns(c->status, c->body, strlen(c->body), &r);
        ck_assert_msg(r.kind == c->kind, "case %zu: kind %d, want %d", i, r.kind, c->kind);
        ck_assert_str_eq(r.reason, c->reason);
    }
}
END_TEST

START_TEST(test_long_reason_is_cut)
{
    char body[512];
    struct reply r;
    snprintf(body, sizeof(body), "{\"reason\":\"%0300d\"}", 7);
    reply_apns(400, body, strlen(body), &r);
    ck_assert_uint_eq(strlen(r.reason), REPLY_REASON_MAX - 1);
}
END_TEST

START_TEST(test_oauth)
{
    static const char *bad[] = {
        "",
        "{}",
        "[]",
        "{\"access_token\":\"abc\"}",
        "{\"access_token\":\"abc\",\"expires_in\":0}",
        "{\"access_token\":\"abc\",\"expires_in\":\"3600\"}",
        "{\"access_token\":\"\",\"expires_in\":3600}",
        "{\"access_token\":\"a b\",\"expires_in\":3600}",
        "{\"access_token\":\"a\\r\\nX-Evil: 1\",\"expires_in\":3600}",
        "{\"access_token\":7,\"expires_in\":3600}",
        "{\"access_token\":\"a\",\"access_token\":\"b\",\"expires_in\":3600}",
    };
    char *tok = NULL;
    int64_t exp = 0;

    ck_assert_int_eq(reply_oauth("{\"access_token\":\"ya29.x-y_z\",\"expires_in\":3599,"
                                 "\"token_type\":\"Bearer\"}",
                                 strlen("{\"access_token\":\"ya29.x-y_z\",\"expires_in\":3599,"
                                        "\"token_type\":\"Bearer\"}"),
                                 &tok, &exp),
                     0);
    ck_assert_str_eq(tok, "ya29.x-y_z");
    ck_assert_int_eq(exp, 3599);
    free(tok);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(reply_oauth(bad[i], strlen(bad[i]), &tok, &exp) == -1, "accepted %s", bad[i]);
        ck_assert_ptr_null(tok);
    }
}
END_TEST

START_TEST(test_retry_after)
{
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s (RFC 9110's example) */
    const int64_t at = 784111777000LL;
    int64_t d = -1;

    ck_assert_int_eq(reply_retry_after("120", 0, &d), 0);
    ck_assert_int_eq(d, 120000);
    ck_assert_int_eq(reply_retry_after("0", 0, &d), 0);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(reply_retry_after("99999999999999999999999", 0, &d), 0);
    ck_assert_int_eq(d, REPLY_RETRY_AFTER_MAX_MS);
    ck_assert_int_eq(reply_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - 5000, &d), 0);
    ck_assert_int_eq(d, 5000);
    ck_assert_int_eq(reply_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + 5000, &d), 0);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(reply_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 0, &d), 0);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(reply_retry_after("Tue, 29 Feb 2028 00:00:01 GMT", 1835395200000LL, &d), 0);
    ck_assert_int_eq(d, 1000);
    ck_assert_int_eq(reply_retry_after("", 0, &d), -1);
    ck_assert_int_eq(reply_retry_after("12s", 0, &d), -1);
    ck_assert_int_eq(reply_retry_after("-5", 0, &d), -1);
    ck_assert_int_eq(reply_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", 0, &d), -1);
    ck_assert_int_eq(reply_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", 0, &d), -1);
    ck_assert_int_eq(reply_retry_after("Sun, 06 Nov 1994 28:49:37 GMT", 0, &d), -1);
    ck_assert_int_eq(reply_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 0, &d), -1);
}
END_TEST

/* A job as the store returns it (free with store_push_jobs_free(j, 1)). */
static struct store_push_job *job(const char *title, const char *body, const char *type,
                                  unsigned count)
{
    struct store_push_job *j = calloc(1, sizeof(*j));
    ck_assert_ptr_nonnull(j);
    j->id = 42;
    j->conversation_id = strdup("c_0123456789abcdef0123456789abcdef");
    j->conv_title = title ? strdup(title) : NULL;
    j->sender = strdup("alice");
    j->msg_type = strdup(type);
    j->body = strdup(body);
    j->msg_seq = 7;
    j->count = count;
    return j;
}

START_TEST(test_notify_text)
{
    static const struct {
        const char *title, *body, *type;
        unsigned count;
        int preview;
        const char *want_title, *want_body;
    } cases[] = {
        {NULL, "hi", "text", 1, 1, "alice", "hi"},
        {NULL, "hi", "text", 3, 1, "alice", "hi (+2 more)"},
        {"Team", "hi", "text", 1, 1, "Team", "alice: hi"},
        {"Team", "hi", "text", 2, 1, "Team", "alice: hi (+1 more)"},
        {"", "hi", "text", 1, 1, "alice", "alice: hi"},
        {NULL, "http://x/y.png", "image", 1, 1, "alice", "sent a image"},
        {NULL, "secret", "text", 1, 0, "New messages", "You have a new message"},
        {"Team", "secret", "text", 4, 0, "New messages", "You have 4 new messages"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_push_job *j =
            job(cases[i].title, cases[i].body, cases[i].type, cases[i].count);
        struct notify n;
        notify_text(j, cases[i].preview, &n);
        store_push_jobs_free(j, 1);
        ck_assert_str_eq(n.title, cases[i].want_title);
        ck_assert_str_eq(n.body, cases[i].want_body);
        ck_assert_ptr_null(strstr(n.body, "secret"));
        notify_release(&n);
    }
}
END_TEST

START_TEST(test_notify_media)
{
    /* API.md "Media": a message with media and no text says so */
    static const char *const img = "{\"content_type\":\"image/png\",\"name\":\"a.png\"}";
    static const char *const pdf = "{\"content_type\":\"application/pdf\",\"name\":\"r.pdf\"}";
    static const char *const svg = "{\"content_type\":\"image/svg+xml\",\"name\":\"x.svg\"}";
    struct {
        const char *title, *body, *media, *want;
    } cases[] = {
        {NULL, "", "[%s]", "Photo"},
        {NULL, "", "[%s,%s]", "2 photos"},
        {NULL, "", "[%p]", "File: r.pdf"},
        {NULL, "", "[%v]", "File: x.svg"},
        {NULL, "", "[%s,%p]", "2 files"},
        {"Team", "", "[%s]", "alice: Photo"},
        {NULL, "look", "[%s]", "look"}, /* text wins */
        {NULL, "", "", ""},             /* no media: an empty body as before */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct store_push_job *j = job(cases[i].title, cases[i].body, "text", 1);
        char media[256] = "";
        size_t o = 0;
        struct notify n;
        for (const char *p = cases[i].media; *p; p++) {
            const char *part = NULL;
            if (*p == '%') {
                p++;
                part = *p == 's' ? img : *p == 'p' ? pdf : svg;
                o += (size_t)snprintf(media + o, sizeof(media) - o, "%s", part);
            } else {
                media[o++] = *p;
            }
        }
        media[o] = '\0';
        j->media = strdup(media);
        notify_text(j, 1, &n);
        store_push_jobs_free(j, 1);
        ck_assert_msg(strcmp(n.body, cases[i].want) == 0, "case %zu: '%s'", i, n.body);
        notify_release(&n);
    }
}
END_TEST

START_TEST(test_notify_preview_cut_on_utf8)
{
    char body[NOTIFY_PREVIEW_MAX + 64];
    struct store_push_job *j;
    struct notify n;
    size_t len;

    /* 199 ASCII bytes then a 3-byte character across the 200-byte line */
    memset(body, 'a', NOTIFY_PREVIEW_MAX - 1);
    memcpy(body + NOTIFY_PREVIEW_MAX - 1, "\xe2\x82\xac tail", 9);
    body[NOTIFY_PREVIEW_MAX - 1 + 9] = '\0';
    j = job(NULL, body, "text", 1);
    notify_text(j, 1, &n);
    store_push_jobs_free(j, 1);
    len = strlen(n.body);
    ck_assert_uint_eq(len, NOTIFY_PREVIEW_MAX - 1 + 3); /* the euro sign dropped, ellipsis added */
    ck_assert_str_eq(n.body + len - 3, "\xe2\x80\xa6");
    notify_release(&n);
    ck_assert_uint_eq(notify_utf8_cut("ab\xc3\xa9", 4), 4);
    ck_assert_uint_eq(notify_utf8_cut("ab\xc3\xa9", 3), 2);
    ck_assert_uint_eq(notify_utf8_cut("\xf0\x9f\x98\x80", 3), 0);
    ck_assert_uint_eq(notify_utf8_cut("\xf0\x9f\x98\x80", 4), 4);
    ck_assert_uint_eq(notify_utf8_cut("abc", 2), 2);
}
END_TEST

START_TEST(test_notify_data)
{
    struct store_push_job *j = job(NULL, "x", "text", 3);
    json_t *d = notify_data(j);
    store_push_jobs_free(j, 1);
    ck_assert_str_eq(json_string_value(json_object_get(d, "count")), "3");
    ck_assert_str_eq(json_string_value(json_object_get(d, "seq")), "7");
    ck_assert_str_eq(json_string_value(json_object_get(d, "job")), "42");
    json_decref(d);
}
END_TEST

static Suite *reply_suite(void)
{
    Suite *s = suite_create("push_reply");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fcm_answers);
    tcase_add_test(tc, test_apns_answers);
    tcase_add_test(tc, test_long_reason_is_cut);
    tcase_add_test(tc, test_oauth);
    tcase_add_test(tc, test_retry_after);
    tcase_add_test(tc, test_notify_text);
    tcase_add_test(tc, test_notify_media);
    tcase_add_test(tc, test_notify_preview_cut_on_utf8);
    tcase_add_test(tc, test_notify_data);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(reply_suite());
}
