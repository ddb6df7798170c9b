/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP server on libmicrohttpd: listen addresses, a routing table, body limits, self metrics. */
#ifndef PROMLET_EXPORTER_HTTP_H
#define PROMLET_EXPORTER_HTTP_H

#include "expose.h"
#include "sbuf.h"

#include <stdbool.h>
#include <stddef.h>

struct http_server;
struct http_req; /* opaque; read through the accessors below */

/* What a handler fills in. body starts empty; status defaults to 200, content_type to
 * text/plain; version=0.0.4; charset=utf-8 ("" sends no Content-Type). */
struct http_resp {
    int status;
    const char *content_type; /* static string */
    struct sbuf body;
    bool gzip_ok; /* compress when the client accepts gzip */
    /* Compress as Prometheus's API does (httputil.CompressionHandler): the first
     * Accept-Encoding token that is exactly "gzip" or "deflate" (zlib) wins, and the
     * Content-Encoding header is sent even with an empty body. Overrides gzip_ok. */
    bool api_compress;
    char *headers[8]; /* "Name: value" strings, owned (freed by the server) */
    size_t nheaders;
};

/* Called on an MHD thread once the whole body has arrived; must be thread-safe. */
typedef void http_handler_fn(void *arg, const struct http_req *req, struct http_resp *resp);

/* Methods are a bit set. */
#define HTTP_GET 1u
#define HTTP_POST 2u
#define HTTP_PUT 4u
#define HTTP_DELETE 8u
/* A route with only HTTP_OPTIONS never turns another method's 404 into a 405 (as
 * httprouter's catch-all OPTIONS route in Prometheus). */
#define HTTP_OPTIONS 16u
/* With HTTP_GET: do not answer HEAD (405), as routes registered with Prometheus's router. */
#define HTTP_NO_HEAD 32u

struct http_route {
    const char *path; /* exact path, or a prefix when prefix is set */
    bool prefix;
    unsigned methods; /* HTTP_GET also answers HEAD */
    const char *name; /* the handler label of promlet_http_requests_total */
    http_handler_fn *fn;
    void *arg;
    size_t max_body; /* 0: the server's default limit */
};

struct webcfg;

struct http_opts {
    struct webcfg *web; /* TLS, basic auth, headers; NULL for plain HTTP (borrowed) */
    size_t max_request_bytes;
    unsigned threads;
    unsigned connection_limit;
    unsigned connection_timeout_s;
};

/* Returns new server with no listeners yet, or NULL on OOM. */
struct http_server *http_new(const struct http_opts *o);
/* Adds a route (copies the struct; strings must be static). Not after http_listen. */
int http_route(struct http_server *s, const struct http_route *r);
/* Decides on the HTTP thread, before the handler runs, whether this request may be slow
 * enough to offload (handing over costs two thread switches). arg is the route's arg. */
typedef bool http_offload_fn(void *arg, const struct http_req *req);
/* Like http_route, but when want is NULL or returns true the handler runs on one of a few
 * worker threads while the connection is suspended, so a slow handler (a long query) holds
 * none of the server's threads and none of the other connections they serve; requests
 * beyond the workers wait in order. http_free waits for running handlers. */
int http_route_offload(struct http_server *s, const struct http_route *r, http_offload_fn *want);
/* Binds every address ("host:port", ":port", "[v6]:port"; port 0 picks a free one) and
 * starts serving. On failure nothing listens and err says which address failed.
 * Returns 0 or -errno. */
int http_listen(struct http_server *s, const char *const *addrs, size_t n, struct perr *err);
/* The bound "host:port" of listener i (NULL past the end); static until http_free. */
const char *http_bound(const struct http_server *s, size_t i);
/* Stops listening and frees; accepts NULL. */
void http_free(struct http_server *s);
/* Adds promlet_http_requests_total and promlet_http_request_duration_seconds to out. */
int http_write_metrics(struct http_server *s, struct mset *out);

/* ---- request accessors (borrowed, valid during the handler) ---- */
const char *http_method(const struct http_req *r);
const char *http_path(const struct http_req *r);
/* The suffix of the path after the route's prefix. */
const char *http_subpath(const struct http_req *r);
const char *http_header(const struct http_req *r, const char *name);
/* A query-string or form argument (first value), NULL if absent. */
const char *http_arg(const struct http_req *r, const char *name);
/* Every value of a repeated argument (match[]), via callback. */
int http_args(const struct http_req *r, const char *name, int (*fn)(void *arg, const char *value),
              void *arg);
const char *http_body(const struct http_req *r, size_t *len);
bool http_accepts(const struct http_req *r, const char *media);

/* ---- response helpers ---- */
/* Sets status and a one-line text/plain body (a newline is appended). */
void http_error(struct http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a header (copied). Returns 0 or -ENOMEM/-E2BIG. */
int http_add_header(struct http_resp *resp, const char *name, const char *value);
/* Prometheus's httputil.SetCORS with its default --web.cors.origin '.*': when the request
 * has an Origin header, adds the Access-Control-* and Vary headers, allowing any origin.
 * Returns 0 or -ENOMEM/-E2BIG. */
int http_cors(const struct http_req *req, struct http_resp *resp);

#endif
