/* SPDX-License-Identifier: Apache-2.0 */
/* diskstats collector: /proc/diskstats per device, plus udev info (diskstats_linux.go, 1.5). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

#define SECTOR_BYTES 512.0     /* /proc/diskstats counts 512-byte sectors whatever the device */
#define SECONDS_PER_TICK 0.001 /* the *_ticks fields are milliseconds */

struct disk_state {
    struct col_regex *exclude, *include;
    struct sbuf udev;
};

static int diskstats_init(struct col_ctx *ctx, struct perr *err) {
    struct disk_state *st = calloc(1, sizeof(*st));
    if (!st) return -ENOMEM;
    ctx->state = st;
    const char *ex = col_opt_str(ctx->opt, "collector.diskstats.device-exclude");
    const char *in = col_opt_str(ctx->opt, "collector.diskstats.device-include");
    int rc = col_regex_new("collector.diskstats.device-include", in, &st->include, err);
    /* node_exporter: an include given replaces the default exclude; both given is an error
     * only when the exclude was set explicitly, which we cannot tell from a default, so an
     * include simply wins. */
    if (!rc && !(in && *in))
        rc = col_regex_new("collector.diskstats.device-exclude", ex, &st->exclude, err);
    if (rc) {
        col_regex_free(st->include);
        free(st);
        ctx->state = NULL;
    }
    return rc;
}

static void diskstats_fini(struct col_ctx *ctx) {
    struct disk_state *st = ctx->state;
    if (!st) return;
    col_regex_free(st->exclude);
    col_regex_free(st->include);
    sbuf_fini(&st->udev);
    free(st);
}

static const struct {
    const char *name, *help;
    enum mtype type;
    double scale;
} fields[] = {
    {"node_disk_reads_completed_total", "The total number of reads completed successfully.",
     MTYPE_COUNTER, 1},
    {"node_disk_reads_merged_total", "The total number of reads merged.", MTYPE_COUNTER, 1},
    {"node_disk_read_bytes_total", "The total number of bytes read successfully.", MTYPE_COUNTER,
     SECTOR_BYTES},
    {"node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.",
     MTYPE_COUNTER, SECONDS_PER_TICK},
    {"node_disk_writes_completed_total", "The total number of writes completed successfully.",
     MTYPE_COUNTER, 1},
    {"node_disk_writes_merged_total", "The number of writes merged.", MTYPE_COUNTER, 1},
    {"node_disk_written_bytes_total", "The total number of bytes written successfully.",
     MTYPE_COUNTER, SECTOR_BYTES},
    {"node_disk_write_time_seconds_total",
     "This is the total number of seconds spent by all writes.", MTYPE_COUNTER, SECONDS_PER_TICK},
    {"node_disk_io_now", "The number of I/Os currently in progress.", MTYPE_GAUGE, 1},
    {"node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", MTYPE_COUNTER,
     SECONDS_PER_TICK},
    {"node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.",
     MTYPE_COUNTER, SECONDS_PER_TICK},
    /* Linux 4.18+ */
    {"node_disk_discards_completed_total", "The total number of discards completed successfully.",
     MTYPE_COUNTER, 1},
    {"node_disk_discards_merged_total", "The total number of discards merged.", MTYPE_COUNTER, 1},
    {"node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.",
     MTYPE_COUNTER, 1},
    {"node_disk_discard_time_seconds_total",
     "This is the total number of seconds spent by all discards.", MTYPE_COUNTER, SECONDS_PER_TICK},
    /* Linux 5.5+ */
    {"node_disk_flush_requests_total", "The total number of flush requests completed successfully",
     MTYPE_COUNTER, 1},
    {"node_disk_flush_requests_time_seconds_total",
     "This is the total number of seconds spent by all flush requests.", MTYPE_COUNTER,
     SECONDS_PER_TICK},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* Looks up KEY in a udev database file's "E:KEY=VALUE" lines; "" when absent. */
static const char *udev_get(const struct sbuf *db, const char *key, bool *found) {
    size_t kl = strlen(key);
    for (const char *p = db->data; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll > kl + 2 && p[0] == 'E' && p[1] == ':' && strncmp(p + 2, key, kl) == 0 &&
            p[2 + kl] == '=') {
            if (found) *found = true;
            return p + 3 + kl;
        }
        p += ll + (nl ? 1 : 0);
    }
    if (found) *found = false;
    return "";
}

/* Loads /run/udev/data/b<major>:<minor>; a device udev does not know has empty labels. */
static void udev_load(struct col_ctx *ctx, struct disk_state *st, const char *maj,
                      const char *min) {
    char path[4400];
    snprintf(path, sizeof(path), "%s/b%s:%s", ctx->paths->udev_data, maj, min);
    if (procfs_read(path, &st->udev)) sbuf_reset(&st->udev);
}

static int udev_metrics(struct mset *out, struct disk_state *st, const char *dev) {
    /* udev_get returns line tails that still hold their newline: copy each value out */
    char v[6][256];
    int rc = 0;
#define UDEV(i, k)                                                                                 \
    do {                                                                                           \
        const char *s_ = udev_get(&st->udev, (k), NULL);                                           \
        size_t l_ = strcspn(s_, "\n");                                                             \
        if (l_ >= sizeof(v[i])) l_ = sizeof(v[i]) - 1;                                             \
        memcpy(v[i], s_, l_);                                                                      \
        v[i][l_] = '\0';                                                                           \
    } while (0)
    UDEV(0, "ID_FS_TYPE");
    if (v[0][0]) {
        UDEV(1, "ID_FS_USAGE");
        UDEV(2, "ID_FS_UUID");
        UDEV(3, "ID_FS_VERSION");
        rc =
            col_add(out, "node_disk_filesystem_info", "Info about disk filesystem.", MTYPE_GAUGE, 1,
                    5, "device", dev, "type", v[0], "usage", v[1], "uuid", v[2], "version", v[3]);
        if (rc) return rc;
    }
    UDEV(0, "DM_NAME");
    if (v[0][0]) {
        UDEV(1, "DM_UUID");
        UDEV(2, "DM_VG_NAME");
        UDEV(3, "DM_LV_NAME");
        UDEV(4, "DM_LV_LAYER");
        rc = col_add(out, "node_disk_device_mapper_info", "Info about disk device mapper.",
                     MTYPE_GAUGE, 1, 6, "device", dev, "name", v[0], "uuid", v[1], "vg_name", v[2],
                     "lv_name", v[3], "lv_layer", v[4]);
        if (rc) return rc;
    }
    UDEV(0, "ID_ATA");
    if (v[0][0]) {
        static const char *const ata[3][3] = {
            {"ID_ATA_WRITE_CACHE", "node_disk_ata_write_cache", "ATA disk has a write cache."},
            {"ID_ATA_WRITE_CACHE_ENABLED", "node_disk_ata_write_cache_enabled",
             "ATA disk has its write cache enabled."},
            {"ID_ATA_ROTATION_RATE_RPM", "node_disk_ata_rotation_rate_rpm",
             "ATA disk rotation rate in RPMs (0 for SSDs)."},
        };
        for (int i = 0; i < 3; i++) {
            bool found;
            udev_get(&st->udev, ata[i][0], &found);
            if (!found) continue;
            UDEV(5, ata[i][0]);
            double x;
            if (procfs_parse_double(v[5], &x)) continue; /* node_exporter logs and skips */
            if ((rc = col_add(out, ata[i][1], ata[i][2], MTYPE_GAUGE, x, 1, "device", dev)))
                return rc;
        }
    }
#undef UDEV
    return 0;
}

static int diskstats_collect(struct col_ctx *ctx, struct mset *out) {
    struct disk_state *st = ctx->state;
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "diskstats", ctx->buf);
    if (rc) return col_fail(ctx, rc, "couldn't get diskstats");
    char *cur = ctx->buf->data, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[3 + NFIELDS + 4];
        size_t nf = procfs_fields(line, f, 3 + NFIELDS + 4);
        if (nf == 0) continue;
        /* procfs rejects lines with fewer than 14 fields (pre-2.6.25 partition lines) */
        if (nf < 14)
            return col_fail(ctx, -EPROTO, "invalid line in diskstats: %s", nf > 2 ? f[2] : f[0]);
        const char *dev = f[2];
        uint64_t maj, min;
        if (procfs_parse_u64(f[0], &maj) || procfs_parse_u64(f[1], &min))
            return col_fail(ctx, -EPROTO, "bad device numbers in diskstats for %s", dev);
        if (col_filter_ignored(st->exclude, st->include, dev)) continue;
        udev_load(ctx, st, f[0], f[1]);
        char path[256], wwn[256], model[256], serial[256], rev[256];
        const char *src[5] = {"ID_PATH", "ID_WWN", "ID_MODEL", "ID_SERIAL_SHORT", "ID_REVISION"};
        char *dst[5] = {path, wwn, model, serial, rev};
        for (int i = 0; i < 5; i++) {
            const char *s = udev_get(&st->udev, src[i], NULL);
            size_t l = strcspn(s, "\n");
            if (l > 255) l = 255;
            memcpy(dst[i], s, l);
            dst[i][l] = '\0';
        }
        rc = col_add(out, "node_disk_info", "Info of /sys/block/<block_device>.", MTYPE_GAUGE, 1, 8,
                     "device", dev, "major", f[0], "minor", f[1], "path", path, "wwn", wwn, "model",
                     model, "serial", serial, "revision", rev);
        if (rc == -EEXIST) continue; /* the same device listed twice: keep the first */
        if (rc) return rc;
        size_t nstat = nf - 3;
        for (size_t i = 0; i < NFIELDS && i < nstat; i++) {
            uint64_t x;
            if (procfs_parse_u64(f[3 + i], &x))
                return col_fail(ctx, -EPROTO, "bad value in diskstats for %s", dev);
            if ((rc = col_add(out, fields[i].name, fields[i].help, fields[i].type,
                              (double)x * fields[i].scale, 1, "device", dev)))
                return rc;
        }
        if ((rc = udev_metrics(out, st, dev)))
            return rc == -ENOMEM ? rc : col_fail(ctx, -EPROTO, "bad udev data for %s", dev);
    }
    return 0;
}

const struct collector col_diskstats = {
    .name = "diskstats",
    .default_on = true,
    .help = "Exposes disk I/O statistics",
    .init = diskstats_init,
    .collect = diskstats_collect,
    .fini = diskstats_fini,
};
