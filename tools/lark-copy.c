/*
 * lark-copy - copy a whole lark database from SQLite into an empty
 * PostgreSQL one (moving from one server to several, docs/DEPLOY.md).
 *
 *   lark-copy [--config FILE] [--from sqlite:PATH] --to postgresql://...
 *
 * Everything is carried as it is: message ids, conversation and inbox seqs,
 * read and delivered positions (receipts), memberships, acknowledged
 * positions, devices, push jobs, dead letters and counters, so clients
 * resume on PostgreSQL exactly where they were, and the sequences behind
 * id columns continue after the highest id ever given (SQLite's
 * AUTOINCREMENT record included: a job id is never reused).
 *
 * How: both databases are first brought to the latest migration by the
 * store itself (store_open), so they hold the same tables and the same
 * data columns (a dialect's own layout columns aside: match_columns); the
 * tool then refuses unless every table of the target is empty. The copy
 * reads one SQLite snapshot (a read transaction) and writes one PostgreSQL
 * transaction with prepared multi-row INSERTs, in the order the tables
 * were created (a conversation before its members); the row count of every
 * table is compared before COMMIT. Any error rolls the target back to
 * empty. Tables are discovered from the SQLite schema, not listed here, so
 * a table a later migration adds is copied too.
 *
 * larkd must be stopped: the tool takes larkd's lock on the SQLite file
 * (core/lockfile.h) for the whole copy, and refuses if larkd holds it.
 */
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/lockfile.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "core/version.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Rows per INSERT, and PostgreSQL's limit on the parameters of one statement. */
#define COPY_BATCH_ROWS 500
#define COPY_PARAMS_MAX 30000
/* Columns a lark table has, with room to spare. */
#define COPY_COLS_MAX 64

struct table {
    char *name;
    char *cols[COPY_COLS_MAX];
    int ncols;
    long long rows; /* copied */
};

struct copy {
    sqlite3 *src;
    PGconn *dst;
    struct table *tables;
    int ntables;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: lark-copy [--config FILE] [--from sqlite:PATH] --to postgresql://...\n"
                 "\n"
                 "Copy a whole lark database from SQLite into an empty PostgreSQL database:\n"
                 "ids, seqs, receipts, memberships, devices and acknowledged positions stay\n"
                 "as they are. Stop larkd first. --from defaults to the configured db.\n"
                 "\n"
                 "  --config FILE  larkd's configuration (also LARK_CONFIG)\n"
                 "  --from DB      the SQLite database (sqlite:PATH)\n"
                 "  --to DB        the PostgreSQL database (a libpq URI), empty\n"
                 "  --version      print the release and commit, and exit\n"
                 "  --help         this text\n");
}

/* Bring db to the latest migration through the store, as larkd would. */
static int migrate(const struct config *base, const char *db, struct lark_err *err)
{
    struct config cfg;
    struct store *s = NULL;
    int rc;

    config_copy(&cfg, base);
    free(cfg.db);
    cfg.db = xstrdup(db);
    rc = store_open(&cfg, &s, err);
    store_close(s);
    config_release(&cfg);
    return rc;
}

/* One SQLite query's first column as an integer (0 when there is no row). */
static long long sq_int(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    long long v = 0;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (arg)
            sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* A PostgreSQL command that returns nothing we need; 0 or -1 (logged). */
static int pg_do(PGconn *pg, const char *sql)
{
    PGresult *res = PQexec(pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

    if (!ok)
        log_error("postgresql: %s: %s", sql, PQerrorMessage(pg));
    PQclear(res);
    return ok ? 0 : -1;
}

/* A one-value PostgreSQL query with text parameters: its value (caller
 * frees; NULL for SQL NULL or no row), -1 on error. */
static int pg_value(PGconn *pg, const char *sql, int n, const char *const *params, char **out)
{
    PGresult *res = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    int rc = 0;

    *out = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("postgresql: %s: %s", sql, PQerrorMessage(pg));
        rc = -1;
    } else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        *out = xstrdup(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rc;
}

/* The tables of the source in creation order, with their columns. */
static int list_tables(struct copy *c)
{
    sqlite3_stmt *st = NULL, *cols = NULL;
    int rc = 0;

    if (sqlite3_prepare_v2(c->src,
                           "SELECT name FROM sqlite_master WHERE type = 'table'"
                           " AND name NOT LIKE 'sqlite_%' AND name <> 'schema_version'"
                           " ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        struct table *t;
        c->tables = xrealloc(c->tables, (size_t)(c->ntables + 1) * sizeof(*c->tables));
        t = &c->tables[c->ntables++];
        memset(t, 0, sizeof(*t));
        t->name = xstrdup((const char *)sqlite3_column_text(st, 0));
        if (sqlite3_prepare_v2(c->src, "SELECT name FROM pragma_table_info(?1) ORDER BY cid", -1,
                               &cols, NULL) != SQLITE_OK) {
            rc = -1;
            break;
        }
        sqlite3_bind_text(cols, 1, t->name, -1, SQLITE_STATIC);
        while (sqlite3_step(cols) == SQLITE_ROW && t->ncols < COPY_COLS_MAX)
            t->cols[t->ncols++] = xstrdup((const char *)sqlite3_column_text(cols, 0));
        sqlite3_finalize(cols);
        cols = NULL;
        if (t->ncols == 0 || t->ncols == COPY_COLS_MAX)
            rc = -1;
    }
    sqlite3_finalize(st);
    if (rc)
        log_error("sqlite: cannot read the tables' columns");
    return rc;
}

/*
 * Match each table's columns with the target's. Both schemas are at this
 * build's latest migration (store_open saw to it), so a difference is one
 * dialect's own layout - SQLite's append-order rowid (migrations/sqlite/
 * 0004), say - not data one side lacks: what both have is copied, a column
 * only SQLite has is left behind (and said so), and a column only
 * PostgreSQL has takes its default. A table PostgreSQL does not have at all
 * is an error.
 */
static int match_columns(struct copy *c, struct table *t)
{
    int kept = 0;

    for (int j = 0; j < t->ncols; j++) {
        const char *p[2] = {t->name, t->cols[j]};
        char *v = NULL;
        if (pg_value(c->dst,
                     "SELECT column_name FROM information_schema.columns WHERE"
                     " table_schema = current_schema() AND table_name = $1"
                     " AND column_name = $2",
                     2, p, &v) != 0)
            return -1;
        if (v) {
            t->cols[kept++] = t->cols[j];
            free(v);
        } else {
            log_info("table %s: column %s is SQLite's own layout, not copied", t->name, t->cols[j]);
            free(t->cols[j]);
        }
    }
    t->ncols = kept;
    if (kept == 0) {
        log_error("target: PostgreSQL has no table %s (or none of its columns)", t->name);
        return -1;
    }
    return 0;
}

static int check_target(struct copy *c)
{
    for (int i = 0; i < c->ntables; i++)
        if (match_columns(c, &c->tables[i]) != 0)
            return -1;
    return 0;
}

static int check_empty(struct copy *c)
{
    for (int i = 0; i < c->ntables; i++) {
        char *ident = PQescapeIdentifier(c->dst, c->tables[i].name, strlen(c->tables[i].name));
        char *sql = xasprintf("SELECT count(*) FROM %s", ident ? ident : "\"?\"");
        char *v = NULL;
        int rc = pg_value(c->dst, sql, 0, NULL, &v);
        PQfreemem(ident);
        free(sql);
        if (rc == 0 && v && strcmp(v, "0") != 0) {
            log_error("target: table %s already has %s rows: lark-copy only fills an empty "
                      "database",
                      c->tables[i].name, v);
            rc = -1;
        }
        free(v);
        if (rc)
            return rc;
    }
    return 0;
}

/* "INSERT INTO t (cols) VALUES ($1, ...), ..." for rows rows, prepared as name. */
static int prepare_insert(PGconn *pg, const struct table *t, int rows, const char *name)
{
    char *ident = PQescapeIdentifier(pg, t->name, strlen(t->name));
    struct buf sql;
    PGresult *res;
    int ok, p = 1;

    /* at most COPY_PARAMS_MAX "$NNNNN, " and the names: far below this */
    buf_init(&sql, 1024 * 1024);
    buf_printf(&sql, "INSERT INTO %s (", ident);
    PQfreemem(ident);
    for (int j = 0; j < t->ncols; j++) {
        char *col = PQescapeIdentifier(pg, t->cols[j], strlen(t->cols[j]));
        buf_printf(&sql, "%s%s", j ? ", " : "", col);
        PQfreemem(col);
    }
    buf_puts(&sql, ") VALUES ");
    for (int r = 0; r < rows; r++) {
        buf_puts(&sql, r ? ", (" : "(");
        for (int j = 0; j < t->ncols; j++)
            buf_printf(&sql, "%s$%d", j ? ", " : "", p++);
        buf_putc(&sql, ')');
    }
    res = PQprepare(pg, name, sql.data, rows * t->ncols, NULL);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        log_error("postgresql: prepare the insert into %s: %s", t->name, PQerrorMessage(pg));
    PQclear(res);
    buf_release(&sql);
    return ok ? 0 : -1;
}

/* Insert the rows buffered in vals (rows * ncols values, NULL = SQL NULL). */
static int flush_rows(PGconn *pg, const struct table *t, int ti, int rows, int batch, char **vals)
{
    char name[64];
    PGresult *res;
    int ok;

    snprintf(name, sizeof(name), "copy_%d_%d", ti, rows);
    /* the full batch is prepared once per table, the last short one once */
    if ((rows != batch || t->rows == 0) && prepare_insert(pg, t, rows, name) != 0)
        return -1;
    res = PQexecPrepared(pg, name, rows * t->ncols, (const char *const *)vals, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        log_error("postgresql: insert into %s: %s", t->name, PQerrorMessage(pg));
    PQclear(res);
    return ok ? 0 : -1;
}

/* "SELECT the matched columns FROM t" (sqlite3_free). */
static char *select_sql(const struct table *t)
{
    char *sql = sqlite3_mprintf("SELECT");
    for (int j = 0; j < t->ncols; j++) {
        char *more = sqlite3_mprintf("%s%s \"%w\"", sql, j ? "," : "", t->cols[j]);
        sqlite3_free(sql);
        sql = more;
    }
    {
        char *more = sqlite3_mprintf("%s FROM \"%w\"", sql, t->name);
        sqlite3_free(sql);
        sql = more;
    }
    return sql;
}

/* Copy every row of table ti in batches. */
static int copy_table(struct copy *c, int ti)
{
    struct table *t = &c->tables[ti];
    int batch =
        COPY_PARAMS_MAX / t->ncols < COPY_BATCH_ROWS ? COPY_PARAMS_MAX / t->ncols : COPY_BATCH_ROWS;
    char **vals = xcalloc((size_t)batch * (size_t)t->ncols, sizeof(*vals));
    char *sql = select_sql(t);
    sqlite3_stmt *st = NULL;
    int rows = 0, rc = 0, step;

    if (sqlite3_prepare_v2(c->src, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite: %s: %s", sql, sqlite3_errmsg(c->src));
        rc = -1;
    }
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        for (int j = 0; j < t->ncols; j++) {
            const char *v = (const char *)sqlite3_column_text(st, j);
            if (v && strlen(v) != (size_t)sqlite3_column_bytes(st, j)) {
                log_error("table %s: a value holds a NUL byte, which PostgreSQL text cannot",
                          t->name);
                rc = -1;
            }
            vals[rows * t->ncols + j] = v ? xstrdup(v) : NULL;
        }
        if (++rows == batch && rc == 0) {
            rc = flush_rows(c->dst, t, ti, rows, batch, vals);
            t->rows += rows;
            for (int k = 0; k < rows * t->ncols; k++) {
                free(vals[k]);
                vals[k] = NULL;
            }
            rows = 0;
        }
    }
    if (rc == 0 && st && step != SQLITE_DONE) {
        log_error("sqlite: reading %s: %s", t->name, sqlite3_errmsg(c->src));
        rc = -1;
    }
    if (rc == 0 && rows > 0) {
        rc = flush_rows(c->dst, t, ti, rows, batch, vals);
        t->rows += rows;
    }
    for (int k = 0; k < rows * t->ncols; k++)
        free(vals[k]);
    free(vals);
    sqlite3_finalize(st);
    sqlite3_free(sql);
    return rc;
}

/*
 * Sequences behind id columns (BIGSERIAL) continue after the highest id
 * the source ever gave: its largest id, or SQLite's AUTOINCREMENT record
 * of ids given and since deleted, whichever is larger.
 */
static int fix_sequences(struct copy *c)
{
    for (int i = 0; i < c->ntables; i++) {
        struct table *t = &c->tables[i];
        for (int j = 0; j < t->ncols; j++) {
            const char *p[2] = {t->name, t->cols[j]};
            char *seq = NULL, *set = NULL, *sqlmax, last[24];
            long long hi, given;
            if (pg_value(c->dst, "SELECT pg_get_serial_sequence(quote_ident($1), $2)", 2, p,
                         &seq) != 0)
                return -1;
            if (!seq)
                continue;
            sqlmax =
                sqlite3_mprintf("SELECT COALESCE(MAX(\"%w\"), 0) FROM \"%w\"", t->cols[j], t->name);
            hi = sq_int(c->src, sqlmax, NULL);
            sqlite3_free(sqlmax);
            given = sq_int(c->src, "SELECT seq FROM sqlite_sequence WHERE name = ?1", t->name);
            if (given > hi)
                hi = given;
            snprintf(last, sizeof(last), "%lld", hi > 0 ? hi : 1);
            {
                const char *sp[3] = {seq, last, hi > 0 ? "true" : "false"};
                int rc = pg_value(c->dst, "SELECT setval($1, $2, $3::boolean)", 3, sp, &set);
                free(seq);
                free(set);
                if (rc)
                    return -1;
            }
        }
    }
    return 0;
}

/* Every table holds as many rows in the target as in the source. */
static int verify_counts(struct copy *c)
{
    for (int i = 0; i < c->ntables; i++) {
        struct table *t = &c->tables[i];
        char *sql = sqlite3_mprintf("SELECT count(*) FROM \"%w\"", t->name);
        char *ident = PQescapeIdentifier(c->dst, t->name, strlen(t->name));
        char *pgsql = xasprintf("SELECT count(*) FROM %s", ident);
        char *v = NULL;
        long long src = sq_int(c->src, sql, NULL);
        int rc = pg_value(c->dst, pgsql, 0, NULL, &v);
        sqlite3_free(sql);
        PQfreemem(ident);
        free(pgsql);
        if (rc == 0 && (!v || strtoll(v, NULL, 10) != src || src != t->rows)) {
            log_error("table %s: %lld rows in SQLite, %lld copied, %s in PostgreSQL", t->name, src,
                      t->rows, v ? v : "?");
            rc = -1;
        }
        free(v);
        if (rc)
            return -1;
    }
    return 0;
}

/* Open both sides: a read snapshot of SQLite, a transaction on PostgreSQL. */
static int open_both(struct copy *c, const char *path, const char *to)
{
    if (sqlite3_open_v2(path, &c->src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_exec(c->src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(c->src, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        log_error("sqlite: cannot read %s: %s", path, c->src ? sqlite3_errmsg(c->src) : "");
        return -1;
    }
    c->dst = PQconnectdb(to);
    if (PQstatus(c->dst) != CONNECTION_OK) {
        log_error("postgresql: cannot connect: %s", PQerrorMessage(c->dst));
        return -1;
    }
    if (PQsetClientEncoding(c->dst, "UTF8") != 0 || pg_do(c->dst, "BEGIN") != 0)
        return -1;
    return 0;
}

static int run_copy(struct copy *c, const char *path, const char *to)
{
    int64_t t0 = time_mono_ms();

    if (open_both(c, path, to) != 0 || list_tables(c) != 0 || check_target(c) != 0 ||
        check_empty(c) != 0)
        return -1;
    for (int i = 0; i < c->ntables; i++) {
        if (copy_table(c, i) != 0)
            return -1;
        log_info("copied table=%s rows=%lld", c->tables[i].name, c->tables[i].rows);
    }
    if (fix_sequences(c) != 0 || verify_counts(c) != 0 || pg_do(c->dst, "COMMIT") != 0)
        return -1;
    log_info("done: %d tables copied and checked in %.1f s", c->ntables,
             (double)(time_mono_ms() - t0) / 1000.0);
    pg_do(c->dst, "ANALYZE"); /* fresh statistics for the planner; not part of the copy */
    return 0;
}

static void copy_release(struct copy *c)
{
    for (int i = 0; i < c->ntables; i++) {
        free(c->tables[i].name);
        for (int j = 0; j < c->tables[i].ncols; j++)
            free(c->tables[i].cols[j]);
    }
    free(c->tables);
    sqlite3_close(c->src);
    if (c->dst)
        PQfinish(c->dst); /* an open transaction rolls back */
}

static int parse(int argc, char **argv, const char **config, const char **from, const char **to)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},     {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': *config = optarg; break;
        case 'f': *from = optarg; break;
        case 't': *to = optarg; break;
        case 'V': version_print(stdout, "lark-copy"); exit(0);
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !*to) {
        usage(stderr);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *from = NULL, *to = "";
    struct config cfg;
    struct lark_err err = {0};
    struct copy c = {0};
    char *lock = NULL;
    int lock_fd = -1, status = 1;

    if (parse(argc, argv, &config_path, &from, &to) != 0)
        return 2;
    umask(umask(0) | S_IWGRP | S_IRWXO);
    log_init("lark-copy", LOG_INFO);
    if (config_load(&cfg, config_path, &err) != 0) {
        log_error("configuration: %s", err.msg);
        return 2;
    }
    log_set_format((enum log_format)log_format_parse(cfg.log_format));
    if (!from)
        from = cfg.db;
    if (strncmp(from, "sqlite:", 7) != 0 ||
        (strncmp(to, "postgresql:", 11) != 0 && strncmp(to, "postgres:", 9) != 0)) {
        log_error("copies from sqlite:PATH to postgresql://...; got %s to %s", from, to);
        status = 2;
        goto out;
    }
    lock = xasprintf("%s.lock", from + 7);
    if (lockfile_take(lock, from + 7, &lock_fd, &err) != 0) {
        log_error("%s: stop larkd before copying its database", err.msg);
        goto out;
    }
    if (migrate(&cfg, from, &err) != 0 || migrate(&cfg, to, &err) != 0) {
        log_error("%s", err.msg);
        goto out;
    }
    log_info("copying %s to %s", from, to);
    status = run_copy(&c, from + 7, to) == 0 ? 0 : 1;
    if (status)
        log_error("nothing was written to the target (its transaction rolled back)");
out:
    copy_release(&c);
    lockfile_release(lock_fd);
    free(lock);
    config_release(&cfg);
    return status;
}
