/*
 * json.h - request-body parsing and typed field access over jansson.
 *
 * jansson does the parsing; this module adds what every handler needs on
 * top: the body must be one JSON object, duplicate keys are refused (two
 * values for "to" must not be guessed between), invalid UTF-8 is told
 * apart from invalid JSON, and each field getter reports the exact API
 * error (missing_field, wrong_type, invalid_field) with the field's name.
 *
 * Every function returns 0 or a negative LARK_E* code and fills err.
 * Returned json_t pointers are borrowed from the object they came from
 * unless stated otherwise. Thread-safe (jansson objects are not shared).
 */
#ifndef LARK_JSON_H
#define LARK_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lark_err;

enum json_field_flags {
    JSON_FIELD_OPTIONAL = 0,
    JSON_FIELD_REQUIRED = 1 << 0,
};

/*
 * Parse len bytes as one JSON object. On success *out is a new reference
 * the caller must json_decref. Errors: LARK_EUTF8, LARK_EJSON (not JSON,
 * trailing data, duplicate key, NUL in a string, or not an object).
 */
int json_parse_object(const char *data, size_t len, json_t **out, struct lark_err *err);

/*
 * String field. A missing optional field sets *out = NULL, *len = 0 and
 * returns 0. len may be NULL. The string is borrowed from obj.
 */
int json_get_str(json_t *obj, const char *key, int flags, const char **out, size_t *len,
                 struct lark_err *err);

/* Non-negative integer field <= max; a missing optional field leaves *out. */
int json_get_uint(json_t *obj, const char *key, int flags, uint64_t max, uint64_t *out,
                  struct lark_err *err);

/* Object field (borrowed); a missing optional field sets *out = NULL. */
int json_get_object(json_t *obj, const char *key, int flags, json_t **out, struct lark_err *err);

/* Array field (borrowed); a missing optional field sets *out = NULL. */
int json_get_array(json_t *obj, const char *key, int flags, json_t **out, struct lark_err *err);

/*
 * Serialize compactly. ascii != 0 escapes every non-ASCII character as
 * \uXXXX (the WebSocket bridge needs cut-safe output, API.md). The caller
 * frees the result with free(). Aborts on out of memory.
 */
char *json_dump(const json_t *v, int ascii, size_t *len);

/* json_object_set_new that aborts on out of memory instead of failing;
 * takes ownership of value. */
void json_put(json_t *obj, const char *key, json_t *value);

/* json_array_append_new that aborts on out of memory; takes ownership. */
void json_push(json_t *arr, json_t *value);

/* A deep copy (new reference); aborts on out of memory. */
json_t *json_clone(const json_t *v);

/* New empty object / array; abort on out of memory. */
json_t *json_obj(void);
json_t *json_arr(void);

#endif
