/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP server: one libmicrohttpd daemon per listen address sharing one routing table. */
#include "http.h"
#include "defaults.h"
#include "log.h"
#include "webcfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* MHD >= 0.9.71 returns enum MHD_Result; older ones int. Debian 12 has 0.9.75. */
#if MHD_VERSION >= 0x00097002
#define MHD_RET enum MHD_Result
#else
#define MHD_RET int
#endif

#define MAX_ROUTES 64
#define MAX_LISTEN 16
/* Response codes tracked per handler for promlet_http_requests_total. */
static const int codes[] = {200, 202, 204, 400, 401, 404, 405, 406, 413, 415, 422, 500, 503};
#define NCODES (sizeof(codes) / sizeof(codes[0]))
/* client_golang's default buckets. */
static const double buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct route_stats {
    uint64_t count[NCODES + 1]; /* last slot: any other code */
    uint64_t hist[NBUCKETS];
    uint64_t hist_count;
    double hist_sum;
};

struct http_server {
    struct http_opts opts;
    size_t inflight;     /* bytes of request bodies buffered now, all connections */
    size_t inflight_max; /* beyond it new bodies get 503 */
    struct http_route routes[MAX_ROUTES];
    bool offload[MAX_ROUTES]; /* run on a worker thread with the connection suspended */
    http_offload_fn *offload_if[MAX_ROUTES]; /* NULL: always */
    size_t nroutes;
    /* Offloaded handlers: a FIFO of suspended requests served by up to
     * DEF_HTTP_OFFLOAD_THREADS worker threads, started on demand and kept. */
    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_cond; /* a job finished */
    pthread_cond_t work_cond; /* a job was queued, or stopping */
    struct http_req *qhead, *qtail;
    size_t jobs; /* queued or running */
    size_t idle;
    bool stopping;
    pthread_t workers[DEF_HTTP_OFFLOAD_THREADS];
    size_t nworkers;
    struct route_stats stats[MAX_ROUTES + 1]; /* last: unrouted (404) */
    pthread_mutex_t stats_lock;
    struct MHD_Daemon *daemons[MAX_LISTEN];
    char bound[MAX_LISTEN][80];
    size_t ndaemons;
};

struct http_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const struct http_route *route;
    int route_idx;
    struct sbuf body;
    size_t limit;
    bool buffers; /* the route reads a body (POST/PUT); other bodies are discarded */
    bool too_large;
    bool overloaded; /* the server-wide body budget was exhausted */
    bool unauthorized;
    size_t charged; /* bytes counted in inflight for this request */
    char **keep;    /* decoded form values handed out by http_arg */
    size_t nkeep;
    struct timespec start;
    /* Offloaded routes: a worker fills jresp, then sets JOB_DONE and resumes. */
    int job_state;
    struct http_resp jresp;
    struct http_req *qnext;
};
enum { JOB_NONE, JOB_RUNNING, JOB_DONE };

/* ---- server setup ------------------------------------------------------------------------------
 */

struct http_server *http_new(const struct http_opts *o) {
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->opts = *o;
    if (!s->opts.max_request_bytes) s->opts.max_request_bytes = DEF_MAX_REQUEST_BYTES;
    if (!s->opts.threads) s->opts.threads = DEF_HTTP_THREADS;
    if (!s->opts.connection_limit) s->opts.connection_limit = DEF_HTTP_CONNECTION_LIMIT;
    if (!s->opts.connection_timeout_s) s->opts.connection_timeout_s = DEF_HTTP_CONNECTION_TIMEOUT_S;
    /* Bodies buffered at once across connections: a few full-size requests, so slow
     * clients trickling large bodies cannot hold memory without bound. */
    s->inflight_max = 4 * s->opts.max_request_bytes;
    if (s->inflight_max < DEF_HTTP_INFLIGHT_MIN) s->inflight_max = DEF_HTTP_INFLIGHT_MIN;
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_mutex_init(&s->jobs_lock, NULL);
    pthread_cond_init(&s->jobs_cond, NULL);
    pthread_cond_init(&s->work_cond, NULL);
    return s;
}

int http_route(struct http_server *s, const struct http_route *r) {
    if (s->nroutes == MAX_ROUTES || s->ndaemons) return -E2BIG;
    s->offload[s->nroutes] = false;
    s->offload_if[s->nroutes] = NULL;
    s->routes[s->nroutes++] = *r;
    return 0;
}

int http_route_offload(struct http_server *s, const struct http_route *r, http_offload_fn *want) {
    int rc = http_route(s, r);
    if (!rc) {
        s->offload[s->nroutes - 1] = true;
        s->offload_if[s->nroutes - 1] = want;
    }
    return rc;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    LOG_DEBUG("http: %s", msg);
}

/* Splits "host:port" / ":port" / "[v6]:port". */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen) {
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':') return -EINVAL;
        if ((size_t)(end - addr - 1) >= hostlen) return -EINVAL;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= hostlen) return -EINVAL;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    if (!colon[1] || strlen(colon + 1) >= portlen) return -EINVAL;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9') return -EINVAL;
    snprintf(port, portlen, "%s", colon + 1);
    return 0;
}

static int open_listener(const char *addr, char *bound, size_t boundlen, struct perr *err) {
    char host[256], port[16];
    if (split_addr(addr, host, sizeof(host), port, sizeof(port)))
        return perr_set(err, 0, 0, "invalid listen address \"%s\": want host:port", addr);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    /* ":port" listens on every address, IPv6 and IPv4 alike (as Go's net.Listen does). */
    if (!host[0]) hints.ai_family = AF_INET6;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai && !host[0]) {
        hints.ai_family = AF_INET;
        gai = getaddrinfo(NULL, port, &hints, &res);
    }
    if (gai) return perr_set(err, 0, 0, "listen address \"%s\": %s", addr, gai_strerror(gai));
    int fd = -1, e = 0;
    struct addrinfo *v4 = NULL;
    if (!host[0]) {
        /* A host without IPv6 (disabled in the kernel) still serves ":port" on IPv4. */
        struct addrinfo h4 = {.ai_family = AF_INET,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        if (getaddrinfo(NULL, port, &h4, &v4)) v4 = NULL;
        struct addrinfo *last = res;
        while (last->ai_next)
            last = last->ai_next;
        last->ai_next = v4;
    }
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6 && !host[0])
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    if (v4) {
        struct addrinfo *p = res;
        while (p->ai_next != v4)
            p = p->ai_next;
        p->ai_next = NULL;
        freeaddrinfo(v4);
    }
    freeaddrinfo(res);
    if (fd < 0) {
        perr_set(err, 0, 0, "listen tcp %s: %s", addr, strerror(e));
        return -(e ? e : EADDRNOTAVAIL);
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char h[INET6_ADDRSTRLEN] = "";
    int p = 0;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
        p = ntohs(a->sin6_port);
        snprintf(bound, boundlen, "[%s]:%d", h, p);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
        p = ntohs(a->sin_port);
        snprintf(bound, boundlen, "%s:%d", h, p);
    }
    return fd;
}

static MHD_RET on_request(void *cls, struct MHD_Connection *conn, const char *url,
                          const char *method, const char *version, const char *upload_data,
                          size_t *upload_data_size, void **con_cls);
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe);

int http_listen(struct http_server *s, const char *const *addrs, size_t n, struct perr *err) {
    if (n > MAX_LISTEN) return perr_set(err, 0, 0, "at most %d listen addresses", MAX_LISTEN);
    int fds[MAX_LISTEN];
    for (size_t i = 0; i < n; i++) {
        fds[i] = open_listener(addrs[i], s->bound[i], sizeof(s->bound[i]), err);
        if (fds[i] < 0) {
            int rc = fds[i];
            while (i--)
                close(fds[i]);
            return rc;
        }
    }
    const struct webcfg *w = s->opts.web;
    bool tls = w && w->cert_pem;
    for (size_t i = 0; i < n; i++) {
        /* The logger goes first so option errors reach it; TLS options are passed only
         * with TLS on (MHD complains about them otherwise). */
        struct MHD_OptionItem tls_opts[] = {
            {MHD_OPTION_HTTPS_MEM_CERT, 0, tls ? w->cert_pem : NULL},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, tls ? w->key_pem : NULL},
            {MHD_OPTION_HTTPS_PRIORITIES, 0, tls ? w->tls_priorities : NULL},
            {MHD_OPTION_END, 0, NULL}};
        struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
        struct MHD_Daemon *d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                MHD_ALLOW_SUSPEND_RESUME | (tls ? MHD_USE_TLS : 0),
            0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_ARRAY, tls ? tls_opts : no_opts, MHD_OPTION_LISTEN_SOCKET, fds[i],
            MHD_OPTION_THREAD_POOL_SIZE, s->opts.threads, MHD_OPTION_CONNECTION_LIMIT,
            s->opts.connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, s->opts.connection_timeout_s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, s, MHD_OPTION_END);
        if (!d) {
            for (size_t k = i; k < n; k++)
                close(fds[k]);
            for (size_t k = 0; k < s->ndaemons; k++)
                MHD_stop_daemon(s->daemons[k]);
            s->ndaemons = 0;
            return perr_set(err, 0, 0, "cannot start HTTP server on %s", addrs[i]);
        }
        s->daemons[s->ndaemons++] = d;
    }
    return 0;
}

const char *http_bound(const struct http_server *s, size_t i) {
    return i < s->ndaemons ? s->bound[i] : NULL;
}

void http_free(struct http_server *s) {
    if (!s) return;
    /* Quiesce every daemon first so no handler runs while the others stop. */
    for (size_t i = 0; i < s->ndaemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemons[i]);
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
    /* Offloaded handlers still running use their request and what their route reads (the
     * store): let them finish (their own timeouts bound them) before anything is freed. */
    pthread_mutex_lock(&s->jobs_lock);
    while (s->jobs)
        pthread_cond_wait(&s->jobs_cond, &s->jobs_lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->work_cond);
    pthread_mutex_unlock(&s->jobs_lock);
    for (size_t i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    for (size_t i = 0; i < s->ndaemons; i++)
        MHD_stop_daemon(s->daemons[i]);
    pthread_mutex_destroy(&s->stats_lock);
    pthread_mutex_destroy(&s->jobs_lock);
    pthread_cond_destroy(&s->jobs_cond);
    pthread_cond_destroy(&s->work_cond);
    free(s);
}

/* ---- request handling --------------------------------------------------------------------------
 */

static unsigned method_bit(const char *m) {
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD")) return HTTP_GET;
    if (!strcmp(m, "POST")) return HTTP_POST;
    if (!strcmp(m, "PUT")) return HTTP_PUT;
    if (!strcmp(m, "DELETE")) return HTTP_DELETE;
    if (!strcmp(m, "OPTIONS")) return HTTP_OPTIONS;
    return 0;
}

static bool path_match(const struct http_route *r, const char *path) {
    if (r->prefix) return strncmp(path, r->path, strlen(r->path)) == 0;
    return strcmp(path, r->path) == 0;
}

static void allow_header(const struct http_server *s, const char *path, char *out, size_t len) {
    unsigned m = 0;
    bool head = false; /* some GET route here also answers HEAD */
    for (size_t i = 0; i < s->nroutes; i++)
        if (path_match(&s->routes[i], path)) {
            m |= s->routes[i].methods;
            head |= (s->routes[i].methods & (HTTP_GET | HTTP_NO_HEAD)) == HTTP_GET;
        }
    out[0] = '\0';
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{HTTP_GET, "GET"}, {HTTP_GET, "HEAD"},      {HTTP_POST, "POST"},
                 {HTTP_PUT, "PUT"}, {HTTP_DELETE, "DELETE"}, {HTTP_OPTIONS, "OPTIONS"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((m & names[i].bit) && (i != 1 || head)) {
            if (out[0]) strncat(out, ", ", len - strlen(out) - 1);
            strncat(out, names[i].name, len - strlen(out) - 1);
        }
}

void http_error(struct http_resp *resp, int status, const char *fmt, ...) {
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    resp->gzip_ok = false;
    sbuf_reset(&resp->body);
    va_list ap;
    va_start(ap, fmt);
    sbuf_vprintf(&resp->body, fmt, ap);
    va_end(ap);
    /* One line: a reason taken from input must not smuggle extra lines in. */
    for (size_t i = 0; i < resp->body.len; i++)
        if (resp->body.data[i] == '\n' || resp->body.data[i] == '\r') resp->body.data[i] = ' ';
    sbuf_addc(&resp->body, '\n');
}

int http_cors(const struct http_req *req, struct http_resp *resp) {
    const char *origin = http_header(req, "Origin");
    if (!origin || !*origin) return 0;
    int rc = http_add_header(resp, "Access-Control-Allow-Headers",
                             "Accept, Authorization, Content-Type, Origin");
    if (!rc) rc = http_add_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    if (!rc) rc = http_add_header(resp, "Access-Control-Expose-Headers", "Date");
    if (!rc) rc = http_add_header(resp, "Vary", "Origin");
    if (!rc) rc = http_add_header(resp, "Access-Control-Allow-Origin", "*");
    return rc;
}

int http_add_header(struct http_resp *resp, const char *name, const char *value) {
    if (resp->nheaders == sizeof(resp->headers) / sizeof(resp->headers[0])) return -E2BIG;
    char *h;
    if (asprintf(&h, "%s: %s", name, value) < 0) return -ENOMEM;
    resp->headers[resp->nheaders++] = h;
    return 0;
}

static void record(struct http_server *s, int route_idx, int status, double secs) {
    struct route_stats *st = &s->stats[route_idx < 0 ? MAX_ROUTES : route_idx];
    size_t ci = NCODES;
    for (size_t i = 0; i < NCODES; i++)
        if (codes[i] == status) ci = i;
    pthread_mutex_lock(&s->stats_lock);
    st->count[ci]++;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (secs <= buckets[i]) st->hist[i]++;
    st->hist_count++;
    st->hist_sum += secs;
    pthread_mutex_unlock(&s->stats_lock);
}

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Prometheus's CompressionHandler choice: the first comma-separated Accept-Encoding
 * token that, trimmed, is exactly "gzip" or "deflate" (no q-values); NULL for none. */
static const char *api_encoding(const struct http_req *rq) {
    const char *h = http_header(rq, "Accept-Encoding");
    while (h && *h) {
        const char *e = strchr(h, ',');
        size_t n = e ? (size_t)(e - h) : strlen(h);
        const char *a = h, *b = h + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b - a == 4 && !memcmp(a, "gzip", 4)) return "gzip";
        if (b - a == 7 && !memcmp(a, "deflate", 7)) return "deflate";
        h = e ? e + 1 : NULL;
    }
    return NULL;
}

/* Compresses in into out in zlib format (HTTP's "deflate"). Returns 0 or -errno. */
static int zlib_deflate(const char *in, size_t len, struct sbuf *out) {
    uLongf n = compressBound((uLong)len);
    if (len > UINT_MAX) return -E2BIG;
    unsigned char *buf = malloc(n);
    if (!buf) return -ENOMEM;
    int rc = compress2(buf, &n, (const Bytef *)in, (uLong)len, Z_DEFAULT_COMPRESSION) == Z_OK
                 ? sbuf_add(out, buf, n)
                 : -EIO;
    free(buf);
    return rc ? (rc < 0 ? rc : -ENOMEM) : 0;
}

static MHD_RET send_resp(struct http_server *s, struct http_req *rq, struct http_resp *resp) {
    if (resp->body.oom) {
        http_error(resp, 503, "out of memory building the response");
    }
    struct sbuf gz;
    sbuf_init(&gz);
    const char *data = resp->body.data ? resp->body.data : "";
    size_t len = resp->body.len;
    bool gzipped = false;
    const char *api_enc = resp->api_compress ? api_encoding(rq) : NULL;
    if (api_enc) {
        if (len > 0 && (strcmp(api_enc, "gzip") ? zlib_deflate(data, len, &gz)
                                                : expose_gzip(data, len, &gz))) {
            api_enc = NULL; /* could not compress: send it plain */
        } else if (len > 0) {
            data = gz.data;
            len = gz.len;
        }
    } else if (!resp->api_compress && resp->gzip_ok && len > 0 && http_accepts(rq, "gzip") &&
               expose_gzip(data, len, &gz) == 0) {
        data = gz.data;
        len = gz.len;
        gzipped = true;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    sbuf_fini(&gz);
    if (!r) return MHD_NO;
    if (!resp->content_type || *resp->content_type) /* "": no Content-Type (a 204) */
        MHD_add_response_header(r, "Content-Type",
                                resp->content_type ? resp->content_type
                                                   : "text/plain; version=0.0.4; charset=utf-8");
    if (gzipped) MHD_add_response_header(r, "Content-Encoding", "gzip");
    if (api_enc) MHD_add_response_header(r, "Content-Encoding", api_enc);
    if (s->opts.web)
        for (size_t i = 0; i < s->opts.web->nheaders; i++) {
            char hdr[512];
            snprintf(hdr, sizeof(hdr), "%s", s->opts.web->headers[i]);
            char *colon = strchr(hdr, ':');
            if (colon) {
                *colon = '\0';
                MHD_add_response_header(r, hdr, colon + 2);
            }
        }
    for (size_t i = 0; i < resp->nheaders; i++) {
        char *h = resp->headers[i], *colon = strchr(h, ':');
        if (colon) {
            *colon = '\0';
            MHD_add_response_header(r, h, colon + 2);
        }
    }
    MHD_RET ret = MHD_queue_response(rq->conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    record(s, rq->route_idx, resp->status, since(&rq->start));
    return ret;
}

static void resp_fini(struct http_resp *resp) {
    sbuf_fini(&resp->body);
    for (size_t i = 0; i < resp->nheaders; i++)
        free(resp->headers[i]);
}

/* Basic auth against --web.config.file's basic_auth_users. */
static bool authorized(struct webcfg *w, struct MHD_Connection *conn) {
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(conn, &pass);
    bool ok = user && pass && webcfg_check_user(w, user, pass);
    MHD_free(user);
    MHD_free(pass);
    return ok;
}

/* An offload worker: runs queued handlers, each then hands its connection back to MHD,
 * which calls on_request again to send jresp. A request is not touched after its resume
 * (MHD may finish it at once). */
static void *worker_main(void *arg) {
    struct http_server *s = arg;
    pthread_mutex_lock(&s->jobs_lock);
    for (;;) {
        while (!s->qhead && !s->stopping) {
            s->idle++;
            pthread_cond_wait(&s->work_cond, &s->jobs_lock);
            s->idle--;
        }
        if (!s->qhead) break;
        struct http_req *rq = s->qhead;
        s->qhead = rq->qnext;
        if (!s->qhead) s->qtail = NULL;
        pthread_mutex_unlock(&s->jobs_lock);
        struct MHD_Connection *conn = rq->conn;
        rq->route->fn(rq->route->arg, rq, &rq->jresp);
        __atomic_store_n(&rq->job_state, JOB_DONE, __ATOMIC_RELEASE);
        MHD_resume_connection(conn);
        pthread_mutex_lock(&s->jobs_lock);
        s->jobs--;
        pthread_cond_broadcast(&s->jobs_cond);
    }
    pthread_mutex_unlock(&s->jobs_lock);
    return NULL;
}

/* Suspends the connection and queues the request for a worker, starting one if none is
 * idle and the pool is not full. Returns 0, or -errno when there is no worker at all (the
 * caller then runs the handler itself). */
static int start_job(struct http_server *s, struct http_req *rq) {
    pthread_mutex_lock(&s->jobs_lock);
    if (!s->idle && s->nworkers < DEF_HTTP_OFFLOAD_THREADS &&
        pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) == 0)
        s->nworkers++;
    if (!s->nworkers) {
        pthread_mutex_unlock(&s->jobs_lock);
        return -EAGAIN;
    }
    rq->jresp = (struct http_resp){.status = 200};
    rq->job_state = JOB_RUNNING;
    rq->qnext = NULL;
    /* Suspended before any worker can see it, so its resume always follows. */
    MHD_suspend_connection(rq->conn);
    if (s->qtail)
        s->qtail->qnext = rq;
    else
        s->qhead = rq;
    s->qtail = rq;
    s->jobs++;
    pthread_cond_signal(&s->work_cond);
    pthread_mutex_unlock(&s->jobs_lock);
    return 0;
}

static MHD_RET on_request(void *cls, struct MHD_Connection *conn, const char *url,
                          const char *method, const char *version, const char *upload_data,
                          size_t *upload_data_size, void **con_cls) {
    (void)version;
    struct http_server *s = cls;
    struct http_req *rq = *con_cls;
    if (rq && rq->job_state != JOB_NONE) {
        /* Called again after an offloaded handler resumed the connection. */
        if (__atomic_load_n(&rq->job_state, __ATOMIC_ACQUIRE) != JOB_DONE) return MHD_YES;
        rq->job_state = JOB_NONE;
        MHD_RET ret = send_resp(s, rq, &rq->jresp);
        resp_fini(&rq->jresp);
        return ret;
    }
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->start);
        rq->conn = conn;
        rq->method = method;
        rq->path = url;
        rq->route_idx = -1;
        unsigned mbit = method_bit(method);
        bool head = !strcmp(method, "HEAD");
        for (size_t i = 0; i < s->nroutes; i++)
            if (path_match(&s->routes[i], url)) {
                if (rq->route_idx < 0 && s->routes[i].methods != HTTP_OPTIONS)
                    rq->route_idx = (int)i;
                if ((s->routes[i].methods & mbit) &&
                    !(head && (s->routes[i].methods & HTTP_NO_HEAD))) {
                    rq->route_idx = (int)i;
                    rq->route = &s->routes[i];
                    break;
                }
            }
        rq->limit =
            rq->route && rq->route->max_body ? rq->route->max_body : s->opts.max_request_bytes;
        rq->buffers = rq->route && (mbit == HTTP_POST || mbit == HTTP_PUT);
        *con_cls = rq;
        if (s->opts.web && s->opts.web->nusers && !authorized(s->opts.web, conn)) {
            rq->unauthorized = true;
            rq->route = NULL;
            rq->buffers = false;
            return MHD_YES;
        }
        /* A declared oversize body is refused before any of it is read (MHD allows an
         * answer before the upload starts; it then closes the connection). */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (!cl || !rq->buffers || strtoull(cl, NULL, 10) <= rq->limit) return MHD_YES;
        rq->too_large = true;
    } else if (*upload_data_size) {
        /* Body data: buffered for routes that read it, within the route's limit and the
         * server-wide budget; otherwise discarded and answered once it has all arrived
         * (MHD cannot send an answer in the middle of an upload). */
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!rq->buffers || rq->too_large || rq->overloaded) return MHD_YES;
        if (rq->body.len + n > rq->limit) {
            rq->too_large = true;
        } else if (__atomic_add_fetch(&s->inflight, n, __ATOMIC_RELAXED) > s->inflight_max) {
            __atomic_sub_fetch(&s->inflight, n, __ATOMIC_RELAXED);
            rq->overloaded = true;
        } else {
            rq->charged += n;
            if (sbuf_add(&rq->body, upload_data, n)) rq->overloaded = true;
        }
        if (rq->too_large || rq->overloaded) {
            sbuf_fini(&rq->body);
            __atomic_sub_fetch(&s->inflight, rq->charged, __ATOMIC_RELAXED);
            rq->charged = 0;
        }
        return MHD_YES;
    }

    struct http_resp resp = {.status = 200};
    if (rq->unauthorized) {
        http_error(&resp, 401, "Unauthorized");
        http_add_header(&resp, "WWW-Authenticate", "Basic");
    } else if (!rq->route) {
        if (rq->route_idx >= 0) {
            char allow[64];
            allow_header(s, url, allow, sizeof(allow));
            /* Go's texts (net/http, httprouter), as the peers promlet stands in for. */
            http_error(&resp, 405, "Method Not Allowed");
            http_add_header(&resp, "Allow", allow);
        } else {
            http_error(&resp, 404, "404 page not found");
        }
    } else if (rq->overloaded) {
        http_error(&resp, 503, "too many request bodies in flight; retry later");
    } else if (rq->too_large) {
        http_error(&resp, 413, "request body larger than %zu bytes", rq->limit);
        http_add_header(&resp, "Connection", "close");
    } else if (s->offload[rq->route_idx] &&
               (!s->offload_if[rq->route_idx] ||
                s->offload_if[rq->route_idx](rq->route->arg, rq)) &&
               start_job(s, rq) == 0) {
        return MHD_YES; /* answered after the worker's resume */
    } else {
        rq->route->fn(rq->route->arg, rq, &resp);
    }
    MHD_RET ret = send_resp(s, rq, &resp);
    resp_fini(&resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    struct http_server *s = cls;
    struct http_req *rq = *con_cls;
    if (!rq) return;
    if (rq->charged) __atomic_sub_fetch(&s->inflight, rq->charged, __ATOMIC_RELAXED);
    if (rq->job_state == JOB_DONE)
        resp_fini(&rq->jresp); /* the client left before the answer went out */
    sbuf_fini(&rq->body);
    for (size_t i = 0; i < rq->nkeep; i++)
        free(rq->keep[i]);
    free(rq->keep);
    free(rq);
    *con_cls = NULL;
}

/* ---- accessors
 * ------------------------------------------------------------------------------------ */

const char *http_method(const struct http_req *r) {
    return r->method;
}

const char *http_path(const struct http_req *r) {
    return r->path;
}

const char *http_subpath(const struct http_req *r) {
    size_t n = r->route && r->route->prefix ? strlen(r->route->path) : strlen(r->path);
    return r->path + n;
}

const char *http_header(const struct http_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_body(const struct http_req *r, size_t *len) {
    *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

bool http_accepts(const struct http_req *r, const char *media) {
    const char *h =
        strcmp(media, "gzip") == 0 ? http_header(r, "Accept-Encoding") : http_header(r, "Accept");
    if (!h) return false;
    size_t ml = strlen(media);
    for (const char *p = h; (p = strcasestr(p, media)); p += ml) {
        bool start = p == h || p[-1] == ',' || p[-1] == ' ';
        char e = p[ml];
        if (start && (e == '\0' || e == ',' || e == ';' || e == ' ')) return true;
    }
    return false;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one form component in place ('+' is a space, %XX a byte). */
static void form_decode(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

struct args_ctx {
    const char *name;
    int (*fn)(void *arg, const char *value);
    void *arg;
    int rc;
    const char *first;
};

static MHD_RET args_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    struct args_ctx *c = cls;
    if (strcmp(key, c->name) == 0) {
        if (c->fn)
            c->rc = c->fn(c->arg, value ? value : "");
        else if (!c->first)
            c->first = value ? value : "";
    }
    return c->rc || (!c->fn && c->first) ? MHD_NO : MHD_YES;
}

/* Form bodies (application/x-www-form-urlencoded) answer http_arg as Prometheus's
 * r.FormValue does: body values first, then the query string's (Go's ParseForm puts
 * PostForm before the URL's values). Values are decoded into a copy. */
static int body_args(const struct http_req *r, struct args_ctx *c, char **keep) {
    const char *ct = http_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 || !r->body.len)
        return 0;
    char *copy = strndup(r->body.data, r->body.len);
    if (!copy) return -ENOMEM;
    char *save = NULL;
    for (char *kv = strtok_r(copy, "&", &save); kv && !c->rc; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        char *v = eq ? eq + 1 : kv + strlen(kv);
        if (eq) *eq = '\0';
        form_decode(kv);
        form_decode(v);
        if (strcmp(kv, c->name) == 0) {
            if (c->fn) {
                c->rc = c->fn(c->arg, v);
            } else {
                c->first = v;
                break;
            }
        }
    }
    *keep = copy;
    return 0;
}

const char *http_arg(const struct http_req *r, const char *name) {
    struct args_ctx c = {.name = name};
    char *copy = NULL;
    if (body_args(r, &c, &copy)) return NULL;
    if (copy) {
        /* A decoded form body stays with the request, so every value handed out remains
         * valid until the request completes. */
        struct http_req *rq = (struct http_req *)r;
        char **nk = realloc(rq->keep, (rq->nkeep + 1) * sizeof(*nk));
        if (!nk) {
            free(copy);
            return NULL;
        }
        rq->keep = nk;
        rq->keep[rq->nkeep++] = copy;
    }
    if (c.first) return c.first;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, args_iter, &c);
    return c.first;
}

int http_args(const struct http_req *r, const char *name, int (*fn)(void *arg, const char *value),
              void *arg) {
    struct args_ctx c = {.name = name, .fn = fn, .arg = arg};
    char *keep = NULL;
    if (body_args(r, &c, &keep)) return -ENOMEM;
    free(keep);
    if (!c.rc) MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, args_iter, &c);
    return c.rc;
}

/* ---- self metrics -------------------------------------------------------------------------------
 */

int http_write_metrics(struct http_server *s, struct mset *out) {
    struct mfam *req =
        mset_family(out, "promlet_http_requests_total",
                    "Counter of HTTP requests by handler and response code.", MTYPE_COUNTER);
    struct mfam *dur = mset_family(out, "promlet_http_request_duration_seconds",
                                   "Histogram of latencies for HTTP requests.", MTYPE_HISTOGRAM);
    if (!req || !dur) return -ENOMEM;
    struct route_stats snap[MAX_ROUTES + 1];
    pthread_mutex_lock(&s->stats_lock);
    memcpy(snap, s->stats, sizeof(snap));
    pthread_mutex_unlock(&s->stats_lock);
    int rc = 0;
    for (size_t i = 0; i <= s->nroutes && !rc; i++) {
        size_t idx = i < s->nroutes ? i : MAX_ROUTES;
        const char *name = i < s->nroutes ? s->routes[i].name : "other";
        /* Several routes may share a handler name; sum them under the first. */
        bool dup = false;
        for (size_t k = 0; k < i && i < s->nroutes; k++)
            dup |= strcmp(s->routes[k].name, name) == 0;
        if (dup) continue;
        struct route_stats st = snap[idx];
        for (size_t k = i + 1; k < s->nroutes; k++)
            if (strcmp(s->routes[k].name, name) == 0) {
                for (size_t c = 0; c <= NCODES; c++)
                    st.count[c] += snap[k].count[c];
                for (size_t b = 0; b < NBUCKETS; b++)
                    st.hist[b] += snap[k].hist[b];
                st.hist_count += snap[k].hist_count;
                st.hist_sum += snap[k].hist_sum;
            }
        for (size_t c = 0; c < NCODES && !rc; c++) {
            /* The 200 series always exists, so dashboards see every handler. */
            if (!st.count[c] && codes[c] != 200) continue;
            char code[8];
            snprintf(code, sizeof(code), "%d", codes[c]);
            rc = mfam_addf(req, "", (double)st.count[c], 2, "code", code, "handler", name);
        }
        if (st.count[NCODES] && !rc)
            rc = mfam_addf(req, "", (double)st.count[NCODES], 2, "code", "other", "handler", name);
        for (size_t b = 0; b < NBUCKETS && !rc; b++) {
            char le[16];
            snprintf(le, sizeof(le), "%g", buckets[b]);
            rc = mfam_addf(dur, "_bucket", (double)st.hist[b], 2, "handler", name, "le", le);
        }
        if (!rc)
            rc = mfam_addf(dur, "_bucket", (double)st.hist_count, 2, "handler", name, "le", "+Inf");
        if (!rc) rc = mfam_addf(dur, "_sum", st.hist_sum, 1, "handler", name);
        if (!rc) rc = mfam_addf(dur, "_count", (double)st.hist_count, 1, "handler", name);
    }
    return rc;
}
