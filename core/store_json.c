/*
 * store_json.c - what the store hands out: API JSON rendered from rows
 * (messages, envelopes, members, conversations, devices), identical for
 * every back end because it is made in one place, and the frees for the
 * arrays the store returns. Called by the operations (store_ops*.c) and by
 * callers of store.h; calls nothing of the store.
 */
#include "core/store_impl.h"

#include "core/evdata.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

json_t *store_member_json(const char *user, const char *role, uint64_t read_seq,
                          uint64_t delivered_seq, int detail)
{
    json_t *m = json_obj();
    json_put(m, "user", json_string(user));
    json_put(m, "role", json_string(role));
    if (detail) {
        json_put(m, "read_seq", json_integer((json_int_t)read_seq));
        json_put(m, "delivered_seq", json_integer((json_int_t)delivered_seq));
    }
    return m;
}

json_t *store_conversation_json(const char *id, const char *type, const char *title,
                                const char *creator, int64_t created_at, uint64_t last_seq,
                                json_t *last_message, uint64_t unread, json_t *members)
{
    char ts[TIME_RFC3339_LEN];
    json_t *c = json_obj();

    time_rfc3339(created_at, ts);
    json_put(c, "id", json_string(id));
    json_put(c, "type", json_string(type));
    json_put(c, "title", title ? json_string(title) : json_null());
    json_put(c, "creator", json_string(creator));
    json_put(c, "created_at", json_string(ts));
    json_put(c, "last_seq", json_integer((json_int_t)last_seq));
    json_put(c, "last_message", last_message ? last_message : json_null());
    json_put(c, "unread", json_integer((json_int_t)unread));
    json_put(c, "members", members ? members : json_arr());
    return c;
}

json_t *store_msg_json(const struct store_msg_row *r)
{
    char ts[TIME_RFC3339_LEN];
    json_t *m = json_obj();
    json_t *meta = json_loads(r->meta ? r->meta : "{}", 0, NULL);

    /* meta was validated as an object on the way in; a bad row stays visible */
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_obj();
    }
    time_rfc3339(r->created_at, ts);
    json_put(m, "id", json_string(r->id));
    json_put(m, "conversation_id", json_string(r->conversation_id));
    json_put(m, "seq", json_integer((json_int_t)r->seq));
    json_put(m, "sender", json_string(r->sender));
    json_put(m, "client_msg_id", json_string(r->client_msg_id));
    json_put(m, "type", json_string(r->type));
    json_put(m, "body", json_stringn(r->body, r->body_len));
    json_put(m, "meta", meta);
    if (r->media && *r->media) {
        /* rendered by store_media_json on the way in; a bad row is left out */
        json_t *media = json_loads(r->media, 0, NULL);
        if (json_is_array(media) && json_array_size(media) > 0)
            json_put(m, "media", json_incref(media));
        json_decref(media);
    }
    json_put(m, "created_at", json_string(ts));
    return m;
}

json_t *store_media_json(const struct store_media *m, int full)
{
    char ts[TIME_RFC3339_LEN];
    json_t *o = json_obj();

    json_put(o, "id", json_string(m->id));
    json_put(o, "content_type", json_string(m->content_type));
    json_put(o, "size", json_integer((json_int_t)m->size));
    json_put(o, "sha256", json_string(m->sha256));
    json_put(o, "name", json_string(m->name));
    if (full) {
        time_rfc3339(m->created_at, ts);
        json_put(o, "created_at", json_string(ts));
        json_put(o, "status", json_string(m->ready ? "ready" : "pending"));
    }
    return o;
}

void store_media_release(struct store_media *m)
{
    free(m->id);
    free(m->uploader);
    free(m->content_type);
    free(m->name);
    free(m->sha256);
    free(m->skey);
    free(m->upload_hash);
    memset(m, 0, sizeof(*m));
}

json_t *store_envelope(uint64_t seq, const char *type, json_t *data)
{
    json_t *e = json_obj();
    json_put(e, "seq", json_integer((json_int_t)seq));
    json_put(e, "type", json_string(type));
    json_put(e, "data", data ? data : json_obj());
    return e;
}

json_t *store_device_json(const char *platform, const char *token, const char *app,
                          int64_t created_at)
{
    char ts[TIME_RFC3339_LEN];
    json_t *d = json_obj();

    time_rfc3339(created_at, ts);
    json_put(d, "platform", json_string(platform));
    json_put(d, "token", json_string(token));
    json_put(d, "app", json_string(app));
    json_put(d, "created_at", json_string(ts));
    return d;
}

/* ---- devices and push jobs -------------------------------------------- */

void store_events_free(struct store_event *evs, size_t n)
{
    for (size_t i = 0; evs && i < n; i++)
        evdata_unref(evs[i].data);
    free(evs);
}

void store_push_job_release(struct store_push_job *j)
{
    free(j->user);
    free(j->platform);
    free(j->token);
    free(j->app);
    free(j->conversation_id);
    free(j->conv_title);
    free(j->sender);
    free(j->msg_type);
    free(j->body);
    free(j->media);
    memset(j, 0, sizeof(*j));
}

void store_push_jobs_free(struct store_push_job *jobs, size_t n)
{
    for (size_t i = 0; jobs && i < n; i++)
        store_push_job_release(&jobs[i]);
    free(jobs);
}
