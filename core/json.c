/*
 * json.c - JSON body parsing and typed field getters.
 */
#include "core/json.h"

#include "core/err.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

int json_parse_object(const char *data, size_t len, json_t **out, struct lark_err *err)
{
    json_error_t jerr;
    json_t *v;

    *out = NULL;
    v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            return lark_err_set(err, LARK_EUTF8, "invalid UTF-8 at byte %d", jerr.position);
        return lark_err_set(err, LARK_EJSON, "invalid JSON at line %d, column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    }
    if (!json_is_object(v)) {
        json_decref(v);
        return lark_err_set(err, LARK_EJSON, "the body must be a JSON object");
    }
    *out = v;
    return 0;
}

static int json_missing(const char *key, int flags, struct lark_err *err)
{
    if (flags & JSON_FIELD_REQUIRED)
        return lark_err_set(err, LARK_EMISSING, "'%s' is required", key);
    return 0;
}

int json_get_str(json_t *obj, const char *key, int flags, const char **out, size_t *len,
                 struct lark_err *err)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (len)
        *len = 0;
    if (!v || json_is_null(v))
        return json_missing(key, flags, err);
    if (!json_is_string(v))
        return lark_err_set(err, LARK_ETYPE, "'%s' must be a string", key);
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return 0;
}

int json_get_uint(json_t *obj, const char *key, int flags, uint64_t max, uint64_t *out,
                  struct lark_err *err)
{
    json_t *v = json_object_get(obj, key);
    json_int_t n;

    if (!v || json_is_null(v))
        return json_missing(key, flags, err);
    if (!json_is_integer(v))
        return lark_err_set(err, LARK_ETYPE, "'%s' must be an integer", key);
    n = json_integer_value(v);
    if (n < 0 || (uint64_t)n > max)
        return lark_err_set(err, LARK_EFIELD, "'%s' must be between 0 and %llu", key,
                            (unsigned long long)max);
    *out = (uint64_t)n;
    return 0;
}

int json_get_object(json_t *obj, const char *key, int flags, json_t **out, struct lark_err *err)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return json_missing(key, flags, err);
    if (!json_is_object(v))
        return lark_err_set(err, LARK_ETYPE, "'%s' must be an object", key);
    *out = v;
    return 0;
}

int json_get_array(json_t *obj, const char *key, int flags, json_t **out, struct lark_err *err)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || json_is_null(v))
        return json_missing(key, flags, err);
    if (!json_is_array(v))
        return lark_err_set(err, LARK_ETYPE, "'%s' must be an array", key);
    *out = v;
    return 0;
}

char *json_dump(const json_t *v, int ascii, size_t *len)
{
    size_t flags = JSON_COMPACT | (ascii ? JSON_ENSURE_ASCII : 0);
    char *s = json_dumps(v, flags | JSON_ENCODE_ANY);

    if (!s) {
        log_error("out of memory serializing JSON");
        abort();
    }
    if (len)
        *len = strlen(s);
    return s;
}

static void json_oom(void)
{
    log_error("out of memory building JSON");
    abort();
}

void json_put(json_t *obj, const char *key, json_t *value)
{
    if (!value || json_object_set_new(obj, key, value) != 0)
        json_oom();
}

void json_push(json_t *arr, json_t *value)
{
    if (!value || json_array_append_new(arr, value) != 0)
        json_oom();
}

json_t *json_clone(const json_t *v)
{
    json_t *c = json_deep_copy(v);
    if (!c)
        json_oom();
    return c;
}

json_t *json_obj(void)
{
    json_t *v = json_object();
    if (!v)
        json_oom();
    return v;
}

json_t *json_arr(void)
{
    json_t *v = json_array();
    if (!v)
        json_oom();
    return v;
}
