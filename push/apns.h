/*
 * apns.h - Apple Push Notification service, HTTP/2 provider API with
 * token-based authentication.
 *
 * Every request carries a provider token: an ES256 JWT {iss: team id,
 * iat} with header kid = key id, signed with the .p8 key (libjwt). Apple
 * refuses tokens older than an hour and refreshes more often than every
 * 20 minutes (TooManyProviderTokenUpdates), so one token is reused for
 * APNS_TOKEN_REFRESH_S, or renewed when APNs says it expired.
 *
 * Sending: POST {apns_endpoint}/3/device/{token} with apns-topic (the
 * configured topic, else the device's app), apns-push-type: alert,
 * apns-priority: 10, apns-collapse-id (the conversation, so a newer
 * notification replaces an older one on the device), apns-expiration
 * (now + push_ttl) and an "aps" alert payload. Requests are streams of
 * one HTTP/2 connection (net.h).
 *
 * Ownership: struct apns is lark-push's, single-threaded.
 */
#ifndef LARK_PUSH_APNS_H
#define LARK_PUSH_APNS_H

#include "push/push.h"

struct apns;
struct config;
struct lark_err;

/* Reuse a provider token this long: inside Apple's 20-60 minute window. */
#define APNS_TOKEN_REFRESH_S (40 * 60)
/* A .p8 key file is a few hundred bytes. */
#define APNS_KEY_MAX (16 * 1024)

/* Load the key and check it signs. 0 or LARK_EINVAL. */
int apns_new(const struct config *cfg, struct apns **out, struct lark_err *err);

void apns_free(struct apns *a);

/* Start req's transfer. 0, or LARK_EINTERNAL with req->fail set. */
int apns_send(struct apns *a, struct net *n, struct push_req *req, const struct push_opts *o);

/* APNs refused the provider token: sign a new one for the next request. */
void apns_auth_failed(struct apns *a);

#endif
