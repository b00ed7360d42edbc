/*
 * test_bench_ws.c - tools/larkbench/ws: larkbench's WebSocket frame codec
 * (RFC 6455 section 5): the examples of section 5.7 byte for byte, every
 * length form (7-bit, 16-bit, 64-bit) at its edges, masking, frames cut
 * at every byte, the rules a peer must keep, and fragmented messages.
 */
#include "tools/larkbench/ws.h"

#include "core/buf.h"
#include "core/err.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <string.h>

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d}; /* RFC 6455 5.7 */

/* Parse a whole frame from bytes; asserts it is complete, returns the size. */
static long parse_one(const void *p, size_t n, enum ws_from from, struct ws_frame *f)
{
    long got = ws_frame_parse(p, n, from, UINT64_MAX, f);
    ck_assert_int_gt(got, 0);
    return got;
}

START_TEST(test_rfc_examples)
{
    static const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f};
    static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct ws_frame f;
    struct buf out;
    uint8_t payload[5];

    ck_assert_int_eq(parse_one(hello, sizeof(hello), WS_FROM_SERVER, &f), 7);
    ck_assert_int_eq(f.fin, 1);
    ck_assert_int_eq(f.opcode, WS_OP_TEXT);
    ck_assert_int_eq(f.masked, 0);
    ck_assert_uint_eq(f.header_len, 2);
    ck_assert_uint_eq(f.payload_len, 5);
    ck_assert_mem_eq(f.payload, "Hello", 5);

    ck_assert_int_eq(parse_one(masked, sizeof(masked), WS_FROM_CLIENT, &f), 11);
    ck_assert_int_eq(f.masked, 1);
    ck_assert_mem_eq(f.mask, key, 4);
    memcpy(payload, f.payload, 5);
    ws_unmask(payload, 5, f.mask, 0);
    ck_assert_mem_eq(payload, "Hello", 5);

    ck_assert_int_eq(parse_one(frag, sizeof(frag), WS_FROM_SERVER, &f), 5);
    ck_assert_int_eq(f.fin, 0);
    ck_assert_int_eq(parse_one(frag + 5, 4, WS_FROM_SERVER, &f), 4);
    ck_assert_int_eq(f.fin, 1);
    ck_assert_int_eq(f.opcode, WS_OP_CONT);

    ck_assert_int_eq(parse_one(ping, sizeof(ping), WS_FROM_SERVER, &f), 7);
    ck_assert_int_eq(f.opcode, WS_OP_PING);

    /* The encoder writes the same bytes. */
    buf_init(&out, 1024);
    ck_assert_int_eq(ws_frame_put(&out, 1, WS_OP_TEXT, NULL, "Hello", 5), 0);
    ck_assert_uint_eq(out.len, sizeof(hello));
    ck_assert_mem_eq(out.data, hello, sizeof(hello));
    buf_reset(&out);
    ck_assert_int_eq(ws_frame_put(&out, 1, WS_OP_TEXT, key, "Hello", 5), 0);
    ck_assert_uint_eq(out.len, sizeof(masked));
    ck_assert_mem_eq(out.data, masked, sizeof(masked));
    buf_reset(&out);
    ck_assert_int_eq(ws_frame_put(&out, 0, WS_OP_TEXT, NULL, "Hel", 3), 0);
    ck_assert_int_eq(ws_frame_put(&out, 1, WS_OP_CONT, NULL, "lo", 2), 0);
    ck_assert_mem_eq(out.data, frag, sizeof(frag));
    buf_release(&out);
}
END_TEST

/* Round trip of an n-byte payload, masked or not: the header's length
 * form, the parse of the whole frame, and that every shorter prefix asks
 * for more bytes. */
static void round_trip(size_t n, int mask, size_t want_header)
{
    struct buf out;
    uint8_t *payload = malloc(n ? n : 1), *copy;
    struct ws_frame f;
    long got;
    ck_assert_ptr_nonnull(payload);
    for (size_t i = 0; i < n; i++)
        payload[i] = (uint8_t)(i * 31 + 7);
    buf_init(&out, n + WS_HEADER_MAX);
    ck_assert_int_eq(ws_frame_put(&out, 1, WS_OP_BINARY, mask ? key : NULL, payload, n), 0);
    ck_assert_uint_eq(out.len, want_header + n);
    if (want_header - (mask ? 4 : 0) == 2)
        ck_assert_uint_eq((uint8_t)out.data[1] & 0x7f, n);
    else
        ck_assert_uint_eq((uint8_t)out.data[1] & 0x7f,
                          want_header - (mask ? 4 : 0) == 4 ? 126 : 127);
    got = ws_frame_parse(out.data, out.len, mask ? WS_FROM_CLIENT : WS_FROM_SERVER, UINT64_MAX, &f);
    ck_assert_int_eq(got, (long)out.len);
    ck_assert_uint_eq(f.header_len, want_header);
    ck_assert_uint_eq(f.payload_len, n);
    copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, f.payload, n);
    if (mask) {
        /* Unmasking in two pieces is the same as in one. */
        ws_unmask(copy, n / 2, f.mask, 0);
        ws_unmask(copy + n / 2, n - n / 2, f.mask, n / 2);
    }
    if (n)
        ck_assert_mem_eq(copy, payload, n);
    /* Every prefix of the frame is "need more". */
    for (size_t cut = 0; cut < out.len; cut += cut < 32 || out.len - cut < 32 ? 1 : 997)
        ck_assert_int_eq(
            ws_frame_parse(out.data, cut, mask ? WS_FROM_CLIENT : WS_FROM_SERVER, UINT64_MAX, &f),
            0);
    free(copy);
    free(payload);
    buf_release(&out);
}

START_TEST(test_length_forms)
{
    static const struct {
        size_t n;
        size_t header; /* unmasked */
    } cases[] = {{0, 2},   {1, 2},     {125, 2},    {126, 4},
                 {127, 4}, {65535, 4}, {65536, 10}, {70000, 10}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        round_trip(cases[i].n, 0, cases[i].header);
        round_trip(cases[i].n, 1, cases[i].header + 4);
    }
}
END_TEST

START_TEST(test_length_bytes_big_endian)
{
    static const uint8_t f256[] = {0x82, 0x7e, 0x01, 0x00}; /* RFC 6455 5.7: 256 bytes */
    static const uint8_t f64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    struct ws_frame f;
    ck_assert_int_eq(ws_frame_parse(f256, sizeof(f256), WS_FROM_SERVER, UINT64_MAX, &f), 0);
    ck_assert_int_eq(ws_frame_parse(f64k, sizeof(f64k), WS_FROM_SERVER, UINT64_MAX, &f), 0);
    /* Too large is known from the header alone. */
    ck_assert_int_eq(ws_frame_parse(f256, sizeof(f256), WS_FROM_SERVER, 255, &f), LARK_ETOOLARGE);
    ck_assert_int_eq(ws_frame_parse(f64k, sizeof(f64k), WS_FROM_SERVER, 65535, &f), LARK_ETOOLARGE);
}
END_TEST

START_TEST(test_protocol_errors)
{
    static const struct {
        uint8_t b[14];
        size_t n;
        enum ws_from from;
    } bad[] = {
        {{0xc1, 0x00}, 2, WS_FROM_SERVER},                /* RSV1 */
        {{0xa1, 0x00}, 2, WS_FROM_SERVER},                /* RSV2 */
        {{0x83, 0x00}, 2, WS_FROM_SERVER},                /* reserved data opcode */
        {{0x8b, 0x00}, 2, WS_FROM_SERVER},                /* reserved control opcode */
        {{0x09, 0x00}, 2, WS_FROM_SERVER},                /* fragmented ping */
        {{0x89, 0x7e, 0x00, 0x7e}, 4, WS_FROM_SERVER},    /* control over 125 */
        {{0x81, 0x81, 1, 2, 3, 4, 0}, 7, WS_FROM_SERVER}, /* a server that masks */
        {{0x81, 0x01, 0x41}, 3, WS_FROM_CLIENT},          /* a client that does not */
        {{0x81, 0x7e, 0x00, 0x64}, 4, WS_FROM_SERVER},    /* 100 in the 16-bit form */
        {{0x81, 0x7f, 0, 0, 0, 0, 0, 0, 0x03, 0xe8}, 10, WS_FROM_SERVER}, /* 1000 in 64 bits */
        {{0x81, 0x7f, 0x80, 0, 0, 0, 0, 0x01, 0, 0}, 10, WS_FROM_SERVER}, /* top bit set */
    };
    struct ws_frame f;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(ws_frame_parse(bad[i].b, bad[i].n, bad[i].from, UINT64_MAX, &f) ==
                          LARK_EINVAL,
                      "case %zu accepted", i);
}
END_TEST

START_TEST(test_stream_cut_anywhere)
{
    /* Several frames back to back, of every kind, read in reads of every
     * size from 1 to the whole: the same frames come out. */
    struct buf stream, got, want;
    static const char big[300] = "0123456789";
    buf_init(&stream, 1 << 16);
    buf_init(&got, 1 << 16);
    buf_init(&want, 1 << 16);
    ck_assert_int_eq(ws_frame_put(&stream, 1, WS_OP_TEXT, NULL, "{\"type\":\"pong\"}\n", 16), 0);
    ck_assert_int_eq(ws_frame_put(&stream, 1, WS_OP_PING, NULL, "", 0), 0);
    ck_assert_int_eq(ws_frame_put(&stream, 0, WS_OP_TEXT, NULL, big, sizeof(big)), 0);
    ck_assert_int_eq(ws_frame_put(&stream, 1, WS_OP_CONT, NULL, "end", 3), 0);
    ck_assert_int_eq(ws_frame_put(&stream, 1, WS_OP_CLOSE, NULL, "\x03\xe8", 2), 0);
    for (size_t read = 1; read <= stream.len; read++) {
        struct buf pending;
        buf_init(&pending, 1 << 16);
        buf_reset(&got);
        for (size_t off = 0; off < stream.len;) { /* one read per pass */
            size_t len = read < stream.len - off ? read : stream.len - off;
            struct ws_frame f;
            long used;
            buf_append(&pending, stream.data + off, len);
            off += len;
            while ((used = ws_frame_parse(pending.data, pending.len, WS_FROM_SERVER, 1 << 16, &f)) >
                   0) {
                buf_printf(&got, "%d%d:%zu;", f.fin, f.opcode, (size_t)f.payload_len);
                buf_consume(&pending, (size_t)used);
            }
            ck_assert_int_eq(used, 0);
        }
        ck_assert_uint_eq(pending.len, 0);
        if (read == 1)
            buf_append(&want, got.data, got.len);
        else
            ck_assert_str_eq(got.data, want.data);
        buf_release(&pending);
    }
    ck_assert_str_eq(want.data, "11:16;19:0;01:300;10:3;18:2;");
    buf_release(&stream);
    buf_release(&got);
    buf_release(&want);
}
END_TEST

START_TEST(test_put_errors)
{
    struct buf out;
    char big[200] = {0};
    buf_init(&out, 16);
    ck_assert_int_eq(ws_frame_put(&out, 1, WS_OP_PING, NULL, big, 126), LARK_EINVAL);
    ck_assert_int_eq(ws_frame_put(&out, 0, WS_OP_CLOSE, NULL, "", 0), LARK_EINVAL);
    ck_assert_int_eq(ws_frame_put(&out, 1, 16, NULL, "", 0), LARK_EINVAL);
    ck_assert_int_eq(ws_frame_put(&out, 1, WS_OP_TEXT, key, "abc", 3), 0);
    ck_assert_uint_eq(out.len, 9);
    /* Over the buffer's max: nothing of the frame stays. */
    ck_assert_int_eq(ws_frame_put(&out, 1, WS_OP_TEXT, key, "abcdef", 6), LARK_ETOOLARGE);
    ck_assert_uint_eq(out.len, 9);
    buf_release(&out);
}
END_TEST

START_TEST(test_message_assembly)
{
    struct ws_msg m;
    ws_msg_init(&m, 16);
    /* One frame, one message. */
    ck_assert_int_eq(ws_msg_add(&m, 1, WS_OP_TEXT, "hello", 5), 1);
    ck_assert_int_eq(m.opcode, WS_OP_TEXT);
    ck_assert_str_eq(m.data.data, "hello");
    /* Three fragments (a ping between them goes elsewhere). */
    ck_assert_int_eq(ws_msg_add(&m, 0, WS_OP_BINARY, "ab", 2), 0);
    ck_assert_int_eq(ws_msg_add(&m, 0, WS_OP_CONT, "cd", 2), 0);
    ck_assert_int_eq(ws_msg_add(&m, 1, WS_OP_CONT, "ef", 2), 1);
    ck_assert_int_eq(m.opcode, WS_OP_BINARY);
    ck_assert_str_eq(m.data.data, "abcdef");
    /* Broken sequences. */
    ck_assert_int_eq(ws_msg_add(&m, 1, WS_OP_CONT, "x", 1), LARK_EINVAL);
    ck_assert_int_eq(ws_msg_add(&m, 0, WS_OP_TEXT, "x", 1), 0);
    ck_assert_int_eq(ws_msg_add(&m, 1, WS_OP_TEXT, "y", 1), LARK_EINVAL);
    ck_assert_int_eq(ws_msg_add(&m, 1, WS_OP_PING, "", 0), LARK_EINVAL);
    /* Past max, then a fresh start works. */
    ck_assert_int_eq(ws_msg_add(&m, 0, WS_OP_TEXT, "0123456789", 10), 0);
    ck_assert_int_eq(ws_msg_add(&m, 1, WS_OP_CONT, "0123456789", 10), LARK_ETOOLARGE);
    ck_assert_int_eq(ws_msg_add(&m, 1, WS_OP_TEXT, "ok", 2), 1);
    ck_assert_str_eq(m.data.data, "ok");
    ws_msg_release(&m);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bench_ws");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rfc_examples);
    tcase_add_test(tc, test_length_forms);
    tcase_add_test(tc, test_length_bytes_big_endian);
    tcase_add_test(tc, test_protocol_errors);
    tcase_add_test(tc, test_stream_cut_anywhere);
    tcase_add_test(tc, test_put_errors);
    tcase_add_test(tc, test_message_assembly);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
