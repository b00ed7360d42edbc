/*
 * actions.c - sending, reading and typing, for HTTP and WebSocket alike.
 */
#include "fcgi/actions.h"

#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/media.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/attach.h"
#include "fcgi/metrics.h"
#include "fcgi/quota.h"

#include <stdlib.h>
#include <string.h>

/* client_msg_id: 1..LIMIT_CLIENT_MSG_ID_MAX bytes, no control characters. */
static int valid_client_msg_id(const char *s, size_t len)
{
    if (len == 0 || len > LIMIT_CLIENT_MSG_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* type: 1..LIMIT_MSG_TYPE_MAX of [a-z0-9_.-]. */
static int valid_type(const char *s, size_t len)
{
    if (len == 0 || len > LIMIT_MSG_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Read and check the fields of a send into in; *meta_text is for the
 * caller to free, media (LIMIT_MEDIA_PER_MESSAGE entries) receives the
 * media ids. */
static int send_parse(const struct action_ctx *a, json_t *b, struct store_send_in *in,
                      char **meta_text, const char **media)
{
    const struct config *cfg = &a->app->cfg;
    struct lark_err *err = a->err;
    json_t *meta = NULL;
    size_t tolen, convlen, cmidlen, typelen, metalen;
    int rc;

    if ((rc = json_get_str(b, "to", 0, &in->to, &tolen, err)) ||
        (rc = json_get_str(b, "conversation_id", 0, &in->conversation_id, &convlen, err)) ||
        (rc = json_get_str(b, "client_msg_id", 0, &in->client_msg_id, &cmidlen, err)) ||
        (rc = json_get_str(b, "type", 0, &in->type, &typelen, err)) ||
        (rc = json_get_str(b, "body", 0, &in->body, &in->body_len, err)) ||
        (rc = json_get_object(b, "meta", 0, &meta, err)) ||
        (rc = media_list_parse(b, media, &in->nmedia, err)))
        return rc;
    /* API.md "Media": with media, the body may be empty (or left out) */
    if (!in->body && in->nmedia == 0)
        return lark_err_set(err, LARK_EMISSING, "'body' is required");
    if (!in->body)
        in->body = "";
    in->media = in->nmedia ? media : NULL;
    if (in->to && in->conversation_id)
        return lark_err_set(err, LARK_EFIELD, "give 'to' or 'conversation_id', not both");
    if (!in->to && !in->conversation_id)
        return lark_err_set(err, LARK_EMISSING, "'to' or 'conversation_id' is required");
    if (in->to && !ids_valid_user(in->to, tolen))
        return lark_err_set(err, LARK_EFIELD,
                            "'to' must be a user id: 1-64 characters of [A-Za-z0-9_.@-]");
    if (in->conversation_id && !ids_valid_conversation(in->conversation_id, convlen))
        return lark_err_set(err, LARK_ENOTFOUND, "no such conversation");
    if (in->client_msg_id && !valid_client_msg_id(in->client_msg_id, cmidlen))
        return lark_err_set(err, LARK_EFIELD,
                            "'client_msg_id' must be 1-%d bytes without control characters",
                            LIMIT_CLIENT_MSG_ID_MAX);
    if (!in->type)
        in->type = "text";
    else if (!valid_type(in->type, typelen))
        return lark_err_set(err, LARK_EFIELD, "'type' must be 1-%d characters of [a-z0-9_.-]",
                            LIMIT_MSG_TYPE_MAX);
    if (in->body_len > (size_t)cfg->body_max)
        return lark_err_set(err, LARK_EMSGLARGE, "'body' is over %d bytes", cfg->body_max);
    if (in->body_len == 0 && strcmp(in->type, "text") == 0 && in->nmedia == 0)
        return lark_err_set(err, LARK_EFIELD, "'body' of a text message must not be empty");
    if (meta) {
        *meta_text = json_dump(meta, 0, &metalen);
        if (metalen > (size_t)cfg->meta_max)
            return lark_err_set(err, LARK_EMSGLARGE, "'meta' is over %d bytes", cfg->meta_max);
        in->meta = *meta_text;
    }
    return 0;
}

int action_send(const struct action_ctx *a, json_t *fields, json_t **message, int *duplicate)
{
    struct store_send_in in = {.sender = a->user};
    struct store_send_out out = {0};
    const char *media[LIMIT_MEDIA_PER_MESSAGE];
    char *meta_text = NULL, *media_json = NULL;
    int rc = send_parse(a, fields, &in, &meta_text, media);

    *message = NULL;
    *duplicate = 0;
    if (rc)
        goto out;
    rc = quota_take(a->app->quota, QUOTA_SEND, a->user, a->retry_after, a->err);
    if (rc)
        goto out;
    /* what the message shows of its media, read (and a direct upload
     * confirmed) before the send; the send checks them again as it stores */
    if (in.nmedia) {
        rc = attach_message_list(a->app, a->db, a->user, in.media, in.nmedia, &media_json, a->err);
        if (rc)
            goto out;
        in.media_json = media_json;
    }
    rc = store_send(a->db, &in, &out, a->err);
    if (rc)
        goto out;
    if (!out.duplicate)
        metrics_message_sent();
    *message = out.message;
    *duplicate = out.duplicate;
out:
    free(meta_text);
    free(media_json);
    return rc;
}

int action_read(const struct action_ctx *a, const char *conv, uint64_t seq, uint64_t *read_seq)
{
    int rc;

    if (!conv || !ids_valid_conversation(conv, strlen(conv)))
        return lark_err_set(a->err, LARK_ENOTFOUND, "no such conversation");
    /* a receipt to every other member: n - 1 inbox rows */
    if ((rc = quota_take(a->app->quota, QUOTA_READ, a->user, a->retry_after, a->err)))
        return rc;
    return store_read(a->db, a->user, conv, seq, read_seq, a->err);
}

int action_typing(const struct action_ctx *a, const char *conv)
{
    json_t *members = NULL, *ev, *data, *m;
    struct store_note *notes;
    size_t i, n = 0;
    char *text;
    int rc;

    if (!conv || !ids_valid_conversation(conv, strlen(conv)))
        return lark_err_set(a->err, LARK_ENOTFOUND, "no such conversation");
    if ((rc = store_members(a->db, a->user, conv, &members, a->err)))
        return rc;
    rc = quota_take(a->app->quota, QUOTA_TYPING, a->user, a->retry_after, a->err);
    if (rc) {
        json_decref(members);
        return rc;
    }
    ev = json_obj();
    data = json_obj();
    json_put(data, "conversation_id", json_string(conv));
    json_put(data, "user", json_string(a->user));
    json_put(ev, "type", json_string("typing"));
    json_put(ev, "data", data);
    text = json_dump(ev, 0, NULL);
    json_decref(ev);
    /* ephemeral: to the other members' live connections, never stored */
    notes = xcalloc(json_array_size(members) + 1, sizeof(*notes));
    json_array_foreach (members, i, m) {
        if (strcmp(json_string_value(m), a->user) == 0)
            continue;
        notes[n++] = (struct store_note){
            .kind = STORE_NOTE_EPHEMERAL, .user = json_string_value(m), .json = text};
    }
    rc = store_publish(a->db, notes, n, a->err);
    free(notes);
    free(text);
    json_decref(members);
    return rc;
}
