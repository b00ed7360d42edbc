/*
 * log.c - stderr logging, one write(2) per line, text or JSON.
 */
#include "core/log.h"

#include "core/redact.h"
#include "core/timeutil.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A message longer than this is cut; log lines are events, not dumps. */
#define LOG_MSG_MAX 1024
/* A rendered line: the message, JSON-escaped at worst 6 bytes per control
 * byte (none survive log_one_line) but 2 per quote or backslash, plus the
 * time, level and program. */
#define LOG_LINE_MAX (2 * LOG_MSG_MAX + 256)

static const char *log_prog = "lark";
static atomic_int log_min = LOG_INFO;
static atomic_int log_fmt = LOG_TEXT;

static const char *const level_tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *prog, enum log_level min)
{
    log_prog = prog;
    atomic_store(&log_min, (int)min);
}

void log_set_level(enum log_level min)
{
    atomic_store(&log_min, (int)min);
}

void log_set_format(enum log_format fmt)
{
    atomic_store(&log_fmt, (int)fmt);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0)
        return LOG_TEXT;
    if (strcmp(s, "json") == 0)
        return LOG_JSON;
    return -1;
}

/*
 * Make msg one line, in place: every run of line breaks with the
 * indentation after it becomes one space (libpq's messages are several
 * indented lines), other control characters become '?', trailing white
 * space goes. Returns the new length.
 */
static size_t log_one_line(char *msg, size_t len)
{
    size_t r = 0, w = 0;

    while (r < len) {
        unsigned char c = (unsigned char)msg[r];
        if (c == '\n' || c == '\r') {
            while (r < len && (msg[r] == '\n' || msg[r] == '\r' || msg[r] == ' ' || msg[r] == '\t'))
                r++;
            msg[w++] = ' ';
            continue;
        }
        msg[w++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
        r++;
    }
    while (w && (msg[w - 1] == ' ' || msg[w - 1] == '\t'))
        w--;
    msg[w] = '\0';
    return w;
}

/*
 * Bytes of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid:
 * RFC 3629's table, so no overlong form, surrogate or value past U+10FFFF
 * gets through (a JSON reader refuses those).
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    size_t want = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                  : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                  : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                 : 0;
    if (want == 0 || want > n)
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < want; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return want;
}

/* Append s as the inside of a JSON string; stops before room runs out. */
static size_t json_escape(char *out, size_t room, const char *s)
{
    size_t w = 0, n = strlen(s);

    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t seq;
        if (room - w < 8)
            break;
        if (c == '"' || c == '\\') {
            out[w++] = '\\';
            out[w++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            w += (size_t)snprintf(out + w, room - w, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            out[w++] = (char)c;
            i++;
        } else if ((seq = utf8_seq((const unsigned char *)s + i, n - i)) != 0) {
            memcpy(out + w, s + i, seq);
            w += seq;
            i += seq;
        } else {
            out[w++] = '?'; /* not UTF-8: a JSON reader would refuse the line */
            i++;
        }
    }
    return w;
}

unsigned log_render(char *out, unsigned cap, enum log_format fmt, enum log_level lvl,
                    const char *time, const char *msg)
{
    char clean[LOG_MSG_MAX];
    size_t n = strlen(msg), w;
    int head;

    if (n >= sizeof(clean))
        n = sizeof(clean) - 1;
    memcpy(clean, msg, n);
    clean[n] = '\0';
    n = log_one_line(clean, n);
    if (fmt == LOG_JSON) {
        char safe[LOG_MSG_MAX];
        redact_secrets(clean, n, safe, sizeof(safe));
        head = snprintf(out, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"program\":\"", time,
                        level_names[lvl]);
        if (head < 0 || (unsigned)head >= cap)
            return 0;
        w = (size_t)head + json_escape(out + head, cap - (size_t)head, log_prog);
        w += (size_t)snprintf(out + w, cap - w, "\",\"msg\":\"");
        if (w + 4 > cap)
            return 0;
        w += json_escape(out + w, cap - w - 3, safe);
        out[w++] = '"'; /* a line, not a C string: no NUL */
        out[w++] = '}';
        out[w++] = '\n';
        return (unsigned)w;
    }
    head = snprintf(out, cap, "%s %s %s: ", time, level_tags[lvl], log_prog);
    if (head < 0 || (unsigned)head + 2 > cap)
        return 0;
    w = (size_t)head + redact_secrets(clean, n, out + head, cap - (size_t)head - 1);
    out[w++] = '\n';
    return (unsigned)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    char msg[LOG_MSG_MAX];
    char line[LOG_LINE_MAX];
    char ts[TIME_RFC3339_LEN];
    va_list ap;
    unsigned n;

    if ((int)lvl < atomic_load(&log_min))
        return;
    time_rfc3339(time_now_ms(), ts);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    n = log_render(line, sizeof(line), (enum log_format)atomic_load(&log_fmt), lvl, ts, msg);
    /* A failed log write has nowhere better to be reported. */
    if (n && write(STDERR_FILENO, line, n) < 0)
        return;
}

const char *log_errno(int errnum, char *buf, unsigned len)
{
    /* GNU strerror_r may return a static string instead of filling buf. */
    return strerror_r(errnum, buf, len);
}
