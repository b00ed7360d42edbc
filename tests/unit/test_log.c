/*
 * test_log.c - core/log and core/redact: the two line formats, one line
 * per event whatever the message holds, and no password in any line.
 *
 * Lines are rendered with log_render (what log_msg writes), so the tests
 * see the exact bytes without capturing stderr; one test does go through
 * log_msg with stderr redirected to a file, to prove it uses the same path.
 */
#include "core/log.h"

#include "core/redact.h"
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T "2026-11-23T07:00:00.123Z"

static const char *redacted(const char *in)
{
    static char out[512];
    redact_secrets(in, strlen(in), out, sizeof(out));
    return out;
}

static const char *text_line(enum log_level lvl, const char *msg)
{
    static char line[4096];
    unsigned n = log_render(line, sizeof(line), LOG_TEXT, lvl, T, msg);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, sizeof(line));
    line[n] = '\0';
    return line;
}

/* Render msg as JSON; assert it is one line holding one object. */
static json_t *json_line(enum log_level lvl, const char *msg)
{
    char line[4096];
    json_error_t e;
    json_t *obj;
    unsigned n = log_render(line, sizeof(line), LOG_JSON, lvl, T, msg);

    ck_assert_uint_gt(n, 1);
    ck_assert_int_eq(line[n - 1], '\n');
    ck_assert_ptr_null(memchr(line, '\n', n - 1));
    obj = json_loadb(line, n, 0, &e);
    ck_assert_msg(json_is_object(obj), "not a JSON object: %.*s (%s)", (int)n, line, e.text);
    return obj;
}

START_TEST(test_redact_uri)
{
    ck_assert_str_eq(redacted("postgresql://lark:s3cret@db.example:5432/lark"),
                     "postgresql://lark:***@db.example:5432/lark");
    ck_assert_str_eq(redacted("db=postgres://u:p%40ss@h/x?sslmode=require up"),
                     "db=postgres://u:***@h/x?sslmode=require up");
    /* the last '@' of the authority ends the user information */
    ck_assert_str_eq(redacted("postgresql://u:a@b@host/db"), "postgresql://u:***@host/db");
    /* no password, or no user information at all: unchanged */
    ck_assert_str_eq(redacted("postgresql://lark@db/lark"), "postgresql://lark@db/lark");
    ck_assert_str_eq(redacted("postgresql://db:5432/lark"), "postgresql://db:5432/lark");
    ck_assert_str_eq(redacted("postgresql:///lark?host=/run/postgresql"),
                     "postgresql:///lark?host=/run/postgresql");
    /* an '@' after the authority is not user information */
    ck_assert_str_eq(redacted("https://h/x:y@z"), "https://h/x:y@z");
    /* two URIs in one line */
    ck_assert_str_eq(redacted("from a://x:1@h to b://y:2@k"), "from a://x:***@h to b://y:***@k");
    ck_assert_str_eq(redacted("quoted 'postgresql://a:b@c'"), "quoted 'postgresql://a:***@c'");
}
END_TEST

START_TEST(test_redact_params)
{
    ck_assert_str_eq(redacted("postgresql:///lark?user=a&password=hunter2&host=/tmp"),
                     "postgresql:///lark?user=a&password=***&host=/tmp");
    ck_assert_str_eq(redacted("host=db user=lark password=hunter2 dbname=lark"),
                     "host=db user=lark password=*** dbname=lark");
    ck_assert_str_eq(redacted("host=db PASSWORD='two words' x=1"), "host=db PASSWORD='***' x=1");
    ck_assert_str_eq(redacted("password=\"a\\\"b\" end"), "password=\"***\" end");
    ck_assert_str_eq(redacted("password=last"), "password=***");
    /* only a whole key: "mypassword=" is some other word */
    ck_assert_str_eq(redacted("mypassword=x"), "mypassword=x");
    ck_assert_str_eq(redacted("no secrets here"), "no secrets here");
    ck_assert_str_eq(redacted(""), "");
}
END_TEST

START_TEST(test_redact_bounds)
{
    char out[16];
    const char *in = "a://u:p@h and more text after it";
    size_t n = redact_secrets(in, strlen(in), out, sizeof(out));
    ck_assert_uint_eq(n, 15);
    ck_assert_str_eq(out, "a://u:***@h and");
    n = redact_secrets(in, strlen(in), out, 1);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_text_format)
{
    ck_assert_str_eq(text_line(LOG_INFO, "ready socket=/run/lark/larkd.sock"),
                     T " INFO lark: ready socket=/run/lark/larkd.sock\n");
    ck_assert_str_eq(text_line(LOG_WARN, "x"), T " WARN lark: x\n");
}
END_TEST

START_TEST(test_one_line)
{
    /* libpq's shape: several lines, indented, with a trailing newline */
    const char *pq = "postgresql: cannot connect: connection to server at \"127.0.0.1\", port 1 "
                     "failed: Connection refused\n\tIs the server running on that host and "
                     "accepting TCP/IP connections?\n";
    const char *line = text_line(LOG_ERROR, pq);
    json_t *obj;

    ck_assert_str_eq(line, T " ERROR lark: postgresql: cannot connect: connection to server at "
                             "\"127.0.0.1\", port 1 failed: Connection refused Is the server "
                             "running on that host and accepting TCP/IP connections?\n");
    /* a forged second line, and other control characters */
    ck_assert_str_eq(text_line(LOG_INFO, "user=a\r\n2026 ERROR fake\x1b[31m"),
                     T " INFO lark: user=a 2026 ERROR fake?[31m\n");
    obj = json_line(LOG_ERROR, pq);
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(obj, "msg")), "refused Is the server"));
    json_decref(obj);
}
END_TEST

START_TEST(test_json_format)
{
    json_t *obj = json_line(LOG_WARN, "say \"hi\" \\ caf\xc3\xa9 bad\xff byte");
    ck_assert_str_eq(json_string_value(json_object_get(obj, "time")), T);
    ck_assert_str_eq(json_string_value(json_object_get(obj, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(obj, "program")), "lark");
    /* valid UTF-8 kept, an invalid byte replaced: the line stays JSON */
    ck_assert_str_eq(json_string_value(json_object_get(obj, "msg")),
                     "say \"hi\" \\ caf\xc3\xa9 bad? byte");
    ck_assert_uint_eq(json_object_size(obj), 4);
    json_decref(obj);
}
END_TEST

START_TEST(test_passwords_never_written)
{
    const char *msg = "migrations applied to postgresql://lark:hunter2@db/lark?password=hunter2";
    json_t *obj;

    ck_assert_ptr_null(strstr(text_line(LOG_INFO, msg), "hunter2"));
    obj = json_line(LOG_INFO, msg);
    ck_assert_ptr_null(strstr(json_string_value(json_object_get(obj, "msg")), "hunter2"));
    json_decref(obj);
}
END_TEST

START_TEST(test_long_message)
{
    char big[3000];
    json_t *obj;

    memset(big, '"', sizeof(big) - 1); /* each doubles when escaped */
    big[sizeof(big) - 1] = '\0';
    obj = json_line(LOG_INFO, big);
    ck_assert_uint_gt(strlen(json_string_value(json_object_get(obj, "msg"))), 500);
    json_decref(obj);
    ck_assert_uint_lt(strlen(text_line(LOG_INFO, big)), 1200);
}
END_TEST

/* log_msg itself, through stderr: level filter, format switch, one write. */
START_TEST(test_log_msg)
{
    char *dir = unit_tmpdir(), *path = unit_path(dir, "stderr");
    char got[4096];
    int saved = dup(STDERR_FILENO), fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(saved, 0);
    dup2(fd, STDERR_FILENO);
    log_init("t", LOG_INFO);
    log_debug("hidden");
    log_info("shown n=%d", 1);
    log_set_format(LOG_JSON);
    log_warn("db=postgresql://u:pw@h/d");
    log_set_format(LOG_TEXT);
    log_set_level(LOG_ERROR);
    log_warn("hidden too");
    log_init("lark", LOG_INFO);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, got, sizeof(got) - 1, 0);
    close(fd);
    ck_assert_int_gt(n, 0);
    got[n] = '\0';
    ck_assert_ptr_null(strstr(got, "hidden"));
    ck_assert_ptr_nonnull(strstr(got, " INFO t: shown n=1\n"));
    ck_assert_ptr_nonnull(strstr(
        got, "\"level\":\"warn\",\"program\":\"t\",\"msg\":\"db=postgresql://u:***@h/d\"}\n"));
    unit_rmtree(dir);
    free(dir);
    free(path);
}
END_TEST

START_TEST(test_parse)
{
    ck_assert_int_eq(log_format_parse("text"), LOG_TEXT);
    ck_assert_int_eq(log_format_parse("json"), LOG_JSON);
    ck_assert_int_eq(log_format_parse("JSON"), -1);
    ck_assert_int_eq(log_level_parse("warn"), LOG_WARN);
    ck_assert_int_eq(log_level_parse("verbose"), -1);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_redact_uri);
    tcase_add_test(tc, test_redact_params);
    tcase_add_test(tc, test_redact_bounds);
    tcase_add_test(tc, test_text_format);
    tcase_add_test(tc, test_one_line);
    tcase_add_test(tc, test_json_format);
    tcase_add_test(tc, test_passwords_never_written);
    tcase_add_test(tc, test_long_message);
    tcase_add_test(tc, test_log_msg);
    tcase_add_test(tc, test_parse);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(log_suite());
}
