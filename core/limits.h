/*
 * limits.h - every limit lark enforces, with its reason.
 *
 * The *_DEFAULT values are what a fresh install uses; most can be changed in
 * the configuration (config.h, documented in docs/OPERATIONS.md). The
 * *_MAX values are hard ceilings that no configuration may exceed, because
 * something else (a buffer, a protocol, a test) was sized for them.
 */
#ifndef LARK_LIMITS_H
#define LARK_LIMITS_H

/* API.md: "message body 16 KiB of UTF-8". */
#define LIMIT_BODY_DEFAULT (16 * 1024)
/* API.md: "meta (a JSON object <= 4 KiB)", measured as compact JSON. */
#define LIMIT_META_DEFAULT (4 * 1024)
/* Ceilings for body_max and meta_max: one event, with JSON escaping at its
 * worst (6 bytes per control character), must fit one answer's budget
 * (EVENTS_BUDGET, 1 MiB): 6 * (128 + 32) KiB = 960 KiB. */
#define LIMIT_BODY_MAX (128 * 1024)
#define LIMIT_META_MAX (32 * 1024)
/* API.md: "request body 64 KiB". */
#define LIMIT_REQUEST_DEFAULT (64 * 1024)
/* No configuration may accept request bodies past 1 MiB: lighttpd's
 * server.max-request-size in conf/ is set to this. */
#define LIMIT_REQUEST_MAX (1024 * 1024)
/* API.md: "group size 500 members". */
#define LIMIT_GROUP_DEFAULT 500
/* A group of more than this fans out too many inbox rows per send to keep
 * one transaction short; see docs/BENCHMARKS.md (group fan-out). */
#define LIMIT_GROUP_MAX 5000
/* API.md: "long-poll timeout <= 60 s", default 25 s. */
#define LIMIT_POLL_TIMEOUT_DEFAULT 25
#define LIMIT_POLL_TIMEOUT_MAX 60
/* Events per long-poll answer: default and ceiling. */
#define LIMIT_POLL_EVENTS_DEFAULT 100
#define LIMIT_POLL_EVENTS_MAX 1000
/* API.md: "history limit <= 200"; 50 when not given. */
#define LIMIT_HISTORY_DEFAULT 50
#define LIMIT_HISTORY_MAX 200
/* API.md: "sends per user 20/s with a burst of 60". */
#define LIMIT_SEND_RATE_DEFAULT 20
#define LIMIT_SEND_BURST_DEFAULT 60
/* API.md "Operations": "at most 8 held connections (SSE, long-poll,
 * WebSocket) per user" - one user must not hold a server's connections. */
#define LIMIT_HELD_PER_USER_DEFAULT 8
/* CGI mode: a process holds an SSE stream this many seconds, then ends it
 * with retry: and the EventSource resumes with Last-Event-ID. Under a
 * minute, because CGI hosts and their proxies commonly end a request that
 * has run for 60 s; a process per stream is also what it costs. */
#define LIMIT_CGI_SSE_WINDOW_DEFAULT 55
#define LIMIT_CGI_SSE_WINDOW_MAX 3600

/* Write quotas per user (fcgi/quota.h, docs/OPERATIONS.md "Abuse limits"):
 * what a person does by hand, several times over, while a script that
 * loops is held to a rate whose storage cost is bounded. A group of 500
 * costs 500 member rows and 500 inbox rows; so does one member change in
 * it, or one read receipt (499); a device or a ticket costs one row. */
#define LIMIT_GROUP_PER_MIN_DEFAULT 10
#define LIMIT_GROUP_BURST_DEFAULT 5
#define LIMIT_MEMBER_PER_MIN_DEFAULT 60
#define LIMIT_MEMBER_BURST_DEFAULT 30
#define LIMIT_READ_PER_MIN_DEFAULT 300
#define LIMIT_READ_BURST_DEFAULT 30
#define LIMIT_DEVICE_PER_MIN_DEFAULT 6
#define LIMIT_DEVICE_BURST_DEFAULT 10
/* A ticket per stream (re)connection: a page's tabs reconnecting after a
 * restart take a few each. */
#define LIMIT_TICKET_PER_MIN_DEFAULT 60
#define LIMIT_TICKET_BURST_DEFAULT 30
/* API.md: a ticket is valid for one use within 60 s. */
#define LIMIT_TICKET_TTL_MAX 60
/* User ids: API.md "1-64 chars of [A-Za-z0-9_.@-]". */
#define LIMIT_USER_ID_MAX 64
/* client_msg_id: an opaque client string; 128 fits any UUID/ULID form. */
#define LIMIT_CLIENT_MSG_ID_MAX 128
/* Message type: a short token such as "text" or "image". */
#define LIMIT_MSG_TYPE_MAX 32
/* Conversation ids are server-made ("c_" + 32 hex); longer is never valid. */
#define LIMIT_CONV_ID_MAX 64
/* Group title. */
#define LIMIT_TITLE_MAX 256
/* A JWT longer than this is refused before decoding: real tokens are well
 * under 2 KiB and libjwt would otherwise allocate for the whole thing. */
#define LIMIT_TOKEN_MAX 4096
/* A request URI longer than this is refused (query strings carry a token). */
#define LIMIT_URI_MAX 8192
/* Query parameters per request. */
#define LIMIT_QUERY_PARAMS 32
/* Events fetched from the store per hub write; keeps one catch-up from
 * holding the hub's event loop for long. */
#define LIMIT_HUB_BATCH 256
/* Bytes the hub queues for one held connection before it drops it as a
 * slow consumer (lighttpd normally reads everything at once). */
#define LIMIT_HUB_PENDING_MAX (4 * 1024 * 1024)
/* A long-poll client is away between an answer and its next poll, an
 * EventSource between a drop and its reconnection: the hub keeps such a
 * user this long after its last connection left, with the tail of its
 * events (its next poll costs no read) and the typing and presence events
 * (never stored) sent meanwhile... */
#define LIMIT_HUB_LINGER_MS 10000
/* ...at most this many ephemeral events per user, the oldest dropped first. */
#define LIMIT_POLL_GAP_EVENTS 32
/* The tail of recent stored events the hub keeps per user it knows, so
 * that a connection just behind is written from memory: at most this many
 * events and this many bytes of their data (the newest always stays). A
 * connection further behind reads from the store. Sized for a long-poll
 * client's round trip and a reconnecting EventSource at thousands of
 * messages per second, not for history; per user online, so it is what
 * bounds the hub's memory beyond its connections. */
#define LIMIT_HUB_TAIL_EVENTS 64
#define LIMIT_HUB_TAIL_BYTES (32 * 1024)
/* Threads that run catch-up reads for the hub (each with its own store
 * connection): reads are short, and a burst of reconnections queues. */
#define LIMIT_HUB_READERS 2
/* Users one catch-up read job asks for at once (PostgreSQL: one round
 * trip for all of them; a reconnection storm of 10,000 streams is 100). */
#define LIMIT_HUB_READ_BATCH 100
/* SSE "?padding=1": API.md "a 2 KiB comment". */
#define LIMIT_SSE_PADDING 2048
/* API.md: a presence viewport holds at most 200 users. */
#define LIMIT_WATCH_MAX 200
/* Users one GET /v1/presence asks about. */
#define LIMIT_PRESENCE_QUERY_MAX 200
/* Conversations per page of GET /v1/conversations: default and ceiling. */
#define LIMIT_CONV_LIST_DEFAULT 50
#define LIMIT_CONV_LIST_MAX 200
/* Devices per user: every send to an offline user makes one push job per
 * device, so this bounds a send's work; a person has a handful. */
#define LIMIT_DEVICES_PER_USER 20
/* Push tokens: FCM registration tokens are about 160 characters today but
 * Google gives no bound, so allow generously (and the path must carry it in
 * DELETE /v1/devices/{token}, well under LIMIT_URI_MAX). */
#define LIMIT_FCM_TOKEN_MAX 4096
/* APNs device tokens are 32 bytes (64 hex digits); Apple says they may grow,
 * so up to 100 bytes are accepted. */
#define LIMIT_APNS_TOKEN_MIN 64
#define LIMIT_APNS_TOKEN_MAX 200
/* app: an iOS bundle id or Android package name; Android caps them at 255. */
#define LIMIT_APP_MAX 255
/* Sends the SQLite writer commits in one transaction (group commit). */
#define LIMIT_WRITER_BATCH 256

/* ---- media (API.md "Media (attachments)") ---- */
/* API.md: an upload is "at most media_max_bytes (default 25 MiB)". */
#define LIMIT_MEDIA_DEFAULT (25 * 1024 * 1024)
/* No configuration may accept uploads past 1 GiB: conf/lighttpd.conf sets
 * server.max-request-size for /v1/media to this (in KiB), so that larkd,
 * not lighttpd, answers every upload that is too large, with its own 413. */
#define LIMIT_MEDIA_MAX (1024 * 1024 * 1024)
/* API.md: a message carries "1-10 ids". */
#define LIMIT_MEDIA_PER_MESSAGE 10
/* A media name is a file name: 255 bytes, as most file systems allow. */
#define LIMIT_MEDIA_NAME_MAX 255
/* A content type with its parameters: RFC 6838 names are at most 127
 * characters on each side of the '/', and real parameters are short. */
#define LIMIT_MEDIA_TYPE_MAX 255
/* Bytes an upload reads from lighttpd at a time: all of an upload larkd
 * holds in memory (plus libfcgi's 8 KiB input buffer), whatever its size. */
#define LIMIT_MEDIA_CHUNK (64 * 1024)
/* Media rows the retention sweep deletes per transaction: one short write
 * at a time, however much expired at once. */
#define LIMIT_MEDIA_SWEEP_BATCH 100
/* The longest pause between two retention sweeps (a shorter retention
 * sweeps at half its period). */
#define LIMIT_MEDIA_SWEEP_MS (60 * 1000)
/* A spool file untouched for this long belongs to an upload that died
 * (kill -9, a crash): an upload in progress writes every few ms, and
 * lighttpd drops a client idle for 60 s. */
#define LIMIT_MEDIA_SPOOL_IDLE_S 3600
/* Bytes of an S3 answer kept (an error document; heads are parsed as
 * they come). */
#define LIMIT_S3_ANSWER_MAX (64 * 1024)
/* Seconds an S3 server may take to accept a connection. */
#define LIMIT_S3_CONNECT_S 10
/* An S3 transfer slower than this many bytes per second for
 * LIMIT_S3_STALL_S seconds is abandoned (a stalled peer). */
#define LIMIT_S3_STALL_BPS 1024
#define LIMIT_S3_STALL_S 30
/* AWS: a presigned URL is valid for at most 7 days (X-Amz-Expires). */
#define LIMIT_S3_PRESIGN_MAX_S (7 * 24 * 3600)

#endif
