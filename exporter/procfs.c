/* SPDX-License-Identifier: Apache-2.0 */
/* File helpers for collectors: path joining under the configured roots and bounded reads. */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"

int procfs_path(const struct col_paths *p, enum procfs_root r, const char *rel, char *buf,
                size_t cap) {
    const char *root = r == PROCFS_PROC ? p->procfs : r == PROCFS_SYS ? p->sysfs : p->rootfs;
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    while (*rel == '/')
        rel++;
    int n;
    if (rl == 1 && root[0] == '/')
        n = snprintf(buf, cap, "/%s", rel);
    else
        n = snprintf(buf, cap, "%.*s%s%s", (int)rl, root, *rel ? "/" : "", rel);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Makes room for at least `room` more bytes in b without changing its content. */
static int reserve(struct sbuf *b, size_t room) {
    if (b->cap >= b->len + room + 1) return 0;
    size_t keep = b->len;
    /* sbuf grows on append; append `room` bytes of whatever, then take them back */
    static const char zeros[4096];
    for (size_t left = room; left;) {
        size_t n = left < sizeof(zeros) ? left : sizeof(zeros);
        if (sbuf_add(b, zeros, n)) return -ENOMEM;
        left -= n;
    }
    b->len = keep;
    b->data[keep] = '\0';
    return 0;
}

static int read_file(int dirfd, const char *path, struct sbuf *b, bool once);

int procfs_read(const char *path, struct sbuf *b) {
    return read_file(AT_FDCWD, path, b, false);
}

int procfs_read_attr(const char *path, struct sbuf *b) {
    return read_file(AT_FDCWD, path, b, true);
}

int procfs_read_attr_at(int dirfd, const char *name, struct sbuf *b) {
    return read_file(dirfd, name, b, true);
}

static int read_file(int dirfd, const char *path, struct sbuf *b, bool once) {
    sbuf_reset(b);
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    /* Read straight into the buffer; /proc files report size 0, so read until EOF. The
     * buffer keeps its capacity across scrapes, so after the first scrape this is one
     * read(2) plus the one that returns 0 for every file. */
    for (;;) {
        if (b->cap - b->len < 4096 + 1 && (rc = reserve(b, b->len < 16384 ? 16384 : b->len))) break;
        size_t room = b->cap - b->len - 1;
        ssize_t n = read(fd, b->data + b->len, room);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            break;
        }
        if (n == 0) break;
        b->len += (size_t)n;
        if (once && (size_t)n < room) break;
        if (b->len > PROCFS_MAX_FILE) {
            rc = -E2BIG;
            break;
        }
    }
    close(fd);
    if (b->data)
        b->data[b->len] = '\0';
    else if (!rc && sbuf_add(b, "", 0))
        rc = -ENOMEM;
    return rc;
}

int procfs_read_at(const struct col_paths *p, enum procfs_root r, const char *rel, struct sbuf *b) {
    char path[4096];
    int rc = procfs_path(p, r, rel, path, sizeof(path));
    return rc ? rc : procfs_read(path, b);
}

int procfs_read_line(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n;
    do
        n = read(fd, buf, cap - 1);
    while (n < 0 && errno == EINTR);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc) return rc;
    buf[n] = '\0';
    char *nl = memchr(buf, '\n', (size_t)n);
    if (nl)
        *nl = '\0';
    else if ((size_t)n == cap - 1)
        return -E2BIG;
    return 0;
}

int procfs_read_u64(const char *path, uint64_t *v) {
    char buf[64];
    int rc = procfs_read_line(path, buf, sizeof(buf));
    if (rc) return rc == -E2BIG ? -EPROTO : rc;
    /* sysfs values may carry trailing spaces */
    size_t l = strlen(buf);
    while (l && (buf[l - 1] == ' ' || buf[l - 1] == '\t'))
        buf[--l] = '\0';
    return procfs_parse_u64(buf, v);
}

char *procfs_next_line(char **cur) {
    char *s = *cur;
    if (!s || !*s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *cur = nl + 1;
    } else {
        *cur = s + strlen(s);
    }
    return s;
}

size_t procfs_fields(char *s, char **f, size_t max) {
    size_t n = 0;
    while (n < max) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s) break;
        f[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (!*s) break;
        if (n < max) *s++ = '\0';
    }
    return n;
}

int procfs_parse_u64(const char *s, uint64_t *v) {
    if (!s || *s < '0' || *s > '9') return -EPROTO;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return -EPROTO;
    *v = x;
    return 0;
}

int procfs_parse_i64(const char *s, int64_t *v) {
    if (!s || !*s) return -EPROTO;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end) return -EPROTO;
    *v = x;
    return 0;
}

int procfs_parse_double(const char *s, double *v) {
    if (!s || !*s) return -EPROTO;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno == ERANGE || *end) return -EPROTO;
    *v = x;
    return 0;
}

int procfs_parse_psi(char *text, double *some_us, double *full_us, bool *has_full) {
    bool has_some = false;
    *has_full = false;
    char *cur = text, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[6];
        size_t nf = procfs_fields(line, f, 6);
        if (nf == 0) continue;
        bool some = strcmp(f[0], "some") == 0, full = strcmp(f[0], "full") == 0;
        if (!some && !full) return -EPROTO;
        double *dst = some ? some_us : full_us;
        bool found = false;
        for (size_t i = 1; i < nf; i++) {
            if (strncmp(f[i], "total=", 6) == 0) {
                uint64_t t;
                if (procfs_parse_u64(f[i] + 6, &t)) return -EPROTO;
                *dst = (double)t;
                found = true;
            }
        }
        if (!found) return -EPROTO;
        if (some)
            has_some = true;
        else
            *has_full = true;
    }
    return has_some ? 0 : -EPROTO;
}
