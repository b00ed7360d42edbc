/*
 * test_bench_proc.c - tools/larkbench/procstat: the /proc readings behind
 * larkbench's memory and CPU figures. The parsers on captured text
 * (including a command name with blanks and parentheses, which shifts
 * naive field counts), then the readers on this process and on a child
 * that listens on a TCP port and a unix socket.
 */
#include "tools/larkbench/procstat.h"

#include "core/err.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

START_TEST(test_parse_stat)
{
    struct procstat_stat st;
    ck_assert_int_eq(procstat_parse_stat("4242 (larkd) S 4200 4242 4200 0 -1 4194560 1880 0 0 0 "
                                         "123 45 0 0 20 0 21 0 9999 1 2 3\n",
                                         &st),
                     0);
    ck_assert_int_eq(st.state, 'S');
    ck_assert_int_eq(st.ppid, 4200);
    ck_assert_uint_eq(st.ticks, 168);
    ck_assert_str_eq(st.comm, "larkd");
    /* A command name with blanks and a ')' of its own. */
    ck_assert_int_eq(
        procstat_parse_stat("17 (a b) (c)) R 1 17 17 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0", &st), 0);
    ck_assert_int_eq(st.state, 'R');
    ck_assert_int_eq(st.ppid, 1);
    ck_assert_uint_eq(st.ticks, 15);
    ck_assert_str_eq(st.comm, "a b) (c)");
    /* a thread name as larkd sets it; longer ones are cut to fit */
    ck_assert_int_eq(procstat_parse_stat("18 (lark-writer) S 1 17 17 0 -1 0 0 0 0 0 1 1 0 0", &st),
                     0);
    ck_assert_str_eq(st.comm, "lark-writer");
    ck_assert_int_eq(procstat_parse_stat(
                         "19 (abcdefghijklmnopqrstuvwxyz) S 1 17 17 0 -1 0 0 0 0 0 1 1 0 0", &st),
                     0);
    ck_assert_str_eq(st.comm, "abcdefghijklmno");
    ck_assert_int_eq(procstat_parse_stat("17 larkd S 1 2 3", &st), LARK_EINVAL);
    ck_assert_int_eq(procstat_parse_stat("17 (larkd) S 1 2 3", &st), LARK_EINVAL);
    ck_assert_int_eq(procstat_parse_stat("17 (larkd) S x 2 3 4 5 6 7 8 9 10 11 12 13", &st),
                     LARK_EINVAL);
}
END_TEST

START_TEST(test_parse_tcp)
{
    unsigned long inode = 0;
    const char *listen18000 = "   3: 0100007F:4650 00000000:0000 0A 00000000:00000000 00:00000000 "
                              "00000000     0        0 123456 1 0000000000000000 100 0 0 10 0\n";
    const char *any8080 = "   4: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
                          "00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n";
    const char *established = "   5: 0100007F:4650 0100007F:D2F0 01 00000000:00000000 "
                              "00:00000000 00000000     0        0 888 1 0000000000000000 20 4 "
                              "30 10 -1\n";
    ck_assert_int_eq(procstat_parse_tcp_listen(listen18000, 18000, &inode), 1);
    ck_assert_uint_eq(inode, 123456);
    ck_assert_int_eq(procstat_parse_tcp_listen(any8080, 8080, &inode), 1);
    ck_assert_uint_eq(inode, 777);
    ck_assert_int_eq(procstat_parse_tcp_listen(listen18000, 18001, &inode), 0);
    ck_assert_int_eq(procstat_parse_tcp_listen(established, 18000, &inode), 0);
    ck_assert_int_eq(procstat_parse_tcp_listen("  sl  local_address rem_address   st tx_queue "
                                               "rx_queue tr tm->when retrnsmt   uid  timeout inode",
                                               18000, &inode),
                     0);
}
END_TEST

START_TEST(test_parse_unix)
{
    unsigned long inode = 0;
    const char *l =
        "0000000000000000: 00000002 00000000 00010000 0001 01 45678 /tmp/x/larkd.sock\n";
    const char *c =
        "0000000000000000: 00000003 00000000 00000000 0001 03 45679 /tmp/x/larkd.sock\n";
    ck_assert_int_eq(procstat_parse_unix_listen(l, "/tmp/x/larkd.sock", &inode), 1);
    ck_assert_uint_eq(inode, 45678);
    ck_assert_int_eq(procstat_parse_unix_listen(l, "/tmp/x/other.sock", &inode), 0);
    ck_assert_int_eq(procstat_parse_unix_listen(c, "/tmp/x/larkd.sock", &inode), 0);
    ck_assert_int_eq(procstat_parse_unix_listen("0000000000000000: 00000002 00000000 00010000 "
                                                "0001 01 99\n",
                                                "/tmp/x/larkd.sock", &inode),
                     0);
}
END_TEST

START_TEST(test_parse_environ)
{
    static const char env[] = "A=1\0LARK_DB=postgresql:///db?host=/tmp\0LARK=2\0EMPTY=\0LAST=end";
    char out[64];
    ck_assert_int_eq(procstat_parse_environ(env, sizeof(env) - 1, "LARK", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "2");
    ck_assert_int_eq(procstat_parse_environ(env, sizeof(env) - 1, "LARK_DB", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "postgresql:///db?host=/tmp");
    ck_assert_int_eq(procstat_parse_environ(env, sizeof(env) - 1, "LARK_D", out, sizeof(out)), -1);
    ck_assert_int_eq(procstat_parse_environ(env, sizeof(env) - 1, "EMPTY", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(procstat_parse_environ(env, sizeof(env) - 1, "NONE", out, sizeof(out)), -1);
    /* The last entry without its NUL (a read cut at the buffer's end). */
    ck_assert_int_eq(procstat_parse_environ(env, sizeof(env) - 1, "LAST", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "end");
    /* Cut to the output's size. */
    ck_assert_int_eq(procstat_parse_environ(env, sizeof(env) - 1, "LARK_DB", out, 5), 0);
    ck_assert_str_eq(out, "post");
}
END_TEST

START_TEST(test_parse_status_and_cpu)
{
    ck_assert_int_eq(procstat_parse_status_kib("VmRSS:\t    1234 kB\n", "VmRSS:"), 1234);
    ck_assert_int_eq(procstat_parse_status_kib("VmHWM:\t    9999 kB\n", "VmRSS:"), -1);
    ck_assert_int_eq(procstat_parse_status_kib("VmRSS:\n", "VmRSS:"), -1);
    ck_assert_uint_eq(procstat_parse_cpu_busy("cpu  100 2 30 1000 50 4 5 6 0 0\n"), 147);
    ck_assert_uint_eq(procstat_parse_cpu_busy("cpu0 100 2 30 1000 50 4 5 6 0 0\n"), 0);
    ck_assert_uint_eq(procstat_parse_cpu_busy("intr 1 2 3\n"), 0);
}
END_TEST

START_TEST(test_fields)
{
    char line[] = "  a\tbb  ccc \n";
    char *f[4];
    ck_assert_int_eq(procstat_fields(line, f, 4), 3);
    ck_assert_str_eq(f[0], "a");
    ck_assert_str_eq(f[1], "bb");
    ck_assert_str_eq(f[2], "ccc");
}
END_TEST

START_TEST(test_this_process)
{
    struct procstat_threads *t = malloc(sizeof(*t));
    volatile unsigned long spin = 0;
    ck_assert_ptr_nonnull(t);
    /* Some CPU time of our own to see: 30 ms, three clock ticks. */
    for (unsigned long i = 0; clock() < CLOCKS_PER_SEC * 3 / 100; i++)
        spin += i;
    ck_assert_uint_gt(procstat_ticks(getpid()), 0);
    ck_assert_uint_ge(procstat_tree_ticks(getpid()), procstat_ticks(getpid()));
    ck_assert_int_gt(procstat_rss_kib(getpid()), 0);
    ck_assert_int_ge(procstat_tree_rss_kib(getpid()), procstat_rss_kib(getpid()) / 2);
    ck_assert_int_ge(procstat_fds(getpid()), 3);
    ck_assert_uint_gt(procstat_busy_ticks(), 0);
    procstat_threads(getpid(), t);
    ck_assert_uint_ge(t->n, 1);
    ck_assert_int_eq(t->tid[0], getpid());
    ck_assert_int_eq(procstat_rss_kib(0), -1);
    ck_assert_int_eq(procstat_fds(-1), -1);
    free(t);
}
END_TEST

/* A child that listens on a TCP port and a unix socket, then waits. */
static pid_t listening_child(int *port, const char *path)
{
    int ready[2];
    pid_t pid;
    ck_assert_int_eq(pipe(ready), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        struct sockaddr_un u = {.sun_family = AF_UNIX};
        socklen_t len = sizeof(a);
        int t = socket(AF_INET, SOCK_STREAM, 0), s = socket(AF_UNIX, SOCK_STREAM, 0);
        /* Check's own SIGTERM handler (inherited) would signal our group. */
        signal(SIGTERM, SIG_DFL);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        snprintf(u.sun_path, sizeof(u.sun_path), "%s", path);
        if (bind(t, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(t, 1) != 0 ||
            getsockname(t, (struct sockaddr *)&a, &len) != 0 ||
            bind(s, (struct sockaddr *)&u, sizeof(u)) != 0 || listen(s, 1) != 0)
            _exit(1);
        *port = ntohs(a.sin_port);
        if (write(ready[1], port, sizeof(*port)) != (ssize_t)sizeof(*port))
            _exit(1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    ck_assert_int_eq(read(ready[0], port, sizeof(*port)), (ssize_t)sizeof(*port));
    close(ready[0]);
    return pid;
}

START_TEST(test_listeners)
{
    char *dir = unit_tmpdir(), *path = unit_path(dir, "l.sock");
    int port = 0, status;
    pid_t child = listening_child(&port, path);
    ck_assert_int_eq(procstat_tcp_listener(port), child);
    ck_assert_int_eq(procstat_unix_listener(path), child);
    ck_assert_int_eq(procstat_unix_listener("/nonexistent/none.sock"), 0);
    ck_assert_int_eq(kill(child, SIGKILL), 0);
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    unit_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bench_proc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse_stat);
    tcase_add_test(tc, test_parse_tcp);
    tcase_add_test(tc, test_parse_unix);
    tcase_add_test(tc, test_parse_environ);
    tcase_add_test(tc, test_parse_status_and_cpu);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_this_process);
    tcase_add_test(tc, test_listeners);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
