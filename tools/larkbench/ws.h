/*
 * ws.h - larkbench's WebSocket frame codec (RFC 6455 section 5).
 *
 * Why: WebSocket delivery figures rest on reading every frame of two
 * servers right: lighttpd's mod_wstunnel (lark; payloads are one byte
 * stream of newline-delimited JSON, API.md "WebSocket") and nginx's Nchan
 * (one message per text frame, possibly fragmented).
 *
 * Three parts, all pure (no I/O):
 *   - ws_frame_put writes one frame: FIN, opcode, the payload length in
 *     its shortest form (7-bit, 16-bit or 64-bit, 5.2) and, for a client,
 *     a masking key with the payload masked (5.3).
 *   - ws_frame_parse reads one frame's header and says whether the whole
 *     frame is there; it checks what a peer must get right: no RSV bit
 *     (no extension is negotiated), a known opcode, control frames final
 *     and at most 125 bytes (5.5), the shortest length form with the top
 *     bit of a 64-bit length clear, and masking by direction (a server
 *     never masks, a client always does, 5.1).
 *   - struct ws_msg joins the data frames of one fragmented message
 *     (5.4): a first frame of TEXT or BINARY, CONTINUATION frames, the
 *     last with FIN. Control frames may come between fragments; they are
 *     not given to it.
 * Input may be cut at any byte: a parse that lacks bytes consumes none.
 * Not thread-safe; one struct ws_msg per connection.
 */
#ifndef LARK_BENCH_WS_H
#define LARK_BENCH_WS_H

#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Longest frame header: 2 + 8 (64-bit length) + 4 (masking key). */
#define WS_HEADER_MAX 14
/* Largest control frame payload (RFC 6455 5.5). */
#define WS_CONTROL_MAX 125

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa
};

/* Who wrote the bytes being parsed: decides the masking rule. */
enum ws_from { WS_FROM_SERVER, WS_FROM_CLIENT };

/* One parsed frame; payload is borrowed from the parsed input and still
 * masked when masked is set (see ws_unmask). */
struct ws_frame {
    int fin;              /* last frame of its message */
    int opcode;           /* enum ws_opcode */
    int masked;           /* a masking key was given */
    uint8_t mask[4];      /* the key, when masked */
    size_t header_len;    /* bytes before the payload */
    uint64_t payload_len; /* bytes of payload */
    const uint8_t *payload;
};

/*
 * Append one frame to out: FIN if fin, opcode, n payload bytes, masked
 * with mask when mask is not NULL (a client's frame). Returns 0, or
 * LARK_ETOOLARGE (out's max reached; out unchanged), or LARK_EINVAL (a
 * control frame over 125 bytes or not final, an opcode over 15).
 */
int ws_frame_put(struct buf *out, int fin, int opcode, const uint8_t *mask, const void *p,
                 size_t n);

/*
 * Parse the frame at p[0..n). Returns the frame's total size (header and
 * payload) when it is all there, 0 when more bytes are needed (also while
 * the header itself is incomplete), LARK_EINVAL when the frame breaks RFC
 * 6455 as described above, LARK_ETOOLARGE when its payload is over
 * max_payload (which can be told from the header alone). f is filled when
 * the result is > 0.
 */
long ws_frame_parse(const void *p, size_t n, enum ws_from from, uint64_t max_payload,
                    struct ws_frame *f);

/* XOR p[0..n) with the key, as if p started at byte offset of the payload. */
void ws_unmask(void *p, size_t n, const uint8_t mask[4], size_t offset);

/* A message being assembled from its data frames. */
struct ws_msg {
    struct buf data; /* the payload so far; the message once complete */
    int opcode;      /* WS_OP_TEXT or WS_OP_BINARY of the message */
    int active;      /* a first frame came and the last did not yet */
    int complete;    /* data holds a whole message (until the next ws_msg_add) */
};

/* Messages up to max bytes. */
void ws_msg_init(struct ws_msg *m, size_t max);
void ws_msg_release(struct ws_msg *m);

/* Forget a half-assembled message (the connection closed). */
void ws_msg_reset(struct ws_msg *m);

/*
 * Add a data frame (TEXT, BINARY or CONT) whose unmasked payload is
 * p[0..n). Returns 1 when it completes a message (m->data, m->opcode hold
 * it until the next call), 0 when more frames are needed, LARK_EINVAL for
 * a CONT with no message begun, a new message before the last ended, or a
 * control opcode, LARK_ETOOLARGE past max. After an error the assembly
 * starts afresh.
 */
int ws_msg_add(struct ws_msg *m, int fin, int opcode, const void *p, size_t n);

#endif
