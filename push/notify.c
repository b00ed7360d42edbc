/*
 * notify.c - notification text (notify.h).
 */
#include "push/notify.h"

#include "core/json.h"
#include "core/media.h"
#include "core/mem.h"
#include "core/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t notify_utf8_cut(const char *s, size_t n)
{
    /* back off continuation bytes (10xxxxxx), then the lead byte of the
     * character they belong to if it would not fit whole */
    size_t i = n, need;
    unsigned char lead;

    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return 0;
    lead = (unsigned char)s[i - 1];
    if (lead < 0x80)
        return n;
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return (n - (i - 1) >= need) ? n : i - 1;
}

/* What a message with media and no text says (API.md "Media"): "Photo"
 * or "3 photos" when they are all pictures, "File: report.pdf" for one
 * other file, "3 files" for several. NULL when it carries no media. */
static char *media_preview(const char *media)
{
    json_t *list = *media ? json_loads(media, 0, NULL) : NULL;
    size_t n = json_array_size(list), images = 0, i;
    json_t *m;
    const char *name;
    char *text = NULL;

    json_array_foreach (list, i, m) {
        const char *type = json_string_value(json_object_get(m, "content_type"));
        if (type && media_is_image(type))
            images++;
    }
    if (n == 0)
        text = NULL;
    else if (images == n)
        text = n == 1 ? xstrdup("Photo") : xasprintf("%zu photos", n);
    else if (n == 1 && (name = json_string_value(json_object_get(json_array_get(list, 0), "name"))))
        text = xasprintf("File: %s", name);
    else
        text = xasprintf("%zu files", n);
    json_decref(list);
    return text;
}

static char *preview_of(const struct store_push_job *j)
{
    size_t len = strlen(j->body);
    char *media;

    if (len == 0 && (media = media_preview(j->media ? j->media : "")))
        return media;
    if (strcmp(j->msg_type, "text") != 0)
        return xasprintf("sent a %s", j->msg_type);
    if (len <= NOTIFY_PREVIEW_MAX)
        return xstrdup(j->body);
    len = notify_utf8_cut(j->body, NOTIFY_PREVIEW_MAX);
    return xasprintf("%.*s\xe2\x80\xa6", (int)len, j->body); /* U+2026 ellipsis */
}

void notify_text(const struct store_push_job *j, int preview, struct notify *out)
{
    char *text;

    if (!preview) {
        out->title = xstrdup("New messages");
        out->body = j->count > 1 ? xasprintf("You have %u new messages", j->count)
                                 : xstrdup("You have a new message");
        return;
    }
    text = preview_of(j);
    if (j->conv_title && *j->conv_title)
        out->title = xstrdup(j->conv_title);
    else
        out->title = xstrdup(*j->sender ? j->sender : "New message");
    if (j->conv_title) /* a group: say who */
        out->body = j->count > 1 ? xasprintf("%s: %s (+%u more)", j->sender, text, j->count - 1)
                                 : xasprintf("%s: %s", j->sender, text);
    else
        out->body = j->count > 1 ? xasprintf("%s (+%u more)", text, j->count - 1) : xstrdup(text);
    free(text);
}

void notify_release(struct notify *n)
{
    free(n->title);
    free(n->body);
    n->title = n->body = NULL;
}

json_t *notify_data(const struct store_push_job *j)
{
    char num[32];
    json_t *d = json_obj();

    json_put(d, "conversation_id", json_string(j->conversation_id));
    snprintf(num, sizeof(num), "%llu", (unsigned long long)j->msg_seq);
    json_put(d, "seq", json_string(num));
    snprintf(num, sizeof(num), "%u", j->count);
    json_put(d, "count", json_string(num));
    snprintf(num, sizeof(num), "%lld", (long long)j->id);
    json_put(d, "job", json_string(num));
    return d;
}

json_t *notify_str(const char *s)
{
    json_t *v = json_string(s);
    return v ? v : json_string("");
}
