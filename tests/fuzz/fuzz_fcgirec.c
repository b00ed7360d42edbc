/*
 * fuzz_fcgirec.c - libFuzzer target for the FastCGI records the hub writes.
 *
 * Input layout: id (2 bytes), appStatus (4), a repeat count (1), a buffer
 * cap selector (1), then the body. The body, repeated 1..64 times so that
 * responses past 65535 bytes are common, is written with fcgirec_stdout
 * and fcgirec_end and parsed back with fcgirec_parse, which must give:
 *   - records of this id only, each padded to a multiple of 8 with zeros
 *     and carrying at most 65535 bytes;
 *   - the body's exact bytes, then one empty STDOUT, then one
 *     END_REQUEST with the appStatus and FCGI_REQUEST_COMPLETE;
 *   - with a small buffer, LARK_ETOOLARGE and whole records only, holding
 *     a prefix of the body.
 * Separately, fcgirec_parse runs over the raw input as a record stream and
 * must never claim bytes it was not given.
 */
#include "core/buf.h"
#include "core/err.h"
#include "fcgi/fcgirec.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEAD 8

/*
 * Parse the whole of b. Concatenated STDOUT content goes to out (cap
 * bytes). Returns 1 if the stream ended with empty STDOUT + END_REQUEST.
 */
static int parse_back(const struct buf *b, uint16_t id, uint8_t *out, size_t cap, size_t *outlen,
                      uint32_t *status)
{
    const uint8_t *p = (const uint8_t *)b->data;
    size_t left = b->len;
    int closed = 0, ended = 0;

    *outlen = 0;
    while (left) {
        struct fcgirec rec;
        long used = fcgirec_parse(p, left, &rec);
        CHECK(used > 0 && (size_t)used <= left);
        CHECK(used % 8 == 0 && rec.padding_len < 8);
        CHECK((size_t)used == HEAD + (size_t)rec.content_len + rec.padding_len);
        CHECK(rec.version == FCGIREC_VERSION && rec.id == id && !ended);
        CHECK(rec.content == p + HEAD);
        for (int i = 0; i < rec.padding_len; i++)
            CHECK(rec.content[rec.content_len + i] == 0);
        if (rec.type == FCGIREC_STDOUT) {
            CHECK(!closed);
            if (rec.content_len == 0)
                closed = 1;
            CHECK(*outlen + rec.content_len <= cap);
            memcpy(out + *outlen, rec.content, rec.content_len);
            *outlen += rec.content_len;
        } else {
            CHECK(rec.type == FCGIREC_END_REQUEST && closed);
            CHECK(rec.content_len == 8 && rec.padding_len == 0);
            *status = (uint32_t)rec.content[0] << 24 | (uint32_t)rec.content[1] << 16 |
                      (uint32_t)rec.content[2] << 8 | rec.content[3];
            CHECK(rec.content[4] == 0); /* FCGI_REQUEST_COMPLETE */
            ended = 1;
        }
        p += used;
        left -= (size_t)used;
    }
    return ended;
}

static void round_trip(const uint8_t *data, size_t size)
{
    uint16_t id = (uint16_t)(data[0] << 8 | data[1]);
    uint32_t status =
        (uint32_t)data[2] << 24 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 8 | data[5];
    size_t repeat = 1 + data[6] % 64;
    uint8_t capsel = data[7];
    const uint8_t *piece = data + 8;
    size_t plen = size - 8, len = plen * repeat;
    uint8_t *body = malloc(len ? len : 1);
    uint8_t *back = malloc(len ? len : 1);
    size_t got = 0;
    uint32_t st = ~status;
    struct buf b;
    int rc;

    for (size_t i = 0; i < repeat; i++)
        memcpy(body + i * plen, piece, plen);
    if (capsel < 128) {
        /* Room for everything: records never fail. */
        buf_init(&b, len + (len / FCGIREC_CONTENT_MAX + 1) * 16 + FCGIREC_END_LEN);
        CHECK(fcgirec_stdout(&b, id, body, len) == 0);
        CHECK(fcgirec_end(&b, id, status) == 0);
        CHECK(parse_back(&b, id, back, len, &got, &st) == 1);
        CHECK(got == len && memcmp(back, body, len) == 0 && st == status);
    } else {
        /* A small buffer: fail cleanly, whole records only. */
        buf_init(&b, (size_t)(capsel - 128) * 97);
        rc = fcgirec_stdout(&b, id, body, len);
        CHECK(rc == 0 || rc == LARK_ETOOLARGE);
        if (rc == 0)
            rc = fcgirec_end(&b, id, status);
        CHECK(rc == 0 || rc == LARK_ETOOLARGE);
        CHECK(b.len <= b.max);
        CHECK(parse_back(&b, id, back, len, &got, &st) == (rc == 0));
        CHECK(got <= len && memcmp(back, body, got) == 0);
        if (rc == 0)
            CHECK(got == len && st == status);
    }
    buf_release(&b);
    free(body);
    free(back);
}

/* fcgirec_parse over arbitrary bytes, as if they came off a socket. */
static void parse_stream(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1); /* exact size for ASan */
    const uint8_t *p = copy;
    size_t left = size;

    memcpy(copy, data, size);
    for (;;) {
        struct fcgirec rec;
        long used = fcgirec_parse(p, left, &rec);
        if (used <= 0) {
            CHECK(used == 0 || used == -1);
            CHECK(used == -1 || left < HEAD || left < HEAD + (size_t)(p[4] << 8 | p[5]) + p[6]);
            break;
        }
        CHECK((size_t)used <= left && rec.content + rec.content_len + rec.padding_len == p + used);
        p += used;
        left -= (size_t)used;
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_stream(data, size);
    if (size >= 8)
        round_trip(data, size);
    return 0;
}
