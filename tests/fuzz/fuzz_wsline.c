/*
 * fuzz_wsline.c - libFuzzer target for the WebSocket input framing
 * (fcgi/wsline.h): every byte a WebSocket client sends goes through it
 * before anything else looks at it, cut into reads wherever mod_wstunnel
 * and the kernel cut it.
 *
 * The input is a little header, then the client's bytes:
 *   byte 0       the session's buffer size (max) - 1, so 1 to 256 bytes
 *                (small, so that lines over it are common)
 *   bytes 1..8   read sizes, cycled (0 stands for 1)
 * The bytes are fed through a buffer of max bytes exactly as wsbridge.c
 * does (read at most what fits, take every whole line, stop taking input
 * when the buffer is full), and what comes out is compared with the same
 * bytes split at '\n' in one go: the same lines in the same order, each
 * without its '\n' and one trailing '\r'; no line of max bytes or more
 * (the session ends at the first such line instead, and nothing after it
 * is delivered); and what is left unfinished at the end is the tail after
 * the last '\n'.
 */
#include "core/buf.h"
#include "fcgi/wsline.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <string.h>

#define HEADER 9

/* The reference: the length of the next line at p (up to its '\n'), or
 * -1 if there is no '\n' before end. */
static long next_nl(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? (long)(nl - p) : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf in;
    const uint8_t *bytes = data + HEADER, *end = data + size, *ref;
    size_t max, fed = 0, nbytes, k = 0;
    int too_long = 0;

    if (size < HEADER)
        return 0;
    max = (size_t)data[0] + 1;
    nbytes = size - HEADER;
    ref = bytes;
    buf_init(&in, max);
    while (!too_long) {
        size_t len, used, room = in.max - in.len, want;
        enum wsline_result rc;

        /* take every whole line, as ws_process does */
        while ((rc = wsline_next(in.data, in.len, in.max, &len, &used)) == WSLINE_LINE) {
            long expect = next_nl(ref, end);
            CHECK(expect >= 0 && used == (size_t)expect + 1 && used <= in.len);
            CHECK(len == used - 1 || (len == used - 2 && in.data[len] == '\r'));
            CHECK(memcmp(in.data, ref, len) == 0 && !memchr(in.data, '\n', len));
            /* a line that fit the buffer was under max with its '\n' */
            CHECK(used <= max);
            ref += used;
            buf_consume(&in, used);
        }
        if (rc == WSLINE_TOO_LONG) {
            /* the unfinished line at ref has max bytes or more */
            long expect = next_nl(ref, end);
            CHECK(in.len >= max && (expect < 0 || (size_t)expect >= max));
            CHECK(memcmp(in.data, ref, in.len) == 0);
            too_long = 1;
            break;
        }
        CHECK(rc == WSLINE_MORE && len == 0 && used == 0 && in.len < max);
        if (fed == nbytes)
            break;
        /* read what fits, at most this round's size (ws_on_readable) */
        want = data[1 + k++ % 8];
        if (want == 0)
            want = 1;
        if (want > room)
            want = room;
        if (want > nbytes - fed)
            want = nbytes - fed;
        CHECK(buf_append(&in, bytes + fed, want) == 0);
        fed += want;
    }
    if (!too_long) {
        /* all fed; what is left is the tail after the last '\n', under max */
        CHECK(fed == nbytes && next_nl(ref, end) < 0 && (size_t)(end - ref) == in.len);
        CHECK(in.len == 0 || memcmp(in.data, ref, in.len) == 0);
        CHECK(in.len < max);
    } else {
        /* the reference agrees that a line too long for the buffer came */
        long expect = next_nl(ref, end);
        CHECK(expect < 0 ? (size_t)(end - ref) >= max : (size_t)expect >= max);
    }
    buf_release(&in);
    return 0;
}
