/*
 * test_config.c - core/config: defaults, the file, the environment and
 * their precedence; every bad value is an error naming the key.
 *
 * config_load reads the process environment, so each test starts from an
 * environment without LARK_* variables (fixture) and cleans up after.
 */
#include "core/config.h"

#include "core/err.h"
#include "core/limits.h"
#include "core/mem.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static char *dir;

static void clear_lark_env(void)
{
    /* unsetenv changes environ: restart the scan after each removal. */
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            char name[128];
            const char *eq = strchr(*e, '=');
            size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
            if (strncmp(*e, "LARK_", 5) != 0 || n >= sizeof(name))
                continue;
            memcpy(name, *e, n);
            name[n] = '\0';
            unsetenv(name);
            again = 1;
            break;
        }
    }
}

static void setup(void)
{
    clear_lark_env();
    dir = unit_tmpdir();
}

static void teardown(void)
{
    clear_lark_env();
    unit_rmtree(dir);
    free(dir);
    dir = NULL;
}

/* Write text to a config file in dir; the caller frees the path. */
static char *conf_file(const char *text)
{
    char *path = unit_path(dir, "lark.conf");
    unit_write_file(path, text);
    return path;
}

/* config_load must fail with LARK_EINVAL, err naming what, cfg released. */
static void load_fails(const char *path, const char *what)
{
    struct config cfg;
    struct lark_err err = {0};

    ck_assert_int_eq(config_load(&cfg, path, &err), LARK_EINVAL);
    ck_assert_int_eq(err.code, LARK_EINVAL);
    ck_assert_msg(strstr(err.msg, what) != NULL, "'%s' does not mention '%s'", err.msg, what);
    ck_assert_ptr_null(cfg.data_dir);
    ck_assert_ptr_null(cfg.jwt_secret);
}

START_TEST(test_defaults)
{
    struct config cfg;
    struct lark_err err = {0};

    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    ck_assert_str_eq(cfg.data_dir, "var");
    ck_assert_str_eq(cfg.db, "sqlite:var/lark.db");
    ck_assert_str_eq(cfg.listen, "var/larkd.sock");
    /* next to the binary, never a path fixed at build time: this program
     * (build/tests/) has neither ../share/lark/migrations nor ../migrations,
     * so the default names the installed layout's place */
    {
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *want;
        ck_assert_int_gt(n, 0);
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        want = xasprintf("%s/../share/lark/migrations", exe);
        ck_assert_str_eq(cfg.migrations, want);
        free(want);
    }
    ck_assert_str_eq(cfg.sqlite_sync, "FULL");
    ck_assert_int_eq(cfg.sqlite_page_size, 4096);
    ck_assert_str_eq(cfg.jwt_alg, "HS256");
    ck_assert_str_eq(cfg.jwt_secret, CONFIG_DEV_SECRET);
    ck_assert_str_eq(cfg.jwt_key_file, "");
    ck_assert_str_eq(cfg.jwt_aud, "");
    ck_assert_str_eq(cfg.jwt_iss, "");
    ck_assert_int_eq(cfg.jwt_leeway, 0);
    ck_assert_int_eq(cfg.workers, 16);
    ck_assert_int_eq(cfg.body_max, LIMIT_BODY_DEFAULT);
    ck_assert_int_eq(cfg.meta_max, LIMIT_META_DEFAULT);
    ck_assert_int_eq(cfg.request_max, LIMIT_REQUEST_DEFAULT);
    ck_assert_int_eq(cfg.group_max, LIMIT_GROUP_DEFAULT);
    ck_assert_int_eq(cfg.poll_timeout, LIMIT_POLL_TIMEOUT_DEFAULT);
    ck_assert_int_eq(cfg.poll_timeout_max, LIMIT_POLL_TIMEOUT_MAX);
    ck_assert_int_eq(cfg.history_max, LIMIT_HISTORY_MAX);
    ck_assert_int_eq(cfg.send_rate, LIMIT_SEND_RATE_DEFAULT);
    ck_assert_int_eq(cfg.send_burst, LIMIT_SEND_BURST_DEFAULT);
    ck_assert_int_le(cfg.sse_keepalive, 15); /* API.md: keep-alive at most every 15 s */
    ck_assert_str_eq(cfg.metrics_allow, "127.0.0.1,::1");
    ck_assert_str_eq(cfg.cors_origins, "");
    ck_assert_str_eq(cfg.log_level, "info");
    config_release(&cfg);
    ck_assert_ptr_null(cfg.data_dir);
    ck_assert_ptr_null(cfg.db);
    config_release(&cfg); /* twice is harmless */
}
END_TEST

START_TEST(test_env_override)
{
    struct config cfg;
    struct lark_err err = {0};

    setenv("LARK_WORKERS", "4", 1);
    setenv("LARK_DATA", "/srv/lark", 1);
    setenv("LARK_JWT_AUD", "lark", 1);
    setenv("LARK_SEND_RATE", "0", 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    ck_assert_int_eq(cfg.workers, 4);
    ck_assert_str_eq(cfg.data_dir, "/srv/lark");
    /* db and listen follow the data directory unless set. */
    ck_assert_str_eq(cfg.db, "sqlite:/srv/lark/lark.db");
    ck_assert_str_eq(cfg.listen, "/srv/lark/larkd.sock");
    ck_assert_str_eq(cfg.jwt_aud, "lark");
    ck_assert_int_eq(cfg.send_rate, 0);
    config_release(&cfg);

    setenv("LARK_DB", "sqlite:/elsewhere.db", 1);
    setenv("LARK_LISTEN", "/run/larkd.sock", 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    ck_assert_str_eq(cfg.db, "sqlite:/elsewhere.db");
    ck_assert_str_eq(cfg.listen, "/run/larkd.sock");
    config_release(&cfg);
}
END_TEST

START_TEST(test_env_bad_values)
{
    static const char *const bad[] = {"0",    "257", "4x", "", "-1", "99999999999999999999",
                                      "0x10", "1.5"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("LARK_WORKERS", bad[i], 1);
        load_fails(NULL, "LARK_WORKERS");
    }
    setenv("LARK_WORKERS", "256", 1);
    {
        struct config cfg;
        struct lark_err err = {0};
        ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
        ck_assert_int_eq(cfg.workers, 256);
        config_release(&cfg);
    }
    unsetenv("LARK_WORKERS");
    /* A request body cap above the hard ceiling is refused. */
    setenv("LARK_REQUEST_MAX", "1048577", 1);
    load_fails(NULL, "request_max");
    setenv("LARK_REQUEST_MAX", "1048576", 1);
    {
        struct config cfg;
        struct lark_err err = {0};
        ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
        ck_assert_int_eq(cfg.request_max, LIMIT_REQUEST_MAX);
        config_release(&cfg);
    }
    unsetenv("LARK_REQUEST_MAX");
    setenv("LARK_LOG_FORMAT", "xml", 1);
    load_fails(NULL, "log_format");
    setenv("LARK_LOG_FORMAT", "json", 1);
    {
        struct config cfg;
        struct lark_err err = {0};
        ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
        ck_assert_str_eq(cfg.log_format, "json");
        config_release(&cfg);
    }
    unsetenv("LARK_LOG_FORMAT");
    /* issue 13: presence is shared by default, and nothing but shared/all */
    setenv("LARK_PRESENCE_VISIBILITY", "everyone", 1);
    load_fails(NULL, "presence_visibility");
    setenv("LARK_TICKET_TTL", "61", 1); /* API.md: at most 60 s */
    unsetenv("LARK_PRESENCE_VISIBILITY");
    load_fails(NULL, "LARK_TICKET_TTL");
    unsetenv("LARK_TICKET_TTL");
    {
        struct config cfg;
        struct lark_err err = {0};
        ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
        ck_assert_str_eq(cfg.presence_visibility, "shared");
        ck_assert_int_eq(cfg.ticket_ttl, 60);
        ck_assert_int_eq(cfg.group_per_min, LIMIT_GROUP_PER_MIN_DEFAULT);
        config_release(&cfg);
    }
}
END_TEST

START_TEST(test_file)
{
    struct config cfg;
    struct lark_err err = {0};
    char *path = conf_file("# lark test configuration\n"
                           "\n"
                           "   workers = 8   \n"
                           "jwt_aud=lark\n"
                           "\tjwt_secret = with=equals and spaces inside\n"
                           "jwt_iss =\n"
                           "   # indented comment\n"
                           "cors_origins = https://a.example, https://b.example\n"
                           "log_level = debug");

    ck_assert_int_eq(config_load(&cfg, path, &err), 0);
    ck_assert_int_eq(cfg.workers, 8);
    ck_assert_str_eq(cfg.jwt_aud, "lark");
    ck_assert_str_eq(cfg.jwt_secret, "with=equals and spaces inside");
    ck_assert_str_eq(cfg.jwt_iss, "");
    ck_assert_str_eq(cfg.cors_origins, "https://a.example, https://b.example");
    ck_assert_str_eq(cfg.log_level, "debug");
    ck_assert_str_eq(cfg.data_dir, "var"); /* untouched keys keep defaults */
    config_release(&cfg);

    /* The environment wins over the file. */
    setenv("LARK_WORKERS", "3", 1);
    ck_assert_int_eq(config_load(&cfg, path, &err), 0);
    ck_assert_int_eq(cfg.workers, 3);
    ck_assert_str_eq(cfg.jwt_aud, "lark");
    config_release(&cfg);
    unsetenv("LARK_WORKERS");

    /* LARK_CONFIG names the file when no path is given. */
    setenv("LARK_CONFIG", path, 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    ck_assert_int_eq(cfg.workers, 8);
    config_release(&cfg);
    free(path);
}
END_TEST

START_TEST(test_file_errors)
{
    char *path;
    char *missing = unit_path(dir, "no-such.conf");
    char *long_line;

    path = conf_file("workers = 8\nworkerz = 9\n");
    load_fails(path, "unknown key 'workerz'");
    load_fails(path, ":2:");
    free(path);

    path = conf_file("workers 8\n");
    load_fails(path, "expected key = value");
    free(path);

    path = conf_file("workers = 0\n");
    load_fails(path, "workers");
    free(path);
    path = conf_file("workers = 257\n");
    load_fails(path, "[1, 256]");
    free(path);
    path = conf_file("jwt_leeway = 301\n");
    load_fails(path, "jwt_leeway");
    free(path);
    path = conf_file("body_max = lots\n");
    load_fails(path, "body_max");
    free(path);
    path = conf_file("sse_keepalive = 16\n");
    load_fails(path, "sse_keepalive");
    free(path);

    /* Checks across keys. */
    path = conf_file("poll_timeout = 30\npoll_timeout_max = 20\n");
    load_fails(path, "poll_timeout");
    free(path);
    path = conf_file("log_level = verbose\n");
    load_fails(path, "log_level");
    free(path);

    /* A line longer than the reader's buffer is an error, not cut. */
    long_line = malloc(10000);
    memcpy(long_line, "jwt_secret = ", 13);
    memset(long_line + 13, 's', 10000 - 15);
    long_line[10000 - 2] = '\n';
    long_line[10000 - 1] = '\0';
    path = conf_file(long_line);
    load_fails(path, "too long");
    free(path);
    free(long_line);

    load_fails(missing, "cannot open");
    free(missing);
}
END_TEST

START_TEST(test_file_error_releases)
{
    /* Strings set by earlier lines are freed when a later line fails
     * (LeakSanitizer checks this in the asan build). */
    char *path = conf_file("jwt_secret = aaaaaaaaaaaaaaaaaaaaaaa\njwt_aud = x\nbogus = 1\n");
    load_fails(path, "bogus");
    free(path);
}
END_TEST

START_TEST(test_list_has)
{
    ck_assert(config_list_has("a,b,c", "a"));
    ck_assert(config_list_has("a,b,c", "b"));
    ck_assert(config_list_has("a,b,c", "c"));
    ck_assert(!config_list_has("a,b,c", "d"));
    ck_assert(config_list_has(" a , b ", "a"));
    ck_assert(config_list_has(" a , b ", "b"));
    ck_assert(!config_list_has("ab", "a"));
    ck_assert(!config_list_has("a", "ab"));
    ck_assert(!config_list_has("", "a"));
    ck_assert(!config_list_has("a,b", ""));
    ck_assert(!config_list_has("a,,b", ""));
    ck_assert(config_list_has("a,,b", "b"));
    ck_assert(config_list_has("127.0.0.1,::1", "::1"));
    ck_assert(config_list_has("127.0.0.1,::1", "127.0.0.1"));
    ck_assert(!config_list_has("127.0.0.1,::1", "127.0.0.10"));
    ck_assert(!config_list_has("127.0.0.10", "127.0.0.1"));
    ck_assert(config_list_has("https://a.example, https://b.example", "https://b.example"));
    ck_assert(!config_list_has("https://a.example", "https://a.example.evil"));
    ck_assert(config_list_has("*", "*"));
    ck_assert(!config_list_has("*", "https://a.example"));
}
END_TEST

START_TEST(test_help)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    config_help(f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "jwt_secret"));
    ck_assert_ptr_nonnull(strstr(text, "LARK_JWT_SECRET"));
    ck_assert_ptr_nonnull(strstr(text, "LARK_WORKERS"));
    ck_assert_ptr_nonnull(strstr(text, "default: 16"));
    /* The development secret is never printed. */
    ck_assert_ptr_null(strstr(text, CONFIG_DEV_SECRET));
    free(text);
}
END_TEST

START_TEST(test_dev_tokens)
{
    struct config cfg;
    struct lark_err err = {0};

    /* off by default */
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    ck_assert_int_eq(cfg.dev_tokens, 0);
    config_release(&cfg);
    /* on with the development secret */
    setenv("LARK_DEV_TOKENS", "1", 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    ck_assert_int_eq(cfg.dev_tokens, 1);
    config_release(&cfg);
    /* never with a secret of one's own, nor with a public key */
    setenv("LARK_JWT_SECRET", "a-production-secret-0123456789", 1);
    load_fails(NULL, "dev_tokens");
    unsetenv("LARK_JWT_SECRET");
    setenv("LARK_JWT_ALG", "RS256", 1);
    load_fails(NULL, "dev_tokens");
    unsetenv("LARK_JWT_ALG");
    setenv("LARK_DEV_TOKENS", "2", 1);
    load_fails(NULL, "LARK_DEV_TOKENS");
    unsetenv("LARK_DEV_TOKENS");
    /* the same from a file */
    {
        char *path = conf_file("dev_tokens = 1\njwt_secret = another-secret-0123456789\n");
        load_fails(path, "dev_tokens");
        free(path);
    }
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_env_override);
    tcase_add_test(tc, test_env_bad_values);
    tcase_add_test(tc, test_file);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_file_error_releases);
    tcase_add_test(tc, test_list_has);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_dev_tokens);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(config_suite());
}
