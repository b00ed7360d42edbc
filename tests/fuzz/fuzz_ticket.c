/*
 * fuzz_ticket.c - libFuzzer target for tickets (core/ticket.h), which come
 * from URLs (?ticket=) before anything else is checked.
 *
 * The first input byte picks the mode:
 *   even  the rest is a ticket as a client could send anything: the only
 *         answers are 0 and LARK_ETOKEN, and 0 only for a well-formed user
 *         with a nonce of 32 hex digits and an expiry after now (a random
 *         input does not forge the HMAC, so 0 means a bug);
 *   odd   the rest names a user and an expiry: a minted ticket opens to
 *         exactly them before it expires and not after; with any one byte
 *         of it changed (the second byte picks which, the third the xor),
 *         it opens to nothing.
 */
#include "core/ticket.h"

#include "core/err.h"
#include "core/ids.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <string.h>

#define NOW 1700000000000LL

static const unsigned char key[TICKET_KEY_LEN] = "fuzz-ticket-key-0123456789abcdef";

static void any_ticket(const uint8_t *data, size_t size)
{
    struct lark_err err = {0};
    struct ticket t;
    int rc = ticket_open(key, (const char *)data, size, NOW, &t, &err);

    CHECK(rc == LARK_ETOKEN); /* nobody forges HMAC-SHA256 by chance */
}

static void minted(const uint8_t *data, size_t size)
{
    char user[LIMIT_USER_ID_MAX + 1], text[TICKET_TEXT_MAX];
    struct lark_err err = {0};
    struct ticket t;
    size_t ulen = 0, pos, len;
    int64_t exp;

    if (size < 3)
        return;
    for (size_t i = 2; i < size && ulen < LIMIT_USER_ID_MAX; i++)
        user[ulen++] = (char)data[i];
    user[ulen] = '\0';
    exp = NOW + 1 + (int64_t)data[0] * 1000;
    if (ticket_mint(key, user, exp, text) != 0) {
        CHECK(!ids_valid_user(user, ulen));
        return;
    }
    len = strlen(text);
    CHECK(len < TICKET_TEXT_MAX);
    CHECK(ticket_open(key, text, len, NOW, &t, &err) == 0);
    CHECK(strcmp(t.user, user) == 0 && t.expires_at == exp && strlen(t.nonce) == 32);
    CHECK(ticket_open(key, text, len, exp, &t, &err) == LARK_ETOKEN);
    pos = data[1] % len;
    text[pos] = (char)(text[pos] ^ (data[2] | 1));
    CHECK(ticket_open(key, text, len, NOW, &t, &err) == LARK_ETOKEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        any_ticket(data + 1, size - 1);
    else
        minted(data + 1, size - 1);
    return 0;
}
