/*
 * err.c - the one table from LARK_E* codes to HTTP status and API codes.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>

struct err_info {
    int code;
    int status;
    const char *api;
    const char *msg;
};

static const struct err_info err_table[] = {
    {LARK_EINVAL, 400, "invalid_request", "the request is malformed"},
    {LARK_EJSON, 400, "invalid_json", "the body is not a JSON object"},
    {LARK_EUTF8, 400, "invalid_utf8", "the body is not valid UTF-8"},
    {LARK_EMISSING, 400, "missing_field", "a required field is missing"},
    {LARK_ETYPE, 400, "wrong_type", "a field has the wrong type"},
    {LARK_EFIELD, 400, "invalid_field", "a field has an invalid value"},
    {LARK_ETOOMANY, 400, "too_many", "a list has too many entries"},
    {LARK_EUNKNOWNTYPE, 400, "unknown_type", "unknown command type"},
    {LARK_ETOOLARGE, 413, "request_too_large", "the request body is too large"},
    {LARK_EMSGLARGE, 413, "message_too_large", "the message is too large"},
    {LARK_EMEDIA, 415, "unsupported_media_type", "the body must be application/json"},
    {LARK_ENOAUTH, 401, "missing_token", "an access token is required"},
    {LARK_ETOKEN, 401, "invalid_token", "the access token is not valid"},
    {LARK_EEXPIRED, 401, "token_expired", "the access token has expired"},
    {LARK_ENOTMEMBER, 403, "not_member", "you are not a member of this conversation"},
    {LARK_EFORBIDDEN, 403, "forbidden", "you are not allowed to do this"},
    {LARK_ENOTFOUND, 404, "not_found", "not found"},
    {LARK_EMETHOD, 405, "method_not_allowed", "method not allowed"},
    {LARK_ECONFLICT, 409, "conflict", "conflict"},
    {LARK_EGROUPFULL, 409, "group_full", "the group has reached its size limit"},
    {LARK_ERATE, 429, "rate_limited", "too many requests"},
    {LARK_ETOOMANYCONN, 429, "too_many_connections", "too many held connections for this user"},
    {LARK_EDRAINING, 503, "draining", "the server is restarting, retry shortly"},
    {LARK_EUNAVAIL, 503, "db_unavailable", "the database is unavailable, retry shortly"},
    {LARK_EINTERNAL, 500, "internal", "internal error"},
    {LARK_EBADMEDIA, 400, "invalid_media", "no such media of yours"},
    {LARK_EMEDIAPENDING, 409, "media_pending", "the media has not been uploaded yet"},
    {LARK_EMEDIALARGE, 413, "media_too_large", "the upload is too large"},
    {LARK_EQUOTA, 413, "quota_exceeded", "your stored media would pass your quota"},
    {LARK_ESTORAGE, 503, "storage_unavailable", "media storage is unavailable, retry shortly"},
};

static const struct err_info *err_find(int code)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (err_table[i].code == code)
            return &err_table[i];
    return NULL;
}

int lark_err_set(struct lark_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

int err_http_status(int code)
{
    const struct err_info *e = err_find(code);
    return e ? e->status : 500;
}

const char *err_api_code(int code)
{
    const struct err_info *e = err_find(code);
    return e ? e->api : "internal";
}

const char *err_default_msg(int code)
{
    const struct err_info *e = err_find(code);
    return e ? e->msg : "internal error";
}
