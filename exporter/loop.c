/* SPDX-License-Identifier: Apache-2.0 */
/* The event loop: one epoll set, one timerfd armed at the earliest timer, one eventfd for wakes. */
#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct ltimer {
    int64_t id;
    int64_t when; /* monotonic ms */
    loop_timer_fn *fn;
    void *arg;
};

struct lfd {
    loop_fd_fn *fn; /* NULL: slot unused */
    void *arg;
    unsigned mask;
};

struct loop {
    int ep, tfd, efd;
    struct ltimer *timers;
    size_t ntimers, captimers;
    int64_t next_id;
    int64_t armed;   /* deadline the timerfd is armed for, INT64_MAX when disarmed */
    struct lfd *fds; /* indexed by fd */
    size_t nfds;
    loop_wake_fn *on_wake;
    void *wake_arg;
    volatile int stop;
};

int64_t loop_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ep_ctl(struct loop *l, int op, int fd, unsigned mask) {
    struct epoll_event ev = {.data.fd = fd};
    if (mask & LOOP_READ) ev.events |= EPOLLIN;
    if (mask & LOOP_WRITE) ev.events |= EPOLLOUT;
    return epoll_ctl(l->ep, op, fd, &ev) ? -errno : 0;
}

struct loop *loop_new(loop_wake_fn *on_wake, void *arg) {
    struct loop *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    l->ep = l->tfd = l->efd = -1;
    l->on_wake = on_wake;
    l->wake_arg = arg;
    l->armed = INT64_MAX;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->ep < 0 || l->tfd < 0 || l->efd < 0) goto fail;
    if (ep_ctl(l, EPOLL_CTL_ADD, l->tfd, LOOP_READ) || ep_ctl(l, EPOLL_CTL_ADD, l->efd, LOOP_READ))
        goto fail;
    return l;
fail:
    loop_free(l);
    return NULL;
}

void loop_free(struct loop *l) {
    if (!l) return;
    if (l->ep >= 0) close(l->ep);
    if (l->tfd >= 0) close(l->tfd);
    if (l->efd >= 0) close(l->efd);
    free(l->timers);
    free(l->fds);
    free(l);
}

/* Arms the timerfd for the earliest timer (absolute monotonic time), or disarms it. */
static void rearm(struct loop *l) {
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < l->ntimers; i++)
        if (l->timers[i].when < first) first = l->timers[i].when;
    if (first == l->armed) return;
    struct itimerspec its = {0};
    if (first != INT64_MAX) {
        /* An all-zero it_value disarms: a deadline at or before 0 becomes 1 ns. */
        int64_t ms = first > 0 ? first : 0;
        its.it_value.tv_sec = ms / 1000;
        its.it_value.tv_nsec = (ms % 1000) * 1000000;
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    l->armed = first;
}

int64_t loop_add_timer(struct loop *l, int64_t ms, loop_timer_fn *fn, void *arg) {
    if (l->ntimers == l->captimers) {
        size_t cap = l->captimers ? l->captimers * 2 : 8;
        struct ltimer *t = realloc(l->timers, cap * sizeof(*t));
        if (!t) return -ENOMEM;
        l->timers = t;
        l->captimers = cap;
    }
    int64_t id = ++l->next_id;
    l->timers[l->ntimers++] =
        (struct ltimer){.id = id, .when = loop_now_ms() + (ms > 0 ? ms : 0), .fn = fn, .arg = arg};
    rearm(l);
    return id;
}

static struct ltimer *find_timer(struct loop *l, int64_t id) {
    for (size_t i = 0; i < l->ntimers; i++)
        if (l->timers[i].id == id) return &l->timers[i];
    return NULL;
}

int loop_mod_timer(struct loop *l, int64_t id, int64_t ms) {
    struct ltimer *t = find_timer(l, id);
    if (!t) return -ENOENT;
    t->when = loop_now_ms() + (ms > 0 ? ms : 0);
    rearm(l);
    return 0;
}

void loop_del_timer(struct loop *l, int64_t id) {
    struct ltimer *t = find_timer(l, id);
    if (!t) return;
    *t = l->timers[--l->ntimers];
    rearm(l);
}

int loop_add_fd(struct loop *l, int fd, unsigned mask, loop_fd_fn *fn, void *arg) {
    if (fd < 0 || !fn) return -EINVAL;
    if ((size_t)fd >= l->nfds) {
        size_t n = (size_t)fd + 16;
        struct lfd *f = realloc(l->fds, n * sizeof(*f));
        if (!f) return -ENOMEM;
        memset(f + l->nfds, 0, (n - l->nfds) * sizeof(*f));
        l->fds = f;
        l->nfds = n;
    }
    struct lfd *s = &l->fds[fd];
    int rc = ep_ctl(l, s->fn ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, mask);
    if (rc) return rc;
    *s = (struct lfd){.fn = fn, .arg = arg, .mask = mask};
    return 0;
}

void loop_del_fd(struct loop *l, int fd) {
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].fn) return;
    epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
    l->fds[fd] = (struct lfd){0};
}

void loop_wake(struct loop *l) {
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wake is pending anyway. */
    ssize_t r = write(l->efd, &one, sizeof(one));
    (void)r;
}

void loop_stop(struct loop *l) {
    __atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
    loop_wake(l);
}

/* Runs every timer due now. Callbacks may add or delete timers, so each due id is looked up
 * again before its call. */
static int run_timers(struct loop *l) {
    uint64_t exp;
    ssize_t r = read(l->tfd, &exp, sizeof(exp));
    (void)r;
    l->armed = INT64_MAX; /* fired (or spurious): force a re-arm below */
    int64_t now = loop_now_ms();
    int64_t due[64];
    size_t ndue = 0;
    for (size_t i = 0; i < l->ntimers && ndue < 64; i++)
        if (l->timers[i].when <= now) due[ndue++] = l->timers[i].id;
    int ran = 0;
    for (size_t k = 0; k < ndue; k++) {
        struct ltimer *t = find_timer(l, due[k]);
        if (!t) continue;
        loop_timer_fn *fn = t->fn;
        void *arg = t->arg;
        /* Parked far away while it runs, so a re-entrant loop_mod_timer wins over the return. */
        t->when = INT64_MAX - 1;
        int64_t next = fn(l, due[k], arg);
        ran++;
        t = find_timer(l, due[k]);
        if (!t) continue;
        if (next < 0)
            loop_del_timer(l, due[k]);
        else if (t->when == INT64_MAX - 1)
            t->when = loop_now_ms() + next;
    }
    rearm(l);
    return ran;
}

int loop_once(struct loop *l, int timeout_ms) {
    struct epoll_event evs[64];
    int n = epoll_wait(l->ep, evs, 64, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    int ran = 0;
    bool timers = false, woke = false;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == l->tfd) {
            timers = true;
            continue;
        }
        if (fd == l->efd) {
            uint64_t v;
            ssize_t r = read(l->efd, &v, sizeof(v));
            (void)r;
            woke = true;
            continue;
        }
        if ((size_t)fd >= l->nfds || !l->fds[fd].fn)
            continue; /* deleted by an earlier callback of this batch */
        unsigned mask = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) mask |= LOOP_READ;
        if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) mask |= LOOP_WRITE;
        mask &= l->fds[fd].mask ? l->fds[fd].mask : 0;
        if (!mask) continue;
        l->fds[fd].fn(l, fd, mask, l->fds[fd].arg);
        ran++;
    }
    if (woke && l->on_wake) {
        l->on_wake(l, l->wake_arg);
        ran++;
    }
    if (timers) ran += run_timers(l);
    return ran;
}

int loop_run(struct loop *l) {
    while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
        int rc = loop_once(l, -1);
        if (rc < 0) return rc;
    }
    /* Consumed: a later loop_run runs again (a stop before the first run still ends it). */
    __atomic_store_n(&l->stop, 0, __ATOMIC_RELEASE);
    return 0;
}
