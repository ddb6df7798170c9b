/* SPDX-License-Identifier: Apache-2.0 */
/* File helpers for collectors: paths under --path.procfs/sysfs/rootfs, whole-file reads, fields. */
#ifndef PROMLET_EXPORTER_PROCFS_H
#define PROMLET_EXPORTER_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

struct col_paths;

enum procfs_root { PROCFS_PROC, PROCFS_SYS, PROCFS_ROOT };

/* Largest file procfs_read accepts (/proc/stat on a 1024-CPU box is ~200 KB). */
#define PROCFS_MAX_FILE (16u << 20)

/* Writes root/rel into buf[cap] (borrows all). Returns 0 or -ENAMETOOLONG. */
int procfs_path(const struct col_paths *p, enum procfs_root r, const char *rel, char *buf,
                size_t cap);
/* Replaces b's content with the whole file at path (NUL-terminated). Returns 0, -errno from
 * open/read, or -E2BIG beyond PROCFS_MAX_FILE. */
int procfs_read(const char *path, struct sbuf *b);
/* As procfs_read for kernfs attribute files (sysfs, cgroupfs) and small regular files:
 * kernfs produces an attribute's whole content in one show(), so a read that leaves room in
 * the buffer has hit EOF and the second read(2) is skipped. Not for /proc seq files that
 * emit record by record (/proc/net/..., /proc/PID/...). */
int procfs_read_attr(const char *path, struct sbuf *b);
/* procfs_read_attr of `name` relative to the open directory dirfd (borrowed): one path
 * component to resolve instead of the whole path, for directories read file by file. */
int procfs_read_attr_at(int dirfd, const char *name, struct sbuf *b);
/* procfs_path + procfs_read. */
int procfs_read_at(const struct col_paths *p, enum procfs_root r, const char *rel, struct sbuf *b);
/* Reads the first line of a small file into buf[cap] without its newline. Returns 0, -errno,
 * or -E2BIG if the line does not fit. */
int procfs_read_line(const char *path, char *buf, size_t cap);
/* Reads a file holding one unsigned decimal integer. Returns 0, -errno, -EPROTO if malformed. */
int procfs_read_u64(const char *path, uint64_t *v);

/* Returns the next line of *cur (NUL-terminating it in place and advancing *cur), or NULL at
 * the end. A final line without newline is returned too. */
char *procfs_next_line(char **cur);
/* Splits s in place on spaces/tabs into at most max fields; returns the number found
 * (fields beyond max are left joined in the last one's tail, not counted). */
size_t procfs_fields(char *s, char **f, size_t max);
/* Strict decimal parses of a whole string. Return 0 or -EPROTO. */
int procfs_parse_u64(const char *s, uint64_t *v);
int procfs_parse_i64(const char *s, int64_t *v);
int procfs_parse_double(const char *s, double *v);

/* PSI: parses "some avg10=.. avg60=.. avg300=.. total=N" (and "full ...") lines; total is in
 * microseconds. Returns 0 or -EPROTO. */
int procfs_parse_psi(char *text, double *some_us, double *full_us, bool *has_full);

#endif
