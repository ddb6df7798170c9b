/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny event loop (epoll + timerfd + eventfd), the size of redis' ae.h: timers, fds, wake. */
#ifndef PROMLET_EXPORTER_LOOP_H
#define PROMLET_EXPORTER_LOOP_H

#include <stdint.h>

struct loop;

/* fd interest / readiness bits. */
#define LOOP_READ 1u
#define LOOP_WRITE 2u

/* Returned by a timer callback to delete the timer; any value >= 0 re-arms it that many
 * milliseconds from now. */
#define LOOP_NOMORE (-1)

/* A timer fired (on the loop thread). id is the timer's id. */
typedef int64_t loop_timer_fn(struct loop *l, int64_t id, void *arg);
/* fd is ready; mask holds LOOP_READ / LOOP_WRITE (errors and hang-ups report both). */
typedef void loop_fd_fn(struct loop *l, int fd, unsigned mask, void *arg);
/* loop_wake() was called since the last time this ran (wakes coalesce). */
typedef void loop_wake_fn(struct loop *l, void *arg);

/* Returns a new loop, or NULL on failure (errno set). The wake callback may be NULL. */
struct loop *loop_new(loop_wake_fn *on_wake, void *arg);
/* Frees the loop and closes its own descriptors (not the ones added); accepts NULL. Must not
 * run concurrently with loop_run. */
void loop_free(struct loop *l);

/* Adds a timer firing ms milliseconds from now (CLOCK_MONOTONIC). Returns its id (> 0) or
 * -ENOMEM. Loop thread only (or before loop_run starts). */
int64_t loop_add_timer(struct loop *l, int64_t ms, loop_timer_fn *fn, void *arg);
/* Moves an existing timer to fire ms from now. Returns 0 or -ENOENT. Loop thread only. */
int loop_mod_timer(struct loop *l, int64_t id, int64_t ms);
/* Deletes a timer; unknown ids are ignored. Loop thread only. */
void loop_del_timer(struct loop *l, int64_t id);

/* Watches fd for mask (replacing an earlier registration of the same fd). mask 0 keeps the
 * registration but waits for nothing. Returns 0 or -errno. Loop thread only. */
int loop_add_fd(struct loop *l, int fd, unsigned mask, loop_fd_fn *fn, void *arg);
/* Stops watching fd (does not close it); unknown fds are ignored. Loop thread only. */
void loop_del_fd(struct loop *l, int fd);

/* Makes the loop call its wake callback soon. Async-signal-safe and callable from any
 * thread; never blocks. */
void loop_wake(struct loop *l);
/* Makes loop_run return after the current iteration. Any thread. */
void loop_stop(struct loop *l);

/* Runs callbacks until loop_stop. Returns 0, or -errno if epoll fails. */
int loop_run(struct loop *l);
/* One iteration: waits at most timeout_ms (-1: until something happens) and runs what is
 * ready. Returns the number of callbacks run or -errno. */
int loop_once(struct loop *l, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t loop_now_ms(void);

#endif
