/*
 * test_pgnote.c - core/pgnote: notes between larkd processes as NOTIFY
 * payloads.
 *
 * What another host's hub delivers comes out of pgnote_decode, so: every
 * note survives encode -> decode exactly (stored events with their data,
 * presence, ephemeral events); payloads never reach PostgreSQL's limit and
 * a large batch is cut into several in order; data that cannot fit any
 * payload travels as W (read it); the sender's own payloads are skipped;
 * the first format still decodes; and malformed payloads of every kind are
 * refused without emitting anything made up.
 */
#include "core/pgnote.h"

#include "core/evdata.h"
#include "core/mem.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

#define ORIGIN "0123456789abcdef"

/* Payloads the encoder sent. */
struct sent {
    char **v;
    size_t n;
};

static int on_send(void *arg, const char *payload, size_t len)
{
    struct sent *s = arg;
    ck_assert_uint_eq(strlen(payload), len);
    ck_assert_uint_le(len, PGNOTE_PAYLOAD_MAX);
    s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n++] = xstrdup(payload);
    return 0;
}

static void sent_free(struct sent *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

/* What the decoder emitted, flattened to text lines for easy comparison. */
struct got {
    char **v;
    size_t n;
};

static void add_line(struct got *g, char *line)
{
    g->v = xrealloc(g->v, (g->n + 1) * sizeof(*g->v));
    g->v[g->n++] = line;
}

static void on_notes(void *arg, const struct store_note *notes, size_t n)
{
    struct got *g = arg;
    for (size_t i = 0; i < n; i++) {
        const struct store_note *x = &notes[i];
        if (x->kind == STORE_NOTE_EVENT && x->data)
            add_line(g, xasprintf("E %s %llu %s %s", x->user, (unsigned long long)x->seq,
                                  x->data->type, x->data->json));
        else if (x->kind == STORE_NOTE_EVENT)
            add_line(g, xasprintf("W %s %llu", x->user, (unsigned long long)x->seq));
        else if (x->kind == STORE_NOTE_PRESENCE)
            add_line(g, xasprintf("P %s %d %lld", x->user, x->online, (long long)x->last_seen));
        else
            add_line(g, xasprintf("T %s %s", x->user, x->json));
    }
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->v[i]);
    free(g->v);
    memset(g, 0, sizeof(*g));
}

static int decode(const char *payload, struct got *g)
{
    return pgnote_decode(payload, strlen(payload), "ffffffffffffffff", on_notes, g);
}

START_TEST(test_round_trip)
{
    static const char body[] = "{\"body\":\"caf\xc3\xa9 \\\"x\\\" a b\"}";
    struct evdata *msg = evdata_new("message", body, strlen(body));
    struct evdata *rcpt = evdata_new("receipt", "{\"up_to\":3}", 11);
    struct store_note notes[] = {
        {.kind = STORE_NOTE_EVENT, .user = "alice", .seq = 7, .data = msg},
        {.kind = STORE_NOTE_EVENT, .user = "bob.b@x-y_z", .seq = 1, .data = msg},
        {.kind = STORE_NOTE_EVENT, .user = "carol", .seq = 18446744073709551ULL, .data = rcpt},
        {.kind = STORE_NOTE_EVENT, .user = "dave", .seq = 2, .data = NULL},
        {.kind = STORE_NOTE_PRESENCE, .user = "erin", .online = 1, .last_seen = 1764000000123},
        {.kind = STORE_NOTE_EPHEMERAL,
         .user = "fred",
         .json = "{\"type\":\"typing\",\"x\":\"a b\"}"},
    };
    struct sent s = {0};
    struct got g = {0};

    ck_assert_int_eq(pgnote_encode(ORIGIN, notes, 6, on_send, &s), 0);
    ck_assert_uint_eq(s.n, 1); /* all of it fits one payload */
    /* the message's data travels once for both of its members */
    ck_assert_ptr_nonnull(strstr(s.v[0], "caf"));
    ck_assert_ptr_null(strstr(strstr(s.v[0], "caf") + 1, "caf"));
    ck_assert_int_eq(decode(s.v[0], &g), 6);
    ck_assert_uint_eq(g.n, 6);
    ck_assert_str_eq(g.v[0], "E alice 7 message {\"body\":\"caf\xc3\xa9 \\\"x\\\" a b\"}");
    ck_assert_str_eq(g.v[1], "E bob.b@x-y_z 1 message {\"body\":\"caf\xc3\xa9 \\\"x\\\" a b\"}");
    ck_assert_str_eq(g.v[2], "E carol 18446744073709551 receipt {\"up_to\":3}");
    ck_assert_str_eq(g.v[3], "W dave 2");
    ck_assert_str_eq(g.v[4], "P erin 1 1764000000123");
    ck_assert_str_eq(g.v[5], "T fred {\"type\":\"typing\",\"x\":\"a b\"}");
    got_free(&g);
    /* its own payloads: the sender had its notes directly */
    ck_assert_int_eq(pgnote_decode(s.v[0], strlen(s.v[0]), ORIGIN, on_notes, &g), 0);
    ck_assert_uint_eq(g.n, 0);
    sent_free(&s);
    evdata_unref(msg);
    evdata_unref(rcpt);
}
END_TEST

START_TEST(test_many_payloads_in_order)
{
    /* a 500-member group message with a 2 KiB body: cut into several
     * payloads, each repeating the data it needs, all in order */
    char body[2100];
    struct store_note notes[500];
    char users[500][24];
    struct sent s = {0};
    struct got g = {0};
    struct evdata *d;

    memset(body, 0, sizeof(body));
    memcpy(body, "{\"body\":\"", 9);
    memset(body + 9, 'x', 2048);
    memcpy(body + 9 + 2048, "\"}", 2);
    d = evdata_new("message", body, strlen(body));
    for (int i = 0; i < 500; i++) {
        snprintf(users[i], sizeof(users[i]), "member-%03d", i);
        notes[i] = (struct store_note){
            .kind = STORE_NOTE_EVENT, .user = users[i], .seq = (uint64_t)(1000 + i), .data = d};
    }
    ck_assert_int_eq(pgnote_encode(ORIGIN, notes, 500, on_send, &s), 0);
    ck_assert_uint_gt(s.n, 1);
    for (size_t i = 0; i < s.n; i++)
        ck_assert_int_gt(decode(s.v[i], &g), 0);
    ck_assert_uint_eq(g.n, 500);
    for (int i = 0; i < 500; i++) {
        char *want = xasprintf("E member-%03d %d message %s", i, 1000 + i, body);
        ck_assert_str_eq(g.v[i], want);
        free(want);
    }
    got_free(&g);
    sent_free(&s);
    evdata_unref(d);
}
END_TEST

START_TEST(test_too_large_travels_as_w)
{
    /* data larger than any payload: a W record, and the next event's data
     * is not lost */
    size_t big = PGNOTE_PAYLOAD_MAX + 100;
    char *json = xmalloc(big + 1);
    struct evdata *huge, *small = evdata_new("message", "{}", 2);
    struct sent s = {0};
    struct got g = {0};

    json[0] = '"';
    memset(json + 1, 'y', big - 2);
    json[big - 1] = '"';
    json[big] = '\0';
    huge = evdata_new("message", json, big);
    {
        struct store_note notes[] = {
            {.kind = STORE_NOTE_EVENT, .user = "a", .seq = 1, .data = small},
            {.kind = STORE_NOTE_EVENT, .user = "b", .seq = 2, .data = huge},
            {.kind = STORE_NOTE_EVENT, .user = "c", .seq = 3, .data = small},
            {.kind = STORE_NOTE_EPHEMERAL, .user = "d", .json = json}, /* dropped */
        };
        ck_assert_int_eq(pgnote_encode(ORIGIN, notes, 4, on_send, &s), 0);
    }
    for (size_t i = 0; i < s.n; i++)
        decode(s.v[i], &g);
    ck_assert_uint_eq(g.n, 3);
    ck_assert_str_eq(g.v[0], "E a 1 message {}");
    ck_assert_str_eq(g.v[1], "W b 2");
    ck_assert_str_eq(g.v[2], "E c 3 message {}");
    got_free(&g);
    sent_free(&s);
    evdata_unref(huge);
    evdata_unref(small);
    free(json);
}
END_TEST

START_TEST(test_first_format)
{
    /* what larkd sent before events travelled: hosts upgrade one by one */
    struct got g = {0};

    ck_assert_int_eq(decode("w 0123456789abcdef alice:3 bob:12", &g), 2);
    ck_assert_str_eq(g.v[0], "W alice 3");
    ck_assert_str_eq(g.v[1], "W bob 12");
    got_free(&g);
    ck_assert_int_eq(decode("p 0123456789abcdef erin 0 1700000000000", &g), 1);
    ck_assert_str_eq(g.v[0], "P erin 0 1700000000000");
    got_free(&g);
    ck_assert_int_eq(decode("e 0123456789abcdef fred {\"type\":\"typing\"}", &g), 1);
    ck_assert_str_eq(g.v[0], "T fred {\"type\":\"typing\"}");
    got_free(&g);
    ck_assert_int_eq(pgnote_decode("w ffffffffffffffff a:1", 21, "ffffffffffffffff", on_notes, &g),
                     0);
    ck_assert_uint_eq(g.n, 0);
}
END_TEST

START_TEST(test_malformed)
{
    static const char *const bad[] = {
        "",
        "2",
        "3 " ORIGIN "\nE a 1",
        "2 " ORIGIN "\nE a 1",                 /* E before any D */
        "2 " ORIGIN "\nD message {}\nE a 0",   /* seq 0 */
        "2 " ORIGIN "\nD message {}\nE a x",   /* not a number */
        "2 " ORIGIN "\nD message {}\nE a 1 2", /* extra field */
        "2 " ORIGIN "\nD message {}\nE a 99999999999999999999",
        "2 " ORIGIN "\nD message {}\nE a b 1",  /* space in a user */
        "2 " ORIGIN "\nD message {}\nE a\"b 1", /* not a user id */
        "2 " ORIGIN "\nD Message {}\nE a 1",    /* not a type lark writes */
        "2 " ORIGIN "\nD me\"ss {}\nE a 1",
        "2 " ORIGIN "\nD message\nE a 1",         /* no data */
        "2 " ORIGIN "\nD message {\"a\":\"\r\"}", /* a CR would end an SSE line */
        "2 " ORIGIN "\nP a 2 5",
        "2 " ORIGIN "\nP a 1",
        "2 " ORIGIN "\nT a",
        "2 " ORIGIN "\nX a 1",
        "2 " ORIGIN "\n",
        "2 " ORIGIN "\nW a 1\n", /* trailing newline */
        "w " ORIGIN " a:1 b",
        "w " ORIGIN " a:",
        "w " ORIGIN " :1",
        "p " ORIGIN " a 1",
        "e " ORIGIN " a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct got g = {0};
        int rc = decode(bad[i], &g);
        ck_assert_msg(rc == -1, "accepted: %s", bad[i]);
        got_free(&g);
    }
    {
        /* what came before a fault is kept; nothing after it */
        struct got g = {0};
        ck_assert_int_eq(decode("2 " ORIGIN "\nW a 1\nW b x\nW c 3", &g), -1);
        ck_assert_uint_eq(g.n, 1);
        ck_assert_str_eq(g.v[0], "W a 1");
        got_free(&g);
    }
    {
        /* an embedded NUL never reaches a string */
        struct got g = {0};
        const char with_nul[] = "2 " ORIGIN "\nW a\0b 1";
        ck_assert_int_eq(pgnote_decode(with_nul, sizeof(with_nul) - 1, NULL, on_notes, &g), -1);
        ck_assert_uint_eq(g.n, 0);
    }
}
END_TEST

START_TEST(test_short_payloads)
{
    /* Issue 13, finding 6: the decoder that pgnote.c replaced took
     * "p ORIGIN user " apart by pointer arithmetic and read the status at
     * space + 1 and the time at space + 3 - past the end of a payload cut
     * short after the user. Any role allowed to NOTIFY on the channel
     * could send one. Each payload here sits in a heap buffer of exactly
     * its length (the NUL PQnotifies adds, and nothing more), so under
     * ASan (make asan) a read past it fails the test; in any build it must
     * be refused with nothing emitted - the old code emitted a presence
     * note built from whatever followed the payload. */
    static const char *const shorts[] = {
        "p " ORIGIN " user ",
        "p " ORIGIN " user 1",
        "p " ORIGIN " user 1 ",
        "p " ORIGIN " user",
        "p " ORIGIN " ",
        "p " ORIGIN,
        "p ",
        "p",
        "e " ORIGIN " user ",
        "e " ORIGIN " user",
        "w " ORIGIN " user:",
        "2 " ORIGIN "\nP user ",
        "2 " ORIGIN "\nP user 1",
        "2 " ORIGIN "\nP user 1 ",
        "2 " ORIGIN "\nP",
        "2 " ORIGIN "\nT user ",
        "2 " ORIGIN "\nD message ",
        "2 " ORIGIN "\nE user ",
        "2 " ORIGIN "\nW user",
        "2 ",
    };
    for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        size_t len = strlen(shorts[i]);
        char *exact = xmalloc(len + 1);
        struct got g = {0};
        int rc;

        memcpy(exact, shorts[i], len + 1);
        rc = pgnote_decode(exact, len, "ffffffffffffffff", on_notes, &g);
        ck_assert_msg(rc == -1 && g.n == 0, "accepted (%d, %zu notes): '%s'", rc, g.n, shorts[i]);
        got_free(&g);
        /* and without the NUL: the decoder goes by len alone */
        exact = xrealloc(exact, len ? len : 1);
        rc = pgnote_decode(exact, len, "ffffffffffffffff", on_notes, &g);
        ck_assert_msg(rc == -1 && g.n == 0, "accepted without a NUL: '%s'", shorts[i]);
        got_free(&g);
        free(exact);
    }
}
END_TEST

static Suite *pgnote_suite(void)
{
    Suite *s = suite_create("pgnote");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_many_payloads_in_order);
    tcase_add_test(tc, test_too_large_travels_as_w);
    tcase_add_test(tc, test_first_format);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_short_payloads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(pgnote_suite());
}
