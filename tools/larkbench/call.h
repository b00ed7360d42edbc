/*
 * call.h - blocking requests on fresh connections, for between the phases
 * of a run (never while the event loop has work): a probe as a new client
 * would make it, and a whole request/answer (creating a group, reading
 * GET /metrics).
 */
#ifndef LARK_BENCH_CALL_H
#define LARK_BENCH_CALL_H

#include "core/buf.h"

/* The most bytes of an answer call_http keeps (a conversation with 5,000
 * members, /metrics). */
#define CALL_MAX (1024 * 1024)

/*
 * GET path on a fresh connection to --port with timeout_s for each step;
 * returns the HTTP status (and the time to it in *ms), or -1 if none came.
 */
int call_probe(const char *path, double timeout_s, double *ms);

/*
 * One request as HTTP/1.0 (the server closes when the answer is complete:
 * no framing to parse): method path with an optional bearer token and
 * JSON body. Returns the status, the body in *out (bounded by its max), or
 * -1 if no whole answer came within timeout_s.
 */
int call_http(const char *method, const char *path, const char *token, const char *body,
              double timeout_s, struct buf *out);

#endif
