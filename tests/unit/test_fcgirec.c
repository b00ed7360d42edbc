/*
 * test_fcgirec.c - fcgi/fcgirec: the FastCGI records the hub writes
 * (FastCGI 1.0, sections 3.3 and 5.5).
 *
 * The writer must split STDOUT at 65535 content bytes, pad every record to
 * a multiple of 8, and end a response with an empty STDOUT then
 * END_REQUEST; what it writes must parse back to the same bytes.
 */
#include "fcgi/fcgirec.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parse every record in b; STDOUT content concatenated into out (which
 * holds cap bytes). Returns the number of records; asserts the stream is
 * whole and well-formed. *ended: an END_REQUEST was the last record. */
static int parse_all(const struct buf *b, uint16_t id, uint8_t *out, size_t cap, size_t *outlen,
                     uint32_t *app_status, int *ended)
{
    const uint8_t *p = (const uint8_t *)b->data;
    size_t left = b->len;
    int n = 0, empty_stdout = 0;

    *outlen = 0;
    *ended = 0;
    while (left) {
        struct fcgirec rec;
        long used = fcgirec_parse(p, left, &rec);
        ck_assert_int_gt(used, 0);
        ck_assert_int_eq(used % 8, 0); /* padded to 8 */
        ck_assert_int_eq(rec.version, FCGIREC_VERSION);
        ck_assert_uint_eq(rec.id, id);
        ck_assert_int_eq(*ended, 0); /* nothing after END_REQUEST */
        if (rec.type == FCGIREC_STDOUT) {
            ck_assert_int_eq(empty_stdout, 0);
            if (rec.content_len == 0)
                empty_stdout = 1;
            ck_assert_uint_le(*outlen + rec.content_len, cap);
            memcpy(out + *outlen, rec.content, rec.content_len);
            *outlen += rec.content_len;
            for (int i = 0; i < rec.padding_len; i++)
                ck_assert_int_eq(rec.content[rec.content_len + i], 0);
        } else {
            ck_assert_int_eq(rec.type, FCGIREC_END_REQUEST);
            ck_assert_int_eq(empty_stdout, 1); /* the stream was closed first */
            ck_assert_uint_eq(rec.content_len, 8);
            *app_status = (uint32_t)rec.content[0] << 24 | (uint32_t)rec.content[1] << 16 |
                          (uint32_t)rec.content[2] << 8 | rec.content[3];
            ck_assert_int_eq(rec.content[4], 0); /* FCGI_REQUEST_COMPLETE */
            *ended = 1;
        }
        p += used;
        left -= (size_t)used;
        n++;
    }
    return n;
}

START_TEST(test_stdout_small)
{
    static const uint8_t want[] = {1, 6, 0x12, 0x34, 0, 5, 3, 0, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
    struct buf b;

    buf_init(&b, 1024);
    ck_assert_int_eq(fcgirec_stdout(&b, 0x1234, "hello", 5), 0);
    ck_assert_uint_eq(b.len, sizeof(want));
    ck_assert_mem_eq(b.data, want, sizeof(want));
    buf_release(&b);
}
END_TEST

START_TEST(test_stdout_empty_writes_nothing)
{
    struct buf b;
    buf_init(&b, 1024);
    /* An empty STDOUT record would end the stream. */
    ck_assert_int_eq(fcgirec_stdout(&b, 1, "", 0), 0);
    ck_assert_uint_eq(b.len, 0);
    buf_release(&b);
}
END_TEST

START_TEST(test_padding)
{
    struct buf b;
    uint8_t data[64];

    memset(data, 0xab, sizeof(data));
    buf_init(&b, 4096);
    for (size_t len = 1; len <= 17; len++) {
        struct fcgirec rec;
        buf_reset(&b);
        ck_assert_int_eq(fcgirec_stdout(&b, 7, data, len), 0);
        ck_assert_uint_eq(b.len % 8, 0);
        ck_assert_uint_eq(b.len, 8 + len + (8 - len % 8) % 8);
        ck_assert_int_eq(fcgirec_parse((const uint8_t *)b.data, b.len, &rec), (long)b.len);
        ck_assert_uint_eq(rec.content_len, len);
        ck_assert_uint_eq(rec.padding_len, (8 - len % 8) % 8);
    }
    buf_release(&b);
}
END_TEST

/* Write len bytes of a pattern, parse back, compare, count records. */
static int round_trip(size_t len, uint16_t id)
{
    struct buf b;
    uint8_t *data = xmalloc(len + 1);
    uint8_t *back = xmalloc(len + 1);
    size_t got = 0;
    uint32_t status = 0;
    int ended, n;

    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    buf_init(&b, len + len / 1000 + 4096);
    ck_assert_int_eq(fcgirec_stdout(&b, id, data, len), 0);
    ck_assert_int_eq(fcgirec_end(&b, id, 0xdeadbeef), 0);
    n = parse_all(&b, id, back, len + 1, &got, &status, &ended);
    ck_assert_uint_eq(got, len);
    ck_assert_int_eq(memcmp(back, data, len), 0);
    ck_assert_int_eq(ended, 1);
    ck_assert_uint_eq(status, 0xdeadbeef);
    buf_release(&b);
    free(data);
    free(back);
    return n - 2; /* STDOUT records that carried data */
}

START_TEST(test_split_at_65535)
{
    ck_assert_int_eq(round_trip(1, 1), 1);
    ck_assert_int_eq(round_trip(65534, 1), 1);
    ck_assert_int_eq(round_trip(65535, 1), 1);
    ck_assert_int_eq(round_trip(65536, 2), 2);
    ck_assert_int_eq(round_trip(2 * 65535, 3), 2);
    ck_assert_int_eq(round_trip(2 * 65535 + 1, 0xffff), 3);
    ck_assert_int_eq(round_trip(200000, 0), 4);
}
END_TEST

START_TEST(test_split_record_sizes)
{
    struct buf b;
    uint8_t *data = xcalloc(1, 65536);
    struct fcgirec rec;
    long used;

    buf_init(&b, 1 << 20);
    ck_assert_int_eq(fcgirec_stdout(&b, 9, data, 65536), 0);
    used = fcgirec_parse((const uint8_t *)b.data, b.len, &rec);
    ck_assert_uint_eq(rec.content_len, 65535);
    ck_assert_uint_eq(rec.padding_len, 1);
    ck_assert_int_eq(used, 8 + 65535 + 1);
    used = fcgirec_parse((const uint8_t *)b.data + used, b.len - (size_t)used, &rec);
    ck_assert_uint_eq(rec.content_len, 1);
    ck_assert_uint_eq(rec.padding_len, 7);
    ck_assert_int_eq(used, 16);
    ck_assert_uint_eq(b.len, 65544 + 16);
    buf_release(&b);
    free(data);
}
END_TEST

START_TEST(test_end_records)
{
    static const uint8_t want[FCGIREC_END_LEN] = {
        1,    6,    0,    42,   0, 0, 0, 0, /* empty STDOUT */
        1,    3,    0,    42,   0, 8, 0, 0, /* END_REQUEST, 8 bytes */
        0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, /* appStatus, COMPLETE */
    };
    struct buf b;

    buf_init(&b, 64);
    ck_assert_int_eq(fcgirec_end(&b, 42, 0x01020304), 0);
    ck_assert_uint_eq(b.len, FCGIREC_END_LEN);
    ck_assert_mem_eq(b.data, want, sizeof(want));
    buf_release(&b);
}
END_TEST

START_TEST(test_parse_partial_and_bad)
{
    struct buf b;
    struct fcgirec rec;
    const uint8_t *d;
    uint8_t bad[8] = {2, 6, 0, 1, 0, 0, 0, 0};

    buf_init(&b, 1024);
    fcgirec_stdout(&b, 5, "0123456789", 10);
    d = (const uint8_t *)b.data;
    /* Every proper prefix asks for more bytes. */
    for (size_t n = 0; n < b.len; n++)
        ck_assert_int_eq(fcgirec_parse(d, n, &rec), 0);
    ck_assert_int_eq(fcgirec_parse(d, b.len, &rec), (long)b.len);
    ck_assert_mem_eq(rec.content, "0123456789", 10);
    /* Only version 1 is FastCGI 1.0. */
    ck_assert_int_eq(fcgirec_parse(bad, sizeof(bad), &rec), -1);
    bad[0] = 0;
    ck_assert_int_eq(fcgirec_parse(bad, sizeof(bad), &rec), -1);
    /* A header that promises more than there is: more bytes needed. */
    {
        uint8_t big[8] = {1, 6, 0, 1, 0xff, 0xff, 0xff, 0};
        ck_assert_int_eq(fcgirec_parse(big, sizeof(big), &rec), 0);
    }
    buf_release(&b);
}
END_TEST

START_TEST(test_full_buffer)
{
    struct buf b;
    uint8_t data[300];
    size_t before;

    memset(data, 'x', sizeof(data));
    /* Too small for the one record: refused, nothing written. */
    buf_init(&b, 50);
    ck_assert_int_eq(fcgirec_stdout(&b, 1, data, 100), LARK_ETOOLARGE);
    ck_assert_uint_eq(b.len, 0);
    /* Exactly enough: 8 + 40 = 48, plus nothing else. */
    ck_assert_int_eq(fcgirec_stdout(&b, 1, data, 40), 0);
    ck_assert_uint_eq(b.len, 48);
    /* 2 bytes left: not even the end records fit; nothing written. */
    ck_assert_int_eq(fcgirec_end(&b, 1, 0), LARK_ETOOLARGE);
    ck_assert_uint_eq(b.len, 48);
    ck_assert_int_eq(fcgirec_stdout(&b, 1, data, 1), LARK_ETOOLARGE);
    ck_assert_uint_eq(b.len, 48);
    buf_release(&b);

    /* The end records need exactly FCGIREC_END_LEN bytes. */
    buf_init(&b, FCGIREC_END_LEN);
    ck_assert_int_eq(fcgirec_end(&b, 1, 0), 0);
    ck_assert_uint_eq(b.len, FCGIREC_END_LEN);
    buf_release(&b);
    buf_init(&b, FCGIREC_END_LEN - 1);
    ck_assert_int_eq(fcgirec_end(&b, 1, 0), LARK_ETOOLARGE);
    ck_assert_uint_eq(b.len, 0);
    buf_release(&b);

    /* Room for the first record of a split write but not the second:
     * LARK_ETOOLARGE, and what was written is whole records only. */
    {
        uint8_t *big = xcalloc(1, 70000);
        buf_init(&b, 8 + 65535 + 1 + 8);
        before = b.len;
        ck_assert_int_eq(fcgirec_stdout(&b, 1, big, 70000), LARK_ETOOLARGE);
        ck_assert_uint_eq(b.len - before, 8 + 65535 + 1);
        ck_assert_uint_eq(b.len % 8, 0);
        buf_release(&b);
        free(big);
    }
}
END_TEST

static Suite *fcgirec_suite(void)
{
    Suite *s = suite_create("fcgirec");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_stdout_small);
    tcase_add_test(tc, test_stdout_empty_writes_nothing);
    tcase_add_test(tc, test_padding);
    tcase_add_test(tc, test_split_at_65535);
    tcase_add_test(tc, test_split_record_sizes);
    tcase_add_test(tc, test_end_records);
    tcase_add_test(tc, test_parse_partial_and_bad);
    tcase_add_test(tc, test_full_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(fcgirec_suite());
}
