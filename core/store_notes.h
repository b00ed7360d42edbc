/*
 * store_notes.h - notes copied to outlive the call that made them.
 *
 * A back end gathers the notes of a transaction here and hands them to the
 * listener only after the commit (store_sqlite.c, store_pg.c); the hub
 * copies the notes it is handed into a job for its own thread (hub.c).
 * The user and json strings are copied and v[i] points at the copies; each
 * note's data is referenced and released with the note. One thread at a
 * time.
 */
#ifndef LARK_STORE_NOTES_H
#define LARK_STORE_NOTES_H

#include "core/store.h"

#include <stddef.h>

struct note_buf {
    struct store_note *v;
    char **owned; /* 2 per note: user, json (NULL if none) */
    size_t n, cap;
};

/* Append a copy of note. Never fails (out of memory aborts). */
void note_buf_add(struct note_buf *nb, const struct store_note *note);
/* Drop the notes after the first n. */
void note_buf_truncate(struct note_buf *nb, size_t n);
/* Drop every note and free; nb is empty (and reusable) afterwards. */
void note_buf_release(struct note_buf *nb);

#endif
