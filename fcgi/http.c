/*
 * http.c - writing answers through libfcgi.
 */
#include "fcgi/http.h"

#include "core/buf.h"
#include "core/json.h"
#include "fcgi/metrics.h"

/* Longest header line written (an Origin echoed back is the long one). */
#define HTTP_HEADER_MAX 1024

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

const char *req_param(const struct req *r, const char *name)
{
    return r->fcgx ? FCGX_GetParam(name, r->fcgx->envp) : getenv(name);
}

void req_write(struct req *r, const char *data, size_t len)
{
    if (r->capture)
        buf_append(r->capture, data, len); /* sized for a head: cannot fill */
    else if (r->fcgx)
        FCGX_PutStr(data, (int)len, r->fcgx->out);
    else
        fwrite(data, 1, len, stdout);
}

size_t req_read(struct req *r, char *buf, size_t len)
{
    int n;
    if (!r->fcgx)
        return fread(buf, 1, len, stdin);
    n = FCGX_GetStr(buf, (int)len, r->fcgx->in);
    return n > 0 ? (size_t)n : 0;
}

/* Format one header line into the request's output. libfcgi's own
 * FCGX_FPrintF knows neither %zu nor field widths, so format here. */
void reply_header(struct req *r, const char *fmt, ...)
{
    char line[HTTP_HEADER_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(line))
        req_write(r, line, (size_t)n);
}

void reply_common_headers(struct req *r)
{
    static const char security[] = HTTP_SECURITY_HEADERS;

    req_write(r, security, sizeof(security) - 1);
    reply_header(r, "Content-Security-Policy: %s\r\n", r->csp ? r->csp : HTTP_CSP_API);
    if (!r->cors_origin)
        return;
    /* API.md: "*" never allows credentials; a named origin does, and the
     * answer then depends on the Origin (Vary). */
    reply_header(r, "Access-Control-Allow-Origin: %s\r\n", r->cors_origin);
    if (r->cors_credentials)
        reply_header(r, "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
}

/* Status line and the headers every answer carries. */
static void reply_head(struct req *r, int status, const char *content_type)
{
    reply_header(r, "Status: %d %s\r\n", status, http_reason(status));
    if (content_type)
        reply_header(r, "Content-Type: %s\r\n", content_type);
    reply_common_headers(r);
    if (r->body_unread)
        reply_header(r, "Connection: close\r\n");
    if (r->capture)
        return; /* the hub counts what it writes */
    r->status = status;
    metrics_response(status);
}

void reply_raw(struct req *r, int status, const char *content_type, const char *data, size_t len)
{
    reply_head(r, status, content_type);
    reply_header(r, "Cache-Control: no-store\r\nContent-Length: %zu\r\n", len);
    if (r->retry_after > 0)
        reply_header(r, "Retry-After: %d\r\n", r->retry_after);
    if (r->allow[0])
        reply_header(r, "Allow: %s\r\n", r->allow);
    req_write(r, "\r\n", 2);
    if (len && !r->head)
        req_write(r, data, len);
}

void reply_json(struct req *r, int status, const json_t *body)
{
    size_t len;
    char *text = json_dump(body, 0, &len);
    reply_raw(r, status, "application/json", text, len);
    free(text);
}

void reply_error(struct req *r, int code)
{
    json_t *body = json_obj();
    json_t *e = json_obj();
    const char *msg = (r->err.code == code && r->err.msg[0]) ? r->err.msg : err_default_msg(code);

    json_put(e, "code", json_string(err_api_code(code)));
    json_put(e, "message", json_string(msg));
    json_put(body, "error", e);
    if ((code == LARK_EDRAINING || code == LARK_EUNAVAIL || code == LARK_ESTORAGE) &&
        r->retry_after <= 0)
        r->retry_after = 1;
    reply_json(r, err_http_status(code), body);
    json_decref(body);
}

/* The headers of a media answer, written whole: a path, a presigned URL
 * or a Content-Disposition may pass HTTP_HEADER_MAX, and a header that
 * went missing (the disposition) would change how a browser treats the
 * bytes. */
static void reply_media_head(struct req *r, int status, const char *type, const struct buf *more)
{
    reply_head(r, status, type);
    if (more->len)
        req_write(r, more->data, more->len);
    req_write(r, "\r\n", 2);
}

void reply_sendfile(struct req *r, const char *path, const char *type, const char *sha256,
                    const char *disposition)
{
    struct buf h;

    buf_init(&h, 16 * HTTP_HEADER_MAX);
    /* lighttpd sends the file itself (mod_fastcgi "x-sendfile"), and
     * answers Range (206) and If-None-Match (304) from these headers */
    r->csp = HTTP_CSP_MEDIA; /* nosniff and the CSP: reply_common_headers */
    buf_printf(&h,
               "Cache-Control: private, max-age=86400\r\n"
               "ETag: \"%s\"\r\nContent-Disposition: %s\r\nX-Sendfile: %s\r\n",
               sha256, disposition, path);
    reply_media_head(r, 200, type, &h);
    buf_release(&h);
}

void reply_redirect(struct req *r, const char *url)
{
    struct buf h;

    buf_init(&h, 16 * HTTP_HEADER_MAX);
    /* the URL expires: nobody may keep the redirect */
    buf_printf(&h, "Cache-Control: no-store\r\nContent-Length: 0\r\nLocation: %s\r\n", url);
    reply_media_head(r, 302, NULL, &h);
    buf_release(&h);
}

int reply_start_stream(struct req *r, const char *content_type, const char *extra, const char *body,
                       size_t len)
{
    reply_head(r, 200, content_type);
    req_write(r, extra, strlen(extra));
    req_write(r, "\r\n", 2);
    if (len)
        req_write(r, body, len);
    if (!r->fcgx)
        return fflush(stdout) == 0 ? 0 : -1;
    return FCGX_FFlush(r->fcgx->out) == 0 && !FCGX_GetError(r->fcgx->out) ? 0 : -1;
}

void reply_render_stream(struct req *r, const char *content_type, const char *extra,
                         const char *body, size_t len, struct buf *ok, struct buf *unavail)
{
    int retry_after = r->retry_after;

    r->capture = ok;
    reply_head(r, 200, content_type);
    req_write(r, extra, strlen(extra));
    req_write(r, "\r\n", 2);
    if (len)
        req_write(r, body, len);
    r->capture = unavail;
    lark_err_set(&r->err, LARK_EUNAVAIL, "the database is unavailable");
    reply_error(r, LARK_EUNAVAIL);
    r->capture = NULL;
    r->retry_after = retry_after;
    memset(&r->err, 0, sizeof(r->err));
}

int req_query_u64(struct req *r, const char *name, uint64_t max, uint64_t *out, int *present)
{
    const char *v = query_get(&r->query, name);
    *present = v != NULL;
    if (v && parse_u64(v, max, out) != 0)
        return lark_err_set(&r->err, LARK_EINVAL, "'%s' must be an integer from 0 to %llu", name,
                            (unsigned long long)max);
    return 0;
}

void req_detach(struct req *r, int *fd, uint16_t *request_id)
{
    FCGX_Request *f = r->fcgx;
    *fd = f->ipcFd;
    *request_id = (uint16_t)f->requestId;
    /* Free the streams and params (close = 0 keeps the socket), then make
     * libfcgi forget the socket so the next accept does not close it. */
    FCGX_Free(f, 0);
    f->ipcFd = -1;
    r->detached = 1;
}
