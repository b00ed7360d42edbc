/*
 * store.c - back-end selection and dispatch, plus helpers shared by back
 * ends so that every back end renders identical JSON.
 */
#include "core/store.h"

#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/pushstat.h"
#include "core/store_impl.h"
#include "core/store_ops.h"
#include "core/store_ops_health.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

int store_open(const struct config *cfg, struct store **out, struct lark_err *err)
{
    const char *db = cfg->db;

    *out = NULL;
    const struct store_ops *ops = NULL;
    int rc;

    if (strncmp(db, "sqlite:", 7) == 0) {
        ops = &store_sqlite_ops;
        db += 7;
    } else if (strncmp(db, "postgresql:", 11) == 0 || strncmp(db, "postgres:", 9) == 0) {
        ops = &store_pg_ops;
    }
    if (ops) {
        rc = ops->open(cfg, db, out, err);
        if (rc == 0)
            (*out)->push_window_ms = cfg->push_window_ms;
        return rc;
    }
    return lark_err_set(err, LARK_EINVAL,
                        "unsupported database URL '%s' (use sqlite:PATH or postgresql://...)", db);
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

const char *store_backend(const struct store *s)
{
    return s->ops->name;
}

void store_set_listener(struct store *s, store_note_fn fn, void *arg)
{
    s->listener = fn;
    s->listener_arg = arg;
}

void store_emit_notes(struct store *s, const struct store_note *notes, size_t n)
{
    if (s->listener && n)
        s->listener(s->listener_arg, notes, n);
}

void note_buf_add(struct note_buf *nb, const struct store_note *note)
{
    if (nb->n == nb->cap) {
        nb->cap = nb->cap ? nb->cap * 2 : 64;
        nb->v = xrealloc(nb->v, nb->cap * sizeof(*nb->v));
        nb->owned = xrealloc(nb->owned, 2 * nb->cap * sizeof(*nb->owned));
    }
    nb->v[nb->n] = *note;
    nb->owned[2 * nb->n] = xstrdup(note->user);
    nb->owned[2 * nb->n + 1] = note->json ? xstrdup(note->json) : NULL;
    nb->v[nb->n].user = nb->owned[2 * nb->n];
    nb->v[nb->n].json = nb->owned[2 * nb->n + 1];
    nb->n++;
}

void note_buf_truncate(struct note_buf *nb, size_t n)
{
    while (nb->n > n) {
        nb->n--;
        free(nb->owned[2 * nb->n]);
        free(nb->owned[2 * nb->n + 1]);
    }
}

void note_buf_release(struct note_buf *nb)
{
    note_buf_truncate(nb, 0);
    free(nb->v);
    free(nb->owned);
    memset(nb, 0, sizeof(*nb));
}

int store_conn_open(struct store *s, struct store_conn **out, struct lark_err *err)
{
    return s->ops->conn_open(s, out, err);
}

void store_conn_close(struct store_conn *c)
{
    if (c)
        c->store->ops->conn_close(c);
}

int store_listener_fd(struct store *s)
{
    return s->ops->listener_fd ? s->ops->listener_fd(s) : -1;
}

int64_t store_listener_poll(struct store *s, int *reconnected)
{
    *reconnected = 0;
    return s->ops->listener_poll ? s->ops->listener_poll(s, reconnected) : INT64_MAX;
}

int store_publish(struct store_conn *c, const struct store_note *notes, size_t n,
                  struct lark_err *err)
{
    return n ? c->store->ops->publish(c, notes, n, err) : 0;
}

/* The reader connection, or NULL with err set. */
static struct db *reader(struct store_conn *c, struct lark_err *err)
{
    return c->store->ops->reader(c, err);
}

static int write_op(struct store_conn *c, store_write_fn fn, void *arg, struct lark_err *err)
{
    return c->store->ops->write(c, fn, arg, err);
}

int store_ping(struct store_conn *c, struct lark_err *err)
{
    struct db *d = reader(c, err);
    return d ? op_ping(d, err) : LARK_EUNAVAIL;
}

int store_check_write(struct store_conn *c, struct lark_err *err)
{
    return write_op(c, op_health, NULL, err);
}

int store_send(struct store_conn *c, const struct store_send_in *in, struct store_send_out *out,
               struct lark_err *err)
{
    struct op_send ctx = {in, out, c->store->push_window_ms};
    int rc;

    out->message = NULL;
    out->duplicate = 0;
    rc = write_op(c, op_send, &ctx, err);
    if (rc) {
        json_decref(out->message);
        out->message = NULL;
        out->duplicate = 0;
    }
    return rc;
}

int store_history(struct store_conn *c, const char *user, const char *conversation_id,
                  const struct store_page *page, json_t **messages, int *has_more,
                  struct lark_err *err)
{
    struct db *d = reader(c, err);
    *messages = NULL;
    *has_more = 0;
    return d ? op_history(d, user, conversation_id, page, messages, has_more, err) : LARK_EUNAVAIL;
}

int store_inbox_read(struct store_conn *c, const char *user, uint64_t after, unsigned limit,
                     json_t **events, uint64_t *last, struct lark_err *err)
{
    struct db *d = reader(c, err);
    *events = NULL;
    *last = after;
    return d ? op_inbox_read(d, user, after, limit, events, last, err) : LARK_EUNAVAIL;
}

int store_inbox_state(struct store_conn *c, const char *user, uint64_t *head, uint64_t *acked,
                      struct lark_err *err)
{
    struct db *d = reader(c, err);
    *head = 0;
    *acked = 0;
    return d ? op_inbox_state(d, user, head, acked, err) : LARK_EUNAVAIL;
}

int store_ack(struct store_conn *c, const char *user, uint64_t seq, uint64_t *acked,
              struct lark_err *err)
{
    struct op_ack ctx = {user, seq};
    uint64_t head = 0;
    int rc = store_inbox_state(c, user, &head, acked, err);

    /* Most acks repeat what is stored; only a real advance costs a write. */
    if (rc || *acked >= seq || *acked >= head)
        return rc;
    rc = write_op(c, op_ack, &ctx, err);
    return rc ? rc : store_inbox_state(c, user, &head, acked, err);
}

int store_group_create(struct store_conn *c, const struct store_group_in *in, json_t **conv,
                       struct lark_err *err)
{
    struct op_group ctx = {in, conv};
    int rc;

    *conv = NULL;
    rc = write_op(c, op_group_create, &ctx, err);
    if (rc) {
        json_decref(*conv);
        *conv = NULL;
    }
    return rc;
}

int store_conversation_list(struct store_conn *c, const char *user, const char *before_id,
                            unsigned limit, json_t **list, int *has_more, struct lark_err *err)
{
    struct db *d = reader(c, err);
    *list = NULL;
    *has_more = 0;
    return d ? op_conversation_list(d, user, before_id, limit, list, has_more, err) : LARK_EUNAVAIL;
}

int store_conversation_get(struct store_conn *c, const char *user, const char *conversation_id,
                           json_t **conv, struct lark_err *err)
{
    struct db *d = reader(c, err);
    *conv = NULL;
    return d ? op_conversation_get(d, user, conversation_id, conv, err) : LARK_EUNAVAIL;
}

int store_member_add(struct store_conn *c, const char *actor, const char *conversation_id,
                     const char *user, unsigned max_members, int *added, struct lark_err *err)
{
    struct op_member ctx = {actor, conversation_id, user, max_members, added};
    *added = 0;
    return write_op(c, op_member_add, &ctx, err);
}

int store_member_remove(struct store_conn *c, const char *actor, const char *conversation_id,
                        const char *user, struct lark_err *err)
{
    struct op_member ctx = {actor, conversation_id, user, 0, NULL};
    return write_op(c, op_member_remove, &ctx, err);
}

int store_read(struct store_conn *c, const char *user, const char *conversation_id, uint64_t seq,
               uint64_t *read_seq, struct lark_err *err)
{
    struct op_read ctx = {user, conversation_id, seq, read_seq};
    *read_seq = 0;
    return write_op(c, op_read, &ctx, err);
}

int store_members(struct store_conn *c, const char *user, const char *conversation_id,
                  json_t **members, struct lark_err *err)
{
    struct db *d = reader(c, err);
    *members = NULL;
    return d ? op_members(d, user, conversation_id, members, err) : LARK_EUNAVAIL;
}

int store_presence_touch(struct store_conn *c, const char *const *users, size_t n, int64_t now,
                         struct lark_err *err)
{
    struct op_touch ctx = {users, n, now};
    return n ? write_op(c, op_presence_touch, &ctx, err) : 0;
}

int store_presence_expire(struct store_conn *c, int64_t cutoff, struct lark_err *err)
{
    return write_op(c, op_presence_expire, &cutoff, err);
}

int store_presence_get(struct store_conn *c, const char *const *users, size_t n, json_t **out,
                       struct lark_err *err)
{
    struct db *d = reader(c, err);
    *out = NULL;
    return d ? op_presence_get(d, users, n, out, err) : LARK_EUNAVAIL;
}

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
    json_put(m, "created_at", json_string(ts));
    return m;
}

json_t *store_envelope(uint64_t seq, const char *type, json_t *data)
{
    json_t *e = json_obj();
    json_put(e, "seq", json_integer((json_int_t)seq));
    json_put(e, "type", json_string(type));
    json_put(e, "data", data ? data : json_obj());
    return e;
}

char *store_direct_key(const char *a, const char *b)
{
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    return xasprintf("%s\n%s", a, b);
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

int store_device_add(struct store_conn *c, const struct store_device_in *in, unsigned max_per_user,
                     json_t **device, int *created, struct lark_err *err)
{
    struct op_device_add ctx = {.in = in, .max = max_per_user, .now = time_now_ms()};
    int rc = write_op(c, op_device_add, &ctx, err);

    *device = NULL;
    *created = 0;
    if (rc)
        return rc;
    *device = store_device_json(in->platform, in->token, in->app, ctx.created_at);
    *created = ctx.created;
    return 0;
}

int store_device_list(struct store_conn *c, const char *user, json_t **devices,
                      struct lark_err *err)
{
    struct db *d = reader(c, err);
    *devices = NULL;
    return d ? op_device_list(d, user, devices, err) : LARK_EUNAVAIL;
}

int store_device_remove(struct store_conn *c, const char *user, const char *token,
                        struct lark_err *err)
{
    struct op_device_remove ctx = {user, token};
    return write_op(c, op_device_remove, &ctx, err);
}

int store_push_claim(struct store_conn *c, int64_t now, int64_t lease_until, unsigned max,
                     struct store_push_job **jobs, size_t *n, struct lark_err *err)
{
    struct op_push_claim ctx = {.now = now, .lease_until = lease_until, .max = max};
    int rc;

    *jobs = NULL;
    *n = 0;
    if (max == 0)
        return 0;
    ctx.jobs = xcalloc(max, sizeof(*ctx.jobs));
    rc = write_op(c, op_push_claim, &ctx, err);
    if (rc || ctx.n == 0) {
        /* a failed claim was rolled back: the jobs read are not leased */
        store_push_jobs_free(ctx.jobs, ctx.n);
        return rc;
    }
    *jobs = ctx.jobs;
    *n = ctx.n;
    return 0;
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
    memset(j, 0, sizeof(*j));
}

void store_push_jobs_free(struct store_push_job *jobs, size_t n)
{
    for (size_t i = 0; jobs && i < n; i++)
        store_push_job_release(&jobs[i]);
    free(jobs);
}

int store_push_finish(struct store_conn *c, const struct store_push_result *results, size_t n,
                      const struct pushstat *delta, int64_t now, struct lark_err *err)
{
    struct op_push_finish ctx = {results, n, delta, now};

    if (n == 0 && (!delta || pushstat_empty(delta)))
        return 0;
    return write_op(c, op_push_finish, &ctx, err);
}

int store_push_next_due(struct store_conn *c, int64_t *due_at, struct lark_err *err)
{
    struct db *d = reader(c, err);
    *due_at = INT64_MAX;
    return d ? op_push_next_due(d, due_at, err) : LARK_EUNAVAIL;
}

int store_push_watch(struct store_conn *c, int *fd, struct lark_err *err)
{
    *fd = -1;
    return c->store->ops->push_watch(c, fd, err);
}

int store_push_watch_drain(struct store_conn *c, int *changed, struct lark_err *err)
{
    *changed = 0;
    return c->store->ops->push_watch_drain(c, changed, err);
}

int store_push_stats(struct store_conn *c, struct pushstat *out, struct lark_err *err)
{
    struct db *d = reader(c, err);
    memset(out, 0, sizeof(*out));
    return d ? op_push_stats(d, out, err) : LARK_EUNAVAIL;
}

int store_push_dead_list(struct store_conn *c, int64_t before_id, unsigned limit, json_t **out,
                         struct lark_err *err)
{
    struct db *d = reader(c, err);
    *out = NULL;
    return d ? op_push_dead_list(d, before_id, limit, out, err) : LARK_EUNAVAIL;
}

int store_push_requeue(struct store_conn *c, int64_t id, int64_t now, size_t *n,
                       struct lark_err *err)
{
    struct op_push_requeue ctx = {.id = id, .now = now};
    int rc = write_op(c, op_push_requeue, &ctx, err);
    *n = rc == 0 ? ctx.n : 0;
    return rc;
}
