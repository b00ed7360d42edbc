/*
 * h_messages.c - sending messages and reading history (API.md "Messages
 * and conversations").
 */
#include "core/ids.h"
#include "core/json.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/metrics.h"
#include "fcgi/ratelimit.h"

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

/* Read and check the fields of a send into in; *meta_text is for the caller to free. */
static int send_parse(struct req *r, struct store_send_in *in, char **meta_text)
{
    const struct config *cfg = &r->app->cfg;
    json_t *b = r->body, *meta = NULL;
    size_t tolen, convlen, cmidlen, typelen, metalen;
    int rc;

    if ((rc = json_get_str(b, "to", 0, &in->to, &tolen, &r->err)) ||
        (rc = json_get_str(b, "conversation_id", 0, &in->conversation_id, &convlen, &r->err)) ||
        (rc = json_get_str(b, "client_msg_id", 0, &in->client_msg_id, &cmidlen, &r->err)) ||
        (rc = json_get_str(b, "type", 0, &in->type, &typelen, &r->err)) ||
        (rc = json_get_str(b, "body", JSON_FIELD_REQUIRED, &in->body, &in->body_len, &r->err)) ||
        (rc = json_get_object(b, "meta", 0, &meta, &r->err)))
        return rc;
    if (in->to && in->conversation_id)
        return lark_err_set(&r->err, LARK_EFIELD, "give 'to' or 'conversation_id', not both");
    if (!in->to && !in->conversation_id)
        return lark_err_set(&r->err, LARK_EMISSING, "'to' or 'conversation_id' is required");
    if (in->to && !ids_valid_user(in->to, tolen))
        return lark_err_set(&r->err, LARK_EFIELD,
                            "'to' must be a user id: 1-64 characters of [A-Za-z0-9_.@-]");
    if (in->conversation_id && !ids_valid_conversation(in->conversation_id, convlen))
        return lark_err_set(&r->err, LARK_ENOTFOUND, "no such conversation");
    if (in->client_msg_id && !valid_client_msg_id(in->client_msg_id, cmidlen))
        return lark_err_set(&r->err, LARK_EFIELD,
                            "'client_msg_id' must be 1-%d bytes without control characters",
                            LIMIT_CLIENT_MSG_ID_MAX);
    if (!in->type)
        in->type = "text";
    else if (!valid_type(in->type, typelen))
        return lark_err_set(&r->err, LARK_EFIELD, "'type' must be 1-%d characters of [a-z0-9_.-]",
                            LIMIT_MSG_TYPE_MAX);
    if (in->body_len > (size_t)cfg->body_max)
        return lark_err_set(&r->err, LARK_EMSGLARGE, "'body' is over %d bytes", cfg->body_max);
    if (in->body_len == 0 && strcmp(in->type, "text") == 0)
        return lark_err_set(&r->err, LARK_EFIELD, "'body' of a text message must not be empty");
    if (meta) {
        *meta_text = json_dump(meta, 0, &metalen);
        if (metalen > (size_t)cfg->meta_max)
            return lark_err_set(&r->err, LARK_EMSGLARGE, "'meta' is over %d bytes", cfg->meta_max);
        in->meta = *meta_text;
    }
    return 0;
}

int h_send(struct req *r)
{
    struct store_send_in in = {.sender = r->user};
    struct store_send_out out = {0};
    char *meta_text = NULL;
    int rc = send_parse(r, &in, &meta_text);

    if (rc)
        goto out;
    rc = ratelimit_take(r->app->rl, r->user, time_mono_ms(), &r->retry_after);
    if (rc) {
        lark_err_set(&r->err, rc, "more than %d messages per second; retry in %d s",
                     r->app->cfg.send_rate, r->retry_after);
        goto out;
    }
    rc = store_send(r->db, &in, &out, &r->err);
    if (rc)
        goto out;
    if (!out.duplicate)
        metrics_message_sent();
    reply_json(r, out.duplicate ? 200 : 201, out.message);
    json_decref(out.message);
out:
    free(meta_text);
    return rc;
}

int h_history(struct req *r)
{
    const char *conv = r->params[0];
    struct store_page page = {.before = UINT64_MAX, .after = 0, .limit = LIMIT_HISTORY_DEFAULT};
    uint64_t before = 0, after = 0, limit = LIMIT_HISTORY_DEFAULT;
    int has_before, has_after, has_limit, has_more = 0;
    json_t *messages = NULL, *body;
    int rc;

    if ((rc = req_query_u64(r, "before", INT64_MAX, &before, &has_before)) ||
        (rc = req_query_u64(r, "after", INT64_MAX, &after, &has_after)) ||
        (rc = req_query_u64(r, "limit", (uint64_t)r->app->cfg.history_max, &limit, &has_limit)))
        return rc;
    if (has_limit && limit == 0)
        return lark_err_set(&r->err, LARK_EINVAL, "'limit' must be from 1 to %d",
                            r->app->cfg.history_max);
    if (!ids_valid_conversation(conv, strlen(conv)))
        return lark_err_set(&r->err, LARK_ENOTFOUND, "no such conversation");
    if (has_before)
        page.before = before;
    if (has_after)
        page.after = after;
    page.ascending = has_after; /* API.md: after= reads oldest first */
    page.limit = (unsigned)limit;
    rc = store_history(r->db, r->user, conv, &page, &messages, &has_more, &r->err);
    if (rc)
        return rc;
    body = json_obj();
    json_put(body, "messages", messages);
    json_put(body, "has_more", json_boolean(has_more));
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}
