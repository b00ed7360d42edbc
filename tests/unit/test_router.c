/*
 * test_router.c - fcgi/router: router_match, the one route table.
 *
 * A known path with a wrong method is 405 with the path's methods in
 * Allow; an unknown path is 404; {} segments are percent-decoded, and a
 * bad escape in one is 400 rather than a guess.
 */
#include "fcgi/router.h"

#include "core/err.h"
#include "tests/unit/unit.h"

#include <stdlib.h>
#include <string.h>

struct match {
    const struct route *route;
    char *params[REQ_PARAMS_MAX];
    int nparams;
    char allow[ROUTER_ALLOW_MAX];
    int code;
};

static void match(const char *method, const char *path, struct match *m)
{
    memset(m, 0, sizeof(*m));
    memset(m->allow, 'X', sizeof(m->allow));
    m->nparams = -1;
    m->route = router_match(method, path, m->params, &m->nparams, m->allow, &m->code);
    ck_assert_uint_lt(strlen(m->allow), ROUTER_ALLOW_MAX);
    if (!m->route)
        ck_assert_int_eq(m->nparams, 0);
}

static void match_free(struct match *m)
{
    for (int i = 0; i < m->nparams; i++)
        free(m->params[i]);
}

/* Assert method path finds the route with pattern and no parameters. */
static void finds(const char *method, const char *path, const char *pattern, unsigned flags)
{
    struct match m;
    match(method, path, &m);
    ck_assert_msg(m.route != NULL, "%s %s: no route (code %d)", method, path, m.code);
    ck_assert_str_eq(m.route->pattern, pattern);
    ck_assert_str_eq(m.route->method, method);
    ck_assert_uint_eq(m.route->flags, flags);
    ck_assert_ptr_nonnull(m.route->fn);
    match_free(&m);
}

/* Assert method path is not found with code (and allow for 405). */
static void misses(const char *method, const char *path, int code, const char *allow)
{
    struct match m;
    match(method, path, &m);
    ck_assert_msg(m.route == NULL, "%s %s matched %s", method, path,
                  m.route ? m.route->pattern : "");
    ck_assert_msg(m.code == code, "%s %s: code %d, want %d", method, path, m.code, code);
    ck_assert_str_eq(m.allow, allow);
}

START_TEST(test_exact_routes)
{
    finds("GET", "/v1/healthz", "/v1/healthz", 0);
    finds("GET", "/metrics", "/metrics", 0);
    finds("POST", "/v1/messages", "/v1/messages", ROUTE_AUTH | ROUTE_BODY);
    finds("GET", "/v1/events", "/v1/events", ROUTE_AUTH | ROUTE_TOKEN_QUERY | ROUTE_TICKET);
    finds("GET", "/v1/poll", "/v1/poll", ROUTE_AUTH | ROUTE_TOKEN_QUERY | ROUTE_TICKET);
    finds("POST", "/v1/tickets", "/v1/tickets", ROUTE_AUTH);
    finds("POST", "/v1/ack", "/v1/ack", ROUTE_AUTH | ROUTE_BODY);
}
END_TEST

/* HEAD takes every GET route (RFC 9110 9.3.2); the held ones say what
 * their answer would be, since HEAD must not hold a connection. */
START_TEST(test_head)
{
    static const char *const paths[] = {"/v1/healthz", "/metrics",          "/v1/events",
                                        "/v1/poll",    "/v1/conversations", "/v1/devices",
                                        "/v1/presence"};
    struct match m;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        match("HEAD", paths[i], &m);
        ck_assert_msg(m.route != NULL, "HEAD %s: no route", paths[i]);
        ck_assert_str_eq(m.route->method, "GET");
        ck_assert_str_eq(m.route->pattern, paths[i]);
        match_free(&m);
    }
    match("HEAD", "/v1/events", &m);
    ck_assert_str_eq(m.route->held_type, "text/event-stream");
    match("HEAD", "/v1/poll", &m);
    ck_assert_str_eq(m.route->held_type, "application/json");
    match("HEAD", "/v1/healthz", &m);
    ck_assert_ptr_null(m.route->held_type);
    match("HEAD", "/v1/conversations/c_1/messages", &m);
    ck_assert_str_eq(m.route->pattern, "/v1/conversations/{}/messages");
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0], "c_1");
    match_free(&m);
}
END_TEST

START_TEST(test_params_decoded)
{
    struct match m;

    match("GET", "/v1/conversations/c_0123abcd/messages", &m);
    ck_assert_ptr_nonnull(m.route);
    ck_assert_str_eq(m.route->pattern, "/v1/conversations/{}/messages");
    ck_assert_int_eq(m.route->flags, ROUTE_AUTH);
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0], "c_0123abcd");
    match_free(&m);

    match("GET", "/v1/conversations/c%5Fx%2Fy+z%41/messages", &m);
    ck_assert_ptr_nonnull(m.route);
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0], "c_x/y+zA"); /* '+' is a plus in a path */
    match_free(&m);
}
END_TEST

START_TEST(test_bad_escape_in_param)
{
    misses("GET", "/v1/conversations/%zz/messages", LARK_EINVAL, "");
    misses("GET", "/v1/conversations/abc%/messages", LARK_EINVAL, "");
    misses("GET", "/v1/conversations/abc%4/messages", LARK_EINVAL, "");
    misses("GET", "/v1/conversations/%00/messages", LARK_EINVAL, "");
    misses("POST", "/v1/conversations/%zz/messages", LARK_EINVAL, "");
}
END_TEST

START_TEST(test_method_not_allowed)
{
    misses("GET", "/v1/messages", LARK_EMETHOD, "POST");
    misses("PUT", "/v1/messages", LARK_EMETHOD, "POST");
    misses("DELETE", "/v1/ack", LARK_EMETHOD, "POST");
    misses("POST", "/v1/events", LARK_EMETHOD, "GET, HEAD");
    misses("POST", "/v1/healthz", LARK_EMETHOD, "GET, HEAD");
    misses("POST", "/v1/conversations/c_1/messages", LARK_EMETHOD, "GET, HEAD");
    misses("get", "/v1/poll", LARK_EMETHOD, "GET, HEAD"); /* methods are case-sensitive */
    misses("HEAD", "/v1/messages", LARK_EMETHOD, "POST"); /* HEAD only where GET is */
    misses("HEAD", "/v1/devices/tok", LARK_EMETHOD, "DELETE");
    /* The router is asked with "" for an OPTIONS preflight. */
    misses("", "/v1/messages", LARK_EMETHOD, "POST");
    misses("", "/v1/conversations/c_1/messages", LARK_EMETHOD, "GET, HEAD");
}
END_TEST

START_TEST(test_not_found)
{
    static const char *const paths[] = {"",
                                        "/",
                                        "/v1",
                                        "/v1/",
                                        "/v1/healthz/",
                                        "/v1/healthzz",
                                        "/V1/healthz",
                                        "//v1/healthz",
                                        "/v1/unknown",
                                        "/v1/conversation",
                                        "/v1/conversations/",
                                        "/v1/conversations//messages",
                                        "/v1/conversations/c_1/",
                                        "/v1/conversations/c_1/messages/",
                                        "/v1/conversations/c_1/messages/extra",
                                        "/v1/conversations/a/b/messages",
                                        "/metrics/",
                                        "/v1/messages%2F"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        misses("GET", paths[i], LARK_ENOTFOUND, "");
        misses("POST", paths[i], LARK_ENOTFOUND, "");
    }
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("match");

    tcase_add_test(tc, test_exact_routes);
    tcase_add_test(tc, test_params_decoded);
    tcase_add_test(tc, test_head);
    tcase_add_test(tc, test_bad_escape_in_param);
    tcase_add_test(tc, test_method_not_allowed);
    tcase_add_test(tc, test_not_found);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(router_suite());
}
