/*
 * scenario.h - the scenarios of larkbench (docs/BENCHMARKS.md): each runs
 * once on the set-up main.c made, prints its report and JSON line, and
 * returns whether its target was met (1) or not (0). The fanout schedule
 * and window also drive the group scenario. One thread.
 */
#ifndef LARK_BENCH_SCENARIO_H
#define LARK_BENCH_SCENARIO_H

#include "tools/larkbench/bench.h"
#include "tools/larkbench/sample.h"

#include <stdint.h>

int run_fanout(void);
int run_throughput(void);
int run_idle(void);
int run_group(void);

/* ns after t0 at which message k is due: a fixed total rate, open loop. */
int64_t msg_offset(uint64_t k);

/* Queue every message due by now on its sender. */
void fan_schedule(int64_t now);

/* The sending window from now, then the answers still due; CPU over it. */
void fan_window(struct cpu_use *u);

/* Wait up to --grace for acknowledged messages still on their way; the
 * seconds waited. */
double fan_grace(void);

/* "subscribe (connect->head)" and the like, for the transport's report line. */
const char *subscribe_what(void);

#endif
