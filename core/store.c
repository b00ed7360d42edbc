/*
 * store.c - back-end selection and dispatch, plus helpers shared by back
 * ends so that every back end renders identical JSON.
 */
#include "core/store.h"

#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/store_impl.h"
#include "core/timeutil.h"

#include <string.h>

int store_open(const struct config *cfg, struct store **out, struct lark_err *err)
{
    const char *db = cfg->db;

    *out = NULL;
    if (strncmp(db, "sqlite:", 7) == 0)
        return store_sqlite_ops.open(cfg, db + 7, out, err);
    return lark_err_set(err, LARK_EINVAL, "unsupported database URL '%s' (use sqlite:PATH)", db);
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

void store_set_wake(struct store *s, store_wake_fn fn, void *arg)
{
    s->wake = fn;
    s->wake_arg = arg;
}

void store_emit_wake(struct store *s, const struct store_wake *w, size_t n)
{
    if (s->wake && n)
        s->wake(s->wake_arg, w, n);
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

int store_ping(struct store_conn *c, struct lark_err *err)
{
    return c->store->ops->ping(c, err);
}

int store_send(struct store_conn *c, const struct store_send_in *in, struct store_send_out *out,
               struct lark_err *err)
{
    out->message = NULL;
    out->duplicate = 0;
    return c->store->ops->send(c, in, out, err);
}

int store_history(struct store_conn *c, const char *user, const char *conversation_id,
                  const struct store_page *page, json_t **messages, int *has_more,
                  struct lark_err *err)
{
    *messages = NULL;
    *has_more = 0;
    return c->store->ops->history(c, user, conversation_id, page, messages, has_more, err);
}

int store_inbox_read(struct store_conn *c, const char *user, uint64_t after, unsigned limit,
                     json_t **events, uint64_t *last, struct lark_err *err)
{
    *events = NULL;
    *last = after;
    return c->store->ops->inbox_read(c, user, after, limit, events, last, err);
}

int store_inbox_state(struct store_conn *c, const char *user, uint64_t *head, uint64_t *acked,
                      struct lark_err *err)
{
    *head = 0;
    *acked = 0;
    return c->store->ops->inbox_state(c, user, head, acked, err);
}

int store_ack(struct store_conn *c, const char *user, uint64_t seq, uint64_t *acked,
              struct lark_err *err)
{
    /* A user without an inbox has acknowledged nothing; back ends read
     * *acked before deciding whether to write. */
    *acked = 0;
    return c->store->ops->ack(c, user, seq, acked, err);
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
