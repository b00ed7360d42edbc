/*
 * ticket.c - minting and opening signed tickets.
 */
#include "core/ticket.h"

#include "core/b64url.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/query.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICKET_VERSION 1
#define TICKET_MAC_LEN 32
/* version, expiry, nonce: the fixed part before the user id */
#define TICKET_HEAD_LEN (1 + 8 + TICKET_NONCE_LEN)
#define TICKET_RAW_MAX (TICKET_HEAD_LEN + LIMIT_USER_ID_MAX + TICKET_MAC_LEN)

_Static_assert(B64URL_LEN(TICKET_RAW_MAX) < TICKET_TEXT_MAX, "TICKET_TEXT_MAX too small");

static void ticket_mac(const unsigned char key[TICKET_KEY_LEN], const unsigned char *data,
                       size_t len, unsigned char mac[TICKET_MAC_LEN])
{
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), key, TICKET_KEY_LEN, data, len, mac, &maclen) ||
        maclen != TICKET_MAC_LEN)
        abort(); /* SHA-256 is always there; nothing else can fail */
}

int ticket_mint(const unsigned char key[TICKET_KEY_LEN], const char *user, int64_t expires_at,
                char out[TICKET_TEXT_MAX])
{
    unsigned char raw[TICKET_RAW_MAX];
    size_t ulen = strlen(user), n = 0;

    out[0] = '\0';
    if (!ids_valid_user(user, ulen))
        return LARK_EFIELD;
    raw[n++] = TICKET_VERSION;
    for (int i = 7; i >= 0; i--)
        raw[n++] = (unsigned char)((uint64_t)expires_at >> (8 * i));
    ids_random(raw + n, TICKET_NONCE_LEN);
    n += TICKET_NONCE_LEN;
    /* the id's bytes and no NUL: its length is what is left before the MAC */
    for (size_t i = 0; i < ulen; i++)
        raw[n++] = (unsigned char)user[i];
    ticket_mac(key, raw, n, raw + n);
    b64url_encode(raw, n + TICKET_MAC_LEN, out);
    return 0;
}

int ticket_open(const unsigned char key[TICKET_KEY_LEN], const char *text, size_t len, int64_t now,
                struct ticket *t, struct lark_err *err)
{
    unsigned char *raw = NULL, mac[TICKET_MAC_LEN];
    size_t n = 0, ulen;
    uint64_t exp = 0;
    int rc = LARK_ETOKEN;

    memset(t, 0, sizeof(*t));
    if (len >= TICKET_TEXT_MAX || b64url_decode(text, len, &raw, &n) != 0 ||
        n <= TICKET_HEAD_LEN + TICKET_MAC_LEN || n > TICKET_RAW_MAX || raw[0] != TICKET_VERSION) {
        lark_err_set(err, rc, "the ticket is malformed");
        goto out;
    }
    ticket_mac(key, raw, n - TICKET_MAC_LEN, mac);
    if (CRYPTO_memcmp(mac, raw + n - TICKET_MAC_LEN, TICKET_MAC_LEN) != 0) {
        lark_err_set(err, rc, "the ticket's signature is bad");
        goto out;
    }
    for (int i = 1; i <= 8; i++)
        exp = exp << 8 | raw[i];
    ulen = n - TICKET_MAC_LEN - TICKET_HEAD_LEN;
    if (!ids_valid_user((const char *)raw + TICKET_HEAD_LEN, ulen)) {
        lark_err_set(err, rc, "the ticket's user is malformed");
        goto out;
    }
    if ((int64_t)exp <= now) {
        lark_err_set(err, rc, "the ticket has expired");
        goto out;
    }
    memcpy(t->user, raw + TICKET_HEAD_LEN, ulen);
    t->user[ulen] = '\0';
    for (int i = 0; i < TICKET_NONCE_LEN; i++)
        snprintf(t->nonce + 2 * i, 3, "%02x", raw[9 + i]);
    t->expires_at = (int64_t)exp;
    rc = 0;
out:
    free(raw);
    return rc;
}

int ticket_key_from_hex(const char *hex, unsigned char key[TICKET_KEY_LEN])
{
    if (strlen(hex) != 2 * TICKET_KEY_LEN)
        return -1;
    for (int i = 0; i < TICKET_KEY_LEN; i++) {
        int hi = hex_digit((unsigned char)hex[2 * i]),
            lo = hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}
