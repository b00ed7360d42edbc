/*
 * log.h - one line per event, with a level, to stderr.
 *
 * Every line is "<RFC 3339 time> <LEVEL> <program>: <message>\n", written
 * with a single write(2) so that lines from different threads never
 * interleave. Messages are key=value where a value is machine-read
 * (e.g. "send user=alice seq=42"). Safe to call from any thread.
 */
#ifndef LARK_LOG_H
#define LARK_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Set the program name (borrowed; must outlive logging) and minimum level. */
void log_init(const char *prog, enum log_level min);

/* Parse "debug" | "info" | "warn" | "error"; -1 if unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Thread-safe text for an errno value (strerror is not). */
const char *log_errno(int errnum, char *buf, unsigned len);

#endif
