/*
 * evdata.c - shared, render-once event data (see evdata.h).
 */
#include "core/evdata.h"

#include "core/json.h"
#include "core/mem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct evdata *evdata_new(const char *type, const char *json, size_t len)
{
    struct evdata *d = xmalloc(sizeof(*d) + len + 1);
    size_t tlen = strlen(type);

    if (tlen > EVDATA_TYPE_MAX)
        tlen = EVDATA_TYPE_MAX;
    atomic_init(&d->refs, 1);
    d->len = len;
    d->ascii = NULL;
    d->ascii_len = 0;
    memcpy(d->type, type, tlen);
    d->type[tlen] = '\0';
    memcpy(d->json, json, len);
    d->json[len] = '\0';
    return d;
}

struct evdata *evdata_ref(struct evdata *d)
{
    if (d)
        atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
    return d;
}

void evdata_unref(struct evdata *d)
{
    if (!d || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (d->ascii != d->json)
        free(d->ascii);
    free(d);
}

static int is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

const char *evdata_ascii(struct evdata *d, size_t *len)
{
    if (!d->ascii) {
        json_t *v = NULL;
        if (!is_ascii(d->json, d->len))
            v = json_loadb(d->json, d->len, JSON_DECODE_ANY, NULL);
        if (v) {
            d->ascii = json_dump(v, 1, &d->ascii_len);
            json_decref(v);
        } else {
            /* ASCII already; or not JSON, which the store never makes -
             * then the bytes go out as they are rather than nothing */
            d->ascii = d->json;
            d->ascii_len = d->len;
        }
    }
    *len = d->ascii_len;
    return d->ascii;
}
