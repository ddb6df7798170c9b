/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the notifier transport against a scripted HTTP server on 127.0.0.1: in-order
 * delivery through 500s and a hanging receiver, retries, drops at the queue bound, metrics. */
#include "expose.h"
#include "notify.h"
#include "sbuf.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* What the server does with request i: 'f' answers 500, 'h' reads it and never answers
 * (until the client gives up), 'o' answers 200. Beyond the script: 200. */
struct server {
    int fd, port;
    const char *script;
    int nreq;
    char bodies[64][32];
    int nbodies; /* bodies answered 200, in arrival order */
    pthread_mutex_t mu;
    volatile bool stop;
};

static int read_request(int c, char *body, size_t cap) {
    char buf[8192];
    size_t have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
        ssize_t r = read(c, buf + have, sizeof(buf) - have - 1);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    buf[have] = 0;
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t hdr = (size_t)(end + 4 - buf);
    while (have < hdr + len) {
        ssize_t r = read(c, buf + have, sizeof(buf) - have - 1);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(body, buf + hdr, n);
    body[n] = 0;
    return 0;
}

static void *serve(void *arg) {
    struct server *s = arg;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        char body[32];
        while (!s->stop && read_request(c, body, sizeof(body)) == 0) {
            pthread_mutex_lock(&s->mu);
            int i = s->nreq++;
            char act = (size_t)i < strlen(s->script) ? s->script[i] : 'o';
            pthread_mutex_unlock(&s->mu);
            if (act == 'h') {
                char junk[64];
                struct timeval none = {0, 0}; /* accepted sockets inherit the listener's */
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
                while (read(c, junk, sizeof(junk)) > 0) /* until the client closes */
                    ;
                break;
            }
            const char *resp = act == 'f' ? "HTTP/1.1 500 Internal Server Error\r\n"
                                            "Content-Length: 0\r\n\r\n"
                                          : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
            if (act == 'o') {
                pthread_mutex_lock(&s->mu);
                if (s->nbodies < 64) snprintf(s->bodies[s->nbodies++], 32, "%s", body);
                pthread_mutex_unlock(&s->mu);
            }
            if (write(c, resp, strlen(resp)) < 0) break;
        }
        close(c);
    }
    return NULL;
}

static int server_start(struct server *s, const char *script, pthread_t *th) {
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->script = script;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    struct timeval tv = {0, 100000}; /* accept wakes to notice stop */
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) || listen(s->fd, 16) ||
        getsockname(s->fd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(th, NULL, serve, s);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int delivered(struct server *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->nbodies;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static bool metrics_has(struct notifier *n, const char *line) {
    struct mset *m = mset_new();
    struct sbuf b;
    sbuf_init(&b);
    bool found = false;
    if (!notifier_metrics(n, m) && !mset_write_text(m, &b)) {
        sbuf_addc(&b, 0);
        found = strstr(b.data, line) != NULL;
        if (!found)
            for (char *p = strtok(b.data, "\n"); p; p = strtok(NULL, "\n"))
                printf("# %s\n", p);
    }
    sbuf_fini(&b);
    mset_free(m);
    return found;
}

int main(void) {
    /* 1: two 500s, then a hang past the timeout, then recovery; every body arrives in order. */
    struct server s;
    pthread_t th;
    CHECK(server_start(&s, "ffh", &th) == 0);
    struct notify_opts o;
    notify_opts_default(&o);
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 40;
    struct notifier *n = notifier_new(&o);
    CHECK(n != NULL);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/alert", s.port);
    for (int i = 0; i < 5; i++) {
        char *b = malloc(8);
        snprintf(b, 8, "b%d", i);
        CHECK_EQ_INT(notifier_post(n, url, 300, b, strlen(b)), 0);
    }
    for (int i = 0; i < 300 && delivered(&s) < 5; i++)
        sleep_ms(10);
    /* The server records a body before it answers, so the notifier may still be reading the
     * last answer: wait (bounded) until it has counted it. */
    for (int i = 0; i < 300 && notifier_pending(n) > 0; i++)
        sleep_ms(10);
    CHECK_EQ_INT(delivered(&s), 5);
    const char *want[] = {"b0", "b1", "b2", "b3", "b4"};
    for (int i = 0; i < 5 && i < s.nbodies; i++)
        CHECK_EQ_STR(s.bodies[i], want[i]);
    CHECK_EQ_INT(s.nreq, 8);
    CHECK_EQ_INT(notifier_pending(n), 0);
    char line[160];
    snprintf(line, sizeof(line), "promlet_notifications_sent_total{receiver=\"%s\"} 5", url);
    CHECK(metrics_has(n, line));
    snprintf(line, sizeof(line), "promlet_notifications_failed_total{receiver=\"%s\"} 3", url);
    CHECK(metrics_has(n, line));
    snprintf(line, sizeof(line), "promlet_notification_latency_seconds_count{receiver=\"%s\"} 8",
             url);
    CHECK(metrics_has(n, line));
    notifier_free(n);

    /* 2: queue bound: with capacity 2 and a receiver that refuses connections, the oldest
     * waiting bodies are dropped and counted; a post never blocks. */
    o.queue_capacity = 2;
    n = notifier_new(&o);
    const char *dead = "http://127.0.0.1:1/alert";
    for (int i = 0; i < 10; i++) {
        char *b = strdup("x");
        CHECK_EQ_INT(notifier_post(n, dead, 100, b, 1), 0);
    }
    CHECK(notifier_pending(n) <= 2);
    char dl[160];
    snprintf(dl, sizeof(dl), "promlet_notifications_dropped_total{receiver=\"%s\"} 8", dead);
    CHECK(metrics_has(n, dl));
    notifier_free(n);

    s.stop = true;
    pthread_join(th, NULL);
    close(s.fd);
    return tap_done();
}
