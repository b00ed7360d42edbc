/*
 * fuzz_pgnote.c - libFuzzer target for the NOTIFY payloads between larkd
 * processes (core/pgnote.h): what another host's hub delivers to its
 * clients comes out of this decoder, and anyone who can NOTIFY on the
 * channel controls its input.
 *
 * The input is one payload. pgnote_decode must not crash or leak, and
 * every note it emits must be well formed: a user id of API.md's
 * alphabet, a stored event with a seq >= 1 and data without CR or NUL (it
 * is written into an SSE data: line as it is), an ephemeral envelope
 * likewise. Then what was decoded is encoded again and decoded again: the
 * same notes must come back, in the same order (the encoder and decoder
 * agree on every input the decoder accepts).
 */
#include "core/evdata.h"
#include "core/mem.h"
#include "core/pgnote.h"
#include "tests/fuzz/fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Notes as decoded, copied (with references to their data). */
struct copy {
    struct store_note v[4096];
    char *strs[8192];
    size_t n, nstrs;
};

static int user_ok(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 64)
        return 0;
    for (; *u; u++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-", *u))
            return 0;
    return 1;
}

static void keep(void *arg, const struct store_note *notes, size_t n)
{
    struct copy *c = arg;
    for (size_t i = 0; i < n && c->n < 4096; i++) {
        const struct store_note *x = &notes[i];
        struct store_note *y = &c->v[c->n++];
        CHECK(user_ok(x->user));
        if (x->kind == STORE_NOTE_EVENT) {
            CHECK(x->seq >= 1);
            if (x->data)
                CHECK(!memchr(x->data->json, '\r', x->data->len) && x->data->len &&
                      strlen(x->data->json) == x->data->len);
        }
        if (x->kind == STORE_NOTE_EPHEMERAL)
            CHECK(x->json && !strchr(x->json, '\r') && !strchr(x->json, '\n'));
        *y = *x;
        y->user = c->strs[c->nstrs++] = xstrdup(x->user);
        if (x->json)
            y->json = c->strs[c->nstrs++] = xstrdup(x->json);
        evdata_ref(x->data);
    }
}

static void copy_free(struct copy *c)
{
    for (size_t i = 0; i < c->n; i++)
        evdata_unref(c->v[i].data);
    for (size_t i = 0; i < c->nstrs; i++)
        free(c->strs[i]);
}

struct payloads {
    char *v[512];
    size_t n;
};

static int on_send(void *arg, const char *payload, size_t len)
{
    struct payloads *p = arg;
    CHECK(len <= PGNOTE_PAYLOAD_MAX && strlen(payload) == len && p->n < 512);
    p->v[p->n++] = xstrdup(payload);
    return 0;
}

static int same(const struct store_note *a, const struct store_note *b)
{
    if (a->kind != b->kind || strcmp(a->user, b->user) != 0)
        return 0;
    if (a->kind == STORE_NOTE_EVENT)
        return a->seq == b->seq && !a->data == !b->data &&
               (!a->data || (strcmp(a->data->type, b->data->type) == 0 &&
                             strcmp(a->data->json, b->data->json) == 0));
    if (a->kind == STORE_NOTE_PRESENCE)
        return a->online == b->online && a->last_seen == b->last_seen;
    return strcmp(a->json, b->json) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct copy first, second;
    struct payloads p = {0};
    char *payload = xmalloc(size + 1);

    memcpy(payload, data, size);
    payload[size] = '\0';
    memset(&first, 0, sizeof(first));
    memset(&second, 0, sizeof(second));
    pgnote_decode(payload, size, "ffffffffffffffff", keep, &first);
    /* an input that fits one payload holds notes that fit one again */
    if (first.n < 4096 && size <= PGNOTE_PAYLOAD_MAX) {
        CHECK(pgnote_encode("0123456789abcdef", first.v, first.n, on_send, &p) == 0);
        for (size_t i = 0; i < p.n; i++) {
            CHECK(pgnote_decode(p.v[i], strlen(p.v[i]), NULL, keep, &second) >= 0);
            free(p.v[i]);
        }
        CHECK(second.n == first.n);
        for (size_t i = 0; i < first.n; i++)
            CHECK(same(&first.v[i], &second.v[i]));
    }
    copy_free(&first);
    copy_free(&second);
    free(payload);
    return 0;
}
