/*
 * fcgirec.h - the few FastCGI records the hub writes itself.
 *
 * Why not libfcgi: a parked libfcgi FCGX_Request keeps ~10.8 KiB of
 * buffers alive (DESIGN.md), and lark holds thousands. So libfcgi parses
 * each request, a worker hands the hub only the socket and the request id,
 * and the hub writes the two record types a response needs from then on:
 * FCGI_STDOUT (the body, in records of at most 65535 bytes) and the end of
 * the response (an empty STDOUT, then FCGI_END_REQUEST). The layout is the
 * FastCGI 1.0 specification's, section 3.3 and 5.5.
 *
 * fcgirec_parse reads records back; the unit tests and the fuzzer use it
 * to prove that whatever the writer emits parses to the same bytes.
 * Pure functions; thread-safe.
 */
#ifndef LARK_FCGIREC_H
#define LARK_FCGIREC_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define FCGIREC_HEADER_LEN 8
#define FCGIREC_CONTENT_MAX 65535
#define FCGIREC_VERSION 1
#define FCGIREC_END_REQUEST 3
#define FCGIREC_STDOUT 6
/* Bytes fcgirec_end appends. */
#define FCGIREC_END_LEN (FCGIREC_HEADER_LEN + FCGIREC_HEADER_LEN + 8)

/*
 * Append STDOUT records carrying len bytes of data for request id to b,
 * each padded to a multiple of 8 bytes. len 0 appends nothing (an empty
 * STDOUT would end the stream). 0, or LARK_ETOOLARGE if b is full (b may
 * then hold some of the records; the caller drops the connection).
 */
int fcgirec_stdout(struct buf *b, uint16_t id, const void *data, size_t len);

/* Append the end of the response: empty STDOUT, then END_REQUEST with
 * app_status and FCGI_REQUEST_COMPLETE. 0 or LARK_ETOOLARGE. */
int fcgirec_end(struct buf *b, uint16_t id, uint32_t app_status);

struct fcgirec {
    uint8_t version;
    uint8_t type;
    uint16_t id;
    uint16_t content_len;
    uint8_t padding_len;
    const uint8_t *content; /* points into the parsed data */
};

/* Parse one record at data: bytes consumed, 0 if more bytes are needed,
 * -1 if the header is not a FastCGI 1.0 header. */
long fcgirec_parse(const uint8_t *data, size_t len, struct fcgirec *rec);

#endif
