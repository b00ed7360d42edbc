/*
 * ids.h - identifiers: making them and telling valid ones.
 *
 * Message ids are UUIDv7 (RFC 9562): time-ordered, so they index well, and
 * random enough to be unguessable. Conversation ids are "c_" plus 32 hex
 * digits of a UUIDv7; they are random so that a conversation's existence
 * cannot be probed by guessing (the direct chat of alice and bob does not
 * have a derivable id). User ids come from the JWT "sub" and follow API.md:
 * 1-64 characters of [A-Za-z0-9_.@-].
 *
 * All functions are thread-safe; randomness comes from getrandom(2).
 */
#ifndef LARK_IDS_H
#define LARK_IDS_H

#include <stddef.h>
#include <stdint.h>

/* "xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx" plus NUL. */
#define IDS_UUID_LEN 37
/* "c_" + 32 hex digits plus NUL. */
#define IDS_CONV_LEN 35
/* "m_" + 32 hex digits plus NUL. */
#define IDS_MEDIA_LEN 35

/* A new UUIDv7 for wall-clock time ms. */
void ids_uuid7(int64_t ms, char out[IDS_UUID_LEN]);

/* A new conversation id. */
void ids_conversation(int64_t ms, char out[IDS_CONV_LEN]);

/* A new media id: "m_" and the 32 hex digits of a UUIDv7, random like a
 * conversation id so that nobody can guess another user's upload. */
void ids_media(int64_t ms, char out[IDS_MEDIA_LEN]);

/* 1 if s (len bytes, no NUL needed) is a well-formed user id. */
int ids_valid_user(const char *s, size_t len);

/* 1 if s is a well-formed conversation id ("c_" + 32 lowercase hex). */
int ids_valid_conversation(const char *s, size_t len);

/* 1 if s is a well-formed media id ("m_" + 32 lowercase hex). */
int ids_valid_media(const char *s, size_t len);

/* Fill buf with len random bytes; aborts if the kernel cannot supply them. */
void ids_random(void *buf, size_t len);

#endif
