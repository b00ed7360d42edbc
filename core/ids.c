/*
 * ids.c - UUIDv7, conversation ids, user id validation.
 */
#include "core/ids.h"

#include "core/limits.h"
#include "core/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void ids_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_error("getrandom failed: errno=%d", errno);
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

static void uuid7_bytes(int64_t ms, unsigned char b[16])
{
    uint64_t t = (uint64_t)ms;
    ids_random(b, 16);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(t >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* RFC 9562 variant */
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
}

void ids_uuid7(int64_t ms, char out[IDS_UUID_LEN])
{
    unsigned char b[16];
    char h[32];
    uuid7_bytes(ms, b);
    hex(b, 16, h);
    memcpy(out, h, 8);
    out[8] = '-';
    memcpy(out + 9, h + 8, 4);
    out[13] = '-';
    memcpy(out + 14, h + 12, 4);
    out[18] = '-';
    memcpy(out + 19, h + 16, 4);
    out[23] = '-';
    memcpy(out + 24, h + 20, 12);
    out[36] = '\0';
}

void ids_conversation(int64_t ms, char out[IDS_CONV_LEN])
{
    unsigned char b[16];
    uuid7_bytes(ms, b);
    out[0] = 'c';
    out[1] = '_';
    hex(b, 16, out + 2);
    out[34] = '\0';
}

int ids_valid_user(const char *s, size_t len)
{
    if (len == 0 || len > LIMIT_USER_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '@' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

/* 1 if s is prefix ("c", "m") + '_' + 32 lowercase hex digits. */
static int valid_prefixed(const char *s, size_t len, char prefix)
{
    if (len != IDS_CONV_LEN - 1 || s[0] != prefix || s[1] != '_')
        return 0;
    for (size_t i = 2; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

int ids_valid_conversation(const char *s, size_t len)
{
    return valid_prefixed(s, len, 'c');
}

void ids_media(int64_t ms, char out[IDS_MEDIA_LEN])
{
    ids_conversation(ms, out);
    out[0] = 'm';
}

int ids_valid_media(const char *s, size_t len)
{
    return valid_prefixed(s, len, 'm');
}
