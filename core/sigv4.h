/*
 * sigv4.h - AWS Signature Version 4, for S3-compatible storage.
 *
 * Why here and not only in libcurl: libcurl signs the requests larkd makes
 * itself (CURLOPT_AWS_SIGV4, core/blob_s3.c), but a presigned URL - one
 * that a client uses without any key, to PUT an upload or GET a download
 * straight from the bucket (API.md "Media") - is a signature over a request
 * that someone else will make, in the query string ("query-string
 * authentication"). Nothing in libcurl builds those, so this module does,
 * with OpenSSL's SHA-256 and HMAC, step by step as AWS documents it:
 *
 *   canonical request = method \n canonical URI \n canonical query \n
 *                       canonical headers \n signed headers \n payload hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n date \n scope \n hex(sha256(canonical))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, day), region), service),
 *                            "aws4_request")
 *   signature         = hex(HMAC(signing key, string to sign))
 *
 * S3's flavour: the path is URI-encoded once (not twice as other services
 * want) and not normalized. Every byte but RFC 3986's unreserved ones is
 * %XX-encoded (uppercase hex); '/' is kept in the path and encoded in the
 * query. Tested against AWS's published examples (tests/unit/test_sigv4.c).
 *
 * Strings are borrowed; results are written into caller-owned buffers or
 * returned for the caller to free. Thread-safe: no state.
 */
#ifndef LARK_SIGV4_H
#define LARK_SIGV4_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* "YYYYMMDDTHHMMSSZ" plus NUL. */
#define SIGV4_DATE_LEN 17
/* A signature: 64 hex digits plus NUL. */
#define SIGV4_SIG_LEN 65
/* The payload hash of a request whose body is not signed (presigned URLs). */
#define SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"

struct sigv4_creds {
    const char *access_key;
    const char *secret_key;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
};

/* A query parameter or a header, unencoded. */
struct sigv4_kv {
    const char *name;
    const char *value;
};

/* The request to sign. */
struct sigv4_req {
    const char *method;           /* "GET", "PUT", ... */
    const char *host;             /* the Host header: host, or host:port */
    const char *path;             /* unencoded, from '/' */
    const struct sigv4_kv *query; /* unencoded parameters, any order */
    size_t nquery;
    const struct sigv4_kv *headers; /* headers to sign besides host, any case, distinct */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or SIGV4_UNSIGNED */
};

/* Unix seconds as "YYYYMMDDTHHMMSSZ" (UTC). */
void sigv4_date(int64_t unix_s, char out[SIGV4_DATE_LEN]);

/* Append s (len bytes) URI-encoded as AWS wants; keep_slash for paths.
 * 0 or LARK_ETOOLARGE (out's max). */
int sigv4_encode(struct buf *out, const char *s, size_t len, int keep_slash);

/*
 * The canonical request into canonical, and the signed-header list
 * ("host;x-amz-date") into signed_headers (may be NULL). Both buffers are
 * appended to. 0 or LARK_ETOOLARGE.
 */
int sigv4_canonical(const struct sigv4_req *r, struct buf *canonical, struct buf *signed_headers);

/* The signature of a canonical request made at amz_date. */
void sigv4_sign(const struct sigv4_creds *c, const char *amz_date, const char *canonical,
                char sig[SIGV4_SIG_LEN]);

/*
 * A presigned URL: base ("http(s)://host[:port]", no path) + the encoded
 * path + the canonical query with X-Amz-Algorithm, X-Amz-Credential,
 * X-Amz-Date (now_s), X-Amz-Expires (expires_s) and X-Amz-SignedHeaders,
 * then X-Amz-Signature. r->payload_hash is ignored (SIGV4_UNSIGNED). The
 * caller frees the result; NULL if the request has more than a few dozen
 * parameters and headers or kilobytes of them (lark's never do).
 */
char *sigv4_presign(const struct sigv4_creds *c, const char *base, const struct sigv4_req *r,
                    int64_t now_s, int expires_s);

#endif
