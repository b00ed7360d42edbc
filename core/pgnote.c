/*
 * pgnote.c - NOTIFY payloads between larkd processes (see pgnote.h).
 */
#include "core/pgnote.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/evdata.h"
#include "core/limits.h"
#include "core/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* "P <user> 1 <ms>" and friends: room for the fixed parts of a record. */
#define PGNOTE_RECORD_SLACK 48

/* ---- encoding ---------------------------------------------------------- */

struct enc {
    struct buf b;              /* the payload being built */
    size_t header_len;         /* bytes of its header line */
    const struct evdata *data; /* the data its last D line carries, NULL if none */
    pgnote_send_fn send;
    void *arg;
    const char *origin;
};

static int enc_flush(struct enc *e)
{
    int rc = 0;
    if (e->b.len > e->header_len)
        rc = e->send(e->arg, e->b.data, e->b.len);
    buf_truncate(&e->b, e->header_len);
    e->data = NULL;
    return rc;
}

/* Make room for need more bytes, sending the payload when it is full. */
static int enc_room(struct enc *e, size_t need)
{
    if (e->b.len + need <= PGNOTE_PAYLOAD_MAX)
        return 0;
    return enc_flush(e);
}

static int enc_fits_alone(const struct enc *e, size_t need)
{
    return e->header_len + need <= PGNOTE_PAYLOAD_MAX;
}

static void enc_data(struct enc *e, const struct evdata *data)
{
    buf_printf(&e->b, "\nD %s ", data->type);
    buf_append(&e->b, data->json, data->len);
    e->data = data;
}

static int enc_event(struct enc *e, const struct store_note *n)
{
    size_t item = strlen(n->user) + 24;                                    /* "\nE user seq" */
    size_t dline = n->data ? 4 + strlen(n->data->type) + n->data->len : 0; /* "\nD type json" */
    /* data that cannot fit even an empty payload travels as W: read it */
    int carry = n->data && enc_fits_alone(e, dline + item);
    int rc;

    if (carry && e->data != n->data) {
        if ((rc = enc_room(e, dline + item)))
            return rc;
        enc_data(e, n->data);
    }
    if ((rc = enc_room(e, item)))
        return rc;
    if (carry && e->data != n->data)
        enc_data(e, n->data); /* the payload was sent: its D line with it */
    buf_printf(&e->b, "\n%c %s %llu", carry ? 'E' : 'W', n->user, (unsigned long long)n->seq);
    return 0;
}

static int enc_note(struct enc *e, const struct store_note *n)
{
    int rc;

    switch (n->kind) {
    case STORE_NOTE_EVENT: return enc_event(e, n);
    case STORE_NOTE_PRESENCE:
        if ((rc = enc_room(e, strlen(n->user) + PGNOTE_RECORD_SLACK)))
            return rc;
        buf_printf(&e->b, "\nP %s %d %lld", n->user, n->online ? 1 : 0, (long long)n->last_seen);
        return 0;
    case STORE_NOTE_EPHEMERAL: {
        size_t need = 4 + strlen(n->user) + (n->json ? strlen(n->json) : 0);
        if (!n->json || !enc_fits_alone(e, need))
            return 0; /* best effort (API.md): too large to carry */
        if ((rc = enc_room(e, need)))
            return rc;
        buf_printf(&e->b, "\nT %s %s", n->user, n->json);
        return 0;
    }
    }
    return 0;
}

int pgnote_encode(const char *origin, const struct store_note *notes, size_t n, pgnote_send_fn send,
                  void *arg)
{
    struct enc e = {.send = send, .arg = arg, .origin = origin};
    int rc = 0;

    buf_init(&e.b, PGNOTE_PAYLOAD_MAX + 1);
    buf_printf(&e.b, "2 %s", origin);
    e.header_len = e.b.len;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = enc_note(&e, &notes[i]);
    if (rc == 0)
        rc = enc_flush(&e);
    buf_release(&e.b);
    return rc;
}

/* ---- decoding ---------------------------------------------------------- */

/* What one payload decodes to, handed to emit in one call. */
struct dec {
    struct store_note *v;
    size_t n, cap;
    struct evdata **data; /* D lines' data, released after emit */
    size_t ndata, capdata;
    char **strs; /* copies the notes point at, freed after emit */
    size_t nstrs, capstrs;
};

/* Field k (0-based, split at single spaces) of a line; the last field
 * asked for may be the rest of the line (rest = 1). */
struct field {
    const char *p;
    size_t len;
};

static int split(const char *line, size_t len, struct field *f, int nf, int rest)
{
    const char *p = line, *end = line + len;
    for (int i = 0; i < nf; i++) {
        const char *sp = (i == nf - 1 && rest) ? end : memchr(p, ' ', (size_t)(end - p));
        if (!sp)
            sp = end;
        if (i < nf - 1 && sp == end)
            return -1; /* too few fields */
        f[i].p = p;
        f[i].len = (size_t)(sp - p);
        p = sp < end ? sp + 1 : end;
    }
    return rest || p >= end ? 0 : -1; /* trailing fields are malformed too */
}

/* An event type: what lark writes ("message", "receipt", ...), so that it
 * goes into an envelope's JSON string and an SSE event: line as it is. */
static int type_ok(const struct field *f)
{
    if (f->len == 0 || f->len > EVDATA_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < f->len; i++)
        if (!((f->p[i] >= 'a' && f->p[i] <= 'z') || f->p[i] == '_'))
            return 0;
    return 1;
}

static int user_ok(const struct field *f)
{
    if (f->len == 0 || f->len > LIMIT_USER_ID_MAX)
        return 0;
    for (size_t i = 0; i < f->len; i++) {
        char c = f->p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

static int u64_of(const struct field *f, uint64_t *out)
{
    uint64_t v = 0;
    if (f->len == 0 || f->len > 19)
        return -1;
    for (size_t i = 0; i < f->len; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(f->p[i] - '0');
    }
    if (v > INT64_MAX)
        return -1; /* seqs and times are int64 in the database */
    *out = v;
    return 0;
}

/* JSON text fit for an SSE data: line: not empty, no CR (LF cannot occur,
 * lines are split at it), no NUL. */
static int json_line_ok(const struct field *f)
{
    return f->len > 0 && !memchr(f->p, '\r', f->len) && !memchr(f->p, '\0', f->len);
}

/* A copy of f, freed with the decoding. */
static const char *dec_str(struct dec *d, const struct field *f)
{
    if (d->nstrs == d->capstrs) {
        d->capstrs = d->capstrs ? d->capstrs * 2 : 16;
        d->strs = xrealloc(d->strs, d->capstrs * sizeof(*d->strs));
    }
    return d->strs[d->nstrs++] = xstrndup(f->p, f->len);
}

static struct store_note *dec_add(struct dec *d, enum store_note_kind kind,
                                  const struct field *user)
{
    struct store_note *n;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = xrealloc(d->v, d->cap * sizeof(*d->v));
    }
    n = &d->v[d->n++];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->user = dec_str(d, user);
    return n;
}

static void dec_keep(struct dec *d, struct evdata *ev)
{
    if (d->ndata == d->capdata) {
        d->capdata = d->capdata ? d->capdata * 2 : 4;
        d->data = xrealloc(d->data,
                           d->capdata * sizeof(*d->data)); /* NOLINT(bugprone-sizeof-expression) */
    }
    d->data[d->ndata++] = ev;
}

/* One record of the current format; -1 if malformed. */
static int dec_record(struct dec *d, const char *line, size_t len, struct evdata **cur)
{
    struct field f[4];
    uint64_t v;

    if (len < 2 || line[1] != ' ')
        return -1;
    switch (line[0]) {
    case 'D':
        if (split(line + 2, len - 2, f, 2, 1) || !type_ok(&f[0]) || !json_line_ok(&f[1]))
            return -1;
        {
            char type[EVDATA_TYPE_MAX + 1];
            memcpy(type, f[0].p, f[0].len);
            type[f[0].len] = '\0';
            *cur = evdata_new(type, f[1].p, f[1].len);
            dec_keep(d, *cur);
        }
        return 0;
    case 'E':
    case 'W':
        if (split(line + 2, len - 2, f, 2, 0) || !user_ok(&f[0]) || u64_of(&f[1], &v) || !v ||
            (line[0] == 'E' && !*cur))
            return -1;
        dec_add(d, STORE_NOTE_EVENT, &f[0])->seq = v;
        d->v[d->n - 1].data = line[0] == 'E' ? *cur : NULL;
        return 0;
    case 'P':
        if (split(line + 2, len - 2, f, 3, 0) || !user_ok(&f[0]) || f[1].len != 1 ||
            (f[1].p[0] != '0' && f[1].p[0] != '1') || u64_of(&f[2], &v))
            return -1;
        dec_add(d, STORE_NOTE_PRESENCE, &f[0])->online = f[1].p[0] == '1';
        d->v[d->n - 1].last_seen = (int64_t)v;
        return 0;
    case 'T':
        if (split(line + 2, len - 2, f, 2, 1) || !user_ok(&f[0]) || !json_line_ok(&f[1]))
            return -1;
        dec_add(d, STORE_NOTE_EPHEMERAL, &f[0])->json = dec_str(d, &f[1]);
        return 0;
    default: return -1;
    }
}

/* The first format's body (after "<kind> <origin> "); -1 if malformed. */
static int dec_v1(struct dec *d, char kind, const char *p, size_t len)
{
    struct field f[3];
    uint64_t v;

    if (kind == 'w') {
        const char *end = p + len;
        while (p < end) {
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            const char *item_end = sp ? sp : end;
            const char *colon = item_end > p ? memrchr(p, ':', (size_t)(item_end - p)) : NULL;
            struct field user = {p, colon ? (size_t)(colon - p) : 0};
            struct field seq = {colon ? colon + 1 : p, colon ? (size_t)(item_end - colon - 1) : 0};
            if (!colon || !user_ok(&user) || u64_of(&seq, &v) || !v)
                return -1;
            dec_add(d, STORE_NOTE_EVENT, &user)->seq = v;
            p = sp ? sp + 1 : end;
        }
        return 0;
    }
    if (kind == 'p') {
        if (split(p, len, f, 3, 0) || !user_ok(&f[0]) || f[1].len != 1 ||
            (f[1].p[0] != '0' && f[1].p[0] != '1') || u64_of(&f[2], &v))
            return -1;
        dec_add(d, STORE_NOTE_PRESENCE, &f[0])->online = f[1].p[0] == '1';
        d->v[d->n - 1].last_seen = (int64_t)v;
        return 0;
    }
    if (kind == 'e') {
        if (split(p, len, f, 2, 1) || !user_ok(&f[0]) || !json_line_ok(&f[1]) ||
            memchr(f[1].p, '\n', f[1].len))
            return -1;
        dec_add(d, STORE_NOTE_EPHEMERAL, &f[0])->json = dec_str(d, &f[1]);
        return 0;
    }
    return -1;
}

static int origin_is(const char *p, size_t len, const char *self)
{
    return self && len == strlen(self) && memcmp(p, self, len) == 0;
}

static int dec_payload(struct dec *d, const char *payload, size_t len, const char *self)
{
    const char *end = payload + len;
    const char *nl = memchr(payload, '\n', len);
    const char *head_end = nl ? nl : end;
    struct evdata *cur = NULL;
    struct field f[2];

    if (len >= 2 && (payload[0] == 'w' || payload[0] == 'p' || payload[0] == 'e') &&
        payload[1] == ' ') {
        /* the first format: one line, "<kind> <origin> <body>" */
        if (nl || split(payload + 2, len - 2, f, 2, 1))
            return -1;
        return origin_is(f[0].p, f[0].len, self) ? 0 : dec_v1(d, payload[0], f[1].p, f[1].len);
    }
    if (len < 2 || payload[0] != '2' || payload[1] != ' ' || payload[len - 1] == '\n' ||
        split(payload + 2, (size_t)(head_end - payload - 2), f, 1, 0) || f[0].len == 0)
        return -1;
    if (origin_is(f[0].p, f[0].len, self))
        return 0;
    for (const char *p = nl ? nl + 1 : end; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        if (dec_record(d, p, (size_t)(e - p), &cur) != 0)
            return -1;
        p = e + 1;
    }
    return 0;
}

int pgnote_decode(const char *payload, size_t len, const char *self_origin, store_note_fn emit,
                  void *arg)
{
    struct dec d = {0};
    int rc = memchr(payload, '\0', len) ? -1 : dec_payload(&d, payload, len, self_origin);
    int count = (int)d.n;

    if (d.n)
        emit(arg, d.v, d.n);
    for (size_t i = 0; i < d.nstrs; i++)
        free(d.strs[i]);
    for (size_t i = 0; i < d.ndata; i++)
        evdata_unref(d.data[i]);
    free(d.v);
    free(d.strs);
    free(d.data);
    return rc < 0 ? -1 : count;
}
