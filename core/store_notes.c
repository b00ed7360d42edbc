/*
 * store_notes.c - copied notes (see store_notes.h), and handing notes to
 * this process's listener.
 */
#include "core/store_notes.h"

#include "core/store_impl.h"

#include "core/evdata.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
    evdata_ref(note->data);
    nb->n++;
}

void note_buf_truncate(struct note_buf *nb, size_t n)
{
    while (nb->n > n) {
        nb->n--;
        free(nb->owned[2 * nb->n]);
        free(nb->owned[2 * nb->n + 1]);
        evdata_unref(nb->v[nb->n].data);
    }
}

void note_buf_release(struct note_buf *nb)
{
    note_buf_truncate(nb, 0);
    free(nb->v);
    free(nb->owned);
    memset(nb, 0, sizeof(*nb));
}

void store_emit_notes(struct store *s, const struct store_note *notes, size_t n)
{
    if (!n)
        return;
    /* held during the call: once store_set_listener returns, the old
     * listener is neither running nor called again (the hub's is short:
     * it copies the notes and queues them) */
    pthread_mutex_lock(&s->listener_mu);
    if (s->listener)
        s->listener(s->listener_arg, notes, n);
    pthread_mutex_unlock(&s->listener_mu);
}
