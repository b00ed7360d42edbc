/*
 * handlers.h - one function per endpoint, all of one shape: parse and
 * validate, authorize, one store call, answer (API.md has the contract).
 */
#ifndef LARK_HANDLERS_H
#define LARK_HANDLERS_H

#include "fcgi/http.h"

/* h_misc.c */
int h_healthz(struct req *r);
int h_metrics(struct req *r);

/* h_messages.c */
int h_send(struct req *r);
int h_history(struct req *r);

/* h_conversations.c */
int h_conv_create(struct req *r);
int h_conv_list(struct req *r);
int h_conv_get(struct req *r);
int h_member_add(struct req *r);
int h_member_remove(struct req *r);
int h_read(struct req *r);
int h_typing(struct req *r);

/* h_presence.c */
int h_heartbeat(struct req *r);
int h_presence_get(struct req *r);
int h_watch(struct req *r);

/* h_devices.c */
int h_device_add(struct req *r);
int h_device_list(struct req *r);
int h_device_remove(struct req *r);

/* h_dev.c (only while dev_tokens = 1) */
int h_dev_token(struct req *r);

/* h_tickets.c */
int h_ticket_create(struct req *r);
/*
 * The auth path of a route that accepts ?ticket= (router.h ROUTE_TICKET):
 * open the ticket text, record its one use, and set r->user. 0, or
 * LARK_ETOKEN (malformed, forged, expired, used before) or LARK_EUNAVAIL,
 * with r->err set. A worker's call: it writes to the store.
 */
int ticket_auth(struct req *r, const char *text);

/* h_media.c */
int h_media_upload(struct req *r);
int h_media_uploads(struct req *r);
int h_media_put(struct req *r);
int h_media_get(struct req *r);

/* h_events.c */
int h_events(struct req *r);
int h_poll(struct req *r);
int h_ack(struct req *r);

#endif
