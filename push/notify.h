/*
 * notify.h - what a notification says (shared by FCM and APNs).
 *
 * A job may stand for several messages (coalescing): the notification
 * names the newest one and how many there are. With previews on, it shows
 * who wrote and the start of the text; with them off (push_preview = 0,
 * for privacy: lock screens and the providers see the payload) it says
 * only that there are new messages.
 */
#ifndef LARK_PUSH_NOTIFY_H
#define LARK_PUSH_NOTIFY_H

#include <jansson.h>

struct store_push_job;

/* Bytes of message text in a preview: a lock screen shows two lines, and
 * an APNs payload may not pass 4 KiB. Cut on a UTF-8 boundary. */
#define NOTIFY_PREVIEW_MAX 200

struct notify {
    char *title; /* owned */
    char *body;  /* owned */
};

/* The title and body for job j. Release with notify_release. */
void notify_text(const struct store_push_job *j, int preview, struct notify *out);
void notify_release(struct notify *n);

/* The app data both providers carry: {conversation_id, seq, count, job}
 * (strings: FCM's data map takes only strings). New reference. */
json_t *notify_data(const struct store_push_job *j);

/* A JSON string of s, or "" if s is not valid UTF-8 (new reference). */
json_t *notify_str(const char *s);

/* n bytes of s cut back to a whole UTF-8 character (s need not end there). */
size_t notify_utf8_cut(const char *s, size_t n);

#endif
