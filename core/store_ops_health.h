/*
 * store_ops_health.h - the write GET /v1/healthz makes (private to
 * core/store*.c; store.h's store_check_write is the contract).
 */
#ifndef LARK_STORE_OPS_HEALTH_H
#define LARK_STORE_OPS_HEALTH_H

struct db;
struct lark_err;

/* A write operation (store_impl.h store_write_fn); arg is unused. */
int op_health(struct db *d, void *arg, struct lark_err *err);

#endif
