/*
 * b64url.h - base64url without padding (RFC 4648 5, as RFC 7515 2 uses it).
 *
 * Why a module: JWT segments (auth.c reads the claims again to refuse
 * duplicate names), JWK members (jwk.c) and tickets (fcgi/ticket.c) are all
 * base64url, and one decoder is easier to trust than three. Strict: only
 * the 64 characters of the alphabet, no '=' padding, no white space, a
 * length that base64 can produce (not 1 mod 4) and zero bits after the last
 * byte, so that a byte string has one text only. Pure; any thread.
 */
#ifndef LARK_B64URL_H
#define LARK_B64URL_H

#include <stddef.h>

/* Characters b64url_encode writes for len bytes (without the NUL). */
#define B64URL_LEN(len) (((len) / 3) * 4 + ((len) % 3 ? (len) % 3 + 1 : 0))

/* Encode len bytes of in into out (B64URL_LEN(len) + 1 bytes at least),
 * NUL-terminated; returns the characters written. */
size_t b64url_encode(const void *in, size_t len, char *out);

/*
 * Decode len characters of in into a new buffer *out (caller frees; one
 * spare byte is always NUL, so text can be used as a string) of *outlen
 * bytes. 0, or -1 for anything that is not strict base64url (*out NULL).
 */
int b64url_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

#endif
