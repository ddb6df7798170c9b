/* SPDX-License-Identifier: Apache-2.0 */
/* Notifier transport: a thread running a loop that drives libcurl multi through socket callbacks.
 */
#include "notify.h"

#include "defaults.h"
#include "expose.h"
#include "log.h"
#include "loop.h"
#include "version.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency buckets (seconds): loopback deliveries take well under a millisecond, a remote
 * Alertmanager tens of milliseconds, a dying one up to the timeout. */
static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

struct nitem {
    char *body;
    size_t len;
    int64_t timeout_ms;
    int64_t enqueued; /* monotonic ms */
    struct nitem *next;
};

struct receiver {
    char *url;
    struct nitem *head, *tail; /* FIFO; head is in flight while busy */
    size_t qlen;
    bool busy;
    CURL *easy;
    int64_t next_attempt; /* monotonic ms; 0: now */
    int64_t backoff_ms;
    uint64_t sent, failed, dropped;
    uint64_t lat_counts[NBOUNDS + 1];
    double lat_sum;
    uint64_t lat_count;
    struct receiver *next;
};

struct notifier {
    pthread_mutex_t mu; /* guards receivers' queues and counters, opts */
    struct notify_opts o;
    struct receiver *rcv;
    struct loop *loop;
    CURLM *multi;   /* NULL until start_curl */
    bool want_curl; /* notifier_prepare asked for libcurl before the first item */
    struct curl_slist *headers;
    int64_t curl_timer;  /* loop timer id for curl's timeout, 0 when none */
    int64_t retry_timer; /* loop timer id for the earliest backoff, 0 when none */
    pthread_t thread;
    bool thread_started;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void notify_opts_default(struct notify_opts *o) {
    o->queue_capacity = DEF_NOTIFY_QUEUE;
    o->max_retry_age_ms = DEF_NOTIFY_MAX_RETRY_AGE_MS;
    o->backoff_min_ms = DEF_NOTIFY_BACKOFF_MIN_MS;
    o->backoff_max_ms = DEF_NOTIFY_BACKOFF_MAX_MS;
}

static void item_free(struct nitem *it) {
    if (!it) return;
    free(it->body);
    free(it);
}

/* Pops the head (which must not be in flight). Caller holds mu. */
static struct nitem *pop_head(struct receiver *r) {
    struct nitem *it = r->head;
    if (!it) return NULL;
    r->head = it->next;
    if (!r->head) r->tail = NULL;
    r->qlen--;
    return it;
}

static size_t discard(char *p, size_t sz, size_t n, void *arg) {
    (void)p;
    (void)arg;
    return sz * n;
}

/* ---- curl <-> loop glue (loop thread) ----------------------------------------------------- */

static void check_done(struct notifier *n);
static void kick(struct notifier *n);

static void on_sock(struct loop *l, int fd, unsigned mask, void *arg) {
    (void)l;
    struct notifier *n = arg;
    int ev = 0, running;
    if (mask & LOOP_READ) ev |= CURL_CSELECT_IN;
    if (mask & LOOP_WRITE) ev |= CURL_CSELECT_OUT;
    curl_multi_socket_action(n->multi, fd, ev, &running);
    check_done(n);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)e;
    (void)socketp;
    struct notifier *n = userp;
    if (what == CURL_POLL_REMOVE) {
        loop_del_fd(n->loop, s);
        return 0;
    }
    unsigned mask = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) mask |= LOOP_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) mask |= LOOP_WRITE;
    return loop_add_fd(n->loop, s, mask, on_sock, n) ? -1 : 0;
}

static int64_t on_curl_timer(struct loop *l, int64_t id, void *arg) {
    (void)l;
    (void)id;
    struct notifier *n = arg;
    int running;
    n->curl_timer = 0; /* curl may ask for a new timer from inside socket_action */
    curl_multi_socket_action(n->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(n);
    return LOOP_NOMORE;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
    (void)m;
    struct notifier *n = userp;
    if (timeout_ms < 0) {
        if (n->curl_timer) loop_del_timer(n->loop, n->curl_timer);
        n->curl_timer = 0;
        return 0;
    }
    if (n->curl_timer) return loop_mod_timer(n->loop, n->curl_timer, timeout_ms) ? -1 : 0;
    int64_t id = loop_add_timer(n->loop, timeout_ms, on_curl_timer, n);
    if (id < 0) return -1;
    n->curl_timer = id;
    return 0;
}

static int64_t on_retry_timer(struct loop *l, int64_t id, void *arg) {
    (void)l;
    (void)id;
    struct notifier *n = arg;
    n->retry_timer = 0;
    kick(n);
    return LOOP_NOMORE;
}

static void on_wake(struct loop *l, void *arg) {
    (void)l;
    kick(arg);
}

/* Initialises libcurl and its TLS library, then the multi handle. Deferred until there is a
 * receiver (OpenSSL's start-up alone is ~3 MB of resident pages a daemon without alerting
 * does not need). Loop thread, mu held. Returns 0 / -ENOMEM. */
static int start_curl(struct notifier *n) {
    pthread_once(&curl_once, curl_init_once);
    n->multi = curl_multi_init();
    if (!n->multi) return -ENOMEM;
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(n->multi, CURLMOPT_SOCKETDATA, n);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(n->multi, CURLMOPT_TIMERDATA, n);
    return 0;
}

/* Starts the head request of every idle receiver whose backoff has passed, and arms the retry
 * timer for the earliest one still backing off. Loop thread. */
static void kick(struct notifier *n) {
    int64_t now = loop_now_ms(), earliest = INT64_MAX;
    pthread_mutex_lock(&n->mu);
    bool work = n->want_curl;
    for (struct receiver *r = n->rcv; r && !work; r = r->next)
        work = r->head != NULL;
    if (work && !n->multi && start_curl(n)) {
        pthread_mutex_unlock(&n->mu);
        return; /* out of memory: the items wait in their queues for the next wake-up */
    }
    for (struct receiver *r = n->rcv; r; r = r->next) {
        if (r->busy || !r->head) continue;
        if (r->next_attempt > now) {
            if (r->next_attempt < earliest) earliest = r->next_attempt;
            continue;
        }
        if (!r->easy) {
            r->easy = curl_easy_init();
            if (!r->easy) continue;
        }
        struct nitem *it = r->head;
        CURL *e = r->easy;
        curl_easy_reset(e);
        curl_easy_setopt(e, CURLOPT_URL, r->url);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, it->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, n->headers);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)it->timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)it->timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(e, CURLOPT_PRIVATE, r);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        if (curl_multi_add_handle(n->multi, e) == CURLM_OK) r->busy = true;
    }
    pthread_mutex_unlock(&n->mu);
    if (earliest != INT64_MAX) {
        int64_t ms = earliest - now;
        if (n->retry_timer)
            loop_mod_timer(n->loop, n->retry_timer, ms);
        else {
            int64_t id = loop_add_timer(n->loop, ms, on_retry_timer, n);
            n->retry_timer = id > 0 ? id : 0;
        }
    }
}

static void observe(struct receiver *r, double secs) {
    size_t b = 0;
    while (b < NBOUNDS && secs > lat_bounds[b])
        b++;
    r->lat_counts[b]++;
    r->lat_sum += secs;
    r->lat_count++;
}

/* Collects finished transfers: success pops the body, failure schedules a retry with backoff
 * (or drops a body that is too old or refused with a client error). Loop thread. */
static void check_done(struct notifier *n) {
    CURLMsg *msg;
    int left;
    bool again = false;
    while ((msg = curl_multi_info_read(n->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct receiver *r = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        long code = 0;
        double secs = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &secs);
        curl_multi_remove_handle(n->multi, e);
        if (!r) continue;
        int64_t now = loop_now_ms();
        pthread_mutex_lock(&n->mu);
        r->busy = false;
        observe(r, secs);
        struct nitem *done = NULL;
        if (res == CURLE_OK && code / 100 == 2) {
            r->sent++;
            r->backoff_ms = 0;
            r->next_attempt = 0;
            done = pop_head(r);
        } else {
            r->failed++;
            bool retry = res != CURLE_OK || code >= 500 || code == 408 || code == 429;
            /* Client errors mean the body itself is refused: retrying cannot help. */
            if (!retry || (r->head && now - r->head->enqueued > n->o.max_retry_age_ms)) {
                r->dropped++;
                done = pop_head(r);
                r->backoff_ms = 0;
                r->next_attempt = 0;
            } else {
                r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : n->o.backoff_min_ms;
                if (r->backoff_ms > n->o.backoff_max_ms) r->backoff_ms = n->o.backoff_max_ms;
                r->next_attempt = now + r->backoff_ms;
            }
            if (res != CURLE_OK)
                LOG_DEBUG("notification to %s failed: %s", r->url, curl_easy_strerror(res));
            else
                LOG_DEBUG("notification to %s failed: HTTP %ld", r->url, code);
        }
        pthread_mutex_unlock(&n->mu);
        item_free(done);
        again = true;
    }
    if (again) kick(n);
}

static void *thread_main(void *arg) {
    struct notifier *n = arg;
    int rc = loop_run(n->loop);
    if (rc) LOG_ERROR("notifier loop failed: %s", strerror(-rc));
    return NULL;
}

/* ---- public -------------------------------------------------------------------------------- */

struct notifier *notifier_new(const struct notify_opts *o) {
    struct notifier *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    pthread_mutex_init(&n->mu, NULL);
    n->o = *o;
    n->loop = loop_new(on_wake, n);
    if (!n->loop) goto fail;
    char ua[96];
    snprintf(ua, sizeof(ua), "User-Agent: promlet/%s", version_string());
    /* An empty Expect: stops curl from waiting for 100-continue on larger bodies. */
    const char *hdrs[] = {"Content-Type: application/json", ua, "Expect:"};
    for (size_t i = 0; i < 3; i++) {
        struct curl_slist *h = curl_slist_append(n->headers, hdrs[i]);
        if (!h) goto fail;
        n->headers = h;
    }
    if (pthread_create(&n->thread, NULL, thread_main, n)) goto fail;
    n->thread_started = true;
    return n;
fail:
    notifier_free(n);
    return NULL;
}

void notifier_free(struct notifier *n) {
    if (!n) return;
    if (n->thread_started) {
        loop_stop(n->loop);
        pthread_join(n->thread, NULL);
    }
    struct receiver *r = n->rcv;
    while (r) {
        struct receiver *next = r->next;
        if (r->easy) {
            if (r->busy) curl_multi_remove_handle(n->multi, r->easy);
            curl_easy_cleanup(r->easy);
        }
        struct nitem *it;
        while ((it = pop_head(r)))
            item_free(it);
        free(r->url);
        free(r);
        r = next;
    }
    if (n->multi) curl_multi_cleanup(n->multi);
    curl_slist_free_all(n->headers);
    loop_free(n->loop);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

void notifier_prepare(struct notifier *n) {
    pthread_mutex_lock(&n->mu);
    bool wake = !n->want_curl;
    n->want_curl = true;
    pthread_mutex_unlock(&n->mu);
    if (wake) loop_wake(n->loop);
}

void notifier_set_opts(struct notifier *n, const struct notify_opts *o) {
    pthread_mutex_lock(&n->mu);
    n->o = *o;
    pthread_mutex_unlock(&n->mu);
}

/* Finds or creates the receiver for url. Caller holds mu. */
static struct receiver *receiver_get(struct notifier *n, const char *url) {
    struct receiver **pp = &n->rcv;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->url, url)) return *pp;
    struct receiver *r = calloc(1, sizeof(*r));
    if (!r || !(r->url = strdup(url))) {
        free(r);
        return NULL;
    }
    *pp = r;
    return r;
}

int notifier_post(struct notifier *n, const char *url, int64_t timeout_ms, char *body, size_t len) {
    struct nitem *it = calloc(1, sizeof(*it));
    if (!it) {
        free(body);
        return -ENOMEM;
    }
    *it = (struct nitem){
        .body = body, .len = len, .timeout_ms = timeout_ms, .enqueued = loop_now_ms()};
    struct nitem *dropped = NULL;
    pthread_mutex_lock(&n->mu);
    struct receiver *r = receiver_get(n, url);
    if (!r) {
        pthread_mutex_unlock(&n->mu);
        item_free(it);
        return -ENOMEM;
    }
    size_t cap = n->o.queue_capacity ? n->o.queue_capacity : 1;
    if (r->qlen >= cap) {
        /* Drop the oldest body that is not in flight (the head is while busy). */
        if (r->busy && r->head && r->head->next) {
            dropped = r->head->next;
            r->head->next = dropped->next;
            if (r->tail == dropped) r->tail = r->head;
            r->qlen--;
        } else if (!r->busy) {
            dropped = pop_head(r);
        }
        if (dropped) r->dropped++;
    }
    if (r->qlen >= cap) { /* capacity 1 with the head in flight: refuse the new body */
        r->dropped++;
        pthread_mutex_unlock(&n->mu);
        item_free(it);
        return 0;
    }
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->qlen++;
    pthread_mutex_unlock(&n->mu);
    item_free(dropped);
    loop_wake(n->loop);
    return 0;
}

size_t notifier_pending(struct notifier *n) {
    size_t total = 0;
    pthread_mutex_lock(&n->mu);
    for (struct receiver *r = n->rcv; r; r = r->next)
        total += r->qlen;
    pthread_mutex_unlock(&n->mu);
    return total;
}

int notifier_metrics(struct notifier *n, struct mset *out) {
    struct mfam *fs = mset_family(out, "promlet_notifications_sent_total",
                                  "Notifications delivered, by receiver.", MTYPE_COUNTER);
    struct mfam *ff = mset_family(out, "promlet_notifications_failed_total",
                                  "Failed notification attempts (retried or dropped), by receiver.",
                                  MTYPE_COUNTER);
    struct mfam *fd =
        mset_family(out, "promlet_notifications_dropped_total",
                    "Notifications dropped: queue full, too old or refused.", MTYPE_COUNTER);
    struct mfam *fl =
        mset_family(out, "promlet_notification_latency_seconds",
                    "Duration of notification requests, by receiver.", MTYPE_HISTOGRAM);
    struct mfam *fq = mset_family(out, "promlet_notification_queue_length",
                                  "Notifications waiting or in flight, by receiver.", MTYPE_GAUGE);
    struct mfam *fc = mset_family(out, "promlet_notification_queue_capacity",
                                  "Queue capacity per receiver.", MTYPE_GAUGE);
    if (!fs || !ff || !fd || !fl || !fq || !fc) return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&n->mu);
    rc = mfam_add(fc, "", NULL, 0, (double)n->o.queue_capacity);
    for (struct receiver *r = n->rcv; r && !rc; r = r->next) {
        struct re_label l = {"receiver", r->url};
        rc = mfam_add(fs, "", &l, 1, (double)r->sent);
        rc = rc ? rc : mfam_add(ff, "", &l, 1, (double)r->failed);
        rc = rc ? rc : mfam_add(fd, "", &l, 1, (double)r->dropped);
        rc = rc ? rc : mfam_add(fq, "", &l, 1, (double)r->qlen);
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBOUNDS && !rc; b++) {
            cum += r->lat_counts[b];
            char le[32];
            if (b == NBOUNDS)
                snprintf(le, sizeof(le), "+Inf");
            else
                snprintf(le, sizeof(le), "%g", lat_bounds[b]);
            struct re_label ls[2] = {{"le", le}, {"receiver", r->url}};
            rc = mfam_add(fl, "_bucket", ls, 2, (double)cum);
        }
        rc = rc ? rc : mfam_add(fl, "_sum", &l, 1, r->lat_sum);
        rc = rc ? rc : mfam_add(fl, "_count", &l, 1, (double)r->lat_count);
    }
    pthread_mutex_unlock(&n->mu);
    return rc;
}
