/* SPDX-License-Identifier: Apache-2.0 */
/* A small HTTP/1.1 keep-alive load generator for push throughput: N threads POST a fixed
 * text-format body to one path for a while and the total request rate is printed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct job {
    const char *host;
    int port;
    char path[256];
    double seconds;
    long done, failed;
};

static const char *body;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(const struct job *j) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
    inet_pton(AF_INET, j->host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response (headers + Content-Length body); returns the status or -1. */
static int read_resp(int fd) {
    char buf[4096];
    size_t have = 0;
    char *end;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0) return -1;
        have += (size_t)r;
        buf[have] = 0;
        if ((end = strstr(buf, "\r\n\r\n"))) break;
        if (have == sizeof(buf) - 1) return -1;
    }
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t len = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t got = have - (size_t)(end + 4 - buf);
    while (got < len) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return atoi(buf + 9);
}

static void *run(void *arg) {
    struct job *j = arg;
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     j->path, j->host, strlen(body), body);
    int fd = dial(j);
    double end = now_s() + j->seconds;
    while (fd >= 0 && now_s() < end) {
        if (write(fd, req, (size_t)n) != n) {
            close(fd);
            fd = dial(j);
            continue;
        }
        int st = read_resp(fd);
        if (st == 200 || st == 202)
            j->done++;
        else
            j->failed++;
        if (st < 0) {
            close(fd);
            fd = dial(j);
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: push_load HOST PORT THREADS SECONDS\n");
        return 2;
    }
    /* Ten gauges per push, like one scrape-sized group of the service's metrics. */
    static char b[1024];
    size_t off = 0;
    for (int i = 0; i < 10; i++)
        off += (size_t)snprintf(b + off, sizeof(b) - off, "bench_m%d %d\n", i, i);
    body = b;
    int nt = atoi(argv[3]);
    struct job *jobs = calloc((size_t)nt, sizeof(*jobs));
    pthread_t *th = calloc((size_t)nt, sizeof(*th));
    for (int i = 0; i < nt; i++) {
        jobs[i] = (struct job){.host = argv[1], .port = atoi(argv[2]), .seconds = atof(argv[4])};
        snprintf(jobs[i].path, sizeof(jobs[i].path), "/metrics/job/load/instance/t%d", i);
        pthread_create(&th[i], NULL, run, &jobs[i]);
    }
    long done = 0, failed = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        done += jobs[i].done;
        failed += jobs[i].failed;
    }
    printf("%.1f %ld\n", (double)done / atof(argv[4]), failed);
    free(jobs);
    free(th);
    return 0;
}
