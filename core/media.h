/*
 * media.h - what a media item is (API.md "Media (attachments)"): its name,
 * its content type, whether browsers may show it inline, the
 * Content-Disposition it is served with, the declaration of a two-step
 * upload and the media list of a message.
 *
 * Why a module of its own: every one of these reads input a client wrote
 * (a query string, a header, a JSON body) and most of it ends up in a
 * response header that lighttpd, a browser or S3 trusts. So the rules are
 * strict, in one place, pure (no I/O, no allocation but what is stated),
 * unit-tested (tests/unit/test_media.c) and fuzzed (tests/fuzz/fuzz_media.c):
 *   - a name is a file name a person gave: 1-LIMIT_MEDIA_NAME_MAX bytes of
 *     valid UTF-8, without control characters (C0, DEL, C1), path
 *     separators or the bidirectional controls that make "gpj.exe" look
 *     like "exe.jpg" (U+200E/F, U+202A-E, U+2066-9), and not "." or "..";
 *   - a content type is RFC 9110's media-type (tokens, quoted strings of
 *     printable ASCII: no tab, nothing past 0x7E), lowercased where case
 *     does not matter, at most LIMIT_MEDIA_TYPE_MAX bytes;
 *   - inline only for raster images, audio and video; SVG, HTML and every
 *     other type are attachments (API.md), so that an upload can never run
 *     script on lark's origin.
 *
 * Thread-safe: no state.
 */
#ifndef LARK_MEDIA_H
#define LARK_MEDIA_H

#include "core/limits.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct lark_err;

/* A SHA-256 as 64 lowercase hex digits, plus NUL. */
#define MEDIA_SHA256_HEX 65

/* The type of a body sent without one (API.md). */
#define MEDIA_DEFAULT_TYPE "application/octet-stream"
/* The name of an upload that did not give one (docs/API.md, Choice). */
#define MEDIA_DEFAULT_NAME "file"

/* 1 if name (len bytes, no NUL needed) is an acceptable media name. */
int media_name_valid(const char *name, size_t len);

/*
 * The normal form of a Content-Type value into out (LIMIT_MEDIA_TYPE_MAX
 * + 1 bytes): type and subtype lowercased, each parameter as "; name=value"
 * with the name lowercased and the value as given (a token or a quoted
 * string), empty parameters dropped. NULL or blank: MEDIA_DEFAULT_TYPE.
 * 0, or LARK_EINVAL (out is then "").
 */
int media_type_normalize(const char *in, char out[LIMIT_MEDIA_TYPE_MAX + 1]);

/* 1 if a normalized type is a raster image (png, jpeg, gif, webp, avif,
 * bmp, apng): shown inline, and announced as a "Photo" by push. */
int media_is_image(const char *type);

/* 1 if a normalized type is shown inline (API.md: raster images, audio,
 * video - never SVG or HTML). */
int media_inline(const char *type);

/* The longest Content-Disposition value media_disposition makes: a name
 * of LIMIT_MEDIA_NAME_MAX bytes once quoted and once %-encoded (3 bytes
 * each), and the words around them. */
#define MEDIA_DISPOSITION_MAX (64 + 4 * LIMIT_MEDIA_NAME_MAX)

/*
 * Append the Content-Disposition value for a media item to out: "inline"
 * or "attachment" (media_inline), then filename="..." (an ASCII fallback:
 * '"', '\\', '%' and non-ASCII bytes as '_') and filename*=UTF-8''...
 * (RFC 8187). name must be valid (media_name_valid). 0 or LARK_ETOOLARGE
 * (out's max).
 */
int media_disposition(struct buf *out, const char *type, const char *name);

/* 1 if s (len bytes) is 64 hex digits, either case. */
int media_sha256_valid(const char *s, size_t len);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void media_hex(const unsigned char *in, size_t n, char *out);

/* The SHA-256 of n bytes, as lowercase hex. */
void media_sha256_of(const void *data, size_t n, char out[MEDIA_SHA256_HEX]);

/* 1 if the hex strings a and b are equal, compared in constant time
 * (secrets, STYLE.md); both of MEDIA_SHA256_HEX - 1 characters. */
int media_hex_equal(const char *a, const char *b);

/* What POST /v1/media/uploads declares (API.md): strings borrowed from
 * the JSON body or static. */
struct media_decl {
    uint64_t size;                       /* bytes */
    char sha256[MEDIA_SHA256_HEX];       /* lowercase */
    char type[LIMIT_MEDIA_TYPE_MAX + 1]; /* normalized */
    const char *name;                    /* valid, or MEDIA_DEFAULT_NAME */
};

/*
 * Read a two-step upload's declaration {"content_type", "size", "name",
 * "sha256"} from body: size and sha256 required, content_type and name
 * optional. Errors: LARK_EMISSING, LARK_ETYPE, LARK_EFIELD (the message
 * names the field), LARK_EMEDIALARGE (size over max_size).
 */
int media_decl_parse(json_t *body, uint64_t max_size, struct media_decl *out, struct lark_err *err);

/*
 * The "media" field of a send (API.md): absent (*n = 0), or 1 to
 * LIMIT_MEDIA_PER_MESSAGE distinct media ids, borrowed from fields into
 * ids in their order. Errors: LARK_ETYPE (not an array of strings),
 * LARK_EFIELD (empty, or an id twice), LARK_ETOOMANY, LARK_EBADMEDIA (not
 * a media id at all).
 */
int media_list_parse(json_t *fields, const char *ids[LIMIT_MEDIA_PER_MESSAGE], size_t *n,
                     struct lark_err *err);

#endif
