/*
 * h_conversations.c - groups, membership, reading and typing (API.md
 * "Messages and conversations", "The inbox").
 */
#include "core/ids.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/actions.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/quota.h"

#include <stdlib.h>
#include <string.h>

static int conv_param(struct req *r, const char **conv)
{
    *conv = r->params[0];
    if (!ids_valid_conversation(*conv, strlen(*conv)))
        return lark_err_set(&r->err, LARK_ENOTFOUND, "no such conversation");
    return 0;
}

/* The "members" array of a new group: valid ids, without duplicates or the
 * creator, into *out (strings borrowed from the body). */
static int group_members(struct req *r, json_t *arr, const char ***out, size_t *n)
{
    size_t count = json_array_size(arr), i;
    const char **v = xcalloc(count ? count : 1, sizeof(*v));
    json_t *m;

    *n = 0;
    json_array_foreach (arr, i, m) {
        const char *id = json_string_value(m);
        int dup = 0;
        if (!json_is_string(m)) {
            free(v);
            return lark_err_set(&r->err, LARK_ETYPE, "'members' must be an array of user ids");
        }
        if (!ids_valid_user(id, json_string_length(m))) {
            free(v);
            return lark_err_set(&r->err, LARK_EFIELD,
                                "'members' holds '%.64s', not a user id (1-64 of [A-Za-z0-9_.@-])",
                                id);
        }
        for (size_t j = 0; j < *n; j++)
            dup |= strcmp(v[j], id) == 0;
        if (!dup && strcmp(id, r->user) != 0)
            v[(*n)++] = id;
    }
    *out = v;
    return 0;
}

int h_conv_create(struct req *r)
{
    const char *type, *title;
    size_t title_len = 0;
    json_t *members, *conv = NULL;
    struct store_group_in in = {.creator = r->user, .max_members = (unsigned)r->app->cfg.group_max};
    int rc;

    if ((rc = json_get_str(r->body, "type", JSON_FIELD_REQUIRED, &type, NULL, &r->err)) ||
        (rc = json_get_str(r->body, "title", 0, &title, &title_len, &r->err)) ||
        (rc = json_get_array(r->body, "members", JSON_FIELD_REQUIRED, &members, &r->err)))
        return rc;
    if (strcmp(type, "group") != 0)
        return lark_err_set(&r->err, LARK_EFIELD,
                            "'type' must be \"group\" (a direct chat starts with a message)");
    if (title_len > LIMIT_TITLE_MAX)
        return lark_err_set(&r->err, LARK_EFIELD, "'title' is over %d bytes", LIMIT_TITLE_MAX);
    in.title = title ? title : "";
    if ((rc = group_members(r, members, &in.members, &in.nmembers)))
        return rc;
    /* a member row and an inbox row per member */
    if ((rc = quota_take(r->app->quota, QUOTA_GROUP, r->user, &r->retry_after, &r->err))) {
        free(in.members);
        return rc;
    }
    rc = store_group_create(r->db, &in, &conv, &r->err);
    free(in.members);
    if (rc)
        return rc;
    reply_json(r, 201, conv);
    json_decref(conv);
    return 0;
}

int h_conv_list(struct req *r)
{
    uint64_t limit = LIMIT_CONV_LIST_DEFAULT;
    const char *before = query_get(&r->query, "before");
    json_t *list = NULL, *body;
    int has_limit, has_more = 0;
    int rc = req_query_u64(r, "limit", LIMIT_CONV_LIST_MAX, &limit, &has_limit);

    if (rc)
        return rc;
    if (limit == 0)
        return lark_err_set(&r->err, LARK_EINVAL, "'limit' must be from 1 to %d",
                            LIMIT_CONV_LIST_MAX);
    if (before && !ids_valid_conversation(before, strlen(before)))
        return lark_err_set(&r->err, LARK_EINVAL, "'before' must be a conversation id");
    rc =
        store_conversation_list(r->db, r->user, before, (unsigned)limit, &list, &has_more, &r->err);
    if (rc)
        return rc;
    body = json_obj();
    json_put(body, "conversations", list);
    json_put(body, "has_more", json_boolean(has_more));
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}

int h_conv_get(struct req *r)
{
    const char *conv;
    json_t *out = NULL;
    int rc = conv_param(r, &conv);

    if (rc || (rc = store_conversation_get(r->db, r->user, conv, &out, &r->err)))
        return rc;
    reply_json(r, 200, out);
    json_decref(out);
    return 0;
}

int h_member_add(struct req *r)
{
    const char *conv, *user;
    size_t len;
    json_t *out = NULL;
    int added = 0;
    int rc = conv_param(r, &conv);

    if (rc || (rc = json_get_str(r->body, "user", JSON_FIELD_REQUIRED, &user, &len, &r->err)))
        return rc;
    if (!ids_valid_user(user, len))
        return lark_err_set(&r->err, LARK_EFIELD,
                            "'user' must be a user id: 1-64 characters of [A-Za-z0-9_.@-]");
    /* a member event in every member's inbox */
    if ((rc = quota_take(r->app->quota, QUOTA_MEMBER, r->user, &r->retry_after, &r->err)))
        return rc;
    rc = store_member_add(r->db, r->user, conv, user, (unsigned)r->app->cfg.group_max, &added,
                          &r->err);
    if (rc || (rc = store_conversation_get(r->db, r->user, conv, &out, &r->err)))
        return rc;
    reply_json(r, added ? 201 : 200, out);
    json_decref(out);
    return 0;
}

int h_member_remove(struct req *r)
{
    const char *conv, *user = r->params[1];
    int rc = conv_param(r, &conv);

    if (rc)
        return rc;
    if (!ids_valid_user(user, strlen(user)))
        return lark_err_set(&r->err, LARK_ENOTFOUND, "no such member");
    if ((rc = quota_take(r->app->quota, QUOTA_MEMBER, r->user, &r->retry_after, &r->err)))
        return rc;
    rc = store_member_remove(r->db, r->user, conv, user, &r->err);
    if (rc)
        return rc;
    reply_raw(r, 204, NULL, NULL, 0);
    return 0;
}

int h_read(struct req *r)
{
    struct action_ctx a = {r->app, r->db, r->user, &r->err, &r->retry_after};
    uint64_t seq = 0, read_seq = 0;
    json_t *body;
    int rc = json_get_uint(r->body, "seq", JSON_FIELD_REQUIRED, INT64_MAX, &seq, &r->err);

    if (rc || (rc = action_read(&a, r->params[0], seq, &read_seq)))
        return rc;
    body = json_obj();
    json_put(body, "read_seq", json_integer((json_int_t)read_seq));
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}

int h_typing(struct req *r)
{
    struct action_ctx a = {r->app, r->db, r->user, &r->err, &r->retry_after};
    int rc = action_typing(&a, r->params[0]);

    if (rc)
        return rc;
    reply_raw(r, 204, NULL, NULL, 0);
    return 0;
}
