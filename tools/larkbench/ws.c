/*
 * ws.c - the WebSocket frame codec of larkbench (see ws.h).
 */
#include "tools/larkbench/ws.h"

#include "core/err.h"

#include <string.h>

static int is_control(int opcode)
{
    return opcode >= 0x8;
}

static int known_opcode(int opcode)
{
    return opcode <= WS_OP_BINARY || (opcode >= WS_OP_CLOSE && opcode <= WS_OP_PONG);
}

int ws_frame_put(struct buf *out, int fin, int opcode, const uint8_t *mask, const void *p, size_t n)
{
    uint8_t hdr[WS_HEADER_MAX];
    size_t h = 0, start = out->len;
    uint8_t maskbit = mask ? 0x80 : 0;

    if (opcode < 0 || opcode > 0xf || (is_control(opcode) && (n > WS_CONTROL_MAX || !fin)))
        return LARK_EINVAL;
    hdr[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (n < 126) {
        hdr[h++] = (uint8_t)(maskbit | n);
    } else if (n <= 0xffff) {
        hdr[h++] = maskbit | 126;
        hdr[h++] = (uint8_t)(n >> 8);
        hdr[h++] = (uint8_t)n;
    } else {
        hdr[h++] = maskbit | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    if (mask) {
        memcpy(hdr + h, mask, 4);
        h += 4;
    }
    if (buf_append(out, hdr, h) != 0 || buf_append(out, p, n) != 0) {
        buf_truncate(out, start);
        return LARK_ETOOLARGE;
    }
    if (mask)
        ws_unmask(out->data + start + h, n, mask, 0);
    return 0;
}

long ws_frame_parse(const void *p, size_t n, enum ws_from from, uint64_t max_payload,
                    struct ws_frame *f)
{
    const uint8_t *u = p;
    uint64_t len;
    size_t hdr = 2, lenbytes;

    if (n < 2)
        return 0;
    f->fin = (u[0] & 0x80) != 0;
    f->opcode = u[0] & 0x0f;
    f->masked = (u[1] & 0x80) != 0;
    if ((u[0] & 0x70) || !known_opcode(f->opcode))
        return LARK_EINVAL; /* RSV bits without an extension, reserved opcodes */
    if (f->masked != (from == WS_FROM_CLIENT))
        return LARK_EINVAL; /* 5.1: clients mask, servers do not */
    len = u[1] & 0x7f;
    lenbytes = len == 126 ? 2 : len == 127 ? 8 : 0;
    if (is_control(f->opcode) && (!f->fin || lenbytes))
        return LARK_EINVAL; /* 5.5: control frames are final and short */
    hdr += lenbytes + (f->masked ? 4 : 0);
    if (n < hdr)
        return 0;
    if (lenbytes) {
        len = 0;
        for (size_t i = 0; i < lenbytes; i++)
            len = len << 8 | u[2 + i];
        if ((lenbytes == 2 && len < 126) || (lenbytes == 8 && (len <= 0xffff || len >> 63)))
            return LARK_EINVAL; /* 5.2: the shortest form, top bit clear */
    }
    if (len > max_payload)
        return LARK_ETOOLARGE;
    if (f->masked)
        memcpy(f->mask, u + hdr - 4, 4);
    if (n - hdr < len)
        return 0;
    f->header_len = hdr;
    f->payload_len = len;
    f->payload = u + hdr;
    return (long)(hdr + len);
}

void ws_unmask(void *p, size_t n, const uint8_t mask[4], size_t offset)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] ^= mask[(offset + i) & 3];
}

void ws_msg_init(struct ws_msg *m, size_t max)
{
    memset(m, 0, sizeof(*m));
    buf_init(&m->data, max);
}

void ws_msg_release(struct ws_msg *m)
{
    buf_release(&m->data);
}

void ws_msg_reset(struct ws_msg *m)
{
    buf_reset(&m->data);
    m->active = m->complete = 0;
}

int ws_msg_add(struct ws_msg *m, int fin, int opcode, const void *p, size_t n)
{
    if (m->complete) {
        buf_reset(&m->data);
        m->complete = 0;
    }
    if (is_control(opcode) || (opcode == WS_OP_CONT) != m->active) {
        buf_reset(&m->data);
        m->active = 0;
        return LARK_EINVAL;
    }
    if (opcode != WS_OP_CONT)
        m->opcode = opcode;
    if (buf_append(&m->data, p, n) != 0) {
        buf_reset(&m->data);
        m->active = 0;
        return LARK_ETOOLARGE;
    }
    m->active = !fin;
    m->complete = fin;
    return fin;
}
