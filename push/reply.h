/*
 * reply.h - reading what the push providers answer.
 *
 * Everything here parses input from the network (answers of FCM, its
 * OAuth2 token endpoint and APNs), so it is fuzzed (tests/fuzz/
 * fuzz_push_reply.c) and keeps no state. Each answer is sorted into what
 * lark-push must do next; the rules are the providers' documented ones:
 *
 *   FCM HTTP v1 (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode):
 *     2xx ok; errorCode UNREGISTERED (404), SENDER_ID_MISMATCH, or a 400
 *     INVALID_ARGUMENT blaming message.token: the token is dead; 401:
 *     refresh the access token and retry; 429 and 5xx: retry; other 4xx:
 *     the request itself is wrong (retrying cannot help).
 *   APNs (developer.apple.com, "Handling notification responses"):
 *     200 ok; 410 (Unregistered, ExpiredToken) and 400 BadDeviceToken or
 *     DeviceTokenNotForTopic: the token is dead; 403 ExpiredProviderToken
 *     or InvalidProviderToken: make a new provider token and retry; 429
 *     and 5xx: retry; other 4xx: give up.
 *
 * Nothing is allocated except where stated; the reason is copied, bounded.
 */
#ifndef LARK_PUSH_REPLY_H
#define LARK_PUSH_REPLY_H

#include <stddef.h>
#include <stdint.h>

enum reply_kind {
    REPLY_OK,         /* delivered to the provider */
    REPLY_RETRY,      /* transient: try again later (backoff, Retry-After) */
    REPLY_TOKEN_DEAD, /* the device token will never work again: remove it */
    REPLY_AUTH,       /* our credentials were refused: renew them, then retry */
    REPLY_FAIL,       /* permanent for this job: dead-letter it */
};

/* Longest reason kept (provider reason codes are short words). */
#define REPLY_REASON_MAX 96
/* A Retry-After further away than this is taken as this: one day. */
#define REPLY_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)
/* Longest access token accepted from the token endpoint (Google's are
 * about 1 KiB; the token goes into a header, so it is bounded). */
#define REPLY_TOKEN_MAX 4096

struct reply {
    enum reply_kind kind;
    char reason[REPLY_REASON_MAX]; /* e.g. "UNREGISTERED", "http 503"; printable ASCII */
};

/* Sort an FCM send answer (status, body of len bytes, need not be NUL-terminated). */
void reply_fcm(long status, const char *body, size_t len, struct reply *out);

/* Sort an APNs answer. */
void reply_apns(long status, const char *body, size_t len, struct reply *out);

/*
 * The OAuth2 token endpoint's answer {"access_token", "expires_in", ...}:
 * *token (caller frees) is 1..REPLY_TOKEN_MAX visible ASCII characters,
 * *expires_in_s > 0. 0, or -1 when the answer is not a usable token.
 */
int reply_oauth(const char *body, size_t len, char **token, int64_t *expires_in_s);

/*
 * A Retry-After header value (RFC 9110 10.2.3): delay-seconds or an
 * IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), seen at now_ms. *delay_ms
 * is clamped to [0, REPLY_RETRY_AFTER_MAX_MS]. 0, or -1 if malformed.
 */
int reply_retry_after(const char *value, int64_t now_ms, int64_t *delay_ms);

#endif
