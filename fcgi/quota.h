/*
 * quota.h - per-user write quotas: which writes are limited, how much, and
 * the 429 they get (API.md "Operations": "writes that fan out are
 * rate-limited per user like sends"; docs/OPERATIONS.md "Abuse limits").
 *
 * Why classes: every write that costs storage or other users' inboxes
 * (a message: one row per member; a group: a member row and an inbox row
 * per member; a member added or removed: an inbox row per member; a read
 * receipt: an inbox row per other member; a device; a ticket: a used-nonce
 * row) has its own budget, so that a user who creates groups in a loop does
 * not eat the budget of its messages and the other way round. Each class
 * has a rate and a burst from the configuration (config.h, the *_rate /
 * *_per_min and *_burst keys), and a SIGHUP changes them (fcgi/reload.h).
 *
 * The interface is the class and the user, nothing about buckets: this
 * process keeps token buckets in memory (fcgi/ratelimit.h), so several
 * larkd processes each enforce their own share; an implementation shared
 * between processes (CGI mode) can stand behind the same calls.
 *
 * Thread-safe: any thread may call every function.
 */
#ifndef LARK_QUOTA_H
#define LARK_QUOTA_H

struct config;
struct lark_err;
struct quota;
struct store_conn;

enum quota_class {
    QUOTA_SEND,   /* a message: POST /v1/messages, WebSocket send (send_rate/s) */
    QUOTA_TYPING, /* a typing notice, HTTP or WebSocket (typing_rate/s; never stored) */
    QUOTA_GROUP,  /* POST /v1/conversations (group_per_min) */
    QUOTA_MEMBER, /* a member added, removed or leaving (member_per_min) */
    QUOTA_READ,   /* a read receipt, HTTP or WebSocket (read_per_min) */
    QUOTA_DEVICE, /* POST /v1/devices (device_per_min) */
    QUOTA_TICKET, /* POST /v1/tickets (ticket_per_min) */
    QUOTA_MEDIA,  /* an upload or an upload declared (media_rate, per minute) */
    QUOTA_NCLASS
};

/* The quotas of cfg, in force from now. Caller frees. */
struct quota *quota_new(const struct config *cfg);

/*
 * The same quotas kept in the store behind db (borrowed: it must outlive
 * the quota; one thread), where every process sees them: larkd as a CGI
 * program, a process per request (fcgi/cgi.h). quota_set is not for these
 * (a CGI process reads its configuration once). Caller frees.
 */
struct quota *quota_new_store(const struct config *cfg, struct store_conn *db);
void quota_free(struct quota *q);

/* Put cfg's rates and bursts in force for every later take (SIGHUP). */
void quota_set(struct quota *q, const struct config *cfg);

/*
 * Take one unit of class c for user. 0 if allowed; LARK_ERATE if not, with
 * *retry_after the whole seconds until one is back (at least 1) and err
 * saying which limit it was. A class whose rate is 0 is unlimited.
 */
int quota_take(struct quota *q, enum quota_class c, const char *user, int *retry_after,
               struct lark_err *err);

#endif
