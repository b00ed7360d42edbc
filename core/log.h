/*
 * log.h - one line per event, with a level, to stderr.
 *
 * Two formats (log_format, docs/OPERATIONS.md "Logs"):
 *   text  "<RFC 3339 time> <LEVEL> <program>: <message>"
 *   json  {"time": "...", "level": "info", "program": "larkd", "msg": "..."}
 * one line each, written with a single write(2) so that lines from
 * different threads never interleave. Messages are key=value where a value
 * is machine-read (e.g. "send user=alice seq=42").
 *
 * Every line is made safe before it is written: a message that spans lines
 * (libpq's errors do) becomes one line, other control characters become
 * '?', and passwords are removed (core/redact.h), so no caller can leak one
 * or forge a line. Level and format may change at any time (SIGHUP); any
 * thread may log.
 */
#ifndef LARK_LOG_H
#define LARK_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

enum log_format { LOG_TEXT = 0, LOG_JSON = 1 };

/* Set the program name (borrowed; must outlive logging) and minimum level. */
void log_init(const char *prog, enum log_level min);

/* Change the minimum level or the format (any thread, any time). */
void log_set_level(enum log_level min);
void log_set_format(enum log_format fmt);

/* Parse "debug" | "info" | "warn" | "error"; -1 if unknown. */
int log_level_parse(const char *s);

/* Parse "text" | "json"; -1 if unknown. */
int log_format_parse(const char *s);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/*
 * Render one line of fmt into out (cap bytes) exactly as log_msg would
 * write it, newline included, without writing it; returns its length. For
 * tests of the formats.
 */
unsigned log_render(char *out, unsigned cap, enum log_format fmt, enum log_level lvl,
                    const char *time, const char *msg);

/* Thread-safe text for an errno value (strerror is not). */
const char *log_errno(int errnum, char *buf, unsigned len);

#endif
