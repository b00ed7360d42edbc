/*
 * compare.c - the bench-peers table (see compare.h).
 */
#include "tools/larkbench/compare.h"

#include "core/mem.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Measurements one file may give (rounds x transports x rates x 2). */
#define COMPARE_ROWS_MAX 4096
/* Rounds of one transport and rate. */
#define COMPARE_ROUNDS_MAX 256

/* One fanout measurement, or one fsync floor (tools/fsyncbench.c). */
struct meas {
    char transport[8]; /* sse, poll, ws; "fsync" for a floor */
    char round[64];    /* "<run>/<n>" */
    int nchan;         /* the target: 1 Nchan, 0 lark */
    double rate;       /* planned msg/s */
    double p50, p99;   /* delivery latency, ms (-1 none) */
    double achieved;   /* acknowledged msg/s */
    double lag_p99;    /* send lag p99, ms */
    long long lost, dup;
};

/* One side's figures over the rounds of a row. */
struct side {
    double p50, p99, achieved, lag_p99; /* medians */
    long long lost, dup;                /* sums */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double num(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_number(v) ? json_number_value(v) : -1;
}

/* The measurement of one JSON line, if it is a fanout of a round of prefix. */
static int meas_read(const char *line, const char *prefix, struct meas *m)
{
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    const char *sc = json_string_value(json_object_get(o, "scenario"));
    const char *round = json_string_value(json_object_get(o, "round"));
    const char *target = json_string_value(json_object_get(o, "target"));
    const char *tr = json_string_value(json_object_get(o, "transport"));
    int fsync =
        sc && round && strcmp(sc, "fsync") == 0 && strncmp(round, prefix, strlen(prefix)) == 0;
    int ok = sc && round && target && tr && strcmp(sc, "fanout") == 0 &&
             strncmp(round, prefix, strlen(prefix)) == 0;
    if (fsync) {
        snprintf(m->transport, sizeof(m->transport), "fsync");
        snprintf(m->round, sizeof(m->round), "%s", round);
        m->rate = num(o, "rate", NULL);
        m->p50 = num(o, "latency", "p50_ms");
        m->p99 = num(o, "latency", "p99_ms");
        json_decref(o);
        return 1;
    }
    if (ok) {
        snprintf(m->transport, sizeof(m->transport), "%s", tr);
        snprintf(m->round, sizeof(m->round), "%s", round);
        m->nchan = strcmp(target, "nchan") == 0;
        m->rate = num(o, "rate", NULL);
        m->p50 = num(o, "delivery_latency", "p50_ms");
        m->p99 = num(o, "delivery_latency", "p99_ms");
        /* Accepted by the window's end (older lines: by the drain's end). */
        m->achieved = num(o, "window_rate", NULL);
        if (m->achieved < 0)
            m->achieved = num(o, "send_rate", NULL);
        m->lag_p99 = num(o, "send_lag", "p99_ms");
        m->lost = (long long)num(o, "lost", NULL);
        m->dup = (long long)num(o, "duplicated", NULL);
    }
    json_decref(o);
    return ok;
}

static void side_of(const struct meas *const *v, size_t n, struct side *s)
{
    double a[COMPARE_ROUNDS_MAX], b[COMPARE_ROUNDS_MAX], c[COMPARE_ROUNDS_MAX],
        d[COMPARE_ROUNDS_MAX];
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        a[i] = v[i]->p50;
        b[i] = v[i]->p99;
        c[i] = v[i]->achieved;
        d[i] = v[i]->lag_p99;
        s->lost += v[i]->lost;
        s->dup += v[i]->dup;
    }
    s->p50 = median(a, n);
    s->p99 = median(b, n);
    s->achieved = median(c, n);
    s->lag_p99 = median(d, n);
}

static json_t *side_json(const struct side *s, size_t rounds)
{
    return json_pack("{s:i, s:f, s:f, s:f, s:f, s:I, s:I}", "rounds", (int)rounds, "p50_ms", s->p50,
                     "p99_ms", s->p99, "achieved_msg_s", s->achieved, "send_lag_p99_ms", s->lag_p99,
                     "lost", (json_int_t)s->lost, "duplicated", (json_int_t)s->dup);
}

/* The fsync floor measured in round at rate, or NULL. */
static const struct meas *floor_of(const struct meas *m, size_t n, const char *round, double rate)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].transport, "fsync") == 0 && m[i].rate == rate &&
            strcmp(m[i].round, round) == 0)
            return &m[i];
    return NULL;
}

/* One row: transport tr at rate; prints it, appends its JSON line to out. */
static int row(const struct meas *m, size_t n, const char *tr, double rate, const char *prefix,
               FILE *out)
{
    const struct meas *lark[COMPARE_ROUNDS_MAX], *nchan[COMPARE_ROUNDS_MAX];
    double r50[COMPARE_ROUNDS_MAX], r99[COMPARE_ROUNDS_MAX];
    double f99[COMPARE_ROUNDS_MAX], rf99[COMPARE_ROUNDS_MAX];
    size_t nl = 0, nn = 0, pairs = 0, floors = 0;
    struct side sl, sn;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].transport, tr) != 0 || m[i].rate != rate)
            continue;
        if (m[i].nchan && nn < COMPARE_ROUNDS_MAX)
            nchan[nn++] = &m[i];
        else if (!m[i].nchan && nl < COMPARE_ROUNDS_MAX)
            lark[nl++] = &m[i];
    }
    /* The ratio within each round that measured both. */
    for (size_t i = 0; i < nl; i++)
        for (size_t j = 0; j < nn; j++)
            if (strcmp(lark[i]->round, nchan[j]->round) == 0 && nchan[j]->p50 > 0 &&
                nchan[j]->p99 > 0 && lark[i]->p50 >= 0) {
                /* with the fsync floor of the same round: Nchan + one fsync
                 * is what a durable message can at best come to */
                const struct meas *fl = floor_of(m, n, lark[i]->round, rate);
                if (fl && fl->p99 > 0) {
                    f99[floors] = fl->p99;
                    rf99[floors++] = lark[i]->p99 / (nchan[j]->p99 + fl->p99);
                }
                r50[pairs] = lark[i]->p50 / nchan[j]->p50;
                r99[pairs++] = lark[i]->p99 / nchan[j]->p99;
                break;
            }
    side_of(lark, nl, &sl);
    side_of(nchan, nn, &sn);
    printf("  %-5s %6.0f | %7.3f / %8.3f | %7.3f / %8.3f | %6.0f %6.0f | %8.1f %8.1f | %4lld "
           "%4lld | %4lld %4lld | %6.2f %6.2f  (%zu) | %6.3f  %6.2f\n",
           tr, rate, sn.p50, sn.p99, sl.p50, sl.p99, sn.achieved, sl.achieved, sn.lag_p99,
           sl.lag_p99, sn.lost, sl.lost, sn.dup, sl.dup, median(r50, pairs), median(r99, pairs),
           pairs, median(f99, floors), median(rf99, floors));
    if (out) {
        char when[32];
        time_t t = time(NULL);
        struct tm tm;
        json_t *o;
        char *text;
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        o = json_pack("{s:s, s:s, s:s, s:f, s:o, s:o, s:i, s:s}", "scenario", "peers", "run",
                      prefix, "transport", tr, "rate", rate, "nchan", side_json(&sn, nn), "lark",
                      side_json(&sl, nl), "pairs", (int)pairs, "time", when);
        json_object_set_new(o, "ratio_p50", pairs ? json_real(median(r50, pairs)) : json_null());
        json_object_set_new(o, "ratio_p99", pairs ? json_real(median(r99, pairs)) : json_null());
        json_object_set_new(o, "fsync_p99_ms",
                            floors ? json_real(median(f99, floors)) : json_null());
        json_object_set_new(o, "ratio_p99_to_nchan_plus_fsync",
                            floors ? json_real(median(rf99, floors)) : json_null());
        text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (text)
            fprintf(out, "%s\n", text);
        free(text);
        json_decref(o);
    }
    return pairs > 0;
}

/* The distinct (transport, rate) rows in first-seen order. */
static size_t rows_of(const struct meas *m, size_t n, size_t *first)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        if (strcmp(m[i].transport, "fsync") == 0)
            continue; /* a floor, not a row */
        while (j < k && !(strcmp(m[first[j]].transport, m[i].transport) == 0 &&
                          m[first[j]].rate == m[i].rate))
            j++;
        if (j == k)
            first[k++] = i;
    }
    return k;
}

int compare_main(int argc, char **argv)
{
    const char *path = argc >= 2 ? argv[1] : NULL, *prefix = "", *json_path = NULL;
    struct meas *m;
    size_t n = 0, nrows, *first, complete = 0, cap = 0;
    char *line = NULL;
    FILE *f, *out = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--round-prefix") == 0)
            prefix = argv[i + 1];
        else if (strcmp(argv[i], "--json") == 0)
            json_path = argv[i + 1];
        else
            path = NULL;
    }
    if (!path || argc % 2 != 0) {
        fprintf(stderr, "usage: larkbench compare FILE [--round-prefix P] [--json OUT]\n");
        return 2;
    }
    if (!(f = fopen(path, "r"))) {
        fprintf(stderr, "larkbench: cannot read %s\n", path);
        return 2;
    }
    m = xcalloc(COMPARE_ROWS_MAX, sizeof(*m));
    while (n < COMPARE_ROWS_MAX && getline(&line, &cap, f) > 0) /* bounded by the cap */
        n += (size_t)meas_read(line, prefix, &m[n]);
    free(line);
    fclose(f);
    if (json_path && !(out = fopen(json_path, "a"))) {
        fprintf(stderr, "larkbench: cannot append to %s\n", json_path);
        free(m);
        return 2;
    }
    first = xcalloc(n ? n : 1, sizeof(*first));
    nrows = rows_of(m, n, first);
    printf("  %-5s %6s | %-18s | %-18s | %-13s | %-17s | %-9s | %-9s | %-13s | %s\n", "", "msg/s",
           "Nchan p50 / p99", "lark p50 / p99", "achieved N/l", "send lag p99 N/l", "lost N/l",
           "dup N/l", "lark/Nchan p50 p99 (pairs)", "fsync p99  lark/(Nchan+fsync) p99");
    for (size_t r = 0; r < nrows; r++)
        complete += (size_t)row(m, n, m[first[r]].transport, m[first[r]].rate, prefix, out);
    if (out)
        fclose(out);
    free(first);
    free(m);
    return complete ? 0 : 1;
}
