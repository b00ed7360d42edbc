/*
 * media.c - names, content types, dispositions and declarations of media
 * (media.h).
 */
#include "core/media.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/json.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

/* ---- names ------------------------------------------------------------- */

/* The code point of the UTF-8 sequence at s (at most left bytes) into *cp
 * and its length, or 0 if it is not shortest-form UTF-8 of a scalar value
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t left, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t n;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        c &= 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        c &= 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

/* Characters a file name may not hold: controls, path separators, and the
 * bidirectional controls that reorder how a name is displayed. */
static int name_refuses(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == '/' || cp == '\\' ||
           cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

int media_name_valid(const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t i = 0;

    if (len == 0 || len > LIMIT_MEDIA_NAME_MAX)
        return 0;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_next(s + i, len - i, &cp);
        if (n == 0 || name_refuses(cp))
            return 0;
        i += n;
    }
    return 1;
}

/* ---- content types ------------------------------------------------------- */

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* A writer into a fixed buffer that remembers an overflow. */
struct out {
    char *p;
    size_t len, cap;
    int full;
};

static void out_c(struct out *o, unsigned char c)
{
    if (o->len + 1 >= o->cap) {
        o->full = 1;
        return;
    }
    o->p[o->len++] = (char)c;
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* A token at *s copied (lowercased when lc) to o; its length (0: none). */
static size_t copy_token(const char **s, struct out *o, int lc)
{
    size_t n = 0;
    while (is_tchar((unsigned char)**s)) {
        out_c(o, lc ? lower((unsigned char)**s) : (unsigned char)**s);
        (*s)++;
        n++;
    }
    return n;
}

/* A quoted-string at *s copied to o; 0 or -1. Printable ASCII and quoted
 * pairs only: RFC 9110 also allows tabs and bytes past 0x7F, which the
 * value does not need and a response header is better without. */
static int copy_quoted(const char **s, struct out *o)
{
    const char *p = *s + 1;
    out_c(o, '"');
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c == '\\') {
            unsigned char q = (unsigned char)p[1];
            if (!(q >= 0x20 && q < 0x7F))
                return -1;
            out_c(o, c);
            out_c(o, q);
            p += 2;
            continue;
        }
        if (!(c >= 0x20 && c < 0x7F))
            return -1;
        out_c(o, c);
        p++;
    }
    out_c(o, '"');
    *s = p + 1;
    return 0;
}

/* The parameters after the subtype: *( OWS ";" OWS [ name "=" value ] ). */
static int copy_params(const char *s, struct out *o)
{
    for (;;) {
        s = skip_ows(s);
        if (*s == '\0')
            return 0;
        if (*s != ';')
            return -1;
        s = skip_ows(s + 1);
        if (*s == ';' || *s == '\0')
            continue; /* an empty parameter */
        out_c(o, ';');
        out_c(o, ' ');
        if (copy_token(&s, o, 1) == 0 || *s != '=')
            return -1;
        out_c(o, '=');
        s++;
        if (*s == '"') {
            if (copy_quoted(&s, o))
                return -1;
        } else if (copy_token(&s, o, 0) == 0) {
            return -1;
        }
    }
}

int media_type_normalize(const char *in, char out[LIMIT_MEDIA_TYPE_MAX + 1])
{
    struct out o = {out, 0, LIMIT_MEDIA_TYPE_MAX + 1, 0};
    const char *s = in ? skip_ows(in) : "";

    out[0] = '\0';
    if (*s == '\0') {
        memcpy(out, MEDIA_DEFAULT_TYPE, sizeof(MEDIA_DEFAULT_TYPE));
        return 0;
    }
    if (copy_token(&s, &o, 1) == 0 || *s != '/')
        goto bad;
    out_c(&o, '/');
    s++;
    if (copy_token(&s, &o, 1) == 0 || copy_params(s, &o) || o.full)
        goto bad;
    out[o.len] = '\0';
    return 0;
bad:
    out[0] = '\0';
    return LARK_EINVAL;
}

/* 1 if type's essence (before any ';') is exactly essence. */
static int essence_is(const char *type, const char *essence)
{
    size_t n = strlen(essence);
    return strncmp(type, essence, n) == 0 && (type[n] == '\0' || type[n] == ';');
}

int media_is_image(const char *type)
{
    static const char *const raster[] = {"image/png",  "image/jpeg", "image/gif", "image/webp",
                                         "image/avif", "image/bmp",  "image/apng"};
    for (size_t i = 0; i < sizeof(raster) / sizeof(raster[0]); i++)
        if (essence_is(type, raster[i]))
            return 1;
    return 0;
}

int media_inline(const char *type)
{
    /* audio/ and video/ are played by the browser's own elements; none of
     * them runs script. Images only when raster: an SVG is a document. */
    return media_is_image(type) || strncmp(type, "audio/", 6) == 0 ||
           strncmp(type, "video/", 6) == 0;
}

/* ---- Content-Disposition ----------------------------------------------------- */

/* RFC 8187 attr-char. */
static int is_attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$&+-.^_`|~", c) != NULL);
}

int media_disposition(struct buf *out, const char *type, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)name;
    int rc = buf_puts(out, media_inline(type) ? "inline; filename=\"" : "attachment; filename=\"");

    for (size_t i = 0; rc == 0 && s[i]; i++) {
        unsigned char c = s[i];
        /* the quoted fallback: printable ASCII only, and nothing that a
         * parser could read as an escape or a percent-encoding */
        rc = buf_putc(out,
                      (c >= 0x20 && c < 0x7F && c != '"' && c != '\\' && c != '%') ? (char)c : '_');
    }
    if (rc == 0)
        rc = buf_puts(out, "\"; filename*=UTF-8''");
    for (size_t i = 0; rc == 0 && s[i]; i++) {
        if (is_attr_char(s[i])) {
            rc = buf_putc(out, (char)s[i]);
        } else {
            char esc[3] = {'%', hex[s[i] >> 4], hex[s[i] & 15]};
            rc = buf_append(out, esc, 3);
        }
    }
    return rc;
}

/* ---- hashes ----------------------------------------------------------------- */

int media_sha256_valid(const char *s, size_t len)
{
    if (len != MEDIA_SHA256_HEX - 1)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = lower((unsigned char)s[i]);
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

void media_hex(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void media_sha256_of(const void *data, size_t n, char out[MEDIA_SHA256_HEX])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data, n, digest, &len, EVP_sha256(), NULL);
    media_hex(digest, len, out);
}

int media_hex_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == MEDIA_SHA256_HEX - 1 && lb == la && CRYPTO_memcmp(a, b, la) == 0;
}

/* ---- what clients send ---------------------------------------------------------- */

int media_decl_parse(json_t *body, uint64_t max_size, struct media_decl *out, struct lark_err *err)
{
    const char *sha = NULL, *type = NULL, *name = NULL;
    size_t shalen = 0, namelen = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = json_get_uint(body, "size", JSON_FIELD_REQUIRED, INT64_MAX, &out->size, err)) ||
        (rc = json_get_str(body, "sha256", JSON_FIELD_REQUIRED, &sha, &shalen, err)) ||
        (rc = json_get_str(body, "content_type", 0, &type, NULL, err)) ||
        (rc = json_get_str(body, "name", 0, &name, &namelen, err)))
        return rc;
    if (out->size > max_size)
        return lark_err_set(err, LARK_EMEDIALARGE, "'size' is over the limit of %llu bytes",
                            (unsigned long long)max_size);
    if (!media_sha256_valid(sha, shalen))
        return lark_err_set(err, LARK_EFIELD, "'sha256' must be 64 hex digits");
    for (size_t i = 0; i < shalen; i++)
        out->sha256[i] = (char)lower((unsigned char)sha[i]);
    out->sha256[shalen] = '\0';
    if (media_type_normalize(type, out->type) != 0)
        return lark_err_set(err, LARK_EFIELD, "'content_type' must be a media type (type/subtype)");
    if (name && !media_name_valid(name, namelen))
        return lark_err_set(err, LARK_EFIELD,
                            "'name' must be 1-%d bytes of UTF-8 without control characters, "
                            "'/' or '\\\\'",
                            LIMIT_MEDIA_NAME_MAX);
    out->name = name ? name : MEDIA_DEFAULT_NAME;
    return 0;
}

int media_list_parse(json_t *fields, const char *ids[LIMIT_MEDIA_PER_MESSAGE], size_t *n,
                     struct lark_err *err)
{
    json_t *list = NULL, *v;
    size_t i;
    int rc = json_get_array(fields, "media", 0, &list, err);

    *n = 0;
    if (rc || !list)
        return rc;
    if (json_array_size(list) == 0)
        return lark_err_set(err, LARK_EFIELD, "'media' must list 1-%d media ids",
                            LIMIT_MEDIA_PER_MESSAGE);
    if (json_array_size(list) > LIMIT_MEDIA_PER_MESSAGE)
        return lark_err_set(err, LARK_ETOOMANY, "'media' lists more than %d media",
                            LIMIT_MEDIA_PER_MESSAGE);
    json_array_foreach (list, i, v) {
        const char *id = json_string_value(v);
        if (!id)
            return lark_err_set(err, LARK_ETYPE, "'media' must be an array of media ids");
        if (!ids_valid_media(id, json_string_length(v)))
            return lark_err_set(err, LARK_EBADMEDIA, "'media' holds something not a media id");
        for (size_t j = 0; j < i; j++)
            if (strcmp(ids[j], id) == 0)
                return lark_err_set(err, LARK_EFIELD, "'media' lists %s twice", id);
        ids[i] = id;
    }
    *n = i;
    return 0;
}
