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

struct app;

/*
 * Serve the request. app is main's, with the store open and in-memory
 * limiters made; they are replaced by shared ones here (and freed). The
 * exit status: 0 once an answer was written (whatever its HTTP status), 1
 * if the store could not be reached at all (a 503 was written).
 */
int cgi_main(struct app *app);

#endif
