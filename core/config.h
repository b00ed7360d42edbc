/*
 * config.h - lark's configuration: one table of keys, validated at start.
 *
 * Shaped like lighttpd's set_defaults: every key is declared once in
 * config.c with its type, default, range and help text; the same table
 * loads the file, reads the environment and prints --help, so a key cannot
 * be documented in one place and missing in another.
 *
 * Precedence, lowest first: built-in default, the config file ("key = value"
 * lines, '#' comments; path from --config or LARK_CONFIG), then the
 * environment variable named in the table (LARK_*, plus PORT-free names).
 * Values are validated against their range; an unknown key in the file is
 * an error, so a typo does not silently keep a default.
 *
 * Ownership: config_load fills a caller-owned struct config whose strings it
 * owns; config_release frees them. After loading, the struct is read-only
 * and may be shared by every thread.
 */
#ifndef LARK_CONFIG_H
#define LARK_CONFIG_H

#include <stdio.h>

struct lark_err;

struct config {
    /* storage */
    char *data_dir;        /* LARK_DATA: directory for the SQLite file and socket */
    char *db;              /* LARK_DB: "sqlite:PATH" or "postgresql://..." */
    char *migrations;      /* LARK_MIGRATIONS: root holding sqlite/ and postgres/ */
    char *sqlite_sync;     /* PRAGMA synchronous for SQLite: FULL or NORMAL */
    int sqlite_page_size;  /* PRAGMA page_size of a new SQLite database; 0: SQLite's */
    int sqlite_wal_max_mb; /* MiB the WAL may reach before the writer restarts it */
    /* FastCGI */
    char *listen;        /* LARK_LISTEN: unix socket path larkd listens on */
    char *ws_listen;     /* LARK_WS_LISTEN: unix socket for mod_wstunnel, "off" = none */
    int ws_workers;      /* threads running WebSocket commands */
    int ws_auth_timeout; /* seconds a WebSocket session has to authenticate */
    int listen_backlog;  /* listen(2) backlog of that socket */
    int workers;         /* threads accepting FastCGI requests */
    /* auth (API.md "Authentication") */
    char *jwt_alg;          /* HS256, RS256 or ES256 */
    char *jwt_secret;       /* HS256 shared secret */
    char *jwt_key_file;     /* PEM public key for RS256/ES256 (the key without a kid) */
    char *jwt_jwks_file;    /* JWKS: RS256/ES256 public keys by kid (core/jwk.h) */
    char *jwt_secrets_file; /* HS256 secrets by kid: "kid secret" lines */
    char *jwt_aud;          /* required audience, "" = not checked */
    char *jwt_iss;          /* required issuer, "" = not checked */
    int jwt_leeway;         /* seconds of clock skew allowed on exp/nbf */
    /* limits (limits.h gives the reasons) */
    int body_max;         /* bytes of a message body */
    int meta_max;         /* bytes of a message meta object (compact JSON) */
    int request_max;      /* bytes of a request body */
    int group_max;        /* members of a group */
    int poll_timeout;     /* default long-poll timeout, seconds */
    int poll_timeout_max; /* longest long-poll timeout, seconds */
    int history_max;      /* most messages per history page */
    int send_rate;        /* sends per user per second, 0 = unlimited */
    int send_burst;       /* sends per user in a burst */
    /* write quotas per user (fcgi/quota.h); per minute, 0 = unlimited */
    int group_per_min;  /* groups created */
    int group_burst;    /* groups created in a burst */
    int member_per_min; /* members added, removed, or leaving */
    int member_burst;
    int read_per_min; /* read receipts */
    int read_burst;
    int device_per_min; /* device registrations */
    int device_burst;
    int ticket_per_min; /* tickets (POST /v1/tickets) */
    int ticket_burst;
    int ticket_ttl; /* seconds a ticket stays usable (API.md: at most 60) */
    /* held connections */
    int sse_keepalive;     /* seconds between SSE ping events */
    int sse_retry_ms;      /* the "retry:" SSE sends first, milliseconds */
    int poll_trickle;      /* seconds between whitespace bytes on a held poll */
    int drain_grace_ms;    /* after SIGTERM, how long new requests get 503 */
    int max_held_per_user; /* held connections (SSE, long-poll) one user may have, 0 = no cap */
    int cgi_sse_window;    /* CGI: seconds an SSE stream lasts, then it ends with retry: */
    /* presence and typing (API.md "Presence") */
    int presence_interval;     /* seconds between heartbeats a client is asked for */
    int presence_ttl;          /* seconds without a heartbeat or connection: offline */
    int typing_rate;           /* typing notices per user per second */
    int typing_burst;          /* typing notices per user in a burst */
    char *presence_visibility; /* "shared": only users who share a conversation; "all" */
    /* push (API.md "Push for offline users"; lark-push, docs/OPERATIONS.md) */
    int push_window_ms;       /* larkd: coalescing window of a device's notification */
    int push_preview;         /* 1: notifications show sender and text; 0: only a count */
    int push_attempts;        /* tries before a job goes to push_dead */
    int push_backoff_ms;      /* first retry delay (full jitter below it), ms */
    int push_backoff_max_ms;  /* longest retry delay, ms */
    int push_timeout_ms;      /* one provider request, connection included, ms */
    int push_lease_ms;        /* a claimed job is someone else's after this, ms */
    int push_inflight;        /* most requests in flight at once */
    int push_ttl;             /* seconds a provider keeps an undelivered notification */
    char *push_ca_file;       /* extra trusted CA (PEM) for provider TLS, "" = none */
    char *fcm_endpoint;       /* FCM HTTP v1 base URL */
    char *fcm_token_endpoint; /* OAuth2 token URL ("" = the credentials' token_uri) */
    char *fcm_credentials;    /* service-account JSON path, "" = FCM off */
    char *apns_endpoint;      /* APNs base URL */
    char *apns_key;           /* .p8 (PEM EC private key) path, "" = APNs off */
    char *apns_key_id;        /* the key's id (JWT kid) */
    char *apns_team_id;       /* the team id (JWT iss) */
    char *apns_topic;         /* apns-topic, "" = each device's app */
    /* media (API.md "Media (attachments)"; docs/OPERATIONS.md "Media") */
    char *media_storage;       /* "local" (a directory) or "s3" */
    char *media_dir;           /* LARK_MEDIA_DIR: local media, and every spool file */
    int media_max_bytes;       /* bytes of one upload (413 media_too_large beyond) */
    int media_quota_mb;        /* MiB of media one user may keep, 0 = unlimited */
    int media_rate;            /* uploads per user per minute, 0 = unlimited */
    int media_burst;           /* uploads per user in a burst */
    int media_uploads_max;     /* uploads larkd receives at once (each holds a worker) */
    int media_retention;       /* seconds an upload no message names is kept */
    int media_upload_ttl;      /* seconds a two-step upload URL is valid */
    int media_url_ttl;         /* seconds a presigned S3 download URL is valid */
    char *media_public_url;    /* base of upload URLs, "" = from the request's Host */
    char *media_s3_endpoint;   /* http(s)://host[:port] of the S3-compatible service */
    char *media_s3_bucket;     /* bucket (path-style: endpoint/bucket/key) */
    char *media_s3_region;     /* SigV4 region */
    char *media_s3_access_key; /* SigV4 access key id */
    char *media_s3_secret_key; /* SigV4 secret */
    int media_s3_timeout;      /* seconds one S3 request may take, transfer included */
    /* HTTP */
    char *cors_origins;  /* comma-separated allowed Origins, "" = none */
    char *metrics_allow; /* comma-separated REMOTE_ADDRs allowed /metrics */
    char *log_level;     /* debug, info, warn, error */
    char *log_format;    /* text or json (core/log.h) */
    /* development */
    int dev_tokens; /* 1: POST /v1/dev/token signs a token for any name (dev secret only) */
};

/* The development secret used when LARK_JWT_SECRET is not set
 * (docs/OPERATIONS.md). larkd logs a warning when it is in use. */
#define CONFIG_DEV_SECRET "lark-dev-secret-do-not-use-in-production"

/*
 * dev_tokens = 1 is accepted only together with the development secret
 * (HS256, jwt_secret left at CONFIG_DEV_SECRET): the endpoint then signs
 * nothing that anyone could not already forge with the published secret,
 * and a deployment that sets its own secret cannot turn it on by mistake
 * (config_load refuses to start instead).
 */

/*
 * Load defaults, then the file (path may be NULL: LARK_CONFIG or none),
 * then the environment. Returns 0 or LARK_EINVAL with err describing the
 * bad key. On error the struct is released.
 */
int config_load(struct config *cfg, const char *path, struct lark_err *err);

/* Free the strings config_load allocated. Accepts a zeroed struct. */
void config_release(struct config *cfg);

/* Make dst a copy of src (dst is overwritten, not released). */
void config_copy(struct config *dst, const struct config *src);

/* Call fn(key, arg) for each key whose value differs between a and b, in
 * table order. */
void config_each_diff(const struct config *a, const struct config *b,
                      void (*fn)(const char *key, void *arg), void *arg);

/* Print every key, its environment variable, default and meaning. */
void config_help(FILE *out);

/* 1 if needle is one of the comma-separated items of list. */
int config_list_has(const char *list, const char *needle);

#endif
