/*
 * test_bench_http.c - tools/larkbench/httpresp: larkbench's HTTP/1.1
 * response parser.
 *
 * Every answer is parsed whole, then cut at every byte boundary into two
 * reads, then fed one byte per read: the body bytes, the events, the
 * status, the header fields seen and the error (if any) must be the same
 * every time. That is the property the load generator's figures need:
 * TCP may cut a response anywhere.
 */
#include "tools/larkbench/httpresp.h"

#include "core/buf.h"
#include "core/err.h"
#include "tests/unit/unit.h"

#include <string.h>

/* Everything a parse of one input produced. */
struct outcome {
    struct buf body;    /* body bytes, in order */
    struct buf headers; /* "name=value\n" per header field seen */
    struct buf trace;   /* "H<status>" per head, "D" per done, "E<code>" on error, "U" */
    int close;          /* of the last head */
    size_t rest;        /* bytes left unparsed (after an upgrade or error) */
};

static void on_header(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct outcome *o = arg;
    buf_printf(&o->headers, "%.*s=%.*s\n", (int)nlen, name, (int)vlen, value);
}

static void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    buf_init(&o->body, 1 << 20);
    buf_init(&o->headers, 1 << 16);
    buf_init(&o->trace, 1 << 16);
}

static void outcome_release(struct outcome *o)
{
    buf_release(&o->body);
    buf_release(&o->headers);
    buf_release(&o->trace);
}

/*
 * Feed in[0..n) in reads of the given sizes (cycled; 0 = all at once), as
 * a connection would: unparsed bytes stay and the next read is appended.
 * answers: how many answers the "requests" expect (one after the other on
 * the connection). eof: the server closes after the last byte.
 */
static void run(const char *in, size_t n, const size_t *reads, size_t nreads, unsigned flags,
                int answers, int eof, struct outcome *o)
{
    struct http_resp r;
    struct buf pending;
    size_t fed = 0, k = 0;
    int stopped = 0;

    outcome_init(o);
    buf_init(&pending, 1 << 20);
    http_resp_init(&r, on_header, o);
    http_resp_expect(&r, flags);
    answers--;
    while (fed < n && !stopped) { /* one read per pass */
        size_t want = nreads && reads[k % nreads] ? reads[k % nreads] : n - fed;
        size_t pos = 0;
        k++;
        if (want > n - fed)
            want = n - fed;
        ck_assert_int_eq(buf_append(&pending, in + fed, want), 0);
        fed += want;
        while (pos < pending.len && !stopped) { /* one step per pass */
            struct http_resp_out out;
            long used;
            if (r.phase == HTTP_RESP_UPGRADED) {
                stopped = 1;
                break;
            }
            used = http_resp_step(&r, pending.data + pos, pending.len - pos, &out);
            if (used < 0) {
                buf_printf(&o->trace, "E%ld", used);
                stopped = 1;
                break;
            }
            if (used == 0)
                break;
            pos += (size_t)used;
            if (out.events & HTTP_RESP_EV_HEAD) {
                buf_printf(&o->trace, "H%d", r.status);
                o->close = r.close;
            }
            if (out.body_len)
                ck_assert_int_eq(buf_append(&o->body, out.body, out.body_len), 0);
            if (out.events & HTTP_RESP_EV_DONE) {
                buf_puts(&o->trace, "D");
                if (answers-- > 0)
                    http_resp_expect(&r, flags);
            }
        }
        buf_consume(&pending, pos);
    }
    if (r.phase == HTTP_RESP_UPGRADED)
        buf_puts(&o->trace, "U");
    o->rest = pending.len + (n - fed);
    if (eof && !stopped && http_resp_eof(&r))
        buf_puts(&o->trace, "D(eof)");
    buf_release(&pending);
}

static void same(const struct outcome *a, const struct outcome *b, const char *how)
{
    ck_assert_msg(a->trace.len == b->trace.len &&
                      memcmp(a->trace.data, b->trace.data, a->trace.len) == 0,
                  "%s: trace %s vs %s", how, a->trace.data, b->trace.data);
    ck_assert_uint_eq(a->body.len, b->body.len);
    if (a->body.len)
        ck_assert_mem_eq(a->body.data, b->body.data, a->body.len);
    ck_assert_str_eq(a->headers.data ? a->headers.data : "",
                     b->headers.data ? b->headers.data : "");
    ck_assert_int_eq(a->close, b->close);
    ck_assert_uint_eq(a->rest, b->rest);
}

/*
 * Parse in whole, check it against the expected trace, body and header
 * list, then check every two-read split and one-byte reads give the same.
 */
static void check(const char *in, unsigned flags, int answers, int eof, const char *trace,
                  const char *body, const char *headers, int close)
{
    size_t n = strlen(in);
    struct outcome whole, cut;
    static const size_t one[] = {1};

    run(in, n, NULL, 0, flags, answers, eof, &whole);
    ck_assert_str_eq(whole.trace.data ? whole.trace.data : "", trace);
    ck_assert_str_eq(whole.body.data ? whole.body.data : "", body);
    if (headers)
        ck_assert_str_eq(whole.headers.data ? whole.headers.data : "", headers);
    if (close >= 0)
        ck_assert_int_eq(whole.close, close);
    for (size_t at = 1; at < n; at++) {
        size_t reads[2] = {at, n};
        run(in, n, reads, 2, flags, answers, eof, &cut);
        same(&whole, &cut, "split");
        outcome_release(&cut);
    }
    run(in, n, one, 1, flags, answers, eof, &cut);
    same(&whole, &cut, "byte by byte");
    outcome_release(&cut);
    outcome_release(&whole);
}

START_TEST(test_content_length)
{
    check("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
          "{\"seq\": 42}",
          0, 1, 0, "H201D", "{\"seq\": 42}", "Content-Type=application/json\nContent-Length=11\n",
          0);
}
END_TEST

START_TEST(test_keep_alive_answers_in_a_row)
{
    /* Two answers on one connection, the second chunked, then a third
     * with an empty body. */
    check("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ncde\r\n0\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
          0, 3, 0, "H200DH200DH200D", "abcde", NULL, 0);
}
END_TEST

START_TEST(test_chunked_extensions_trailers)
{
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5;name=value\r\nhello\r\n"
          "6 ; q=\"a;b\"\r\n world\r\n"
          "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
          "0;last\r\nX-Trailer: 1\r\nChecksum: abc\r\n\r\n",
          0, 1, 0, "H200D", "hello worldabcdefghijklmnopqrstuvwxyz", "Transfer-Encoding=chunked\n",
          0);
}
END_TEST

START_TEST(test_chunked_wins_over_length)
{
    /* RFC 9112 6.3: Transfer-Encoding overrides Content-Length. */
    check("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
          "2\r\nok\r\n0\r\n\r\n",
          0, 1, 0, "H200D", "ok", NULL, 0);
}
END_TEST

START_TEST(test_body_until_close)
{
    /* nginx's SSE answer: neither length nor chunks; the body ends when
     * the server closes. */
    check("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
          "Connection: keep-alive\r\n\r\n: hi\n\nid: 1:0\ndata: x\n\n",
          0, 1, 1, "H200D(eof)", ": hi\n\nid: 1:0\ndata: x\n\n", NULL, 1);
    /* Cut short: a Content-Length body the close interrupts is not done. */
    check("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, 1, 1, "H200", "abc", NULL, 0);
}
END_TEST

START_TEST(test_no_body_statuses)
{
    check("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0, 1, 0, "H204D", "", NULL, 0);
    check("HTTP/1.1 304 Not Modified\r\nEtag: 3\r\n\r\n", 0, 1, 0, "H304D", "", "Etag=3\n", 0);
}
END_TEST

START_TEST(test_interim_then_final)
{
    /* A 100 Continue is skipped, and its header fields are not reported. */
    check("HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
          "\r\nz",
          0, 1, 0, "H200D", "z", "Content-Length=1\n", 0);
    /* A 101 nobody asked for is interim too. */
    check("HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0,
          1, 0, "H200D", "", NULL, 0);
}
END_TEST

START_TEST(test_upgrade_stops_at_the_frames)
{
    /* After the 101 the bytes are WebSocket frames: left to the caller. */
    check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05Hello",
          HTTP_RESP_UPGRADE, 1, 0, "H101U", "", NULL, 0);
    {
        struct outcome o;
        const char *in = "HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05Hello";
        run(in, strlen(in), NULL, 0, HTTP_RESP_UPGRADE, 1, 0, &o);
        ck_assert_uint_eq(o.rest, 7);
        outcome_release(&o);
    }
}
END_TEST

START_TEST(test_connection_close_rules)
{
    check("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na", 0, 1, 0, "H200D", "a", NULL, 1);
    check("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\na", 0, 1, 0,
          "H200D", "a", NULL, 0);
    check("HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 1\r\n\r\na", 0, 1, 0,
          "H200D", "a", NULL, 1);
}
END_TEST

START_TEST(test_header_values_trimmed)
{
    check("HTTP/1.1 200 OK\r\nLast-Modified:  Mon, 07 Dec 2026 21:32:39 GMT \t\r\nEtag:1\r\n"
          "X-Empty:\r\nContent-Length: 0\r\n\r\n",
          0, 1, 0, "H200D", "",
          "Last-Modified=Mon, 07 Dec 2026 21:32:39 GMT\nEtag=1\nX-Empty=\nContent-Length=0\n", 0);
}
END_TEST

START_TEST(test_malformed)
{
    char code[16];
    snprintf(code, sizeof(code), "E%d", LARK_EINVAL);
    check("HTTP/2 200 OK\r\n\r\n", 0, 1, 0, code, "", NULL, -1);
    check("HTTP/1.1 2x0 OK\r\n\r\n", 0, 1, 0, code, "", NULL, -1);
    check("HTTP/1.1 200OK\r\n\r\n", 0, 1, 0, code, "", NULL, -1);
    check("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 0, 1, 0, code, "", NULL, -1);
    check("HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n", 0, 1, 0, code, "", NULL, -1);
    check("HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx", 0, 1, 0, code, "", NULL, -1);
    check("HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", 0, 1, 0, code, "", NULL, -1);
    check("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 0, 1, 0, code, "",
          NULL, -1);
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 1, 0, "H200E-1", "",
          NULL, -1);
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 0, 1, 0,
          "H200E-1", "", NULL, -1);
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n", 0, 1, 0, "H200E-1", "",
          NULL, -1);
    /* The CRLF after a chunk's data is required. */
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n", 0, 1, 0,
          "H200E-1", "hello", NULL, -1);
    /* Bytes after the last expected answer. */
    check("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naXYZ", 0, 1, 0, "H200DE-1", "a", NULL, -1);
}
END_TEST

START_TEST(test_limits)
{
    struct buf in;
    char code[16];
    snprintf(code, sizeof(code), "E%d", LARK_ETOOLARGE);
    buf_init(&in, 1 << 20);
    /* A head that never ends within HTTP_RESP_HEAD_MAX. */
    buf_puts(&in, "HTTP/1.1 200 OK\r\n");
    while (in.len <= HTTP_RESP_HEAD_MAX)
        buf_puts(&in, "X-Filler: 0123456789012345678901234567890123456789\r\n");
    {
        struct outcome o;
        run(in.data, in.len, NULL, 0, 0, 1, 0, &o);
        ck_assert_str_eq(o.trace.data, code);
        outcome_release(&o);
    }
    /* A chunk-size line whose extensions never end. */
    buf_reset(&in);
    buf_puts(&in, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;");
    while (in.len < 2 * HTTP_RESP_CHUNK_LINE_MAX)
        buf_puts(&in, "ext=value;");
    {
        struct outcome o;
        char want[32];
        snprintf(want, sizeof(want), "H200%s", code);
        run(in.data, in.len, NULL, 0, 0, 1, 0, &o);
        ck_assert_str_eq(o.trace.data, want);
        outcome_release(&o);
    }
    buf_release(&in);
}
END_TEST

START_TEST(test_large_body_any_cut)
{
    /* A 40 KiB chunked body in chunks of odd sizes, cut into reads of 1,
     * 7, 4096 and 3 bytes in turn. */
    struct buf in, want;
    struct outcome o;
    static const size_t reads[] = {1, 7, 4096, 3};
    buf_init(&in, 1 << 20);
    buf_init(&want, 1 << 20);
    buf_puts(&in, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (unsigned i = 0; want.len < 40 * 1024; i++) {
        size_t len = 1 + (i * 977) % 3000;
        buf_printf(&in, "%zx\r\n", len);
        for (size_t j = 0; j < len; j++) {
            char ch = (char)('a' + (i + j) % 26);
            buf_putc(&in, ch);
            buf_putc(&want, ch);
        }
        buf_puts(&in, "\r\n");
    }
    buf_puts(&in, "0\r\n\r\n");
    run(in.data, in.len, reads, 4, 0, 1, 0, &o);
    ck_assert_str_eq(o.trace.data, "H200D");
    ck_assert_uint_eq(o.body.len, want.len);
    ck_assert_mem_eq(o.body.data, want.data, want.len);
    outcome_release(&o);
    buf_release(&in);
    buf_release(&want);
}
END_TEST

START_TEST(test_idle_and_eof)
{
    struct http_resp r;
    struct http_resp_out out;
    http_resp_init(&r, NULL, NULL);
    /* Nothing asked: any byte is an error, and a close ends nothing. */
    ck_assert_int_eq(http_resp_step(&r, "x", 1, &out), LARK_EINVAL);
    ck_assert_int_eq(http_resp_eof(&r), 0);
    http_resp_expect(&r, 0);
    ck_assert_int_eq(http_resp_step(&r, "", 0, &out), 0);
    ck_assert_int_eq(http_resp_eof(&r), 0);
    ck_assert_int_eq(r.phase, HTTP_RESP_IDLE);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bench_http");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_content_length);
    tcase_add_test(tc, test_keep_alive_answers_in_a_row);
    tcase_add_test(tc, test_chunked_extensions_trailers);
    tcase_add_test(tc, test_chunked_wins_over_length);
    tcase_add_test(tc, test_body_until_close);
    tcase_add_test(tc, test_no_body_statuses);
    tcase_add_test(tc, test_interim_then_final);
    tcase_add_test(tc, test_upgrade_stops_at_the_frames);
    tcase_add_test(tc, test_connection_close_rules);
    tcase_add_test(tc, test_header_values_trimmed);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_large_body_any_cut);
    tcase_add_test(tc, test_idle_and_eof);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
