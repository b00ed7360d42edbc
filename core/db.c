/*
 * db.c - the engine-neutral calls of db.h, dispatched to a back end.
 */
#include "core/db.h"

#include "core/err.h"

#include <stdlib.h>

int db_query(struct db *d, enum db_stmt id, const struct db_arg *args, int n, struct db_rows **rows,
             struct lark_err *err)
{
    *rows = NULL;
    return d->ops->query(d, id, args, n, rows, err);
}

int db_has(struct db *d, enum db_stmt id)
{
    return d->ops->has(d, id);
}

int db_next(struct db_rows *r, struct lark_err *err)
{
    return r ? r->db->ops->next(r, err) : 0;
}

const char *db_text(struct db_rows *r, int col)
{
    return r->db->ops->text(r, col);
}

size_t db_len(struct db_rows *r, int col)
{
    return r->db->ops->len(r, col);
}

int64_t db_int(struct db_rows *r, int col)
{
    return strtoll(db_text(r, col), NULL, 10);
}

int db_is_null(struct db_rows *r, int col)
{
    return r->db->ops->is_null(r, col);
}

void db_done(struct db_rows *r)
{
    if (r)
        r->db->ops->done(r);
}

int db_exec(struct db *d, enum db_stmt id, const struct db_arg *args, int n, struct lark_err *err)
{
    struct db_rows *rows = NULL;
    int rc = db_query(d, id, args, n, &rows, err);
    while (rc == 0 && (rc = db_next(rows, err)) == 1)
        rc = 0;
    db_done(rows);
    return rc < 0 ? rc : 0;
}

int db_int1(struct db *d, enum db_stmt id, const struct db_arg *args, int n, int64_t *out,
            int *found, struct lark_err *err)
{
    struct db_rows *rows = NULL;
    int rc = db_query(d, id, args, n, &rows, err);

    *found = 0;
    if (rc == 0 && (rc = db_next(rows, err)) == 1) {
        *out = db_int(rows, 0);
        *found = 1;
        rc = 0;
    }
    db_done(rows);
    return rc < 0 ? rc : 0;
}

void db_note(struct db *d, const struct store_note *note)
{
    d->ops->note(d, note);
}
