/*
 * store.c - back-end selection and dispatch, plus helpers shared by back
 * ends so that every back end renders identical JSON.
 */
#include "core/store.h"

#include "core/config.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/pushstat.h"
#include "core/store_impl.h"
#include "core/store_ops.h"
#include "core/store_ops_health.h"
#include "core/timeutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int store_open(const struct config *cfg, struct store **out, struct lark_err *err)
{
    return store_open_flags(cfg, 0, out, err);
}

int store_open_flags(const struct config *cfg, unsigned flags, struct store **out,
                     struct lark_err *err)
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
        rc = ops->open(cfg, db, flags, out, err);
        if (rc == 0) {
            (*out)->push_window_ms = cfg->push_window_ms;
            pthread_mutex_init(&(*out)->listener_mu, NULL);
        }
        return rc;
    }
    return lark_err_set(err, LARK_EINVAL,
                        "unsupported database URL '%s' (use sqlite:PATH or postgresql://...)", db);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_later_stop(s); /* its queue is written through the back end */
    pthread_mutex_destroy(&s->listener_mu);
    s->ops->close(s);
}

const char *store_backend(const struct store *s)
{
    return s->ops->name;
}

void store_set_listener(struct store *s, store_note_fn fn, void *arg)
{
    pthread_mutex_lock(&s->listener_mu);
    s->listener = fn;
    s->listener_arg = arg;
    pthread_mutex_unlock(&s->listener_mu);
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

int store_listener_fd(struct store *s, int *want_write)
{
    *want_write = 0;
    return s->ops->listener_fd ? s->ops->listener_fd(s, want_write) : -1;
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

int store_ticket_key(struct store_conn *c, char hex[2 * STORE_TICKET_KEY_LEN + 1],
                     struct lark_err *err)
{
    struct op_ticket_key ctx = {time_now_ms(), hex};
    hex[0] = '\0';
    return write_op(c, op_ticket_key, &ctx, err);
}

int store_ticket_use(struct store_conn *c, const char *nonce, int64_t expires_at, int64_t now,
                     int *first, struct lark_err *err)
{
    struct op_ticket_use ctx = {nonce, expires_at, now, first};
    *first = 0;
    return write_op(c, op_ticket_use, &ctx, err);
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
    rc = c->store->ops->send ? c->store->ops->send(c, in, out, err)
                             : write_op(c, op_send, &ctx, err);
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
                     struct store_event **evs, size_t *n, uint64_t *head, struct lark_err *err)
{
    struct db *d = reader(c, err);
    uint64_t acked = 0;
    int rc;

    *evs = NULL;
    *n = 0;
    *head = 0;
    if (!d)
        return LARK_EUNAVAIL;
    /* the head first: an event committed between the two reads is
     * returned and lifts the head below, never the other way round */
    rc = op_inbox_state(d, user, head, &acked, err);
    if (rc == 0)
        rc = op_inbox_read(d, user, after, limit, evs, n, err);
    if (rc == 0 && *n && (*evs)[*n - 1].seq > *head)
        *head = (*evs)[*n - 1].seq;
    return rc;
}

int store_inbox_read_many(struct store_conn *c, struct store_inbox_req *reqs, size_t n,
                          unsigned limit, struct lark_err *err)
{
    struct db *d = reader(c, err);
    int rc;

    for (size_t i = 0; i < n; i++) {
        reqs[i].evs = NULL;
        reqs[i].n = 0;
        reqs[i].head = 0;
    }
    rc = d ? op_inbox_read_many(d, reqs, n, limit, err) : LARK_EUNAVAIL;
    for (size_t i = 0; rc && i < n; i++) {
        store_events_free(reqs[i].evs, reqs[i].n);
        reqs[i].evs = NULL;
        reqs[i].n = 0;
    }
    return rc;
}

int store_inbox_state(struct store_conn *c, const char *user, uint64_t *head, uint64_t *acked,
                      struct lark_err *err)
{
    struct db *d = reader(c, err);
    uint64_t queued;
    int rc;

    *head = 0;
    *acked = 0;
    if (!d)
        return LARK_EUNAVAIL;
    rc = op_inbox_state(d, user, head, acked, err);
    queued = store_later_acked(c->store, user);
    if (rc == 0 && queued > *acked)
        *acked = queued < *head ? queued : *head;
    return rc;
}

int store_ack(struct store_conn *c, const char *user, uint64_t seq, uint64_t *acked,
              struct lark_err *err)
{
    struct op_ack ctx = {user, seq};
    struct db *d = reader(c, err);
    uint64_t head = 0;
    int rc;

    *acked = 0;
    if (!d)
        return LARK_EUNAVAIL;
    /* what is stored, not what is queued: this one is durable on return */
    rc = op_inbox_state(d, user, &head, acked, err);
    /* Most acks repeat what is stored; only a real advance costs a write. */
    if (rc || *acked >= seq || *acked >= head)
        return rc;
    rc = write_op(c, op_ack, &ctx, err);
    if (rc == 0)
        rc = op_inbox_state(d, user, &head, acked, err);
    return rc;
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

int store_presence_visible(struct store_conn *c, const char *viewer, const char *const *users,
                           size_t n, int *visible, struct lark_err *err)
{
    struct db *d = reader(c, err);
    if (!d) {
        memset(visible, 0, n * sizeof(*visible));
        return LARK_EUNAVAIL;
    }
    return op_presence_visible(d, viewer, users, n, visible, err);
}

int store_presence_get(struct store_conn *c, const char *const *users, size_t n, json_t **out,
                       struct lark_err *err)
{
    struct db *d = reader(c, err);
    *out = NULL;
    return d ? op_presence_get(d, users, n, out, err) : LARK_EUNAVAIL;
}

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

int store_inbox_watch(struct store_conn *c, const char *user, int *fd, struct lark_err *err)
{
    *fd = -1;
    return c->store->ops->inbox_watch(c, user, fd, err);
}

int store_inbox_watch_drain(struct store_conn *c, int *changed, struct lark_err *err)
{
    *changed = 0;
    return c->store->ops->inbox_watch_drain(c, changed, err);
}

/* ---- per-user limits shared by processes ------------------------------ */

int store_rate_take(struct store_conn *c, const char *cls, const char *user, double rate,
                    double burst, int64_t now_ms, int64_t *wait_ms, struct lark_err *err)
{
    /* millionths of a token (0006_shared_limits): 1/60 per second is 17
     * per ms, a rounding that no caller can notice */
    struct op_rate_take t = {
        .cls = cls,
        .user = user,
        .rate_u = (int64_t)(rate * 1000.0 + 0.5),
        .burst_u = (int64_t)((burst < 1 ? 1 : burst) * 1e6 + 0.5),
        .now_ms = now_ms,
    };
    int rc;

    if (t.rate_u < 1)
        t.rate_u = 1;
    rc = write_op(c, op_rate_take, &t, err);
    *wait_ms = rc ? 0 : t.wait_ms;
    return rc;
}

int store_held_acquire(struct store_conn *c, const struct store_held_in *in, struct lark_err *err)
{
    struct op_held h = {.in = in};
    int rc = write_op(c, op_held_acquire, &h, err);

    if (rc == 0 && h.refused)
        rc = lark_err_set(err, LARK_ETOOMANYCONN, "at most %u held connections per user", in->max);
    return rc;
}

int store_held_release(struct store_conn *c, const char *slot, struct lark_err *err)
{
    struct op_held_release r = {slot};
    return write_op(c, op_held_release, &r, err);
}

int store_media_create(struct store_conn *c, const struct store_media *in, int64_t quota,
                       struct lark_err *err)
{
    struct op_media_create ctx = {in, quota};
    return write_op(c, op_media_create, &ctx, err);
}

int store_media_ready(struct store_conn *c, const char *id, struct lark_err *err)
{
    struct op_media_ready ctx = {id};
    return write_op(c, op_media_ready, &ctx, err);
}

int store_media_usage(struct store_conn *c, const char *user, int64_t *bytes, struct lark_err *err)
{
    struct db *d = reader(c, err);
    *bytes = 0;
    return d ? op_media_usage(d, user, bytes, err) : LARK_EUNAVAIL;
}

int store_media_get(struct store_conn *c, const char *id, const char *user, struct store_media *out,
                    struct lark_err *err)
{
    struct db *d = reader(c, err);
    memset(out, 0, sizeof(*out));
    return d ? op_media_get(d, id, user, out, err) : LARK_EUNAVAIL;
}

int store_media_expire(struct store_conn *c, int64_t cutoff, unsigned limit, json_t **gone,
                       struct lark_err *err)
{
    struct op_media_expire ctx = {cutoff, limit, json_arr()};
    int rc = write_op(c, op_media_expire, &ctx, err);

    *gone = NULL;
    if (rc) {
        json_decref(ctx.gone);
        return rc;
    }
    *gone = ctx.gone;
    return 0;
}

int store_media_key_used(struct store_conn *c, const char *skey, int *used, struct lark_err *err)
{
    struct db *d = reader(c, err);
    *used = 0;
    return d ? op_media_key_used(d, skey, used, err) : LARK_EUNAVAIL;
}
