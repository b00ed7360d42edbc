/*
 * store_sqlite_int.h - what the SQLite back end's two files share: the
 * statement catalogue (store_sqlite_sql.c) that store_sqlite.c executes.
 */
#ifndef LARK_STORE_SQLITE_INT_H
#define LARK_STORE_SQLITE_INT_H

#include "core/db.h"

/* SQLite's SQL for each statement; NULL: nothing to do in SQLite. */
extern const char *const sq_sql[DB_NSTMT];

#endif
