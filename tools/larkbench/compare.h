/*
 * compare.h - `larkbench compare FILE`: the side-by-side table of a
 * `make bench-peers` run (docs/BENCHMARKS.md, "Side by side with Nchan").
 *
 * Reads the fanout JSON lines that the run's rounds appended to FILE (its
 * rounds are labelled "<run>/<n>" by --round), pairs lark's and Nchan's
 * measurement of each round, transport and rate, and prints per transport
 * and rate: Nchan's and lark's delivery p50 / p99 (medians over rounds),
 * achieved rate (publishes accepted by the end of the sending window, per
 * second of it), send lag p99, lost and duplicated (summed), and the
 * lark/Nchan ratios of p50 and p99 (the median of the rounds' ratios: a
 * ratio is taken within one round, a few seconds apart, so the shared
 * machine's drift between rounds cancels out). Where the round also holds
 * an fsync floor at that rate (tools/fsyncbench.c), its p99 and the ratio
 * lark p99 / (Nchan p99 + fsync p99): Nchan keeps messages in memory, lark
 * answers after fdatasync, so one fsync is the fair difference. With
 * --json OUT, one JSON line per row is appended to OUT.
 */
#ifndef LARK_BENCH_COMPARE_H
#define LARK_BENCH_COMPARE_H

/* argv[0] is "compare". Returns the exit status: 0, or 2 for a usage or
 * read error, or 1 when no complete pair was found. */
int compare_main(int argc, char **argv);

#endif
