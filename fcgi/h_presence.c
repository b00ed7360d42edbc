/*
 * h_presence.c - heartbeats, presence queries and viewports (API.md
 * "Presence"). Who is online lives in the store; the hub tells watchers.
 */
#include "core/ids.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/store.h"
#include "core/timeutil.h"
#include "fcgi/app.h"
#include "fcgi/handlers.h"
#include "fcgi/hub.h"

#include <stdlib.h>
#include <string.h>

int h_heartbeat(struct req *r)
{
    const char *me = r->user;
    json_t *body;
    int rc = store_presence_touch(r->db, &me, 1, time_now_ms(), &r->err);

    if (rc)
        return rc;
    body = json_obj();
    json_put(body, "status", json_string("online"));
    json_put(body, "interval", json_integer(r->app->cfg.presence_interval));
    json_put(body, "ttl", json_integer(r->app->cfg.presence_ttl));
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}

/* Split "bob,carol" into validated, de-duplicated ids (owned by *ids). */
static int parse_user_list(struct req *r, const char *list, char ***ids, size_t *n)
{
    char **v = NULL;
    const char *p = list;

    *n = 0;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int dup = 0;
        if (!ids_valid_user(p, len)) {
            lark_err_set(&r->err, LARK_EINVAL, "'users' must be comma-separated user ids");
            goto fail;
        }
        for (size_t i = 0; i < *n; i++)
            dup |= strlen(v[i]) == len && memcmp(v[i], p, len) == 0;
        if (!dup) {
            if (*n == LIMIT_PRESENCE_QUERY_MAX) {
                lark_err_set(&r->err, LARK_ETOOMANY, "at most %d users per query",
                             LIMIT_PRESENCE_QUERY_MAX);
                goto fail;
            }
            v = xrealloc(v, (*n + 1) * sizeof(*v));
            v[(*n)++] = xstrndup(p, len);
        }
        if (!end)
            break;
        p = end + 1;
    }
    *ids = v;
    return 0;
fail:
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    *n = 0;
    return r->err.code;
}

/*
 * The presence of ids[0..n) as r->user may see it (presence_visibility):
 * *out {user: {status, last_seen}}, with a user it shares no conversation
 * with as offline and never seen; ids is reordered so that the n_visible
 * it may see come first (the viewport the hub gets).
 */
static int presence_seen_by(struct req *r, const char **ids, size_t n, json_t **out,
                            size_t *n_visible)
{
    int *visible;
    size_t k = 0;
    int rc;

    *out = NULL;
    *n_visible = n;
    if (strcmp(r->app->cfg.presence_visibility, "all") == 0)
        return store_presence_get(r->db, ids, n, out, &r->err);
    visible = xcalloc(n ? n : 1, sizeof(*visible));
    rc = store_presence_visible(r->db, r->user, ids, n, visible, &r->err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (visible[i]) {
            const char *t = ids[k];
            ids[k++] = ids[i];
            ids[i] = t;
        }
    }
    free(visible);
    if (rc == 0)
        rc = store_presence_get(r->db, ids, k, out, &r->err);
    for (size_t i = k; rc == 0 && i < n; i++) {
        json_t *p = json_obj();
        json_put(p, "status", json_string("offline"));
        json_put(p, "last_seen", json_null());
        json_put(*out, ids[i], p);
    }
    *n_visible = k;
    return rc;
}

int h_presence_get(struct req *r)
{
    const char *list = query_get(&r->query, "users");
    char **ids = NULL;
    const char **view;
    json_t *out = NULL;
    size_t n = 0, n_visible = 0;
    int rc;

    if (!list || !*list)
        return lark_err_set(&r->err, LARK_EINVAL, "'users' is required (users=bob,carol)");
    if ((rc = parse_user_list(r, list, &ids, &n)))
        return rc;
    view = xcalloc(n ? n : 1, sizeof(*view));
    for (size_t i = 0; i < n; i++)
        view[i] = ids[i];
    rc = presence_seen_by(r, view, n, &out, &n_visible);
    free(view);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    if (rc)
        return rc;
    reply_json(r, 200, out);
    json_decref(out);
    return 0;
}

int h_watch(struct req *r)
{
    json_t *users, *u, *presence = NULL, *body;
    const char **ids;
    size_t i, n = 0, n_visible = 0;
    int rc = json_get_array(r->body, "users", JSON_FIELD_REQUIRED, &users, &r->err);

    if (rc)
        return rc;
    if (json_array_size(users) > LIMIT_WATCH_MAX)
        return lark_err_set(&r->err, LARK_ETOOMANY, "a viewport holds at most %d users",
                            LIMIT_WATCH_MAX);
    ids = xcalloc(json_array_size(users) + 1, sizeof(*ids));
    json_array_foreach (users, i, u) {
        int dup = 0;
        if (!json_is_string(u) || !ids_valid_user(json_string_value(u), json_string_length(u))) {
            free(ids);
            return lark_err_set(&r->err, json_is_string(u) ? LARK_EFIELD : LARK_ETYPE,
                                "'users' must be an array of user ids");
        }
        for (size_t j = 0; j < n; j++)
            dup |= strcmp(ids[j], json_string_value(u)) == 0;
        if (!dup)
            ids[n++] = json_string_value(u);
    }
    /* Who may be watched is settled here, on a worker that may read the
     * store; the hub, which must not, gets only those (API.md "Presence"). */
    rc = presence_seen_by(r, ids, n, &presence, &n_visible);
    if (rc == 0 && r->app->hub)
        hub_watch(r->app->hub, r->user, ids, n_visible);
    free(ids);
    if (rc)
        return rc;
    /* the current state now; changes follow as presence events */
    body = json_obj();
    json_put(body, "watching", json_integer((json_int_t)n));
    json_put(body, "presence", presence);
    reply_json(r, 200, body);
    json_decref(body);
    return 0;
}
