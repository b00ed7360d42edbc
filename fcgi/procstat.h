/*
 * procstat.h - the process series of /metrics and the build it runs.
 *
 * The Prometheus client libraries' standard process collector, which a C
 * service has to write itself: CPU time, memory, descriptors and start
 * time from /proc/self (Linux), under the names every dashboard knows
 * (process_cpu_seconds_total, process_resident_memory_bytes, ...), plus
 * lark_build_info{version, commit} 1 (core/version.h). Read fresh at each
 * scrape; a /proc file that cannot be read leaves its series out rather
 * than failing the page. Any thread.
 */
#ifndef LARK_PROCSTAT_H
#define LARK_PROCSTAT_H

struct buf;

/* Append the series to out; 0 or LARK_ETOOLARGE. */
int procstat_render(struct buf *out);

#endif
