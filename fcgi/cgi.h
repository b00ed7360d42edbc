/*
 * cgi.h - larkd as a plain CGI program: the web server sets
 * GATEWAY_INTERFACE, and the process answers the one request described by
 * its environment and stdin on stdout, then exits (docs/OPERATIONS.md
 * "CGI mode": hosts that offer only CGI).
 *
 * The same router and handlers serve the request; what a process that
 * lives for one request must do differently is behind the interfaces the
 * FastCGI daemon uses too:
 *   - a long-poll or SSE stream waits in this process (hold_cgi,
 *     cgi_wait.c), not in a hub;
 *   - the per-user limits (send and typing rates, held connections) are
 *     kept in the store, which every process shares (ratelimit_new_store,
 *     heldcap_new_store): a process's memory forgets at exit;
 *   - the store was opened STORE_OPEN_SHORT (main.c).
 */
#ifndef LARK_CGI_H
#define LARK_CGI_H

#include <stdint.h>

struct app;

/* When main reached each step of its start-up (time_mono_ns), which every
 * CGI request pays for: cgi_main logs them (debug) with the request's own
 * time, so that an operator can see what a request costs. */
struct cgi_startup {
    int64_t main;   /* main() entered: what came before is exec and the dynamic loader */
    int64_t config; /* the configuration read (file and environment) */
    int64_t keys;   /* the token verifier made (key files read) */
    int64_t store;  /* the store open: connected, migrations checked */
};

/*
 * Serve the request. app is main's, with the store open and in-memory
 * limiters made; they are replaced by shared ones here (and freed). The
 * exit status: 0 once an answer was written (whatever its HTTP status), 1
 * if the store could not be reached at all (a 503 was written).
 */
int cgi_main(struct app *app, const struct cgi_startup *t);

#endif
