/*
 * h_messages.c - sending messages and reading history (API.md "Messages
 * and conversations").
 */
#include "core/ids.h"
#include "core/json.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/actions.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/metrics.h"

#include <stdlib.h>
#include <string.h>

int h_send(struct req *r)
{
    struct action_ctx a = {r->app, r->db, r->user, &r->err, &r->retry_after};
    json_t *message = NULL;
    int duplicate = 0;
    int rc = action_send(&a, r->body, &message, &duplicate);

    if (rc)
        return rc;
    reply_json(r, duplicate ? 200 : 201, message);
    json_decref(message);
    return 0;
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
