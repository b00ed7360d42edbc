/*
 * net.c - libcurl multi, HTTP/2, bounded answers (net.h).
 */
#include "push/net.h"

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct net {
    CURLM *multi;
    long timeout_ms;     /* push_timeout_ms */
    struct curl_blob ca; /* system bundle + push_ca_file, or data NULL */
    char *ca_data;       /* owned bytes behind ca */
    long connects;       /* connections opened */
};

/* LARK_PUSH_CA_FILE is an extra CA, not the only one: trust it on top of
 * the system bundle that libcurl would otherwise use. */
static int net_ca(struct net *n, const char *extra, struct lark_err *err)
{
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    const char *system = vi->cainfo ? vi->cainfo : "/etc/ssl/certs/ca-certificates.crt";
    struct buf b;
    int rc;

    buf_init(&b, NET_CA_MAX);
    if (buf_read_file(&b, system, err) != 0)
        log_warn("no system CA bundle at %s; trusting only %s", system, extra);
    rc = buf_putc(&b, '\n');
    if (rc == 0)
        rc = buf_read_file(&b, extra, err);
    if (rc) {
        buf_release(&b);
        return LARK_EINVAL;
    }
    n->ca.len = b.len;
    n->ca_data = buf_detach(&b, NULL);
    n->ca.data = n->ca_data;
    n->ca.flags = CURL_BLOB_NOCOPY;
    return 0;
}

int net_new(const struct config *cfg, struct net **out, struct lark_err *err)
{
    struct net *n = xcalloc(1, sizeof(*n));

    *out = NULL;
    n->timeout_ms = cfg->push_timeout_ms;
    if (*cfg->push_ca_file && net_ca(n, cfg->push_ca_file, err) != 0) {
        net_free(n);
        return LARK_EINVAL;
    }
    n->multi = curl_multi_init();
    if (!n->multi) {
        net_free(n);
        return lark_err_set(err, LARK_EINTERNAL, "curl_multi_init failed");
    }
    curl_multi_setopt(n->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(n->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)NET_HOST_CONNECTIONS);
    curl_multi_setopt(n->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)NET_MAX_STREAMS);
    *out = n;
    return 0;
}

void net_free(struct net *n)
{
    if (!n)
        return;
    if (n->multi) {
        /* the owners abort their transfers first; anything left is theirs */
        curl_multi_cleanup(n->multi);
    }
    free(n->ca_data);
    free(n);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct net_xfer *x = arg;
    size_t len = size * nmemb;
    size_t room = NET_BODY_MAX - x->body.len;

    buf_append(&x->body, data, len < room ? len : room);
    return len; /* the rest is dropped, not an error */
}

/* Copy a header's value (trimmed) if line is "name: value". */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), v, e;

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    for (v = nl + 1; v < len && (line[v] == ' ' || line[v] == '\t'); v++)
        ;
    for (e = len; e > v && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' ');)
        e--;
    if (e - v >= cap)
        e = v + cap - 1;
    memcpy(out, line + v, e - v);
    out[e - v] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct net_xfer *x = arg;
    size_t len = size * nmemb;

    header_value(data, len, "retry-after", x->retry_after, sizeof(x->retry_after));
    header_value(data, len, "apns-id", x->apns_id, sizeof(x->apns_id));
    return len;
}

int net_start(struct net *n, struct net_xfer *x, const char *url)
{
    CURL *e = curl_easy_init();

    if (!e)
        return LARK_EINTERNAL;
    buf_init(&x->body, NET_BODY_MAX);
    x->retry_after[0] = x->apns_id[0] = '\0';
    x->status = 0;
    x->result = CURLE_OK;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, n->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     n->timeout_ms < NET_CONNECT_TIMEOUT_MS ? n->timeout_ms
                                                            : (long)NET_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->payload ? x->payload : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, x->payload ? (long)strlen(x->payload) : 0L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    if (n->ca.data)
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &n->ca);
    if (curl_multi_add_handle(n->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return LARK_EINTERNAL;
    }
    x->easy = e;
    x->started_us = time_mono_ns() / 1000;
    return 0;
}

static void net_release(struct net *n, struct net_xfer *x)
{
    if (x->easy) {
        curl_multi_remove_handle(n->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
}

void net_abort(struct net *n, struct net_xfer *x)
{
    net_release(n, x);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    free(x->payload);
    x->payload = NULL;
    buf_release(&x->body);
}

int net_poll(struct net *n, struct curl_waitfd *fds, unsigned nfds, int timeout_ms)
{
    int running = 0;

    curl_multi_perform(n->multi, &running);
    curl_multi_poll(n->multi, fds, nfds, timeout_ms, NULL);
    curl_multi_perform(n->multi, &running);
    return running;
}

struct net_xfer *net_next_done(struct net *n)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(n->multi, &left))) {
        struct net_xfer *x = NULL;
        long conns = 0;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        x->result = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &x->status);
        curl_easy_getinfo(m->easy_handle, CURLINFO_HTTP_VERSION, &x->http_version);
        curl_easy_getinfo(m->easy_handle, CURLINFO_NUM_CONNECTS, &conns);
        n->connects += conns;
        x->latency_us = time_mono_ns() / 1000 - x->started_us;
        net_release(n, x);
        return x;
    }
    return NULL;
}

long net_timeout_ms(struct net *n)
{
    long t = -1;
    curl_multi_timeout(n->multi, &t);
    return t;
}

long net_connects(const struct net *n)
{
    return n->connects;
}
