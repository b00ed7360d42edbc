/*
 * migrate.c - list and read migration files.
 */
#include "core/migrate.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A migration file is schema, not data: 1 MiB is far beyond any. */
#define MIGRATE_FILE_MAX (1024 * 1024)
/* More migrations than this in one directory means a wrong directory. */
#define MIGRATE_COUNT_MAX 10000

static int migration_cmp(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static int read_file(const char *path, char **out, struct lark_err *err)
{
    struct buf b;
    int rc;

    buf_init(&b, MIGRATE_FILE_MAX);
    rc = buf_read_file(&b, path, err);
    *out = rc ? NULL : b.data ? buf_detach(&b, NULL) : xstrdup("");
    buf_release(&b);
    return rc;
}

/* Version from "NNNN_name.sql", or 0 if the name is not a migration. */
static int migration_version(const char *name)
{
    size_t len = strlen(name);
    int v = 0;
    const char *p = name;

    if (len < 6 || strcmp(name + len - 4, ".sql") != 0)
        return 0;
    while (isdigit((unsigned char)*p) && v < 100000000)
        v = v * 10 + (*p++ - '0');
    if (p == name || *p != '_')
        return 0;
    return v;
}

int migrate_list(const char *root, const char *backend, struct migration **out, int *n,
                 struct lark_err *err)
{
    char *dir = xasprintf("%s/%s", root, backend);
    struct migration *v = NULL;
    int count = 0;
    int rc = 0;
    struct dirent *de;
    DIR *d = opendir(dir);

    *out = NULL;
    *n = 0;
    if (!d) {
        rc = lark_err_set(err, LARK_EINVAL, "cannot open migrations directory %s", dir);
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        int version = migration_version(de->d_name);
        char *path;
        if (version <= 0)
            continue;
        if (count == MIGRATE_COUNT_MAX) {
            rc = lark_err_set(err, LARK_EINVAL, "too many migrations in %s", dir);
            goto out;
        }
        v = xrealloc(v, sizeof(*v) * (size_t)(count + 1));
        v[count].version = version;
        v[count].name = xstrdup(de->d_name);
        path = xasprintf("%s/%s", dir, de->d_name);
        rc = read_file(path, &v[count].sql, err);
        free(path);
        count++;
        if (rc)
            goto out;
    }
    if (count > 1)
        qsort(v, (size_t)count, sizeof(*v), migration_cmp);
    for (int i = 1; i < count; i++) {
        if (v[i].version == v[i - 1].version) {
            rc = lark_err_set(err, LARK_EINVAL, "migrations %s and %s share version %d",
                              v[i - 1].name, v[i].name, v[i].version);
            goto out;
        }
    }
out:
    if (d)
        closedir(d);
    free(dir);
    if (rc) {
        migrate_free(v, count);
        return rc;
    }
    *out = v;
    *n = count;
    return 0;
}

void migrate_free(struct migration *m, int n)
{
    for (int i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].sql);
    }
    free(m);
}
