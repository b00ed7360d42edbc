/*
 * store_ops_ticket.c - what tickets need from the database, once for every
 * back end (store_ops.h): the key they are signed with, and the nonces of
 * those used (core/ticket.h says why tickets are shaped so).
 */
#include "core/store_ops.h"

#include "core/db.h"
#include "core/err.h"
#include "core/ids.h"

#include <stdio.h>
#include <string.h>

/* The secrets row tickets are signed with. */
#define TICKET_SECRET_NAME "ticket"

int op_ticket_key(struct db *d, void *arg, struct lark_err *err)
{
    struct op_ticket_key *ctx = arg;
    unsigned char fresh[STORE_TICKET_KEY_LEN];
    char hex[2 * STORE_TICKET_KEY_LEN + 1];
    struct db_rows *r = NULL;
    int rc;

    /* Whoever inserts first wins; everyone then reads the winner's. */
    ids_random(fresh, sizeof(fresh));
    for (size_t i = 0; i < sizeof(fresh); i++)
        snprintf(hex + 2 * i, 3, "%02x", fresh[i]);
    if ((rc = db_exec(d, DB_SECRET_INSERT,
                      DB_ARGS(DBT(TICKET_SECRET_NAME), DBT(hex), DBI(ctx->now)), err)) ||
        (rc = db_query(d, DB_SECRET_GET, DB_ARGS(DBT(TICKET_SECRET_NAME)), &r, err)))
        return rc;
    rc = db_next(r, err);
    if (rc == 1 && db_len(r, 0) == 2 * STORE_TICKET_KEY_LEN) {
        memcpy(ctx->hex, db_text(r, 0), 2 * STORE_TICKET_KEY_LEN + 1);
        rc = 0;
    } else if (rc >= 0) {
        rc = lark_err_set(err, LARK_EINTERNAL, "the ticket key in table secrets is malformed");
    }
    db_done(r);
    return rc;
}

int op_ticket_use(struct db *d, void *arg, struct lark_err *err)
{
    struct op_ticket_use *ctx = arg;
    int64_t one = 0;
    int found = 0;
    int rc;

    /* Uses that expired can go: their tickets are refused by their expiry
     * alone (an index range; usually nothing). */
    *ctx->first = 0;
    if ((rc = db_exec(d, DB_TICKET_PURGE, DB_ARGS(DBI(ctx->now)), err)) ||
        (rc = db_int1(d, DB_TICKET_USE, DB_ARGS(DBT(ctx->nonce), DBI(ctx->expires_at)), &one,
                      &found, err)))
        return rc;
    *ctx->first = found;
    return 0;
}
