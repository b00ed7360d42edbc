/*
 * httpresp.h - larkbench's HTTP/1.1 response parser (RFC 9112).
 *
 * Why a parser of its own: the load generator must read 9,000 held streams
 * in one thread and time each event to the microsecond, so it reads raw
 * non-blocking sockets and needs an incremental parser that never copies
 * a body and never blocks (DESIGN.md asks the service for library parsers;
 * this is a test tool reading two known servers, lighttpd and nginx).
 *
 * What it reads: the status line, the header fields, and one of the body
 * framings: Content-Length, chunked (extensions ignored, trailers skipped),
 * or "until the server closes" (nginx's SSE answers have neither length
 * nor chunks). A 101 answer ends the HTTP part when the caller asked for an
 * upgrade (the WebSocket frames that follow are ws.h's); any other 1xx is
 * an interim answer and skipped.
 *
 * Shape: pure, no I/O, no allocation. The caller keeps the unparsed bytes
 * and calls http_resp_step on them; each step consumes a prefix and says
 * what it found. A step that needs more input consumes nothing, so input
 * may be cut at any byte (tests/unit/test_bench_http.c feeds every split).
 *
 * Not thread-safe; one struct per connection.
 */
#ifndef LARK_BENCH_HTTPRESP_H
#define LARK_BENCH_HTTPRESP_H

#include <stddef.h>
#include <stdint.h>

/* A response head longer than this is refused: lighttpd's and nginx's are
 * well under 1 KiB. */
#define HTTP_RESP_HEAD_MAX (16 * 1024)
/* A chunk-size line (size and extensions) longer than this is refused. */
#define HTTP_RESP_CHUNK_LINE_MAX 1024

/* Where the parser is. */
enum http_resp_phase {
    HTTP_RESP_IDLE,       /* no answer expected: bytes now are a protocol error */
    HTTP_RESP_HEAD,       /* status line and header fields */
    HTTP_RESP_LEN,        /* Content-Length body, remain bytes to go */
    HTTP_RESP_CHUNK_SIZE, /* chunked: the size line */
    HTTP_RESP_CHUNK_DATA, /* chunked: remain bytes of chunk data */
    HTTP_RESP_CHUNK_END,  /* chunked: the CRLF after the data */
    HTTP_RESP_TRAILER,    /* chunked: trailer fields up to an empty line */
    HTTP_RESP_EOF,        /* body until the server closes */
    HTTP_RESP_UPGRADED    /* after a 101: the bytes are another protocol's */
};

enum http_resp_flags {
    HTTP_RESP_UPGRADE = 1 << 0 /* the request asked for an upgrade: a 101 ends the HTTP part */
};

/* What one step found (bits of http_resp_out.events). */
enum http_resp_events {
    HTTP_RESP_EV_HEAD = 1 << 0, /* the head is complete: status, close are set */
    HTTP_RESP_EV_DONE = 1 << 1  /* the answer is complete (phase is IDLE again) */
};

/* Called for each header field of the final head, name and value borrowed
 * for the call only; the value has no leading or trailing blanks. */
typedef void http_header_fn(void *arg, const char *name, size_t nlen, const char *value,
                            size_t vlen);

struct http_resp {
    enum http_resp_phase phase;
    unsigned flags;            /* enum http_resp_flags of the request */
    int status;                /* status of the answer, 0 before its head */
    int close;                 /* the server closes the connection after this answer */
    uint64_t remain;           /* bytes left of a Content-Length body or of a chunk */
    http_header_fn *on_header; /* may be NULL */
    void *arg;                 /* for on_header */
};

struct http_resp_out {
    const char *body; /* body bytes found by this step (borrowed from the input), or NULL */
    size_t body_len;
    unsigned events; /* enum http_resp_events */
};

/* A new parser, idle; on_header may be NULL. */
void http_resp_init(struct http_resp *r, http_header_fn *on_header, void *arg);

/* A request was sent: expect its answer. flags: enum http_resp_flags. */
void http_resp_expect(struct http_resp *r, unsigned flags);

/*
 * One step over p[0..n): returns the bytes consumed (0: need more input,
 * nothing consumed), LARK_EINVAL for a malformed answer (or bytes while
 * idle or upgraded), LARK_ETOOLARGE for a head, chunk-size or trailer line
 * over its limit. out is filled on every call; out->body points into p.
 * After an error the parser is unusable until the next http_resp_expect.
 */
long http_resp_step(struct http_resp *r, const char *p, size_t n, struct http_resp_out *out);

/* The server closed the connection: 1 if that ends the answer (a body
 * read until close; the phase is then IDLE), 0 if the answer is cut short
 * or none was expected. */
int http_resp_eof(struct http_resp *r);

#endif
