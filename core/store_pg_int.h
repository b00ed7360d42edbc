/*
 * store_pg_int.h - what the PostgreSQL back end's two files share: the
 * statement catalogue (store_pg_sql.c) that store_pg.c executes.
 */
#ifndef LARK_STORE_PG_INT_H
#define LARK_STORE_PG_INT_H

#include "core/db.h"

/* PostgreSQL's SQL for each statement. */
extern const char *const pg_sql[DB_NSTMT];

#endif
