/*
 * report.c - what a run prints: the report lines and the one JSON line
 * (see report.h).
 */
#include "tools/larkbench/report.h"

#include "tools/larkbench/target.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A number, or null when unknown (negative). */
static const char *const fail_name[FAIL_COUNT] = {"connect", "reset", "eof", "protocol", "timeout"};

json_t *jnum(double v)
{
    return v < 0 ? json_null() : json_real(round3(v));
}

json_t *lat_json(struct samples *s)
{
    return json_pack("{s:I, s:o, s:o, s:o}", "n", (json_int_t)s->n, "p50_ms", jnum(pct_ms(s, 50)),
                     "p99_ms", jnum(pct_ms(s, 99)), "max_ms", jnum(pct_ms(s, 100)));
}

void lat_print(const char *what, struct samples *s)
{
    if (s->n == 0) {
        printf("  %-26s no samples\n", what);
        return;
    }
    printf("  %-26s p50 %.3f ms   p99 %.3f ms   max %.3f ms   (n=%zu)\n", what, pct_ms(s, 50),
           pct_ms(s, 99), pct_ms(s, 100), s->n);
}

json_t *mem_json(const struct mem *a, const struct mem *b, unsigned n)
{
    double l = per_conn(a->larkd, b->larkd, n), h = per_conn(a->lighttpd, b->lighttpd, n);
    json_t *o;
    if (a->nginx >= 0) {
        double x = per_conn(a->nginx, b->nginx, n);
        return json_pack("{s:i, s:{s:I, s:I, s:o}, s:o}", "connections", (int)n, "nginx",
                         "before_kib", (json_int_t)a->nginx, "after_kib", (json_int_t)b->nginx,
                         "kib_per_conn", jnum(x), "total_kib_per_conn", jnum(x));
    }
    o = json_pack("{s:i, s:{s:I, s:I, s:o}, s:{s:I, s:I, s:o}, s:o}", "connections", (int)n,
                  "larkd", "before_kib", (json_int_t)a->larkd, "after_kib", (json_int_t)b->larkd,
                  "kib_per_conn", jnum(l), "lighttpd", "before_kib", (json_int_t)a->lighttpd,
                  "after_kib", (json_int_t)b->lighttpd, "kib_per_conn", jnum(h),
                  "total_kib_per_conn", l >= 0 && h >= 0 ? jnum(l + h) : json_null());
    return o;
}

void mem_print(const struct mem *a, const struct mem *b, unsigned n)
{
    double l = per_conn(a->larkd, b->larkd, n), h = per_conn(a->lighttpd, b->lighttpd, n);
    if (a->nginx >= 0) {
        printf("  memory (VmRSS)             nginx (master + workers) %ld -> %ld KiB\n", a->nginx,
               b->nginx);
        printf("  per held stream            nginx %.2f KiB  (n=%u)\n",
               per_conn(a->nginx, b->nginx, n), n);
        return;
    }
    printf("  memory (VmRSS)             larkd %ld -> %ld KiB, lighttpd %ld -> %ld KiB\n", a->larkd,
           b->larkd, a->lighttpd, b->lighttpd);
    printf("  per held stream            larkd %.2f KiB + lighttpd %.2f KiB = %.2f KiB  (n=%u)\n",
           l, h, l >= 0 && h >= 0 ? l + h : -1.0, n);
}

static json_t *larkd_use_json(const struct larkd_use *l)
{
    if (!l->known)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "writer",
                     jnum(l->writer), "checkpointer", jnum(l->ckpt), "hub", jnum(l->hub), "readers",
                     jnum(l->readers), "later", jnum(l->later), "workers", jnum(l->workers),
                     "busiest_worker", jnum(l->busiest), "ws_pool", jnum(l->ws_pool), "main",
                     jnum(l->main), "total", jnum(l->total));
}

json_t *cpu_json(const struct cpu_use *u)
{
    json_t *o;
    if (B.o.nginx_pid > 0) /* Nchan: nginx is the whole server */
        return json_pack("{s:o, s:o, s:o, s:i}", "nginx", jnum(u->nginx), "bench", jnum(u->self),
                         "others", jnum(u->others), "cores", (int)sysconf(_SC_NPROCESSORS_ONLN));
    o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:i, s:o}", "larkd", jnum(u->larkd[0].total),
                  "lighttpd", jnum(u->lighttpd[0]), "postgres", jnum(u->db), "bench", jnum(u->self),
                  "others", jnum(u->others), "cores", (int)sysconf(_SC_NPROCESSORS_ONLN),
                  "larkd_threads", larkd_use_json(&u->larkd[0]));
    if (B.o.two) {
        json_object_set_new(o, "larkd_sub", jnum(u->larkd[1].total));
        json_object_set_new(o, "lighttpd_sub", jnum(u->lighttpd[1]));
        json_object_set_new(o, "larkd_sub_threads", larkd_use_json(&u->larkd[1]));
    }
    return o;
}

static void larkd_use_print(const char *who, const struct larkd_use *l)
{
    if (!l->known) {
        printf("  %-26s %.0f%% (threads without larkd's names: no breakdown)\n", who, l->total);
        return;
    }
    printf("  %-26s %.0f%%: ", who, l->total);
    if (B.layout[0].sqlite)
        printf("sqlite writer %.0f%%, checkpointer %.0f%%, ", l->writer, l->ckpt);
    printf("hub %.0f%%, readers %.0f%%, later %.0f%%, workers %.0f%% (busiest %.0f%%), "
           "ws pool %.0f%%, main %.0f%%\n",
           l->hub, l->readers, l->later, l->workers, l->busiest, l->ws_pool, l->main);
}

void cpu_print(const struct cpu_use *u)
{
    if (B.o.nginx_pid > 0) {
        printf("  CPU (%% of one core)        nginx %.0f%%, larkbench %.0f%%, other processes "
               "%.0f%%  [%ld cores]\n",
               u->nginx, u->self, u->others, sysconf(_SC_NPROCESSORS_ONLN));
        return;
    }
    printf("  CPU (%% of one core)        larkd %.0f%%, lighttpd %.0f%%", u->larkd[0].total,
           u->lighttpd[0]);
    if (B.o.two)
        printf(", subscribers' larkd %.0f%% and lighttpd %.0f%%", u->larkd[1].total,
               u->lighttpd[1]);
    if (B.o.db_pid > 0)
        printf(", PostgreSQL %.0f%%", u->db);
    printf(", larkbench %.0f%%, other processes %.0f%%  [%ld cores]\n", u->self, u->others,
           sysconf(_SC_NPROCESSORS_ONLN));
    larkd_use_print(B.o.two ? "larkd threads (senders')" : "larkd threads", &u->larkd[0]);
    if (B.o.two)
        larkd_use_print("larkd threads (subs')", &u->larkd[1]);
}

/* {"201": n, ...} for the statuses seen, plus transport failures. */
json_t *errors_json(const uint64_t *status, enum role role)
{
    json_t *o = json_object();
    char key[16];
    for (int s = 0; s < STATUS_MAX; s++) {
        /* 200 (a stream's head) and accepted sends are not errors */
        if (status[s] && s != 200 && !status_acked(s)) {
            snprintf(key, sizeof(key), "%d", s);
            json_object_set_new(o, key, json_integer((json_int_t)status[s]));
        }
    }
    for (int f = 0; f < FAIL_COUNT; f++)
        if (B.st.fail[role][f])
            json_object_set_new(o, fail_name[f], json_integer((json_int_t)B.st.fail[role][f]));
    return o;
}

void errors_print(const char *what, const uint64_t *status, enum role role)
{
    json_t *o = errors_json(status, role);
    char *text = json_dumps(o, JSON_COMPACT);
    printf("  %-26s %s\n", what, json_object_size(o) ? text : "none");
    free(text);
    json_decref(o);
}

/* Print the JSON line (and append it to --json FILE), with what every
 * scenario shares: back end, transport, larkd processes, time. */
void emit(json_t *root)
{
    char *line, when[32];
    time_t t = time(NULL);
    struct tm tm;
    FILE *f;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    json_object_set_new(root, "backend", json_string(B.backend));
    json_object_set_new(root, "target", json_string(B.o.target->name));
    json_object_set_new(root, "transport", json_string(transport_name()));
    if (B.o.round)
        json_object_set_new(root, "round", json_string(B.o.round));
    json_object_set_new(root, "processes", json_integer(B.o.two ? 2 : 1));
    json_object_set_new(root, "time", json_string(when));
    line = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (!line)
        die("cannot format the JSON line");
    printf("%s\n", line);
    if (B.o.json_path) {
        if (!(f = fopen(B.o.json_path, "a")))
            die("cannot open the --json file");
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(line);
    json_decref(root);
}

void header_print(const char *title)
{
    if (B.o.nginx_pid > 0 || B.o.target != &target_lark) {
        printf("\n== larkbench %s over %s, %s: http://%s  (nginx pid %d)\n", title,
               transport_title(), B.o.target->name, B.o.host, (int)B.o.nginx_pid);
        return;
    }
    printf("\n== larkbench %s over %s, %s: http://%s  (larkd pid %d, lighttpd pid %d", title,
           transport_title(), B.backend, B.o.host, (int)B.o.larkd_pid, (int)B.o.lighttpd_pid);
    if (B.o.two)
        printf("; subscribers on port %u: larkd pid %d, lighttpd pid %d",
               ntohs(B.o.sub_addr.sin_port), (int)B.o.sub_larkd_pid, (int)B.o.sub_lighttpd_pid);
    printf(")\n");
}

const char *transport_name(void)
{
    static const char *const names[] = {[TR_SSE] = "sse", [TR_WS] = "ws", [TR_POLL] = "poll"};
    return names[B.o.transport];
}

const char *transport_title(void)
{
    static const char *const names[] = {
        [TR_SSE] = "SSE", [TR_WS] = "WebSocket", [TR_POLL] = "long-poll"};
    return names[B.o.transport];
}
