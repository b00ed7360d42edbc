/*
 * http.h - one FastCGI request as handlers see it, and how they answer.
 *
 * struct req is built by the router for each request a worker accepts and
 * lives on that worker's stack; handlers read what the router parsed (path
 * parameters, query, authenticated user, JSON body) and answer with one
 * reply_* call, or hand the request to the hub with req_detach. Nothing in
 * it outlives the request except what req_detach hands over.
 *
 * Every answer carries "Cache-Control: no-store" (API answers are per
 * user), the security headers of HTTP_SECURITY_HEADERS, and the CORS
 * headers when the Origin is configured (fcgi/live.h). Error answers
 * have API.md's body {"error": {"code", "message"}} and, for 429 and 503,
 * Retry-After.
 */
#ifndef LARK_HTTP_H
#define LARK_HTTP_H

#include "core/err.h"
#include "core/limits.h"
#include "core/query.h"

#include <fcgiapp.h>
#include <jansson.h>
#include <stdint.h>

struct app;
struct store_conn;
struct buf;

/* Path parameters a route may capture ({id}, {user}). */
#define REQ_PARAMS_MAX 3

struct req {
    struct app *app;
    FCGX_Request *fcgx;           /* NULL in CGI mode: stdin, stdout and environ instead */
    struct store_conn *db;        /* the worker's store connection */
    char method[8];               /* REQUEST_METHOD (copied: fcgx's params die on detach) */
    struct query query;           /* decoded query string */
    char *params[REQ_PARAMS_MAX]; /* decoded path parameters, owned */
    int nparams;
    char user[LIMIT_USER_ID_MAX + 1]; /* authenticated user, "" if none */
    json_t *body;                     /* parsed JSON body or NULL, owned */
    struct lark_err err;              /* detail for an error answer */
    int retry_after;                  /* seconds, for 429 / 503 */
    int status;                       /* status answered, 0 = not yet */
    int detached;                     /* handed to the hub */
    int head;                         /* HEAD: answers carry headers, never a body */
    const char *cors_origin;          /* Allow-Origin value ("*" or the Origin), or NULL */
    int cors_credentials;             /* 1: Access-Control-Allow-Credentials: true */
    char allow[64];                   /* Allow header for a 405, "" if none */
    const char *csp;                  /* Content-Security-Policy; NULL: HTTP_CSP_API */
    struct buf *capture;              /* set: answers are rendered here, not written */
    /* 1 while the body has not been read to its end (an upload refused
     * early): the answer says "Connection: close", or lighttpd - which
     * streams upload bodies to larkd (conf/lighttpd.conf) and must then
     * drop the connection - would leave the client to send its next
     * request into a connection about to close */
    int body_unread;
};

/*
 * On every answer larkd writes, whatever lighttpd adds: JSON is never to be
 * sniffed into HTML, framed or given a referrer, and a CSP keeps an answer
 * opened as a page inert (docs/API.md "Operations"): one that allows
 * nothing for the API, and for media bytes (reply_sendfile) "sandbox",
 * which still lets a browser show an image, audio or video it is given
 * inline but runs nothing in it.
 */
#define HTTP_SECURITY_HEADERS                                                                      \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Referrer-Policy: no-referrer\r\n"
#define HTTP_CSP_API "default-src 'none'; frame-ancestors 'none'"
#define HTTP_CSP_MEDIA "sandbox"

/* The header lines every answer carries after its status: the security
 * headers and the CORS headers for r's Origin. */
void reply_common_headers(struct req *r);

/* Write one header line ("Name: value\r\n") before the body starts. */
void reply_header(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write len bytes of the answer (headers or body). */
void req_write(struct req *r, const char *data, size_t len);

/* Read up to len bytes of the request body; bytes read, 0 at the end. */
size_t req_read(struct req *r, char *buf, size_t len);

/* A CGI/FastCGI parameter ("HTTP_AUTHORIZATION", ...), or NULL. */
const char *req_param(const struct req *r, const char *name);

/*
 * Answer status with a JSON body (borrowed). Sets r->status.
 */
void reply_json(struct req *r, int status, const json_t *body);

/* Answer status with raw bytes of content_type (for HEAD, the headers
 * only, Content-Length still that of the bytes). */
void reply_raw(struct req *r, int status, const char *content_type, const char *data, size_t len);

/*
 * Answer a download of media that lighttpd sends itself (X-Sendfile of
 * path; the bytes never pass through larkd): status 200 - lighttpd makes
 * it 206 for a Range, 304 for a matching If-None-Match - with the stored
 * type, ETag "sha256", the Content-Disposition value given, nosniff and a
 * sandbox CSP (API.md "Media").
 */
void reply_sendfile(struct req *r, const char *path, const char *type, const char *sha256,
                    const char *disposition);

/* Answer 302 to url (a presigned download), not to be cached. */
void reply_redirect(struct req *r, const char *url);

/* Answer with the error for code (a LARK_E*), message from r->err if set. */
void reply_error(struct req *r, int code);

/*
 * Start a streamed answer: write the status line and headers (plus extra,
 * which is "" or CRLF-terminated header lines) and the first body bytes,
 * and flush them to lighttpd. Returns 0, or -1 if the client is gone.
 */
int reply_start_stream(struct req *r, const char *content_type, const char *extra, const char *body,
                       size_t len);

/*
 * Render, without writing anything, the two ways a request handed to the
 * hub can begin: ok, what reply_start_stream would write; unavail, the
 * whole 503 answer (Retry-After) for when the hub cannot serve it (the
 * database failed its catch-up read, or the server drains first). The hub
 * writes one of them once it knows which (hub.h, struct hub_park); until
 * then no status is promised. Neither is counted in the metrics here.
 */
void reply_render_stream(struct req *r, const char *content_type, const char *extra,
                         const char *body, size_t len, struct buf *ok, struct buf *unavail);

/*
 * Hand the connection to the hub: frees libfcgi's buffers but keeps the
 * socket open. Only for FastCGI requests (r->fcgx set). *fd and *request_id receive what the hub
 * needs; the worker must not touch the request's streams afterwards.
 */
void req_detach(struct req *r, int *fd, uint16_t *request_id);

/*
 * Optional non-negative integer query parameter name, at most max.
 * *present says whether it was given. 0 or LARK_EINVAL (with r->err).
 */
int req_query_u64(struct req *r, const char *name, uint64_t max, uint64_t *out, int *present);

/* Reason phrase for status. */
const char *http_reason(int status);

#endif
