/*
 * health.h - can the database take a write? For GET /v1/healthz.
 *
 * A load balancer probes every few seconds from several places, and a
 * probe must not cost a commit each (API.md "Operations"; issue 12: "checked
 * cheaply and cached"). So one probe at a time commits the check
 * (store_check_write) and its answer serves every probe for HEALTH_TTL_MS;
 * a probe that comes while the check runs gets the previous answer rather
 * than waiting (a slow database must not pile probes up on the workers).
 * Any thread.
 */
#ifndef LARK_HEALTH_H
#define LARK_HEALTH_H

struct lark_err;
struct store_conn;

/* How long an answer serves, ms: between the 1-2 s the issue asks for. */
#define HEALTH_TTL_MS 1500

/*
 * 0 if the database took a write within HEALTH_TTL_MS (checking now on db,
 * the calling thread's connection, if the last answer is older), or
 * LARK_EUNAVAIL with err saying why not.
 */
int health_check(struct store_conn *db, struct lark_err *err);

#endif
