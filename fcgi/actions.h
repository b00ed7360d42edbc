/*
 * actions.h - what a user can do, shared by the HTTP handlers and the
 * WebSocket bridge (API.md: a WebSocket "send" takes "the same fields as
 * POST /v1/messages"; ack, read and typing likewise). Each action
 * validates its input, enforces limits, calls the store and returns the
 * result; the caller only turns it into an HTTP answer or a WebSocket line.
 *
 * Errors: a LARK_E* code with a->err filled; for LARK_ERATE, *a->retry_after
 * is set. Any thread with its own store connection may call these.
 */
#ifndef LARK_ACTIONS_H
#define LARK_ACTIONS_H

#include <jansson.h>
#include <stdint.h>

struct app;
struct store_conn;
struct lark_err;

struct action_ctx {
    struct app *app;
    struct store_conn *db; /* the calling thread's */
    const char *user;      /* the authenticated user */
    struct lark_err *err;
    int *retry_after; /* seconds, set with LARK_ERATE */
};

/* Send a message described by fields (POST /v1/messages' body). *message
 * is a new reference; *duplicate = 1 for a retry of a stored message. */
int action_send(const struct action_ctx *a, json_t *fields, json_t **message, int *duplicate);

/* The user has read conversation_id up to seq; *read_seq the result. */
int action_read(const struct action_ctx *a, const char *conversation_id, uint64_t seq,
                uint64_t *read_seq);

/* Tell the other members' live connections the user is typing. */
int action_typing(const struct action_ctx *a, const char *conversation_id);

#endif
