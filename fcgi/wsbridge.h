/*
 * wsbridge.h - WebSocket sessions for the hub, bridged from lighttpd's
 * mod_wstunnel (API.md "WebSocket"; how and why: wsbridge.c).
 *
 * main.c opens the bridge after hub_new and before hub_start, and closes
 * it after hub_stop and before hub_free: the hub itself knows no transport.
 */
#ifndef LARK_WSBRIDGE_H
#define LARK_WSBRIDGE_H

struct hub;
struct lark_err;

/*
 * Listen on the unix socket path for mod_wstunnel and start threads
 * command threads (each opens its own store connection). 0, LARK_EINVAL
 * (path too long) or LARK_EINTERNAL.
 */
int ws_bridge_open(struct hub *h, const char *path, int threads, struct lark_err *err);

/* Stop the command threads, close the socket and remove its file (unless
 * a newer larkd replaced it). Accepts a hub without a bridge. */
void ws_bridge_close(struct hub *h);

#endif
