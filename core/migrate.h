/*
 * migrate.h - reading numbered SQL migrations from a directory.
 *
 * A migration is a file "NNNN_name.sql" in <root>/<backend>/ (for example
 * migrations/sqlite/0001_init.sql). Versions are the leading number; they
 * must be unique and are applied in increasing order, each in its own
 * transaction, and recorded in the schema_version table by the back end
 * (which owns the SQL). This module only lists and reads files, so that
 * every back end applies the same list the same way.
 */
#ifndef LARK_MIGRATE_H
#define LARK_MIGRATE_H

struct lark_err;

struct migration {
    int version; /* the file's leading number, > 0 */
    char *name;  /* file name, e.g. "0001_init.sql" */
    char *sql;   /* the whole file */
};

/*
 * List <root>/<backend>/NNNN_*.sql sorted by version. *out is an array of
 * *n entries the caller frees with migrate_free. Errors: LARK_EINVAL (no
 * directory, unreadable file, duplicate or malformed version, a file over
 * MIGRATE_FILE_MAX).
 */
int migrate_list(const char *root, const char *backend, struct migration **out, int *n,
                 struct lark_err *err);

void migrate_free(struct migration *m, int n);

#endif
