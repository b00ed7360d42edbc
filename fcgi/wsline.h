/*
 * wsline.h - the WebSocket input framing (API.md "WebSocket"): the
 * client's bytes as mod_wstunnel hands them over - frames' payloads with
 * no boundaries, cut at any byte - split into lines at '\n'.
 *
 * A line may end in "\r\n" (the '\r' is not part of it). A line is at most
 * max - 1 bytes before its '\n' (max: the session's input buffer, the
 * request size limit): one of max bytes or more can never complete, and
 * API.md says such a line closes the session. Empty lines are the
 * caller's to skip.
 *
 * Kept apart from wsbridge.c so that the fuzzer (tests/fuzz/fuzz_wsline.c)
 * drives exactly what the bridge runs. A pure function over borrowed
 * bytes; thread-safe.
 */
#ifndef LARK_WSLINE_H
#define LARK_WSLINE_H

#include <stddef.h>

enum wsline_result {
    WSLINE_TOO_LONG = -1, /* no '\n' in len >= max bytes: end the session */
    WSLINE_MORE = 0,      /* no complete line yet: read more */
    WSLINE_LINE = 1,      /* a line: data[0 .. *line_len); consume *used bytes */
};

/*
 * The next line in the len unconsumed bytes at data (NULL when len is 0)
 * of an input buffer that holds at most max bytes. Sets *line_len and
 * *used (both 0 unless WSLINE_LINE).
 */
enum wsline_result wsline_next(const char *data, size_t len, size_t max, size_t *line_len,
                               size_t *used);

#endif
