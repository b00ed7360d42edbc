/*
 * test_buf.c - core/buf: the bounded growable buffer.
 *
 * The property every input-driven buffer in lark relies on: an append
 * that would pass max fails with LARK_ETOOLARGE and leaves the buffer
 * exactly as it was (same bytes, same length, same allocation).
 */
#include "core/buf.h"

#include "core/err.h"
#include "core/mem.h"
#include "tests/unit/unit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The buffer's visible state, to prove a failed call changed nothing. */
struct snap {
    char *data;
    size_t len, cap, max;
    char bytes[256];
};

static void snap_take(const struct buf *b, struct snap *s)
{
    s->data = b->data;
    s->len = b->len;
    s->cap = b->cap;
    s->max = b->max;
    ck_assert_uint_lt(b->len, sizeof(s->bytes));
    if (b->data)
        memcpy(s->bytes, b->data, b->len + 1);
}

static void snap_same(const struct buf *b, const struct snap *s)
{
    ck_assert_ptr_eq(b->data, s->data);
    ck_assert_uint_eq(b->len, s->len);
    ck_assert_uint_eq(b->cap, s->cap);
    ck_assert_uint_eq(b->max, s->max);
    if (b->data)
        ck_assert_mem_eq(b->data, s->bytes, b->len + 1);
}

START_TEST(test_init_empty)
{
    struct buf b;
    buf_init(&b, 100);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_uint_eq(b.max, 100);
    buf_release(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.max, 100);
}
END_TEST

START_TEST(test_append_terminates)
{
    struct buf b;
    buf_init(&b, 1000);
    ck_assert_int_eq(buf_append(&b, "abc", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_str_eq(b.data, "abc");
    ck_assert_int_eq(buf_puts(&b, "def"), 0);
    ck_assert_int_eq(buf_putc(&b, 'g'), 0);
    ck_assert_str_eq(b.data, "abcdefg");
    ck_assert_uint_eq(b.len, 7);
    /* Embedded NUL bytes are data: len counts them. */
    ck_assert_int_eq(buf_append(&b, "x\0y", 3), 0);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_mem_eq(b.data + 7, "x\0y\0", 4);
    buf_release(&b);
}
END_TEST

START_TEST(test_append_past_max_unchanged)
{
    struct buf b;
    struct snap s;

    buf_init(&b, 10);
    ck_assert_int_eq(buf_append(&b, "0123456", 7), 0);
    snap_take(&b, &s);
    ck_assert_int_eq(buf_append(&b, "abcd", 4), LARK_ETOOLARGE);
    snap_same(&b, &s);
    ck_assert_int_eq(buf_puts(&b, "abcd"), LARK_ETOOLARGE);
    snap_same(&b, &s);
    /* A length that would overflow len + extra must not wrap around. */
    ck_assert_int_eq(buf_append(&b, "x", SIZE_MAX), LARK_ETOOLARGE);
    snap_same(&b, &s);
    ck_assert_int_eq(buf_append(&b, "x", SIZE_MAX - 3), LARK_ETOOLARGE);
    snap_same(&b, &s);
    /* Exactly up to max is allowed; one byte more is not. */
    ck_assert_int_eq(buf_append(&b, "789", 3), 0);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_str_eq(b.data, "0123456789");
    snap_take(&b, &s);
    ck_assert_int_eq(buf_putc(&b, 'x'), LARK_ETOOLARGE);
    snap_same(&b, &s);
    /* An empty append on a full buffer is fine. */
    ck_assert_int_eq(buf_append(&b, "", 0), 0);
    snap_same(&b, &s);
    buf_release(&b);
}
END_TEST

START_TEST(test_growth_bounded_by_max)
{
    struct buf b;
    char chunk[37];

    memset(chunk, 'q', sizeof(chunk));
    buf_init(&b, 1000);
    while (buf_append(&b, chunk, sizeof(chunk)) == 0) {
        ck_assert_uint_ge(b.cap, b.len + 1);
        ck_assert_uint_le(b.cap, b.max + 1);
    }
    ck_assert_uint_eq(b.len, 1000 / sizeof(chunk) * sizeof(chunk));
    /* Fill to the brim byte by byte: never more than max + 1 allocated. */
    while (buf_putc(&b, 'z') == 0)
        ;
    ck_assert_uint_eq(b.len, 1000);
    ck_assert_uint_eq(b.cap, 1001);
    ck_assert_uint_eq(strlen(b.data), 1000);
    buf_release(&b);
}
END_TEST

START_TEST(test_max_zero)
{
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(buf_putc(&b, 'a'), LARK_ETOOLARGE);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(buf_printf(&b, "%s", ""), 0);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_str_eq(b.data, "");
    ck_assert_int_eq(buf_printf(&b, "%d", 1), LARK_ETOOLARGE);
    ck_assert_str_eq(b.data, "");
    buf_release(&b);
}
END_TEST

START_TEST(test_printf)
{
    struct buf b;
    struct snap s;

    buf_init(&b, 16);
    ck_assert_int_eq(buf_printf(&b, "%s=%d", "seq", 42), 0);
    ck_assert_str_eq(b.data, "seq=42");
    ck_assert_int_eq(buf_printf(&b, ",%05u", 7u), 0);
    ck_assert_str_eq(b.data, "seq=42,00007");
    ck_assert_uint_eq(b.len, 12);
    snap_take(&b, &s);
    /* 12 + 5 > 16: refused whole, not cut. */
    ck_assert_int_eq(buf_printf(&b, "%s", "abcde"), LARK_ETOOLARGE);
    snap_same(&b, &s);
    /* 12 + 4 == 16: fits exactly. */
    ck_assert_int_eq(buf_printf(&b, "%s", "abcd"), 0);
    ck_assert_str_eq(b.data, "seq=42,00007abcd");
    ck_assert_uint_eq(b.len, 16);
    buf_release(&b);
}
END_TEST

START_TEST(test_printf_long)
{
    struct buf b;
    char big[3000];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_init(&b, 1 << 20);
    ck_assert_int_eq(buf_printf(&b, "[%s]", big), 0);
    ck_assert_uint_eq(b.len, sizeof(big) + 1);
    ck_assert_int_eq(b.data[0], '[');
    ck_assert_int_eq(b.data[b.len - 1], ']');
    ck_assert_int_eq(b.data[b.len], '\0');
    buf_release(&b);
}
END_TEST

START_TEST(test_truncate)
{
    struct buf b;
    buf_init(&b, 100);
    /* Truncating a never-grown buffer is a no-op. */
    buf_truncate(&b, 0);
    ck_assert_ptr_null(b.data);
    buf_puts(&b, "hello world");
    buf_truncate(&b, 5);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_str_eq(b.data, "hello");
    /* Truncating to a longer length does not extend. */
    buf_truncate(&b, 50);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_str_eq(b.data, "hello");
    buf_truncate(&b, 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    buf_release(&b);
}
END_TEST

START_TEST(test_consume)
{
    struct buf b;
    buf_init(&b, 100);
    buf_consume(&b, 0);
    buf_consume(&b, 5); /* empty and never grown: nothing to do */
    ck_assert_uint_eq(b.len, 0);
    buf_puts(&b, "abcdefghij");
    buf_consume(&b, 3);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_str_eq(b.data, "defghij");
    buf_consume(&b, 0);
    ck_assert_str_eq(b.data, "defghij");
    buf_consume(&b, 7);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    buf_puts(&b, "xyz");
    buf_consume(&b, 1000);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    /* After consuming, the room is available again up to max. */
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(buf_putc(&b, 'a'), 0);
    ck_assert_int_eq(buf_putc(&b, 'a'), LARK_ETOOLARGE);
    buf_consume(&b, 60);
    ck_assert_uint_eq(b.len, 40);
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(buf_putc(&b, 'b'), 0);
    ck_assert_int_eq(buf_putc(&b, 'b'), LARK_ETOOLARGE);
    ck_assert_int_eq(b.data[39], 'a');
    ck_assert_int_eq(b.data[40], 'b');
    buf_release(&b);
}
END_TEST

START_TEST(test_reset_keeps_allocation)
{
    struct buf b;
    char *data;
    size_t cap;

    buf_init(&b, 100);
    buf_puts(&b, "some text");
    data = b.data;
    cap = b.cap;
    buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_eq(b.data, data);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_str_eq(b.data, "");
    buf_release(&b);
}
END_TEST

START_TEST(test_detach)
{
    struct buf b;
    size_t len = 99;
    char *p;

    buf_init(&b, 64);
    p = buf_detach(&b, &len);
    /* A never-grown buffer detaches as an empty string the caller frees. */
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p, "");
    ck_assert_uint_eq(len, 0);
    free(p);

    buf_puts(&b, "payload");
    p = buf_detach(&b, &len);
    ck_assert_str_eq(p, "payload");
    ck_assert_uint_eq(len, 7);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_uint_eq(b.max, 64);
    free(p);

    /* The buffer is reusable with its max after detaching. */
    buf_puts(&b, "again");
    p = buf_detach(&b, NULL);
    ck_assert_str_eq(p, "again");
    free(p);
    buf_release(&b);
}
END_TEST

/* A file into a buffer: appended whole; a missing file, a directory or one
 * that would pass max leave the buffer as it was, and say which file. */
START_TEST(test_read_file)
{
    char dir[] = "/tmp/lark-test-buf-XXXXXX";
    struct lark_err err = {0};
    struct buf b;
    struct snap s;
    char *path;
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    path = xasprintf("%s/f", dir);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs("0123456789", f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);

    buf_init(&b, 16);
    ck_assert_int_eq(buf_puts(&b, "<"), 0);
    ck_assert_int_eq(buf_read_file(&b, path, &err), 0);
    ck_assert_str_eq(b.data, "<0123456789");

    snap_take(&b, &s);
    ck_assert_int_eq(buf_read_file(&b, path, &err), LARK_EINVAL); /* 21 > 16 */
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    snap_same(&b, &s);
    ck_assert_int_eq(buf_read_file(&b, dir, &err), LARK_EINVAL);
    snap_same(&b, &s);
    ck_assert_int_eq(buf_read_file(&b, "/nonexistent/lark", &err), LARK_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open /nonexistent/lark"));
    snap_same(&b, &s);

    buf_release(&b);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    free(path);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_init_empty);
    tcase_add_test(tc, test_append_terminates);
    tcase_add_test(tc, test_append_past_max_unchanged);
    tcase_add_test(tc, test_growth_bounded_by_max);
    tcase_add_test(tc, test_max_zero);
    tcase_add_test(tc, test_printf);
    tcase_add_test(tc, test_printf_long);
    tcase_add_test(tc, test_truncate);
    tcase_add_test(tc, test_consume);
    tcase_add_test(tc, test_reset_keeps_allocation);
    tcase_add_test(tc, test_read_file);
    tcase_add_test(tc, test_detach);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(buf_suite());
}
