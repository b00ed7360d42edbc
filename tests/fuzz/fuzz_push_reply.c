/*
 * fuzz_push_reply.c - libFuzzer target for what lark-push reads from the
 * network (push/reply.c) and the text it cuts from messages (notify.c).
 *
 * The first two bytes are an HTTP status; the rest is an answer body fed
 * to the FCM, APNs and OAuth2 readers, and (NUL-terminated) a Retry-After
 * value and a message body. Beyond memory safety it checks:
 *   - every answer is sorted into a known kind, with a NUL-terminated,
 *     printable reason shorter than REPLY_REASON_MAX; 2xx FCM and 200
 *     APNs answers are always REPLY_OK;
 *   - an accepted OAuth2 token is 1..REPLY_TOKEN_MAX visible ASCII
 *     characters (it goes into an Authorization header) with a positive
 *     lifetime, and a refused one leaves *token NULL;
 *   - a Retry-After delay is within [0, REPLY_RETRY_AFTER_MAX_MS], and
 *     delay-seconds agree with a plain reference;
 *   - a UTF-8 cut never exceeds its limit nor splits a valid character,
 *     and a notification built from any body is valid UTF-8 JSON.
 */
#include "core/store.h"
#include "push/notify.h"
#include "push/reply.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_reason(const struct reply *r)
{
    size_t n = strnlen(r->reason, sizeof(r->reason));
    CHECK(n < sizeof(r->reason));
    for (size_t i = 0; i < n; i++)
        CHECK(r->reason[i] >= 0x20 && r->reason[i] < 0x7f);
    CHECK(r->kind == REPLY_OK || r->kind == REPLY_RETRY || r->kind == REPLY_TOKEN_DEAD ||
          r->kind == REPLY_AUTH || r->kind == REPLY_FAIL);
}

static void check_answers(long status, const char *body, size_t len)
{
    struct reply r;
    char *tok = (char *)1;
    int64_t exp = -1;

    reply_fcm(status, body, len, &r);
    check_reason(&r);
    CHECK((status >= 200 && status < 300) == (r.kind == REPLY_OK));
    reply_apns(status, body, len, &r);
    check_reason(&r);
    CHECK((status == 200) == (r.kind == REPLY_OK));
    if (reply_oauth(body, len, &tok, &exp) == 0) {
        size_t n = strlen(tok);
        CHECK(n >= 1 && n <= REPLY_TOKEN_MAX && exp > 0);
        for (size_t i = 0; i < n; i++)
            CHECK(tok[i] > 0x20 && tok[i] < 0x7f);
        free(tok);
    } else {
        CHECK(tok == NULL);
    }
}

static void check_retry_after(const char *s)
{
    int64_t d = -1, ref = 0;
    int digits_only = *s != '\0';

    if (reply_retry_after(s, 1795000000000LL, &d) == 0)
        CHECK(d >= 0 && d <= REPLY_RETRY_AFTER_MAX_MS);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            digits_only = 0;
            break;
        }
        if (ref <= REPLY_RETRY_AFTER_MAX_MS)
            ref = ref * 10 + (*p - '0') * 1000;
    }
    if (digits_only) {
        CHECK(reply_retry_after(s, 0, &d) == 0);
        CHECK(d == (ref > REPLY_RETRY_AFTER_MAX_MS ? REPLY_RETRY_AFTER_MAX_MS : ref));
    }
}

/* 1 if s[0..n) is made of whole UTF-8 sequences (lead byte + continuations;
 * overlongs not refused): what a cut must preserve. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

static void check_text(char *body, size_t len)
{
    char conv[] = "c_00", sender[] = "alice", type[] = "text";
    struct store_push_job j = {0};
    struct notify n;
    json_t *v;

    for (size_t lim = 0; lim <= len && lim < 16; lim++) {
        size_t cut = notify_utf8_cut(body, lim);
        CHECK(cut <= lim);
        if (utf8_ok((const unsigned char *)body, len))
            CHECK(utf8_ok((const unsigned char *)body, cut));
    }
    j.conversation_id = conv;
    j.sender = sender;
    j.msg_type = type;
    j.body = body;
    j.count = (unsigned)len % 5 + 1;
    notify_text(&j, 1, &n);
    v = notify_str(n.body);
    CHECK(v != NULL && json_is_string(v));
    {
        /* jansson's UTF-8 check (strict: no overlongs, no surrogates) is the
         * oracle: valid text never turns into "" */
        json_t *valid = json_string(body);
        if (*body && valid)
            CHECK(json_string_length(v) > 0);
        json_decref(valid);
    }
    json_decref(v);
    notify_release(&n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long status;
    char *body, *str;
    size_t len;

    if (size < 2)
        return 0;
    status = (long)(data[0] | (data[1] << 8)) % 700;
    len = size - 2;
    body = malloc(len ? len : 1); /* exact size: ASan sees any over-read */
    memcpy(body, data + 2, len);
    check_answers(status, body, len);
    str = malloc(len + 1);
    memcpy(str, data + 2, len);
    str[len] = '\0';
    check_retry_after(str);
    check_text(str, strlen(str));
    free(body);
    free(str);
    return 0;
}
