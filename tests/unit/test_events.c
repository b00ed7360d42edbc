/*
 * test_events.c - fcgi/events: inbox events as SSE frames, long-poll
 * answers and WebSocket lines (API.md "The inbox").
 *
 * SSE (WHATWG HTML "server-sent events"): each stored event is exactly
 * "id: N\nevent: T\ndata: JSON\n\n". A long-poll answer is exactly
 * {"events":[...],"next":N}. All stop at a byte budget, always taking at
 * least one event and never leaving half a frame. The envelope is
 * assembled around data rendered once (evdata.h): it must be byte for byte
 * what json_dump makes of the envelope object, ASCII-only for WebSocket.
 */
#include "fcgi/events.h"

#include "core/buf.h"
#include "core/evdata.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/store_impl.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    ck_assert_msg(v != NULL, "bad test JSON: %s", jerr.text);
    return v;
}

/* n envelopes with seqs first.., each with a body of body_len 'x'. */
static json_t *envelopes(uint64_t first, size_t n, size_t body_len)
{
    json_t *arr = json_arr();
    char *body = xmalloc(body_len + 1);

    memset(body, 'x', body_len);
    body[body_len] = '\0';
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_obj();
        json_t *data = json_obj();
        json_put(ev, "seq", json_integer((json_int_t)(first + i)));
        json_put(ev, "type", json_string("message"));
        json_put(data, "body", json_string(body));
        json_put(ev, "data", data);
        json_push(arr, ev);
    }
    free(body);
    return arr;
}

/* The events of a JSON array of envelopes, as the store hands them over:
 * seq and data rendered once (missing type: "message"). */
static struct store_event *to_events(json_t *arr, size_t *n)
{
    struct store_event *v = xcalloc(json_array_size(arr) + 1, sizeof(*v));
    size_t i;
    json_t *ev;

    json_array_foreach (arr, i, ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        size_t len;
        char *text = json_dump(json_object_get(ev, "data"), 0, &len);
        v[i].seq = (uint64_t)json_integer_value(json_object_get(ev, "seq"));
        v[i].data = evdata_new(type ? type : "message", text, len);
        free(text);
    }
    *n = json_array_size(arr);
    return v;
}

static size_t count_str(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++)
        if (memcmp(hay + i, needle, nl) == 0)
            n++;
    return n;
}

START_TEST(test_sse_frame_exact)
{
    json_t *evs = load("[{\"seq\":7,\"type\":\"message\",\"data\":{\"body\":\"hi\"}}]");
    size_t nv;
    struct store_event *v = to_events(evs, &nv);
    struct buf out;
    uint64_t last = 0;

    buf_init(&out, 1 << 20);
    ck_assert_uint_eq(events_sse(v, nv, EVENTS_BUDGET, &out, &last), 1);
    ck_assert_str_eq(out.data,
                     "id: 7\nevent: message\n"
                     "data: {\"seq\":7,\"type\":\"message\",\"data\":{\"body\":\"hi\"}}\n\n");
    ck_assert_uint_eq(last, 7);
    buf_release(&out);
    store_events_free(v, nv);
    json_decref(evs);
}
END_TEST

START_TEST(test_sse_several)
{
    json_t *evs = load("[{\"seq\":1,\"type\":\"message\",\"data\":{}},"
                       "{\"seq\":2,\"type\":\"receipt\",\"data\":{\"up_to\":1}},"
                       "{\"seq\":18446744073709551,\"data\":{}}]");
    size_t nv;
    struct store_event *v = to_events(evs, &nv);
    struct buf out;
    uint64_t last = 0;

    buf_init(&out, 1 << 20);
    buf_puts(&out, "retry: 2000\n\n"); /* frames append after what is there */
    ck_assert_uint_eq(events_sse(v, nv, EVENTS_BUDGET, &out, &last), 3);
    ck_assert_str_eq(out.data, "retry: 2000\n\n"
                               "id: 1\nevent: message\ndata: {\"seq\":1,\"type\":\"message\","
                               "\"data\":{}}\n\n"
                               "id: 2\nevent: receipt\ndata: {\"seq\":2,\"type\":\"receipt\","
                               "\"data\":{\"up_to\":1}}\n\n"
                               "id: 18446744073709551\nevent: message\n"
                               "data: {\"seq\":18446744073709551,\"type\":\"message\","
                               "\"data\":{}}\n\n");
    ck_assert_uint_eq(last, 18446744073709551ULL);
    buf_release(&out);
    store_events_free(v, nv);
    json_decref(evs);
}
END_TEST

START_TEST(test_sse_empty)
{
    struct buf out;
    uint64_t last = 99;

    buf_init(&out, 1024);
    ck_assert_uint_eq(events_sse(NULL, 0, EVENTS_BUDGET, &out, &last), 0);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(last, 99);
    buf_release(&out);
}
END_TEST

START_TEST(test_sse_one_data_line)
{
    /* Newlines and carriage returns in a message never reach the wire raw:
     * one data: line per event, as the frame format needs. */
    json_t *evs = load("[{\"seq\":3,\"type\":\"message\",\"data\":"
                       "{\"body\":\"a\\nb\\r\\nc\\rd\\u2028e\",\"meta\":{\"k\":\"\\n\"}}}]");
    size_t nv;
    struct store_event *v = to_events(evs, &nv);
    struct buf out;
    uint64_t last = 0;

    buf_init(&out, 1 << 20);
    ck_assert_uint_eq(events_sse(v, nv, EVENTS_BUDGET, &out, &last), 1);
    ck_assert_uint_eq(count_str(out.data, out.len, "\n"), 4);
    ck_assert_ptr_null(memchr(out.data, '\r', out.len));
    ck_assert_uint_eq(count_str(out.data, out.len, "\ndata: "), 1);
    buf_release(&out);
    store_events_free(v, nv);
    json_decref(evs);
}
END_TEST

/* Length of one frame of envelopes(first, 1, body_len). */
static size_t frame_len(uint64_t seq, size_t body_len)
{
    json_t *one = envelopes(seq, 1, body_len);
    size_t nv;
    struct store_event *v = to_events(one, &nv);
    struct buf out;
    uint64_t last = 0;
    size_t n;

    buf_init(&out, 1 << 20);
    events_sse(v, nv, EVENTS_BUDGET, &out, &last);
    n = out.len;
    buf_release(&out);
    store_events_free(v, nv);
    json_decref(one);
    return n;
}

START_TEST(test_sse_budget)
{
    /* Ten events of identical frame size F (seqs 10..19 have equal width):
     * a budget B takes max(1, B / F) of them, and never more bytes than B
     * unless a single event is bigger than B on its own. */
    size_t f = frame_len(10, 100), nv;
    json_t *evs = envelopes(10, 10, 100);
    struct store_event *v = to_events(evs, &nv);

    for (size_t b = 0; b <= 11 * f; b++) {
        struct buf out;
        uint64_t last = 0;
        size_t want = b / f < 1 ? 1 : b / f > 10 ? 10 : b / f;
        size_t n;

        buf_init(&out, 1 << 20);
        buf_puts(&out, ": prelude\n\n");
        n = events_sse(v, nv, b, &out, &last);
        ck_assert_msg(n == want, "budget %zu (frame %zu): %zu events, want %zu", b, f, n, want);
        ck_assert_uint_eq(out.len - 11, n * f);
        ck_assert_uint_eq(last, 10 + n - 1);
        if (n > 1)
            ck_assert_uint_le(out.len - 11, b);
        ck_assert_int_eq(memcmp(out.data + out.len - 2, "\n\n", 2), 0);
        buf_release(&out);
    }
    store_events_free(v, nv);
    json_decref(evs);
}
END_TEST

START_TEST(test_sse_buffer_full)
{
    size_t f = frame_len(10, 50), nv;
    json_t *evs = envelopes(10, 5, 50);
    struct store_event *v = to_events(evs, &nv);
    struct buf out;
    uint64_t last = 5;

    /* The buffer fits two and a half frames: two whole frames go out. */
    buf_init(&out, 2 * f + f / 2);
    ck_assert_uint_eq(events_sse(v, nv, EVENTS_BUDGET, &out, &last), 2);
    ck_assert_uint_eq(out.len, 2 * f);
    ck_assert_uint_eq(last, 11);
    ck_assert_int_eq(memcmp(out.data + out.len - 2, "\n\n", 2), 0);
    buf_release(&out);

    /* Not even one fits: nothing written, cursor unchanged. */
    last = 5;
    buf_init(&out, f - 1);
    ck_assert_uint_eq(events_sse(v, nv, EVENTS_BUDGET, &out, &last), 0);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(last, 5);
    buf_release(&out);
    store_events_free(v, nv);
    json_decref(evs);
}
END_TEST

/* A whole long-poll answer of stored events, as the workers make it. */
static size_t poll_answer(json_t *evs, uint64_t cursor, size_t budget, struct buf *out)
{
    size_t nv = 0;
    struct store_event *v = evs ? to_events(evs, &nv) : NULL;
    struct events_poll p;
    size_t n;

    events_poll_begin(&p, out, cursor, budget);
    events_poll_stored(&p, v, nv);
    n = events_poll_end(&p);
    store_events_free(v, nv);
    return n;
}

START_TEST(test_poll_exact)
{
    json_t *evs = load("[{\"seq\":4,\"type\":\"message\",\"data\":{\"body\":\"a\"}},"
                       "{\"seq\":5,\"type\":\"message\",\"data\":{\"body\":\"b\"}}]");
    json_t *none = json_arr();
    struct buf out;

    buf_init(&out, 1 << 20);
    ck_assert_uint_eq(poll_answer(evs, 3, EVENTS_BUDGET, &out), 2);
    ck_assert_str_eq(out.data,
                     "{\"events\":[{\"seq\":4,\"type\":\"message\",\"data\":{\"body\":"
                     "\"a\"}},{\"seq\":5,\"type\":\"message\",\"data\":{\"body\":\"b\"}}],"
                     "\"next\":5}");
    buf_reset(&out);
    /* No events: next is the cursor the client sent. */
    ck_assert_uint_eq(poll_answer(none, 17, EVENTS_BUDGET, &out), 0);
    ck_assert_str_eq(out.data, "{\"events\":[],\"next\":17}");
    buf_release(&out);
    json_decref(evs);
    json_decref(none);
}
END_TEST

START_TEST(test_poll_budget)
{
    json_t *evs = envelopes(100, 8, 200);
    json_t *one = json_array_get(evs, 0);
    char *text = json_dump(one, 0, NULL);
    size_t l = strlen(text);

    free(text);
    for (size_t b = 0; b <= 9 * (l + 1); b++) {
        struct buf out;
        json_t *parsed;
        json_error_t jerr;
        /* n events take n * l + (n - 1) bytes between the brackets */
        size_t fit = (b + 1) / (l + 1);
        size_t want = fit < 1 ? 1 : fit > 8 ? 8 : fit;
        size_t n;

        buf_init(&out, 1 << 20);
        n = poll_answer(evs, 99, b, &out);
        ck_assert_msg(n == want, "budget %zu: %zu events, want %zu", b, n, want);
        parsed = json_loadb(out.data, out.len, 0, &jerr);
        ck_assert_msg(parsed != NULL, "not JSON: %s", jerr.text);
        ck_assert_uint_eq(json_array_size(json_object_get(parsed, "events")), n);
        ck_assert_int_eq(json_integer_value(json_object_get(parsed, "next")), 100 + (int)n - 1);
        for (size_t i = 0; i < n; i++)
            ck_assert(json_equal(json_array_get(json_object_get(parsed, "events"), i),
                                 json_array_get(evs, i)));
        json_decref(parsed);
        buf_release(&out);
    }
    json_decref(evs);
}
END_TEST

START_TEST(test_poll_buffer_full)
{
    /* However small the buffer, the answer is valid JSON holding whole
     * events only: the closing ],"next":N} must always fit. */
    json_t *evs = envelopes(100, 4, 60);
    char *text = json_dump(json_array_get(evs, 0), 0, NULL);
    size_t l = strlen(text);
    const size_t head = strlen("{\"events\":["), tail = strlen("],\"next\":}") + 20;

    free(text);
    for (size_t max = head + tail; max <= head + 4 * (l + 1) + tail + 8; max++) {
        struct buf out;
        json_t *parsed;
        json_error_t jerr;
        size_t n;

        buf_init(&out, max);
        n = poll_answer(evs, 99, EVENTS_BUDGET, &out);
        parsed = json_loadb(out.data, out.len, 0, &jerr);
        ck_assert_msg(parsed != NULL, "max %zu: not JSON: %s", max, out.data);
        ck_assert_uint_eq(json_array_size(json_object_get(parsed, "events")), n);
        ck_assert_int_eq(json_integer_value(json_object_get(parsed, "next")),
                         n ? 100 + (int)n - 1 : 99);
        /* As many events as leave room for the longest closing part. */
        ck_assert_uint_ge(head + n * (l + 1) + tail + l + 1, max);
        json_decref(parsed);
        buf_release(&out);
    }
    json_decref(evs);
}
END_TEST

START_TEST(test_envelope_is_json_dump)
{
    /* Byte for byte what json_dump makes of store_envelope - the old path
     * (read back, rendered again) and the new one (rendered once) agree -
     * for escapes, UTF-8, numbers, nesting and the ASCII-only form. */
    static const char *const datas[] = {
        "{}",
        "{\"body\":\"hi\"}",
        "{\"body\":\"\\u00e9t\\u00e9 \\u2603 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n\\t\\u0001\"}",
        "{\"a\":[1,2.5,-3,true,false,null],\"b\":{\"c\":{\"d\":[]}},\"e\":1e300}",
        "{\"conversation_id\":\"c_1\",\"user\":\"u.x@y-z\",\"status\":\"read\",\"up_to\":9}",
    };
    for (size_t i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
        json_t *data = load(datas[i]);
        json_t *env = store_envelope(42, "receipt", json_incref(data));
        size_t len;
        char *text = json_dump(data, 0, &len);
        struct evdata *d = evdata_new("receipt", text, len);
        char *want = json_dump(env, 0, NULL), *want_ascii = json_dump(env, 1, NULL);
        struct buf out;

        buf_init(&out, 1 << 20);
        ck_assert_int_eq(events_envelope(&out, 42, d, 0), 0);
        ck_assert_str_eq(out.data, want);
        buf_reset(&out);
        ck_assert_int_eq(events_envelope(&out, 42, d, 1), 0);
        ck_assert_str_eq(out.data, want_ascii);
        for (size_t k = 0; k < out.len; k++)
            ck_assert_uint_lt((unsigned char)out.data[k], 0x80);
        buf_release(&out);
        evdata_unref(d);
        free(text);
        free(want);
        free(want_ascii);
        json_decref(env);
        json_decref(data);
    }
}
END_TEST

START_TEST(test_lines)
{
    /* WebSocket: one ASCII envelope per line (API.md) */
    json_t *evs = load("[{\"seq\":1,\"type\":\"message\",\"data\":{\"body\":\"\\u00e9\"}},"
                       "{\"seq\":2,\"type\":\"receipt\",\"data\":{}}]");
    size_t nv;
    struct store_event *v = to_events(evs, &nv);
    struct buf out;
    uint64_t last = 0;

    buf_init(&out, 1 << 20);
    ck_assert_uint_eq(events_lines(v, nv, EVENTS_BUDGET, &out, &last), 2);
    ck_assert_str_eq(out.data, "{\"seq\":1,\"type\":\"message\",\"data\":{\"body\":\"\\u00E9\"}}\n"
                               "{\"seq\":2,\"type\":\"receipt\",\"data\":{}}\n");
    ck_assert_uint_eq(last, 2);
    buf_release(&out);
    store_events_free(v, nv);
    json_decref(evs);
}
END_TEST

START_TEST(test_poll_ephemeral_then_stored)
{
    /* kept ephemeral events (no seq) first, then stored ones; next is the
     * last stored seq, or the cursor when there is none */
    json_t *evs = load("[{\"seq\":8,\"type\":\"message\",\"data\":{}}]");
    size_t nv;
    struct store_event *v = to_events(evs, &nv);
    const char *typing = "{\"type\":\"typing\",\"data\":{\"user\":\"a\"}}";
    struct events_poll p;
    struct buf out;

    buf_init(&out, 1 << 20);
    events_poll_begin(&p, &out, 7, EVENTS_BUDGET);
    ck_assert_int_eq(events_poll_raw(&p, typing, strlen(typing)), 0);
    ck_assert_uint_eq(events_poll_stored(&p, v, nv), 1);
    ck_assert_uint_eq(events_poll_end(&p), 2);
    ck_assert_str_eq(out.data, "{\"events\":[{\"type\":\"typing\",\"data\":{\"user\":\"a\"}},"
                               "{\"seq\":8,\"type\":\"message\",\"data\":{}}],\"next\":8}");
    buf_reset(&out);
    events_poll_begin(&p, &out, 7, EVENTS_BUDGET);
    ck_assert_int_eq(events_poll_raw(&p, typing, strlen(typing)), 0);
    ck_assert_uint_eq(events_poll_end(&p), 1);
    ck_assert_str_eq(out.data,
                     "{\"events\":[{\"type\":\"typing\",\"data\":{\"user\":\"a\"}}],\"next\":7}");
    buf_release(&out);
    store_events_free(v, nv);
    json_decref(evs);
}
END_TEST

static Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    TCase *sse = tcase_create("sse");
    TCase *poll = tcase_create("poll");

    tcase_add_test(sse, test_sse_frame_exact);
    tcase_add_test(sse, test_sse_several);
    tcase_add_test(sse, test_sse_empty);
    tcase_add_test(sse, test_sse_one_data_line);
    tcase_add_test(sse, test_sse_budget);
    tcase_add_test(sse, test_sse_buffer_full);
    tcase_add_test(poll, test_poll_exact);
    tcase_add_test(poll, test_poll_budget);
    tcase_add_test(poll, test_poll_buffer_full);
    tcase_add_test(poll, test_poll_ephemeral_then_stored);
    tcase_add_test(sse, test_envelope_is_json_dump);
    tcase_add_test(sse, test_lines);
    suite_add_tcase(s, sse);
    suite_add_tcase(s, poll);
    return s;
}

int main(void)
{
    return unit_run(events_suite());
}
