/*
 * err.h - the error codes every lark function returns.
 *
 * A function that can fail returns int: 0 on success or one of the negative
 * LARK_E* codes below. Where the caller needs a human-readable reason (an
 * API error body), the function also fills a struct lark_err. Each code maps
 * to exactly one HTTP status and one stable API error code string
 * (documented in docs/API.md); fcgi/router.c is the only place that turns
 * them into HTTP answers, through err_http_status() and err_api_code().
 *
 * Out of memory is not an error code: it aborts with a log line (see mem.h).
 */
#ifndef LARK_ERR_H
#define LARK_ERR_H

#include <stddef.h>

enum lark_errcode {
    LARK_OK = 0,
    LARK_EINVAL = -1,         /* 400 invalid_request: malformed query or path value */
    LARK_EJSON = -2,          /* 400 invalid_json: body is not JSON (or not an object) */
    LARK_EUTF8 = -3,          /* 400 invalid_utf8: body is not valid UTF-8 */
    LARK_EMISSING = -4,       /* 400 missing_field */
    LARK_ETYPE = -5,          /* 400 wrong_type: a field has the wrong JSON type */
    LARK_EFIELD = -6,         /* 400 invalid_field: right type, bad value */
    LARK_ETOOLARGE = -7,      /* 413 request_too_large: request body over the limit */
    LARK_EMSGLARGE = -8,      /* 413 message_too_large: body/meta over the limit */
    LARK_EMEDIA = -9,         /* 415 unsupported_media_type: body is not application/json */
    LARK_ENOAUTH = -10,       /* 401 missing_token */
    LARK_ETOKEN = -11,        /* 401 invalid_token: bad signature, alg, aud, iss, sub... */
    LARK_EEXPIRED = -12,      /* 401 token_expired: exp has passed */
    LARK_ENOTMEMBER = -13,    /* 403 not_member */
    LARK_EFORBIDDEN = -14,    /* 403 forbidden: member, but not allowed (not admin) */
    LARK_ENOTFOUND = -15,     /* 404 not_found: no such route or resource */
    LARK_EMETHOD = -16,       /* 405 method_not_allowed */
    LARK_ECONFLICT = -17,     /* 409 conflict */
    LARK_EGROUPFULL = -18,    /* 409 group_full: group size limit reached */
    LARK_ERATE = -19,         /* 429 rate_limited */
    LARK_EDRAINING = -20,     /* 503 draining: the server is shutting down */
    LARK_EUNAVAIL = -21,      /* 503 db_unavailable: database unreachable or full */
    LARK_EINTERNAL = -22,     /* 500 internal */
    LARK_ETOOMANY = -23,      /* 400 too_many: a list is over its limit */
    LARK_EUNKNOWNTYPE = -24,  /* 400 unknown_type: a WebSocket command nobody knows */
    LARK_EBADMEDIA = -25,     /* 400 invalid_media: unknown media id, or someone else's */
    LARK_EMEDIAPENDING = -26, /* 409 media_pending: the media's bytes are not stored yet */
    LARK_EMEDIALARGE = -27,   /* 413 media_too_large: an upload over media_max_bytes */
    LARK_EQUOTA = -28,        /* 413 quota_exceeded: the uploader's media would pass its quota */
    LARK_ESTORAGE = -29,      /* 503 storage_unavailable: media storage failing or full */
    LARK_ETOOMANYCONN = -30,  /* 429 too_many_connections: max_held_per_user reached */
};

/* Longest human-readable error message kept, including the NUL. */
#define LARK_ERR_MSG_MAX 200

/*
 * An error with its detail. Owned by whoever declares it (usually on the
 * stack, one per request); no heap memory.
 */
struct lark_err {
    int code;                   /* LARK_E* or LARK_OK */
    char msg[LARK_ERR_MSG_MAX]; /* human-readable detail, "" for the default */
};

/*
 * Set err to code with a printf-style message and return code, so that a
 * failing path can be written `return lark_err_set(err, LARK_ETYPE, ...)`.
 * err may be NULL (the message is then dropped).
 */
int lark_err_set(struct lark_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* HTTP status for a code (500 for unknown codes). */
int err_http_status(int code);

/* Stable snake_case API code for a code ("internal" for unknown codes). */
const char *err_api_code(int code);

/* Default human-readable message for a code. */
const char *err_default_msg(int code);

#endif
