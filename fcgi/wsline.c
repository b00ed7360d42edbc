/*
 * wsline.c - WebSocket input lines (see wsline.h).
 */
#include "fcgi/wsline.h"

#include <string.h>

enum wsline_result wsline_next(const char *data, size_t len, size_t max, size_t *line_len,
                               size_t *used)
{
    const char *nl = len ? memchr(data, '\n', len) : NULL;

    *line_len = *used = 0;
    if (!nl)
        return len >= max ? WSLINE_TOO_LONG : WSLINE_MORE;
    *used = (size_t)(nl - data) + 1;
    *line_len = (size_t)(nl - data);
    if (*line_len && data[*line_len - 1] == '\r')
        (*line_len)--;
    return WSLINE_LINE;
}
