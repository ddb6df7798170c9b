/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the event loop: timer order and re-arming, fds, wakes from another thread. */
#include "loop.h"
#include "tap.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

struct rec {
    char order[16];
    int n;
    int repeats;
    int woke;
    int fdreads;
};

static int64_t t_a(struct loop *l, int64_t id, void *arg) {
    (void)l;
    (void)id;
    struct rec *r = arg;
    r->order[r->n++] = 'a';
    return LOOP_NOMORE;
}

static int64_t t_b(struct loop *l, int64_t id, void *arg) {
    (void)l;
    (void)id;
    struct rec *r = arg;
    r->order[r->n++] = 'b';
    return LOOP_NOMORE;
}

static int64_t t_rep(struct loop *l, int64_t id, void *arg) {
    (void)id;
    struct rec *r = arg;
    if (++r->repeats == 3) {
        loop_stop(l);
        return LOOP_NOMORE;
    }
    return 1;
}

static void on_wake(struct loop *l, void *arg) {
    struct rec *r = arg;
    (void)l;
    r->woke++;
}

static void on_fd(struct loop *l, int fd, unsigned mask, void *arg) {
    struct rec *r = arg;
    char buf[8];
    if (mask & LOOP_READ && read(fd, buf, sizeof(buf)) > 0) r->fdreads++;
    loop_del_fd(l, fd);
}

static void *waker(void *arg) {
    usleep(20000);
    loop_wake(arg);
    return NULL;
}

int main(void) {
    struct rec r = {0};
    struct loop *l = loop_new(on_wake, &r);
    CHECK(l != NULL);

    /* Timers run in deadline order, whatever the order they were added in. */
    CHECK(loop_add_timer(l, 30, t_b, &r) > 0);
    CHECK(loop_add_timer(l, 10, t_a, &r) > 0);
    int64_t gone = loop_add_timer(l, 5, t_a, &r);
    loop_del_timer(l, gone);
    for (int i = 0; i < 20 && r.n < 2; i++)
        loop_once(l, 100);
    CHECK_EQ_STR(r.order, "ab");

    /* A timer returning a delay repeats; loop_stop ends loop_run. */
    CHECK(loop_add_timer(l, 1, t_rep, &r) > 0);
    CHECK_EQ_INT(loop_run(l), 0);
    CHECK_EQ_INT(r.repeats, 3);

    /* A timer moved later does not fire at its old deadline. */
    r.n = 0;
    r.order[0] = 0;
    int64_t id = loop_add_timer(l, 5, t_a, &r);
    CHECK_EQ_INT(loop_mod_timer(l, id, 60), 0);
    int64_t t0 = loop_now_ms();
    while (r.n == 0 && loop_now_ms() - t0 < 1000)
        loop_once(l, 100);
    CHECK(loop_now_ms() - t0 >= 55);
    CHECK_EQ_INT(loop_mod_timer(l, id, 5), -ENOENT);

    /* fds: readiness is reported once registered; a pipe write wakes the loop. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_EQ_INT(loop_add_fd(l, p[0], LOOP_READ, on_fd, &r), 0);
    CHECK(write(p[1], "x", 1) == 1);
    loop_once(l, 1000);
    CHECK_EQ_INT(r.fdreads, 1);
    close(p[0]);
    close(p[1]);

    /* loop_wake from another thread runs the wake callback once; wakes coalesce. */
    loop_once(l, 0);
    r.woke = 0;
    pthread_t th;
    pthread_create(&th, NULL, waker, l);
    for (int i = 0; i < 20 && !r.woke; i++)
        loop_once(l, 100);
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.woke, 1);
    loop_wake(l);
    loop_wake(l);
    loop_once(l, 100);
    CHECK_EQ_INT(r.woke, 2);

    loop_free(l);
    return tap_done();
}
