/*
 * report.h - what a run prints: a report for people (latency percentiles,
 * memory per held stream, CPU by process and thread, errors) and one JSON
 * line for scripts (appended to --json FILE too), with what every scenario
 * shares: target, back end, transport, larkd processes, time.
 * One thread.
 */
#ifndef LARK_BENCH_REPORT_H
#define LARK_BENCH_REPORT_H

#include "tools/larkbench/bench.h"
#include "tools/larkbench/sample.h"

#include <jansson.h>
#include <stdint.h>

/* A number rounded to 3 decimals, or null when unknown (negative). */
json_t *jnum(double v);
/* {"n", "p50_ms", "p99_ms", "max_ms"} (sorts the samples). */
json_t *lat_json(struct samples *s);
void lat_print(const char *what, struct samples *s);
json_t *mem_json(const struct mem *a, const struct mem *b, unsigned n);
void mem_print(const struct mem *a, const struct mem *b, unsigned n);
json_t *cpu_json(const struct cpu_use *u);
void cpu_print(const struct cpu_use *u);
/* {"<status>": n, ...} of the statuses that are errors, plus transport
 * failures of role. */
json_t *errors_json(const uint64_t *status, enum role role);
void errors_print(const char *what, const uint64_t *status, enum role role);
/* Print root as the JSON line (and append it to --json); takes root. */
void emit(json_t *root);
/* "== larkbench <title> over <transport>, ..." */
void header_print(const char *title);
/* "sse", "ws", "poll"; and "SSE", "WebSocket", "long-poll". */
const char *transport_name(void);
const char *transport_title(void);

#endif
