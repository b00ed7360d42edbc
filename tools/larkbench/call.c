/*
 * call.c - blocking requests between phases (see call.h).
 */
#include "tools/larkbench/call.h"

#include "tools/larkbench/bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/*
 * GET path on a fresh blocking connection with timeout_s for each step;
 * returns the HTTP status (and the time to it in *ms), or -1 if none came.
 * Used only between phases, never while the event loop has work.
 */
int call_probe(const char *path, double timeout_s, double *ms)
{
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    char req[256], head[64] = "";
    int64_t t0 = now_ns();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n, status = -1;
    ssize_t got;

    *ms = -1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
                 B.o.host);
    /* A connect to a listener that stopped accepting still succeeds (the
     * kernel's backlog takes it); the answer is what never comes. */
    if (connect(fd, (const struct sockaddr *)&B.o.addr, sizeof(B.o.addr)) == 0 &&
        send(fd, req, (size_t)n, MSG_NOSIGNAL) == n &&
        (got = recv(fd, head, sizeof(head) - 1, 0)) >= 12 && memcmp(head, "HTTP/1.", 7) == 0) {
        head[got] = '\0';
        status = (int)strtol(head + 9, NULL, 10);
        *ms = (double)(now_ns() - t0) / NS_PER_MS;
    }
    close(fd);
    return status;
}

/*
 * One request on a fresh blocking connection to --port, as HTTP/1.0 so that
 * the server closes when the answer is complete (no framing to parse):
 * method path with an optional bearer token and JSON body. Returns the
 * status (the answer's body in *out, bounded by its max) or -1 if no whole
 * answer came within timeout_s. Used between phases only.
 */
int call_http(const char *method, const char *path, const char *token, const char *body,
              double timeout_s, struct buf *out)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    int64_t deadline = now_ns() + (int64_t)(timeout_s * NS_PER_S);
    struct buf req, in;
    char chunk[16384];
    const char *head_end;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1, eof = 0;

    buf_reset(out);
    if (fd < 0)
        return -1;
    buf_init(&req, OUT_MAX + CALL_MAX);
    buf_init(&in, CALL_MAX + HTTP_RESP_HEAD_MAX);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    buf_printf(&req, "%s %s HTTP/1.0\r\nHost: %s\r\n", method, path, B.o.host);
    if (token)
        buf_printf(&req, "Authorization: Bearer %s\r\n", token);
    if (body)
        buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
    else
        buf_puts(&req, "\r\n");
    if (connect(fd, (const struct sockaddr *)&B.o.addr, sizeof(B.o.addr)) != 0)
        goto out;
    for (size_t off = 0; off < req.len && now_ns() < deadline;) { /* each pass writes or waits */
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            goto out;
    }
    while (!eof && now_ns() < deadline) { /* each pass reads or waits 0.1 s */
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n > 0 && buf_append(&in, chunk, (size_t)n) != 0)
            goto out;
        if (n == 0)
            eof = 1;
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            goto out;
    }
    head_end = in.len ? memmem(in.data, in.len, "\r\n\r\n", 4) : NULL;
    if (eof && head_end && in.len >= 12 && memcmp(in.data, "HTTP/1.", 7) == 0) {
        status = (int)strtol(in.data + 9, NULL, 10);
        buf_append(out, head_end + 4, in.len - (size_t)(head_end + 4 - in.data));
    }
out:
    close(fd);
    buf_release(&req);
    buf_release(&in);
    return status;
}
