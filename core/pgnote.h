/*
 * pgnote.h - notes between larkd processes, as PostgreSQL NOTIFY payloads.
 *
 * Why the events themselves travel: another host that only heard "user U's
 * inbox reached seq N" had to read the event back from the database before
 * it could deliver it - a round trip per member per message on the one
 * thread that serves every held connection. So a payload carries each
 * event's data, once for all the members it went to, and the receiving hub
 * delivers from memory. Data too large for a payload travels as a bare
 * "event N exists" (W), and the receiver reads that one (DESIGN.md "The
 * delivery path, second design").
 *
 * Format: text lines separated by '\n'. The first line is the header
 * "2 <origin>" (format version, the sending process's id). Then records:
 *   D <type> <json>          the data of the E lines that follow
 *   E <user> <seq>           a stored event at user's seq, with the last D
 *   W <user> <seq>           a stored event whose data did not fit: read it
 *   P <user> <0|1> <ms>      presence: offline/online, last seen (ms)
 *   T <user> <json>          an ephemeral event envelope for user
 * Compact JSON never holds a raw newline, and user ids hold no spaces
 * (API.md), so no field needs escaping. Payloads stay under
 * PGNOTE_PAYLOAD_MAX bytes (PostgreSQL refuses 8000 or more); the encoder
 * cuts a batch of notes into as many payloads as it takes, in order.
 *
 * The decoder also reads the first format ("w <origin> user:seq ...",
 * "p <origin> user 0|1 ms", "e <origin> user json") that larkd sent before
 * events travelled, so hosts can be upgraded one at a time; a "w" item is
 * a W record. It never trusts its input: anything malformed ends the
 * payload's decoding (what came before it is kept); tests/fuzz/
 * fuzz_pgnote.c feeds it arbitrary bytes.
 *
 * Pure functions; thread-safe.
 */
#ifndef LARK_PGNOTE_H
#define LARK_PGNOTE_H

#include "core/store.h"

#include <stddef.h>

/* Longest payload the encoder makes (bytes, without the NUL). */
#define PGNOTE_PAYLOAD_MAX 7900
/* A process id: 16 hex digits. */
#define PGNOTE_ORIGIN_LEN 16

/* Receives each finished payload (NUL-terminated); 0 to go on, or a
 * LARK_E* code that stops the encoder and is returned by it. */
typedef int (*pgnote_send_fn)(void *arg, const char *payload, size_t len);

/*
 * Encode notes (EVENT, PRESENCE, EPHEMERAL; in order) from origin into
 * payloads and hand each to send. An EVENT without data, or whose data
 * cannot fit a payload, becomes a W record; an EPHEMERAL that cannot fit
 * is dropped (ephemeral events are best effort, API.md). Returns 0 or the
 * first error send returned.
 */
int pgnote_encode(const char *origin, const struct store_note *notes, size_t n, pgnote_send_fn send,
                  void *arg);

/*
 * Decode one payload of len bytes. Payloads from self_origin are skipped
 * (that process had its notes directly). Each note is handed to emit as
 * soon as it is read (its strings and data are valid during the call; an
 * EVENT's data is NULL for a W record). Returns the number of notes
 * emitted, or -1 when the payload was malformed (notes before the fault
 * were emitted).
 */
int pgnote_decode(const char *payload, size_t len, const char *self_origin, store_note_fn emit,
                  void *arg);

#endif
