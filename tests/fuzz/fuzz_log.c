/*
 * fuzz_log.c - libFuzzer target for what every log line goes through:
 * core/log's one-line and JSON rendering and core/redact's password
 * removal, on messages that may carry anything a client sent.
 *
 * Beyond memory safety it checks:
 *   - a text line ends with its only newline and holds no other control
 *     character but tab (nobody can forge a line);
 *   - a JSON line is one line and parses as an object of four strings;
 *   - redaction leaves a text without "://" or "password=" unchanged, and
 *     is idempotent on texts with only one of the two kinds (a removed
 *     password= value may have held the '/' or '#' that ended a URI's
 *     authority, which moves that URI's boundaries: not a leak, but not a
 *     fixed point either).
 */
#include "core/log.h"
#include "core/redact.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[2048], line[4096], once[2048], twice[2048];
    size_t n = size < sizeof(msg) - 1 ? size : sizeof(msg) - 1;
    unsigned len;
    size_t a, b;
    int uris, params;
    json_t *obj;

    memcpy(msg, data, n);
    msg[n] = '\0'; /* a message is a C string: it ends at its first NUL */

    len = log_render(line, sizeof(line), LOG_TEXT, LOG_WARN, "2026-01-01T00:00:00.000Z", msg);
    CHECK(len > 0 && line[len - 1] == '\n');
    for (unsigned i = 0; i + 1 < len; i++)
        CHECK((unsigned char)line[i] >= 0x20 ? line[i] != 0x7f : line[i] == '\t');

    len = log_render(line, sizeof(line), LOG_JSON, LOG_WARN, "2026-01-01T00:00:00.000Z", msg);
    CHECK(len > 0 && line[len - 1] == '\n' && !memchr(line, '\n', len - 1));
    obj = json_loadb(line, len, 0, NULL);
    CHECK(json_is_object(obj) && json_object_size(obj) == 4);
    CHECK(json_is_string(json_object_get(obj, "msg")));
    json_decref(obj);

    a = redact_secrets(msg, strlen(msg), once, sizeof(once));
    b = redact_secrets(once, a, twice, sizeof(twice));
    uris = strstr(msg, "://") != NULL;
    params = strcasestr(msg, "password=") != NULL;
    CHECK(a < sizeof(once));
    if (!(uris && params))
        CHECK(b == a && memcmp(once, twice, a) == 0);
    if (!uris && !params)
        CHECK(a == strlen(msg) && memcmp(once, msg, a) == 0);
    return 0;
}
