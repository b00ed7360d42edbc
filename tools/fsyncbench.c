/*
 * fsyncbench.c - the floor a durable message stands on: how long an
 * append of one commit's worth of bytes plus fdatasync takes on this disk,
 * at a given rate, right now.
 *
 * Why: lark answers 201 only after the message is on disk (API.md), Nchan
 * keeps messages in memory. Side by side (tools/bench-peers.sh), lark's
 * delivery latency can come within one fsync of Nchan's, not below it; on
 * a shared machine that fsync varies from minute to minute, so it is
 * measured in the same run as the peers, next to them.
 *
 * Writes --size bytes at --rate per second for --seconds into a file in
 * --dir (cycling over SLOTS of them, as a WAL that starts over does), each
 * followed by fdatasync; reports p50 / p99 / max of write + fdatasync and
 * appends a JSON line {"scenario":"fsync", ...} to --json. The file is
 * removed at the end. Every wait is bounded by the schedule.
 */

#include "core/version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Slots cycled over: 8 MiB of 8 KiB appends, like a WAL that restarts. */
#define SLOTS 1024
/* Most samples kept (rate x seconds beyond this are not measured). */
#define SAMPLES_MAX 1000000

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: fsyncbench [--rate N] [--seconds S] [--size BYTES] [--dir DIR]\n"
                 "                  [--json FILE] [--round LABEL]\n"
                 "\n"
                 "Append --size bytes (8192) and fdatasync, --rate times a second (1000), for\n"
                 "--seconds (5), in a file in --dir ($TMPDIR or /tmp); print p50 / p99 / max of\n"
                 "each append + fdatasync, and append a JSON line to --json.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"rate", required_argument, NULL, 'r'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"size", required_argument, NULL, 'z'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"json", required_argument, NULL, 'j'},
                                         {"round", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    double rate = 1000, seconds = 5;
    long size = 8192;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", *json = NULL, *round = "";
    char path[4096];
    int64_t *lat, t0, end;
    char *block;
    size_t n = 0;
    int c, fd;

    while ((c = getopt_long(argc, argv, "r:s:z:d:j:o:hv", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rate = strtod(optarg, NULL); break;
        case 's': seconds = strtod(optarg, NULL); break;
        case 'z': size = strtol(optarg, NULL, 10); break;
        case 'd': dir = optarg; break;
        case 'j': json = optarg; break;
        case 'o': round = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'v': version_print(stdout, "fsyncbench"); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (rate <= 0 || rate > 100000 || seconds <= 0 || seconds > 3600 || size < 1 ||
        size > (1 << 20)) {
        usage(stderr);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/fsyncbench.%d", dir, (int)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fsyncbench: cannot create %s (errno %d)\n", path, errno);
        return 1;
    }
    block = malloc((size_t)size);
    lat = malloc(SAMPLES_MAX * sizeof(*lat));
    if (!block || !lat)
        return 1;
    memset(block, 'x', (size_t)size);
    t0 = now_ns();
    end = t0 + (int64_t)(seconds * 1e9);
    for (uint64_t k = 0; n < SAMPLES_MAX; k++) {
        int64_t due = t0 + (int64_t)((double)k * 1e9 / rate), t;
        if (due >= end)
            break;
        while ((t = now_ns()) < due) {
            struct timespec ts = {0, (long)(due - t)};
            nanosleep(&ts, NULL);
        }
        if (pwrite(fd, block, (size_t)size, (off_t)((k % SLOTS) * (uint64_t)size)) != size ||
            fdatasync(fd) != 0) {
            fprintf(stderr, "fsyncbench: write failed (errno %d)\n", errno);
            break;
        }
        lat[n++] = now_ns() - t;
    }
    close(fd);
    unlink(path);
    if (n) {
        qsort(lat, n, sizeof(*lat), cmp_i64);
        printf("fsync floor (%ld B append + fdatasync at %.0f/s in %s): p50 %.3f ms   p99 %.3f ms"
               "   max %.3f ms   (n=%zu)\n",
               size, rate, dir, (double)lat[n / 2] / 1e6, (double)lat[n * 99 / 100] / 1e6,
               (double)lat[n - 1] / 1e6, n);
        if (json) {
            FILE *f = fopen(json, "a");
            if (f) {
                fprintf(
                    f,
                    "{\"scenario\":\"fsync\",\"round\":\"%s\",\"rate\":%.1f,\"size\":%ld,"
                    "\"latency\":{\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}}\n",
                    round, rate, size, n, (double)lat[n / 2] / 1e6, (double)lat[n * 99 / 100] / 1e6,
                    (double)lat[n - 1] / 1e6);
                fclose(f);
            }
        }
    }
    free(block);
    free(lat);
    return n ? 0 : 1;
}
