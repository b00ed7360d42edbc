/*
 * fcm.h - Firebase Cloud Messaging, HTTP v1 API.
 *
 * Authentication is OAuth2 for a service account (RFC 7523): lark-push
 * signs an RS256 assertion {iss: client_email, scope: firebase.messaging,
 * aud: token endpoint, iat, exp} with the account's private key (libjwt),
 * exchanges it at the token endpoint for an access token, and reuses that
 * until FCM_TOKEN_SLACK_S before it expires (or until FCM answers 401).
 * The exchange is one more transfer on the same curl multi handle: while
 * it runs, requests wait in a list instead of blocking the loop.
 *
 * Sending: POST {fcm_endpoint}/v1/projects/{project_id}/messages:send
 * with {"message": {token, notification {title, body}, data, android
 * {collapse_key, priority, ttl}}}.
 *
 * Ownership: struct fcm is lark-push's, single-threaded. Requests handed
 * to fcm_send stay the caller's; fcm only starts their transfers.
 */
#ifndef LARK_PUSH_FCM_H
#define LARK_PUSH_FCM_H

#include "push/push.h"

struct config;
struct fcm;
struct lark_err;

/* Renew the access token this long before it expires (Google's last an
 * hour; a request must not race the expiry). */
#define FCM_TOKEN_SLACK_S 300
/* A service-account JSON file is a few KiB. */
#define FCM_CREDENTIALS_MAX (64 * 1024)
/* Lifetime asked for the assertion (Google allows at most one hour). */
#define FCM_ASSERTION_TTL_S 3600

/*
 * Load cfg->fcm_credentials and check that an assertion can be signed.
 * 0 or LARK_EINVAL (unreadable file, missing field, bad key).
 */
int fcm_new(const struct config *cfg, struct fcm **out, struct lark_err *err);

/* Abort the token transfer and free. Waiting requests are the caller's:
 * it must have taken them back (fcm_take_waiting). Accepts NULL. */
void fcm_free(struct fcm *f, struct net *n);

/*
 * Send req (its transfer starts now, or when an access token arrives).
 * 0, or LARK_EINTERNAL with req->fail set (nothing started).
 */
int fcm_send(struct fcm *f, struct net *n, struct push_req *req, const struct push_opts *o);

/*
 * The token transfer x finished. On success the waiting requests start;
 * otherwise (or if one cannot start) they are returned as a list through
 * *failed, each with req->fail set.
 */
void fcm_token_done(struct fcm *f, struct net *n, struct net_xfer *x, const struct push_opts *o,
                    struct push_req **failed);

/* FCM refused the access token (401): fetch a new one next time. */
void fcm_auth_failed(struct fcm *f);

/* Take back every request still waiting for a token (shutdown). */
struct push_req *fcm_take_waiting(struct fcm *f);

#endif
