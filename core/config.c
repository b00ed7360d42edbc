/*
 * config.c - the configuration table and its loaders.
 */
#include "core/config.h"

#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Where the migrations are when the configuration does not say, relative
 * to the running binary so that nothing refers to the tree it was built
 * in: BIN/../share/lark/migrations for an installed binary (make install,
 * the Debian package: PREFIX/bin and PREFIX/share/lark), else
 * BIN/../migrations for one run from a build directory of the source tree
 * (build/, build-asan/).
 */
static const char *const config_migration_dirs[] = {"../share/lark/migrations", "../migrations"};

/* A config file line longer than this is an error, not silently cut. */
#define CONFIG_LINE_MAX 4096

enum config_type { CFG_STR, CFG_INT };

struct config_key {
    const char *key; /* name in the config file */
    const char *env; /* environment variable */
    enum config_type type;
    size_t offset;   /* into struct config */
    const char *def; /* CFG_STR default ("" = derived or empty) */
    long def_int;    /* CFG_INT default */
    long min, max;   /* range for CFG_INT */
    const char *help;
};

#define S(k, e, field, d, h)                                                                       \
    {                                                                                              \
        k, e, CFG_STR, offsetof(struct config, field), d, 0, 0, 0, h                               \
    }
#define I(k, e, field, d, lo, hi, h)                                                               \
    {                                                                                              \
        k, e, CFG_INT, offsetof(struct config, field), NULL, d, lo, hi, h                          \
    }

static const struct config_key config_keys[] = {
    S("data", "LARK_DATA", data_dir, "var", "directory for the SQLite database and the socket"),
    S("db", "LARK_DB", db, "",
      "store: sqlite:PATH or postgresql://... (default sqlite:DATA/lark.db)"),
    S("migrations", "LARK_MIGRATIONS", migrations, "",
      "directory holding sqlite/ and postgres/ migrations (default: next to the binary)"),
    S("sqlite_sync", "LARK_SQLITE_SYNC", sqlite_sync, "FULL",
      "SQLite PRAGMA synchronous: FULL (survives power loss) or NORMAL"),
    I("sqlite_page_size", "LARK_SQLITE_PAGE_SIZE", sqlite_page_size, 4096, 512, 65536,
      "page size of a new SQLite database (a power of two; an existing one keeps its own)"),
    I("sqlite_wal_max_mb", "LARK_SQLITE_WAL_MAX_MB", sqlite_wal_max_mb, 64, 4, 4096,
      "MiB the SQLite WAL may reach before the writer makes it start over"),
    S("listen", "LARK_LISTEN", listen, "", "FastCGI unix socket (default DATA/larkd.sock)"),
    S("ws_listen", "LARK_WS_LISTEN", ws_listen, "",
      "unix socket for WebSocket sessions from mod_wstunnel (default DATA/larkd-ws.sock; "
      "off: none)"),
    I("ws_workers", "LARK_WS_WORKERS", ws_workers, 4, 1, 64,
      "threads running WebSocket commands (send, ack, read, typing)"),
    I("ws_auth_timeout", "LARK_WS_AUTH_TIMEOUT", ws_auth_timeout, 10, 1, 300,
      "seconds a WebSocket session has to send its auth line"),
    I("listen_backlog", "LARK_LISTEN_BACKLOG", listen_backlog, 4096, 16, 65535,
      "listen backlog of the FastCGI socket"),
    I("workers", "LARK_WORKERS", workers, 16, 1, 256, "FastCGI worker threads"),
    S("jwt_alg", "LARK_JWT_ALG", jwt_alg, "HS256", "accepted JWT algorithm: HS256, RS256 or ES256"),
    S("jwt_secret", "LARK_JWT_SECRET", jwt_secret, CONFIG_DEV_SECRET, "HS256 shared secret"),
    S("jwt_key_file", "LARK_JWT_KEY_FILE", jwt_key_file, "",
      "PEM public key for RS256/ES256 (tokens without a kid)"),
    S("jwt_jwks_file", "LARK_JWT_JWKS_FILE", jwt_jwks_file, "",
      "JWKS file: RS256/ES256 public keys by kid (reloaded on SIGHUP)"),
    S("jwt_secrets_file", "LARK_JWT_SECRETS_FILE", jwt_secrets_file, "",
      "HS256 secrets by kid, one \"kid secret\" line each (reloaded on SIGHUP)"),
    S("jwt_aud", "LARK_JWT_AUD", jwt_aud, "", "required JWT aud (empty: not checked)"),
    S("jwt_iss", "LARK_JWT_ISS", jwt_iss, "", "required JWT iss (empty: not checked)"),
    I("jwt_leeway", "LARK_JWT_LEEWAY", jwt_leeway, 0, 0, 300, "seconds of clock skew on exp/nbf"),
    I("body_max", "LARK_BODY_MAX", body_max, LIMIT_BODY_DEFAULT, 1, LIMIT_BODY_MAX,
      "bytes of a message body"),
    I("meta_max", "LARK_META_MAX", meta_max, LIMIT_META_DEFAULT, 2, LIMIT_META_MAX,
      "bytes of a message meta object"),
    I("request_max", "LARK_REQUEST_MAX", request_max, LIMIT_REQUEST_DEFAULT, 1024,
      LIMIT_REQUEST_MAX, "bytes of a request body"),
    I("group_max", "LARK_GROUP_MAX", group_max, LIMIT_GROUP_DEFAULT, 2, LIMIT_GROUP_MAX,
      "members of a group"),
    I("poll_timeout", "LARK_POLL_TIMEOUT", poll_timeout, LIMIT_POLL_TIMEOUT_DEFAULT, 0,
      LIMIT_POLL_TIMEOUT_MAX, "default long-poll timeout, seconds"),
    I("poll_timeout_max", "LARK_POLL_TIMEOUT_MAX", poll_timeout_max, LIMIT_POLL_TIMEOUT_MAX, 1,
      LIMIT_POLL_TIMEOUT_MAX, "longest long-poll timeout a client may ask, seconds"),
    I("history_max", "LARK_HISTORY_MAX", history_max, LIMIT_HISTORY_MAX, 1, LIMIT_HISTORY_MAX,
      "most messages per history page"),
    I("send_rate", "LARK_SEND_RATE", send_rate, LIMIT_SEND_RATE_DEFAULT, 0, 1000000,
      "sends per user per second (0: unlimited)"),
    I("send_burst", "LARK_SEND_BURST", send_burst, LIMIT_SEND_BURST_DEFAULT, 1, 1000000,
      "sends per user in a burst"),
    I("group_per_min", "LARK_GROUP_PER_MIN", group_per_min, LIMIT_GROUP_PER_MIN_DEFAULT, 0, 1000000,
      "groups a user creates per minute (0: unlimited)"),
    I("group_burst", "LARK_GROUP_BURST", group_burst, LIMIT_GROUP_BURST_DEFAULT, 1, 1000000,
      "groups a user creates in a burst"),
    I("member_per_min", "LARK_MEMBER_PER_MIN", member_per_min, LIMIT_MEMBER_PER_MIN_DEFAULT, 0,
      1000000, "members a user adds, removes or leaves groups as, per minute (0: unlimited)"),
    I("member_burst", "LARK_MEMBER_BURST", member_burst, LIMIT_MEMBER_BURST_DEFAULT, 1, 1000000,
      "member changes a user makes in a burst"),
    I("read_per_min", "LARK_READ_PER_MIN", read_per_min, LIMIT_READ_PER_MIN_DEFAULT, 0, 1000000,
      "read receipts a user sends per minute (0: unlimited)"),
    I("read_burst", "LARK_READ_BURST", read_burst, LIMIT_READ_BURST_DEFAULT, 1, 1000000,
      "read receipts a user sends in a burst"),
    I("device_per_min", "LARK_DEVICE_PER_MIN", device_per_min, LIMIT_DEVICE_PER_MIN_DEFAULT, 0,
      1000000, "device registrations per user per minute (0: unlimited)"),
    I("device_burst", "LARK_DEVICE_BURST", device_burst, LIMIT_DEVICE_BURST_DEFAULT, 1, 1000000,
      "device registrations per user in a burst"),
    I("ticket_per_min", "LARK_TICKET_PER_MIN", ticket_per_min, LIMIT_TICKET_PER_MIN_DEFAULT, 0,
      1000000, "tickets (POST /v1/tickets) per user per minute (0: unlimited)"),
    I("ticket_burst", "LARK_TICKET_BURST", ticket_burst, LIMIT_TICKET_BURST_DEFAULT, 1, 1000000,
      "tickets per user in a burst"),
    I("ticket_ttl", "LARK_TICKET_TTL", ticket_ttl, LIMIT_TICKET_TTL_MAX, 1, LIMIT_TICKET_TTL_MAX,
      "seconds a ticket can be used in (once)"),
    I("sse_keepalive", "LARK_SSE_KEEPALIVE", sse_keepalive, 15, 1, 15,
      "seconds between SSE ping events (API.md: at most 15)"),
    I("sse_retry_ms", "LARK_SSE_RETRY_MS", sse_retry_ms, 2000, 100, 600000,
      "reconnect delay SSE clients are told, milliseconds"),
    I("poll_trickle", "LARK_POLL_TRICKLE", poll_trickle, 3, 1, 60,
      "seconds between whitespace bytes on a held long-poll (hang-up detection)"),
    I("drain_grace_ms", "LARK_DRAIN_GRACE_MS", drain_grace_ms, 1000, 0, 60000,
      "after SIGTERM, how long new requests are answered 503 before exit"),
    I("max_held_per_user", "LARK_MAX_HELD_PER_USER", max_held_per_user, LIMIT_HELD_PER_USER_DEFAULT,
      0, 100000, "held connections (SSE, long-poll) one user may have at once (0: no cap)"),
    I("cgi_sse_window", "LARK_CGI_SSE_WINDOW", cgi_sse_window, LIMIT_CGI_SSE_WINDOW_DEFAULT, 5,
      LIMIT_CGI_SSE_WINDOW_MAX, "CGI mode: seconds an SSE stream lasts before it ends with retry:"),
    I("presence_interval", "LARK_PRESENCE_INTERVAL", presence_interval, 15, 1, 3600,
      "seconds between heartbeats clients are asked for"),
    I("presence_ttl", "LARK_PRESENCE_TTL", presence_ttl, 45, 2, 86400,
      "seconds without a heartbeat or connection before a user is offline"),
    I("typing_rate", "LARK_TYPING_RATE", typing_rate, 2, 0, 1000,
      "typing notices per user per second (0: unlimited)"),
    I("typing_burst", "LARK_TYPING_BURST", typing_burst, 5, 1, 1000,
      "typing notices per user in a burst"),
    S("presence_visibility", "LARK_PRESENCE_VISIBILITY", presence_visibility, "shared",
      "whose presence a user sees: shared (users it shares a conversation with) or all"),
    I("push_window_ms", "LARK_PUSH_WINDOW_MS", push_window_ms, 2000, 0, 600000,
      "a burst to one offline device within this many ms is one notification"),
    I("push_preview", "LARK_PUSH_PREVIEW", push_preview, 1, 0, 1,
      "1: notifications show the sender and the text; 0: only a count (privacy)"),
    I("push_attempts", "LARK_PUSH_ATTEMPTS", push_attempts, 8, 1, 100,
      "lark-push: tries before a job moves to the dead-letter table"),
    I("push_backoff_ms", "LARK_PUSH_BACKOFF_MS", push_backoff_ms, 1000, 1, 3600000,
      "lark-push: first retry delay, ms (exponential, full jitter)"),
    I("push_backoff_max_ms", "LARK_PUSH_BACKOFF_MAX_MS", push_backoff_max_ms, 600000, 1, 86400000,
      "lark-push: longest retry delay, ms"),
    I("push_timeout_ms", "LARK_PUSH_TIMEOUT_MS", push_timeout_ms, 15000, 100, 600000,
      "lark-push: timeout of one provider request, ms"),
    I("push_lease_ms", "LARK_PUSH_LEASE_MS", push_lease_ms, 60000, 200, 3600000,
      "lark-push: a claimed job is claimed again after this (daemon died), ms"),
    I("push_inflight", "LARK_PUSH_INFLIGHT", push_inflight, 1000, 1, 10000,
      "lark-push: most provider requests in flight at once"),
    I("push_ttl", "LARK_PUSH_TTL", push_ttl, 86400, 0, 2419200,
      "lark-push: seconds a provider keeps an undelivered notification"),
    S("push_ca_file", "LARK_PUSH_CA_FILE", push_ca_file, "",
      "lark-push: extra trusted CA (PEM) for the providers' TLS"),
    S("fcm_endpoint", "LARK_FCM_ENDPOINT", fcm_endpoint, "https://fcm.googleapis.com",
      "lark-push: FCM HTTP v1 base URL"),
    S("fcm_token_endpoint", "LARK_FCM_TOKEN_ENDPOINT", fcm_token_endpoint, "",
      "lark-push: OAuth2 token URL (default: the credentials' token_uri)"),
    S("fcm_credentials", "LARK_FCM_CREDENTIALS", fcm_credentials, "",
      "lark-push: FCM service-account JSON file (empty: FCM off)"),
    S("apns_endpoint", "LARK_APNS_ENDPOINT", apns_endpoint, "https://api.push.apple.com",
      "lark-push: APNs base URL"),
    S("apns_key", "LARK_APNS_KEY", apns_key, "", "lark-push: APNs .p8 key file (empty: APNs off)"),
    S("apns_key_id", "LARK_APNS_KEY_ID", apns_key_id, "", "lark-push: APNs key id"),
    S("apns_team_id", "LARK_APNS_TEAM_ID", apns_team_id, "", "lark-push: APNs team id"),
    S("apns_topic", "LARK_APNS_TOPIC", apns_topic, "",
      "lark-push: apns-topic (empty: each device's app)"),
    S("media_storage", "LARK_MEDIA_STORAGE", media_storage, "local",
      "where media bytes live: local (media_dir) or s3 (media_s3_*)"),
    S("media_dir", "LARK_MEDIA_DIR", media_dir, "",
      "directory for local media and upload spool files (default DATA/media)"),
    I("media_max_bytes", "LARK_MEDIA_MAX_BYTES", media_max_bytes, LIMIT_MEDIA_DEFAULT, 1,
      LIMIT_MEDIA_MAX, "bytes of one upload"),
    I("media_quota_mb", "LARK_MEDIA_QUOTA_MB", media_quota_mb, 1024, 0, 1048576,
      "MiB of media one user may keep (0: unlimited)"),
    I("media_rate", "LARK_MEDIA_RATE", media_rate, 30, 0, 100000,
      "uploads per user per minute (0: unlimited)"),
    I("media_burst", "LARK_MEDIA_BURST", media_burst, 10, 1, 100000, "uploads per user in a burst"),
    I("media_uploads_max", "LARK_MEDIA_UPLOADS_MAX", media_uploads_max, 4, 1, 256,
      "uploads larkd receives at once (each holds a worker thread)"),
    I("media_retention", "LARK_MEDIA_RETENTION", media_retention, 86400, 1, 315360000,
      "seconds an upload that no message names is kept"),
    I("media_upload_ttl", "LARK_MEDIA_UPLOAD_TTL", media_upload_ttl, 900, 1, LIMIT_S3_PRESIGN_MAX_S,
      "seconds a two-step upload URL is valid"),
    I("media_url_ttl", "LARK_MEDIA_URL_TTL", media_url_ttl, 300, 1, LIMIT_S3_PRESIGN_MAX_S,
      "seconds a presigned S3 download URL is valid"),
    S("media_public_url", "LARK_MEDIA_PUBLIC_URL", media_public_url, "",
      "base URL of upload URLs, e.g. https://chat.example.com (default: from the request)"),
    S("media_s3_endpoint", "LARK_MEDIA_S3_ENDPOINT", media_s3_endpoint, "",
      "S3-compatible service, http(s)://host[:port]"),
    S("media_s3_bucket", "LARK_MEDIA_S3_BUCKET", media_s3_bucket, "", "S3 bucket"),
    S("media_s3_region", "LARK_MEDIA_S3_REGION", media_s3_region, "us-east-1",
      "S3 region (SigV4 scope)"),
    S("media_s3_access_key", "LARK_MEDIA_S3_ACCESS_KEY", media_s3_access_key, "",
      "S3 access key id"),
    S("media_s3_secret_key", "LARK_MEDIA_S3_SECRET_KEY", media_s3_secret_key, "",
      "S3 secret access key"),
    I("media_s3_timeout", "LARK_MEDIA_S3_TIMEOUT", media_s3_timeout, 120, 1, 86400,
      "seconds one S3 request may take, transfer included"),
    S("cors_origins", "LARK_CORS_ORIGINS", cors_origins, "", "comma-separated allowed Origins"),
    S("metrics_allow", "LARK_METRICS_ALLOW", metrics_allow, "127.0.0.1,::1",
      "comma-separated client addresses allowed GET /metrics"),
    S("log_level", "LARK_LOG_LEVEL", log_level, "info", "debug, info, warn or error"),
    S("log_format", "LARK_LOG_FORMAT", log_format, "text",
      "text (time LEVEL program: message) or json (one object per line)"),
    I("dev_tokens", "LARK_DEV_TOKENS", dev_tokens, 0, 0, 1,
      "1: POST /v1/dev/token signs a token for any user (needs the development secret)"),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static char **cfg_str(struct config *cfg, const struct config_key *k)
{
    return (char **)((char *)cfg + k->offset);
}

static int *cfg_int(struct config *cfg, const struct config_key *k)
{
    return (int *)((char *)cfg + k->offset);
}

static int config_set(struct config *cfg, const struct config_key *k, const char *val,
                      const char *origin, struct lark_err *err)
{
    if (k->type == CFG_STR) {
        char **p = cfg_str(cfg, k);
        free(*p);
        *p = xstrdup(val);
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < k->min || v > k->max)
        return lark_err_set(err, LARK_EINVAL, "%s: %s must be an integer in [%ld, %ld], got '%s'",
                            origin, k->key, k->min, k->max, val);
    *cfg_int(cfg, k) = (int)v;
    return 0;
}

static const struct config_key *config_find(const char *key)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++)
        if (strcmp(config_keys[i].key, key) == 0)
            return &config_keys[i];
    return NULL;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The first of config_migration_dirs that exists next to this binary (the
 * first one if none does, so that the error names the installed place). */
static char *config_default_migrations(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash, *first = NULL;

    if (n <= 0)
        return xstrdup("/usr/share/lark/migrations");
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    for (size_t i = 0; i < sizeof(config_migration_dirs) / sizeof(config_migration_dirs[0]); i++) {
        char *path = xasprintf("%s/%s", exe, config_migration_dirs[i]);
        char resolved[PATH_MAX];
        if (is_dir(path) && realpath(path, resolved)) {
            free(path);
            free(first);
            return xstrdup(resolved);
        }
        if (!first)
            first = path;
        else
            free(path);
    }
    return first;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int config_load_file(struct config *cfg, const char *path, struct lark_err *err)
{
    char line[CONFIG_LINE_MAX];
    int lineno = 0;
    int rc = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return lark_err_set(err, LARK_EINVAL, "cannot open config file %s", path);
    while (fgets(line, sizeof(line), f)) {
        char origin[64];
        char *key, *val, *eq;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = lark_err_set(err, LARK_EINVAL, "%s:%d: line too long", path, lineno);
            goto out;
        }
        key = trim(line);
        if (*key == '\0' || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (!eq) {
            rc = lark_err_set(err, LARK_EINVAL, "%s:%d: expected key = value", path, lineno);
            goto out;
        }
        *eq = '\0';
        val = trim(eq + 1);
        key = trim(key);
        const struct config_key *k = config_find(key);
        if (!k) {
            rc = lark_err_set(err, LARK_EINVAL, "%s:%d: unknown key '%s'", path, lineno, key);
            goto out;
        }
        snprintf(origin, sizeof(origin), "line %d", lineno);
        rc = config_set(cfg, k, val, origin, err);
        if (rc)
            goto out;
    }
out:
    fclose(f);
    return rc;
}

/* 1 if url is http(s)://host[:port] with nothing after. */
static int is_base_url(const char *url)
{
    const char *host = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    if (!host || !*host)
        return 0;
    for (; *host; host++)
        if (*host == '/' || *host == '?' || *host == '#' || *host == '@' ||
            (unsigned char)*host <= ' ' || (unsigned char)*host >= 0x7f)
            return 0;
    return 1;
}

/* The media keys that must agree with each other (docs/OPERATIONS.md). */
static int config_check_media(const struct config *cfg, struct lark_err *err)
{
    int s3 = strcmp(cfg->media_storage, "s3") == 0;

    if (!s3 && strcmp(cfg->media_storage, "local") != 0)
        return lark_err_set(err, LARK_EINVAL, "media_storage must be local or s3");
    if (*cfg->media_public_url && !is_base_url(cfg->media_public_url))
        return lark_err_set(err, LARK_EINVAL,
                            "media_public_url must be http(s)://host[:port], without a path");
    if (!s3)
        return 0;
    if (!is_base_url(cfg->media_s3_endpoint))
        return lark_err_set(err, LARK_EINVAL,
                            "media_storage = s3 needs media_s3_endpoint, http(s)://host[:port]");
    if (!*cfg->media_s3_bucket || strchr(cfg->media_s3_bucket, '/') || !*cfg->media_s3_region ||
        !*cfg->media_s3_access_key || !*cfg->media_s3_secret_key)
        return lark_err_set(err, LARK_EINVAL,
                            "media_storage = s3 needs media_s3_bucket (no '/'), "
                            "media_s3_region, media_s3_access_key and media_s3_secret_key");
    return 0;
}

/* The keys whose value is one of a few words. */
static int config_check_choices(const struct config *cfg, struct lark_err *err)
{
    if (strcmp(cfg->presence_visibility, "shared") != 0 &&
        strcmp(cfg->presence_visibility, "all") != 0)
        return lark_err_set(err, LARK_EINVAL, "presence_visibility must be shared or all");
    if (log_level_parse(cfg->log_level) < 0)
        return lark_err_set(err, LARK_EINVAL, "log_level must be debug, info, warn or error");
    if (log_format_parse(cfg->log_format) < 0)
        return lark_err_set(err, LARK_EINVAL, "log_format must be text or json");
    return 0;
}

int config_load(struct config *cfg, const char *path, struct lark_err *err)
{
    int rc = 0;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        if (k->type == CFG_STR)
            *cfg_str(cfg, k) = xstrdup(k->def);
        else
            *cfg_int(cfg, k) = (int)k->def_int;
    }
    if (!path)
        path = getenv("LARK_CONFIG");
    if (path && *path) {
        rc = config_load_file(cfg, path, err);
        if (rc)
            goto fail;
    }
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const char *v = getenv(config_keys[i].env);
        if (!v)
            continue;
        rc = config_set(cfg, &config_keys[i], v, config_keys[i].env, err);
        if (rc)
            goto fail;
    }
    if (!*cfg->db) {
        free(cfg->db);
        cfg->db = xasprintf("sqlite:%s/lark.db", cfg->data_dir);
    }
    if (!*cfg->ws_listen) {
        free(cfg->ws_listen);
        cfg->ws_listen = xasprintf("%s/larkd-ws.sock", cfg->data_dir);
    }
    if (!*cfg->listen) {
        free(cfg->listen);
        cfg->listen = xasprintf("%s/larkd.sock", cfg->data_dir);
    }
    if (!*cfg->migrations) {
        free(cfg->migrations);
        cfg->migrations = config_default_migrations();
    }
    if (!*cfg->media_dir) {
        free(cfg->media_dir);
        cfg->media_dir = xasprintf("%s/media", cfg->data_dir);
    }
    if ((rc = config_check_media(cfg, err)))
        goto fail;
    if (cfg->poll_timeout > cfg->poll_timeout_max) {
        rc = lark_err_set(err, LARK_EINVAL, "poll_timeout %d exceeds poll_timeout_max %d",
                          cfg->poll_timeout, cfg->poll_timeout_max);
        goto fail;
    }
    if (cfg->presence_ttl <= cfg->presence_interval) {
        rc = lark_err_set(err, LARK_EINVAL, "presence_ttl must exceed presence_interval");
        goto fail;
    }
    if (cfg->push_lease_ms <= cfg->push_timeout_ms) {
        rc = lark_err_set(err, LARK_EINVAL, "push_lease_ms must exceed push_timeout_ms");
        goto fail;
    }
    if (cfg->dev_tokens &&
        (strcmp(cfg->jwt_alg, "HS256") != 0 || strcmp(cfg->jwt_secret, CONFIG_DEV_SECRET) != 0 ||
         *cfg->jwt_secrets_file || *cfg->jwt_jwks_file)) {
        rc = lark_err_set(err, LARK_EINVAL,
                          "dev_tokens = 1 needs the development JWT secret (HS256, jwt_secret "
                          "unset, no key files): it must never sign tokens a real key would "
                          "accept");
        goto fail;
    }
    if ((rc = config_check_choices(cfg, err)))
        goto fail;
    return 0;
fail:
    config_release(cfg);
    return rc;
}

void config_release(struct config *cfg)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        if (config_keys[i].type == CFG_STR) {
            char **p = cfg_str(cfg, &config_keys[i]);
            free(*p);
            *p = NULL;
        }
    }
}

/* The same accessors for a const struct: the table's offsets, read only. */
static const char *cfg_cstr(const struct config *cfg, const struct config_key *k)
{
    return *(const char *const *)((const char *)cfg + k->offset);
}

static int cfg_cint(const struct config *cfg, const struct config_key *k)
{
    return *(const int *)((const char *)cfg + k->offset);
}

void config_copy(struct config *dst, const struct config *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        if (k->type == CFG_STR)
            *cfg_str(dst, k) = xstrdup(cfg_cstr(src, k));
        else
            *cfg_int(dst, k) = cfg_cint(src, k);
    }
}

void config_each_diff(const struct config *a, const struct config *b,
                      void (*fn)(const char *key, void *arg), void *arg)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        int same = k->type == CFG_STR ? strcmp(cfg_cstr(a, k), cfg_cstr(b, k)) == 0
                                      : cfg_cint(a, k) == cfg_cint(b, k);
        if (!same)
            fn(k->key, arg);
    }
}

void config_help(FILE *out)
{
    fprintf(out, "Configuration (file key / environment variable, default):\n");
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        int secret = strcmp(k->key, "jwt_secret") == 0;
        fprintf(out, "  %-19s %-24s %s\n", k->key, k->env, k->help);
        if (k->type == CFG_INT)
            fprintf(out, "  %-19s %-24s default: %ld\n", "", "", k->def_int);
        else if (strcmp(k->key, "migrations") == 0 && !*k->def) {
            char *dir = config_default_migrations();
            fprintf(out, "  %-19s %-24s default: %s\n", "", "", dir);
            free(dir);
        } else
            fprintf(out, "  %-19s %-24s default: %s\n", "", "",
                    secret ? "(development secret)" : (*k->def ? k->def : "(derived)"));
    }
}

int config_list_has(const char *list, const char *needle)
{
    size_t n = strlen(needle);
    const char *p = list;

    if (n == 0)
        return 0;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == n && memcmp(p, needle, n) == 0)
            return 1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}
