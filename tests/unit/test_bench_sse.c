/*
 * test_bench_sse.c - tools/larkbench/sse: larkbench's Server-Sent Events
 * parser, against the WHATWG event stream rules EventSource follows.
 *
 * Each stream is parsed whole, at every two-read split and one byte per
 * read, and must give the same events every time (a CRLF may be cut
 * between its CR and its LF).
 */
#include "tools/larkbench/sse.h"

#include "core/buf.h"
#include "core/err.h"
#include "tests/unit/unit.h"

#include <string.h>

/* Events as text: "type|id|has_id|data" lines. */
struct seen {
    struct buf text;
    int stop_after; /* return 7 from the callback after this many events; 0 never */
    int count;
};

static int on_event(void *arg, const struct sse_event *ev)
{
    struct seen *s = arg;
    buf_printf(&s->text, "%s|%s|%d|", ev->type, ev->id, ev->has_id);
    buf_append(&s->text, ev->data, ev->data_len);
    buf_putc(&s->text, '\n');
    ck_assert_uint_eq(strlen(ev->data), ev->data_len);
    s->count++;
    return s->stop_after && s->count >= s->stop_after ? 7 : 0;
}

/* Parse in[0..n) in reads of size `read` (0: all at once); the events as
 * text (caller frees), the retry seen in *retry. */
static char *parse(const char *in, size_t n, size_t read, size_t max, long *retry)
{
    struct sse_parser p;
    struct seen s = {.stop_after = 0};
    char *out;
    buf_init(&s.text, 1 << 20);
    sse_init(&p, max, on_event, &s);
    for (size_t off = 0; off < n;) { /* one read per pass */
        size_t len = read && read < n - off ? read : n - off;
        ck_assert_int_eq(sse_feed(&p, in + off, len), 0);
        off += len;
    }
    if (retry)
        *retry = p.retry_ms;
    sse_release(&p);
    out = buf_detach(&s.text, NULL);
    return out ? out : strdup("");
}

static void parse_split(const char *in, size_t n, size_t at, struct buf *text)
{
    struct sse_parser p;
    struct seen s = {.stop_after = 0};
    buf_init(&s.text, 1 << 20);
    sse_init(&p, 1 << 16, on_event, &s);
    ck_assert_int_eq(sse_feed(&p, in, at), 0);
    ck_assert_int_eq(sse_feed(&p, in + at, n - at), 0);
    sse_release(&p);
    buf_reset(text);
    buf_append(text, s.text.data ? s.text.data : "", s.text.len);
    buf_release(&s.text);
}

static void check(const char *in, const char *want)
{
    size_t n = strlen(in);
    char *whole = parse(in, n, 0, 1 << 16, NULL), *bytes;
    struct buf cut;
    ck_assert_str_eq(whole, want);
    buf_init(&cut, 1 << 20);
    for (size_t at = 0; at <= n; at++) {
        parse_split(in, n, at, &cut);
        ck_assert_msg(strcmp(cut.data ? cut.data : "", want) == 0, "split at %zu: %s", at,
                      cut.data ? cut.data : "");
    }
    bytes = parse(in, n, 1, 1 << 16, NULL);
    ck_assert_str_eq(bytes, want);
    buf_release(&cut);
    free(whole);
    free(bytes);
}

START_TEST(test_lark_stream)
{
    long retry = 0;
    const char *in = "retry: 3000\n\nevent: hello\ndata: {}\n\n"
                     "id: 1\nevent: message\ndata: {\"seq\":1,\"type\":\"message\"}\n\n"
                     "event: ping\ndata: {}\n\n"
                     "id: 2\nevent: receipt\ndata: {\"seq\":2}\n\n";
    char *out;
    check(in, "hello||0|{}\n"
              "message|1|1|{\"seq\":1,\"type\":\"message\"}\n"
              "ping|1|0|{}\n"
              "receipt|2|1|{\"seq\":2}\n");
    out = parse(in, strlen(in), 0, 1 << 16, &retry);
    ck_assert_int_eq(retry, 3000);
    free(out);
}
END_TEST

START_TEST(test_nchan_stream)
{
    check(": hi\n\nid: 1796679159:0\ndata: {\"a\":1}\n\nid: 1796679159:1\ndata: {\"a\":2}\n\n",
          "message|1796679159:0|1|{\"a\":1}\nmessage|1796679159:1|1|{\"a\":2}\n");
}
END_TEST

START_TEST(test_multiline_data)
{
    check("data: a\ndata: b\ndata\ndata:c\ndata:  two\n\n", "message||0|a\nb\n\nc\n two\n");
}
END_TEST

START_TEST(test_line_ends)
{
    const char *want = "x|9|1|a\nb\nmessage|9|0|c\n";
    check("event: x\r\nid: 9\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", want);
    check("event: x\rid: 9\rdata: a\rdata: b\r\rdata: c\r\r", want);
    check("event: x\nid: 9\r\ndata: a\rdata: b\n\r\ndata: c\r\r", want);
}
END_TEST

START_TEST(test_comments_and_unknown_fields)
{
    check(": keep-alive\n\n:\ndata: x\n: inside\nfoo: bar\nretry: soon\n\n", "message||0|x\n");
}
END_TEST

START_TEST(test_event_without_data_is_not_dispatched)
{
    /* ...and its type does not leak into the next event. */
    check("event: lonely\nid: 3\n\ndata: y\n\n", "message|3|0|y\n");
    /* An event still open when the stream ends is dropped. */
    check("data: complete\n\ndata: cut", "message||0|complete\n");
}
END_TEST

START_TEST(test_id_rules)
{
    /* The last event id outlives its event; "id" alone empties it; an id
     * with a NUL is ignored. */
    const char in[] = "id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 7\0x\ndata: d\n\n";
    char *out = parse(in, sizeof(in) - 1, 0, 1 << 16, NULL);
    ck_assert_str_eq(out, "message|5|1|a\nmessage|5|0|b\nmessage||1|c\nmessage||0|d\n");
    free(out);
}
END_TEST

START_TEST(test_retry_rules)
{
    long retry = 0;
    const char *in = "retry: 1500\nretry: 12a\nretry:\nretry: -5\n\n";
    char *out = parse(in, strlen(in), 0, 1 << 16, &retry);
    ck_assert_int_eq(retry, 1500);
    free(out);
    out = parse("data: x\n\n", 9, 0, 1 << 16, &retry);
    ck_assert_int_eq(retry, -1);
    free(out);
}
END_TEST

START_TEST(test_limits)
{
    struct sse_parser p;
    struct seen s = {.stop_after = 0};
    char line[100];
    buf_init(&s.text, 1 << 16);
    /* A line over max, whole or in pieces. */
    sse_init(&p, 64, on_event, &s);
    memset(line, 'a', sizeof(line));
    ck_assert_int_eq(sse_feed(&p, "data: ", 6), 0);
    ck_assert_int_eq(sse_feed(&p, line, sizeof(line)), LARK_ETOOLARGE);
    sse_restart(&p);
    /* The same line whole in one read, even a comment nobody would keep. */
    line[0] = ':';
    line[sizeof(line) - 1] = '\n';
    ck_assert_int_eq(sse_feed(&p, line, sizeof(line)), LARK_ETOOLARGE);
    sse_restart(&p);
    ck_assert_int_eq(sse_feed(&p, "data: ok\n\n", 10), 0);
    ck_assert_str_eq(s.text.data, "message||0|ok\n");
    /* Data lines that together pass max. */
    for (int i = 0; i < 20 && sse_feed(&p, "data: 0123456789\n", 17) == 0; i++)
        ck_assert_int_lt(i, 6);
    sse_release(&p);
    buf_release(&s.text);
}
END_TEST

START_TEST(test_callback_stops_feeding)
{
    struct sse_parser p;
    struct seen s = {.stop_after = 1};
    buf_init(&s.text, 1 << 16);
    sse_init(&p, 1024, on_event, &s);
    ck_assert_int_eq(sse_feed(&p, "data: 1\n\ndata: 2\n\n", 18), 7);
    ck_assert_int_eq(s.count, 1);
    /* A reconnection: the partial state goes, the last id stays. */
    ck_assert_int_eq(sse_feed(&p, "id: 4\ndata: half", 16), 0);
    sse_restart(&p);
    s.stop_after = 0;
    ck_assert_int_eq(sse_feed(&p, "\n\ndata: 3\n\n", 11), 0);
    ck_assert_str_eq(s.text.data, "message||0|1\nmessage|4|0|3\n");
    sse_release(&p);
    buf_release(&s.text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bench_sse");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_lark_stream);
    tcase_add_test(tc, test_nchan_stream);
    tcase_add_test(tc, test_multiline_data);
    tcase_add_test(tc, test_line_ends);
    tcase_add_test(tc, test_comments_and_unknown_fields);
    tcase_add_test(tc, test_event_without_data_is_not_dispatched);
    tcase_add_test(tc, test_id_rules);
    tcase_add_test(tc, test_retry_rules);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_callback_stops_feeding);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
