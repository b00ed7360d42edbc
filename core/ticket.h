/*
 * ticket.h - short-lived, single-use tickets that stand for a user in a URL
 * (API.md "Authentication": POST /v1/tickets, then ?ticket= on the GETs a
 * browser cannot add a header to: EventSource, a media link).
 *
 * Why: a long-lived access token in a URL ends up in proxy, server and
 * browser logs (issue 13: lighttpd logged every connected user's JWT when
 * larkd died). A ticket in a log is worth nothing once it has been used,
 * and nothing after ticket_ttl (at most 60 s) anyway.
 *
 * Shape: self-contained and signed, base64url of
 *     version (1) | expires_at ms (8, big-endian) | nonce (16) | user (1-64)
 *     | HMAC-SHA256 of all that (32)
 * under a key every larkd of one database shares (store_ticket_key). So a
 * ticket minted by one host is checked by any other without a database
 * read, forged or expired ones are refused without touching the database,
 * and minting writes nothing; single use is the one write: the nonce goes
 * into the store (store_ticket_use), where a second use on any host finds
 * it. The alternative, a ticket row per ticket, costs a write to mint and
 * another to use, and a database round trip for every forged ticket.
 *
 * Pure (OpenSSL's HMAC and getrandom); any thread.
 */
#ifndef LARK_TICKET_H
#define LARK_TICKET_H

#include "core/limits.h"

#include <stddef.h>
#include <stdint.h>

struct lark_err;

/* Bytes of the key (store.h STORE_TICKET_KEY_LEN). */
#define TICKET_KEY_LEN 32
/* Random bytes that make a ticket unique; as hex, the store's nonce. */
#define TICKET_NONCE_LEN 16
/* Longest ticket text, NUL included: base64url of 1+8+16+64+32 bytes. */
#define TICKET_TEXT_MAX 170

/* A ticket as opened. */
struct ticket {
    char user[LIMIT_USER_ID_MAX + 1];
    char nonce[2 * TICKET_NONCE_LEN + 1]; /* hex */
    int64_t expires_at;                   /* ms since the epoch */
};

/*
 * Mint a ticket for user (a valid user id) that expires at expires_at (ms)
 * into out (TICKET_TEXT_MAX bytes), NUL-terminated. Returns 0, or
 * LARK_EFIELD if user is not a user id.
 */
int ticket_mint(const unsigned char key[TICKET_KEY_LEN], const char *user, int64_t expires_at,
                char out[TICKET_TEXT_MAX]);

/*
 * Check text (len bytes, need not be NUL-terminated) at now (ms): the
 * signature under key, the version, the user id and that it has not
 * expired. On success fills *t and returns 0; otherwise LARK_ETOKEN with
 * err saying why (malformed, bad signature, expired). Whether it was used
 * before is the store's to say (store_ticket_use).
 */
int ticket_open(const unsigned char key[TICKET_KEY_LEN], const char *text, size_t len, int64_t now,
                struct ticket *t, struct lark_err *err);

/* Parse 64 hex digits into a key; 0 or -1. */
int ticket_key_from_hex(const char *hex, unsigned char key[TICKET_KEY_LEN]);

#endif
