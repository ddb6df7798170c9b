/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: one line per event, promslog's fields (time level source msg), logfmt or JSON. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level threshold = LOG_LEVEL_INFO;
static enum log_format format = LOG_FORMAT_LOGFMT;

void log_setup(enum log_level level, enum log_format fmt) {
    threshold = level;
    format = fmt;
}

int log_parse_level(const char *s, enum log_level *out) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -EINVAL;
}

int log_parse_format(const char *s, enum log_format *out) {
    if (strcmp(s, "logfmt") == 0)
        *out = LOG_FORMAT_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -EINVAL;
    return 0;
}

bool log_enabled(enum log_level level) {
    return level >= threshold;
}

static size_t put(char *buf, size_t cap, size_t o, const char *s, size_t n) {
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        buf[o++] = s[i];
    return o;
}

/* Appends s quoted: logfmt and JSON both accept a JSON-style escaped string. */
static size_t put_quoted(char *buf, size_t cap, size_t o, const char *s) {
    o = put(buf, cap, o, "\"", 1);
    for (; *s; s++) {
        char esc[8];
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            o = put(buf, cap, o, esc, 2);
        } else if (c == '\n') {
            o = put(buf, cap, o, "\\n", 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            o = put(buf, cap, o, esc, 6);
        } else {
            o = put(buf, cap, o, (const char *)&c, 1);
        }
    }
    return put(buf, cap, o, "\"", 1);
}

static bool needs_quotes(const char *s) {
    if (!*s) return true;
    for (; *s; s++)
        if (*s <= ' ' || *s == '"' || *s == '=' || (unsigned char)*s >= 0x7f) return true;
    return false;
}

void log_write(enum log_level level, const char *file, int line, const char *kv, const char *fmt,
               ...) {
    if (level < threshold) return;
    static const char *const lv[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    static const char *const lvj[] = {"debug", "info", "warn", "error"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", (long)(tv.tv_usec / 1000));

    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char src[128];
    snprintf(src, sizeof(src), "%s:%d", base, line);

    char out[2048];
    size_t o = 0, cap = sizeof(out) - 1;
    if (format == LOG_FORMAT_JSON) {
        o = put(out, cap, o, "{\"time\":", 8);
        o = put_quoted(out, cap, o, ts);
        o = put(out, cap, o, ",\"level\":", 9);
        o = put_quoted(out, cap, o, lvj[level]);
        o = put(out, cap, o, ",\"source\":", 10);
        o = put_quoted(out, cap, o, src);
        o = put(out, cap, o, ",\"msg\":", 7);
        o = put_quoted(out, cap, o, msg);
        /* kv: space-separated key=value or key="quoted value" pairs. */
        for (const char *p = kv; p && *p;) {
            while (*p == ' ')
                p++;
            const char *eq = strchr(p, '=');
            if (!eq) break;
            o = put(out, cap, o, ",\"", 2);
            o = put(out, cap, o, p, (size_t)(eq - p));
            o = put(out, cap, o, "\":", 2);
            p = eq + 1;
            char val[512];
            size_t vl = 0;
            if (*p == '"') {
                for (p++; *p && *p != '"' && vl + 1 < sizeof(val); p++) {
                    if (*p == '\\' && p[1]) p++;
                    val[vl++] = *p;
                }
                if (*p == '"') p++;
            } else {
                while (*p && *p != ' ' && vl + 1 < sizeof(val))
                    val[vl++] = *p++;
            }
            val[vl] = '\0';
            o = put_quoted(out, cap, o, val);
        }
        o = put(out, cap, o, "}", 1);
    } else {
        o = put(out, cap, o, "time=", 5);
        o = put(out, cap, o, ts, strlen(ts));
        o = put(out, cap, o, " level=", 7);
        o = put(out, cap, o, lv[level], strlen(lv[level]));
        o = put(out, cap, o, " source=", 8);
        o = put(out, cap, o, src, strlen(src));
        o = put(out, cap, o, " msg=", 5);
        if (needs_quotes(msg))
            o = put_quoted(out, cap, o, msg);
        else
            o = put(out, cap, o, msg, strlen(msg));
        if (kv && *kv) {
            o = put(out, cap, o, " ", 1);
            o = put(out, cap, o, kv, strlen(kv));
        }
    }
    out[o++] = '\n';
    ssize_t w = write(STDERR_FILENO, out, o);
    (void)w;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void complain_fail(struct complain *c, enum log_level level, const char *file, int line,
                   const char *fmt, ...) {
    int64_t now = now_ms();
    if (c->failing && now - c->last_ms < c->interval_ms) return;
    if (!c->failing)
        c->interval_ms = 10000;
    else if (c->interval_ms < 86400000)
        c->interval_ms *= 2;
    c->failing = true;
    c->last_ms = now;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_write(level, file, line, NULL, "%s", msg);
}

void complain_ok(struct complain *c, const char *file, int line, const char *what) {
    if (!c->failing) return;
    c->failing = false;
    c->interval_ms = 0;
    log_write(LOG_LEVEL_INFO, file, line, NULL, "%s recovered", what);
}
