/*
 * log.c - stderr logging, one write(2) per line.
 */
#include "core/log.h"

#include "core/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A line longer than this is cut; log lines are events, not dumps. */
#define LOG_LINE_MAX 1024

static const char *log_prog = "lark";
static enum log_level log_min = LOG_INFO;

void log_init(const char *prog, enum log_level min)
{
    log_prog = prog;
    log_min = min;
}

int log_level_parse(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[LOG_LINE_MAX];
    char ts[TIME_RFC3339_LEN];
    va_list ap;
    int n;

    if (lvl < log_min)
        return;
    time_rfc3339(time_now_ms(), ts);
    n = snprintf(line, sizeof(line), "%s %s %s: ", ts, tags[lvl], log_prog);
    if (n < 0)
        return;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(line))
        n = (int)sizeof(line) - 1;
    line[n++] = '\n';
    /* A failed log write has nowhere better to be reported. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

const char *log_errno(int errnum, char *buf, unsigned len)
{
    /* GNU strerror_r may return a static string instead of filling buf. */
    return strerror_r(errnum, buf, len);
}
