/*
 * fcgirec.c - FastCGI STDOUT and END_REQUEST records.
 */
#include "fcgi/fcgirec.h"

#include "core/buf.h"
#include "core/err.h"

static int fcgirec_header(struct buf *b, uint8_t type, uint16_t id, uint16_t clen, uint8_t pad)
{
    const uint8_t h[FCGIREC_HEADER_LEN] = {FCGIREC_VERSION,
                                           type,
                                           (uint8_t)(id >> 8),
                                           (uint8_t)id,
                                           (uint8_t)(clen >> 8),
                                           (uint8_t)clen,
                                           pad,
                                           0};
    return buf_append(b, h, sizeof(h));
}

int fcgirec_stdout(struct buf *b, uint16_t id, const void *data, size_t len)
{
    static const uint8_t zeros[8] = {0};
    const uint8_t *p = data;

    while (len) {
        uint16_t n = len > FCGIREC_CONTENT_MAX ? FCGIREC_CONTENT_MAX : (uint16_t)len;
        uint8_t pad = (uint8_t)((8 - (n & 7)) & 7);
        if (b->max - b->len < (size_t)FCGIREC_HEADER_LEN + n + pad)
            return LARK_ETOOLARGE;
        fcgirec_header(b, FCGIREC_STDOUT, id, n, pad);
        buf_append(b, p, n);
        buf_append(b, zeros, pad);
        p += n;
        len -= n;
    }
    return 0;
}

int fcgirec_end(struct buf *b, uint16_t id, uint32_t app_status)
{
    /* appStatus (4 bytes), protocolStatus FCGI_REQUEST_COMPLETE (0), 3 reserved */
    const uint8_t body[8] = {(uint8_t)(app_status >> 24),
                             (uint8_t)(app_status >> 16),
                             (uint8_t)(app_status >> 8),
                             (uint8_t)app_status,
                             0,
                             0,
                             0,
                             0};
    if (b->max - b->len < FCGIREC_END_LEN)
        return LARK_ETOOLARGE;
    fcgirec_header(b, FCGIREC_STDOUT, id, 0, 0);
    fcgirec_header(b, FCGIREC_END_REQUEST, id, sizeof(body), 0);
    return buf_append(b, body, sizeof(body));
}

long fcgirec_parse(const uint8_t *d, size_t len, struct fcgirec *rec)
{
    size_t total;
    if (len < FCGIREC_HEADER_LEN)
        return 0;
    if (d[0] != FCGIREC_VERSION)
        return -1;
    rec->version = d[0];
    rec->type = d[1];
    rec->id = (uint16_t)(d[2] << 8 | d[3]);
    rec->content_len = (uint16_t)(d[4] << 8 | d[5]);
    rec->padding_len = d[6];
    total = FCGIREC_HEADER_LEN + (size_t)rec->content_len + rec->padding_len;
    if (len < total)
        return 0;
    rec->content = d + FCGIREC_HEADER_LEN;
    return (long)total;
}
