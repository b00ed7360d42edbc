/*
 * router.h - the one route table, and the pipeline every request runs.
 *
 * For each request: split and decode the URI, match a route (404 unknown
 * path, 405 with Allow for a known path and wrong method; HEAD is allowed
 * wherever GET is, RFC 9110 9.3.2), answer CORS
 * preflights, refuse new work while draining (503), authenticate (401),
 * read and parse the body (413 too large, 415 not JSON, 400 invalid), then
 * call the handler. A handler returns 0 once it has answered (or detached
 * the request to the hub) or a LARK_E* code, which the router answers as
 * an error; err.c's table is the only mapping from codes to statuses.
 */
#ifndef LARK_ROUTER_H
#define LARK_ROUTER_H

#include "fcgi/http.h"

typedef int (*handler_fn)(struct req *r);

enum route_flags {
    ROUTE_AUTH = 1 << 0,          /* needs a valid JWT */
    ROUTE_TOKEN_QUERY = 1 << 1,   /* token may come as ?access_token= or cookie */
    ROUTE_BODY = 1 << 2,          /* a JSON object body is required */
    ROUTE_BODY_OPTIONAL = 1 << 3, /* a JSON object body may be sent */
    ROUTE_TICKET = 1 << 4,        /* a ?ticket= (POST /v1/tickets) may stand for the token */
};

struct route {
    const char *method;
    const char *pattern; /* "/v1/conversations/{}/messages": {} is one segment */
    handler_fn fn;
    unsigned flags;
    /* Routes that hold their connection (SSE, long-poll): the Content-Type
     * of their answer, which HEAD gets at once without holding; NULL for
     * the others, whose handler runs for HEAD with the body left out. */
    const char *held_type;
};

/* Longest Allow header value router_match writes. */
#define ROUTER_ALLOW_MAX 64

/*
 * Find the route for method and path (raw, still percent-encoded). On a
 * match returns it with the decoded parameters in params (caller frees
 * each) and their count in *nparams. Otherwise returns NULL with *code
 * LARK_ENOTFOUND, LARK_EMETHOD (allow then lists the path's methods) or
 * LARK_EINVAL (a parameter with a bad escape). Pure; any thread.
 */
const struct route *router_match(const char *method, const char *path, char *params[REQ_PARAMS_MAX],
                                 int *nparams, char allow[ROUTER_ALLOW_MAX], int *code);

/* Run the whole pipeline for one accepted request. */
void router_handle(struct req *r);

#endif
